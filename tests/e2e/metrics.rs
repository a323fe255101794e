//! `/metrics` end to end: behind a token, parsed by the Prometheus project's own parser,
//! counting what really went through, and naming every metric the Grafana dashboards use.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use cordon::api::Role;
use cordon::simulate::Scenario;
use cordon::simulate::senders::{SendReport, Sender};
use serde_json::Value;

use crate::common::*;

async fn scrape(server: &TestServer, role: Option<Role>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", server.api_url()));
    if let Some(role) = role {
        request = request.bearer_auth(token_for(role));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The exposition as the Prometheus client library's strict parser reads it.
fn parse(text: &str) -> serde_json::Map<String, Value> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let output = Command::new(python())
        .arg(python_script("parse_metrics.py"))
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Value>(&output.stdout)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

fn sum(families: &serde_json::Map<String, Value>, family: &str, label: (&str, &str)) -> f64 {
    families[family]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|sample| sample[0].as_str().unwrap().ends_with("_total") && sample[1][label.0] == label.1)
        .map(|sample| sample[2].as_f64().unwrap())
        .sum()
}

/// Every `cordon_...` name in the expressions of the dashboards under `dashboards/grafana`.
fn dashboard_metrics() -> BTreeSet<(String, String)> {
    let dir = crate::common::project_dir().join("dashboards/grafana");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut exprs = Vec::new();
        collect_exprs(&dashboard, &mut exprs);
        assert!(!exprs.is_empty(), "{} has no queries", path.display());
        for expr in exprs {
            let mut rest = expr.as_str();
            while let Some(at) = rest.find("cordon_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                names.insert((path.file_name().unwrap().to_string_lossy().to_string(), name));
            }
        }
    }
    names
}

fn collect_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => collect_exprs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_valid_openmetrics_that_count_what_happened_and_feed_the_dashboards() {
    // A Kafka source too, so its series (messages, dead letters, commits, lag) exist.
    let broker = crate::kafka_broker::Broker::start();
    broker.create_topic("metrics-events", 1);
    broker.create_topic("dead-letters", 1);
    let kafka_config = crate::kafka::kafka_config(
        &broker,
        "metrics",
        &[("metrics-events", cordon_ingest::kafka::MessageFormat::Json)],
    );
    let server = TestServer::start_with(move |config| config.kafka = kafka_config).await;
    broker.produce("metrics-events", "json", &[], &["--raw", "not an event"]);
    let kafka = server.server.ingestor.metrics().kafka.clone();
    let lag_known = || {
        kafka
            .consumer_lag
            .get(&vec![
                ("topic", "metrics-events".to_string()),
                ("partition", "0".to_string()),
            ])
            .map(|gauge| gauge.get())
    };
    for _ in 0..150 {
        if kafka.messages_count("metrics-events", "dead_letter") == 1 && lag_known() == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(kafka.messages_count("metrics-events", "dead_letter"), 1);
    assert_eq!(lag_known(), Some(0));
    let events = simulated(31, 600, &[Scenario::RepeatedPolicyDenies]);
    let mut sender = Sender::grpc(&server.grpc_url()).await.unwrap();
    let mut report = SendReport::default();
    for chunk in events.chunks(200) {
        sender.send(chunk, &mut report).await.unwrap();
    }
    // Bad input, counted by reason: an undecodable request and a record without host.id.
    let client = reqwest::Client::new();
    let garbage = client
        .post(server.http_url())
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff, 0x01])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status().as_u16(), 400);
    let no_host = serde_json::json!({"resourceLogs": [{"resource": {"attributes": []}, "scopeLogs": [{"logRecords": [{
        "timeUnixNano": "1768471200000000000", "eventName": "network.flow",
        "attributes": [{"key": "event.id", "value": {"stringValue": "metrics-no-host"}}]}]}]}]});
    let partial = client.post(server.http_url()).json(&no_host).send().await.unwrap();
    assert_eq!(partial.status().as_u16(), 200);
    server.detections_idle().await;

    assert_eq!(scrape(&server, None).await.0, 401);
    let sent = events.len() as f64;
    // Besides what was sent, the pipeline stores its own risk events (one per entity of
    // each new alert) and signals; they go through ingest and detections too.
    let (text, families) = eventually(Duration::from_secs(20), "the counts to settle", async || {
        let derived = derived_events(&server).await as f64;
        let (status, text) = scrape(&server, Some(Role::Engineer)).await;
        assert_eq!(status, 200);
        let families = parse(&text);
        // In counts every record before its checks: the sent ones and the one without host.id.
        let settled = sum(&families, "cordon_events_in", ("stage", "ingest")) == sent + derived + 1.0
            && sum(&families, "cordon_events_out", ("stage", "ingest")) == sent + derived
            && sum(&families, "cordon_events_in", ("stage", "detections")) == sent + derived;
        settled.then_some((text, families))
    })
    .await;
    assert!(families.contains_key("cordon_rule_evaluation_seconds"));
    assert_eq!(
        sum(&families, "cordon_events_rejected", ("stage", "ingest")),
        1.0,
        "{text}"
    );
    assert!(
        sum(&families, "cordon_requests_rejected", ("transport", "otlp_http")) >= 1.0,
        "{text}"
    );
    assert!(
        sum(&families, "cordon_alerts", ("rule", "repeated-policy-denies")) >= 1.0,
        "{text}"
    );
    assert_eq!(sum(&families, "cordon_kafka_messages", ("outcome", "dead_letter")), 1.0);
    assert_eq!(
        sum(&families, "cordon_kafka_dead_letters", ("reason", "undecodable")),
        1.0
    );
    assert!(
        text.contains("cordon_kafka_consumer_lag{topic=\"metrics-events\",partition=\"0\"} 0"),
        "{text}"
    );

    // Every metric a dashboard queries is one Cordon exports.
    let mut exported: BTreeSet<String> = families.keys().cloned().collect();
    for family in families.values() {
        for sample in family["samples"].as_array().unwrap() {
            exported.insert(sample[0].as_str().unwrap().to_string());
        }
    }
    let used = dashboard_metrics();
    assert!(used.len() > 15, "the dashboards query Cordon's metrics: {used:?}");
    let strip = |name: &str| {
        ["_bucket", "_total", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name)
            .to_string()
    };
    let missing: Vec<_> = used
        .iter()
        .filter(|(_, name)| !exported.contains(name) && !exported.contains(&strip(name)))
        .collect();
    assert!(
        missing.is_empty(),
        "dashboards query metrics Cordon does not export: {missing:?}"
    );
    server.stop().await;
}

/// Asks a Prometheus server's HTTP API for one instant value.
async fn prometheus_value(base: &str, query: &str) -> Option<f64> {
    let url = reqwest::Url::parse_with_params(&format!("{base}/api/v1/query"), &[("query", query)]).unwrap();
    let body: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
    body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_metrics_with_a_token() {
    assert!(
        std::path::Path::new("/usr/bin/prometheus").exists(),
        "Debian's prometheus is needed: run scripts/setup-test-env.sh"
    );
    let server = TestServer::start().await;
    let events = simulated(32, 300, &[]);
    let mut sender = Sender::grpc(&server.grpc_url()).await.unwrap();
    let mut report = SendReport::default();
    for chunk in events.chunks(100) {
        sender.send(chunk, &mut report).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token_for(Role::Analyst)).unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cordon\n    metrics_path: /metrics\n    \
             authorization:\n      type: Bearer\n      credentials_file: {}\n    static_configs:\n      - targets: [\"{}\"]\n",
            token_file.display(),
            server.server.api_addr
        ),
    )
    .unwrap();
    let port = crate::crash::free_port();
    let mut prometheus = Command::new("/usr/bin/prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let mut seen = None;
    while started.elapsed() < Duration::from_secs(60) {
        seen = prometheus_value(&base, "sum(cordon_events_out_total{stage=\"ingest\"})").await;
        if seen == Some(events.len() as f64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let up = prometheus_value(&base, "up{job=\"cordon\"}").await;
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert_eq!(up, Some(1.0), "Prometheus could not scrape /metrics");
    assert_eq!(seen, Some(events.len() as f64), "Prometheus saw the durable events");
    server.stop().await;
}
