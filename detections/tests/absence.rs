//! The absence shape (detections/README.md, "Absence"): the worked example under
//! `tests/absence/` fires when a PoP failure is not followed by a revocation within
//! the window, once the host's clock has passed the window's end by the lateness, and
//! never before; its fixtures run one by one and in one batch like the built-in rules'.

use std::path::PathBuf;

use cordon_detections::EngineConfig;

#[tokio::test]
async fn a_rule_fires_on_what_did_not_happen_only_once_its_window_is_final() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"));
    let reference = cordon_detections::reference::load_dir(&dir.join("reference")).unwrap();
    let results = cordon_detections::fixtures::run_all(
        &dir.join("tests/absence"),
        &reference,
        &EngineConfig::default(),
        None,
        false,
    )
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
    assert_eq!(results.len(), 6, "{results:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
