//! The table `cordon bench peers` prints: one row per engine and mode, Cordon's ratio
//! to each peer per mode, and the alerts each raised per rule side by side.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::PeersBenchOptions;
use super::cordon_run::RunReport;
use super::measure::Measured;
use super::stream::Stream;

pub struct Row {
    pub engine: &'static str,
    pub mode: &'static str,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    pub report: RunReport,
}

impl Row {
    pub fn new(engine: &'static str, mode: &'static str, measured: &Measured, report: RunReport) -> Row {
        Row {
            engine,
            mode,
            wall_seconds: measured.wall_seconds,
            cpu_seconds: measured.cpu_seconds,
            peak_rss_bytes: measured.peak_rss_bytes,
            report,
        }
    }

    fn events_per_second(&self) -> f64 {
        self.report.events as f64 / self.wall_seconds
    }

    fn alerts(&self) -> u64 {
        self.report.alerts.values().sum()
    }
}

pub struct Versions {
    pub cordon: String,
    pub duckdb: Option<String>,
    pub rsigma: Option<String>,
}

fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |cores| cores.get());
    format!("{cores} cores, {model}")
}

fn thousands(value: f64) -> String {
    let text = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (index, digit) in text.chars().enumerate() {
        if index > 0 && (text.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn render(
    stream: &Stream,
    options: &PeersBenchOptions,
    rows: &[Row],
    versions: &Versions,
    notes: &[String],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cordon bench peers: {} events ({} hosts, {} of event time, {} attacks injected), on {}",
        thousands(stream.events as f64),
        stream.hosts,
        humantime::format_duration(stream.span),
        stream.attacks,
        machine()
    );
    let _ = writeln!(
        out,
        "versions: cordon {}, duckdb {}, rsigma {}",
        versions.cordon,
        versions.duckdb.as_deref().unwrap_or("not installed"),
        versions.rsigma.as_deref().unwrap_or("not installed")
    );
    let _ = writeln!(
        out,
        "command: cordon bench peers --events {} --span {} --hosts {} --attack-repeats {} --rounds {}",
        options.events,
        humantime::format_duration(options.span),
        options.hosts,
        options.attack_repeats,
        options.rounds
    );
    let _ = writeln!(
        out,
        "method: each engine in a process of its own, from start to exit (loading rules and reading the stream \
         included); CPU and peak RSS from the kernel (wait4); the median of {} rounds by wall time \
         (DuckDB streaming: {}).\n",
        options.rounds, options.duckdb_streaming_rounds
    );
    let scan = rows.iter().find(|row| row.mode.starts_with("scan"));
    let _ = writeln!(
        out,
        "{:<8} {:<16} {:>11} {:>8} {:>9} {:>7} {:>8}  how",
        "engine", "mode", "events/s", "CPU s", "peak RSS", "alerts", "vs scan"
    );
    for row in rows {
        let versus_scan = scan.map_or("".to_string(), |scan| {
            format!("{:.0}%", 100.0 * row.events_per_second() / scan.events_per_second())
        });
        let _ = writeln!(
            out,
            "{:<8} {:<16} {:>11} {:>8.1} {:>9} {:>7} {:>8}  {}",
            row.engine,
            row.mode,
            thousands(row.events_per_second()),
            row.cpu_seconds,
            mebibytes(row.peak_rss_bytes),
            row.alerts(),
            versus_scan,
            row.report.method
        );
    }
    let _ = writeln!(
        out,
        "\nCordon against each peer, mode by mode (above 1: Cordon has more):"
    );
    for mode in ["streaming", "backtest"] {
        let Some(cordon) = rows.iter().find(|row| row.engine == "cordon" && row.mode == mode) else {
            continue;
        };
        for peer in rows.iter().filter(|row| row.engine != "cordon") {
            // RSigma has one mode: one pass over the events, which is also its backtest.
            if peer.mode != mode && !(peer.engine == "rsigma" && mode == "backtest") {
                continue;
            }
            let _ = writeln!(
                out,
                "  {mode:<10} vs {:<7} Cordon has {:>6.2}x its events/s, uses {:>6.2}x its CPU s and {:>5.2}x its peak RSS",
                peer.engine,
                cordon.events_per_second() / peer.events_per_second(),
                cordon.cpu_seconds / peer.cpu_seconds.max(1e-9),
                cordon.peak_rss_bytes as f64 / peer.peak_rss_bytes.max(1) as f64
            );
        }
    }
    let engines: Vec<&Row> = rows.iter().filter(|row| !row.mode.starts_with("scan")).collect();
    let rules: BTreeSet<&String> = engines.iter().flat_map(|row| row.report.alerts.keys()).collect();
    let _ = writeln!(out, "\nalerts per rule (signals for building blocks):");
    let _ = write!(out, "{:<36}", "rule");
    for row in &engines {
        let _ = write!(out, " {:>17}", format!("{}/{}", row.engine, row.mode));
    }
    let _ = writeln!(out);
    for rule in rules {
        let _ = write!(out, "{rule:<36}");
        for row in &engines {
            let mut count = row
                .report
                .alerts
                .get(rule)
                .map_or("-".to_string(), |count| count.to_string());
            if row.report.partial {
                count = format!("({count})");
            }
            let _ = write!(out, " {count:>17}");
        }
        let _ = writeln!(out);
    }
    if engines.iter().any(|row| row.report.partial) {
        let _ = writeln!(
            out,
            "(n): of a run stopped at its time budget, so of part of the stream only."
        );
    }
    for note in notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
