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
    /// Cordon next to RSigma and DuckDB on one stream and the same rules
    /// (scripts/peers.sh installs the peers).
    Peers(crate::bench::peers::PeersBenchOptions),
    /// One Cordon run of `bench peers`, in a process of its own (started by it).
    #[command(hide = true)]
    PeerRun(crate::bench::peers::PeerRunOptions),
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
        BenchCommand::Peers(options) => {
            warn_if_debug("peers");
            crate::bench::peers::run(options).await?;
        }
        BenchCommand::PeerRun(options) => {
            let report = crate::bench::peers::run_cordon(options).await?;
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}
