//! One bad event cannot hide the others (detections/README.md, "When a rule fails"):
//! a rule that fails on a batch is tried again on its halves, down to single events;
//! the events it fails on are left out and named, the rest are evaluated. The rules
//! under `tests/poisoned/` cast `data.classification` to a number, which fails on an
//! event that sends a word: in input.sql for one, in match.sql for the other.

use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use cordon_detections::{DetectionMetrics, Engine, EngineConfig, Processed};

fn rule_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"));
    dir.join("tests/poisoned").join(name)
}

async fn engine(rule: &str) -> (Engine, DetectionMetrics) {
    let metrics = DetectionMetrics::default();
    let mut engine = Engine::new(EngineConfig::default(), Default::default(), metrics.clone());
    let compiled = engine.compile(&rule_dir(rule)).await.unwrap().expect("enabled");
    engine.install(compiled);
    (engine, metrics)
}

/// One batch of file reads, in this order: (event id, host, classification).
fn reads(events: &[(&str, &str, &str)]) -> RecordBatch {
    let lines: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(n, (id, host, level))| {
            serde_json::json!({
                "time": 1_768_471_200_000_000_000_i64 + n as i64 * 1_000_000_000,
                "host.id": host, "event.name": "file.access", "event.id": id,
                "user.name": "alice", "file.operation": "read", "file.path": "/srv/payroll.xlsx",
                "data.classification": level,
            })
            .to_string()
        })
        .collect();
    static CASES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let case = CASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let case = std::env::temp_dir().join(format!("cordon-poisoned-{}-{case}.jsonl", std::process::id()));
    std::fs::write(&case, lines.join("\n")).unwrap();
    let batches = cordon_detections::fixtures::read_events(Path::new(&case)).unwrap();
    std::fs::remove_file(&case).unwrap();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// Each match's host and evidence, sorted.
fn fired(processed: &Processed) -> Vec<(String, Vec<String>)> {
    let mut fired: Vec<(String, Vec<String>)> = processed
        .matches
        .iter()
        .map(|found| {
            let mut evidence: Vec<String> = found
                .evidence
                .iter()
                .map(|evidence| evidence.event_id.clone())
                .collect();
            evidence.sort();
            (found.value("host_id").unwrap_or_default(), evidence)
        })
        .collect();
    fired.sort();
    fired
}

fn not_evaluated(metrics: &DetectionMetrics, rule: &str) -> u64 {
    let label = cordon_detections::metrics::rule_label(rule);
    metrics.events_not_evaluated.get_or_create(&label).get()
}

#[tokio::test]
async fn an_event_input_sql_fails_on_is_left_out_and_named_and_the_rest_evaluated() {
    let (mut engine, metrics) = engine("level-in-input").await;
    let batch = reads(&[
        ("e1", "wks-1", "1"),
        ("e2", "wks-1", "3"),
        ("e3", "wks-2", "secret"),
        ("e4", "wks-2", "4"),
        ("e5", "wks-3", "5"),
    ]);
    let processed = engine.process(&batch).await;
    assert_eq!(
        fired(&processed),
        vec![
            ("wks-1".into(), vec!["e2".into()]),
            ("wks-2".into(), vec!["e4".into()]),
            ("wks-3".into(), vec!["e5".into()]),
        ],
        "the attack beside the bad event is raised"
    );
    assert_eq!(processed.errors.len(), 1);
    let error = processed.errors[0].to_string();
    assert!(error.contains("1 of 5 events were left out (event ids: e3)"), "{error}");
    assert!(
        error.contains("input.sql failed"),
        "names the stage and its cause: {error}"
    );
    assert!(error.contains("secret"), "and the value it failed on: {error}");
    assert_eq!(not_evaluated(&metrics, "level-in-input"), 1);
    let status = &engine.statuses()["level-in-input"];
    assert_eq!((status.errors, status.failures[0].events), (1, 1));
    assert_eq!(status.failures[0].event_ids, "e3");
}

#[tokio::test]
async fn an_event_match_sql_fails_on_is_not_kept_so_it_fails_no_later_evaluation() {
    let (mut engine, metrics) = engine("level-in-match").await;
    let batch = reads(&[
        ("e1", "wks-1", "3"),
        ("e2", "wks-2", "secret"),
        ("e3", "wks-2", "4"),
        ("e4", "wks-2", "1"),
    ]);
    let processed = engine.process(&batch).await;
    assert_eq!(
        fired(&processed),
        vec![
            ("wks-1".into(), vec!["e1".into()]),
            ("wks-2".into(), vec!["e3".into(), "e4".into()])
        ],
        "the bad event's own host is evaluated too, without it"
    );
    let error = processed.errors[0].to_string();
    assert!(error.contains("1 of 4 events were left out (event ids: e2)"), "{error}");
    assert!(error.contains("match.sql failed"), "{error}");
    // Left out means not kept: the host's next events evaluate whole, without errors.
    let processed = engine.process(&reads(&[("e5", "wks-2", "5")])).await;
    assert!(processed.errors.is_empty(), "{:?}", processed.errors);
    assert_eq!(
        fired(&processed),
        vec![("wks-2".into(), vec!["e3".into(), "e4".into(), "e5".into()])]
    );
    assert_eq!(not_evaluated(&metrics, "level-in-match"), 1);
}

#[tokio::test]
async fn a_rule_that_fails_on_every_event_is_not_retried_without_end() {
    let (mut engine, metrics) = engine("level-in-input").await;
    let words: Vec<(String, &str, &str)> = (0..64).map(|n| (format!("w{n}"), "wks-1", "word")).collect();
    let words: Vec<(&str, &str, &str)> = words
        .iter()
        .map(|(id, host, level)| (id.as_str(), *host, *level))
        .collect();
    let processed = engine.process(&reads(&words)).await;
    let error = processed.errors[0].to_string();
    assert!(error.contains("64 of 64 events were left out"), "{error}");
    assert!(
        error.contains("(8 tries in parts)"),
        "gives up once no part succeeds: {error}"
    );
    assert!(error.contains("w0, w1,") && error.contains("(64 in all)"), "{error}");
    // The next batch fails whole, without tries in parts, until one succeeds.
    let processed = engine.process(&reads(&words)).await;
    let error = processed.errors[0].to_string();
    assert!(!error.contains("left out"), "{error}");
    assert!(error.contains("input.sql failed"), "{error}");
    let processed = engine.process(&reads(&[("ok", "wks-1", "3")])).await;
    assert!(processed.errors.is_empty());
    assert_eq!(processed.matches.len(), 1);
    let processed = engine
        .process(&reads(&[("bad", "wks-1", "x"), ("good", "wks-1", "3")]))
        .await;
    assert_eq!(
        fired(&processed),
        vec![("wks-1".into(), vec!["good".into()])],
        "tried in parts again"
    );
    assert_eq!(not_evaluated(&metrics, "level-in-input"), 64 + 64 + 1);
}
