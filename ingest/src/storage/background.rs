//! Storage maintenance (Parquet flushes, compaction) runs on threads of lower CPU
//! priority: on a small machine it must not delay acknowledgements or detections,
//! which wait on the same cores. Measured with `cordon bench detections`.

use crate::error::StorageError;

/// How much lower than the server the maintenance threads run (Unix `nice`).
const NICENESS: i32 = 10;

/// Runs `work` on a thread of its own at lower priority and waits for it. A panic in
/// `work` is an error of the caller's (counted, logged, retried), never the end of the
/// storage task.
pub async fn run_low_priority<T, F>(name: &'static str, work: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("cordon-{name}"))
        .spawn(move || {
            lower_priority();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = sender.send(outcome);
        })
        .map_err(|error| StorageError::io("starting a thread for", name, error))?;
    match receiver.await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(StorageError::Corrupt(format!("{name} failed: {message}")))
        }
        Err(_) => Err(StorageError::Corrupt(format!("{name} thread ended without an answer"))),
    }
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
