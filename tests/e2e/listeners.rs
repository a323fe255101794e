//! Every listener's limits, from outside over real TCP: idle and slowloris connections
//! are closed, a stalled body times out, the memory budget answers with back-pressure
//! (429 and Retry-After), connections past the cap are closed at once, and one HTTP/2
//! connection cannot hold more than its streams' share.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::TestServer;

fn metric(server: &TestServer, name: &str, labels: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &server.server.registry).unwrap();
    text.lines()
        .filter(|line| line.split(['{', ' ']).next() == Some(name) && line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn budget_in_use(server: &TestServer) -> f64 {
    metric(server, "cordon_request_memory_bytes", "")
}

/// Waits for the memory budget to be empty again. A response keeps its request's
/// charges until it is sent, so the client can read its status a moment before the
/// charge is released; a charge never released fails after 3 s.
async fn budget_given_back(server: &TestServer, what: &str) {
    crate::common::eventually_seen(Duration::from_secs(3), what, async || match budget_in_use(server) {
        0.0 => Ok(()),
        held => Err(format!("{held} bytes still charged")),
    })
    .await;
}

/// Reads until the peer closes the connection or has sent a response head; what it
/// answered, or `None` if it was still open and silent after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut answered = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&answered).into_owned()),
            Ok(Ok(read)) => {
                answered.extend_from_slice(&buffer[..read]);
                if answered.windows(4).any(|window| window == b"\r\n\r\n") {
                    return Some(String::from_utf8_lossy(&answered).into_owned());
                }
            }
        }
    }
}

/// An OTLP/HTTP upload that declares `declared` bytes, sends `sent` and stops.
async fn stalled_upload(addr: SocketAddr, declared: usize, sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/logs HTTP/1.1\r\nHost: cordon\r\nContent-Type: application/x-protobuf\r\nContent-Length: {declared}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![0u8; sent]).await.unwrap();
    stream
}

async fn empty_export(server: &TestServer) -> u16 {
    reqwest::Client::new()
        .post(server.http_url())
        .header("content-type", "application/json")
        .body(r#"{"resourceLogs":[]}"#)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_on_every_listener() {
    let server = TestServer::start_with(|config| config.listeners.idle_timeout = Duration::from_secs(2)).await;
    let listeners = [
        ("otlp_grpc", server.server.grpc_addr),
        ("otlp_http", server.server.http_addr),
        ("api", server.server.api_addr),
    ];
    let mut silent = Vec::new();
    for (name, addr) in listeners {
        for _ in 0..3 {
            silent.push((name, TcpStream::connect(addr).await.unwrap()));
        }
    }
    for (name, stream) in &mut silent {
        assert!(
            closed_within(stream, Duration::from_secs(6)).await.is_some(),
            "an idle connection to {name} was still open 6 s after connecting (idle_timeout 2 s)"
        );
    }
    for (name, _) in listeners {
        let closed = metric(
            &server,
            "cordon_listener_connections_closed_total",
            &format!("listener=\"{name}\",reason=\"idle\""),
        );
        assert!(closed >= 3.0, "{name}: {closed} idle closes counted");
    }
    // A connection at work is not idle: a request every second for 5 s on one
    // keep-alive connection is answered throughout.
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
    for _ in 0..5 {
        let response = client
            .get(format!("{}/api/v1/rules", server.api_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "the API answers (no token)");
        tokio::time::sleep(Duration::from_millis(1_000)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_cut_at_the_header_timeout() {
    let server = TestServer::start_with(|config| {
        config.listeners.header_timeout = Duration::from_secs(2);
        config.listeners.idle_timeout = Duration::from_secs(120);
    })
    .await;
    for (name, addr) in [("otlp_http", server.server.http_addr), ("api", server.server.api_addr)] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /v1/logs HTTP/1.1\r\nHost: cordon\r\nX-Slow: ")
            .await
            .unwrap();
        let started = Instant::now();
        // One byte every 300 ms: bytes keep moving, so only the header deadline ends it.
        let cut = loop {
            if stream.write_all(b"a").await.is_err() {
                break started.elapsed();
            }
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(300), stream.read(&mut [0u8; 256])).await
            {
                break started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(8),
                "{name}: a slowloris header was still being read after 8 s"
            );
        };
        assert!(
            cut >= Duration::from_millis(1_500),
            "{name}: cut after {cut:?}, before the 2 s header timeout"
        );
        let counted = metric(
            &server,
            "cordon_listener_connections_closed_total",
            &format!("listener=\"{name}\",reason=\"header_timeout\""),
        );
        assert!(counted >= 1.0, "{name}: the header timeout was not counted");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_times_out_and_gives_its_memory_back() {
    let server = TestServer::start_with(|config| config.listeners.body_timeout = Duration::from_secs(2)).await;
    let mut upload = stalled_upload(server.server.http_addr, 8_000_000, 1_000_000).await;
    crate::common::eventually(Duration::from_secs(3), "the partial body is charged", async || {
        (budget_in_use(&server) >= 1_000_000.0).then_some(())
    })
    .await;
    let answer = closed_within(&mut upload, Duration::from_secs(6))
        .await
        .expect("answered within 6 s");
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a stalled body gets 408, got: {answer}"
    );
    let counted = metric(
        &server,
        "cordon_listener_requests_limited_total",
        "listener=\"otlp_http\",reason=\"body_timeout\"",
    );
    assert_eq!(counted, 1.0);
    budget_given_back(&server, "the stalled body's bytes are given back").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_budget_answers_with_back_pressure() {
    let server = TestServer::start_with(|config| {
        config.listeners.memory_budget_bytes = 4 << 20;
        config.listeners.body_timeout = Duration::from_secs(30);
    })
    .await;
    let budget = (4 << 20) as f64;
    // Ten uploads that stall after 1 MB each: four fit, the rest are refused.
    let mut uploads = Vec::new();
    for _ in 0..10 {
        uploads.push(stalled_upload(server.server.http_addr, 2_000_000, 1_000_000).await);
    }
    let mut refused = 0;
    for upload in &mut uploads {
        if let Some(answer) = closed_within(upload, Duration::from_secs(2)).await {
            assert!(
                answer.starts_with("HTTP/1.1 429"),
                "over the budget: 429, got: {answer}"
            );
            assert!(
                answer.to_ascii_lowercase().contains("retry-after: 1"),
                "429 says when to retry: {answer}"
            );
            refused += 1;
        }
        assert!(
            budget_in_use(&server) <= budget,
            "{} bytes held of a {budget} budget",
            budget_in_use(&server)
        );
    }
    assert!(
        (5..=7).contains(&refused),
        "{refused} of 10 uploads refused with 4 MiB for 1 MB each"
    );
    drop(uploads);
    crate::common::eventually(Duration::from_secs(3), "the budget is free again", async || {
        (budget_in_use(&server) == 0.0).then_some(())
    })
    .await;
    assert_eq!(
        empty_export(&server).await,
        200,
        "accepted again once the budget is free"
    );

    // A gzip bomb: 61 KB that would inflate to 60 MB. It stops at the budget.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gzip, &vec![0u8; 60 << 20]).unwrap();
    let bomb = gzip.finish().unwrap();
    let response = reqwest::Client::new()
        .post(server.http_url())
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        429,
        "a bomb past the budget is back-pressure"
    );
    assert!(response.headers().contains_key("retry-after"));
    let limited = metric(
        &server,
        "cordon_listener_requests_limited_total",
        "reason=\"over_memory_budget\"",
    );
    assert!(
        limited >= f64::from(refused + 1),
        "{limited} over-budget requests counted"
    );
    budget_given_back(&server, "the refused bodies' bytes are given back").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_at_once() {
    let server = TestServer::start_with(|config| config.listeners.max_connections = 20).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(server.server.http_addr).await.unwrap());
    }
    // Let the listener take all twenty before the one past the cap arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = TcpStream::connect(server.server.http_addr).await.unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(1)).await.is_some(),
        "the 21st connection was not closed at once"
    );
    assert_eq!(
        metric(
            &server,
            "cordon_listener_connections_closed_total",
            "listener=\"otlp_http\",reason=\"over_connection_cap\""
        ),
        1.0
    );
    let (status, _) = server.api_get("/api/v1/rules", Some(cordon::api::Role::Analyst)).await;
    assert_eq!(status, 200, "the API has its own connections");
    drop(held);
    crate::common::eventually(
        Duration::from_secs(3),
        "slots free after the held connections close",
        async || (metric(&server, "cordon_listener_connections", "listener=\"otlp_http\"") == 0.0).then_some(()),
    )
    .await;
    assert_eq!(empty_export(&server).await, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_http2_connection_holds_no_more_than_its_streams() {
    const STREAMS: u32 = 8;
    const CHUNK: usize = 100_000;
    let server = TestServer::start_with(|config| {
        config.listeners.http2_max_streams = STREAMS;
        config.listeners.body_timeout = Duration::from_secs(2);
    })
    .await;
    let tcp = TcpStream::connect(server.server.http_addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    // Streams opened before the server's SETTINGS arrive are refused (REFUSED_STREAM,
    // which clients retry), so wait for them as a well-behaved client does.
    let announced = client.clone();
    crate::common::eventually(Duration::from_secs(3), "the server's SETTINGS", async || {
        (announced.current_max_send_streams() == STREAMS as usize).then_some(())
    })
    .await;
    // Twenty uploads on one connection, each stalling after 100 KB.
    let mut uploads = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let client = client.clone();
        uploads.spawn(async move {
            let mut sender = client.ready().await.unwrap();
            let request = http::Request::post("http://cordon/v1/logs")
                .header("content-type", "application/x-protobuf")
                .header("content-length", "8000000")
                .body(())
                .unwrap();
            let (response, mut body) = sender.send_request(request, false).unwrap();
            body.send_data(bytes::Bytes::from(vec![0u8; CHUNK]), false).unwrap();
            let status = response.await.unwrap().status().as_u16();
            drop(body);
            status
        });
    }
    let full = STREAMS as f64 * CHUNK as f64;
    crate::common::eventually(
        Duration::from_secs(3),
        "the first streams' bodies are charged",
        async || (budget_in_use(&server) >= full).then_some(()),
    )
    .await;
    // Per-frame rounding to the budget's 1 KiB units is the only slack.
    let most = STREAMS as f64 * (CHUNK + 8 * 1024) as f64;
    for _ in 0..10 {
        let held = budget_in_use(&server);
        assert!(
            held <= most,
            "one connection holds {held} bytes with {STREAMS} streams of {CHUNK}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut statuses = Vec::new();
    while let Some(status) = uploads.join_next().await {
        statuses.push(status.unwrap());
    }
    assert!(
        statuses.iter().all(|&status| status == 408),
        "every stalled stream times out: {statuses:?}"
    );
    let timed_out = metric(
        &server,
        "cordon_listener_requests_limited_total",
        "listener=\"otlp_http\",reason=\"body_timeout\"",
    );
    assert_eq!(timed_out, 20.0);
    budget_given_back(&server, "every stalled stream's bytes are given back").await;
    server.stop().await;
}
