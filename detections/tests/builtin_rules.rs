//! The built-in rules under `detections/rules/` load, plan and pass their fixtures.

use std::path::PathBuf;

use cordon_detections::{DetectionMetrics, Engine, EngineConfig};

fn detections_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn every_builtin_rule_plans() {
    let reference = cordon_detections::reference::load_dir(&detections_dir().join("reference")).unwrap();
    let mut engine = Engine::new(EngineConfig::default(), reference, DetectionMetrics::default());
    let errors = engine.load_dir(&detections_dir().join("rules")).await.unwrap();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(messages.is_empty(), "{}", messages.join("\n"));
    assert_eq!(engine.rule_ids().len(), 7, "{:?}", engine.rule_ids());
}

#[tokio::test]
async fn every_builtin_fixture_passes() {
    let dir = detections_dir();
    let reference = cordon_detections::reference::load_dir(&dir.join("reference")).unwrap();
    let results =
        cordon_detections::fixtures::run_all(&dir.join("rules"), &reference, &EngineConfig::default(), None, false)
            .await
            .unwrap();
    let failures: Vec<String> = results
        .iter()
        .filter_map(|result| {
            result
                .failure
                .as_ref()
                .map(|failure| format!("{}/{}: {failure}", result.rule, result.case))
        })
        .collect();
    assert!(results.len() >= 50, "{} cases", results.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
