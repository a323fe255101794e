//! One batch's evaluations, every rule at once. Rules share nothing while they run
//! (each its kept rows; the clocks only read), so each runs as a task of its own and
//! the runtime spreads them over its threads: a burst costs about its slowest rule and
//! the rest divided by the cores, rather than the sum of all (measured on 2 cores in
//! docs/performance.md). Each rule comes back as soon as it is done, so its alerts need
//! not wait for the burst's slowest rule (on one thread too: DataFusion's operators
//! yield between batches, so a quick rule's few steps run between a slow one's).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;

use crate::clock::KeyClocks;
use crate::compile::Limits;
use crate::evaluate::{RuleState, Watermarks};
use crate::isolate::{Outcome, evaluate_isolating};
use crate::live_rule::LiveRule;
use crate::sweep_pace::SweepPace;

/// What a rule's evaluation borrows from the engine, owned for the task.
pub(crate) struct Shared {
    pub clocks: Arc<KeyClocks>,
    pub keyed: bool,
    pub input: RecordBatch,
    pub keys: Arc<HashSet<String>>,
    /// This rule's sweep pace: the time since its own last evaluation.
    pub sweep: SweepPace,
}

/// The engine-wide figures every rule's evaluation reads.
#[derive(Clone, Copy)]
pub(crate) struct Pace {
    pub newest_arrival: i64,
    pub lateness: i64,
    pub max_event_age: i64,
    pub limits: Limits,
}

/// One rule's evaluation, done: the rule (its state moved back), what it found, and
/// how long it took.
pub(crate) struct Done {
    pub id: String,
    pub rule: LiveRule,
    pub outcome: Option<Outcome>,
    pub took: Duration,
    /// The events it was given.
    pub events: usize,
}

/// The evaluations of one burst, running.
pub(crate) struct Evaluations {
    running: tokio::task::JoinSet<Done>,
}

impl Evaluations {
    /// The next rule to be done, or None once all are. A rule that panics panics here,
    /// as it did when rules ran in turn.
    pub async fn next_done(&mut self) -> Option<Done> {
        match self.running.join_next().await? {
            Ok(finished) => Some(finished),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => panic!("a rule's evaluation was cancelled with the runtime: {error}"),
        }
    }
}

/// Starts every rule of `rules` over its shared inputs, in parallel.
pub(crate) fn evaluate_all(rules: Vec<(String, LiveRule, Shared)>, pace: Pace) -> Evaluations {
    let mut running = tokio::task::JoinSet::new();
    for (id, mut rule, shared) in rules {
        running.spawn(async move {
            let started = Instant::now();
            let watermarks = Watermarks {
                clocks: &shared.clocks,
                keyed: shared.keyed,
                newest_arrival: pace.newest_arrival,
                lateness: pace.lateness,
                max_event_age: pace.max_event_age,
            };
            let state = RuleState {
                id: &id,
                compiled: &rule.compiled,
                kept: &mut rule.kept,
            };
            let outcome = evaluate_isolating(
                state,
                &mut rule.broken,
                &watermarks,
                &shared.input,
                &shared.keys,
                shared.sweep,
                pace.limits,
            )
            .await;
            let took = started.elapsed();
            Done {
                id,
                rule,
                outcome,
                took,
                events: shared.input.num_rows(),
            }
        });
    }
    Evaluations { running }
}
