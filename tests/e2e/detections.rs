//! Detections end to end: simulated attacks sent over OTLP/gRPC raise their rule's
//! alert on the right entity, once, even when everything is sent again and after a
//! restart; benign background raises nothing; the alert API checks its tokens.

use std::collections::BTreeMap;
use std::time::Duration;

use cordon::api::Role;
use cordon::simulate::{Scenario, SimConfig, Simulator};
use cordon_schemas::FlatEvent;
use serde_json::Value;

use crate::common::TestServer;

/// Whether the rule's alert names the injected user as well as the host: read from
/// its rule.toml, not copied here.
fn keyed_by_user(rule_id: &str) -> bool {
    let file = crate::common::project_dir()
        .join("detections/rules")
        .join(rule_id)
        .join(cordon_detections::rule::SETTINGS_FILE);
    let settings = cordon_detections::settings::RuleSettings::load(&file).unwrap();
    settings.entity.iter().any(|column| column == "user_name")
}

/// Scenarios the pipeline cannot yet see (none).
const NOT_YET_DETECTED: &[Scenario] = &[];

fn attack_run(start_unix_nano: i64) -> Simulator {
    Simulator::new(SimConfig {
        seed: 7,
        hosts: 16,
        rate: 40.0,
        duration: Duration::from_secs(120),
        start_unix_nano,
        scenarios: Scenario::ALL.to_vec(),
        ..SimConfig::default()
    })
}

/// Alerts by rule id.
fn by_rule(alerts: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for alert in alerts {
        out.entry(alert["rule_id"].as_str().unwrap().to_string())
            .or_default()
            .push(alert.clone());
    }
    out
}

fn check_one_alert_per_attack(simulator: &Simulator, alerts: &[Value]) {
    let grouped = by_rule(alerts);
    for injection in simulator.injections() {
        if NOT_YET_DETECTED.contains(&injection.scenario) {
            continue;
        }
        let found = grouped.get(injection.rule_id).cloned().unwrap_or_default();
        assert_eq!(found.len(), 1, "{}: {found:#?}", injection.rule_id);
        let alert = &found[0];
        assert_eq!(alert["host_id"], injection.host_id, "{}: {alert:#}", injection.rule_id);
        if keyed_by_user(injection.rule_id) {
            assert_eq!(
                alert["user_name"], injection.user_name,
                "{}: {alert:#}",
                injection.rule_id
            );
        }
        assert!(!alert["evidence"].as_array().unwrap().is_empty());
        for evidence in alert["evidence"].as_array().unwrap() {
            assert!(
                evidence["time"].is_string() && evidence["kind"].is_string(),
                "{evidence}"
            );
        }
    }
    let expected: Vec<&str> = simulator
        .injections()
        .iter()
        .filter(|injection| !NOT_YET_DETECTED.contains(&injection.scenario))
        .map(|injection| injection.rule_id)
        .collect();
    let unexpected: Vec<&String> = grouped
        .keys()
        .filter(|rule| !expected.contains(&rule.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "alerts nobody injected: {unexpected:?} in {alerts:#?}"
    );
}

async fn wait_for_rules(server: &TestServer, simulator: &Simulator) -> Vec<Value> {
    let expected = simulator.injections().len() - NOT_YET_DETECTED.len();
    for _ in 0..300 {
        server.detections_idle().await;
        let alerts = server.alerts().await;
        if by_rule(&alerts).len() >= expected {
            return alerts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.alerts().await
}

/// Alert identity and folding state, to compare before and after.
fn fingerprint(alerts: &[Value]) -> Vec<(String, String, u64, usize)> {
    let mut out: Vec<_> = alerts
        .iter()
        .map(|alert| {
            (
                alert["id"].as_str().unwrap().to_string(),
                alert["rule_id"].as_str().unwrap().to_string(),
                alert["count"].as_u64().unwrap(),
                alert["evidence"].as_array().unwrap().len(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_attack_raises_its_alert_once_even_resent_and_after_restart() {
    // Event times near now, so the restart below replays them into the windows, and
    // all in the past: the run lasts 5.5 min (a gap is final once its host's clock has
    // passed it by the lateness), and events over a minute ahead move no clock.
    let start = chrono::Utc::now().timestamp_nanos_opt().unwrap() - 400_000_000_000;
    let mut simulator = attack_run(start);
    let events = simulator.events_until(i64::MAX);
    let server = TestServer::start().await;
    server.send_all(&events).await;
    let alerts = wait_for_rules(&server, &simulator).await;
    check_one_alert_per_attack(&simulator, &alerts);
    let before = fingerprint(&alerts);

    // Everything again: storage drops the redeliveries, nothing new reaches the rules.
    server.send_all(&events).await;
    server.detections_idle().await;
    assert_eq!(
        fingerprint(&server.alerts().await),
        before,
        "re-sent events changed the alerts"
    );

    // A restart replays the recent events into the windows: the same matches again,
    // folded into nothing new.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    server.detections_idle().await;
    assert_eq!(fingerprint(&server.alerts().await), before, "the restart refired");
    server.send_all(&events).await;
    server.detections_idle().await;
    assert_eq!(fingerprint(&server.alerts().await), before, "re-sent after restart");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_minutes_of_benign_background_raise_nothing() {
    let mut simulator = Simulator::new(SimConfig {
        seed: 11,
        hosts: 60,
        rate: 60.0,
        duration: Duration::from_secs(600),
        start_unix_nano: chrono::Utc::now().timestamp_nanos_opt().unwrap() - 700_000_000_000,
        scenarios: Vec::new(),
        ..SimConfig::default()
    });
    let events = simulator.events_until(i64::MAX);
    assert!(events.len() >= 30_000, "{} events", events.len());
    let server = TestServer::start().await;
    server.send_all(&events).await;
    server.detections_idle().await;
    let alerts = server.alerts().await;
    assert!(alerts.is_empty(), "benign background raised {alerts:#?}");
    // The rules did run: every rule was evaluated on these events.
    let (status, rules) = server.api_get("/api/v1/rules", Some(Role::Engineer)).await;
    assert_eq!(status, 200);
    let rules = rules["rules"].as_array().unwrap();
    let folders = crate::common::builtin_rule_count();
    assert_eq!(rules.len(), folders, "{rules:#?}");
    for rule in rules {
        assert_eq!(rule["errors"], 0, "{rule:#}");
        assert!(rule["load_error"].is_null(), "{rule:#}");
        // The anchor its rule.toml declares, for analysts to see why hosts are skipped.
        let id = rule["id"].as_str().unwrap();
        let toml = crate::common::project_dir()
            .join("detections/rules")
            .join(id)
            .join("rule.toml");
        let settings = cordon_detections::settings::RuleSettings::load(&toml).unwrap();
        assert_eq!(rule["anchor"], serde_json::to_value(&settings.anchor).unwrap(), "{id}");
    }
    assert!(
        rules.iter().any(|rule| rule["anchor"].is_object()),
        "no built-in rule shows an anchor: {rules:#?}"
    );
    let evaluated = rules
        .iter()
        .filter(|rule| rule["evaluations"].as_u64().unwrap() > 0)
        .count();
    assert_eq!(evaluated, folders, "{rules:#?}");
    server.stop().await;
}

#[tokio::test]
async fn the_alert_api_wants_a_token_and_answers_each_role() {
    let server = TestServer::start().await;
    for path in ["/api/v1/alerts", "/api/v1/alerts/alr-nope", "/api/v1/rules"] {
        let (status, body) = server.api_get(path, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        let response = reqwest::Client::new()
            .get(format!("{}{path}", server.api_url()))
            .bearer_auth("not-a-token-anyone-was-given")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{path} with a wrong token");
        for role in Role::ALL {
            let (status, body) = server.api_get(path, Some(role)).await;
            let expected = if path.contains("alr-nope") { 404 } else { 200 };
            assert_eq!(status, expected, "{path} as {}: {body}", role.as_str());
        }
    }
    let (status, body) = server
        .api_get("/api/v1/alerts?status=nonsense", Some(Role::Analyst))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("open, acknowledged or closed"),
        "{body}"
    );
    server.stop().await;
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The detections folder copied somewhere a test may edit it.
pub fn scratch_detections() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = crate::common::project_dir().join("detections");
    copy_dir(&source.join("rules"), &dir.path().join("rules"));
    copy_dir(&source.join("reference"), &dir.path().join("reference"));
    dir
}

async fn rule_view(server: &TestServer, id: &str) -> Value {
    let (status, body) = server.api_get("/api/v1/rules", Some(Role::Engineer)).await;
    assert_eq!(status, 200);
    body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_edit_keeps_the_last_good_rule_running_and_is_reported() {
    let detections = scratch_detections();
    let rules = detections.path().join("rules");
    let (rules_dir, reference_dir) = (rules.clone(), detections.path().join("reference"));
    let server = TestServer::start_with(move |config| {
        config.detections.rules_dir = rules_dir;
        config.detections.reference_dir = reference_dir;
        config.detections.reload_interval = Duration::from_millis(100);
    })
    .await;
    let match_sql = rules.join("repeated-policy-denies/match.sql");
    let good = std::fs::read_to_string(&match_sql).unwrap();
    std::fs::write(
        &match_sql,
        good.replace("FROM decisions last", "FROM decisions last WHER"),
    )
    .unwrap();
    let mut view = Value::Null;
    for _ in 0..100 {
        view = rule_view(&server, "repeated-policy-denies").await;
        if !view["load_error"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = view["load_error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("match.sql:"), "{view:#}");
    assert_eq!(view["loaded"], true, "the last good version keeps running: {view:#}");

    // It still fires, with the last good SQL.
    let start = chrono::Utc::now().timestamp_nanos_opt().unwrap() - 60_000_000_000;
    let mut simulator = Simulator::new(SimConfig {
        seed: 3,
        hosts: 4,
        rate: 5.0,
        duration: Duration::from_secs(60),
        start_unix_nano: start,
        scenarios: vec![Scenario::RepeatedPolicyDenies],
        ..SimConfig::default()
    });
    server.send_all(&simulator.events_until(i64::MAX)).await;
    server.detections_idle().await;
    let alerts = server.alerts().await;
    assert_eq!(
        by_rule(&alerts).get("repeated-policy-denies").map(Vec::len),
        Some(1),
        "{alerts:#?}"
    );

    // Fixing the file clears the error; deleting the folder stops the rule.
    std::fs::write(&match_sql, &good).unwrap();
    for _ in 0..100 {
        view = rule_view(&server, "repeated-policy-denies").await;
        if view["load_error"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(view["load_error"].is_null(), "{view:#}");
    std::fs::remove_dir_all(rules.join("telemetry-gap")).unwrap();
    for _ in 0..100 {
        if rule_view(&server, "telemetry-gap").await.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rule_view(&server, "telemetry-gap").await.is_null());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_checked_against_the_key_registry() {
    use base64::Engine;
    use ed25519_dalek::Signer;
    let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let keys = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        keys.path(),
        format!(
            "key_id,public_key\nwks-7-k1,{}\n",
            base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes())
        ),
    )
    .unwrap();
    let keys_file = keys.path().to_path_buf();
    let server = TestServer::start_with(move |config| config.signatures.keys_file = Some(keys_file)).await;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let sign = |mut event: FlatEvent| {
        event.set("signature.key_id", "wks-7-k1");
        let value = event.to_json(true);
        let record = cordon_schemas::flat::flat_json_to_event(&value).unwrap();
        let signature = key.sign(cordon_schemas::signature::canonical_json(&record).as_bytes());
        event.set(
            "signature.ed25519",
            base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        );
        event
    };
    let mut good = FlatEvent::new(now, "process.start", "wks-7");
    good.set("event.id", "good-1").set("process.executable.name", "git");
    let good = sign(good);
    let mut altered = sign({
        let mut event = FlatEvent::new(now + 1, "process.start", "wks-7");
        event.set("event.id", "altered-1").set("process.executable.name", "git");
        event
    });
    // Changed after signing: what a tamperer on the path would do.
    altered.set("process.executable.name", "nc");
    server.send_all(&[good, altered]).await;
    server.detections_idle().await;
    let rows = crate::common::stored_rows(&server.storage()).await;
    let status: BTreeMap<&str, &str> = rows
        .iter()
        .map(|row| {
            (
                row["event_id"].as_str().unwrap(),
                row["signature_status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(status["good-1"], "valid");
    assert_eq!(status["altered-1"], "bad");
    let alerts = server.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["rule_id"], "telemetry-tampering");
    assert_eq!(alerts[0]["evidence"][0]["event_id"], "altered-1");
    server.stop().await;
}
