//! Cordon as one engine of `cordon bench peers`, run in a process of its own (so its
//! CPU time and peak memory are its own): every built-in rule over the stream, in two
//! modes. Streaming: the stream as arrivals of 512 events, read as fast as it goes,
//! queued and evaluated as the server's detection loop does (whatever queued while the
//! engine was busy, up to `burst_max_events`), each alert raised as soon as its burst
//! is evaluated. Backtest: the stored Parquet file read in arrival order as `cordon
//! rules backtest` reads it, one evaluation per `burst_max_events` events.
//! Signals and risk events go back in as the server's ingestor stores them, so the
//! rules that read them (agent-building-blocks, entity-risk) run as they do live.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use arrow::array::RecordBatch;
use cordon_detections::alerts::{AlertFilter, AlertStore, Folded};
use cordon_detections::engine::Due;
use cordon_detections::process::{Burst, evaluate_held_and_fold, process_and_fold};
use cordon_detections::queue::{EventBudget, Taken, take_burst};
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

/// Events per arrival in streaming mode: the OpenTelemetry SDKs' default export batch.
const ARRIVAL_EVENTS: usize = 512;

fn percentile(values: &mut [f64], share: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * share).round() as usize]
}

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
    // One partition: the file is read in its order, with no merge of two halves (whose
    // interleaving of every column cost 9% of the backtest).
    let context = datafusion::prelude::SessionContext::new_with_config(
        datafusion::prelude::SessionConfig::new().with_target_partitions(1),
    );
    // The event schema as stored, as the server's own tables read it (no view types).
    // The stream is written in arrival order (`stream.rs` checks): declared, it is
    // read in that order without a sort, as the store's time-sorted files could be.
    let schema = cordon_schemas::event_schema();
    let arrival_order = vec![vec![
        datafusion::prelude::col(col::RECEIVED_TIME).sort(true, false),
        datafusion::prelude::col(col::TIME).sort(true, false),
    ]];
    context
        .register_parquet(
            "events",
            options.input.to_string_lossy().as_ref(),
            datafusion::prelude::ParquetReadOptions::default()
                .schema(&schema)
                .file_sort_order(arrival_order),
        )
        .await
        .with_context(|| format!("reading {}", options.input.display()))?;
    let store = AlertStore::in_memory();
    let mut signals: BTreeMap<String, u64> = BTreeMap::new();
    let mut derived: Vec<serde_json::Value> = Vec::new();
    let started = Instant::now();
    let mut stream = context
        .sql("SELECT * FROM events ORDER BY received_time, time")
        .await?
        .execute_stream()
        .await?;
    let burst_max = detections.burst_max_events;
    let mut events = 0u64;
    let mut evaluations = 0u64;
    let mut waits: Vec<f64> = Vec::new();
    match options.mode {
        Mode::Scan => {
            while let Some(batch) = stream.next().await {
                events += batch?.num_rows() as u64;
            }
        }
        Mode::Backtest => {
            let mut bursts = crate::query::bursts(stream, burst_max);
            while let Some(burst) = bursts.recv().await {
                let burst = burst?;
                events += burst.num_rows() as u64;
                evaluations += 1;
                evaluate(&mut engine, &store, burst, &mut derived, &mut signals).await?;
            }
        }
        Mode::Streaming => {
            // Arrivals as OTLP exporters send them, queued as storage queues them for the
            // engine; the engine takes what queued while it was busy, as the server does.
            let (sender, mut receiver) = tokio::sync::mpsc::channel::<(RecordBatch, Instant)>(detections.queue_batches);
            let budget = EventBudget::new(detections.queue_events);
            // Closes the budget however this run ends, so the arrivals never wait on it.
            let consumer = budget.consumer();
            let arrivals = tokio::spawn({
                let budget = budget.clone();
                async move {
                    while let Some(batch) = stream.next().await {
                        let batch = batch?;
                        let mut offset = 0;
                        while offset < batch.num_rows() {
                            let length = ARRIVAL_EVENTS.min(batch.num_rows() - offset);
                            let queued = Instant::now();
                            if budget.take(length) == Taken::Closed
                                || sender.send((batch.slice(offset, length), queued)).await.is_err()
                            {
                                return Ok(());
                            }
                            offset += length;
                        }
                    }
                    anyhow::Ok(())
                }
            });
            while let Some(first) = receiver.recv().await {
                let burst = take_burst(first, &mut receiver, burst_max, |(batch, _)| batch.num_rows());
                let batches: Vec<RecordBatch> = burst.iter().map(|(batch, _)| batch.clone()).collect();
                let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches)?;
                events += batch.num_rows() as u64;
                evaluations += 1;
                evaluate(&mut engine, &store, batch, &mut derived, &mut signals).await?;
                consumer.give_back(burst.iter().map(|(batch, _)| batch.num_rows()).sum());
                let now = Instant::now();
                waits.extend(burst.iter().map(|(_, queued)| (now - *queued).as_secs_f64() * 1e3));
            }
            arrivals.await??;
        }
    }
    // What rules hold for later (`evaluate_every`) and what the last evaluation
    // derived are judged too, as the server would next.
    loop {
        let held = evaluate_held_and_fold(&mut engine, &store, Due::All).await;
        take_results(held, &mut derived, &mut signals)?;
        if derived.is_empty() {
            break;
        }
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
            Mode::Streaming => format!(
                "arrivals of {ARRIVAL_EVENTS} events as fast as read, queued ({} batches, {} events) and \
                 evaluated in bursts of what queued (at most {burst_max}): {evaluations} evaluations, \
                 queued-to-evaluated p50 {:.0} ms, p99 {:.0} ms",
                detections.queue_batches,
                detections.queue_events,
                percentile(&mut waits, 0.50),
                percentile(&mut waits, 0.99),
            ),
            Mode::Backtest => {
                format!("Parquet in arrival order, one evaluation per {burst_max} events ({evaluations} evaluations)")
            }
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
    take_results(burst, derived, signals)
}

/// Fails on a rule's error; keeps what an evaluation derived for the next.
fn take_results(
    burst: Burst,
    derived: &mut Vec<serde_json::Value>,
    signals: &mut BTreeMap<String, u64>,
) -> anyhow::Result<()> {
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
