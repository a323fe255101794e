//! The detection service's queue from storage, bounded in events: storage waits while
//! `detections.queue_events` events are queued or being evaluated, and goes on as the
//! engine gives them back. Many more events than the bound go through.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use cordon_detections::fixtures::{self, FixtureEvent};
use cordon_detections::service::DetectionConfig;

/// `count` network flows from now, one host, as one batch.
fn flows(batch: usize, count: usize) -> RecordBatch {
    let now = chrono::Utc::now();
    let events: Vec<FixtureEvent> = (0..count)
        .map(|n| FixtureEvent {
            value: serde_json::json!({
                "time": (now + chrono::Duration::milliseconds(n as i64)).to_rfc3339(),
                "host.id": "wks-queue-1",
                "event.name": "network.flow",
                "event.id": format!("b{batch}-e{n}"),
                "destination.address": "example.org",
                "destination.port": 443,
                "network.io.bytes_sent": 100,
            }),
            arrival: None,
            provenance: None,
            line: n as u64 + 1,
        })
        .collect();
    let batches = fixtures::to_batches(std::path::Path::new("queue-test"), &events).unwrap();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_goes_on_as_the_engine_evaluates_what_the_bound_holds() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = DetectionConfig {
        rules_dir: dir.join("rules"),
        reference_dir: dir.join("reference"),
        queue_events: 50,
        ..DetectionConfig::default()
    };
    let (service, metrics, _stop) = common::start_service(config, Vec::new()).await;
    assert_eq!(metrics.queue_capacity_events.get(), 50);
    // 40 batches of 20 events: 800 events through a queue of 50, submitted as storage
    // does, from a thread of its own that waits while the queue is full.
    let batches: Vec<RecordBatch> = (0..40).map(|batch| flows(batch, 20)).collect();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for batch in &batches {
            service.submit(batch);
        }
        done.send(service).unwrap();
    });
    let waited = Instant::now();
    let service = loop {
        match finished.try_recv() {
            Ok(service) => break service,
            Err(_) => {
                assert!(
                    waited.elapsed() < Duration::from_secs(60),
                    "storage still waits with {} events queued: the engine does not give the queue back",
                    metrics.queued_events.get()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    while metrics.queued_events.get() > 0 {
        assert!(waited.elapsed() < Duration::from_secs(60), "the engine never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metrics.queued_batches.get(), 0);
    drop(service);
}
