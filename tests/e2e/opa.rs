//! `POST /v1/opa/logs`: OPA's own decision-log upload (gzip JSON array, as OPA's docs
//! show it) becomes `policy.decision` events, and `repeated-policy-denies` fires on them.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

/// One decision-log entry in the shape OPA uploads (docs: "Decision Logs").
fn entry(index: usize, allow: bool, host_label: Option<&str>) -> Value {
    let mut labels = json!({"app": "cowork-broker", "id": "5c3f0a1e-opa-instance", "version": "0.70.0"});
    if let Some(host) = host_label {
        labels["host.id"] = json!(host);
    }
    json!({
        "labels": labels,
        "decision_id": format!("0b7e3c52-7d7a-4c6e-9a51-{index:012}"),
        "bundles": {"agent": {"revision": "r42"}},
        "path": "agent/broker/allow",
        "input": {"user": "mallory", "action": "file.read", "path": format!("/srv/finance/q{index}.xlsx"),
                  "gen_ai.agent.id": "cowork-9b1"},
        "result": {"allow": allow, "reason": if allow { "ok" } else { "path not allowed for agents" }},
        "requested_by": "127.0.0.1:51234",
        "timestamp": format!("2026-01-15T10:0{}:{:02}.000000Z", index / 60, index % 60 * 7 % 60),
        "metrics": {"timer_rego_query_eval_ns": 51234}
    })
}

fn gzip(value: &Value) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(value.to_string().as_bytes()).unwrap();
    encoder.finish().unwrap()
}

async fn upload(test: &TestServer, body: Vec<u8>, gzipped: bool) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/v1/opa/logs", test.server.http_addr))
        .header("content-type", "application/json")
        .body(body);
    if gzipped {
        request = request.header("content-encoding", "gzip");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opa_decision_logs_become_policy_decisions_and_fire_repeated_denies() {
    let test = TestServer::start().await;
    // Six denies within five minutes by one user and agent, and one allow.
    let mut entries: Vec<Value> = (0..6).map(|index| entry(index, false, Some("wks-0777"))).collect();
    entries.push(entry(6, true, Some("wks-0777")));
    let (status, body) = upload(&test, gzip(&Value::Array(entries.clone())), true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stored"], 7, "{body}");

    // Re-uploading (OPA retries on a lost answer) stores nothing twice.
    let (status, body) = upload(&test, gzip(&Value::Array(entries)), true).await;
    assert_eq!(status, 200);
    assert_eq!(body["duplicates"], 7, "{body}");

    let rows = count(
        &test.storage(),
        "SELECT count(*) FROM events WHERE event_name = 'policy.decision' AND service_name = 'opa' \
         AND host_id = 'wks-0777' AND user_name = 'mallory' AND gen_ai_agent_id = 'cowork-9b1' \
         AND policy_path = 'agent/broker/allow' AND policy_input_action = 'file.read' \
         AND policy_input_path LIKE '/srv/finance/q%' AND policy_decision_id LIKE '0b7e3c52-%'",
    )
    .await;
    assert_eq!(rows, 7);
    let denies = count(
        &test.storage(),
        "SELECT count(*) FROM events WHERE policy_decision = 'deny' AND policy_reason = 'path not allowed for agents'",
    )
    .await;
    assert_eq!(denies, 6);

    test.detections_idle().await;
    let mut alerts = Vec::new();
    for _ in 0..50 {
        alerts = test.alerts().await;
        if !alerts.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let alert = alerts
        .iter()
        .find(|alert| alert["rule_id"] == "repeated-policy-denies")
        .unwrap_or_else(|| panic!("no repeated-policy-denies alert: {alerts:?}"));
    assert_eq!(alert["user_name"], "mallory");
    assert_eq!(alert["host_id"], "wks-0777");
    assert_eq!(alert["evidence_total"], 6, "{alert}");
    test.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_opa_uploads_get_a_clear_answer_and_are_counted() {
    let test = TestServer::start().await;
    // Not JSON: 400 naming what was expected.
    let (status, body) = upload(&test, b"decision_id=1".to_vec(), false).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("OPA decision-log upload"),
        "{body}"
    );
    // Not gzip although it says so.
    let (status, _) = upload(&test, b"[]".to_vec(), true).await;
    assert_eq!(status, 400);
    let metrics = test.server.ingestor.metrics();
    assert_eq!(metrics.requests_rejected_count("opa_logs", "undecodable"), 2);

    // An entry without any host label is rejected and counted; the good one is stored.
    let mut orphan = entry(1, false, None);
    orphan["labels"] = json!({"app": "x"});
    let body = Value::Array(vec![orphan, entry(2, false, Some("wks-1")), json!("not an entry")]);
    let (status, answer) = upload(&test, gzip(&body), true).await;
    assert_eq!(status, 200);
    assert_eq!(answer["stored"], 1, "{answer}");
    assert_eq!(answer["rejected"], 2, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("missing host.id"),
        "{answer}"
    );
    assert_eq!(metrics.rejected_count("missing_host_id"), 1);
    assert_eq!(metrics.rejected_count("not_an_object"), 1);
    test.stop().await;
}
