use super::*;
use crate::alerts::Triage;
use crate::matches::EvidenceRef;
use crate::matches::Match;
use std::collections::BTreeMap;

const MINUTE: i64 = 60_000_000_000;

fn meta() -> RuleMeta {
    RuleMeta {
        title: "Repeated denies".into(),
        severity: Severity::Medium,
        attack: vec!["T1083".into()],
        suppression: Duration::from_secs(3600),
        suppress_by: Vec::new(),
        suppress_missing: crate::settings::MissingField::Group,
    }
}

fn found(user: &str, ids: &[&str], first: i64, last: i64) -> Match {
    let mut entity = BTreeMap::new();
    entity.insert("user_name".to_string(), Some(user.to_string()));
    Match {
        rule_id: "repeated-policy-denies".into(),
        entity,
        first_seen: first,
        last_seen: last,
        evidence: ids
            .iter()
            .enumerate()
            .map(|(index, id)| EvidenceRef {
                event_id: id.to_string(),
                time: Some(first + index as i64),
                kind: Some("policy.decision".into()),
                host_id: Some("wks-1".into()),
            })
            .collect(),
        fields: serde_json::Map::new(),
        detected_after: None,
    }
}

#[test]
fn folds_repeats_and_ignores_what_it_has_seen() {
    let store = AlertStore::in_memory();
    let Folded::Created(alert) = store.fold(&found("alice", &["a", "b"], 0, MINUTE), &meta()).unwrap() else {
        panic!("first match creates");
    };
    assert_eq!(alert.count, 1);
    assert_eq!(alert.user_name.as_deref(), Some("alice"));
    assert_eq!(
        store.fold(&found("alice", &["a", "b"], 0, MINUTE), &meta()).unwrap(),
        Folded::Unchanged
    );
    assert_eq!(
        store.fold(&found("alice", &["b"], 0, MINUTE), &meta()).unwrap(),
        Folded::Unchanged,
        "evidence the alert holds is no new match"
    );
    let Folded::Updated(alert) = store
        .fold(&found("alice", &["a", "b", "c"], 0, 2 * MINUTE), &meta())
        .unwrap()
    else {
        panic!("a new match folds");
    };
    assert_eq!((alert.count, alert.evidence.len(), alert.evidence_total), (2, 3, 3));
    assert!(alert.risk > meta().severity.base_risk());
    assert!(matches!(
        store.fold(&found("bob", &["x"], 0, MINUTE), &meta()).unwrap(),
        Folded::Created(_)
    ));
    assert_eq!(store.list(&AlertFilter::default()).unwrap().len(), 2);
}

#[test]
fn triage_changes_status_assignee_and_keeps_a_history() {
    let store = AlertStore::in_memory();
    let Folded::Created(alert) = store.fold(&found("alice", &["a"], 0, MINUTE), &meta()).unwrap() else {
        panic!("created");
    };
    let ack = Triage {
        status: Some(AlertStatus::Acknowledged),
        assignee: Some("carol".into()),
        ..Triage::default()
    };
    let acked = store.triage(&alert.id, &ack, "carol").unwrap().unwrap().unwrap();
    assert_eq!(
        (acked.status, acked.assignee.as_deref()),
        (AlertStatus::Acknowledged, Some("carol"))
    );
    let close = Triage {
        status: Some(AlertStatus::Closed),
        ..Triage::default()
    };
    assert!(
        store
            .triage(&alert.id, &close, "carol")
            .unwrap()
            .unwrap_err()
            .contains("close_reason")
    );
    let close = Triage {
        status: Some(AlertStatus::Closed),
        close_reason: Some(CloseReason::FalsePositive),
        note: Some("the build agent's allowed curl".into()),
        ..Triage::default()
    };
    let closed = store.triage(&alert.id, &close, "dave").unwrap().unwrap().unwrap();
    assert_eq!(closed.close_reason, Some(CloseReason::FalsePositive));
    let history: Vec<(String, String, String)> = closed
        .notes
        .iter()
        .map(|n| (n.author.clone(), n.kind.clone(), n.text.clone()))
        .collect();
    assert_eq!(
        history,
        [
            (
                "carol".into(),
                "change".into(),
                "status open -> acknowledged; assigned to carol".into()
            ),
            (
                "dave".into(),
                "change".into(),
                "status acknowledged -> closed; closed as false_positive".into()
            ),
            ("dave".into(), "note".into(), "the build agent's allowed curl".into()),
        ]
    );
    assert!(store.triage("alr-none", &close, "dave").unwrap().unwrap().is_none());
    // Reopening drops the close reason.
    let reopen = Triage {
        status: Some(AlertStatus::Open),
        ..Triage::default()
    };
    assert_eq!(
        store
            .triage(&alert.id, &reopen, "dave")
            .unwrap()
            .unwrap()
            .unwrap()
            .close_reason,
        None
    );
}

#[test]
fn created_after_walks_alerts_in_creation_order_once() {
    let store = AlertStore::in_memory();
    store.fold(&found("alice", &["a"], 0, MINUTE), &meta()).unwrap();
    store.fold(&found("bob", &["b"], 0, MINUTE), &meta()).unwrap();
    let first = store.created_after(0, 10).unwrap();
    let users: Vec<_> = first.iter().map(|(_, a)| a.user_name.clone().unwrap()).collect();
    assert_eq!(users, ["alice", "bob"]);
    assert_eq!(first[0].1.evidence.len(), 1);
    // A fold into alice's alert is no new alert; carol's is.
    store
        .fold(&found("alice", &["a", "c"], 0, 2 * MINUTE), &meta())
        .unwrap();
    store.fold(&found("carol", &["d"], 0, MINUTE), &meta()).unwrap();
    let after = store.created_after(first[1].0, 10).unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].1.user_name.as_deref(), Some("carol"));
    assert_eq!(
        store.created_after(first[0].0, 1).unwrap()[0].1.user_name.as_deref(),
        Some("bob")
    );
}

#[test]
fn a_new_alert_after_the_suppression_period_or_once_closed() {
    let store = AlertStore::in_memory();
    let Folded::Created(first) = store.fold(&found("alice", &["a"], 0, 0), &meta()).unwrap() else {
        panic!()
    };
    assert!(matches!(
        store
            .fold(&found("alice", &["b"], 61 * MINUTE, 61 * MINUTE), &meta())
            .unwrap(),
        Folded::Created(_)
    ));
    let close = Triage {
        status: Some(AlertStatus::Closed),
        close_reason: Some(CloseReason::Duplicate),
        ..Triage::default()
    };
    store.triage(&first.id, &close, "test").unwrap().unwrap().unwrap();
    let filter = AlertFilter {
        status: Some(AlertStatus::Closed),
        ..AlertFilter::default()
    };
    assert_eq!(store.list(&filter).unwrap().len(), 1);
}

#[test]
fn evidence_is_capped_but_counted_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    let ids: Vec<String> = (0..10).map(|i| format!("e{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    {
        let store = AlertStore::open(&path, 4).unwrap();
        store.fold(&found("alice", &refs, 0, MINUTE), &meta()).unwrap();
    }
    let store = AlertStore::open(&path, 4).unwrap();
    let alerts = store.list(&AlertFilter::default()).unwrap();
    assert_eq!((alerts[0].evidence.len(), alerts[0].evidence_total), (4, 10));
    assert_eq!(
        store.fold(&found("alice", &refs, 0, MINUTE), &meta()).unwrap(),
        Folded::Unchanged,
        "the same match after a restart is not folded twice"
    );
}

#[test]
fn suppress_by_keeps_destinations_apart_and_a_missing_one_follows_the_rule() {
    let with_destination = |ids: &[&str], destination: Option<&str>| {
        let mut found = found("alice", ids, 0, MINUTE);
        if let Some(destination) = destination {
            found.fields.insert("destination".into(), destination.into());
        }
        found
    };
    let by_destination = |missing| RuleMeta {
        suppress_by: vec!["destination".into()],
        suppress_missing: missing,
        ..meta()
    };
    let created = |folded: Folded| matches!(folded, Folded::Created(_));

    let grouping = by_destination(crate::settings::MissingField::Group);
    let store = AlertStore::in_memory();
    assert!(created(
        store
            .fold(&with_destination(&["a"], Some("paste.example")), &grouping)
            .unwrap()
    ));
    assert!(created(
        store
            .fold(&with_destination(&["b"], Some("transfer.example")), &grouping)
            .unwrap()
    ));
    assert!(!created(
        store
            .fold(&with_destination(&["c"], Some("paste.example")), &grouping)
            .unwrap()
    ));
    // Missing, grouped: the first raises, the next folds into it.
    assert!(created(store.fold(&with_destination(&["d"], None), &grouping).unwrap()));
    assert!(!created(
        store.fold(&with_destination(&["e"], None), &grouping).unwrap()
    ));
    assert_eq!(store.list(&AlertFilter::default()).unwrap().len(), 3);

    // Missing, never suppressed: each raises its own; seen evidence still changes nothing.
    let never = by_destination(crate::settings::MissingField::Never);
    let store = AlertStore::in_memory();
    assert!(created(store.fold(&with_destination(&["d"], None), &never).unwrap()));
    assert!(created(store.fold(&with_destination(&["e"], None), &never).unwrap()));
    assert_eq!(
        store.fold(&with_destination(&["e"], None), &never).unwrap(),
        Folded::Unchanged
    );
    assert!(created(
        store
            .fold(&with_destination(&["f"], Some("paste.example")), &never)
            .unwrap()
    ));
    assert!(!created(
        store
            .fold(&with_destination(&["g"], Some("paste.example")), &never)
            .unwrap()
    ));
}
