//! `cordon bench detections`: event-to-alert latency at a steady event rate with every
//! built-in rule live, the per-tick evaluation cost with short and long windows at the
//! same rate, and peak memory.
//!
//! The background is the simulator's benign traffic, made once as Arrow batches and
//! replayed with fresh times, ids and per-host sequence numbers. Each replay cycle
//! renames hosts, users, agents and tokens, so the fleet is `hosts x cycles` strong and
//! no host repeats its traffic faster than the simulator paces it (a host replaying its
//! denies every few seconds would be an attack, not background).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray, TimestampNanosecondArray};
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;
use cordon_detections::service::DetectionConfig;
use cordon_detections::{DetectionMetrics, Engine, EngineConfig};
use cordon_schemas::fields::col;
use cordon_schemas::{EventBatchBuilder, FlatEvent};

use crate::simulate::{SimConfig, Simulator};

#[derive(Debug, Clone, clap::Args)]
pub struct DetectionBenchOptions {
    /// Events per second of event time (and of wall time in the latency phase).
    #[arg(long, default_value_t = 50_000)]
    pub rate: usize,
    /// Hosts in one replay cycle of the background.
    #[arg(long, default_value_t = 500)]
    pub hosts: usize,
    /// Replay cycles before a host's traffic repeats (fleet = hosts x cycles).
    #[arg(long, default_value_t = 30)]
    pub cycles: usize,
    /// Window of every rule in the latency phase.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub window: Duration,
    /// Windows whose per-tick cost is compared.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    pub short_window: Duration,
    #[arg(long, default_value = "60m", value_parser = humantime::parse_duration)]
    pub long_window: Duration,
    /// Event time per evaluation tick in the cost phases.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    pub tick: Duration,
    /// Ticks measured per window once it is full.
    #[arg(long, default_value_t = 100)]
    pub ticks: usize,
    /// Wall time of the latency phase.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub measure: Duration,
    /// Live traffic before the first attack event: the fill ends minutes of event time
    /// behind the clock, so the first live events catch up a jump of the watermark
    /// (a start-up transient, not the steady state the target is about).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Attack events injected per second in the latency phase.
    #[arg(long, default_value_t = 10)]
    pub attacks_per_second: usize,
    /// Event time per step while filling windows (bigger: fewer evaluations).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub fill_step: Duration,
    /// Skip the latency phase (cost figures only).
    #[arg(long)]
    pub skip_latency: bool,
    /// Rounds of the latency phase, each on a fresh store and engine; with more than
    /// one, the median of their p50 and p99 is printed after them (one round's p99 is
    /// a few slow bursts, and this class of machine is noisy).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Skip the cost phases (latency only).
    #[arg(long)]
    pub skip_cost: bool,
    /// Hosts in the idle-keys phase: each sends a burst, then falls silent.
    #[arg(long, default_value_t = 100_000)]
    pub idle_hosts: usize,
    /// Skip the idle-keys phase (memory per silent host).
    #[arg(long)]
    pub skip_idle_keys: bool,
    /// Events the engine's queue holds before storage waits (`detections.queue_events`;
    /// default: its default): what the bound trades in latency against memory.
    #[arg(long)]
    pub queue_events: Option<usize>,
}

/// The background, as Arrow, and the state that makes each replay fresh.
pub(crate) struct Background {
    template: Vec<RecordBatch>,
    batch_index: usize,
    offset: usize,
    emitted: u64,
    cycle_rows: u64,
    cycles: u64,
    sequences: HashMap<String, i64>,
    /// Goes before the cycle number in renamed identities, so two backgrounds of one
    /// run never share a host.
    tag: &'static str,
}

/// Events as an Arrow batch, each received at `received`, or as it happened (None).
pub(crate) fn to_batch(events: &[FlatEvent], received: Option<i64>) -> anyhow::Result<RecordBatch> {
    let mut builder = EventBatchBuilder::with_capacity(events.len());
    for event in events {
        let value = event.to_json(true);
        let record = cordon_schemas::flat::flat_json_to_event(&value).map_err(|reason| anyhow::anyhow!("{reason}"))?;
        builder
            .append(&record, received.unwrap_or(event.time_unix_nano))
            .map_err(|reason| anyhow::anyhow!("{reason}"))?;
    }
    Ok(builder.finish())
}

fn renamed(column: &ArrayRef, suffix: &str) -> ArrayRef {
    let values = column.as_string::<i32>();
    let out: StringArray = values
        .iter()
        .map(|value| value.map(|text| format!("{text}{suffix}")))
        .collect();
    Arc::new(out)
}

impl Background {
    pub(crate) fn new(options: &DetectionBenchOptions) -> anyhow::Result<Background> {
        Background::of(options.hosts, options.rate, options.cycles, "c")
    }

    /// `hosts` hosts sending `rate` events/s between them, renamed `-{tag}{cycle}` for
    /// each of `cycles` replays.
    pub(crate) fn of(hosts: usize, rate: usize, cycles: usize, tag: &'static str) -> anyhow::Result<Background> {
        let mut simulator = Simulator::new(SimConfig {
            seed: 5,
            hosts,
            rate: rate as f64,
            duration: Duration::from_secs(4),
            start_unix_nano: 0,
            scenarios: Vec::new(),
            ..SimConfig::default()
        });
        let events = simulator.events_until(i64::MAX);
        let template = events
            .chunks(10_000)
            .map(|chunk| to_batch(chunk, Some(0)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Background {
            cycle_rows: events.len() as u64,
            template,
            batch_index: 0,
            offset: 0,
            emitted: 0,
            cycles: cycles as u64,
            sequences: HashMap::new(),
            tag,
        })
    }

    /// Events in one replay cycle (each of its hosts sends once).
    pub(crate) fn cycle_rows(&self) -> usize {
        self.cycle_rows as usize
    }

    /// The next `rows` events, spread evenly over [start, start + span).
    pub(crate) fn take(
        &mut self,
        rows: usize,
        start: i64,
        span: i64,
        received: Option<i64>,
    ) -> anyhow::Result<RecordBatch> {
        let mut parts = Vec::new();
        let mut left = rows;
        while left > 0 {
            let batch = &self.template[self.batch_index];
            let take = left.min(batch.num_rows() - self.offset);
            let part = batch.slice(self.offset, take);
            let cycle = (self.emitted / self.cycle_rows) % self.cycles;
            let first_id = self.emitted;
            self.emitted += take as u64;
            self.offset += take;
            if self.offset == batch.num_rows() {
                self.offset = 0;
                self.batch_index = (self.batch_index + 1) % self.template.len();
            }
            left -= take;
            parts.push((part, cycle, first_id));
        }
        let mut out = Vec::new();
        let mut index = 0usize;
        for (part, cycle, first_id) in parts {
            let schema = part.schema();
            let suffix = format!("-{}{cycle}", self.tag);
            let mut columns: Vec<ArrayRef> = part.columns().to_vec();
            let n = part.num_rows();
            let times: Vec<i64> = (0..n)
                .map(|row| start + ((index + row) as i128 * span as i128 / rows.max(1) as i128) as i64)
                .collect();
            index += n;
            let position = |name: &str| schema.index_of(name).expect("event schema");
            columns[position(col::TIME)] = Arc::new(TimestampNanosecondArray::from(times.clone()).with_timezone("UTC"));
            let received: Vec<i64> = match received {
                Some(now) => vec![now; n],
                None => times,
            };
            columns[position(col::RECEIVED_TIME)] =
                Arc::new(TimestampNanosecondArray::from(received).with_timezone("UTC"));
            let ids: StringArray = (0..n)
                .map(|row| Some(format!("bg-{}", first_id + row as u64)))
                .collect();
            columns[position(col::EVENT_ID)] = Arc::new(ids);
            for name in [col::HOST_ID, "user_name", "gen_ai_agent_id", "credential_token_id"] {
                let index = position(name);
                columns[index] = renamed(&columns[index], &suffix);
            }
            let hosts = columns[position(col::HOST_ID)].clone();
            let hosts = hosts.as_string::<i32>();
            let sequence_index = position("event_sequence");
            let had_sequence = columns[sequence_index].as_primitive::<Int64Type>().clone();
            let sequences: Int64Array = (0..n)
                .map(|row| {
                    if had_sequence.is_null(row) {
                        return None;
                    }
                    let counter = self.sequences.entry(hosts.value(row).to_string()).or_insert(0);
                    *counter += 1;
                    Some(*counter)
                })
                .collect();
            columns[sequence_index] = Arc::new(sequences);
            out.push(RecordBatch::try_new(schema, columns)?);
        }
        Ok(arrow::compute::concat_batches(&out[0].schema(), &out)?)
    }
}

pub(crate) fn default_detections() -> DetectionConfig {
    DetectionConfig::default()
}

/// Peak resident memory of this process (VmHWM), in bytes.
fn peak_rss() -> Option<u64> {
    process_status("VmHWM:")
}

/// A memory figure of this process from /proc/self/status, in bytes.
pub(crate) fn process_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

struct CostFigures {
    window: Duration,
    prefill_events: u64,
    prefill_seconds: f64,
    tick_p50_ms: f64,
    tick_mean_ms: f64,
    tick_p99_ms: f64,
    kept_rows: usize,
}

/// Fills `window` + lateness of event time at `rate`, then times `ticks` evaluations.
async fn tick_cost(options: &DetectionBenchOptions, window: Duration) -> anyhow::Result<CostFigures> {
    let detections = default_detections();
    let config = EngineConfig {
        window_override: Some(window),
        ..detections.engine_config()
    };
    let reference = cordon_detections::reference::load_dir(&detections.reference_dir)?;
    let mut engine = Engine::new(config.clone(), reference, DetectionMetrics::default());
    let errors = engine.load_dir(&detections.rules_dir).await?;
    anyhow::ensure!(errors.is_empty(), "rules do not load: {errors:?}");
    let mut background = Background::new(options)?;
    let second = 1_000_000_000i64;
    let fill = window + config.lateness;
    let fill_seconds = fill.as_secs() as i64;
    let started = Instant::now();
    let progress = indicatif::ProgressBar::new(fill_seconds as u64).with_style(
        indicatif::ProgressStyle::with_template("  filling {msg}: {bar:30} {pos}/{len} s of event time ({eta} left)")
            .expect("valid template"),
    );
    progress.set_message(humantime::format_duration(window).to_string());
    let start = 1_800_000_000 * second;
    // Filling goes several seconds of event time per step: the same rows, fewer evaluations.
    let step_seconds = options.fill_step.as_secs().max(1) as i64;
    for step in (0..fill_seconds).step_by(step_seconds as usize) {
        let span = step_seconds.min(fill_seconds - step);
        let batch = background.take(options.rate * span as usize, start + step * second, span * second, None)?;
        let processed = engine.process(&batch).await;
        anyhow::ensure!(processed.errors.is_empty(), "{:?}", processed.errors);
        progress.inc(span as u64);
    }
    progress.finish_and_clear();
    let prefill_seconds = started.elapsed().as_secs_f64();
    let tick = options.tick.as_nanos() as i64;
    let rows = (options.rate as f64 * options.tick.as_secs_f64()).round() as usize;
    let mut costs = Vec::with_capacity(options.ticks);
    for index in 0..options.ticks as i64 {
        let batch = background.take(rows, start + fill_seconds * second + index * tick, tick, None)?;
        let started = Instant::now();
        let processed = engine.process(&batch).await;
        costs.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(processed.errors.is_empty(), "{:?}", processed.errors);
    }
    let kept_rows = engine.statuses().values().map(|status| status.kept_rows).sum();
    costs.sort_by(f64::total_cmp);
    Ok(CostFigures {
        window,
        prefill_events: fill_seconds as u64 * options.rate as u64,
        prefill_seconds,
        tick_p50_ms: percentile(&costs, 0.5),
        tick_p99_ms: percentile(&costs, 0.99),
        tick_mean_ms: costs.iter().sum::<f64>() / costs.len().max(1) as f64,
        kept_rows,
    })
}

fn cost_line(options: &DetectionBenchOptions, figures: &CostFigures) -> String {
    format!(
        "per-tick cost, {} windows ({} of event time, {} events a tick): mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms; {} rows kept; filled {} events in {:.1} s",
        humantime::format_duration(figures.window),
        humantime::format_duration(options.tick),
        (options.rate as f64 * options.tick.as_secs_f64()).round(),
        figures.tick_mean_ms,
        figures.tick_p50_ms,
        figures.tick_p99_ms,
        figures.kept_rows,
        figures.prefill_events,
        figures.prefill_seconds
    )
}

/// Runs the phases, printing each one's figures as soon as it has them.
pub async fn run(options: DetectionBenchOptions) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "cordon bench detections ({cores} cores, every built-in rule, fleet {} hosts, {} events/s)",
        options.hosts * options.cycles,
        options.rate
    );
    if !options.skip_latency {
        let mut rounds = Vec::new();
        for round in 1..=options.rounds {
            let latency = super::latency::latency(&options).await?;
            let prefix = if options.rounds > 1 {
                format!("round {round} of {}: ", options.rounds)
            } else {
                String::new()
            };
            println!("{prefix}{}", super::latency::latency_line(&options, &latency));
            println!("{prefix}{}", super::rule_time::line(&latency.rule_time, 5));
            rounds.push(latency);
        }
        if rounds.len() > 1 {
            println!("{}", super::latency::median_line(&options, &rounds));
        }
    }
    if !options.skip_idle_keys {
        let figures = super::idle_keys::run(&options).await?;
        println!("{}", super::idle_keys::line(&options, &figures));
    }
    if options.skip_cost {
        return Ok(());
    }
    let short = tick_cost(&options, options.short_window).await?;
    println!("{}", cost_line(&options, &short));
    let long = tick_cost(&options, options.long_window).await?;
    println!("{}", cost_line(&options, &long));
    println!(
        "cost ratio {} / {} windows: {:.2} (target < 1.5)",
        humantime::format_duration(options.long_window),
        humantime::format_duration(options.short_window),
        long.tick_mean_ms / short.tick_mean_ms
    );
    let rss = peak_rss().map_or("unknown".to_string(), |bytes| {
        format!("{:.0} MiB", bytes as f64 / (1 << 20) as f64)
    });
    println!("peak RSS: {rss} (target < 2 GiB)");
    Ok(())
}
