//! The idle-keys phase of `cordon bench detections`: what a large fleet of hosts that
//! were heard from and then fell silent costs the engine. Each key keeps a clock, a
//! data-health entry and whatever rows its rules still hold for it: a silent host's
//! clock does not move, so its rows wait for it (a laptop may come back with buffered
//! events) until the maximum event age. The figures: resident memory per idle key,
//! and the per-tick cost of a live stream before and after the idle keys arrive.

use std::time::{Duration, Instant};

use cordon_detections::{DetectionMetrics, Engine, EngineConfig};

use super::detections::{Background, DetectionBenchOptions, default_detections, percentile, process_status};

/// Hosts per replay cycle of the idle fleet, and the events each sends before it falls
/// silent (about 20: a few flows, reads, token refreshes and process starts).
const IDLE_HOSTS_PER_CYCLE: usize = 1000;
const IDLE_EVENTS_PER_HOST: usize = 20;
/// Ticks of live traffic timed before and after the idle keys arrive.
const TICKS: usize = 50;
/// Ticks of live traffic between the idle keys' arrival and the measurement: three
/// sweep rounds (10 s of event time each at 200 ms a tick), so that partitions silent
/// for a whole round have been packed, as on a server that has run on past them.
const SETTLE_TICKS: usize = 150;
/// How long freed memory stays committed before mimalloc returns it (allocator.rs),
/// plus a margin: resident memory is read after this much wall time of live traffic.
/// (mimalloc purges as it works: read after a sleep, resident memory still held what
/// the last burst of work had freed.)
const PURGE_WAIT: Duration = Duration::from_secs(11);

/// How long a stretch of the live stream runs.
#[derive(Clone, Copy)]
enum Run {
    /// This many ticks, back to back.
    Ticks(usize),
    /// For this much wall time, a tick's event time per tick of wall time: so the same
    /// events arrive while memory settles, however fast the engine is.
    RealTime(Duration),
}

pub(crate) struct IdleKeyFigures {
    pub idle_hosts: usize,
    pub clocks: usize,
    pub kept_rows_added: usize,
    pub partitions_added: usize,
    pub rss_before: u64,
    /// The process's peak resident memory (VmHWM) by the end of the phase.
    pub peak_rss: u64,
    pub rss_added: u64,
    /// Resident memory of the whole bench process once the idle keys are in.
    pub rss_after: u64,
    pub tick_before_p50_ms: f64,
    pub tick_before_p99_ms: f64,
    pub tick_after_p50_ms: f64,
    pub tick_after_p99_ms: f64,
    pub load_seconds: f64,
}

fn kept_rows(engine: &Engine) -> (usize, usize) {
    let statuses = engine.statuses();
    (
        statuses.values().map(|status| status.kept_rows).sum(),
        statuses.values().map(|status| status.kept_partitions).sum(),
    )
}

fn rss() -> u64 {
    process_status("VmRSS:").unwrap_or_default()
}

pub(crate) async fn run(options: &DetectionBenchOptions) -> anyhow::Result<IdleKeyFigures> {
    let detections = default_detections();
    let config = EngineConfig {
        window_override: Some(options.window),
        ..detections.engine_config()
    };
    let reference = cordon_detections::reference::load_dir(&detections.reference_dir)?;
    let mut engine = Engine::new(config, reference, DetectionMetrics::default());
    let errors = engine.load_dir(&detections.rules_dir).await?;
    anyhow::ensure!(errors.is_empty(), "rules do not load: {errors:?}");
    let second = 1_000_000_000i64;
    let start = 1_800_000_000 * second;
    let tick = options.tick.as_nanos() as i64;
    let rows = (options.rate as f64 * options.tick.as_secs_f64()).round() as usize;
    let mut live = Background::new(options)?;
    let mut at = start;

    let mut ticks = async |engine: &mut Engine, at: &mut i64, run: Run| -> anyhow::Result<(f64, f64)> {
        let mut costs = Vec::new();
        let began = Instant::now();
        while match run {
            Run::Ticks(count) => costs.len() < count,
            Run::RealTime(span) => began.elapsed() < span,
        } {
            let batch = live.take(rows, *at, tick, None)?;
            *at += tick;
            let started = Instant::now();
            let processed = engine.process(&batch).await;
            costs.push(started.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(processed.errors.is_empty(), "{:?}", processed.errors);
            if let Run::RealTime(_) = run {
                let (tick, elapsed) = (options.tick.as_nanos().max(1), began.elapsed().as_nanos());
                tokio::time::sleep(Duration::from_nanos((tick - elapsed % tick) as u64)).await;
            }
        }
        costs.sort_by(f64::total_cmp);
        Ok((percentile(&costs, 0.5), percentile(&costs, 0.99)))
    };
    let (tick_before_p50_ms, tick_before_p99_ms) = ticks(&mut engine, &mut at, Run::Ticks(TICKS)).await?;
    let (clocks_before, health_before) = engine.tracked_keys();
    let kept_before = kept_rows(&engine);
    ticks(&mut engine, &mut at, Run::RealTime(PURGE_WAIT)).await?;
    let rss_before = rss();

    // The idle fleet: each cycle is IDLE_HOSTS_PER_CYCLE new hosts sending their
    // burst within one second of event time, then never again.
    let cycles = options.idle_hosts.div_ceil(IDLE_HOSTS_PER_CYCLE);
    let mut idle = Background::of(
        IDLE_HOSTS_PER_CYCLE,
        IDLE_HOSTS_PER_CYCLE * IDLE_EVENTS_PER_HOST / 4,
        cycles,
        "idle",
    )?;
    let progress = indicatif::ProgressBar::new(cycles as u64).with_style(
        indicatif::ProgressStyle::with_template("  idle hosts: {bar:30} {pos}/{len} thousand ({eta} left)")
            .expect("valid template"),
    );
    let started = Instant::now();
    for _ in 0..cycles {
        let batch = idle.take(idle.cycle_rows(), at, second, None)?;
        let processed = engine.process(&batch).await;
        anyhow::ensure!(processed.errors.is_empty(), "{:?}", processed.errors);
        progress.inc(1);
    }
    progress.finish_and_clear();
    let load_seconds = started.elapsed().as_secs_f64();
    // The live stream goes on past the idle bursts; its own clocks move, theirs do not.
    at += second;
    ticks(&mut engine, &mut at, Run::Ticks(SETTLE_TICKS)).await?;
    let (tick_after_p50_ms, tick_after_p99_ms) = ticks(&mut engine, &mut at, Run::Ticks(TICKS)).await?;
    let (clocks, health_hosts) = engine.tracked_keys();
    let kept_after = kept_rows(&engine);
    ticks(&mut engine, &mut at, Run::RealTime(PURGE_WAIT)).await?;
    let rss_after = rss();
    Ok(IdleKeyFigures {
        idle_hosts: health_hosts.saturating_sub(health_before),
        clocks: clocks.saturating_sub(clocks_before),
        kept_rows_added: kept_after.0.saturating_sub(kept_before.0),
        partitions_added: kept_after.1.saturating_sub(kept_before.1),
        rss_before,
        peak_rss: process_status("VmHWM:").unwrap_or_default(),
        rss_added: rss_after.saturating_sub(rss_before),
        rss_after,
        tick_before_p50_ms,
        tick_before_p99_ms,
        tick_after_p50_ms,
        tick_after_p99_ms,
        load_seconds,
    })
}

pub(crate) fn line(options: &DetectionBenchOptions, figures: &IdleKeyFigures) -> String {
    let per_key = figures.rss_added as f64 / figures.idle_hosts.max(1) as f64;
    format!(
        "idle keys: {} hosts sent {} events each, then fell silent (loaded in {:.1} s): {} clocks, {} kept rows and {} partitions added ({:.1} rows a host); resident memory {:.0} -> {:.0} MiB (target < 1 GiB; peak {:.0} MiB while they arrived), +{:.0} MiB, {:.0} bytes per idle host; per-tick cost of the live stream ({} events a tick) p50 {:.2} -> {:.2} ms, p99 {:.2} -> {:.2} ms",
        figures.idle_hosts,
        IDLE_EVENTS_PER_HOST,
        figures.load_seconds,
        figures.clocks,
        figures.kept_rows_added,
        figures.partitions_added,
        figures.kept_rows_added as f64 / figures.idle_hosts.max(1) as f64,
        figures.rss_before as f64 / (1 << 20) as f64,
        figures.rss_after as f64 / (1 << 20) as f64,
        figures.peak_rss as f64 / (1 << 20) as f64,
        figures.rss_added as f64 / (1 << 20) as f64,
        per_key,
        (options.rate as f64 * options.tick.as_secs_f64()).round(),
        figures.tick_before_p50_ms,
        figures.tick_after_p50_ms,
        figures.tick_before_p99_ms,
        figures.tick_after_p99_ms,
    )
}
