//! Bad input gets a clear error and a counter, never a crash and never silent loss.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cordon_ingest::sources::{SourceContext, SourcesConfig, start_all};
use cordon_ingest::storage::EventStore;
use cordon_ingest::{IngestMetrics, Ingestor, StorageConfig};
use cordon_schemas::FlatEvent;
use cordon_schemas::otlp::events_to_request;
use prost::Message;
use tonic::Code;

use crate::common::*;

fn event(host: Option<&str>, name: &str, id: &str) -> FlatEvent {
    let mut event = FlatEvent::new(1_768_471_200_000_000_000, name, host.unwrap_or("placeholder"));
    if host.is_none() {
        event.attributes.remove("host.id");
    }
    event.set("event.id", id).set("user.name", "alice");
    event
}

async fn post(url: &str, content_type: &str, body: Vec<u8>) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(bytes)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_requests_are_refused_counted_and_the_server_keeps_serving() {
    let test = TestServer::start().await;
    let metrics = &test.server.metrics;
    let garbage = vec![0xff, 0xff, 0xff, 0x0f, 0x01, 0x02];

    let (status, _, body) = post(&test.http_url(), "application/x-protobuf", garbage.clone()).await;
    assert_eq!(status, 400);
    let rpc = cordon_ingest::otlp::RpcStatus::decode(body.as_slice()).unwrap();
    assert!(
        rpc.message.contains("not an OTLP ExportLogsServiceRequest (protobuf)"),
        "{}",
        rpc.message
    );
    assert_eq!(metrics.requests_rejected_count("otlp_http", "undecodable"), 1);

    let (status, _, body) = post(&test.http_url(), "application/json", b"{\"resourceLogs\": [".to_vec()).await;
    assert_eq!(status, 400);
    let message = json(&body)["message"].as_str().unwrap().to_string();
    assert!(message.contains("(JSON)") && message.contains("line 1"), "{message}");
    assert_eq!(metrics.requests_rejected_count("otlp_http", "undecodable"), 2);

    let (status, _, _) = post(&test.http_url(), "text/plain", b"hello".to_vec()).await;
    assert_eq!(status, 415);
    assert_eq!(
        metrics.requests_rejected_count("otlp_http", "unsupported_media_type"),
        1
    );

    let response = reqwest::Client::new()
        .post(test.http_url())
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(b"not gzip at all".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);

    let status = grpc_raw(&test.grpc_url(), Bytes::from(garbage)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("not an OTLP ExportLogsServiceRequest"),
        "{}",
        status.message()
    );
    assert_eq!(metrics.requests_rejected_count("otlp_grpc", "undecodable"), 1);

    // Still serving.
    let good = events_to_request(&[event(Some("wks-1"), "file.access", "ok-1")]).encode_to_vec();
    let (status, _, _) = post(&test.http_url(), "application/x-protobuf", good.clone()).await;
    assert_eq!(status, 200);
    grpc_raw(&test.grpc_url(), Bytes::from(good)).await.unwrap();
    assert_eq!(
        count(&test.storage(), "SELECT count(*) FROM events").await,
        1,
        "the gRPC resend was a duplicate"
    );
    test.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_batch_stores_the_good_records_and_names_the_bad() {
    let test = TestServer::start().await;
    let metrics = &test.server.metrics;
    let batch = [
        event(Some("wks-1"), "network.flow", "a"),
        event(None, "network.flow", "b"),
        event(Some("wks-1"), "agent.dreamt", "c"),
        event(Some("wks-2"), "policy.decision", "d"),
    ];
    let mut bad_port = event(Some("wks-3"), "network.flow", "e");
    bad_port.set("destination.port", "https");
    let mut batch = batch.to_vec();
    batch.push(bad_port);

    // Over gRPC.
    let response = grpc_raw(&test.grpc_url(), Bytes::from(events_to_request(&batch).encode_to_vec()))
        .await
        .unwrap();
    let partial = response.partial_success.expect("partial success reported");
    assert_eq!(partial.rejected_log_records, 2);
    assert!(
        partial.error_message.contains("missing host.id"),
        "{}",
        partial.error_message
    );
    assert!(
        partial
            .error_message
            .contains("attribute destination.port: expected int, got string \"https\""),
        "{}",
        partial.error_message
    );
    assert!(
        partial
            .error_message
            .contains("unknown event.name \"agent.dreamt\" stored as kind \"other\""),
        "{}",
        partial.error_message
    );
    assert_eq!(metrics.rejected_count("missing_host_id"), 1);
    assert_eq!(metrics.rejected_count("invalid_attribute"), 1);
    assert_eq!(metrics.notice_count("unknown_event_name"), 1);
    assert_eq!(count(&test.storage(), "SELECT count(*) FROM events").await, 3);
    assert_eq!(
        count(
            &test.storage(),
            "SELECT count(*) FROM events WHERE event_name = 'other' AND attributes['event.name'] = 'agent.dreamt'"
        )
        .await,
        1
    );

    // Over OTLP/HTTP JSON, with other ids: the same answer in JSON.
    for record in &mut batch {
        let id = format!("json-{}", record.text("event.id").unwrap());
        record.set("event.id", id);
    }
    let body = serde_json::to_vec(&events_to_request(&batch)).unwrap();
    let (status, _, body) = post(&test.http_url(), "application/json", body).await;
    assert_eq!(status, 200);
    let answer = json(&body);
    let partial = &answer["partialSuccess"];
    assert_eq!(
        partial["rejectedLogRecords"].to_string().trim_matches('"'),
        "2",
        "{answer}"
    );
    assert!(
        partial["errorMessage"].as_str().unwrap().contains("missing host.id"),
        "{answer}"
    );
    assert_eq!(metrics.rejected_count("missing_host_id"), 2);
    assert_eq!(count(&test.storage(), "SELECT count(*) FROM events").await, 6);
    test.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_requests_are_refused_and_counted() {
    let test = TestServer::start_with(|config| {
        config.otlp.max_request_bytes = 64 * 1024;
        config.otlp.max_decompressed_bytes = 256 * 1024;
    })
    .await;
    let metrics = &test.server.metrics;
    let events: Vec<FlatEvent> = simulated(9, 2_000, &[]);
    let big = events_to_request(&events).encode_to_vec();
    assert!(big.len() > 256 * 1024, "{}", big.len());

    let (status, _, body) = post(&test.http_url(), "application/x-protobuf", big.clone()).await;
    assert_eq!(status, 413);
    let rpc = cordon_ingest::otlp::RpcStatus::decode(body.as_slice()).unwrap();
    assert!(rpc.message.contains("over the limit of 65536 bytes"), "{}", rpc.message);
    assert_eq!(metrics.requests_rejected_count("otlp_http", "too_large"), 1);

    // Small when compressed, too large once decompressed.
    let repetitive = events_to_request(&vec![event(Some("wks-1"), "file.access", "same"); 5_000]).encode_to_vec();
    assert!(repetitive.len() > 256 * 1024, "{}", repetitive.len());
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut encoder, &repetitive).unwrap();
    let compressed = encoder.finish().unwrap();
    assert!(compressed.len() < 64 * 1024, "{}", compressed.len());
    let response = reqwest::Client::new()
        .post(test.http_url())
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(compressed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(metrics.requests_rejected_count("otlp_http", "too_large"), 2);

    let status = grpc_raw(&test.grpc_url(), Bytes::from(big)).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(metrics.requests_rejected_count("otlp_grpc", "too_large"), 1);
    assert_eq!(metrics.events_out.get(), 0, "nothing of a refused request is stored");

    let small = events_to_request(&events[..10]).encode_to_vec();
    let (status, _, _) = post(&test.http_url(), "application/x-protobuf", small).await;
    assert_eq!(status, 200, "still serving");
    test.server.stop().await.unwrap();
}

/// Back-pressure: a store whose Parquet writer is not running fills its buffer, and
/// producers are told when to come back instead of memory growing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_answers_429_and_resource_exhausted_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageConfig {
        data_dir: dir.path().to_path_buf(),
        max_buffered_events: 10,
        flush_max_events: 5,
        ..StorageConfig::default()
    };
    let metrics = IngestMetrics::default();
    let store = EventStore::open(storage, metrics.clone(), Duration::from_secs(2), vec![]).unwrap();
    let ingestor = Arc::new(Ingestor::new(store.clone(), metrics.clone()));
    let (shutdown, receiver) = tokio::sync::watch::channel(false);
    let config = test_config(dir.path());
    let running = start_all(SourceContext {
        ingestor,
        config: SourcesConfig {
            otlp: config.otlp.clone(),
            kafka: config.kafka.clone(),
        },
        listeners: cordon_ingest::listener::Listeners::new(Default::default(), metrics.listeners.clone()),
        shutdown: receiver,
    })
    .await
    .unwrap();
    let grpc = format!("http://{}", running[0].local_addr.unwrap());
    let http = format!("http://{}/v1/logs", running[1].local_addr.unwrap());
    let tasks: Vec<_> = running.into_iter().map(|source| tokio::spawn(source.task)).collect();

    let events = simulated(5, 40, &[]);
    let first = events_to_request(&events[..20]).encode_to_vec();
    let (status, _, _) = post(&http, "application/x-protobuf", first).await;
    assert_eq!(status, 200);

    let second = events_to_request(&events[20..30]).encode_to_vec();
    let (status, headers, _) = post(&http, "application/x-protobuf", second.clone()).await;
    assert_eq!(status, 429);
    assert_eq!(headers.get("retry-after").unwrap(), "2");
    let error = grpc_raw(&grpc, Bytes::from(second.clone())).await.unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted);
    assert!(!error.details().is_empty(), "RetryInfo is attached");
    assert_eq!(metrics.requests_rejected_count("otlp_http", "overloaded"), 1);
    assert_eq!(metrics.requests_rejected_count("otlp_grpc", "overloaded"), 1);

    store.flush().await.unwrap();
    let (status, _, _) = post(&http, "application/x-protobuf", second).await;
    assert_eq!(status, 200, "accepted once the buffer drained");
    assert_eq!(store.buffered_events(), 10);
    shutdown.send(true).unwrap();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
}
