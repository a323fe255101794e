//! Hunting (read-only SQL with limits) and entity timelines through the API.

use cordon::api::Role;
use cordon::simulate::senders::{SendReport, Sender};
use serde_json::{Value, json};

use crate::common::*;

async fn hunt(server: &TestServer, role: Option<Role>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/v1/hunt", server.api_url()))
        .json(&body);
    if let Some(role) = role {
        request = request.bearer_auth(token_for(role));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hunts_are_read_only_and_limited_and_timelines_follow_one_entity() {
    let server = TestServer::start().await;
    let events = simulated(51, 600, &[]);
    let mut sender = Sender::grpc(&server.grpc_url()).await.unwrap();
    let mut report = SendReport::default();
    for chunk in events.chunks(200) {
        sender.send(chunk, &mut report).await.unwrap();
    }
    let by_host = json!({"sql": "SELECT host_id, count(*) AS n FROM events GROUP BY host_id ORDER BY host_id"});
    assert_eq!(hunt(&server, None, by_host.clone()).await.0, 401);
    let (status, body) = hunt(&server, Some(Role::Analyst), by_host).await;
    assert_eq!(status, 200, "{body}");
    let rows = body["rows"].as_array().unwrap();
    let total: i64 = rows.iter().map(|row| row["n"].as_i64().unwrap()).sum();
    assert_eq!(total, events.len() as i64);
    assert_eq!(body["truncated"], false);

    let (status, body) = hunt(
        &server,
        Some(Role::Engineer),
        json!({"sql": "SELECT event_id FROM events", "limit": 5}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["rows"].as_array().unwrap().len(), &body["truncated"]),
        (5, &json!(true))
    );
    for refused in [
        "DROP TABLE events",
        "CREATE TABLE x AS SELECT 1",
        "COPY events TO '/tmp/x.csv'",
    ] {
        let (status, body) = hunt(&server, Some(Role::Analyst), json!({"sql": refused})).await;
        assert_eq!(status, 400, "{refused}: {body}");
    }
    let (status, body) = hunt(&server, Some(Role::Analyst), json!({"sql": "SELECT nope FROM events"})).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");
    assert_eq!(
        hunt(&server, Some(Role::Analyst), json!({"sql": "SELECT 1", "limit": 0}))
            .await
            .0,
        400
    );

    let host = rows[0]["host_id"].as_str().unwrap().to_string();
    let expected = rows[0]["n"].as_i64().unwrap() as usize;
    let path =
        format!("/api/v1/timeline?host_id={host}&since=2026-01-15T00:00:00Z&until=2026-01-16T00:00:00Z&limit=1000");
    assert_eq!(server.api_get(&path, None).await.0, 401);
    let (status, body) = server.api_get(&path, Some(Role::Responder)).await;
    assert_eq!(status, 200, "{body}");
    let timeline = body["rows"].as_array().unwrap();
    assert_eq!(timeline.len(), expected);
    assert!(timeline.iter().all(|event| event["host_id"] == host.as_str()));
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = timeline
        .iter()
        .map(|event| chrono::DateTime::parse_from_rfc3339(event["time"].as_str().unwrap()).unwrap())
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first: {times:?}"
    );
    let (status, _) = server.api_get("/api/v1/timeline", Some(Role::Analyst)).await;
    assert_eq!(status, 400, "an entity is required");
    server.stop().await;
}
