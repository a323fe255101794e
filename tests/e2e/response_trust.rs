//! Containment rests on evidence that can be trusted: the pilot's exfiltration chain
//! forged over an unauthenticated path (allowed by `allow_unauthenticated_ingest`)
//! gets its isolation held for approval with the reason, on the action, in the audit
//! log and on the alert; the same chain from an authenticated producer is contained
//! at once.

use std::time::Duration;

use cordon::simulate::Scenario;
use cordon::simulate::senders::{SendReport, Sender};
use cordon_responder::ActionState;
use cordon_responder::store::{ActionFilter, AuditFilter};

use crate::common::*;
use crate::responder::{SINK_SECRET, attack_events, start_sink, targets_to};

async fn isolation_of(test: &TestServer) -> cordon_responder::Action {
    eventually(Duration::from_secs(60), "the chain's isolate_host action", async || {
        test.server
            .responder
            .list(&ActionFilter {
                action: Some("isolate_host".into()),
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .find(|action| action.rule_id.as_deref() == Some("exfil-attempt-chain"))
    })
    .await
}

async fn run_chain(authenticated: bool) -> (TestServer, cordon_responder::Action, crate::responder::Proc) {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("secret");
    std::fs::write(&secret_file, SINK_SECRET).unwrap();
    let (sink, sink_addr) = start_sink(SINK_SECRET);
    let test = TestServer::start_with(|config| targets_to(config, sink_addr, &secret_file)).await;
    let (events, _) = attack_events(&[Scenario::ExfilAttemptChain], 15);
    let mut sender = if authenticated {
        producer_sender(&test.grpc_url()).await
    } else {
        Sender::grpc(&test.grpc_url()).await.unwrap()
    };
    let mut report = SendReport::default();
    for chunk in events.chunks(500) {
        sender.send(chunk, &mut report).await.unwrap();
    }
    assert_eq!(report.rejected, 0);
    let action = isolation_of(&test).await;
    (test, action, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_unauthenticated_chain_waits_for_approval_and_says_why() {
    let (test, action, _sink) = run_chain(false).await;
    assert_eq!(action.state, ActionState::AwaitingApproval, "{action:?}");
    let reason = action.approval_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("evidence events unauthenticated") && reason.contains("trust = \"authenticated\""),
        "{reason}"
    );
    let audit = test
        .server
        .responder
        .audit(&AuditFilter {
            action_id: Some(action.id.clone()),
            limit: 20,
            ..Default::default()
        })
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|entry| entry.event == "held" && entry.detail.as_deref() == Some(reason.as_str())),
        "{audit:?}"
    );
    let alert_id = action.alert_id.clone().unwrap();
    let (status, alert) = test
        .api_get(&format!("/api/v1/alerts/{alert_id}"), Some(cordon::api::Role::Analyst))
        .await;
    assert_eq!(status, 200);
    let notes = alert["notes"].as_array().cloned().unwrap_or_default();
    assert!(
        notes.iter().any(|note| note["author"] == "responder"
            && note["text"]
                .as_str()
                .is_some_and(|text| text.contains("isolate_host waits for approval"))),
        "{alert}"
    );
    // The token revocation rests on the same evidence, so it waits too; a notification does not.
    let revocations = test
        .server
        .responder
        .list(&ActionFilter {
            action: Some("revoke_token".into()),
            alert_id: Some(alert_id),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert!(
        revocations
            .iter()
            .all(|action| action.state == ActionState::AwaitingApproval),
        "{revocations:?}"
    );
    test.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_chain_from_an_authenticated_producer_is_contained_at_once() {
    let (test, action, _sink) = run_chain(true).await;
    let delivered = eventually(Duration::from_secs(30), "the isolation delivered", async || {
        let action = test.server.responder.get(&action.id).unwrap().unwrap();
        (action.state == ActionState::Succeeded).then_some(action)
    })
    .await;
    assert_eq!(delivered.decided_by, None, "nobody had to approve it");
    let rows = count(
        &test.storage(),
        &format!(
            "SELECT count(*) FROM events WHERE producer = '{TEST_PRODUCER}' AND host_id = '{}'",
            delivered.target.host_id.clone().unwrap()
        ),
    )
    .await;
    assert!(rows > 0);
    test.server.stop().await.unwrap();
}
