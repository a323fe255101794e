//! One burst of events through the rules and into the alert store: the step the
//! running service, the rule fixtures and backtests share, so what a fixture or a
//! backtest shows is what the server does.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use crate::alerts::{AlertStore, Folded, RuleMeta};
use crate::engine::Engine;
use crate::error::{AlertStoreError, EvalError};
use crate::rule::RuleDefinition;

/// What one burst did.
#[derive(Default)]
pub struct Burst {
    /// Each match that created or changed an alert, with the rule that raised it.
    pub raised: Vec<(Folded, Arc<RuleDefinition>)>,
    /// Matches the rules found (some may have changed nothing: already folded).
    pub matches: usize,
    /// Rules that failed on this burst.
    pub errors: Vec<EvalError>,
    /// Matches of rules with `alert = false`: signals, not alerts (`signals.rs`).
    pub signals: Vec<(crate::matches::Match, Arc<RuleDefinition>)>,
    /// Matches that could not be stored, by rule id.
    pub store_errors: Vec<(String, AlertStoreError)>,
    /// Earliest arrival time (ns) of the burst's events.
    pub earliest_arrival: Option<i64>,
}

/// Evaluates `batch` and folds every match into `alerts`.
pub async fn process_and_fold(engine: &mut Engine, alerts: &AlertStore, batch: &RecordBatch) -> Burst {
    let processed = engine.process(batch).await;
    let mut burst = Burst {
        matches: processed.matches.len(),
        errors: processed.errors,
        earliest_arrival: processed.earliest_arrival,
        ..Burst::default()
    };
    for found in processed.matches {
        // A rule removed between its evaluation and now raises nothing more.
        let Some(definition) = engine.definition(&found.rule_id) else {
            continue;
        };
        if !definition.settings.alert {
            burst.signals.push((found, definition));
            continue;
        }
        match alerts.fold(&found, &RuleMeta::from(&definition.settings)) {
            Ok(Folded::Unchanged) => {}
            Ok(folded) => burst.raised.push((folded, definition)),
            Err(error) => burst.store_errors.push((found.rule_id.clone(), error)),
        }
    }
    burst
}
