//! One burst of events through the rules and into the alert store: the step the
//! running service, the rule fixtures and backtests share, so what a fixture or a
//! backtest shows is what the server does.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use crate::alerts::{AlertStore, Folded, RuleMeta};
use crate::engine::{Due, Engine, Processed};
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
    /// Whether any rule was evaluated (for held events: whether any was due).
    pub evaluated: bool,
}

impl Burst {
    /// Adds what another evaluation did.
    pub fn merge(&mut self, other: Burst) {
        self.raised.extend(other.raised);
        self.matches += other.matches;
        self.errors.extend(other.errors);
        self.signals.extend(other.signals);
        self.store_errors.extend(other.store_errors);
        self.earliest_arrival = match (self.earliest_arrival, other.earliest_arrival) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.evaluated |= other.evaluated;
    }
}

/// Evaluates `batch` and folds every match into `alerts`.
pub async fn process_and_fold(engine: &mut Engine, alerts: &AlertStore, batch: &RecordBatch) -> Burst {
    let processed = engine.process(batch).await;
    fold(engine, alerts, processed)
}

/// Evaluates the events rules hold that are `due` (`Engine::evaluate_held`) and folds
/// every match into `alerts`.
pub async fn evaluate_held_and_fold(engine: &mut Engine, alerts: &AlertStore, due: Due) -> Burst {
    let processed = engine.evaluate_held(due).await;
    fold(engine, alerts, processed)
}

fn fold(engine: &Engine, alerts: &AlertStore, processed: Processed) -> Burst {
    let mut burst = Burst {
        evaluated: processed.evaluated,
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
