//! An installed rule as the engine holds it (compiled stages, kept rows, status), and
//! what one evaluation adds to its status, the metrics and the batch's results.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use cordon_schemas::fields::col;
use cordon_schemas::time::rfc3339;

use crate::compile::CompiledRule;
use crate::engine::{Due, FailedEvaluation, Processed, RuleStatus};
use crate::error::EvalError;
use crate::held::{Burst, Held, HeldColumns};
use crate::isolate::{Failure, Outcome, event_ids};
use crate::matches::Match;
use crate::metrics::{DetectionMetrics, rule_label};
use crate::sweep_pace::PaceClock;
use crate::window::{KeptRows, timestamp_nanos};

/// Failed evaluations kept per rule for the API.
const FAILURES_KEPT: usize = 20;
/// Event ids kept per failed evaluation.
const FAILED_IDS_KEPT: usize = 20;

pub(crate) struct LiveRule {
    pub compiled: CompiledRule,
    pub kept: KeptRows,
    pub status: RuleStatus,
    /// Index into `Engine::clocks`.
    pub clock: usize,
    /// Its last batch failed in every part it was tried in (see `isolate.rs`).
    pub broken: bool,
    /// Events waiting for its next evaluation (`evaluate_every`), and what of them it keeps.
    pub held: Held,
    pub held_columns: HeldColumns,
    /// How far the clocks moved between its evaluations: its sweep's pace.
    pub pace: PaceClock,
}

/// What a rule evaluates at once: events on time for it, and the keys they touched.
pub(crate) type Work = (RecordBatch, Arc<HashSet<String>>);

impl LiveRule {
    /// Its `evaluate_every`, in nanoseconds.
    fn every(&self) -> Option<i64> {
        self.compiled
            .definition
            .settings
            .evaluate_every
            .map(|every| i64::try_from(every.as_nanos()).unwrap_or(i64::MAX))
    }

    /// What the rule is to evaluate now, given a burst's events (None: no new events):
    /// the burst's, or they and those it held that are due, or nothing yet (it holds
    /// them for later).
    pub(crate) fn take_work(
        &mut self,
        burst: Option<Burst<'_>>,
        due: Due,
        arrival_now: i64,
        schema: &SchemaRef,
    ) -> Result<Option<Work>, ArrowError> {
        let every = self.every();
        // Nothing held and a burst already spanning the interval in arrival time (a
        // backtest's, a replay's): holding it would only delay it to the next one.
        let spans_interval =
            |burst: &Burst<'_>| every.is_some_and(|every| arrival_now.saturating_sub(burst.earliest_arrival) >= every);
        if self.held.is_empty() && (every.is_none() || burst.as_ref().is_some_and(spans_interval)) {
            return Ok(burst.map(|burst| (burst.input.clone(), burst.keys.clone())));
        }
        if let Some(burst) = &burst {
            self.held
                .push(burst, arrival_now, every.unwrap_or(1), &self.held_columns)?;
        }
        if !self.held_ready(due) {
            return Ok(None);
        }
        // A rule no longer holding (reloaded without `evaluate_every`) evaluates all.
        let now = match (due, every) {
            (Due::At(now), Some(_)) => Some(now),
            _ => None,
        };
        let (input, keys) = self.held.take(now, schema, &self.held_columns)?;
        Ok(Some((input, Arc::new(keys))))
    }

    /// Whether it holds events that are to be evaluated by `due`.
    pub(crate) fn held_ready(&self, due: Due) -> bool {
        !self.held.is_empty()
            && match due {
                Due::All => true,
                Due::At(now) => self.every().is_none() || self.held.due(now),
            }
    }

    /// Counts one rule's evaluation in its status and the metrics, and its error in
    /// `processed`; returns its matches.
    pub(crate) fn record(
        &mut self,
        id: &str,
        metrics: &DetectionMetrics,
        outcome: Option<Outcome>,
        took: Duration,
        events: usize,
        processed: &mut Processed,
    ) -> Vec<Match> {
        let label = rule_label(id);
        metrics.kept_rows.get_or_create(&label).set(self.kept.rows() as i64);
        let Some(Outcome { matches, failure }) = outcome else {
            return Vec::new();
        };
        // Every rule that ran over new events counts, matched or not.
        self.status.evaluations += 1;
        self.status.evaluation_seconds += took.as_secs_f64();
        self.status.last_evaluated = Some(chrono::Utc::now().to_rfc3339());
        metrics.evaluations.get_or_create(&label).inc();
        metrics
            .evaluation_seconds
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        if took > Duration::from_secs(1) {
            tracing::warn!(
                rule = %id, took = ?took, events, kept_rows = self.kept.rows(),
                "slow rule evaluation: its alerts and the next burst wait for it; see detections/README.md on keep_until and selective input.sql"
            );
        }
        self.status.matches += matches.len() as u64;
        metrics.matches.get_or_create(&label).inc_by(matches.len() as u64);
        let Some(Failure { error, events }) = failure else {
            return matches;
        };
        let timed_out = matches!(error, EvalError::Timeout { .. });
        let (from, to) = time_range(&events);
        let count: usize = events.iter().map(RecordBatch::num_rows).sum();
        self.status.errors += 1;
        self.status.timeouts += u64::from(timed_out);
        self.status.last_error = Some(error.to_string());
        self.status.failures.push(FailedEvaluation {
            at: chrono::Utc::now().to_rfc3339(),
            timed_out,
            error: error.to_string(),
            from: from.map(rfc3339),
            to: to.map(rfc3339),
            events: count,
            event_ids: event_ids(&events, FAILED_IDS_KEPT),
        });
        if self.status.failures.len() > FAILURES_KEPT {
            self.status.failures.remove(0);
        }
        metrics.evaluation_errors.get_or_create(&label).inc();
        metrics.events_not_evaluated.get_or_create(&label).inc_by(count as u64);
        tracing::error!(
            rule = %id, error = %error, events = count,
            from = from.map(rfc3339).unwrap_or_default(), to = to.map(rfc3339).unwrap_or_default(),
            "rule evaluation failed; those events were not evaluated by it (backtest them); the other rules go on"
        );
        processed.errors.push(error);
        matches
    }
}

fn time_range(batches: &[RecordBatch]) -> (Option<i64>, Option<i64>) {
    let times = batches.iter().flat_map(|batch| {
        let time = batch.column_by_name(col::TIME).cloned();
        (0..batch.num_rows()).filter_map(move |row| time.as_ref().and_then(|time| timestamp_nanos(time.as_ref(), row)))
    });
    times.fold((None, None), |(low, high), time| {
        (
            Some(low.map_or(time, |low: i64| low.min(time))),
            Some(high.map_or(time, |high: i64| high.max(time))),
        )
    })
}
