//! `cordon rules check|test|backtest`: the detection engineer's loop.

use anyhow::Context;
use cordon_detections::alerts::{Alert, AlertFilter, AlertStore};
use cordon_detections::fixtures;
use cordon_detections::reference::{self, ReferenceTable};
use cordon_detections::service::DetectionConfig;
use cordon_detections::{DetectionMetrics, Engine};
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clap::Subcommand;

use super::ServerArgs;
use super::alerts::{ListFormat, print_alerts};

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Plan every rule against the event schema; errors name file, line and column.
    Check {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Run every rule's fixtures (tests/*.jsonl against tests/*.expected.json).
    Test {
        #[command(flatten)]
        server: ServerArgs,
        /// Write the expected files from this run (review the diff before committing).
        #[arg(long)]
        bless: bool,
        /// Only this rule.
        rule: Option<String>,
        /// Also write the results as JUnit XML to this file, for CI systems.
        #[arg(long)]
        junit: Option<std::path::PathBuf>,
    },
    /// What a reviewer would say: no fixtures or quiet case, unused params, an
    /// input.sql that keeps every event, no technique ids, a window under the lateness.
    Lint {
        #[command(flatten)]
        server: ServerArgs,
        /// Only this rule.
        rule: Option<String>,
        /// Fail (exit 1) when there is any warning.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// ATT&CK and ATLAS techniques covered by the enabled rules.
    Coverage {
        #[command(flatten)]
        server: ServerArgs,
        /// Also write an ATT&CK Navigator layer (JSON) to this file.
        #[arg(long)]
        navigator: Option<std::path::PathBuf>,
        /// Also write the ATLAS matrix's Navigator layer to this file.
        #[arg(long)]
        atlas_navigator: Option<std::path::PathBuf>,
    },
    /// Run the rules over stored events and list the alerts they would have raised.
    Backtest {
        #[command(flatten)]
        server: ServerArgs,
        /// Event time to start from (RFC 3339).
        #[arg(long)]
        from: DateTime<Utc>,
        /// Event time to stop at (RFC 3339); default now.
        #[arg(long)]
        to: Option<DateTime<Utc>>,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
        /// Compare with the alerts the server raised over the same time (its alert
        /// store): what the rules as they are now would add, and what they would no
        /// longer raise. Try a changed rule before it goes live.
        #[arg(long)]
        diff: bool,
    },
    /// Convert Sigma detection and correlation rules into rule folders, with fixtures
    /// built from each rule's own values; what cannot be converted is listed with why.
    ImportSigma(super::sigma_import::ImportSigmaArgs),
}

/// Runs a `cordon rules` command; fails when a rule or a fixture does.
pub async fn run(command: RulesCommand) -> anyhow::Result<()> {
    match command {
        RulesCommand::Check { server } => {
            let failed = check(&server.load_unchecked()?.detections).await?;
            if failed > 0 {
                anyhow::bail!("{failed} rule(s) do not load");
            }
        }
        RulesCommand::Test {
            server,
            bless,
            rule,
            junit,
        } => {
            let failed = test(
                &server.load_unchecked()?.detections,
                rule.as_deref(),
                bless,
                junit.as_deref(),
            )
            .await?;
            if failed > 0 {
                anyhow::bail!("{failed} fixture case(s) failed");
            }
        }
        RulesCommand::Backtest {
            server,
            from,
            to,
            rule,
            format,
            diff,
        } => {
            let config = server.load()?;
            let to = to.unwrap_or_else(Utc::now);
            let alerts = backtest(&config, from, to, rule.as_deref()).await?;
            if diff {
                let raised = super::backtest_diff::stored_alerts(&config, from, to, rule.as_deref())?;
                let diff = super::backtest_diff::diff(&raised, &alerts);
                super::backtest_diff::print(&diff, format)?;
            } else {
                print_alerts(&alerts, format)?;
            }
        }
        RulesCommand::Lint {
            server,
            rule,
            deny_warnings,
        } => {
            let config = server.load_unchecked()?.detections;
            let warnings =
                cordon_detections::lint::lint_all(&config.rules_dir, config.engine_config().lateness, rule.as_deref())?;
            for warning in &warnings {
                println!("{warning}");
            }
            println!("{} warning(s)", warnings.len());
            if deny_warnings && !warnings.is_empty() {
                anyhow::bail!("{} lint warning(s)", warnings.len());
            }
        }
        RulesCommand::Coverage {
            server,
            navigator,
            atlas_navigator,
        } => {
            let config = server.load_unchecked()?.detections;
            let coverage = cordon_detections::coverage::coverage(&config.rules_dir)?;
            print!("{}", coverage.table());
            for (path, atlas) in [(navigator, false), (atlas_navigator, true)] {
                if let Some(path) = path {
                    let layer = serde_json::to_string_pretty(&coverage.navigator_layer(atlas))?;
                    std::fs::write(&path, layer).with_context(|| format!("cannot write {}", path.display()))?;
                    println!("wrote the Navigator layer {}", path.display());
                }
            }
        }
        RulesCommand::ImportSigma(args) => super::sigma_import::run(args).await?,
    }
    Ok(())
}

fn load_reference(config: &DetectionConfig) -> anyhow::Result<BTreeMap<String, ReferenceTable>> {
    Ok(reference::load_dir(&config.reference_dir)?)
}

/// Plans every rule; returns how many failed (each printed with file, line, column).
pub async fn check(config: &DetectionConfig) -> anyhow::Result<usize> {
    let reference = match load_reference(config) {
        Ok(reference) => reference,
        Err(error) => {
            println!("FAIL reference tables: {error:#}");
            return Ok(1);
        }
    };
    let engine = Engine::new(config.engine_config(), reference, DetectionMetrics::default());
    let mut failed = 0;
    let dirs = cordon_detections::rule::rule_dirs(&config.rules_dir)
        .with_context(|| format!("no rules folder at {}", config.rules_dir.display()))?;
    for dir in dirs {
        let id = dir
            .file_name()
            .map(|name| name.to_string_lossy().to_string())
            .unwrap_or_default();
        match engine.compile(&dir).await {
            // An unknown playbook action fails the load itself (ActionKind).
            Ok(Some(_)) => println!("ok   {id}"),
            Ok(None) => println!("off  {id} (disabled)"),
            Err(error) => {
                failed += 1;
                println!("FAIL {error}");
            }
        }
    }
    Ok(failed)
}

/// Runs the fixtures; returns how many cases failed. `junit` also writes them as JUnit XML.
pub async fn test(
    config: &DetectionConfig,
    only: Option<&str>,
    bless: bool,
    junit: Option<&std::path::Path>,
) -> anyhow::Result<usize> {
    let reference = load_reference(config)?;
    let started = std::time::Instant::now();
    let results = fixtures::run_all(&config.rules_dir, &reference, &config.engine_config(), only, bless).await?;
    if let Some(path) = junit {
        std::fs::write(path, super::junit::report(&results, started.elapsed()))
            .with_context(|| format!("cannot write the JUnit report {}", path.display()))?;
    }
    let mut failed = 0;
    for result in &results {
        match (&result.failure, result.blessed) {
            (None, true) => println!("bless {}/{}", result.rule, result.case),
            (None, false) => println!("ok    {}/{}", result.rule, result.case),
            (Some(failure), _) => {
                failed += 1;
                println!(
                    "FAIL  {}/{} ({})\n      {failure}",
                    result.rule,
                    result.case,
                    result.file.display()
                );
            }
        }
    }
    println!(
        "{} cases, {} passed, {failed} failed",
        results.len(),
        results.len() - failed
    );
    Ok(failed)
}

/// Runs the rules over stored events between `from` and `to` (event time), in the
/// order they arrived, and returns the alerts the live server would have raised. Nothing is written to the server's
/// alert store.
pub async fn backtest(
    config: &crate::Config,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    only: Option<&str>,
) -> anyhow::Result<Vec<Alert>> {
    let detections = &config.detections;
    let mut engine = Engine::new(
        detections.engine_config(),
        load_reference(detections)?,
        DetectionMetrics::default(),
    );
    for dir in cordon_detections::rule::rule_dirs(&detections.rules_dir)? {
        let id = dir.file_name().map(|name| name.to_string_lossy().to_string());
        if only.is_some_and(|only| Some(only) != id.as_deref()) {
            continue;
        }
        if let Some(compiled) = engine.compile(&dir).await? {
            engine.install(compiled);
        }
    }
    if engine.rule_ids().is_empty() {
        anyhow::bail!("no rule to run (check --rule and {})", detections.rules_dir.display());
    }
    let (from_ns, to_ns) = (
        from.timestamp_nanos_opt().unwrap_or(i64::MIN),
        to.timestamp_nanos_opt().unwrap_or(i64::MAX),
    );
    let session = crate::query::session(&config.storage, 1 << 30).await?;
    let context = &session.context;
    let range = format!("time >= to_timestamp_nanos({from_ns}) AND time < to_timestamp_nanos({to_ns})");
    let total = crate::query::run(context, &format!("SELECT count(*) FROM events WHERE {range}")).await?;
    let total = total
        .first()
        .and_then(|batch| {
            batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .map(|counts| counts.value(0))
        })
        .unwrap_or(0) as u64;
    let progress = indicatif::ProgressBar::new(total).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, {eta} left)")
            .expect("valid template"),
    );
    let store = AlertStore::in_memory();
    let stream = context
        // In arrival order, as the live server met them: each event is judged against
        // its key's clock as it stood when the event arrived, so late and buffered
        // events come out as they did live (event-time order would evaluate events
        // live had set aside, and miss nothing live saw).
        .sql(&format!(
            "SELECT * FROM events WHERE {range} ORDER BY received_time, time"
        ))
        .await?
        .execute_stream()
        .await?;
    let mut bursts = crate::query::bursts(stream, detections.burst_max_events);
    while let Some(batch) = bursts.recv().await {
        let batch = batch?;
        // One evaluation per burst, as the server evaluates what queued up under load.
        let burst = cordon_detections::process::process_and_fold(&mut engine, &store, &batch).await;
        for error in &burst.errors {
            progress.suspend(|| eprintln!("rule error: {error}"));
        }
        if let Some((rule, error)) = burst.store_errors.into_iter().next() {
            anyhow::bail!("cannot store an alert of {rule}: {error}");
        }
        if let Some((_, definition)) = burst.raised.last() {
            progress.set_message(definition.id.clone());
        }
        progress.inc(batch.num_rows() as u64);
    }
    // What rules hold for later (`evaluate_every`) is evaluated once the range is read.
    let held =
        cordon_detections::process::evaluate_held_and_fold(&mut engine, &store, cordon_detections::engine::Due::All)
            .await;
    for error in &held.errors {
        progress.suspend(|| eprintln!("rule error: {error}"));
    }
    if let Some((rule, error)) = held.store_errors.into_iter().next() {
        anyhow::bail!("cannot store an alert of {rule}: {error}");
    }
    progress.finish_and_clear();
    Ok(store.list(&AlertFilter {
        limit: 100_000,
        ..AlertFilter::default()
    })?)
}
