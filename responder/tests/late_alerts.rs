//! A playbook step with `late_after`: an alert detected long after its last event (a
//! laptop's buffered upload) waits for a responder, one detected live runs at once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use cordon_responder::ActionState;
use cordon_responder::store::ActionFilter;
use cordon_schemas::{ActionKind, ResponseMode, ResponseStep};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn an_alert_detected_hours_late_waits_for_approval_and_a_live_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(vec![], Reply::status(200)).await;
    let alerts = Arc::new(MemoryFeed::in_memory());
    let late = raise_detected_after(&alerts, "wks-late", "alice", Duration::from_secs(6 * 3600));
    assert_eq!(late.detected_after, Some(6.0 * 3600.0));
    raise(&alerts, "wks-live", "bob");
    let mut isolate = ResponseStep::new(ActionKind::IsolateHost, ResponseMode::Auto);
    isolate.late_after = Some(Duration::from_secs(3600));
    let running = Running::start(
        config(&receiver, &secret_file(dir.path())),
        &dir.path().join("r.db"),
        alerts,
        playbooks(vec![isolate]),
    );
    eventually(WAIT, "the live alert's isolation delivered", || {
        receiver.seen().len() == 1
    })
    .await;
    assert_eq!(receiver.seen()[0].json()["target"]["host_id"], "wks-live");
    let held = running
        .responder
        .list(&ActionFilter {
            state: Some(ActionState::AwaitingApproval),
            ..ActionFilter::default()
        })
        .unwrap();
    assert_eq!(held.len(), 1, "{held:#?}");
    assert_eq!(held[0].target.host_id.as_deref(), Some("wks-late"));
    let reason = held[0].approval_reason.as_deref().unwrap();
    assert!(reason.contains("detected 6h after its last event"), "{reason}");
    running.stop().await;
}
