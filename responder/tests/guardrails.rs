//! The guardrails on automatic containment against a real HTTP receiver: isolations and
//! revocations past their caps (fleet-wide and per user) and isolations of protected
//! hosts wait for approval, saying why; the rest go out.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use cordon_responder::store::ActionFilter;
use cordon_responder::{Action, ActionState};

const WAIT: Duration = Duration::from_secs(10);

/// The actions waiting for approval.
fn held(running: &Running) -> Vec<Action> {
    running
        .responder
        .list(&ActionFilter {
            state: Some(ActionState::AwaitingApproval),
            ..ActionFilter::default()
        })
        .unwrap()
}

/// Why the held action on `host` waits.
fn why_held(held: &[Action], host: &str) -> String {
    held.iter()
        .find(|action| action.target.host_id.as_deref() == Some(host))
        .and_then(|action| action.approval_reason.clone())
        .unwrap_or_else(|| panic!("no action held for {host}"))
}

#[tokio::test]
async fn isolations_beyond_the_cap_and_of_protected_hosts_wait_for_approval() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(200)).await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    for host in ["wks-1", "wks-2", "wks-3", "wks-4", "dc-01"] {
        raise(&alerts, host, "alice");
    }
    let mut config = config(&receiver, &secret_file(dir.path()));
    config.guardrails.isolation_cap = 2;
    config.guardrails.protected_hosts = vec!["dc-*".into()];
    let running = Running::start(
        config,
        &dir.path().join("r.db"),
        alerts,
        playbooks(vec![step("isolate_host", auto()), step("notify", auto())]),
    );
    eventually(WAIT, "ten actions", || {
        running.responder.list(&ActionFilter::default()).unwrap().len() == 10
    })
    .await;
    eventually(WAIT, "deliveries", || receiver.seen().len() == 7).await;
    running.settled().await;
    let seen = receiver.seen();
    let isolated: Vec<String> = seen
        .iter()
        .filter(|s| s.json()["action"] == "isolate_host")
        .map(|s| s.json()["target"]["host_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(isolated, ["wks-1", "wks-2"], "the first two, in alert order");
    let held = held(&running);
    assert_eq!(held.len(), 3);
    let why = |host: &str| why_held(&held, host);
    assert!(why("wks-3").contains("isolation cap reached: 2"), "{}", why("wks-3"));
    assert!(why("dc-01").contains("protected"), "{}", why("dc-01"));
    // Notifications are not isolations: all five went out.
    assert_eq!(seen.iter().filter(|s| s.json()["action"] == "notify").count(), 5);
    running.stop().await;
}

#[tokio::test]
async fn revocations_beyond_the_fleet_or_the_user_cap_wait_for_approval() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(200)).await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    let raised = [
        ("wks-1", "alice"),
        ("wks-2", "alice"),
        ("wks-3", "alice"),
        ("wks-4", "bob"),
        ("wks-5", "bob"),
        ("wks-6", "carol"),
    ];
    for (host, user) in raised {
        raise(&alerts, host, user);
    }
    let mut config = config(&receiver, &secret_file(dir.path()));
    config.guardrails.revocation_cap = 4;
    config.guardrails.revocation_cap_per_user = 2;
    let running = Running::start(
        config,
        &dir.path().join("r.db"),
        alerts,
        playbooks(vec![step("revoke_token", auto())]),
    );
    eventually(WAIT, "six actions", || {
        running.responder.list(&ActionFilter::default()).unwrap().len() == 6
    })
    .await;
    eventually(WAIT, "deliveries", || receiver.seen().len() == 4).await;
    running.settled().await;
    let revoked: Vec<String> = receiver
        .seen()
        .iter()
        .map(|s| s.json()["target"]["host_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(revoked, ["wks-1", "wks-2", "wks-4", "wks-5"]);
    let held = held(&running);
    assert_eq!(held.len(), 2);
    let why = |host: &str| why_held(&held, host);
    assert!(
        why("wks-3").contains("revocation cap for alice reached: 2"),
        "{}",
        why("wks-3")
    );
    assert!(why("wks-6").contains("revocation cap reached: 4"), "{}", why("wks-6"));
    running.stop().await;
}

#[tokio::test]
async fn containment_waits_when_the_evidence_cannot_be_vouched_for() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(200)).await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    let alert = raise(&alerts, "wks-1", "alice");
    let mut trusting = step("revoke_token", auto());
    trusting.trust = Some(cordon_schemas::TrustLevel::Any);
    // Nothing tells how the evidence arrived: isolation (default `authenticated`) waits,
    // a step that says `trust = "any"` and a notification go out.
    let running = Running::start_with_evidence(
        config(&receiver, &secret_file(dir.path())),
        &dir.path().join("r.db"),
        alerts.clone(),
        playbooks(vec![step("isolate_host", auto()), trusting, step("notify", auto())]),
        None,
    );
    eventually(WAIT, "deliveries", || receiver.seen().len() == 2).await;
    let held = held(&running);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].action, "isolate_host");
    let why = why_held(&held, "wks-1");
    assert!(why.contains("could not be read"), "{why}");
    let notes = alerts.get(&alert.id).unwrap().unwrap().notes;
    assert!(
        notes
            .iter()
            .any(|note| note.author == "responder" && note.text.contains("isolate_host waits")),
        "{notes:?}"
    );
    running.stop().await;
}
