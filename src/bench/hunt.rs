//! `cordon bench hunt`: hunt and timeline latency over a large store, by the two ways a
//! reader can reach the events: the live store's snapshot (what the server's readers
//! use) and the files on disk, re-reading the write-ahead log and listing the Parquet
//! files for every request (what hunts did before issue 14, and `cordon query` does).
//!
//! The store is filled with the simulator's benign background (the detections bench's
//! replayer) through the real storage path: WAL appends, Parquet flushes by hour; the
//! last `--recent` events stay in the WAL and memory, as on a running server.

use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::array::AsArray;
use arrow::record_batch::RecordBatch;
use cordon_ingest::IngestMetrics;
use cordon_ingest::StorageConfig;
use cordon_ingest::storage::EventStore;
use cordon_schemas::fields::col;

use super::detections::Background;
use crate::query::EventSession;

#[derive(Debug, Clone, clap::Args)]
pub struct HuntBenchOptions {
    /// Events stored before measuring.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: usize,
    /// Of those, the newest left in the write-ahead log and memory (not yet Parquet).
    #[arg(long, default_value_t = 500_000)]
    pub recent: usize,
    /// Event time the store covers, ending now.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub span: Duration,
    /// Hosts in the fleet (the background's hosts x 20 replay cycles).
    #[arg(long, default_value_t = 100)]
    pub hosts: usize,
    /// Times each query runs per path; the median is printed.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Where the store goes (default: a temporary folder, removed after).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

const MEMORY: usize = 512 << 20;
const APPEND: usize = 50_000;

/// What an analyst runs: a hunt across the fleet over the last hour, and one host's
/// timeline (as `GET /api/v1/timeline` builds it).
const HUNT: &str = "SELECT host_id, count(*) AS flows, count(DISTINCT destination_address) AS destinations \
     FROM network_flow WHERE time > now() - INTERVAL '1 hour' GROUP BY host_id ORDER BY flows DESC LIMIT 20";

pub async fn run(options: HuntBenchOptions) -> anyhow::Result<()> {
    let temporary = tempfile::tempdir()?;
    let data_dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    let config = StorageConfig {
        data_dir,
        // Flushed here, by hour of event time, not on the server's schedule.
        flush_max_events: usize::MAX,
        max_buffered_events: usize::MAX,
        ..StorageConfig::default()
    };
    let store = EventStore::open(config.clone(), IngestMetrics::default(), Duration::from_secs(1), vec![])?;
    let filled = Instant::now();
    let host = fill(&store, &options).await?;
    println!(
        "stored {} events ({} in Parquet files, {} in the write-ahead log) in {:.0} s",
        options.events,
        options.events - options.recent.min(options.events),
        options.recent.min(options.events),
        filled.elapsed().as_secs_f64()
    );
    let now = cordon_schemas::time::now_nanos();
    let since = now - 3_600_000_000_000;
    println!("{:<34} {:>14} {:>14}", "median of rounds", "from disk", "live snapshot");
    for (name, kind) in [
        ("hunt (fleet, last hour)", Query::Hunt),
        ("timeline (one host, last hour)", Query::Timeline),
    ] {
        let mut disk = Vec::new();
        let mut live = Vec::new();
        let mut rows = (0, 0);
        for _ in 0..options.rounds.max(1) {
            let started = Instant::now();
            let session = crate::query::session(&config, MEMORY).await?;
            rows.0 = kind.run(&session, &host, since, now).await?;
            disk.push(started.elapsed());
            let started = Instant::now();
            let session = crate::query::live_session(&store, MEMORY).await?;
            rows.1 = kind.run(&session, &host, since, now).await?;
            live.push(started.elapsed());
        }
        anyhow::ensure!(
            rows.0 == rows.1,
            "{name}: the two paths disagree ({} vs {} rows)",
            rows.0,
            rows.1
        );
        println!(
            "{name:<34} {:>11.0} ms {:>11.0} ms   ({} rows)",
            median(&mut disk),
            median(&mut live),
            rows.1
        );
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Query {
    Hunt,
    Timeline,
}

impl Query {
    /// Runs the query over `session`; returns the rows it gave.
    async fn run(self, session: &EventSession, host: &str, since: i64, until: i64) -> anyhow::Result<usize> {
        let batches: Vec<RecordBatch> = match self {
            Query::Hunt => crate::query::run(&session.context, HUNT).await?,
            Query::Timeline => {
                crate::api::hunt::timeline_frame(&session.context, Some(host), None, since, until)
                    .await?
                    .limit(0, Some(200))?
                    .collect()
                    .await?
            }
        };
        Ok(batches.iter().map(RecordBatch::num_rows).sum())
    }
}

fn median(times: &mut [Duration]) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

/// Stores `options.events` background events spread over the span ending now, flushing
/// each hour of event time to Parquet except the newest `recent`; returns a host of
/// the newest events.
async fn fill(store: &EventStore, options: &HuntBenchOptions) -> anyhow::Result<String> {
    let mut background = Background::of(options.hosts, 10_000, 20, "h").context("building the background")?;
    let span = options.span.as_nanos() as i64;
    let start = cordon_schemas::time::now_nanos() - span;
    let total = options.events;
    let flushed_part = total.saturating_sub(options.recent);
    let progress = indicatif::ProgressBar::new(total as u64).with_style(
        indicatif::ProgressStyle::with_template("  storing events: {bar:30} {pos}/{len} ({eta} left)")
            .expect("valid template"),
    );
    let mut host = String::new();
    let mut done = 0usize;
    // About one Parquet flush per hour of event time, as the server's schedule makes,
    // then the newest `recent` events left in the WAL and memory.
    let per_hour = (total as u128 * 3600 / options.span.as_secs().max(1) as u128).max(1) as usize;
    let mut next_flush = per_hour.min(flushed_part);
    while done < total {
        let limit = if done < flushed_part { next_flush } else { total };
        let rows = APPEND.min(limit - done);
        let first = start + (done as i128 * span as i128 / total as i128) as i64;
        let width = (rows as i128 * span as i128 / total as i128) as i64;
        let batch = background.take(rows, first, width.max(1), None)?;
        // A host of the newest events: its timeline over the last hour has rows.
        host = batch
            .column_by_name(col::HOST_ID)
            .expect("host_id")
            .as_string::<i32>()
            .value(0)
            .to_string();
        store.append(batch).await?;
        done += rows;
        if done == next_flush && done <= flushed_part {
            store.flush().await?;
            next_flush = (next_flush + per_hour).min(flushed_part.max(next_flush + 1));
        }
        progress.set_position(done as u64);
    }
    progress.finish_and_clear();
    Ok(host)
}
