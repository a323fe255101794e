//! Storage maintenance (Parquet flushes, compaction) runs on threads of lower CPU
//! priority: on a small machine it must not delay acknowledgements or detections,
//! which wait on the same cores. Measured with `cordon bench detections`.

/// How much lower than the server the maintenance threads run (Unix `nice`).
const NICENESS: i32 = 10;

/// Runs `work` on a thread of its own at lower priority and waits for it.
pub async fn run_low_priority<T, F>(name: &'static str, work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("cordon-{name}"))
        .spawn(move || {
            lower_priority();
            let _ = sender.send(work());
        })
        .expect("the OS starts a thread");
    receiver.await.expect("maintenance work does not panic")
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // On Linux, PRIO_PROCESS with who = 0 sets the calling thread's nice value only.
    // SAFETY: setpriority has no memory effects; a failure only leaves the priority.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICENESS) };
    if result != 0 {
        tracing::debug!("could not lower the priority of a storage maintenance thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}
