//! Where simulated events go: OTLP/gRPC, OTLP/HTTP (protobuf or JSON), a Kafka topic
//! (in any of the contract's Kafka formats), or JSON lines.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use cordon_ingest::kafka::MessageFormat;
use cordon_schemas::FlatEvent;
use cordon_schemas::otlp::events_to_request;
use cordon_schemas::retry::Backoff;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use prost::Message;
use tonic::transport::Channel;

/// How many times a batch is retried under back-pressure before giving up.
const MAX_RETRIES: u32 = 30;

/// A destination for events.
pub enum Sender {
    Grpc {
        client: LogsServiceClient<Channel>,
        /// `Bearer <token>`, the producer credential, if any.
        authorization: Option<String>,
    },
    Http {
        client: reqwest::Client,
        url: String,
        json: bool,
        authorization: Option<String>,
    },
    JsonLines(Box<dyn Write + Send>),
    Kafka {
        producer: rdkafka::producer::FutureProducer,
        topic: String,
        format: MessageFormat,
    },
}

/// What the receiver said about what was sent.
#[derive(Debug, Default, Clone)]
pub struct SendReport {
    pub sent: usize,
    pub rejected: usize,
    pub retries: usize,
    pub last_message: Option<String>,
}

impl SendReport {
    fn absorb(&mut self, response: &ExportLogsServiceResponse) {
        if let Some(partial) = &response.partial_success {
            self.rejected += partial.rejected_log_records.max(0) as usize;
            if !partial.error_message.is_empty() {
                self.last_message = Some(partial.error_message.clone());
            }
        }
    }
}

impl Sender {
    pub async fn grpc(endpoint: &str) -> anyhow::Result<Sender> {
        let channel = Channel::from_shared(endpoint.to_string())
            .with_context(|| format!("invalid gRPC endpoint {endpoint:?}"))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("cannot connect to OTLP/gRPC at {endpoint}: is `cordon serve` running?"))?;
        Ok(Sender::Grpc {
            client: LogsServiceClient::new(channel).max_decoding_message_size(16 << 20),
            authorization: None,
        })
    }

    /// Presents `token` as the producer credential (`Authorization: Bearer`), as an
    /// OpenTelemetry SDK does from `OTEL_EXPORTER_OTLP_HEADERS`. OTLP senders only.
    pub fn with_token(mut self, token: Option<&str>) -> Sender {
        let header = token.map(|token| format!("Bearer {token}"));
        match &mut self {
            Sender::Grpc { authorization, .. } | Sender::Http { authorization, .. } => *authorization = header,
            Sender::JsonLines(_) | Sender::Kafka { .. } => {}
        }
        self
    }

    pub fn http(endpoint: &str, json: bool) -> anyhow::Result<Sender> {
        let base = endpoint.trim_end_matches('/');
        let url = if base.ends_with("/v1/logs") {
            base.to_string()
        } else {
            format!("{base}/v1/logs")
        };
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(Sender::Http {
            client,
            url,
            json,
            authorization: None,
        })
    }

    /// Produces to `topic` on `brokers`, waiting for every in-sync replica.
    pub fn kafka(brokers: &str, topic: &str, format: MessageFormat) -> anyhow::Result<Sender> {
        let producer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "30000")
            .create()
            .with_context(|| format!("cannot create a Kafka producer for {brokers}"))?;
        Ok(Sender::Kafka {
            producer,
            topic: topic.to_string(),
            format,
        })
    }

    pub fn json_lines(output: Box<dyn Write + Send>) -> Sender {
        Sender::JsonLines(output)
    }

    /// Sends one batch, retrying while the receiver asks to back off.
    pub async fn send(&mut self, events: &[FlatEvent], report: &mut SendReport) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        match self {
            Sender::JsonLines(output) => {
                for event in events {
                    serde_json::to_writer(&mut *output, &event.to_json(false))?;
                    output.write_all(b"\n")?;
                }
                output.flush()?;
            }
            Sender::Kafka {
                producer,
                topic,
                format,
            } => send_kafka(producer, topic, *format, events).await?,
            Sender::Grpc { client, authorization } => {
                let request = events_to_request(events);
                let mut attempt = 0;
                loop {
                    let mut call = tonic::Request::new(request.clone());
                    if let Some(header) = authorization.as_deref() {
                        call.metadata_mut().insert(
                            "authorization",
                            header.parse().context("the token is not a header value")?,
                        );
                    }
                    match client.export(call).await {
                        Ok(response) => {
                            report.absorb(response.get_ref());
                            break;
                        }
                        Err(status)
                            if matches!(status.code(), tonic::Code::ResourceExhausted | tonic::Code::Unavailable)
                                && attempt < MAX_RETRIES =>
                        {
                            attempt += 1;
                            report.retries += 1;
                            tokio::time::sleep(backoff(attempt, None)).await;
                        }
                        Err(status) => bail!("OTLP/gRPC export failed: {:?}: {}", status.code(), status.message()),
                    }
                }
            }
            Sender::Http {
                client,
                url,
                json,
                authorization,
            } => {
                let request = events_to_request(events);
                let (body, content_type) = if *json {
                    (serde_json::to_vec(&request)?, "application/json")
                } else {
                    (request.encode_to_vec(), "application/x-protobuf")
                };
                let mut attempt = 0;
                loop {
                    let mut post = client
                        .post(url.as_str())
                        .header("content-type", content_type)
                        .body(body.clone());
                    if let Some(header) = authorization.as_deref() {
                        post = post.header("authorization", header);
                    }
                    let response = post
                        .send()
                        .await
                        .with_context(|| format!("cannot reach OTLP/HTTP at {url}: is `cordon serve` running?"))?;
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse::<u64>().ok());
                    let bytes = response.bytes().await?;
                    if status.is_success() {
                        let decoded: ExportLogsServiceResponse = if *json {
                            serde_json::from_slice(&bytes).unwrap_or_default()
                        } else {
                            ExportLogsServiceResponse::decode(bytes).unwrap_or_default()
                        };
                        report.absorb(&decoded);
                        break;
                    }
                    if (status.as_u16() == 429 || status.as_u16() == 503) && attempt < MAX_RETRIES {
                        attempt += 1;
                        report.retries += 1;
                        tokio::time::sleep(backoff(attempt, retry_after)).await;
                        continue;
                    }
                    bail!("OTLP/HTTP export failed: {status}: {}", String::from_utf8_lossy(&bytes));
                }
            }
        }
        report.sent += events.len();
        Ok(())
    }
}

/// Kafka messages as the contract's producers write them, keyed by `host.id` so that a
/// host's events stay in one partition: OTLP formats carry one host's events of the
/// batch per message; `json` one event per message.
async fn send_kafka(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    format: MessageFormat,
    events: &[FlatEvent],
) -> anyhow::Result<()> {
    let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
    match format {
        MessageFormat::Json => {
            for event in events {
                messages.push((host_of(event), serde_json::to_vec(&event.to_json(false))?));
            }
        }
        MessageFormat::OtlpProto | MessageFormat::OtlpJson => {
            let mut by_host: std::collections::BTreeMap<String, Vec<FlatEvent>> = Default::default();
            for event in events {
                by_host.entry(host_of(event)).or_default().push(event.clone());
            }
            for (host, events) in by_host {
                let request = events_to_request(&events);
                let payload = if format == MessageFormat::OtlpProto {
                    request.encode_to_vec()
                } else {
                    serde_json::to_vec(&request)?
                };
                messages.push((host, payload));
            }
        }
    }
    let sends = messages.iter().map(|(key, payload)| {
        producer.send(
            rdkafka::producer::FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(30),
        )
    });
    for result in futures::future::join_all(sends).await {
        if let Err((error, _)) = result {
            bail!("cannot produce to Kafka topic {topic}: {error} (does the topic exist? is the broker up?)");
        }
    }
    Ok(())
}

fn host_of(event: &FlatEvent) -> String {
    match event.attributes.get(cordon_schemas::fields::attr::HOST_ID) {
        Some(cordon_schemas::AttrValue::Str(host)) => host.to_string(),
        _ => String::new(),
    }
}

/// The wait before try `attempt + 1`: what the server asked for, else the shared backoff.
fn backoff(attempt: u32, retry_after_seconds: Option<u64>) -> Duration {
    const RETRY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    match retry_after_seconds {
        Some(seconds) => Duration::from_secs(seconds),
        None => RETRY.delay(attempt),
    }
}
