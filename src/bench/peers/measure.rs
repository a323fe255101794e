//! Runs one engine as a child process and measures it as the kernel saw it: wall time,
//! user + system CPU seconds and peak resident memory (`wait4`'s rusage), so each row
//! of the table is that engine's alone, whatever language it is written in.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;

pub struct Measured {
    pub stdout: String,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
}

pub fn run(command: &mut Command) -> anyhow::Result<Measured> {
    let what = format!("{command:?}");
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    // Read while the child runs, so a full pipe never stalls it.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 writes only the status and the rusage struct it is given; the
    // child is ours and std has not reaped it.
    let (waited, usage) = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        let waited = libc::wait4(pid, &mut status, 0, &mut usage);
        (waited, usage)
    };
    anyhow::ensure!(waited == pid, "waiting for {what}: {}", std::io::Error::last_os_error());
    let wall_seconds = started.elapsed().as_secs_f64();
    let stdout = reader.join().expect("the reader does not panic")?;
    let exited = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    anyhow::ensure!(exited, "{what} failed (wait status {status}); its errors are above");
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    Ok(Measured {
        stdout,
        wall_seconds,
        cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        // ru_maxrss is in KiB on Linux.
        peak_rss_bytes: usage.ru_maxrss as u64 * 1024,
    })
}
