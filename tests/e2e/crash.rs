//! `cordon serve` killed with SIGKILL right after acknowledging requests loses nothing it
//! acknowledged, and stores nothing twice after a restart and a redelivery.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use cordon::simulate::senders::{SendReport, Sender};
use cordon_schemas::FlatEvent;

use crate::common::*;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Served {
    pub child: Child,
    pub grpc: SocketAddr,
}

impl Drop for Served {
    /// A failing test must not leave a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(data_dir: &Path, flush_interval: &str) -> Served {
    let grpc: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .env("CORDON_OTLP__GRPC_LISTEN", grpc.to_string())
        .env("CORDON_OTLP__HTTP_LISTEN", http.to_string())
        .env("CORDON_API__LISTEN", "127.0.0.1:0")
        .env("CORDON_STORAGE__FLUSH_INTERVAL", flush_interval)
        .env(FIXED_DATE_EVENT_AGE.0, FIXED_DATE_EVENT_AGE.1)
        .env("CORDON_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(grpc, "cordon serve");
    Served { child, grpc }
}

/// `host.id/event.id` of every event stored in `data_dir`, read by `cordon query`.
pub fn stored_ids(data_dir: &Path) -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["query", "--format", "json", "--data-dir"])
        .arg(data_dir)
        .arg("SELECT host_id || '/' || event_id AS id FROM events")
        .env("CORDON_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    rows.iter().map(|row| row["id"].as_str().unwrap().to_string()).collect()
}

pub fn ids(events: &[FlatEvent]) -> BTreeSet<String> {
    events
        .iter()
        .map(|event| format!("{}/{}", event.text("host.id").unwrap(), event.text("event.id").unwrap()))
        .collect()
}

fn assert_exactly(stored: &[String], expected: &BTreeSet<String>) {
    let unique: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    let missing: Vec<_> = expected.difference(&unique).take(3).collect();
    assert!(
        missing.is_empty(),
        "acknowledged events lost: {missing:?} ({} of {})",
        expected.len() - unique.intersection(expected).count(),
        expected.len()
    );
}

async fn kill_after_acknowledged(flush_interval: &str) {
    let dir = tempfile::tempdir().unwrap();
    let events = simulated(21, 3_000, &[]);
    let mut served = serve(dir.path(), flush_interval);
    let mut sender = Sender::grpc(&format!("http://{}", served.grpc)).await.unwrap();
    let mut report = SendReport::default();
    for batch in events.chunks(150) {
        sender.send(batch, &mut report).await.unwrap();
    }
    served.child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    served.child.wait().unwrap();
    drop(served);

    let acknowledged = ids(&events);
    assert_exactly(&stored_ids(dir.path()), &acknowledged);

    // Restart, and the producer redelivers everything (as after a lost reply).
    let mut served = serve(dir.path(), flush_interval);
    let mut sender = Sender::grpc(&format!("http://{}", served.grpc)).await.unwrap();
    for batch in events.chunks(150) {
        sender.send(batch, &mut report).await.unwrap();
    }
    let stored = stored_ids(dir.path());
    assert_exactly(&stored, &acknowledged);
    assert_eq!(stored.len(), events.len());

    // A graceful stop writes the rest to Parquet; still exactly once.
    let pid = served.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(served.child.wait().unwrap().success());
    assert!(std::fs::read_dir(dir.path().join("wal")).unwrap().count() <= 1);
    assert_exactly(&stored_ids(dir.path()), &acknowledged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_before_any_flush_loses_nothing_acknowledged() {
    kill_after_acknowledged("1h").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_flushing_often_loses_nothing_and_duplicates_nothing() {
    kill_after_acknowledged("100ms").await;
}
