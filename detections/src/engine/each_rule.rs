//! Every rule over one step: a burst of new events, or the events rules hold that
//! fell due. Rules run side by side (`fan_out.rs`) and each one's matches are handed
//! on as soon as it is done, so a slow rule delays its own alerts, not the others'.

use arrow::record_batch::RecordBatch;

use super::{Due, Engine, Processed};
use crate::clock::TimePolicy;
use crate::error::EvalError;
use crate::fan_out::{Done, Pace, Shared, evaluate_all};
use crate::held::Burst;
use crate::rule_done::{RuleDone, sort_matches, stamp_detection_delay};
use cordon_schemas::event_schema;

use super::judge::Judged;

/// What the rules are to evaluate.
#[derive(Clone, Copy)]
pub enum Step<'a> {
    /// A burst of newly stored events (the stored event schema).
    Events(&'a RecordBatch),
    /// The events rules hold (`evaluate_every`) that are due.
    Held(Due),
}

/// Where an evaluation's events came from: a burst (its batch, for the matches'
/// detection delay) or what rules held.
#[derive(Clone, Copy)]
struct Origin<'a> {
    batch: Option<&'a RecordBatch>,
    earliest_arrival: Option<i64>,
}

impl Engine {
    /// Evaluates `step`; the matches come back together, sorted (fixtures, backtests:
    /// an order that does not depend on which rule finished first).
    pub async fn evaluate(&mut self, step: Step<'_>) -> Processed {
        let mut matches = Vec::new();
        let mut processed = self
            .evaluate_each(step, |done: RuleDone<'_>| matches.extend(done.matches))
            .await;
        sort_matches(&mut matches);
        processed.matches = matches;
        processed
    }

    /// As `evaluate`, but each rule's matches go to `on_done` as soon as that rule is
    /// done (rules finish in any order). `Processed::matches` is left empty.
    pub async fn evaluate_each<F: FnMut(RuleDone<'_>)>(&mut self, step: Step<'_>, mut on_done: F) -> Processed {
        let mut processed = Processed::default();
        match step {
            Step::Events(batch) => {
                if batch.num_rows() == 0 {
                    return processed;
                }
                self.metrics.events_in.inc_by(batch.num_rows() as u64);
                let judged = self.judge(batch);
                processed.earliest_arrival = judged.arrivals.iter().copied().min();
                processed.late_events = judged.not_evaluated;
                let arrival_now = self.newest_arrival.unwrap_or(i64::MIN);
                let origin = Origin {
                    batch: Some(batch),
                    earliest_arrival: processed.earliest_arrival,
                };
                self.evaluate_rules(
                    Some(&judged),
                    Due::At(arrival_now),
                    origin,
                    &mut processed,
                    &mut on_done,
                )
                .await;
                self.forget_silent_keys(arrival_now);
            }
            Step::Held(due) => {
                if !self.rules.values().any(|rule| rule.held_ready(due)) {
                    return processed;
                }
                let origin = Origin {
                    batch: None,
                    earliest_arrival: None,
                };
                self.evaluate_rules(None, due, origin, &mut processed, &mut on_done)
                    .await;
            }
        }
        processed
    }

    /// Each rule over what it is to evaluate now: a burst's events on time for it
    /// (`fresh`), with what it held if it holds events, or only what it held.
    async fn evaluate_rules<F: FnMut(RuleDone<'_>)>(
        &mut self,
        fresh: Option<&Judged>,
        due: Due,
        origin: Origin<'_>,
        processed: &mut Processed,
        on_done: &mut F,
    ) {
        let arrival_now = self.newest_arrival.unwrap_or(i64::MIN);
        let pace = Pace {
            newest_arrival: arrival_now,
            lateness: self.policy.lateness_nanos(),
            max_event_age: TimePolicy::nanos(self.config.max_event_age),
            limits: self.config.limits,
        };
        let schema = event_schema();
        let earliest_arrival = fresh
            .and_then(|judged| judged.arrivals.iter().copied().min())
            .unwrap_or(arrival_now);
        let mut jobs = Vec::new();
        for (id, mut rule) in std::mem::take(&mut self.rules) {
            let group = &self.clocks[rule.clock];
            let burst = fresh.map(|judged| Burst {
                input: &judged.inputs[rule.clock],
                row_keys: &judged.row_keys[rule.clock],
                keys: &judged.keys[rule.clock],
                earliest_arrival,
            });
            let work = match rule.take_work(burst, due, arrival_now, &schema) {
                Ok(Some(work)) => work,
                Ok(None) => {
                    self.rules.insert(id, rule);
                    continue;
                }
                Err(error) => {
                    tracing::error!(rule = %id, %error, "cannot gather the events held for a rule: they are not evaluated by it");
                    processed.errors.push(EvalError::Output {
                        rule: id.clone(),
                        message: format!("held events the engine could not gather: {error}"),
                    });
                    self.rules.insert(id, rule);
                    continue;
                }
            };
            let shared = Shared {
                clocks: group.clocks.clone(),
                keyed: !group.columns.is_empty(),
                input: work.0,
                keys: work.1,
                sweep: rule.pace.next(arrival_now),
            };
            jobs.push((id, rule, shared));
        }
        processed.evaluated |= !jobs.is_empty();
        let mut running = evaluate_all(jobs, pace);
        while let Some(Done {
            id,
            mut rule,
            outcome,
            took,
            events,
        }) = running.next_done().await
        {
            let mut matches = rule.record(&id, &self.metrics, outcome, took, events, processed);
            let definition = rule.compiled.definition.clone();
            self.rules.insert(id, rule);
            if matches.is_empty() {
                continue;
            }
            stamp_detection_delay(&mut matches, origin.batch, arrival_now);
            sort_matches(&mut matches);
            on_done(RuleDone {
                definition: &definition,
                matches,
                earliest_arrival: origin.earliest_arrival,
            });
        }
    }
}
