//! `cordon rules check|test|backtest`: the detection engineer's loop.

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use cordon_detections::alerts::{Alert, AlertFilter, AlertStore, Folded, RuleMeta};
use cordon_detections::fixtures;
use cordon_detections::reference::{self, ReferenceTable};
use cordon_detections::service::DetectionConfig;
use cordon_detections::{DetectionMetrics, Engine};
use futures::StreamExt;
use std::collections::BTreeMap;

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
            Ok(Some(compiled)) => match unknown_actions(&compiled.definition.settings.response) {
                Some(problem) => {
                    failed += 1;
                    println!(
                        "FAIL {}: {problem}",
                        dir.join(cordon_detections::rule::SETTINGS_FILE).display()
                    );
                }
                None => println!("ok   {id}"),
            },
            Ok(None) => println!("off  {id} (disabled)"),
            Err(error) => {
                failed += 1;
                println!("FAIL {error}");
            }
        }
    }
    Ok(failed)
}

/// A playbook step naming an action the responder does not know.
fn unknown_actions(steps: &[cordon_detections::settings::ResponseStep]) -> Option<String> {
    steps
        .iter()
        .find(|step| cordon_responder::actions::find(&step.action).is_none())
        .map(|step| format!("[[response]] {}", cordon_responder::actions::unknown(&step.action)))
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
    let context = crate::query::session(&config.storage, 1 << 30).await?;
    let range = format!("time >= to_timestamp_nanos({from_ns}) AND time < to_timestamp_nanos({to_ns})");
    let total = crate::query::run(&context, &format!("SELECT count(*) FROM events WHERE {range}")).await?;
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
        let processed = engine.process(&batch).await;
        for error in &processed.errors {
            progress.suspend(|| eprintln!("rule error: {error}"));
        }
        for found in processed.matches {
            if let Some(definition) = engine.definition(&found.rule_id)
                && let Folded::Created(_) | Folded::Updated(_) =
                    store.fold(&found, &RuleMeta::from(&definition.settings))?
            {
                progress.set_message(found.rule_id.clone());
            }
        }
        progress.inc(batch.num_rows() as u64);
    }
    progress.finish_and_clear();
    Ok(store.list(&AlertFilter {
        limit: 100_000,
        ..AlertFilter::default()
    })?)
}
