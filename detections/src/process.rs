//! One burst of events through the rules and into the alert store: the step the
//! running service, the rule fixtures and backtests share, so what a fixture or a
//! backtest shows is what the server does.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use crate::alerts::{AlertStore, Folded, RuleMeta};
use crate::engine::{Due, Engine, Processed, Step};
use crate::error::{AlertStoreError, EvalError};
use crate::matches::Match;
use crate::rule::RuleDefinition;
use crate::rule_done::RuleDone;

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
    pub signals: Vec<(Match, Arc<RuleDefinition>)>,
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

/// Evaluates `step`, folding each rule's matches into `alerts` as soon as that rule
/// is done and handing what they raised to `raise` then (the running service: a slow
/// rule delays its own alerts, not the other rules'). The returned burst has the rest:
/// errors, whether anything ran, the match count.
pub async fn evaluate_and_raise(
    engine: &mut Engine,
    alerts: &AlertStore,
    step: Step<'_>,
    mut raise: impl FnMut(Burst),
) -> Burst {
    let mut matches = 0;
    let processed = engine
        .evaluate_each(step, |done| {
            matches += done.matches.len();
            raise(fold_rule(alerts, done));
        })
        .await;
    Burst {
        matches,
        ..summary(processed)
    }
}

/// Evaluates `batch` and folds every match into `alerts`, all at the end, in the order
/// they completed (fixtures and backtests: the same alerts, in an order that does not
/// depend on which rule finished first).
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

fn fold(engine: &Engine, alerts: &AlertStore, mut processed: Processed) -> Burst {
    let found = std::mem::take(&mut processed.matches);
    let mut burst = Burst {
        matches: found.len(),
        ..summary(processed)
    };
    for found in found {
        // A rule removed between its evaluation and now raises nothing more.
        let Some(definition) = engine.definition(&found.rule_id) else {
            continue;
        };
        fold_one(alerts, found, definition, &mut burst);
    }
    burst
}

/// One rule's matches folded as it is done.
fn fold_rule(alerts: &AlertStore, done: RuleDone<'_>) -> Burst {
    let mut burst = Burst {
        matches: done.matches.len(),
        earliest_arrival: done.earliest_arrival,
        evaluated: true,
        ..Burst::default()
    };
    for found in done.matches {
        fold_one(alerts, found, done.definition.clone(), &mut burst);
    }
    burst
}

fn fold_one(alerts: &AlertStore, found: Match, definition: Arc<RuleDefinition>, burst: &mut Burst) {
    if !definition.settings.alert {
        burst.signals.push((found, definition));
        return;
    }
    match alerts.fold(&found, &RuleMeta::from(&definition.settings)) {
        Ok(Folded::Unchanged) => {}
        Ok(folded) => burst.raised.push((folded, definition)),
        Err(error) => burst.store_errors.push((found.rule_id.clone(), error)),
    }
}

/// A burst's figures besides its matches.
fn summary(processed: Processed) -> Burst {
    Burst {
        evaluated: processed.evaluated,
        errors: processed.errors,
        earliest_arrival: processed.earliest_arrival,
        ..Burst::default()
    }
}
