//! A rule reloaded with an anchor (`anchor.rs`) keeps its rows, and the anchor rows among
//! them count: a match the old version would have found, the new one finds.

use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use cordon_detections::DetectionMetrics;
use cordon_detections::engine::{Engine, EngineConfig};
use cordon_detections::fixtures::{self, FixtureEvent};

const RULE: &str = "token-refresh-after-pop-failure";
const ANCHOR: &str = "anchor = { event_name = [\"credential.pop_failure\"] }";

fn event(value: serde_json::Value) -> RecordBatch {
    let event = FixtureEvent {
        value,
        arrival: None,
        provenance: None,
        line: 1,
    };
    fixtures::to_batches(Path::new("anchor-test"), &[event])
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
}

fn at(seconds_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds_ago)).to_rfc3339()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_given_an_anchor_on_reload_counts_the_anchor_rows_it_kept() {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules").join(RULE);
    let rules = tempfile::tempdir().unwrap();
    let dir = rules.path().join(RULE);
    std::fs::create_dir(&dir).unwrap();
    for file in ["input.sql", "match.sql"] {
        std::fs::copy(source.join(file), dir.join(file)).unwrap();
    }
    let settings = std::fs::read_to_string(source.join("rule.toml")).unwrap();
    assert!(settings.contains(ANCHOR), "the rule's anchor changed: adapt this test");
    std::fs::write(dir.join("rule.toml"), settings.replace(ANCHOR, "")).unwrap();
    let reference =
        cordon_detections::reference::load_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference")).unwrap();
    let mut engine = Engine::new(EngineConfig::default(), reference, DetectionMetrics::default());
    engine.install(engine.compile(&dir).await.unwrap().unwrap());
    let failure = event(serde_json::json!({
        "time": at(60), "host.id": "wks-anchor", "event.name": "credential.pop_failure",
        "event.id": "x1", "user.name": "ann", "credential.token_id": "tok-1",
        "credential.failure_reason": "dpop proof signed by unknown key",
    }));
    assert!(engine.process(&failure).await.matches.is_empty());

    std::fs::write(dir.join("rule.toml"), &settings).unwrap();
    engine.install(engine.compile(&dir).await.unwrap().unwrap());
    let refresh = event(serde_json::json!({
        "time": at(30), "host.id": "wks-anchor", "event.name": "credential.token",
        "event.id": "t1", "user.name": "ann", "credential.action": "refresh",
        "credential.token_id": "tok-1",
    }));
    let processed = engine.process(&refresh).await;
    assert!(processed.errors.is_empty(), "{:?}", processed.errors);
    assert_eq!(
        processed.matches.len(),
        1,
        "the failure kept before the reload is the host's anchor"
    );
}
