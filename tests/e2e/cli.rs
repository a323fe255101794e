//! The command line as a user meets it: settings errors, simulate output, query formats.

use std::process::Command;

fn cordon(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(args)
        .env("CORDON_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn a_bad_setting_is_reported_with_its_name_and_what_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cordon.toml");
    std::fs::write(&file, "[storage]\nflush_intervl = \"5s\"\n").unwrap();
    let output = cordon(&["serve", "--config", file.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown field: found `flush_intervl`") || stderr.contains("flush_intervl"),
        "{stderr}"
    );
    assert!(
        stderr.contains("flush_interval"),
        "the valid names are listed: {stderr}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["serve"])
        .env("CORDON_STORAGE__FLUSH_INTERVAL", "banana")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("flush_interval") && stderr.contains("CORDON_STORAGE__FLUSH_INTERVAL"),
        "{stderr}"
    );
}

#[test]
fn simulate_is_deterministic_and_writes_contract_json_lines() {
    let args = [
        "simulate",
        "--to",
        "jsonl",
        "--pace",
        "fast",
        "--rate",
        "40",
        "--duration",
        "30s",
        "--start",
        "2026-01-15T10:00:00Z",
        "--scenario",
        "all",
        "--seed",
        "7",
    ];
    let first = cordon(&args);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let second = cordon(&args);
    assert_eq!(first.stdout, second.stdout, "same seed, same events");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&first.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(lines.len() >= 1_200, "{}", lines.len());
    for line in &lines {
        let record = cordon_schemas::flat::flat_json_to_event(line).unwrap();
        assert!(record.validate().is_ok(), "{line}");
    }
    assert!(lines.iter().any(|line| line["event.name"] == "credential.pop_failure"));
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(
        stderr.matches("injecting").count(),
        cordon::simulate::Scenario::ALL.len(),
        "{stderr}"
    );

    let unknown = cordon(&["simulate", "--scenario", "nope", "--to", "jsonl"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("known: all, sensitive-read-then-egress"));
}

#[test]
fn query_prints_table_json_and_csv_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let sql = "SELECT 1 AS one, 'a,b' AS text";
    let table = cordon(&["query", "--data-dir", data, sql]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("| one | text |"));
    let json = cordon(&["query", "--data-dir", data, "--format", "json", sql]);
    assert_eq!(
        String::from_utf8_lossy(&json.stdout).trim(),
        r#"[{"one":1,"text":"a,b"}]"#
    );
    let csv = cordon(&["query", "--data-dir", data, "--format", "csv", sql]);
    assert_eq!(String::from_utf8_lossy(&csv.stdout).trim(), "one,text\n1,\"a,b\"");
    let write = cordon(&["query", "--data-dir", data, "CREATE TABLE x AS SELECT 1"]);
    assert!(!write.status.success());
    assert!(
        String::from_utf8_lossy(&write.stderr).contains("only reading is allowed"),
        "{}",
        String::from_utf8_lossy(&write.stderr)
    );
}

#[test]
fn rules_check_names_the_file_line_and_column_of_a_bad_rule() {
    let detections = crate::detections::scratch_detections();
    let match_sql = detections.path().join("rules/telemetry-gap/match.sql");
    let good = std::fs::read_to_string(&match_sql).unwrap();
    std::fs::write(&match_sql, good.replace("SELECT host_id,", "SELECT host_idd,")).unwrap();
    let input_sql = detections.path().join("rules/telemetry-tampering/input.sql");
    std::fs::write(&input_sql, "DROP TABLE events").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["rules", "check"])
        .env("CORDON_DETECTIONS__RULES_DIR", detections.path().join("rules"))
        .env("CORDON_DETECTIONS__REFERENCE_DIR", detections.path().join("reference"))
        .env("CORDON_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    let line = good.lines().position(|line| line.contains("SELECT host_id,")).unwrap() + 1;
    let column = good.lines().nth(line - 1).unwrap().find("host_id").unwrap() + 1;
    assert!(
        stdout.contains(&format!("telemetry-gap/match.sql:{line}:{column}: ")) && stdout.contains("host_idd"),
        "{stdout}"
    );
    assert!(
        stdout.contains("telemetry-tampering/input.sql") && stdout.contains("only reading is allowed"),
        "{stdout}"
    );
    assert!(stdout.contains("ok   exfil-attempt-chain"), "{stdout}");
}

/// The command runs a rule's fixture cases and names each (every case of every rule is
/// its own test in `cargo test -p cordon-detections --test fixtures`).
#[test]
fn rules_test_runs_a_rules_fixtures_and_names_each_case() {
    let rule = "repeated-tool-rejections";
    let output = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["rules", "test", rule])
        .env_remove("CORDON_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    // At the default log level the results are not buried in the stores' bookkeeping.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("migrated"), "{stderr}");
    let cases: Vec<String> = std::fs::read_dir(
        crate::common::project_dir()
            .join("detections/rules")
            .join(rule)
            .join("tests"),
    )
    .unwrap()
    .filter_map(|entry| {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        name.strip_suffix(".jsonl").map(str::to_string)
    })
    .collect();
    assert!(cases.len() >= 4, "{cases:?}");
    for case in &cases {
        assert!(stdout.contains(&format!("ok    {rule}/{case}")), "{case}: {stdout}");
    }
    assert!(
        stdout.contains(&format!("{} cases, {} passed, 0 failed", cases.len(), cases.len())),
        "{stdout}"
    );
}

/// The attacks of the simulator, from an hour ago, sent to a server that is then
/// stopped; its data dir and the alerts it raised live. Recent, because the backtest judges events by when they
/// arrived, as the live server did: a day-old event received now is too old for the
/// default settings, and the backtest runs on those.
async fn stored_attacks(
    start_unix_nano: i64,
) -> (tempfile::TempDir, cordon::simulate::Simulator, Vec<serde_json::Value>) {
    use cordon::simulate::{Scenario, SimConfig, Simulator};
    let mut simulator = Simulator::new(SimConfig {
        seed: 21,
        hosts: 10,
        rate: 20.0,
        duration: std::time::Duration::from_secs(90),
        start_unix_nano,
        scenarios: Scenario::ALL.to_vec(),
        ..SimConfig::default()
    });
    let events = simulator.events_until(i64::MAX);
    let server = crate::common::TestServer::start().await;
    let mut sender = cordon::simulate::senders::Sender::grpc(&server.grpc_url())
        .await
        .unwrap();
    let mut report = cordon::simulate::senders::SendReport::default();
    sender.send(&events, &mut report).await.unwrap();
    server.detections_idle().await;
    let live = server.alerts().await;
    (server.stop().await, simulator, live)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backtest_lists_what_the_rules_would_have_raised_from_stored_parquet() {
    let hour = 3_600_000_000_000;
    let start = chrono::Utc::now().timestamp_nanos_opt().unwrap() - hour;
    let (dir, simulator, live) = stored_attacks(start).await;
    let backtested = crate::common::backtest_json(dir.path(), start - hour, start + hour, &[], &[]).await["alerts"]
        .as_array()
        .unwrap()
        .clone();
    // What the live server raised over the same events, alert for alert (the simulator's
    // background may cross a threshold of its own; both must agree on it).
    let shapes = |alerts: &[serde_json::Value]| {
        let mut shapes: Vec<String> = alerts
            .iter()
            .map(|alert| {
                format!(
                    "{} {} {} {}",
                    alert["rule_id"], alert["entity"], alert["first_seen"], alert["last_seen"]
                )
            })
            .collect();
        shapes.sort();
        shapes
    };
    assert_eq!(shapes(&backtested), shapes(&live), "backtest equals live");
    for injection in simulator.injections() {
        assert!(
            backtested
                .iter()
                .any(|alert| alert["rule_id"] == injection.rule_id && alert["host_id"] == injection.host_id.as_str()),
            "{} on {}: {backtested:#?}",
            injection.rule_id,
            injection.host_id
        );
    }

    // --diff: a changed rule against what the server raised. repeated-policy-denies with
    // a threshold nobody reaches would no longer raise its alert; the rest is unchanged.
    let changed = crate::detections::scratch_detections();
    let settings = changed.path().join("rules/repeated-policy-denies/rule.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(&settings, text.replace("min_denies = 5", "min_denies = 500")).unwrap();
    let rules = changed.path().join("rules");
    let diff = crate::common::backtest_json(
        dir.path(),
        start - hour,
        start + hour,
        &["--diff"],
        &[("CORDON_DETECTIONS__RULES_DIR", rules.as_path())],
    )
    .await;
    let rules_of = |key: &str| -> Vec<String> {
        diff[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|alert| alert["rule_id"].as_str().unwrap().to_string())
            .collect()
    };
    let live_denies = live
        .iter()
        .filter(|alert| alert["rule_id"] == "repeated-policy-denies")
        .count();
    assert!(live_denies >= 1, "{live:#?}");
    assert_eq!(
        rules_of("removed"),
        vec!["repeated-policy-denies"; live_denies],
        "{diff:#}"
    );
    assert!(rules_of("added").is_empty(), "{diff:#}");
    assert_eq!(rules_of("kept").len(), live.len() - live_denies, "{diff:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_list_shows_the_api_from_the_command_line() {
    use cordon::api::Role;
    let server = crate::common::TestServer::start().await;
    let start = chrono::Utc::now().timestamp_nanos_opt().unwrap() - 60_000_000_000;
    let mut simulator = cordon::simulate::Simulator::new(cordon::simulate::SimConfig {
        seed: 2,
        hosts: 4,
        rate: 5.0,
        duration: std::time::Duration::from_secs(60),
        start_unix_nano: start,
        scenarios: vec![cordon::simulate::Scenario::AgentSpawnedNetworkTool],
        ..cordon::simulate::SimConfig::default()
    });
    let events = simulator.events_until(i64::MAX);
    let host = simulator.injections()[0].host_id.clone();
    let mut sender = cordon::simulate::senders::Sender::grpc(&server.grpc_url())
        .await
        .unwrap();
    sender
        .send(&events, &mut cordon::simulate::senders::SendReport::default())
        .await
        .unwrap();
    server.detections_idle().await;
    let url = server.api_url();
    let run = move |token: Option<String>, extra: Vec<&'static str>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut command = Command::new(env!("CARGO_BIN_EXE_cordon"));
                command
                    .args(["alerts", "list", "--api-url", &url])
                    .args(extra)
                    .env_remove("CORDON_TOKEN")
                    .env_remove("CORDON_ADMIN_TOKEN");
                if let Some(token) = token {
                    command.env("CORDON_TOKEN", token);
                }
                command.output().unwrap()
            })
            .await
            .unwrap()
        }
    };
    let output = run(Some(crate::common::token_for(Role::Analyst)), vec![]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("agent-spawned-network-tool") && stdout.contains(&host),
        "{stdout}"
    );
    assert!(stdout.contains("1 alert(s)"), "{stdout}");
    let output = run(
        Some(crate::common::token_for(Role::Responder)),
        vec!["--rule", "telemetry-gap"],
    )
    .await;
    assert!(String::from_utf8_lossy(&output.stdout).contains("0 alert(s)"));
    let output = run(Some("wrong-token-wrong-token".into()), vec![]).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("401"), "{output:?}");
    let output = run(None, vec![]).await;
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no API token"),
        "{output:?}"
    );
    server.stop().await;
}

#[test]
fn bench_ingest_measures_grpc_and_http_json_and_the_whole_server_and_stores_every_event() {
    let output = cordon(&[
        "bench",
        "ingest",
        "--events",
        "4000",
        "--batch",
        "1000",
        "--rounds",
        "1",
        "--server-rounds",
        "1",
        "--http-json-rounds",
        "1",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "ingest stage alone",
        "whole server",
        "protobuf decode, 1 core",
        "OTLP/HTTP JSON -> durable storage",
        "JSON decode (serde into the OTLP types), 1 core",
        "JSON -> Arrow (cordon, strings borrowed), 1 core",
        "per event against OTLP/gRPC",
    ] {
        assert!(stdout.contains(line), "no {line:?} in {stdout}");
    }
    assert_eq!(
        stdout.matches("4000 stored").count(),
        3,
        "every event stored in each target, over each protocol: {stdout}"
    );
    assert_eq!(stdout.matches("ratio to decode").count(), 3, "{stdout}");
}
