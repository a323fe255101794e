//! Cordon as one engine of `cordon bench peers`, run in a process of its own (so its
//! CPU time and peak memory are its own): every built-in rule over the stream, in two
//! modes. Streaming: one evaluation per second of event time, as events arrive, each
//! alert raised as soon as it can be. Backtest: the stored Parquet file read by the
//! same query `cordon rules backtest` runs, one evaluation per batch it yields.
//! Signals and risk events go back in as the server's ingestor stores them, so the
//! rules that read them (agent-building-blocks, entity-risk) run as they do live.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::TimestampNanosecondType;
use cordon_detections::alerts::{AlertFilter, AlertStore, Folded};
use cordon_detections::process::process_and_fold;
use cordon_detections::{DetectionMetrics, Engine};
use cordon_schemas::EventBatchBuilder;
use cordon_schemas::fields::col;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The baseline: the stream read from Parquet in arrival order, no rule run.
    Scan,
    Streaming,
    Backtest,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Scan => "scan",
            Mode::Streaming => "streaming",
            Mode::Backtest => "backtest",
        }
    }
}

/// `cordon bench peer-run`: what `bench peers` starts for Cordon's own rows.
#[derive(Debug, Clone, clap::Args)]
pub struct PeerRunOptions {
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// The stream's Parquet file.
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long)]
    pub rules: PathBuf,
    #[arg(long)]
    pub reference: PathBuf,
    /// Only this rule (to see what each costs).
    #[arg(long)]
    pub rule: Option<String>,
}

/// What one engine's run reports (printed as JSON by the child process).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunReport {
    pub events: u64,
    /// Wall time of the detection work alone (the stream already on disk).
    pub seconds: f64,
    /// Alerts (signals, for building blocks) per rule.
    pub alerts: BTreeMap<String, u64>,
    /// How the engine was driven, for the table's notes.
    pub method: String,
    /// Whether the run stopped before the stream's end (a time budget).
    #[serde(default)]
    pub partial: bool,
}

const SECOND: i64 = 1_000_000_000;

pub async fn run(options: PeerRunOptions) -> anyhow::Result<RunReport> {
    let detections = crate::bench::detections::default_detections();
    let reference = cordon_detections::reference::load_dir(&options.reference)?;
    let mut engine = Engine::new(detections.engine_config(), reference, DetectionMetrics::default());
    let errors = engine.load_dir(&options.rules).await?;
    anyhow::ensure!(errors.is_empty(), "rules do not load: {errors:?}");
    if let Some(only) = &options.rule {
        for id in engine.rule_ids().into_iter().filter(|id| id != only) {
            engine.remove(&id);
        }
    }
    let context = datafusion::prelude::SessionContext::new();
    // The event schema as stored, as the server's own tables read it (no view types).
    let schema = cordon_schemas::event_schema();
    context
        .register_parquet(
            "events",
            options.input.to_string_lossy().as_ref(),
            datafusion::prelude::ParquetReadOptions::default().schema(&schema),
        )
        .await
        .with_context(|| format!("reading {}", options.input.display()))?;
    let store = AlertStore::in_memory();
    let mut signals: BTreeMap<String, u64> = BTreeMap::new();
    let mut derived: Vec<serde_json::Value> = Vec::new();
    let mut events = 0u64;
    let started = Instant::now();
    // Arrival order, as `rules backtest` reads the store.
    let mut stream = context
        .sql("SELECT * FROM events ORDER BY received_time, time")
        .await?
        .execute_stream()
        .await?;
    let mut pending: Vec<RecordBatch> = Vec::new();
    let mut second_end: Option<i64> = None;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        events += batch.num_rows() as u64;
        match options.mode {
            Mode::Scan => {}
            Mode::Backtest => {
                evaluate(&mut engine, &store, batch, &mut derived, &mut signals).await?;
            }
            Mode::Streaming => {
                // Cut the arrivals into seconds of event time: one evaluation each.
                let mut rest = batch;
                while rest.num_rows() > 0 {
                    let times = rest
                        .column_by_name(col::RECEIVED_TIME)
                        .expect("events have a received time")
                        .as_primitive::<TimestampNanosecondType>()
                        .clone();
                    let end = *second_end.get_or_insert_with(|| (times.value(0) / SECOND + 1) * SECOND);
                    let within = times.values().partition_point(|time| *time < end);
                    pending.push(rest.slice(0, within));
                    rest = rest.slice(within, rest.num_rows() - within);
                    if rest.num_rows() > 0 {
                        let second = arrow::compute::concat_batches(&pending[0].schema(), &pending)?;
                        pending.clear();
                        evaluate(&mut engine, &store, second, &mut derived, &mut signals).await?;
                        second_end = None;
                    }
                }
            }
        }
    }
    if !pending.is_empty() {
        let last = arrow::compute::concat_batches(&pending[0].schema(), &pending)?;
        evaluate(&mut engine, &store, last, &mut derived, &mut signals).await?;
    }
    // What the last evaluation derived is judged too, as the server would next.
    while !derived.is_empty() {
        let batch = derived_batch(&mut derived)?;
        evaluate(&mut engine, &store, batch, &mut derived, &mut signals).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut alerts = signals;
    for alert in store.list(&AlertFilter {
        limit: 1_000_000,
        ..AlertFilter::default()
    })? {
        *alerts.entry(alert.rule_id).or_default() += 1;
    }
    Ok(RunReport {
        events,
        seconds,
        alerts,
        method: match options.mode {
            Mode::Scan => "Parquet read in arrival order, no rules".into(),
            Mode::Streaming => "one evaluation per second of event time".into(),
            Mode::Backtest => "Parquet in arrival order, one evaluation per 8192-row batch".into(),
        },
        partial: false,
    })
}

/// One evaluation: `batch` plus the signal and risk events the previous one derived.
async fn evaluate(
    engine: &mut Engine,
    store: &AlertStore,
    batch: RecordBatch,
    derived: &mut Vec<serde_json::Value>,
    signals: &mut BTreeMap<String, u64>,
) -> anyhow::Result<()> {
    let batch = if derived.is_empty() {
        batch
    } else {
        let own = derived_batch(derived)?;
        arrow::compute::concat_batches(&batch.schema(), &[batch, own])?
    };
    let burst = process_and_fold(engine, store, &batch).await;
    if let Some(error) = burst.errors.first() {
        anyhow::bail!("{error}");
    }
    for (folded, _) in &burst.raised {
        if let Folded::Created(alert) = folded {
            derived.extend(cordon_detections::risk::events_of(alert));
        }
    }
    for (found, definition) in &burst.signals {
        *signals.entry(definition.id.clone()).or_default() += 1;
        derived.push(cordon_detections::signals::event_of(found, definition));
    }
    Ok(())
}

fn derived_batch(derived: &mut Vec<serde_json::Value>) -> anyhow::Result<RecordBatch> {
    let mut builder = EventBatchBuilder::with_capacity(derived.len());
    for value in derived.drain(..) {
        let record = cordon_schemas::flat::flat_json_to_event(&value).map_err(|reason| anyhow::anyhow!("{reason}"))?;
        let time = record.time_unix_nano as i64;
        builder
            .append_own(&record, time)
            .map_err(|reason| anyhow::anyhow!("{reason}"))?;
    }
    Ok(builder.finish())
}
