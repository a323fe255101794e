//! Entity risk end to end: three low-severity alerts on one user (on three hosts)
//! within a day write their risk as cordon.risk events, the entity-risk rule raises one
//! incident for the user (none for the hosts, one alert each), the entities API ranks the
//! user first, and the console's entity page (headless Chromium) shows the three alerts
//! and the incident on the user's timeline.

use std::process::Command;
use std::time::Duration;

use cordon::api::Role;
use serde_json::Value;

use crate::common::*;
use crate::responder::send;

/// A low-severity rule, one alert per host, for the test's three alerts.
fn add_low_rule(rules: &std::path::Path) {
    let dir = rules.join("port-scan-tool");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("rule.toml"),
        "title = \"Port scanner started\"\ndescription = \"nmap ran.\"\nseverity = \"low\"\nattack = [\"T1046\"]\n\
         partition_by = [\"host_id\"]\nsuppression = \"1h\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("input.sql"),
        "SELECT time, host_id, user_name, event_id, event_name FROM events\n\
         WHERE event_name = 'process.start' AND process_executable_name = 'nmap'\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("match.sql"),
        "SELECT host_id, max(user_name) AS user_name, min(time) AS first_seen, max(time) AS last_seen,\n\
         array_agg(event_id) AS evidence FROM kept GROUP BY host_id\n",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_low_alerts_on_a_user_raise_one_risk_incident_shown_on_the_entity_page() {
    let detections = crate::detections::scratch_detections();
    add_low_rule(&detections.path().join("rules"));
    let rules = detections.path().join("rules");
    let reference = detections.path().join("reference");
    let server = TestServer::start_with(|config| {
        config.detections.rules_dir = rules.clone();
        config.detections.reference_dir = reference.clone();
    })
    .await;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let events: Vec<cordon_schemas::FlatEvent> = (0..3)
        .map(|index| {
            // Minutes apart: within a day, each still nearly its whole risk.
            let mut event = cordon_schemas::FlatEvent::new(
                now - (3 - index) * 60_000_000_000,
                "process.start",
                &format!("wks-risk-{index}"),
            );
            event
                .set("event.id", format!("nmap-{index}"))
                .set("user.name", "dave")
                .set("process.executable.name", "nmap")
                .set("process.command_line", "nmap -sS 10.0.0.0/24");
            event
        })
        .collect();
    // And an agent of dave's reads cloud credentials: a building block's signal, not an
    // alert (no risk), shown on dave's page.
    let mut read = cordon_schemas::FlatEvent::new(now - 30_000_000_000, "file.access", "wks-risk-0");
    read.set("event.id", "agent-read-0")
        .set("user.name", "dave")
        .set("gen_ai.agent.id", "cowork-7")
        .set("file.operation", "read")
        .set("file.path", "/home/dave/.aws/credentials");
    let mut events = events;
    events.push(read);
    send(server.server.grpc_addr, &events).await;

    let incidents = |body: &Value| body["alerts"].as_array().unwrap().clone();
    let incident = eventually(Duration::from_secs(60), "a risk incident", async || {
        let (_, body) = server
            .api_get("/api/v1/alerts?rule_id=entity-risk&status=open", Some(Role::Analyst))
            .await;
        incidents(&body).first().cloned()
    })
    .await;
    let (_, lows) = server
        .api_get("/api/v1/alerts?rule_id=port-scan-tool", Some(Role::Analyst))
        .await;
    let mut low_ids: Vec<String> = lows["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["id"].as_str().unwrap().to_string())
        .collect();
    low_ids.sort();
    assert_eq!(low_ids.len(), 3, "{lows:#}");
    assert_eq!(incident["entity"]["risk_entity_type"], "user", "{incident:#}");
    assert_eq!(incident["entity"]["risk_entity"], "dave", "{incident:#}");
    let listed = incident["fields"]["alert_ids"].as_str().unwrap().to_string();
    assert!(
        low_ids.iter().all(|id| listed.contains(id.as_str())),
        "{listed} holds {low_ids:?}"
    );
    // One incident: the hosts have one alert each, and later risk folds into it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, body) = server
        .api_get("/api/v1/alerts?rule_id=entity-risk", Some(Role::Analyst))
        .await;
    assert_eq!(incidents(&body).len(), 1, "{body:#}");

    let (status, ranked) = server.api_get("/api/v1/entities?limit=5", Some(Role::Analyst)).await;
    assert_eq!(status, 200, "{ranked:#}");
    let first = &ranked["entities"][0];
    assert_eq!(
        (first["type"].as_str(), first["id"].as_str()),
        (Some("user"), Some("dave")),
        "{ranked:#}"
    );
    assert_eq!(first["alerts"].as_array().unwrap().len(), 3, "{first:#}");
    assert!(first["risk"].as_f64().unwrap() > 59.0, "{first:#}");
    assert_eq!(first["incidents"][0], incident["id"], "{first:#}");
    let signals = eventually(Duration::from_secs(30), "dave's signal on his page", async || {
        let (_, view) = server.api_get("/api/v1/entities/user/dave", Some(Role::Analyst)).await;
        let rows = view["signals"]["rows"].as_array().cloned().unwrap_or_default();
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    assert_eq!(
        signals[0]["attributes"]["signal.rule"], "agent-sensitive-file-read",
        "{signals:#?}"
    );
    let (_, queue) = server
        .api_get("/api/v1/alerts?rule_id=agent-sensitive-file-read", Some(Role::Analyst))
        .await;
    assert!(
        queue["alerts"].as_array().unwrap().is_empty(),
        "a signal is not an alert: {queue:#}"
    );
    let (status, _) = server
        .api_get("/api/v1/entities?type=planet", Some(Role::Analyst))
        .await;
    assert_eq!(status, 400);
    let (status, _) = server.api_get("/api/v1/entities", None).await;
    assert_eq!(status, 401);

    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let (base, token) = (server.api_url(), token_for(Role::Analyst));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(python_script("entity_console_test.py"))
            .args([&base, &token, "user", "dave"])
            .arg(&shots)
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
    let page: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(page["first_row"], "user/dave", "{page:#}");
    assert_eq!(page["alerts"], 3, "{page:#}");
    assert!(
        page["incidents_cell"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("1 incident"),
        "{page:#}"
    );
    let timeline: Vec<&str> = page["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        timeline.iter().filter(|class| **class == "e-alert").count(),
        3,
        "{page:#}"
    );
    assert_eq!(
        timeline.iter().filter(|class| **class == "e-risk-incident").count(),
        1,
        "{page:#}"
    );
    assert_eq!(
        timeline.iter().filter(|class| **class == "e-signal").count(),
        1,
        "{page:#}"
    );
    let links: Vec<String> = page["alert_links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert!(
        low_ids.iter().all(|id| links.contains(&format!("#/alert/{id}"))),
        "{links:?}"
    );
    assert_eq!(
        page["incident_links"][0],
        format!("#/alert/{}", incident["id"].as_str().unwrap())
    );
    // The incident's page names each contributing alert in its evidence.
    let evidence: Vec<&str> = page["incident_evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for id in &low_ids {
        assert!(
            evidence
                .iter()
                .any(|line| line.starts_with(&format!("alert {id} (port-scan-tool, low) adds 20"))),
            "{id} in {evidence:?}"
        );
    }
}
