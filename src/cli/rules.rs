//! `cordon rules check|test|backtest`: the detection engineer's loop.

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use cordon_detections::alerts::{Alert, AlertFilter, AlertStore};
use cordon_detections::fixtures;
use cordon_detections::reference::{self, ReferenceTable};
use cordon_detections::service::DetectionConfig;
use cordon_detections::{DetectionMetrics, Engine};
use futures::StreamExt;
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
        RulesCommand::Test { server, bless, rule } => {
            let failed = test(&server.load_unchecked()?.detections, rule.as_deref(), bless).await?;
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
        } => {
            let config = server.load()?;
            let alerts = backtest(&config, from, to.unwrap_or_else(Utc::now), rule.as_deref()).await?;
            print_alerts(&alerts, format)?;
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

/// Runs the fixtures; returns how many cases failed.
pub async fn test(config: &DetectionConfig, only: Option<&str>, bless: bool) -> anyhow::Result<usize> {
    let reference = load_reference(config)?;
    let results = fixtures::run_all(&config.rules_dir, &reference, &config.engine_config(), only, bless).await?;
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
    let mut stream = context
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
    while let Some(batch) = stream.next().await {
        let batch: RecordBatch = batch?;
        // One evaluation per batch, as the server evaluates each burst of arrivals.
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
    progress.finish_and_clear();
    Ok(store.list(&AlertFilter {
        limit: 100_000,
        ..AlertFilter::default()
    })?)
}
