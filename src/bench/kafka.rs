//! Kafka to durable storage: the same OTLP payloads as `bench ingest`, produced to a
//! fresh topic first, then consumed by the Kafka source of a fresh server; printed next
//! to the OTLP/gRPC figure of the same run.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cordon_ingest::kafka::{KafkaConfig, MessageFormat, TopicConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::ingest::{IngestBenchOptions, payloads};
use crate::config::Config;
use crate::server::Server;

#[derive(Debug, Clone, clap::Args)]
pub struct KafkaBenchOptions {
    /// The broker (`scripts/kafka-broker.sh` starts tansu on 127.0.0.1:9092).
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    #[arg(long, default_value_t = 500_000)]
    pub events: usize,
    /// Records per Kafka message (one OTLP request each, as the Collector writes them).
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Skip the OTLP/gRPC run printed alongside.
    #[arg(long)]
    pub skip_otlp: bool,
}

pub async fn run(options: KafkaBenchOptions) -> anyhow::Result<()> {
    let payloads = payloads(options.events, options.batch);
    let bytes: usize = payloads.iter().map(|payload| payload.len()).sum();
    let topic = format!("cordon-bench-{}", uuid::Uuid::new_v4().simple());
    create_topic(&options.brokers, &topic, options.partitions).await?;

    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        .set("linger.ms", "5")
        .set("message.max.bytes", "16000000")
        .create()
        .context("cannot create a Kafka producer")?;
    let started = Instant::now();
    let sends = payloads.iter().enumerate().map(|(index, payload)| {
        let key = index.to_string();
        let producer = &producer;
        let topic = &topic;
        async move {
            producer
                .send(
                    FutureRecord::to(topic).key(&key).payload(payload.as_ref()),
                    Duration::from_secs(60),
                )
                .await
        }
    });
    for result in futures::future::join_all(sends).await {
        if let Err((error, _)) = result {
            bail!("producing the benchmark's messages failed: {error}");
        }
    }
    let produce_seconds = started.elapsed().as_secs_f64();

    let data_dir = tempfile::tempdir()?;
    let mut config = Config::default();
    // The alerts the simulated traffic raises are recorded, not sent: no webhook target
    // is set up for a benchmark, and each try would log an error.
    config.responder.dry_run = true;
    config.otlp.grpc_listen = "127.0.0.1:0".parse()?;
    config.otlp.http_listen = "127.0.0.1:0".parse()?;
    config.api.listen = "127.0.0.1:0".parse()?;
    config.storage.data_dir = data_dir.path().to_path_buf();
    config.storage.max_buffered_events = (options.events * 2).max(config.storage.max_buffered_events);
    config.kafka = KafkaConfig {
        enabled: true,
        brokers: options.brokers.clone(),
        group_id: format!("{topic}-group"),
        topics: vec![TopicConfig::new(topic.clone(), MessageFormat::OtlpProto)],
        dead_letter_topic: String::new(),
        ..KafkaConfig::default()
    };
    let server = Server::start(config).await?;
    let stored = || server.ingestor.metrics().events_out.get() as usize;
    let started = Instant::now();
    let mut first = None;
    while stored() < options.events {
        if first.is_none() && stored() > 0 {
            first = Some((Instant::now(), stored()));
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {} of {} events stored after 10 minutes", stored(), options.events);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total_seconds = started.elapsed().as_secs_f64();
    let (first_at, first_count) = first.unwrap_or((started, 0));
    let steady_seconds = first_at.elapsed().as_secs_f64();
    let steady_eps = (options.events - first_count) as f64 / steady_seconds.max(1e-9);
    server.stop().await?;

    println!(
        "kafka benchmark: {} events in {} messages of {} records ({:.1} MB of OTLP protobuf), {} partitions, broker {}",
        options.events,
        payloads.len(),
        options.batch,
        bytes as f64 / 1e6,
        options.partitions,
        options.brokers
    );
    println!(
        "  produce (not Cordon)                {:>12.0} events/s",
        options.events as f64 / produce_seconds
    );
    println!("  Kafka -> durable, from first event  {steady_eps:>12.0} events/s");
    println!(
        "  Kafka -> durable, with group join   {:>12.0} events/s ({total_seconds:.1} s)",
        options.events as f64 / total_seconds
    );
    if !options.skip_otlp {
        let otlp = super::ingest::run(IngestBenchOptions {
            events: options.events,
            batch: options.batch,
            concurrency: 8,
            defer_parquet: false,
            // The Kafka figure above is the whole server's, so compare like with like.
            rounds: 0,
            server_rounds: 1,
            http_json_rounds: 0,
            connections: 1,
            queue_events: None,
        })
        .await?;
        println!(
            "  OTLP/gRPC -> durable (same payloads) {:>11.0} events/s",
            otlp.ingest_eps()
        );
    }
    Ok(())
}

async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("cannot create a Kafka admin client")?;
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .with_context(|| format!("cannot create topic {topic} on {brokers}: is the broker up?"))?;
    for result in results {
        result.map_err(|(topic, code)| anyhow::anyhow!("cannot create topic {topic}: {code}"))?;
    }
    Ok(())
}
