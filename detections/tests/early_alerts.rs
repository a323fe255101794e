//! A slow rule holds up its own alerts, not the other rules': in the running service
//! each rule's alerts are raised as soon as that rule is done with a burst.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use cordon_detections::DetectionMetrics;
use cordon_detections::service::{AlertListener, DetectionConfig, DetectionService};

const FAST: &str = "agent-spawned-network-tool";
/// Sorts before FAST: where alerts wait for the whole burst, it is raised first.
const SLOW: &str = "a-slow-rule";

/// An agent starting curl, now.
fn upload(id: &str) -> RecordBatch {
    common::agent_upload("wks-early-1", id, chrono::Utc::now())
}

/// The built-in FAST rule, and SLOW: every process start, matched after summing
/// millions of numbers (seconds in a debug build, milliseconds for FAST).
fn rules_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules").join(FAST);
    let fast = dir.path().join(FAST);
    std::fs::create_dir(&fast).unwrap();
    for file in ["rule.toml", "input.sql", "match.sql"] {
        std::fs::copy(source.join(file), fast.join(file)).unwrap();
    }
    let slow = dir.path().join(SLOW);
    std::fs::create_dir(&slow).unwrap();
    std::fs::write(
        slow.join("rule.toml"),
        "title = \"Slow\"\ndescription = \"Slow on purpose.\"\nseverity = \"low\"\npartition_by = [\"host_id\"]\nsuppression = \"1h\"\n",
    )
    .unwrap();
    std::fs::write(
        slow.join("input.sql"),
        "SELECT time, host_id, event_id FROM process_start",
    )
    .unwrap();
    std::fs::write(
        slow.join("match.sql"),
        "SELECT k.host_id, min(k.time) AS first_seen, max(k.time) AS last_seen, array_agg(k.event_id) AS evidence
         FROM kept k CROSS JOIN (SELECT sum(value) AS total FROM generate_series(1, 60000000)) g
         WHERE g.total > 0
         GROUP BY k.host_id",
    )
    .unwrap();
    dir
}

/// The service on `threads` threads; the sender stops it when dropped.
async fn start(
    rules: &Path,
    threads: usize,
    listener: AlertListener,
) -> (DetectionService, DetectionMetrics, tokio::sync::watch::Sender<bool>) {
    let config = DetectionConfig {
        rules_dir: rules.to_path_buf(),
        reference_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference"),
        threads: Some(threads),
        ..DetectionConfig::default()
    };
    common::start_service(config, vec![listener]).await
}

type Raised = Arc<Mutex<Vec<(String, String, Instant)>>>;

fn recorder() -> (Raised, AlertListener) {
    let raised: Raised = Arc::default();
    let listener: AlertListener = {
        let raised = raised.clone();
        Arc::new(move |alert, _, _| {
            let last = alert.evidence.last().map(|e| e.event_id.clone()).unwrap_or_default();
            raised
                .lock()
                .unwrap()
                .push((alert.rule_id.clone(), last, Instant::now()));
        })
    };
    (raised, listener)
}

/// Submits one burst and waits until both rules have raised for it.
async fn burst(
    service: &DetectionService,
    metrics: &DetectionMetrics,
    raised: &Raised,
    id: &str,
) -> Vec<(String, Instant)> {
    service.submit(&upload(id));
    let submitted = Instant::now();
    while metrics.queued_events.get() > 0 {
        assert!(
            submitted.elapsed() < Duration::from_secs(120),
            "the burst was never evaluated"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let of_burst: Vec<(String, Instant)> = raised
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, last, _)| last == id)
        .map(|(rule, _, at)| (rule.clone(), *at))
        .collect();
    let problems: Vec<_> = service
        .shared
        .rules
        .read()
        .unwrap()
        .values()
        .filter_map(|rule| rule.load_error.clone().or(rule.status.last_error.clone()))
        .collect();
    assert_eq!(
        of_burst.len(),
        2,
        "both rules raise for {id}: {of_burst:?} {problems:?}"
    );
    of_burst
}

/// One burst through FAST and SLOW on `threads` engine threads: each rule's alert
/// and when it was raised, in the order raised.
async fn one_burst(threads: usize) -> Vec<(String, Instant)> {
    let rules = rules_dir();
    let (raised, listener) = recorder();
    let (service, metrics, _stop) = start(rules.path(), threads, listener).await;
    burst(&service, &metrics, &raised, "up-1").await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quick_rule_is_raised_before_a_slow_one_of_the_same_burst_finishes() {
    let of_burst = one_burst(2).await;
    assert_eq!(of_burst[0].0, FAST, "raised in this order: {of_burst:?}");
    assert_eq!(of_burst[1].0, SLOW);
    let waited = of_burst[1].1 - of_burst[0].1;
    eprintln!("the slow rule's alert came {waited:?} after the quick one's");
}

/// The same on one thread (the default on 2 cores): DataFusion's operators yield
/// between batches, so the quick rule's few steps run between the slow one's.
#[tokio::test(flavor = "multi_thread")]
async fn on_one_thread_too_a_quick_rule_is_raised_before_a_slow_one_finishes() {
    let of_burst = one_burst(1).await;
    assert_eq!(of_burst[0].0, FAST, "raised in this order: {of_burst:?}");
}
