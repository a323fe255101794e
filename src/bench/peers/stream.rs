//! The one event stream every engine of `cordon bench peers` reads: the simulator's
//! background with every attack of contract section 6 spread over it, written once as
//! Parquet in Cordon's event schema (what Cordon's backtest and DuckDB read) and as
//! JSON lines of the same rows (what a Sigma engine reads): the stored columns, so every
//! engine reads the producers' events as Cordon normalized them (`schemas/src/producers`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use cordon_schemas::event_schema;
use parquet::arrow::ArrowWriter;

use crate::simulate::{Scenario, SimConfig, Simulator};

/// What the stream holds, printed with the figures.
#[derive(Debug, Clone)]
pub struct Stream {
    pub parquet: PathBuf,
    pub json_lines: PathBuf,
    pub events: u64,
    pub attacks: usize,
    pub hosts: usize,
    pub span: Duration,
}

/// Event time of the stream's first event: a fixed day, so runs compare.
pub const START_UNIX_NANO: i64 = 1_800_000_000 * 1_000_000_000;

/// Makes at least `events` events over `span` of event time on `hosts` hosts, with
/// each attack scenario injected `repeats` times, spread evenly after the first 5%.
pub fn generate(dir: &Path, events: u64, hosts: usize, span: Duration, repeats: usize) -> anyhow::Result<Stream> {
    let scenarios: Vec<Scenario> = (0..repeats.max(1)).flat_map(|_| Scenario::ALL).collect();
    let attack_at = span / 20;
    let spacing = (span - attack_at * 2) / scenarios.len() as u32;
    // The background makes a little more than one event per step on average (a
    // broker request brings its OPA decision): measured, not assumed, below.
    let mut simulator = Simulator::new(SimConfig {
        seed: 19,
        hosts,
        rate: events as f64 / span.as_secs_f64(),
        duration: span,
        start_unix_nano: START_UNIX_NANO,
        scenarios: scenarios.clone(),
        attack_at,
        attack_spacing: spacing,
    });
    let parquet_path = dir.join("events.parquet");
    let json_path = dir.join("events.jsonl");
    let file = File::create(&parquet_path).with_context(|| format!("creating {}", parquet_path.display()))?;
    let mut parquet = ArrowWriter::try_new(file, event_schema(), None)?;
    let mut json = arrow::json::LineDelimitedWriter::new(BufWriter::new(
        File::create(&json_path).with_context(|| format!("creating {}", json_path.display()))?,
    ));
    let mut written = 0u64;
    // A step's events can come a little after the next step's start: events wait here
    // until a later chunk shows nothing earlier can still come, then leave in time order.
    let mut pending: Vec<cordon_schemas::FlatEvent> = Vec::new();
    let mut last_time = i64::MIN;
    loop {
        let chunk = simulator.next_events(i64::MAX, 65_536);
        let done = chunk.is_empty();
        let horizon = chunk.iter().map(|event| event.time_unix_nano).min().unwrap_or(i64::MAX);
        pending.extend(chunk);
        pending.sort_by_key(|event| event.time_unix_nano);
        let ready: Vec<_> = if done {
            std::mem::take(&mut pending)
        } else {
            let split = pending.partition_point(|event| event.time_unix_nano < horizon);
            pending.drain(..split).collect()
        };
        if let Some(first) = ready.first() {
            anyhow::ensure!(
                first.time_unix_nano >= last_time,
                "the simulator produced an event earlier than one already written: the stream would not be in arrival order"
            );
            last_time = ready.last().map_or(last_time, |event| event.time_unix_nano);
            // Each received as it happened: a stream, not a replay of buffered laptops.
            let batch = crate::bench::detections::to_batch(&ready, None)?;
            parquet.write(&batch)?;
            json.write_batches(&[&batch])?;
            written += ready.len() as u64;
        }
        if done {
            break;
        }
    }
    parquet.close()?;
    json.finish()?;
    json.into_inner().flush()?;
    Ok(Stream {
        parquet: parquet_path,
        json_lines: json_path,
        events: written,
        attacks: scenarios.len(),
        hosts,
        span,
    })
}
