//! The built-in rules under `detections/rules/` load and plan (their fixtures run one
//! test a case in `fixtures.rs`).

use std::path::PathBuf;

use cordon_detections::{DetectionMetrics, Engine, EngineConfig};

/// Read at run time: `env!` would bake in the folder the test was built in, and a
/// target directory shared between checkouts (CI's cache) then points at another one.
fn detections_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"))
}

#[tokio::test]
async fn every_builtin_rule_plans() {
    let reference = cordon_detections::reference::load_dir(&detections_dir().join("reference")).unwrap();
    let mut engine = Engine::new(EngineConfig::default(), reference, DetectionMetrics::default());
    let errors = engine.load_dir(&detections_dir().join("rules")).await.unwrap();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(messages.is_empty(), "{}", messages.join("\n"));
    // Every rule folder loads: counted from the folder, not copied here by hand.
    let folders = std::fs::read_dir(detections_dir().join("rules"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.path().join("rule.toml").is_file())
        })
        .count();
    assert_eq!(engine.rule_ids().len(), folders, "{:?}", engine.rule_ids());
}

/// `EXISTS (SELECT 1 FROM <reference table> p WHERE path_match(x, p.pattern))` and its
/// kin are planned as one compiled matcher per table (`reference_match.rs`), never as
/// a nested-loop join of every event with every pattern.
#[tokio::test]
async fn reference_table_patterns_are_matched_without_a_nested_loop() {
    let reference = cordon_detections::reference::load_dir(&detections_dir().join("reference")).unwrap();
    let engine = Engine::new(EngineConfig::default(), reference, DetectionMetrics::default());
    let mut matchers = 0;
    for dir in cordon_detections::rule::rule_dirs(&detections_dir().join("rules")).unwrap() {
        let compiled = engine.compile(&dir).await.unwrap().expect("a rule folder");
        let stages = [
            Some(&compiled.input),
            Some(&compiled.matcher),
            compiled.compact.as_ref(),
        ];
        for stage in stages.into_iter().flatten() {
            let plan = stage.plan_text();
            let looped = plan
                .lines()
                .any(|line| line.contains("NestedLoopJoinExec") && line.contains("_match("));
            assert!(!looped, "{}:\n{plan}", dir.display());
            matchers += plan.matches("_match_any(").count();
        }
    }
    // Seven rules test paths or destinations against reference tables, some twice.
    assert!(
        matchers >= 7,
        "only {matchers} compiled matchers in the built-in rules' plans"
    );
}

fn write_rule(dir: &std::path::Path, id: &str, input: &str, matcher: &str) {
    let rule = dir.join(id);
    std::fs::create_dir_all(&rule).unwrap();
    std::fs::write(
        rule.join("rule.toml"),
        "title = \"t\"\ndescription = \"d\"\nseverity = \"low\"\nwindow = \"1m\"\npartition_by = [\"host_id\"]\nsuppression = \"1h\"\n",
    )
    .unwrap();
    std::fs::write(rule.join("input.sql"), input).unwrap();
    std::fs::write(rule.join("match.sql"), matcher).unwrap();
}

/// Runs a `light` rule beside a `heavy` one whose match.sql is `heavy_match`, under
/// `memory_bytes`, over five denies; the heavy rule must fail alone, with `expected`
/// in its error.
async fn heavy_rule_fails_alone(heavy_match: &str, memory_bytes: usize, expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = "SELECT time, host_id, event_id FROM events";
    write_rule(
        dir.path(),
        "light",
        input,
        "SELECT host_id, min(time) AS first_seen, max(time) AS last_seen, array_agg(event_id) AS evidence FROM kept GROUP BY host_id",
    );
    write_rule(dir.path(), "heavy", input, heavy_match);
    let mut config = EngineConfig::default();
    config.limits.memory_bytes = memory_bytes;
    config.limits.timeout = std::time::Duration::from_secs(20);
    let mut engine = Engine::new(config, Default::default(), DetectionMetrics::default());
    let errors = engine.load_dir(dir.path()).await.unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let case = detections_dir().join("rules/repeated-policy-denies/tests/fire-five-denies.jsonl");
    let batch = cordon_detections::fixtures::read_events(&case).unwrap().remove(0);
    let processed = engine.process(&batch).await;
    assert_eq!(processed.errors.len(), 1, "{:?}", processed.errors);
    let message = processed.errors[0].to_string();
    assert!(
        message.contains("rule heavy") && message.contains("match.sql"),
        "{message}"
    );
    assert!(message.contains(expected), "{message}");
    assert_eq!(processed.matches.len(), 1, "the light rule still ran");
    assert_eq!(processed.matches[0].rule_id, "light");
    let statuses = engine.statuses();
    assert!(statuses["heavy"].errors >= 1);
    assert!(statuses["heavy"].last_error.is_some());
}

#[tokio::test]
async fn a_rule_over_its_memory_limit_fails_alone() {
    // Two million rows to sort, one row out: past the limit it fails at once, rather
    // than writing the rows to a temporary disk and running on (as it did before).
    heavy_rule_fails_alone(
        "SELECT host_id, min(time) AS first_seen, max(time) AS last_seen, array_agg(event_id) AS evidence \
         FROM (SELECT host_id, time, event_id, row_number() OVER (ORDER BY g.value DESC, event_id) AS n \
               FROM kept CROSS JOIN generate_series(1, 2000000) AS g) \
         WHERE n = 1 GROUP BY host_id",
        16 << 20,
        "Resources exhausted",
    )
    .await;
}

#[tokio::test]
async fn a_rule_returning_more_rows_than_its_memory_limit_fails_alone() {
    // 400,000 rows (15 MB) streamed out of a cross join: no operator holds them, so
    // only the gathering of the output can refuse them (before, each became an alert).
    heavy_rule_fails_alone(
        "SELECT host_id, time AS first_seen, time AS last_seen, make_array(event_id) AS evidence \
         FROM kept CROSS JOIN generate_series(1, 400000) AS g",
        4 << 20,
        "match.sql returned more than 4 MiB of rows",
    )
    .await;
}

#[tokio::test]
async fn a_rule_past_its_time_limit_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    write_rule(
        dir.path(),
        "slow",
        "SELECT time, host_id, event_id FROM events",
        "SELECT host_id, min(time) AS first_seen, max(time) AS last_seen, make_array(max(event_id)) AS evidence \
         FROM kept CROSS JOIN generate_series(1, 2000000000) AS g WHERE g.value < 0 GROUP BY host_id",
    );
    let mut config = EngineConfig::default();
    config.limits.timeout = std::time::Duration::from_millis(300);
    let mut engine = Engine::new(config, Default::default(), DetectionMetrics::default());
    assert!(engine.load_dir(dir.path()).await.unwrap().is_empty());
    let case = detections_dir().join("rules/repeated-policy-denies/tests/fire-five-denies.jsonl");
    let batch = cordon_detections::fixtures::read_events(&case).unwrap().remove(0);
    let started = std::time::Instant::now();
    let processed = engine.process(&batch).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let message = processed.errors.first().map(ToString::to_string).unwrap_or_default();
    assert!(message.contains("took longer than 300ms"), "{message}");
}
