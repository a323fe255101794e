//! `cordon simulate`: simulated agent telemetry, benign and attacks, to any transport.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};

use super::humantime_duration;
use crate::simulate::runner::Pace;
use crate::simulate::senders::Sender;
use crate::simulate::{Scenario, SimConfig, Simulator};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    Grpc,
    Http,
    HttpJson,
    Jsonl,
    /// A Kafka topic (`--endpoint` is the brokers, `--topic`, `--kafka-format`).
    Kafka,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KafkaFormat {
    OtlpProto,
    OtlpJson,
    Json,
}

impl From<KafkaFormat> for cordon_ingest::kafka::MessageFormat {
    fn from(format: KafkaFormat) -> Self {
        match format {
            KafkaFormat::OtlpProto => cordon_ingest::kafka::MessageFormat::OtlpProto,
            KafkaFormat::OtlpJson => cordon_ingest::kafka::MessageFormat::OtlpJson,
            KafkaFormat::Json => cordon_ingest::kafka::MessageFormat::Json,
        }
    }
}

#[derive(Args)]
pub struct SimulateArgs {
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 20)]
    hosts: usize,
    /// Background events per second of simulated time.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Simulated time covered, e.g. 60s, 10m.
    #[arg(long, default_value = "60s", value_parser = humantime_duration)]
    duration: Duration,
    /// Event time of the first event (RFC 3339); default now.
    #[arg(long)]
    start: Option<DateTime<Utc>>,
    /// Attacks to inject, by rule id, or `all`. Repeat or separate with commas.
    #[arg(long = "scenario", value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Simulated time before the first attack.
    #[arg(long, default_value = "5s", value_parser = humantime_duration)]
    attack_at: Duration,
    #[arg(long, value_enum, default_value = "grpc")]
    to: Transport,
    /// Receiver address; defaults to the contract ports on localhost.
    #[arg(long)]
    endpoint: Option<String>,
    /// The producer credential to present (`Authorization: Bearer`), for OTLP.
    #[arg(long, env = "CORDON_PRODUCER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// With --to kafka: the topic.
    #[arg(long, default_value = "agent-events")]
    topic: String,
    /// With --to kafka: how each message is encoded (contract section 1).
    #[arg(long, value_enum, default_value = "otlp-proto")]
    kafka_format: KafkaFormat,
    /// With --to jsonl: the file to write (default standard output).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Events per request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    #[arg(long, value_enum, default_value = "realtime")]
    pace: Pace,
    /// Print the planned attacks as JSON and exit without sending.
    #[arg(long)]
    plan: bool,
}

fn parse_scenarios(names: &[String]) -> anyhow::Result<Vec<Scenario>> {
    let mut scenarios = Vec::new();
    for name in names.iter().map(|name| name.trim()).filter(|name| !name.is_empty()) {
        if name == "all" {
            scenarios.extend(Scenario::ALL);
        } else if let Some(scenario) = Scenario::from_rule_id(name) {
            scenarios.push(scenario);
        } else {
            let known: Vec<&str> = Scenario::ALL
                .iter()
                .chain(&Scenario::WITH_RESPONSES)
                .map(|scenario| scenario.rule_id())
                .collect();
            bail!("unknown scenario {name:?}; known: all, {}", known.join(", "));
        }
    }
    Ok(scenarios)
}

impl SimulateArgs {
    fn sim_config(&self) -> anyhow::Result<SimConfig> {
        if self.rate.is_nan() || self.rate <= 0.0 {
            bail!("--rate must be above 0, got {}", self.rate);
        }
        // Sent as fast as taken, a run without --start ends now: starting now, it would
        // run ahead of the clock and the door would refuse what is too far ahead.
        let start = self.start.unwrap_or_else(|| match self.pace {
            Pace::Realtime => Utc::now(),
            Pace::Fast => Utc::now() - self.duration,
        });
        Ok(SimConfig {
            seed: self.seed,
            hosts: self.hosts,
            rate: self.rate,
            duration: self.duration,
            start_unix_nano: start.timestamp_nanos_opt().context("--start is out of range")?,
            scenarios: parse_scenarios(&self.scenarios)?,
            attack_at: self.attack_at,
            ..SimConfig::default()
        })
    }

    async fn sender(&self) -> anyhow::Result<Sender> {
        Ok(self.unauthenticated_sender().await?.with_token(self.token.as_deref()))
    }

    async fn unauthenticated_sender(&self) -> anyhow::Result<Sender> {
        Ok(match self.to {
            Transport::Grpc => Sender::grpc(self.endpoint.as_deref().unwrap_or("http://127.0.0.1:4317")).await?,
            Transport::Http => Sender::http(self.endpoint.as_deref().unwrap_or("http://127.0.0.1:4318"), false)?,
            Transport::HttpJson => Sender::http(self.endpoint.as_deref().unwrap_or("http://127.0.0.1:4318"), true)?,
            Transport::Kafka => Sender::kafka(
                self.endpoint.as_deref().unwrap_or("127.0.0.1:9092"),
                &self.topic,
                self.kafka_format.into(),
            )?,
            Transport::Jsonl => match &self.output {
                Some(path) => Sender::json_lines(Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
                ))),
                None => Sender::json_lines(Box::new(std::io::stdout())),
            },
        })
    }
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let config = args.sim_config()?;
    let simulator = Simulator::new(config.clone());
    for injection in simulator.injections() {
        eprintln!("cordon simulate: injecting {}", serde_json::to_string(injection)?);
    }
    if args.plan {
        println!("{}", serde_json::to_string_pretty(simulator.injections())?);
        return Ok(());
    }
    let mut sender = args.sender().await?;
    let report = crate::simulate::runner::run(config, &mut sender, args.batch, args.pace, |_| {}).await?;
    eprintln!(
        "cordon simulate: sent {} events, {} rejected, {} retries{}",
        report.sent,
        report.rejected,
        report.retries,
        report
            .last_message
            .map(|message| format!("; receiver said: {message}"))
            .unwrap_or_default()
    );
    Ok(())
}
