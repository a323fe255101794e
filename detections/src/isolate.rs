//! A rule that fails on a batch is tried again on its halves, in arrival order, down
//! to single events: the events it fails on are left out (and named), the others are
//! evaluated as if they had arrived in smaller batches, so one bad event cannot hide
//! the attack beside it.

use std::collections::HashSet;

use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;

use crate::compile::Limits;
use crate::error::EvalError;
use crate::evaluate::{Failed, RuleState, Watermarks, evaluate};
use crate::matches::Match;
use crate::sweep_pace::SweepPace;
use cordon_schemas::fields::col;

/// Evaluations one batch may take once it has failed: enough to find a few bad events
/// in a large batch (each costs about two per halving).
const MAX_TRIES: usize = 64;
/// Tries after which a rule that has succeeded on no part is taken to be broken, not
/// its events: the rest of the batch is left out without more tries.
const TRIES_BEFORE_GIVING_UP: usize = 8;
/// Event ids an error names; the count says how many there were.
const IDS_NAMED: usize = 10;

/// What evaluating a batch gave: the matches of every part that ran, and the failure,
/// if any events were not evaluated.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub matches: Vec<Match>,
    pub failure: Option<Failure>,
}

/// Events a rule did not evaluate, and why.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: EvalError,
    /// The events not evaluated (all of the batch when it was not tried in parts).
    pub events: Vec<RecordBatch>,
}

/// Evaluates `input`; on a failure that left the kept rows as they were, evaluates its
/// halves in turn, and so on, leaving out the single events that fail. None: nothing ran.
/// `broken`: the last batch tried in parts failed in every part (a broken rule, not a
/// bad event), so the next one is not tried in parts unless it succeeds whole first.
pub(crate) async fn evaluate_isolating(
    rule: RuleState<'_>,
    broken: &mut bool,
    watermarks: &Watermarks<'_>,
    input: &RecordBatch,
    batch_keys: &HashSet<String>,
    sweep: SweepPace,
    limits: Limits,
) -> Option<Outcome> {
    let RuleState { id, compiled, kept } = rule;
    let whole = evaluate(
        RuleState { id, compiled, kept },
        watermarks,
        input,
        batch_keys,
        sweep,
        limits,
    )
    .await?;
    let failed = match whole {
        Ok(matches) => {
            *broken = false;
            return Some(Outcome { matches, failure: None });
        }
        Err(failed) if !failed.undone || input.num_rows() < 2 || *broken => {
            return Some(Outcome {
                matches: Vec::new(),
                failure: Some(Failure {
                    error: failed.error,
                    events: vec![input.clone()],
                }),
            });
        }
        Err(failed) => failed,
    };
    let mut outcome = Outcome::default();
    let mut left_out: Vec<RecordBatch> = Vec::new();
    let mut first_error: Option<EvalError> = None;
    let (mut tries, mut successes) = (0, 0);
    // Last in, first out: the earlier half is on top, so parts run in arrival order.
    let half = input.num_rows() / 2;
    let mut parts = vec![(half, input.num_rows() - half), (0, half)];
    while let Some((offset, length)) = parts.pop() {
        let part = input.slice(offset, length);
        let giving_up = tries >= MAX_TRIES || (tries >= TRIES_BEFORE_GIVING_UP && successes == 0);
        if giving_up {
            left_out.push(part);
            continue;
        }
        tries += 1;
        let state = RuleState { id, compiled, kept };
        match evaluate(state, watermarks, &part, batch_keys, sweep, limits).await {
            None => successes += 1,
            Some(Ok(matches)) => {
                successes += 1;
                outcome.matches.extend(matches);
            }
            Some(Err(Failed { error, undone })) if undone && length > 1 => {
                first_error.get_or_insert(error);
                let half = length / 2;
                parts.push((offset + half, length - half));
                parts.push((offset, half));
            }
            Some(Err(Failed { error, .. })) => {
                first_error.get_or_insert(error);
                left_out.push(part);
            }
        }
    }
    *broken = successes == 0;
    if left_out.is_empty() {
        // It failed whole and not in parts (a memory limit, say): nothing was left out.
        tracing::warn!(rule = %id, error = %failed.error, events = input.num_rows(), tries, "rule failed on a batch and succeeded on its parts");
        return Some(outcome);
    }
    let events: usize = left_out.iter().map(RecordBatch::num_rows).sum();
    outcome.failure = Some(Failure {
        error: EvalError::LeftOut {
            rule: id.to_string(),
            events,
            of: input.num_rows(),
            event_ids: event_ids(&left_out, IDS_NAMED),
            tries,
            source: Box::new(first_error.unwrap_or(failed.error)),
        },
        events: left_out,
    });
    Some(outcome)
}

/// The first `limit` event ids of `batches`, and "... (N in all)" past them.
pub(crate) fn event_ids(batches: &[RecordBatch], limit: usize) -> String {
    let mut ids = Vec::new();
    let mut count = 0;
    for batch in batches {
        let Some(column) = batch.column_by_name(col::EVENT_ID) else {
            continue;
        };
        let Some(strings) = column.as_string_opt::<i32>() else {
            continue;
        };
        for row in 0..strings.len() {
            count += 1;
            if ids.len() < limit && strings.is_valid(row) {
                ids.push(strings.value(row).to_string());
            }
        }
    }
    if count > ids.len() {
        format!("{}, ... ({count} in all)", ids.join(", "))
    } else {
        ids.join(", ")
    }
}
