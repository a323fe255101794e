//! The responder when its targets fail: an outage longer than any fixed count of tries
//! covers is ridden out and each action delivered once after it; the retry horizon ends
//! the tries and says so; a target that hangs does not hold up another.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use cordon_responder::store::ActionFilter;
use cordon_responder::{ActionState, Responder};
use cordon_schemas::ActionKind;

/// The outage ridden out. The finding was 2 minutes (all 35 actions failed after 8
/// tries in 78-114 s); `CORDON_TEST_OUTAGE_SECS=300` runs the 5 minutes of the issue.
fn outage() -> Duration {
    let seconds = std::env::var("CORDON_TEST_OUTAGE_SECS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(seconds)
}

fn states(responder: &Responder) -> BTreeMap<String, ActionState> {
    responder
        .list(&ActionFilter {
            limit: 1000,
            ..ActionFilter::default()
        })
        .unwrap()
        .into_iter()
        .map(|action| (action.id, action.state))
        .collect()
}

#[tokio::test]
async fn an_outage_is_ridden_out_and_each_action_delivered_once_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(200)).await;
    let outage = outage();
    receiver.down_for(outage);
    let alerts = Arc::new(MemoryFeed::in_memory());
    let hosts = 18;
    for host in 0..hosts {
        raise(&alerts, &format!("wks-{host}"), &format!("user-{host}"));
    }
    // Backoff as shipped (doubling, jittered), capped at 2 s so the test ends soon
    // after the outage; no cap on tries: the default 24 h horizon decides.
    let mut settings = config(&receiver, &secret_file(dir.path()));
    settings.retry.initial = Duration::from_millis(500);
    settings.retry.max_delay = Duration::from_secs(2);
    settings.retry.max_attempts = None;
    settings.retry.horizon = cordon_responder::config::RetryConfig::default().horizon;
    // Every host's revocation is let through: this is about the outage, not the caps.
    settings.guardrails.revocation_cap = 1_000;
    settings.guardrails.revocation_cap_per_user = 1_000;
    let running = Running::start(
        settings,
        &dir.path().join("r.db"),
        alerts,
        playbooks(vec![step("revoke_token", auto()), step("notify", auto())]),
    );
    let started = Instant::now();
    eventually(outage + Duration::from_secs(30), "every action delivered", || {
        let states = states(&running.responder);
        assert!(
            !states.values().any(|state| *state == ActionState::Failed),
            "an action failed during the outage: {states:?}"
        );
        states.len() == hosts * 2 && states.values().all(|state| *state == ActionState::Succeeded)
    })
    .await;
    assert!(started.elapsed() >= outage, "delivered only after the outage");
    let seen = receiver.seen();
    assert!(
        seen.iter().filter(|request| request.status == 503).count() >= hosts * 2 * 3,
        "each action was tried several times during the outage"
    );
    let mut delivered: BTreeMap<String, usize> = BTreeMap::new();
    for request in seen.iter().filter(|request| request.status == 200) {
        *delivered.entry(request.header("idempotency-key")).or_default() += 1;
    }
    assert_eq!(delivered.len(), hosts * 2);
    assert!(
        delivered.values().all(|count| *count == 1),
        "delivered once each: {delivered:?}"
    );
    running.stop().await;
}

#[tokio::test]
async fn the_horizon_ends_the_tries_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(503)).await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    raise(&alerts, "wks-1", "alice");
    let mut settings = config(&receiver, &secret_file(dir.path()));
    settings.retry.max_attempts = None;
    settings.retry.horizon = Duration::from_secs(2);
    let running = Running::start(
        settings,
        &dir.path().join("r.db"),
        alerts,
        playbooks(vec![step("notify", auto())]),
    );
    eventually(Duration::from_secs(10), "the action to fail", || {
        states(&running.responder)
            .values()
            .any(|state| *state == ActionState::Failed)
    })
    .await;
    let action = running.responder.list(&ActionFilter::default()).unwrap().remove(0);
    let why = action.last_error.unwrap_or_default();
    assert!(why.contains("responder.retry.horizon is 2s"), "{why}");
    assert!(receiver.seen().len() >= 5, "tried until the horizon, not once");
    running.stop().await;
}

#[tokio::test]
async fn a_hanging_target_does_not_hold_up_another() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let hanging = Receiver::start(vec![], Reply::status(200).after(Duration::from_secs(5))).await;
    let healthy = Receiver::start(vec![], Reply::status(200)).await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    let mut settings = config(&hanging, &secret);
    settings
        .targets
        .insert("revoke_token".into(), target(healthy.url("revoke_token"), &secret));
    for target in settings.targets.values_mut() {
        target.timeout = Duration::from_secs(5);
    }
    let notifications = 24;
    for host in 0..notifications {
        raise(&alerts, &format!("wks-{host}"), "alice");
    }
    let running = Running::start(
        settings,
        &dir.path().join("r.db"),
        alerts.clone(),
        playbooks(vec![step("notify", auto())]),
    );
    eventually(Duration::from_secs(10), "the hanging target's slots to fill", || {
        hanging.seen().len() >= 8
    })
    .await;
    let asked = Instant::now();
    let revoke = running
        .responder
        .request(
            cordon_responder::service::ManualRequest {
                action: ActionKind::RevokeToken,
                host_id: Some("wks-0".into()),
                user_name: Some("alice".into()),
                token_id: Some("tok-1".into()),
                reason: "stolen token".into(),
                alert_id: None,
            },
            "analyst",
        )
        .unwrap();
    eventually(Duration::from_secs(20), "the revoke", || {
        running.responder.get(&revoke.id).unwrap().unwrap().state == ActionState::Succeeded
    })
    .await;
    // Not a time bound: the revoke was delivered while every try at the hanging
    // target was still waiting for its answer (5 s), so it did not queue behind one.
    let ended: Vec<_> = running
        .responder
        .list(&ActionFilter::default())
        .unwrap()
        .into_iter()
        .filter(|action| action.action == "notify" && (action.last_status.is_some() || action.last_error.is_some()))
        .map(|action| action.id)
        .collect();
    assert!(
        ended.is_empty(),
        "the revoke ({:?} after it was asked) was delivered only after tries at the hanging target ended: {ended:?}",
        asked.elapsed()
    );
    assert_eq!(healthy.seen().len(), 1);
    running.stop().await;
}
