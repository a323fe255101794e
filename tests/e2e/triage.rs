//! Alert triage through the API and CLI: acknowledge, assign, close with a reason,
//! notes, each change recorded with who made it; roles enforced.

use cordon::api::Role;
use cordon::simulate::Scenario;
use serde_json::{Value, json};

use crate::common::*;

async fn patch(server: &TestServer, id: &str, role: Option<Role>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .patch(format!("{}/api/v1/alerts/{id}", server.api_url()))
        .json(&body);
    if let Some(role) = role {
        request = request.bearer_auth(token_for(role));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_acknowledge_assign_and_close_alerts_with_a_reason() {
    let server = TestServer::start().await;
    let events = simulated(41, 600, &[Scenario::RepeatedPolicyDenies]);
    server.send_all(&events).await;
    server.detections_idle().await;
    let alerts = server.alerts().await;
    let alert = alerts
        .iter()
        .find(|alert| alert["rule_id"] == "repeated-policy-denies")
        .expect("the attack raised its alert");
    let id = alert["id"].as_str().unwrap();
    assert_eq!(alert["status"], "open");

    let ack = json!({"status": "acknowledged", "assignee": "test analyst"});
    assert_eq!(patch(&server, id, None, ack.clone()).await.0, 401);
    let (status, body) = patch(&server, id, Some(Role::Engineer), ack.clone()).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = patch(&server, id, Some(Role::Analyst), ack).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["assignee"].as_str()),
        (Some("acknowledged"), Some("test analyst"))
    );
    let (status, body) = patch(&server, id, Some(Role::Analyst), json!({"status": "closed"})).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("close_reason"), "{body}");
    let (status, _) = patch(&server, id, Some(Role::Analyst), json!({"status": "done"})).await;
    assert_eq!(status, 400, "an unknown status is refused");
    assert_eq!(
        patch(&server, "alr-nope", Some(Role::Analyst), json!({"note": "x"}))
            .await
            .0,
        404
    );

    let api = server.api_url();
    let (ok, text) = cli(
        &[
            "alerts",
            "update",
            id,
            "--status",
            "closed",
            "--reason",
            "true_positive",
            "--note",
            "user confirmed the upload",
        ],
        &api,
        &token_for(Role::Responder),
    );
    assert!(ok, "{text}");
    let (ok, text) = cli(
        &["alerts", "update", id, "--status", "shut"],
        &api,
        &token_for(Role::Analyst),
    );
    assert!(!ok && text.contains("open, acknowledged or closed"), "{text}");
    let (ok, text) = cli(&["alerts", "show", id], &api, &token_for(Role::Analyst));
    assert!(ok, "{text}");
    for expected in [
        "closed",
        "true_positive",
        "status open -> acknowledged; assigned to test analyst",
        "test responder",
        "user confirmed the upload",
        "evidence (",
    ] {
        assert!(text.contains(expected), "`alerts show` lacks {expected:?}: {text}");
    }
    let (status, body) = server
        .api_get(&format!("/api/v1/alerts/{id}"), Some(Role::Engineer))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["close_reason"], "true_positive");
    assert_eq!(body["notes"].as_array().unwrap().len(), 3, "{body}");
    server.stop().await;
}
