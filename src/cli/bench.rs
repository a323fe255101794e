//! `cordon bench ingest|detections|kafka`: benchmarks that print figures.

use clap::Subcommand;

use crate::bench::ingest::IngestBenchOptions;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// OTLP/gRPC to durable storage, against the bare protobuf decode of the same payloads.
    Ingest(IngestBenchOptions),
    /// Event-to-alert latency, per-tick rule cost with short and long windows, peak RSS.
    Detections(crate::bench::detections::DetectionBenchOptions),
    /// Kafka to durable storage (a running broker: scripts/kafka-broker.sh), next to the
    /// OTLP/gRPC figure for the same payloads.
    Kafka(crate::bench::kafka::KafkaBenchOptions),
    /// Hunt and timeline latency over a large store: the live snapshot against
    /// re-reading the files for every request.
    Hunt(crate::bench::hunt::HuntBenchOptions),
}

fn warn_if_debug(bench: &str) {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run `cargo run --release -- bench {bench}` for representative figures");
    }
}

pub async fn run(bench: BenchCommand) -> anyhow::Result<()> {
    match bench {
        BenchCommand::Ingest(options) => {
            warn_if_debug("ingest");
            println!("{}", crate::bench::ingest::run(options).await?);
        }
        BenchCommand::Detections(options) => {
            warn_if_debug("detections");
            crate::bench::detections::run(options).await?;
        }
        BenchCommand::Kafka(options) => {
            warn_if_debug("kafka");
            crate::bench::kafka::run(options).await?;
        }
        BenchCommand::Hunt(options) => {
            warn_if_debug("hunt");
            crate::bench::hunt::run(options).await?;
        }
    }
    Ok(())
}
