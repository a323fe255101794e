//! The console in headless Chromium (Debian's chromium, driven by Selenium): sign in,
//! see the alert of a simulated attack, open it, see its evidence, approve the pending
//! isolation, and the sink receives it. Screenshots of the main pages are kept in
//! `<target>/tmp/console-screenshots/`.

use std::process::Command;
use std::time::Duration;

use cordon::api::Role;
use cordon::simulate::Scenario;
use serde_json::Value;

use crate::common::eventually;
use crate::common::*;
use crate::responder::{SINK_SECRET, attack_events, send, sink_deliveries, start_sink, targets_to};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_approves_a_pending_isolation_in_the_console_and_the_sink_receives_it() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists() && std::path::Path::new("/usr/bin/chromedriver").exists(),
        "Debian's chromium and chromium-driver are needed: run scripts/setup-test-env.sh"
    );
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("secret");
    std::fs::write(&secret_file, SINK_SECRET).unwrap();
    let (_sink, sink) = start_sink(SINK_SECRET);
    let server = TestServer::start_with(|config| targets_to(config, sink, &secret_file)).await;
    let (events, simulator) = attack_events(&[Scenario::AgentSpawnedNetworkTool], 21);
    let host = simulator.injections()[0].host_id.clone();
    send(server.server.grpc_addr, &events).await;
    // A host whose clock runs 10 minutes ahead: the data-health page names it.
    let ahead = chrono::Utc::now().timestamp_nanos_opt().unwrap() + 600_000_000_000;
    let skewed: Vec<cordon_schemas::FlatEvent> = (0..3)
        .map(|index| {
            let mut event = cordon_schemas::FlatEvent::new(ahead + index, "process.start", "wks-clock-ahead");
            event
                .set("event.id", format!("clock-ahead-{index}"))
                .set("user.name", "dave")
                .set("process.executable.name", "ls");
            event
        })
        .collect();
    send(server.server.grpc_addr, &skewed).await;
    eventually(Duration::from_secs(60), "a held isolation", async || {
        let (_, body) = server
            .api_get("/api/v1/actions?state=awaiting_approval", Some(Role::Analyst))
            .await;
        (!body["actions"].as_array().unwrap().is_empty()).then_some(())
    })
    .await;
    assert!(sink_deliveries(sink).await.is_empty(), "nothing before approval");

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let script_server = server.api_url();
    let shots_arg = shots.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(python_script("console_test.py"))
            .args([
                &script_server,
                &token_for(Role::Responder),
                "agent-spawned-network-tool",
            ])
            .arg(&shots_arg)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    // What the pages showed is what the API holds (the script only waited for a first
    // row of each).
    let (_, open) = server
        .api_get("/api/v1/alerts?status=open&limit=500", Some(Role::Analyst))
        .await;
    assert_eq!(
        summary["queue_rows"].as_u64(),
        Some(open["alerts"].as_array().unwrap().len() as u64),
        "{summary}"
    );
    let alert_id = summary["alert_id"].as_str().unwrap();
    let (_, alert) = server
        .api_get(&format!("/api/v1/alerts/{alert_id}"), Some(Role::Analyst))
        .await;
    assert_eq!(alert["rule_id"], "agent-spawned-network-tool", "{alert}");
    assert_eq!(
        summary["evidence_rows"].as_u64(),
        Some(alert["evidence"].as_array().unwrap().len() as u64),
        "{summary}"
    );
    let at = |field: &str, minutes: i64| {
        let time = chrono::DateTime::parse_from_rfc3339(alert[field].as_str().unwrap()).unwrap();
        (time + chrono::Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let (_, timeline) = server
        .api_get(
            &format!(
                "/api/v1/timeline?host_id={}&since={}&until={}&limit=100",
                alert["host_id"].as_str().unwrap(),
                at("first_seen", -15),
                at("last_seen", 5)
            ),
            Some(Role::Analyst),
        )
        .await;
    assert_eq!(
        summary["timeline_rows"].as_u64(),
        Some(timeline["rows"].as_array().unwrap().len() as u64),
        "{summary}"
    );
    // The suites' sender authenticates: the evidence says so.
    assert!(
        summary["evidence_via"]
            .as_str()
            .unwrap_or_default()
            .contains(TEST_PRODUCER),
        "{summary}"
    );
    assert!(
        summary["evidence_detail"].as_str().unwrap().contains("curl"),
        "the evidence shows the spawned command: {summary}"
    );
    assert!(
        summary["action_states"]
            .as_array()
            .unwrap()
            .iter()
            .any(|state| state == "succeeded"),
        "{summary}"
    );
    assert_eq!(
        summary["rules"].as_u64(),
        Some(builtin_rule_count() as u64),
        "{summary}"
    );
    assert!(
        summary["rule_cadence"].as_str().unwrap().contains("every 2s"),
        "telemetry-gap's row says it is evaluated every 2 s: {summary}"
    );
    assert!(
        summary["rule_anchor"]
            .as_str()
            .unwrap()
            .contains("matched where step is isolated"),
        "activity-after-isolation's row shows its anchor: {summary}"
    );
    assert!(
        summary["rule_costs"].as_str().unwrap().contains(" ms each"),
        "the rules page says what an evaluation of a rule costs: {summary}"
    );
    let hunted: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/hunt", server.api_url()))
        .bearer_auth(token_for(Role::Analyst))
        .json(&serde_json::json!({"sql": summary["hunt_sql"], "limit": 1000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        summary["hunt_rows"].as_u64(),
        Some(hunted["rows"].as_array().unwrap().len() as u64),
        "{summary}"
    );
    assert!(
        summary["health"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row[0] == "wks-clock-ahead" && row[4] == "3"),
        "the data-health page shows the skewed host: {summary}"
    );
    assert_eq!(
        summary["console_errors"],
        serde_json::json!([]),
        "the page logged errors"
    );

    let deliveries = sink_deliveries(sink).await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0]["action"], "isolate_host");
    assert_eq!(deliveries[0]["host_id"], host.as_str());
    assert_eq!(deliveries[0]["signature"], "valid");
    for page in [
        "alerts",
        "alert",
        "alert-approved",
        "rules",
        "responses",
        "hunt",
        "health",
    ] {
        let file = shots.join(format!("{page}.png"));
        assert!(
            std::fs::metadata(&file).map(|meta| meta.len() > 1000).unwrap_or(false),
            "no screenshot {}",
            file.display()
        );
    }
    eprintln!("console screenshots in {}", shots.display());
    server.stop().await;
}
