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
/// How long freed memory stays committed before mimalloc returns it (allocator.rs),
/// plus a margin: resident memory is read after it.
const PURGE_WAIT: Duration = Duration::from_secs(11);

pub(crate) struct IdleKeyFigures {
    pub idle_hosts: usize,
    pub clocks: usize,
    pub kept_rows_added: usize,
    pub rss_added: u64,
    pub tick_before_p50_ms: f64,
    pub tick_before_p99_ms: f64,
    pub tick_after_p50_ms: f64,
    pub tick_after_p99_ms: f64,
    pub load_seconds: f64,
}

fn kept_rows(engine: &Engine) -> usize {
    engine.statuses().values().map(|status| status.kept_rows).sum()
}

/// Resident memory now (VmRSS), once freed memory has had time to be returned.
async fn settled_rss() -> u64 {
    tokio::time::sleep(PURGE_WAIT).await;
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

    let mut ticks = async |engine: &mut Engine, at: &mut i64| -> anyhow::Result<(f64, f64)> {
        let mut costs = Vec::with_capacity(TICKS);
        for _ in 0..TICKS {
            let batch = live.take(rows, *at, tick, None)?;
            *at += tick;
            let started = Instant::now();
            let processed = engine.process(&batch).await;
            costs.push(started.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(processed.errors.is_empty(), "{:?}", processed.errors);
        }
        costs.sort_by(f64::total_cmp);
        Ok((percentile(&costs, 0.5), percentile(&costs, 0.99)))
    };
    let (tick_before_p50_ms, tick_before_p99_ms) = ticks(&mut engine, &mut at).await?;
    let (clocks_before, health_before) = engine.tracked_keys();
    let kept_before = kept_rows(&engine);
    let rss_before = settled_rss().await;

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
    let (tick_after_p50_ms, tick_after_p99_ms) = ticks(&mut engine, &mut at).await?;
    let (clocks, health_hosts) = engine.tracked_keys();
    let rss_after = settled_rss().await;
    Ok(IdleKeyFigures {
        idle_hosts: health_hosts.saturating_sub(health_before),
        clocks: clocks.saturating_sub(clocks_before),
        kept_rows_added: kept_rows(&engine).saturating_sub(kept_before),
        rss_added: rss_after.saturating_sub(rss_before),
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
        "idle keys: {} hosts sent {} events each, then fell silent (loaded in {:.1} s): {} clocks and {} kept rows added ({:.1} rows a host); resident memory +{:.0} MiB, {:.0} bytes per idle host; per-tick cost of the live stream ({} events a tick) p50 {:.2} -> {:.2} ms, p99 {:.2} -> {:.2} ms",
        figures.idle_hosts,
        IDLE_EVENTS_PER_HOST,
        figures.load_seconds,
        figures.clocks,
        figures.kept_rows_added,
        figures.kept_rows_added as f64 / figures.idle_hosts.max(1) as f64,
        figures.rss_added as f64 / (1 << 20) as f64,
        per_key,
        (options.rate as f64 * options.tick.as_secs_f64()).round(),
        figures.tick_before_p50_ms,
        figures.tick_after_p50_ms,
        figures.tick_before_p99_ms,
        figures.tick_after_p99_ms,
    )
}
