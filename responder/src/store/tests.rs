use super::*;
use crate::model::now_nanos;

fn body(id: &str, action: &str) -> WebhookBody {
    WebhookBody {
        action_id: id.into(),
        action: action.into(),
        alert_id: Some("alr-1".into()),
        rule_id: Some("exfil-attempt-chain".into()),
        target: Target {
            host_id: Some("wks-1".into()),
            user_name: Some("alice".into()),
            token_id: None,
        },
        reason: "test".into(),
        requested_by: "auto".into(),
        requested_at: rfc3339(now_nanos()),
    }
}

fn new(id: &str, action: &str, state: ActionState) -> NewAction {
    NewAction {
        body: body(id, action),
        automatic: true,
        state,
        note: (state == ActionState::AwaitingApproval).then(|| "playbook asks for approval".to_string()),
    }
}

#[test]
fn an_action_is_stored_once_and_claimed_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = ActionStore::open(&dir.path().join("r.db")).unwrap();
    assert!(
        store
            .insert(&new("act-1", "isolate_host", ActionState::Pending))
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .insert(&new("act-1", "isolate_host", ActionState::Pending))
            .unwrap()
            .is_none()
    );
    assert!(
        store.claim_due("notify", now_nanos(), 10).unwrap().is_empty(),
        "claims are per action"
    );
    let claimed = store.claim_due("isolate_host", now_nanos(), 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempt, 1);
    assert!(
        store.claim_due("isolate_host", now_nanos(), 10).unwrap().is_empty(),
        "in flight is not due"
    );
    let action = store.finish_attempt(&claimed[0], None, &After::Succeeded).unwrap();
    assert_eq!(action.state, ActionState::Succeeded);
    let events: Vec<_> = store
        .audit(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .map(|entry| entry.event)
        .collect();
    assert_eq!(events, ["requested", "succeeded"]);
}

#[test]
fn interrupted_tries_resume_and_decisions_need_the_right_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let first_try;
    {
        let store = ActionStore::open(&path).unwrap();
        store
            .insert(&new("act-1", "revoke_token", ActionState::Pending))
            .unwrap();
        store
            .insert(&new("act-2", "isolate_host", ActionState::AwaitingApproval))
            .unwrap();
        let first = store.claim_due("revoke_token", now_nanos(), 10).unwrap();
        assert_eq!(first.len(), 1);
        first_try = first[0].trying_since;
    }
    let store = ActionStore::open(&path).unwrap();
    assert_eq!(store.resume_interrupted().unwrap(), 1);
    let again = store.claim_due("revoke_token", now_nanos(), 10).unwrap();
    assert_eq!((again[0].action.id.as_str(), again[0].attempt), ("act-1", 2));
    assert_eq!(again[0].trying_since, first_try, "a second try keeps the round's start");

    assert!(matches!(
        store.retry("act-2", "bob", None),
        Err(ResponderError::Conflict(_))
    ));
    let approved = store
        .approve("act-2", "bob", Some("confirmed with the user".into()))
        .unwrap();
    assert_eq!(approved.state, ActionState::Pending);
    assert_eq!(approved.decided_by.as_deref(), Some("bob"));
    assert!(matches!(
        store.deny("act-2", "carol", None),
        Err(ResponderError::Conflict(_))
    ));
    assert!(matches!(
        store.approve("act-9", "bob", None),
        Err(ResponderError::NotFound(_))
    ));
}

#[test]
fn a_database_made_before_first_attempt_at_opens_and_claims() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    {
        let store = ActionStore::open(&path).unwrap();
        store.insert(&new("act-1", "notify", ActionState::Pending)).unwrap();
        // As a release before migrations left it: no column, no schema version.
        store
            .execute("ALTER TABLE actions DROP COLUMN first_attempt_at")
            .unwrap();
        store.execute("PRAGMA user_version = 0").unwrap();
    }
    let store = ActionStore::open(&path).unwrap();
    let before = now_nanos();
    let claimed = store.claim_due("notify", now_nanos(), 10).unwrap();
    assert!(claimed[0].trying_since >= before);
}

#[test]
fn a_retry_by_hand_starts_a_new_round() {
    let dir = tempfile::tempdir().unwrap();
    let store = ActionStore::open(&dir.path().join("r.db")).unwrap();
    store.insert(&new("act-1", "notify", ActionState::Pending)).unwrap();
    let first = store.claim_due("notify", now_nanos(), 10).unwrap().remove(0);
    store
        .finish_attempt(&first, None, &After::Failed("gave up".into()))
        .unwrap();
    store.retry("act-1", "bob", None).unwrap();
    let later = now_nanos() + 1_000_000_000;
    let again = store.claim_due("notify", later, 10).unwrap().remove(0);
    assert_eq!((again.attempt, again.trying_since), (1, later));
}

#[test]
fn the_audit_log_refuses_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = ActionStore::open(&dir.path().join("r.db")).unwrap();
    store.insert(&new("act-1", "notify", ActionState::Pending)).unwrap();
    let update = store.execute("UPDATE audit SET actor = 'mallory'").unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    assert!(store.execute("DELETE FROM audit").is_err());
    assert_eq!(store.audit(&AuditFilter::default()).unwrap()[0].actor, "auto");
}

#[test]
fn the_cap_counts_automatic_isolations_let_through() {
    let dir = tempfile::tempdir().unwrap();
    let store = ActionStore::open(&dir.path().join("r.db")).unwrap();
    store
        .insert(&new("act-1", "isolate_host", ActionState::Pending))
        .unwrap();
    store
        .insert(&new("act-2", "isolate_host", ActionState::AwaitingApproval))
        .unwrap();
    store
        .insert(&new("act-3", "revoke_token", ActionState::Pending))
        .unwrap();
    let since = now_nanos() - 60_000_000_000;
    assert_eq!(store.count_automatic_since(&["isolate_host"], since, None).unwrap(), 1);
    let for_alice = store.count_automatic_since(&["isolate_host"], since, Some("alice"));
    assert_eq!(for_alice.unwrap(), 1, "the test actions are alice's");
    let for_bob = store.count_automatic_since(&["isolate_host", "revoke_token"], since, Some("bob"));
    assert_eq!(for_bob.unwrap(), 0);
    assert_eq!(
        store
            .count_automatic_since(&["isolate_host"], now_nanos() + 1, None)
            .unwrap(),
        0
    );
}
