//! Hunts that cannot hurt the server: deep expressions are refused (or planned on the
//! hunt pool's large stacks) instead of overflowing the stack; a runaway cross join
//! runs apart from ingest and the API, is stopped at the time limit, and stops when its
//! caller leaves; too many at once get 429; an oversized result is refused.

use std::time::{Duration, Instant};

use cordon::api::Role;
use cordon::simulate::senders::{SendReport, Sender};
use serde_json::{Value, json};

use crate::common::*;

const RUNAWAY: &str =
    "SELECT count(*) AS n FROM generate_series(1, 100000000) a CROSS JOIN generate_series(1, 100000000) b";

async fn hunt(server: &TestServer, sql: &str) -> (u16, Value, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/hunt", server.api_url()))
        .bearer_auth(token_for(Role::Analyst))
        .json(&json!({ "sql": sql }))
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_string());
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
        retry_after,
    )
}

fn running(server: &TestServer) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &server.server.registry).unwrap();
    text.lines()
        .find(|line| line.starts_with("cordon_hunts_running "))
        .map(|line| line.rsplit(' ').next().unwrap().to_string())
        .unwrap_or_default()
}

async fn wait_running(server: &TestServer, value: &str, within: Duration, what: &str) {
    let started = Instant::now();
    while running(server) != value {
        assert!(
            started.elapsed() < within,
            "{what}: cordon_hunts_running is {}",
            running(server)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_expressions_are_refused_or_planned_and_the_server_lives_on() {
    let server = TestServer::start().await;
    // 250 terms overflowed a 2 MiB stack before; on the hunt pool it plans.
    let sum = format!("SELECT {} AS n", vec!["1"; 250].join("+"));
    let (status, body, _) = hunt(&server, &sum).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"][0]["n"], 250);
    for deep in [
        format!("SELECT {} AS n", vec!["1"; 20_000].join("+")),
        format!(
            "SELECT * FROM events WHERE {}",
            vec!["host_id = 'h'"; 3000].join(" OR ")
        ),
    ] {
        let (status, body, _) = hunt(&server, &deep).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["error"].as_str().unwrap().contains("nest more than"), "{body}");
    }
    let (status, body, _) = hunt(&server, &format!("SELECT '{}'", "x".repeat(100_000))).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = server.api_get("/api/v1/alerts", Some(Role::Analyst)).await;
    assert_eq!(status, 200, "the server lives on");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_hunt_runs_apart_is_stopped_at_its_limit_and_when_its_caller_leaves() {
    let server = TestServer::start_with(|config| {
        config.api.hunt.time_limit = Duration::from_secs(4);
        config.api.hunt.concurrency = 1;
        config.api.hunt.queue_wait = Duration::from_millis(200);
    })
    .await;
    let api = server.api_url();
    let runaway = tokio::spawn({
        let api = api.clone();
        async move {
            let response = reqwest::Client::new()
                .post(format!("{api}/api/v1/hunt"))
                .bearer_auth(token_for(Role::Analyst))
                .json(&json!({ "sql": RUNAWAY }))
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    });
    wait_running(&server, "1", Duration::from_secs(5), "the runaway hunt to start").await;

    // Meanwhile the API and ingest answer, each within a second.
    let events = simulated(91, 60, &[]);
    let mut sender = Sender::grpc(&server.grpc_url()).await.unwrap();
    let mut report = SendReport::default();
    let mut slowest = Duration::ZERO;
    for chunk in events.chunks(20) {
        let started = Instant::now();
        let (status, _) = server.api_get("/api/v1/alerts", Some(Role::Analyst)).await;
        assert_eq!(status, 200);
        sender.send(chunk, &mut report).await.unwrap();
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(report.rejected, 0, "{report:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "an API call and an export took {slowest:?} during the hunt"
    );
    // A second hunt while the one slot is taken: 429, with when to retry.
    let (status, body, retry_after) = hunt(&server, "SELECT 1").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry_after.as_deref(), Some("2"));

    let (status, body) = runaway.await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("ran past 4 s"), "{body}");
    // Stopped for real: its slot is free at once, not when the join would end.
    wait_running(&server, "0", Duration::from_secs(3), "the timed-out hunt to stop").await;
    let (status, body, _) = hunt(&server, "SELECT count(*) AS n FROM events").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"][0]["n"], events.len());

    // A caller that hangs up stops its hunt well before the time limit.
    let gave_up = reqwest::Client::new()
        .post(format!("{api}/api/v1/hunt"))
        .bearer_auth(token_for(Role::Analyst))
        .json(&json!({ "sql": RUNAWAY }))
        .timeout(Duration::from_millis(800))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client gave up first");
    wait_running(&server, "0", Duration::from_secs(2), "the abandoned hunt to stop").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_too_large_to_build_is_refused() {
    let server = TestServer::start().await;
    let (status, body, _) = hunt(
        &server,
        "SELECT repeat('x', 1000000) AS big FROM generate_series(1, 200)",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("MiB"), "{body}");
    server.stop().await;
}

/// Resident memory of this process (the test server runs in it), bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_a_hunt_builds_count_against_its_memory_limit() {
    let server = TestServer::start().await;
    let before = resident_bytes();
    // Took 1.1 GB (and 3.3 GB for 100 rows of 10 MB) past the 512 MiB limit before.
    for sql in [
        "SELECT length(repeat('x', 300000000)) AS n",
        "SELECT length(repeat('x', 10000000)) AS n FROM generate_series(1, 100)",
        "SELECT length(lpad('x', 300000000)) AS n",
        "SELECT cardinality(range(1, 300000000)) AS n",
    ] {
        let (status, body, _) = hunt(&server, sql).await;
        assert_eq!(status, 400, "{sql}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("one function call may make"), "{sql}: {error}");
    }
    let grew = resident_bytes().saturating_sub(before);
    assert!(grew < 256 << 20, "the hunts grew the server by {} MiB", grew >> 20);
    // Below the bound the same functions answer, and the rules' functions are there too.
    let (status, body, _) = hunt(
        &server,
        "SELECT length(repeat('ab', 1000)) AS n, path_match('/srv/a/b.txt', '/srv/**') AS matched",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["rows"][0]["n"].clone(), body["rows"][0]["matched"].clone()),
        (json!(2000), json!(true))
    );
    server.stop().await;
}
