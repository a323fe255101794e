//! Event time that survives offline laptops and Collectors (issue 13), through OTLP:
//! while the fleet streams live, one laptop uploads an hour and another six hours of
//! buffered events with an attack inside; a Collector-style request mixes a host whose
//! clock runs 2 minutes ahead with another host's chain whose last step comes after
//! newer events. Each attack raises one alert on its host, marked late by how late it
//! was detected; the skewed host is named in data health; and `cordon rules backtest`
//! over the stored run raises exactly what the live server raised.

use std::collections::BTreeSet;
use std::time::Duration;

use cordon::api::Role;
use cordon::simulate::senders::{SendReport, Sender};
use cordon::simulate::{Injection, Scenario, SimConfig, Simulator};
use cordon_schemas::FlatEvent;
use serde_json::Value;

use crate::common::{TestServer, eventually};

const SECOND: i64 = 1_000_000_000;

/// Events of a one-host simulation starting at `start`, the host renamed `host` and its
/// user `<host>-user` (the simulator's names repeat across seeds; a user active on
/// another host has a clock of their own for the user-keyed rule).
fn one_host(
    seed: u64,
    host: &str,
    start: i64,
    seconds: u64,
    scenarios: &[Scenario],
) -> (Vec<FlatEvent>, Vec<Injection>) {
    let mut simulator = Simulator::new(SimConfig {
        seed,
        hosts: 1,
        rate: 4.0,
        duration: Duration::from_secs(seconds),
        start_unix_nano: start,
        scenarios: scenarios.to_vec(),
        attack_at: Duration::from_secs(10),
        ..SimConfig::default()
    });
    let mut events = simulator.events_until(i64::MAX);
    let user = format!("{host}-user");
    for event in &mut events {
        event.set("host.id", host);
        if event.text("user.name").is_some() {
            event.set("user.name", user.clone());
        }
        // An agent's own events name their user and session their own way.
        if event.text("user.email").is_some() {
            event.set("user.email", format!("{user}@corp.example.com"));
        }
        for key in ["session.id", "conversation.id"] {
            if let Some(session) = event.text(key).map(str::to_string) {
                event.set(key, format!("{host}-{session}"));
            }
        }
    }
    let mut injections = simulator.injections().to_vec();
    for injection in &mut injections {
        injection.host_id = host.to_string();
        injection.user_name = user.clone();
    }
    (events, injections)
}

async fn send(server: &TestServer, events: &[FlatEvent], per_request: usize) {
    let mut sender = Sender::grpc(&server.grpc_url()).await.unwrap();
    let mut report = SendReport::default();
    for chunk in events.chunks(per_request) {
        sender.send(chunk, &mut report).await.unwrap();
    }
    assert_eq!(report.rejected, 0, "{:?}", report.last_message);
}

/// What must be equal between live and backtest: rule, entity, first and last seen,
/// evidence.
fn shapes(alerts: &[Value]) -> BTreeSet<String> {
    alerts
        .iter()
        .map(|alert| {
            let mut evidence: Vec<&str> = alert["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .map(|evidence| evidence["event_id"].as_str().unwrap())
                .collect();
            evidence.sort();
            format!(
                "{} {} {} {} {:?}",
                alert["rule_id"], alert["entity"], alert["first_seen"], alert["last_seen"], evidence
            )
        })
        .collect()
}

fn nanos(text: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text.as_str().unwrap())
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_laptops_and_mixed_requests_raise_each_attack_once_marked_late_and_backtest_agrees() {
    let server = TestServer::start().await;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let mut fleet = Simulator::new(SimConfig {
        seed: 5,
        hosts: 6,
        rate: 20.0,
        duration: Duration::from_secs(120),
        start_unix_nano: now - 150 * SECOND,
        scenarios: vec![],
        ..SimConfig::default()
    });
    let fleet = fleet.events_until(i64::MAX);
    let (hour, mut expected) = one_host(
        11,
        "laptop-offline-1h",
        now - 3600 * SECOND,
        120,
        &[Scenario::ExfilAttemptChain],
    );
    let (six_hours, injections) = one_host(
        12,
        "laptop-offline-6h",
        now - 6 * 3600 * SECOND,
        120,
        &[Scenario::SensitiveReadThenEgress],
    );
    expected.extend(injections);

    // The Collector's request: a chain on one host whose last step (the clipboard
    // write) comes after that host's newer events, and another host 2 minutes ahead.
    let (mut chain, injections) = one_host(
        13,
        "wks-collector-chain",
        now - 120 * SECOND,
        100,
        &[Scenario::ExfilAttemptChain],
    );
    expected.extend(injections);
    let last_step = chain
        .iter()
        .position(|event| {
            event.text("event.name") == Some("clipboard.write") && event.text("dlp.fingerprint").is_some()
        })
        .expect("the chain's clipboard step");
    let step = chain.remove(last_step);
    let step_time = step.time_unix_nano;
    let newer = chain.iter().filter(|event| event.time_unix_nano > step_time).count();
    assert!(
        newer >= 20,
        "the step must come after newer events of its host ({newer})"
    );
    chain.push(step);
    let (mut ahead, _) = one_host(14, "wks-clock-2m-ahead", now - 60 * SECOND, 40, &[]);
    for event in &mut ahead {
        event.time_unix_nano += 120 * SECOND + 60 * SECOND;
    }
    let ahead_count = ahead.len() as u64;
    let mut collector: Vec<FlatEvent> = Vec::new();
    let (mut left, mut right) = (chain.into_iter(), ahead.into_iter());
    loop {
        match (left.next(), right.next()) {
            (None, None) => break,
            (a, b) => collector.extend(a.into_iter().chain(b)),
        }
    }

    let (live_first, live_rest) = fleet.split_at(fleet.len() / 2);
    send(&server, live_first, 200).await;
    send(&server, &hour, 500).await;
    send(&server, &collector, collector.len()).await;
    send(&server, &six_hours, 500).await;
    send(&server, live_rest, 200).await;
    server.detections_idle().await;

    let alerts = eventually(Duration::from_secs(60), "an alert per attack", async || {
        let alerts = server.alerts().await;
        expected
            .iter()
            .all(|injection| {
                alerts.iter().any(|alert| {
                    alert["rule_id"] == injection.rule_id && alert["host_id"] == injection.host_id.as_str()
                })
            })
            .then_some(alerts)
    })
    .await;
    for injection in &expected {
        let found: Vec<&Value> = alerts
            .iter()
            .filter(|alert| alert["rule_id"] == injection.rule_id && alert["host_id"] == injection.host_id.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{}: {found:#?}", injection.rule_id);
        let alert = found[0];
        let (first, last) = (nanos(&alert["first_seen"]), nanos(&alert["last_seen"]));
        // Both attacks' steps end 35 s in (simulate/scenarios.rs); the host's own
        // background may add evidence within the rule's window either side. (Alert
        // times are kept to the millisecond.)
        let step = injection.start_unix_nano + 35 * SECOND;
        let window = 15 * 60 * SECOND;
        assert!(
            first <= step + 1_000_000 && last >= step - 1_000_000 && last <= step + window && first >= step - window,
            "{}: the alert spans the attack (step at {step}): {alert:#}",
            injection.host_id
        );
        let delay = alert["detected_after"].as_f64().unwrap();
        let since_attack = (now - injection.start_unix_nano) as f64 / 1e9;
        match injection.host_id.as_str() {
            "wks-collector-chain" => assert!(delay < 300.0, "live, not late: {alert:#}"),
            _ => assert!(
                delay > since_attack - 120.0 && delay < since_attack + 600.0,
                "marked late by about {since_attack} s: {alert:#}"
            ),
        }
    }

    // The report is rebuilt at most once a second (and on each reload tick).
    let health = eventually(Duration::from_secs(10), "data health with every host", async || {
        let (status, health) = server.api_get("/api/v1/health/hosts", Some(Role::Analyst)).await;
        assert_eq!(status, 200, "{health}");
        (health["totals"]["hosts"].as_u64() == Some(10)).then_some(health)
    })
    .await;
    let host = |name: &str| {
        health["troubled"]
            .as_array()
            .unwrap()
            .iter()
            .find(|host| host["host_id"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} is not in data health: {health:#}"))
    };
    assert_eq!(
        host("wks-clock-2m-ahead")["skewed"].as_u64(),
        Some(ahead_count),
        "{health:#}"
    );
    assert_eq!(
        host("laptop-offline-6h")["delayed"].as_u64(),
        Some(six_hours.len() as u64),
        "{health:#}"
    );
    assert!(host("laptop-offline-1h")["delayed"].as_u64().unwrap() > 0);
    assert_eq!(health["totals"]["late"], 0, "nothing set aside: {health:#}");

    let storage = server.storage();
    let dir = server.stop().await;
    let flagged = crate::common::count(
        &storage,
        "SELECT count(*) FROM events WHERE host_id = 'wks-clock-2m-ahead' \
         AND CAST(attributes['cordon.clock_ahead_seconds'] AS BIGINT) > 60",
    )
    .await;
    assert_eq!(
        flagged, ahead_count as i64,
        "each event ahead of its arrival is flagged"
    );
    let backtested = crate::common::backtest(dir, now - 7 * 3600 * SECOND, now + 3600 * SECOND).await;
    assert_eq!(shapes(&backtested), shapes(&alerts), "backtest equals live");
}
