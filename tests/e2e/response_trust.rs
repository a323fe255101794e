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
use cordon_schemas::FlatEvent;

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

/// How the chain is sent, and what its isolation step asks.
#[derive(Default)]
struct Chain {
    authenticated: bool,
    /// Signed with a key registered for the chain's host.
    signed: bool,
    trust: Option<cordon_schemas::TrustLevel>,
}

async fn run_chain(chain: Chain) -> (TestServer, cordon_responder::Action, crate::responder::Proc) {
    use base64::Engine;
    use ed25519_dalek::Signer;
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("secret");
    std::fs::write(&secret_file, SINK_SECRET).unwrap();
    let (sink, sink_addr) = start_sink(SINK_SECRET);
    let (mut events, simulator) = attack_events(&[Scenario::ExfilAttemptChain], 15);
    let host = simulator.injections()[0].host_id.clone();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let keys_file = secrets.path().join("keys.csv");
    let base64 = base64::engine::general_purpose::STANDARD;
    std::fs::write(
        &keys_file,
        format!(
            "{host}-k1,{},{host},,,\n",
            base64.encode(key.verifying_key().to_bytes())
        ),
    )
    .unwrap();
    if chain.signed {
        let on_host = |event: &&mut FlatEvent| {
            event
                .attributes
                .get("host.id")
                .is_some_and(|value| value.to_text() == host)
        };
        for event in events.iter_mut().filter(on_host) {
            event.set("signature.key_id", format!("{host}-k1"));
            let value = event.to_json(true);
            let record = cordon_schemas::flat::flat_json_to_event(&value).unwrap();
            let signature = key.sign(cordon_schemas::signature::canonical_json(&record).as_bytes());
            event.set("signature.ed25519", base64.encode(signature.to_bytes()));
        }
    }
    let test = TestServer::start_with(|config| {
        targets_to(config, sink_addr, &secret_file);
        config.signatures.keys_file = Some(keys_file.clone());
        if let Some(trust) = chain.trust {
            let mut step = cordon_detections::settings::ResponseStep::new(
                cordon_schemas::ActionKind::IsolateHost,
                cordon_detections::settings::ResponseMode::Auto,
            );
            step.trust = Some(trust);
            config
                .responder
                .playbooks
                .insert("exfil-attempt-chain".into(), vec![step]);
        }
    })
    .await;
    let mut sender = if chain.authenticated {
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

async fn delivered_without_approval(test: &TestServer, action: &cordon_responder::Action) -> cordon_responder::Action {
    let delivered = eventually(Duration::from_secs(30), "the isolation delivered", async || {
        let action = test.server.responder.get(&action.id).unwrap().unwrap();
        (action.state == ActionState::Succeeded).then_some(action)
    })
    .await;
    assert_eq!(delivered.decided_by, None, "nobody had to approve it");
    delivered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_unauthenticated_chain_waits_for_approval_and_says_why() {
    let (test, action, _sink) = run_chain(Chain::default()).await;
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
    let chain = Chain {
        authenticated: true,
        ..Default::default()
    };
    let (test, action, _sink) = run_chain(chain).await;
    let delivered = delivered_without_approval(&test, &action).await;
    let host = delivered.target.host_id.clone().unwrap();
    let rows = count(
        &test.storage(),
        &format!("SELECT count(*) FROM events WHERE producer = '{TEST_PRODUCER}' AND host_id = '{host}'"),
    )
    .await;
    assert!(rows > 0);
    test.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_asking_for_signed_evidence_waits_for_unsigned_events_and_acts_on_signed_ones() {
    let signed_trust = Some(cordon_schemas::TrustLevel::Signed);
    let unsigned = Chain {
        authenticated: true,
        signed: false,
        trust: signed_trust,
    };
    let (test, action, _sink) = run_chain(unsigned).await;
    assert_eq!(action.state, ActionState::AwaitingApproval);
    let reason = action.approval_reason.unwrap_or_default();
    assert!(
        reason.contains("evidence events unsigned") && !reason.contains("unauthenticated"),
        "{reason}"
    );
    test.server.stop().await.unwrap();

    let signed = Chain {
        authenticated: true,
        signed: true,
        trust: signed_trust,
    };
    let (test, action, _sink) = run_chain(signed).await;
    delivered_without_approval(&test, &action).await;
    let valid = count(
        &test.storage(),
        "SELECT count(*) FROM events WHERE signature_status = 'valid'",
    )
    .await;
    assert!(valid > 0);
    test.server.stop().await.unwrap();
}
