//! Responses flow back as events: the simulator's `activity-after-isolation` attack (an
//! exfiltration chain) is sent; the chain's alert isolates the host through a real
//! webhook sink; the responder's outcomes are stored as `cordon.response` events; the
//! host's uploads after the delivered isolation raise `activity-after-isolation`; a
//! restart stores no outcome twice; and a producer cannot forge a `cordon.response`.
//!
//! The rule counts flows from its grace period after the delivery on, and the delivery
//! is stamped with the wall clock. With the shipped 1-minute grace the simulator's
//! uploads have to be sent in real time, two and a half minutes of this suite's wall
//! time; here the grace is 5 s (a copy of the built-in rules) and the uploads are sent
//! once it has passed. The grace itself is the rule's fixtures' to test.

use std::time::Duration;

use cordon::simulate::catalog::EXFIL_DESTINATIONS;
use cordon::simulate::runner::{Pace, run};
use cordon::simulate::senders::{SendReport, Sender};
use cordon::simulate::{Scenario, SimConfig, Simulator};
use cordon_schemas::FlatEvent;
use cordon_schemas::fields::attr;
use serde_json::Value;

use crate::common::*;
use crate::responder::{SINK_SECRET, start_sink, targets_to};

/// The responses to the attack's own alerts on `host` (a risk incident for the host,
/// its alerts adding up, answers later with a notify of its own: not counted here).
async fn response_events(server: &TestServer, host: &str) -> Vec<(String, String)> {
    let sql = format!(
        "SELECT attributes['response.action'] AS action, attributes['response.outcome'] AS outcome \
         FROM cordon_response WHERE host_id = '{host}' \
         AND coalesce(attributes['response.rule_id'], '') <> 'entity-risk' ORDER BY time, event_id"
    );
    let batches = cordon::query::query(&server.storage(), &sql, 256 << 20).await.unwrap();
    let rows = cordon::query::render(&batches, cordon::query::OutputFormat::Json).unwrap();
    let rows: Value = serde_json::from_str(&rows).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["action"].as_str().unwrap_or_default().to_string(),
                row["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Whether `outcomes` holds `outcome` of `action`.
fn answered(outcomes: &[(String, String)], action: &str, outcome: &str) -> bool {
    outcomes.iter().any(|(a, o)| a == action && o == outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_keeps_uploading_after_its_isolation_was_delivered_raises_an_alert() {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("secret");
    std::fs::write(&secret_file, SINK_SECRET).unwrap();
    let (_sink, sink) = start_sink(SINK_SECRET);
    let detections = crate::detections::scratch_detections();
    let rule = detections.path().join("rules/activity-after-isolation/rule.toml");
    let shipped = std::fs::read_to_string(&rule).unwrap();
    let short_grace = shipped.replace(r#"grace = { duration = "1m" }"#, r#"grace = { duration = "5s" }"#);
    assert_ne!(shipped, short_grace, "the rule's grace parameter moved: fix this test");
    std::fs::write(&rule, short_grace).unwrap();
    let (rules, reference) = (detections.path().join("rules"), detections.path().join("reference"));
    let feed = |config: &mut cordon::Config| {
        targets_to(config, sink, &secret_file);
        config.responder.outcome_events = true;
        config.detections.rules_dir = rules.clone();
        config.detections.reference_dir = reference.clone();
    };
    let server = TestServer::start_with(feed).await;

    // A forged outcome from a producer is refused, and says why.
    let mut forged = FlatEvent::new(
        chrono::Utc::now().timestamp_nanos_opt().unwrap(),
        "cordon.response",
        "wks-x",
    );
    forged.set("event.id", "forged-1").set("response.outcome", "delivered");
    let mut sender = Sender::grpc(&server.grpc_url()).await.unwrap();
    let mut report = SendReport::default();
    sender.send(&[forged], &mut report).await.unwrap();
    assert_eq!(report.rejected, 1, "{report:?}");
    assert!(
        report
            .last_message
            .as_deref()
            .unwrap_or_default()
            .contains("Cordon's own"),
        "{report:?}"
    );

    // The attack, all at once and in the past: its own uploads (110 s after the chain)
    // are older than the isolation it leads to, so they do not count.
    let config = SimConfig {
        seed: 31,
        hosts: 3,
        rate: 6.0,
        duration: Duration::from_secs(20),
        start_unix_nano: chrono::Utc::now().timestamp_nanos_opt().unwrap() - 150_000_000_000,
        scenarios: vec![Scenario::ActivityAfterIsolation],
        attack_at: Duration::from_secs(1),
        ..SimConfig::default()
    };
    let host = Simulator::new(config.clone()).injections()[0].host_id.clone();
    // Authenticated, so the chain's isolation goes out without a person.
    let mut sender = producer_sender(&server.grpc_url()).await;
    let report = run(config, &mut sender, 100, Pace::Fast, |_| {}).await.unwrap();
    assert_eq!(report.rejected, 0, "{report:?}");
    eventually(Duration::from_secs(60), "the isolation delivered", async || {
        answered(&response_events(&server, &host).await, "isolate_host", "delivered").then_some(())
    })
    .await;
    server.detections_idle().await;
    assert!(
        !server
            .alerts()
            .await
            .iter()
            .any(|alert| alert["rule_id"] == "activity-after-isolation"),
        "uploads before the isolation raised the alert"
    );

    // Past the grace, the host still uploads to a drop site.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (drop_site, drop_ip, _) = EXFIL_DESTINATIONS[2];
    let uploads: Vec<FlatEvent> = (0..2)
        .map(|index| {
            let mut flow = FlatEvent::new(
                chrono::Utc::now().timestamp_nanos_opt().unwrap() + index,
                "network.flow",
                &host,
            );
            flow.set("event.id", format!("upload-after-isolation-{index}"))
                .set(attr::DESTINATION_ADDRESS, drop_site)
                .set(attr::DESTINATION_IP, drop_ip);
            flow
        })
        .collect();
    let mut report = SendReport::default();
    sender.send(&uploads, &mut report).await.unwrap();
    assert_eq!(report.rejected, 0, "{report:?}");
    server.detections_idle().await;

    let alerts = eventually(Duration::from_secs(30), "the alert", async || {
        let alerts = server.alerts().await;
        alerts
            .iter()
            .any(|alert| alert["rule_id"] == "activity-after-isolation")
            .then_some(alerts)
    })
    .await;
    let after: Vec<&Value> = alerts
        .iter()
        .filter(|alert| alert["rule_id"] == "activity-after-isolation")
        .collect();
    assert_eq!(after.len(), 1, "{after:#?}");
    assert_eq!(after[0]["host_id"], host.as_str());
    let kinds: Vec<&str> = after[0]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|evidence| evidence["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds[0], "cordon.response",
        "the delivered isolation is the first evidence: {kinds:?}"
    );
    assert!(kinds[1..].iter().all(|kind| *kind == "network.flow"), "{kinds:?}");

    // The alert's own playbook (notify) answers too: every response settled before the
    // restart below compares.
    let outcomes = eventually(Duration::from_secs(30), "the alert's notify delivered", async || {
        let outcomes = response_events(&server, &host).await;
        answered(&outcomes, "notify", "delivered").then_some(outcomes)
    })
    .await;
    for (action, outcome) in [("isolate_host", "requested"), ("isolate_host", "delivered")] {
        assert!(
            answered(&outcomes, action, outcome),
            "{action} {outcome} in {outcomes:?}"
        );
    }

    // A restart resumes the feed where it stopped: nothing stored twice.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, feed).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(response_events(&server, &host).await, outcomes);
    server.stop().await;
}
