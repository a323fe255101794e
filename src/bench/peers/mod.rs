//! `cordon bench peers`: Cordon next to what a detection engineer would otherwise run,
//! on one event stream and the same rules. RSigma (the Rust Sigma engine) runs the
//! built-in rules written as Sigma (`bench/peers/sigma/`); DuckDB runs their SQL
//! (`duckdb_rules.rs`, `bench/peers/duckdb_peer.py`). Each engine runs in a process
//! of its own, measured by the kernel (`measure.rs`). A peer that is not installed
//! (`scripts/peers.sh` installs both) is skipped and said so.

mod cordon_run;
mod duckdb_rules;
mod measure;
mod report;
mod rsigma_run;
mod stream;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use cordon_run::Mode;
pub use cordon_run::{PeerRunOptions, RunReport, run as run_cordon};
use report::Row;

#[derive(Debug, Clone, clap::Args)]
pub struct PeersBenchOptions {
    /// Events in the stream (background plus every attack).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Event time the stream covers.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub span: Duration,
    /// Hosts sending the background.
    #[arg(long, default_value_t = 500)]
    pub hosts: usize,
    /// How many times each attack scenario is injected.
    #[arg(long, default_value_t = 2)]
    pub attack_repeats: usize,
    /// Rounds per engine and mode; the table shows the median.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Rounds of DuckDB's streaming mode (one re-run of every rule per second of event
    /// time is slow; 1 keeps the bench within minutes).
    #[arg(long, default_value_t = 1)]
    pub duckdb_streaming_rounds: usize,
    /// Wall time DuckDB's streaming mode may take; it stops there and its rate is that
    /// of the seconds it ran (0: the whole stream, hours at the default size).
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    pub duckdb_streaming_budget: Duration,
    /// Where the stream and the peers' work files go (default: a temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long, default_value = "detections/rules")]
    pub rules: PathBuf,
    #[arg(long, default_value = "detections/reference")]
    pub reference: PathBuf,
    /// The Sigma rules RSigma runs.
    #[arg(long, default_value = "bench/peers/sigma")]
    pub sigma_rules: PathBuf,
    /// Where `scripts/peers.sh` installed the peers (bin/rsigma, venv/bin/python);
    /// default: $CORDON_CACHE/peers, else ~/.cache/cordon/peers.
    #[arg(long, env = "CORDON_PEERS_DIR")]
    pub peers_dir: Option<PathBuf>,
    /// A Python with the duckdb package (default: the peers folder's, else python3).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// The rsigma program (default: the peers folder's, else on PATH).
    #[arg(long)]
    pub rsigma: Option<PathBuf>,
    /// Only these engines (cordon, duckdb, rsigma); default: every one installed.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

/// The DuckDB driver, carried in the binary so the bench runs from anywhere.
const DUCKDB_DRIVER: &str = include_str!("../../../bench/peers/duckdb_peer.py");

fn peers_dir(options: &PeersBenchOptions) -> Option<PathBuf> {
    options
        .peers_dir
        .clone()
        .or_else(|| std::env::var_os("CORDON_CACHE").map(|cache| Path::new(&cache).join("peers")))
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/cordon/peers")))
}

/// `name` from the peers folder, else from PATH.
fn find_program(options: &PeersBenchOptions, relative: &str, name: &str) -> Option<PathBuf> {
    if let Some(dir) = peers_dir(options) {
        let path = dir.join(relative);
        if path.is_file() {
            return Some(path);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

fn wanted(options: &PeersBenchOptions, engine: &str) -> bool {
    options.only.is_empty() || options.only.iter().any(|only| only == engine)
}

fn version(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// An engine's report: the JSON Cordon's and DuckDB's runners print.
fn json_report(measured: &measure::Measured) -> anyhow::Result<RunReport> {
    serde_json::from_str(measured.stdout.trim())
        .with_context(|| format!("reading an engine's report: {}", measured.stdout))
}

/// Runs `command` `rounds` times and keeps the round with the median wall time.
fn median_round(
    rounds: usize,
    mut command: impl FnMut() -> Command,
    read: impl Fn(&measure::Measured) -> anyhow::Result<RunReport>,
) -> anyhow::Result<(measure::Measured, RunReport)> {
    let mut results = Vec::new();
    for _ in 0..rounds.max(1) {
        let measured = measure::run(&mut command())?;
        let report = read(&measured)?;
        results.push((measured, report));
    }
    results.sort_by(|a, b| a.0.wall_seconds.total_cmp(&b.0.wall_seconds));
    let middle = results.len() / 2;
    Ok(results.swap_remove(middle))
}

pub async fn run(options: PeersBenchOptions) -> anyhow::Result<()> {
    let temporary;
    let dir = match &options.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => {
            temporary = tempfile::tempdir()?;
            temporary.path().to_path_buf()
        }
    };
    let lateness = crate::bench::detections::default_detections().engine_config().lateness;
    eprintln!(
        "generating {} events over {} ...",
        options.events,
        humantime::format_duration(options.span)
    );
    let stream = stream::generate(
        &dir,
        options.events,
        options.hosts,
        options.span,
        options.attack_repeats,
    )?;
    let this = std::env::current_exe()?;
    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let cordon = |mode: Mode| {
        let (this, stream, options) = (this.clone(), stream.clone(), options.clone());
        move || {
            let mut command = Command::new(&this);
            command
                .args(["bench", "peer-run", "--mode", mode.as_str(), "--input"])
                .arg(&stream.parquet)
                .arg("--rules")
                .arg(&options.rules)
                .arg("--reference")
                .arg(&options.reference);
            command
        }
    };
    eprintln!("cordon: reading the stream without rules (the baseline) ...");
    let (measured, report) = median_round(options.rounds, cordon(Mode::Scan), json_report)?;
    rows.push(Row::new("cordon", "scan (baseline)", &measured, report));
    if wanted(&options, "cordon") {
        for mode in [Mode::Streaming, Mode::Backtest] {
            eprintln!("cordon: {} ...", mode.as_str());
            let (measured, report) = median_round(options.rounds, cordon(mode), json_report)?;
            rows.push(Row::new("cordon", mode.as_str(), &measured, report));
        }
    }
    let python = options
        .python
        .clone()
        .or_else(|| find_program(&options, "venv/bin/python", "python3"));
    let duckdb_version = python
        .as_ref()
        .map(|python| version(python, &["-c", "import duckdb; print(duckdb.__version__)"]))
        .filter(|version| version != "unknown");
    match (wanted(&options, "duckdb"), python, &duckdb_version) {
        (true, Some(python), Some(_)) => {
            let skipped = duckdb_rules::write_manifest(&options.rules, lateness, &dir)?;
            notes.push(format!(
                "DuckDB does not run {} (they read the signal and risk events Cordon derives from its own alerts).",
                skipped.join(", ")
            ));
            let driver = dir.join("duckdb_peer.py");
            std::fs::write(&driver, DUCKDB_DRIVER)?;
            for (mode, label, rounds) in [
                ("streaming", "streaming", options.duckdb_streaming_rounds),
                ("batch", "backtest", options.rounds),
            ] {
                eprintln!("duckdb: {label} ...");
                let (measured, report) = median_round(
                    rounds,
                    || {
                        let mut command = Command::new(&python);
                        command
                            .arg(&driver)
                            .args(["--mode", mode, "--events"])
                            .arg(&stream.parquet)
                            .arg("--work")
                            .arg(&dir)
                            .arg("--reference")
                            .arg(&options.reference)
                            .arg("--budget-seconds")
                            .arg(options.duckdb_streaming_budget.as_secs_f64().to_string());
                        command
                    },
                    json_report,
                )?;
                rows.push(Row::new("duckdb", label, &measured, report));
            }
        }
        (true, _, _) => notes.push("DuckDB skipped: not installed (scripts/peers.sh installs it).".into()),
        _ => {}
    }
    let rsigma = options
        .rsigma
        .clone()
        .or_else(|| find_program(&options, "bin/rsigma", "rsigma"));
    let rsigma_version = rsigma.as_ref().map(|rsigma| {
        let version = version(rsigma, &["--version"]);
        version
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("rsigma ")
            .to_string()
    });
    match (wanted(&options, "rsigma"), &rsigma) {
        (true, Some(rsigma)) => {
            eprintln!("rsigma: streaming ...");
            let (measured, report) = median_round(
                options.rounds,
                || rsigma_run::command(rsigma, &options.sigma_rules, &stream.json_lines),
                |measured| rsigma_run::report(measured, stream.events, &options.rules),
            )?;
            rows.push(Row::new("rsigma", "streaming", &measured, report));
        }
        (true, None) => notes.push("RSigma skipped: not installed (scripts/peers.sh installs it).".into()),
        _ => {}
    }
    let versions = report::Versions {
        cordon: env!("CARGO_PKG_VERSION").into(),
        duckdb: duckdb_version,
        rsigma: rsigma_version,
    };
    println!("{}", report::render(&stream, &options, &rows, &versions, &notes));
    Ok(())
}
