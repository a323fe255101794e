//! The real OpenTelemetry Python SDK exporters send contract events; every stored row
//! must match what was sent, field by field.

use std::time::Duration;

use cordon::simulate::Scenario;
use tokio::process::Command;

use crate::common::*;

const SDK_RESOURCE_ATTRIBUTES: &[&str] = &[
    "telemetry.sdk.language",
    "telemetry.sdk.name",
    "telemetry.sdk.version",
    "service.instance.id",
];
const BODY: &str = "RAW-CONTENT-MUST-NOT-BE-STORED quarterly numbers 4711";

async fn send_with_sdk(exporter: &str, gzip: bool, seed: u64) {
    let test = TestServer::start().await;
    let events = simulated(seed, 300, &Scenario::ALL);
    let file = write_jsonl(&events);
    let endpoint = if exporter == "grpc" {
        test.grpc_url()
    } else {
        test.http_url()
    };
    let mut command = Command::new(python());
    command
        .arg(python_script("otel_send.py"))
        .args(["--exporter", exporter, "--endpoint", &endpoint, "--body", BODY])
        .arg("--events")
        .arg(file.path());
    if gzip {
        command.arg("--gzip");
    }
    let output = command.output().await.unwrap();
    assert!(
        output.status.success(),
        "{exporter} exporter failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let rows = stored_rows(&test.storage()).await;
    assert_rows_match(&events, &rows, SDK_RESOURCE_ATTRIBUTES);
    let everything = serde_json::to_string(&rows).unwrap();
    assert!(!everything.contains("RAW-CONTENT"), "a LogRecord body reached storage");

    let transport = if exporter == "grpc" { "otlp_grpc" } else { "otlp_http" };
    let received = test
        .server
        .metrics
        .stages
        .events_in
        .get_or_create(&vec![("stage", "ingest"), ("transport", transport)])
        .get();
    assert_eq!(received, events.len() as u64);
    // Stored: what was sent, and the risk and signals the pipeline wrote of its alerts.
    eventually(Duration::from_secs(20), "stored counts to settle", async || {
        let derived = crate::common::derived_events(&test).await;
        (test.server.metrics.events_out.get() == events.len() as u64 + derived).then_some(())
    })
    .await;
    test.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_exporter_rows_match_what_was_sent() {
    send_with_sdk("grpc", false, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_exporter_with_gzip_rows_match_what_was_sent() {
    send_with_sdk("grpc", true, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_exporter_with_gzip_rows_match_what_was_sent() {
    send_with_sdk("http-protobuf", true, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_exporter_rows_match_what_was_sent() {
    send_with_sdk("http-json", false, 4).await;
}

/// Agents send metrics to the endpoint of their logs: the SDK's metric exporters (gRPC,
/// HTTP protobuf, HTTP JSON) get success, every data point is counted, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_from_the_sdk_are_accepted_and_counted_not_stored() {
    let test = TestServer::start().await;
    let base = format!("http://{}", test.server.http_addr);
    for (exporter, endpoint, transport) in [
        ("grpc", test.grpc_url(), "otlp_grpc"),
        ("http-protobuf", base.clone(), "otlp_http"),
        ("http-json", base.clone(), "otlp_http"),
    ] {
        let counted = |transport| {
            test.server
                .metrics
                .metric_points
                .get_or_create(&vec![("transport", transport)])
                .get()
        };
        let before = counted(transport);
        let output = Command::new(python())
            .arg(python_script("otel_metrics.py"))
            .args(["--exporter", exporter, "--endpoint", &endpoint])
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{exporter} metric exporter failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let sent: u64 = String::from_utf8_lossy(&output.stdout).trim().parse().unwrap();
        assert!(sent >= 5, "{exporter} sent {sent} points");
        assert_eq!(counted(transport) - before, sent, "{exporter}");
    }
    assert!(stored_rows(&test.storage()).await.is_empty(), "metrics are not stored");
    test.server.stop().await.unwrap();
}
