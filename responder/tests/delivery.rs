//! The responder against a real HTTP receiver: success, retries, refusals, restarts,
//! approvals and dry-run (the guardrails: `guardrails.rs`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use cordon_responder::secret::Secret;
use cordon_responder::signing::verify;
use cordon_responder::store::{ActionFilter, AuditFilter};
use cordon_responder::{ActionState, Responder};
use cordon_schemas::ResponseMode;

const WAIT: Duration = Duration::from_secs(10);

/// One alert (wks-1, alice) whose playbook is `action`, sent automatically to a receiver
/// that answers `first` in turn and `rest` after them.
async fn one_automatic(action: &str, first: Vec<Reply>, rest: Reply) -> (tempfile::TempDir, Arc<Receiver>, Running) {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(first, rest).await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    raise(&alerts, "wks-1", "alice");
    let running = Running::start(
        config(&receiver, &secret_file(dir.path())),
        &dir.path().join("r.db"),
        alerts,
        playbooks(vec![step(action, auto())]),
    );
    (dir, receiver, running)
}

fn state_of(responder: &Responder, id: &str) -> ActionState {
    responder.get(id).unwrap().unwrap().state
}

fn events_of(responder: &Responder, id: &str) -> Vec<String> {
    responder
        .audit(&AuditFilter {
            action_id: Some(id.into()),
            ..AuditFilter::default()
        })
        .unwrap()
        .into_iter()
        .map(|entry| entry.event)
        .collect()
}

/// Waits for the responder to create its one action, and returns it.
async fn the_action(responder: &Responder) -> cordon_responder::Action {
    eventually(WAIT, "the action", || {
        !responder.list(&ActionFilter::default()).unwrap().is_empty()
    })
    .await;
    only_action(responder)
}

/// Waits until action `id` is in `state`.
async fn reaches(responder: &Responder, id: &str, state: ActionState) {
    eventually(WAIT, state.as_str(), || state_of(responder, id) == state).await;
}

fn only_action(responder: &Responder) -> cordon_responder::Action {
    let mut actions = responder.list(&ActionFilter::default()).unwrap();
    assert_eq!(actions.len(), 1, "{actions:?}");
    actions.remove(0)
}

#[tokio::test]
async fn a_2xx_delivers_once_with_the_contract_body_headers_and_signature() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(204)).await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    let alert = raise(&alerts, "wks-0142", "alice");
    let running = Running::start(
        config(&receiver, &secret_file(dir.path())),
        &dir.path().join("r.db"),
        alerts,
        playbooks(vec![step("isolate_host", auto())]),
    );
    eventually(WAIT, "one delivery", || receiver.seen().len() == 1).await;
    let action = only_action(&running.responder);
    reaches(&running.responder, &action.id, ActionState::Succeeded).await;

    let seen = &receiver.seen()[0];
    let body = seen.json();
    assert_eq!(body["action_id"], action.id.as_str());
    assert_eq!(body["action"], "isolate_host");
    assert_eq!(body["alert_id"], alert.id.as_str());
    assert_eq!(body["rule_id"], "test-rule");
    assert_eq!(body["target"]["host_id"], "wks-0142");
    assert_eq!(body["target"]["user_name"], "alice");
    assert_eq!(body["requested_by"], "auto");
    assert_eq!(body["reason"], "sensitive reads, denied upload, clipboard copy");
    assert!(chrono::DateTime::parse_from_rfc3339(body["requested_at"].as_str().unwrap()).is_ok());
    assert_eq!(seen.header("idempotency-key"), action.id);
    assert_eq!(seen.header("content-type"), "application/json");
    let timestamp: i64 = seen.header("x-cordon-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 30);
    let secret = Secret::new(SECRET);
    verify(
        &secret,
        timestamp,
        &seen.body,
        &seen.header("x-cordon-signature"),
        timestamp,
        0,
    )
    .unwrap();

    // Nothing more is sent, however long it runs.
    running.settled().await;
    assert_eq!(receiver.seen().len(), 1);
    let audit = running
        .responder
        .audit(&AuditFilter {
            action_id: Some(action.id.clone()),
            ..AuditFilter::default()
        })
        .unwrap();
    let attempt = audit.iter().find(|entry| entry.event == "attempt").unwrap();
    assert_eq!((attempt.status_code, attempt.attempt), (Some(204), Some(1)));
    assert!(attempt.latency_ms.is_some());
    assert_eq!(
        events_of(&running.responder, &action.id),
        ["requested", "attempt", "succeeded"]
    );
    running.stop().await;
}

#[tokio::test]
async fn a_500_then_200_is_one_action_delivered_under_one_id() {
    let (_dir, receiver, running) = one_automatic("revoke_token", vec![Reply::status(500)], Reply::status(200)).await;
    let action = the_action(&running.responder).await;
    reaches(&running.responder, &action.id, ActionState::Succeeded).await;
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("idempotency-key"), seen[1].header("idempotency-key"));
    assert_eq!(seen[0].body, seen[1].body, "every try sends the same bytes");
    assert_eq!(seen[1].json()["action_id"], action.id.as_str());
    assert_eq!(
        events_of(&running.responder, &action.id),
        ["requested", "attempt", "retry_scheduled", "attempt", "succeeded"]
    );
    running.stop().await;
}

#[tokio::test]
async fn a_429_waits_for_its_retry_after() {
    let (_dir, receiver, running) =
        one_automatic("notify", vec![Reply::status(429).retry_after("1")], Reply::status(200)).await;
    eventually(WAIT, "two tries", || receiver.seen().len() == 2).await;
    let seen = receiver.seen();
    let gap = seen[1].at - seen[0].at;
    // The backoff alone would wait at most 200 ms.
    assert!(gap >= Duration::from_millis(950), "waited only {gap:?}");
    let action = only_action(&running.responder);
    reaches(&running.responder, &action.id, ActionState::Succeeded).await;
    running.stop().await;
}

#[tokio::test]
async fn a_timeout_is_retried_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(
        vec![Reply::status(200).after(Duration::from_secs(3))],
        Reply::status(200),
    )
    .await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    raise(&alerts, "wks-1", "alice");
    let mut config = config(&receiver, &secret_file(dir.path()));
    config.targets.get_mut("isolate_host").unwrap().timeout = Duration::from_millis(300);
    let running = Running::start(
        config,
        &dir.path().join("r.db"),
        alerts,
        playbooks(vec![step("isolate_host", auto())]),
    );
    let action = the_action(&running.responder).await;
    reaches(&running.responder, &action.id, ActionState::Succeeded).await;
    assert_eq!(receiver.seen().len(), 2);
    let audit = running
        .responder
        .audit(&AuditFilter {
            action_id: Some(action.id.clone()),
            ..AuditFilter::default()
        })
        .unwrap();
    let first = audit.iter().find(|entry| entry.event == "attempt").unwrap();
    assert_eq!(first.status_code, None);
    assert!(
        first.error.as_deref().unwrap().contains("no answer within 300ms"),
        "{first:?}"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_400_fails_at_once_and_a_responder_can_retry_it() {
    let (_dir, receiver, running) = one_automatic("isolate_host", vec![Reply::status(400)], Reply::status(200)).await;
    let action = the_action(&running.responder).await;
    reaches(&running.responder, &action.id, ActionState::Failed).await;
    running.settled().await;
    assert_eq!(receiver.seen().len(), 1, "a 400 is not retried");
    let failed = running.responder.get(&action.id).unwrap().unwrap();
    assert_eq!(failed.last_status, Some(400));
    assert!(
        failed.last_error.as_deref().unwrap().contains("HTTP 400: scripted 400"),
        "{failed:?}"
    );

    let retried = running
        .responder
        .retry(&action.id, "bob", Some("receiver fixed".into()))
        .unwrap();
    assert_eq!((retried.state, retried.attempts), (ActionState::Pending, 0));
    reaches(&running.responder, &action.id, ActionState::Succeeded).await;
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("idempotency-key"), action.id);
    let audit = running.responder.audit(&AuditFilter::default()).unwrap();
    let retried = audit.iter().find(|entry| entry.event == "retried").unwrap();
    assert_eq!(
        (retried.actor.as_str(), retried.detail.as_deref()),
        ("bob", Some("receiver fixed"))
    );
    assert!(
        matches!(
            running.responder.retry(&action.id, "bob", None),
            Err(cordon_responder::ResponderError::Conflict(_))
        ),
        "a delivered action is never sent again"
    );
    running.stop().await;
}

#[tokio::test]
async fn retries_give_up_after_max_attempts_and_say_why() {
    let (_dir, receiver, running) = one_automatic("notify", vec![], Reply::status(503)).await;
    let action = the_action(&running.responder).await;
    reaches(&running.responder, &action.id, ActionState::Failed).await;
    assert_eq!(receiver.seen().len(), 4);
    let failed = running.responder.get(&action.id).unwrap().unwrap();
    assert!(
        failed.last_error.as_deref().unwrap().contains("gave up after 4 tries"),
        "{failed:?}"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_pending_action_survives_a_crash_and_is_delivered_once_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let secret = secret_file(dir.path());
    let down = Receiver::start(vec![], Reply::status(503)).await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    raise(&alerts, "wks-1", "alice");
    let mut slow_retries = config(&down, &secret);
    slow_retries.retry.initial = Duration::from_millis(200);
    slow_retries.retry.max_attempts = Some(100);
    let running = Running::start(
        slow_retries,
        &db,
        alerts.clone(),
        playbooks(vec![step("isolate_host", auto())]),
    );
    eventually(WAIT, "a failed try", || !down.seen().is_empty()).await;
    let action = only_action(&running.responder);
    running.crash().await;

    let up = Receiver::start(vec![], Reply::status(200)).await;
    let running = Running::start(
        config(&up, &secret),
        &db,
        alerts.clone(),
        playbooks(vec![step("isolate_host", auto())]),
    );
    reaches(&running.responder, &action.id, ActionState::Succeeded).await;
    assert_eq!(up.seen().len(), 1);
    assert_eq!(up.seen()[0].header("idempotency-key"), action.id);
    assert_eq!(
        only_action(&running.responder).id,
        action.id,
        "the alert was not answered twice"
    );
    running.crash().await;

    // A third start sends nothing: the action succeeded.
    let running = Running::start(
        config(&up, &secret),
        &db,
        alerts,
        playbooks(vec![step("isolate_host", auto())]),
    );
    running.settled().await;
    assert_eq!(up.seen().len(), 1);
    running.stop().await;
}

#[tokio::test]
async fn an_action_in_flight_at_a_crash_is_resent_under_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let secret = secret_file(dir.path());
    // The receiver takes the request and answers late: the crash comes in between.
    let receiver = Receiver::start(
        vec![Reply::status(200).after(Duration::from_secs(3))],
        Reply::status(200),
    )
    .await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    raise(&alerts, "wks-1", "alice");
    let running = Running::start(
        config(&receiver, &secret),
        &db,
        alerts.clone(),
        playbooks(vec![step("isolate_host", auto())]),
    );
    eventually(WAIT, "the try under way", || receiver.seen().len() == 1).await;
    let action = only_action(&running.responder);
    assert_eq!(action.state, ActionState::InFlight);
    running.crash().await;

    let running = Running::start(
        config(&receiver, &secret),
        &db,
        alerts,
        playbooks(vec![step("isolate_host", auto())]),
    );
    reaches(&running.responder, &action.id, ActionState::Succeeded).await;
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("idempotency-key"), seen[1].header("idempotency-key"));
    assert_eq!(seen[0].body, seen[1].body);
    let events = events_of(&running.responder, &action.id);
    assert_eq!(events, ["requested", "resumed", "attempt", "succeeded"]);
    running.stop().await;
}

#[tokio::test]
async fn approval_sends_and_denial_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(200)).await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    raise(&alerts, "wks-1", "alice");
    raise(&alerts, "wks-2", "bob");
    let running = Running::start(
        config(&receiver, &secret_file(dir.path())),
        &dir.path().join("r.db"),
        alerts,
        playbooks(vec![step("isolate_host", ResponseMode::Approval)]),
    );
    eventually(WAIT, "two held actions", || {
        running
            .responder
            .list(&ActionFilter {
                state: Some(ActionState::AwaitingApproval),
                ..ActionFilter::default()
            })
            .unwrap()
            .len()
            == 2
    })
    .await;
    running.settled().await;
    assert!(receiver.seen().is_empty(), "nothing is sent before approval");
    let held = running.responder.list(&ActionFilter::default()).unwrap();
    let on = |host: &str| {
        held.iter()
            .find(|a| a.target.host_id.as_deref() == Some(host))
            .unwrap()
            .clone()
    };
    let (first, second) = (on("wks-1"), on("wks-2"));
    assert!(first.approval_reason.as_deref().unwrap().contains("asks for approval"));

    let approved = running
        .responder
        .approve(&first.id, "carol", Some("user confirmed".into()))
        .unwrap();
    assert_eq!(approved.decided_by.as_deref(), Some("carol"));
    let denied = running
        .responder
        .deny(&second.id, "carol", Some("false positive".into()))
        .unwrap();
    assert_eq!(denied.state, ActionState::Denied);
    reaches(&running.responder, &first.id, ActionState::Succeeded).await;
    running.settled().await;
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].json()["target"]["host_id"], "wks-1");
    assert_eq!(
        events_of(&running.responder, &first.id),
        ["requested", "held", "approved", "attempt", "succeeded"]
    );
    assert_eq!(
        events_of(&running.responder, &second.id),
        ["requested", "held", "denied"]
    );
    running.stop().await;
}

#[tokio::test]
async fn dry_run_records_what_would_be_sent_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(200)).await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    raise(&alerts, "wks-1", "alice");
    let mut config = config(&receiver, &secret_file(dir.path()));
    config.dry_run = true;
    // Secrets in a target URL's path and query are never shown.
    for target in config.targets.values_mut() {
        target.url.push_str("/s3cr3t-path?apikey=s3cr3t-query");
    }
    let running = Running::start(
        config,
        &dir.path().join("r.db"),
        alerts,
        playbooks(vec![step("isolate_host", auto()), step("revoke_token", auto())]),
    );
    eventually(WAIT, "two dry runs", || {
        running
            .responder
            .list(&ActionFilter {
                state: Some(ActionState::DryRun),
                ..ActionFilter::default()
            })
            .unwrap()
            .len()
            == 2
    })
    .await;
    running.settled().await;
    assert!(receiver.seen().is_empty());
    let audit = running.responder.audit(&AuditFilter::default()).unwrap();
    let recorded: Vec<_> = audit.iter().filter(|entry| entry.event == "dry_run").collect();
    assert_eq!(recorded.len(), 2);
    let detail = recorded[0].detail.as_deref().unwrap();
    let origin = receiver.url("");
    assert!(
        detail.contains(origin.trim_end_matches('/')) && detail.contains("\"action_id\":\"act-"),
        "{detail}"
    );
    let everything = serde_json::to_string(&audit).unwrap();
    assert!(!everything.contains("s3cr3t"), "{everything}");
    running.stop().await;
}

#[tokio::test]
async fn a_manual_request_is_sent_at_once_and_names_who_asked() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(200)).await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    let alert = raise(&alerts, "wks-7", "dave");
    let running = Running::start(
        config(&receiver, &secret_file(dir.path())),
        &dir.path().join("r.db"),
        alerts,
        playbooks(vec![]),
    );
    let request = |action: &str, host: Option<&str>, reason: &str| cordon_responder::service::ManualRequest {
        action: ActionKind::parse(action).unwrap(),
        host_id: host.map(str::to_string),
        user_name: None,
        token_id: None,
        reason: reason.into(),
        alert_id: None,
    };
    assert!(
        running
            .responder
            .request(request("isolate_host", None, "x"), "erin")
            .is_err(),
        "needs a host"
    );
    assert!(
        running
            .responder
            .request(request("isolate_host", Some("wks-7"), " "), "erin")
            .is_err(),
        "needs a reason"
    );
    // An unknown action does not get as far as the responder: the request does not read.
    let unknown = serde_json::json!({"action": "wipe_disk", "host_id": "wks-7", "reason": "x"});
    let error = serde_json::from_value::<cordon_responder::service::ManualRequest>(unknown).unwrap_err();
    assert!(error.to_string().contains("unknown variant `wipe_disk`"), "{error}");
    let mut from_alert = request("revoke_token", None, "stolen token suspected");
    from_alert.alert_id = Some(alert.id.clone());
    let action = running.responder.request(from_alert, "erin").unwrap();
    assert_eq!(
        action.target.user_name.as_deref(),
        Some("dave"),
        "the target comes from the alert"
    );
    eventually(WAIT, "delivery", || receiver.seen().len() == 1).await;
    let body = receiver.seen()[0].json();
    assert_eq!(body["requested_by"], "erin");
    assert_eq!(body["reason"], "stolen token suspected");
    assert_eq!(body["alert_id"], alert.id.as_str());
    running.stop().await;
}
