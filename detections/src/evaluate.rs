//! One evaluation of one rule: its input.sql over the events on time for it, the
//! output kept by partition, match.sql over the partitions touched or falling due,
//! then the kept rows settled, compacted and swept.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use arrow::record_batch::RecordBatch;

use crate::clock::KeyClocks;
use crate::compile::{CompiledRule, Limits};
use crate::error::EvalError;
use crate::matches::{Match, matches_from, resolve_evidence};
use crate::sweep_pace::SweepPace;
use crate::window::KeptRows;

/// The watermarks of one clock group's keys.
pub(crate) struct Watermarks<'a> {
    pub clocks: &'a KeyClocks,
    /// Whether the group's clocks are keyed (false: one clock for all events).
    pub keyed: bool,
    pub newest_arrival: i64,
    pub lateness: i64,
    pub max_event_age: i64,
}

impl Watermarks<'_> {
    /// `key`'s clock minus the lateness, never behind what the maximum event age still
    /// lets in. A partition whose key has no clock (input.sql computed the key) runs on
    /// its newest row, capped at the newest arrival.
    pub fn of(&self, key: &str, partition_newest: i64) -> i64 {
        let lookup = if self.keyed { key } else { "" };
        let clock = self
            .clocks
            .newest(lookup)
            .unwrap_or_else(|| partition_newest.min(self.newest_arrival));
        let floor = self.newest_arrival.saturating_sub(self.max_event_age);
        clock.saturating_sub(self.lateness).max(floor)
    }
}

/// The rule's parts one evaluation works on.
pub(crate) struct RuleState<'a> {
    pub id: &'a str,
    pub compiled: &'a CompiledRule,
    pub kept: &'a mut KeptRows,
}

/// An evaluation that failed.
#[derive(Debug)]
pub(crate) struct Failed {
    pub error: EvalError,
    /// The kept rows are as they were before it: its events can be tried again (in
    /// parts). False once rows have fired or been evicted, and after a time limit.
    pub undone: bool,
}

impl Failed {
    fn undone(error: EvalError) -> Failed {
        let undone = !matches!(error, EvalError::Timeout { .. });
        Failed { error, undone }
    }

    fn after_settling(error: EvalError) -> Failed {
        Failed { error, undone: false }
    }
}

/// One rule over the events on time for it: None when nothing ran. Rows meet
/// match.sql before any is evicted or trimmed.
pub(crate) async fn evaluate(
    rule: RuleState<'_>,
    watermarks: &Watermarks<'_>,
    input: &RecordBatch,
    batch_keys: &HashSet<String>,
    pace: SweepPace,
    limits: Limits,
) -> Option<Result<Vec<Match>, Failed>> {
    let RuleState { id, compiled, kept } = rule;
    let may_fall_due = kept.has_due_column() && !batch_keys.is_empty();
    if input.num_rows() == 0 && !may_fall_due {
        return None;
    }
    let new_rows = if input.num_rows() > 0 {
        match compiled.input.run(id, vec![input.clone()], limits).await {
            Ok(rows) => rows,
            Err(error) => return Some(Err(Failed::undone(error))),
        }
    } else {
        Vec::new()
    };
    let watermark_of = |key: &str, newest: i64| watermarks.of(key, newest);
    // Untouched partitions expire a slice at a time, after the match: swept before
    // it, a partition this batch completes would lose rows its match needs (a chain's
    // last step, kept only to its own time, evicted by the batch's newer events).
    let sweep = |kept: &mut KeptRows| {
        let budget = (kept.rows() as f64 * pace.share).ceil() as usize;
        let _ = kept.sweep(budget.max(1), &watermark_of);
    };
    kept.begin();
    let mut evaluated: BTreeSet<String> = BTreeSet::new();
    for part in new_rows.iter().filter(|part| part.num_rows() > 0) {
        match kept.insert(part) {
            Ok(keys) => evaluated.extend(keys),
            Err(error) => {
                kept.rollback();
                return Some(Err(Failed::undone(EvalError::Output {
                    rule: id.to_string(),
                    message: format!("rows the engine could not keep: {error}"),
                })));
            }
        }
    }
    if may_fall_due {
        evaluated.extend(
            batch_keys
                .iter()
                .filter(|key| kept.has_due(key, &watermark_of))
                .cloned(),
        );
    }
    if evaluated.is_empty() {
        sweep(kept);
        return if input.num_rows() > 0 {
            Some(Ok(Vec::new()))
        } else {
            None
        };
    }
    // With an anchor, only partitions keeping one can match (`anchor.rs`); the others'
    // rows are settled and swept all the same.
    let anchored: BTreeSet<String>;
    let matched = if kept.has_anchor() {
        anchored = evaluated.iter().filter(|key| kept.armed(key)).cloned().collect();
        &anchored
    } else {
        &evaluated
    };
    let rows = match kept.rows_of(matched, &watermark_of) {
        Ok(rows) => rows,
        Err(error) => {
            kept.rollback();
            return Some(Err(Failed::undone(EvalError::Output {
                rule: id.to_string(),
                message: format!("kept rows the engine could not unpack: {error}"),
            })));
        }
    };
    let run = if matched.is_empty() {
        Ok(Vec::new())
    } else {
        compiled.matcher.run(id, rows.clone(), limits).await
    };
    let output = match run {
        Ok(output) => output,
        // The events it failed on leave again, so that they can be tried in parts
        // (and those that make it fail left out for good).
        Err(error @ EvalError::Query { .. }) => {
            kept.rollback();
            return Some(Err(Failed::undone(error)));
        }
        Err(error) => {
            // Past the time limit the rows stay (tried again, in parts, it would only
            // take longer): they fire or expire as usual.
            let _ = kept.settle(&evaluated, &watermark_of);
            sweep(kept);
            return Some(Err(Failed::after_settling(error)));
        }
    };
    let _ = kept.settle(&evaluated, &watermark_of);
    if let Err(error) = compact(id, compiled, kept, &evaluated, limits).await {
        return Some(Err(Failed::after_settling(error)));
    }
    sweep(kept);
    let _ = kept.pack_quiet(evaluated, pace.clock);
    let entity = &compiled.definition.settings.entity;
    match matches_from(id, entity, &output) {
        Ok(found) => Some(Ok(resolve_evidence(found, &rows))),
        Err(message) => Some(Err(Failed::after_settling(EvalError::Output {
            rule: id.to_string(),
            message,
        }))),
    }
}

/// Rewrites the kept rows of `keys` with the rule's compact.sql, if it has one.
async fn compact(
    id: &str,
    compiled: &CompiledRule,
    kept: &mut KeptRows,
    keys: &BTreeSet<String>,
    limits: Limits,
) -> Result<(), EvalError> {
    let Some(stage) = &compiled.compact else {
        return Ok(());
    };
    let rows = kept.stored_rows_of(keys).map_err(|error| EvalError::Output {
        rule: id.to_string(),
        message: format!("kept rows the engine could not unpack: {error}"),
    })?;
    let output = stage.run(id, rows, limits).await?;
    let columns = &compiled.definition.settings.partition_by;
    let mut by_key: BTreeMap<String, Vec<RecordBatch>> = keys.iter().map(|key| (key.clone(), Vec::new())).collect();
    for batch in output.iter().filter(|batch| batch.num_rows() > 0) {
        let row_keys = crate::clock::row_keys(batch, columns).ok_or_else(|| EvalError::Output {
            rule: id.to_string(),
            message: "compact.sql's partition columns cannot be shown as text".into(),
        })?;
        let mut rows_by_key: HashMap<&str, Vec<u32>> = HashMap::new();
        for (row, key) in row_keys.iter().enumerate() {
            rows_by_key.entry(key.as_str()).or_default().push(row as u32);
        }
        for (key, rows) in rows_by_key {
            // A row of a partition not under evaluation would be new state out of nowhere.
            let Some(rewritten) = by_key.get_mut(key) else {
                continue;
            };
            let part =
                arrow::compute::take_record_batch(batch, &arrow::array::UInt32Array::from(rows)).map_err(|error| {
                    EvalError::Output {
                        rule: id.to_string(),
                        message: error.to_string(),
                    }
                })?;
            rewritten.push(part);
        }
    }
    for (key, rows) in by_key {
        kept.replace(&key, &rows).map_err(|error| EvalError::Output {
            rule: id.to_string(),
            message: format!("compact.sql returned rows the engine cannot keep: {error}"),
        })?;
    }
    Ok(())
}
