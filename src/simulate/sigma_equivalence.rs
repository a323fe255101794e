//! A Sigma correlation imported by `cordon rules import-sigma`
//! (detections/sigma/correlations/repeated-policy-denies-sigma.yml) fires, over the
//! simulator's traffic, where Cordon's own equivalent rule (repeated-policy-denies) does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use cordon_detections::EngineConfig;
use cordon_detections::fixtures;
use cordon_detections::sigma::{self, SigmaMapping};
use cordon_schemas::EventBatchBuilder;
use cordon_schemas::flat::flat_json_to_event;

use super::{Scenario, SimConfig, Simulator};

/// The simulator's events as the server would get them: in batches, arriving at
/// their event time.
fn simulated_batches() -> Vec<RecordBatch> {
    let mut simulator = Simulator::new(SimConfig {
        rate: 40.0,
        duration: Duration::from_secs(90),
        start_unix_nano: 1_768_471_445_000_000_000,
        scenarios: Scenario::ALL.to_vec(),
        ..SimConfig::default()
    });
    let events = simulator.events_until(i64::MAX);
    events
        .chunks(250)
        .map(|chunk| {
            let mut builder = EventBatchBuilder::with_capacity(chunk.len()).allowing_own_kinds();
            for event in chunk {
                let json = event.to_json(false);
                let record = flat_json_to_event(&json).expect("the simulator sends contract events");
                builder.append(&record, event.time_unix_nano).expect("valid");
            }
            builder.finish()
        })
        .collect()
}

fn entities(alerts: &[fixtures::ExpectedAlert]) -> BTreeSet<(Option<String>, Option<String>)> {
    alerts
        .iter()
        .map(|alert| {
            (
                alert.entity.get("user_name").cloned().flatten(),
                alert.entity.get("gen_ai_agent_id").cloned().flatten(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_sigma_correlation_fires_where_the_builtin_rule_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let report = sigma::import(
        &[root.join("detections/sigma/correlations/repeated-policy-denies-sigma.yml")],
        out.path(),
        &SigmaMapping::builtin(),
        &BTreeMap::new(),
        &EngineConfig::default(),
    )
    .await
    .unwrap();
    let imported = &report.imported[0];
    assert!(imported.correlation, "{report:#?}");
    let batches = simulated_batches();
    let config = EngineConfig::default();
    let builtin = fixtures::produce(
        &root.join("detections/rules/repeated-policy-denies"),
        batches.clone(),
        &BTreeMap::new(),
        &config,
    )
    .await
    .unwrap();
    let from_sigma = fixtures::produce(&out.path().join(&imported.id), batches, &BTreeMap::new(), &config)
        .await
        .unwrap();
    let (builtin, from_sigma) = (entities(&builtin.alerts), entities(&from_sigma.alerts));
    assert!(!builtin.is_empty(), "the simulator's scenario raises the built-in rule");
    assert_eq!(from_sigma, builtin, "the same users and agents");
}
