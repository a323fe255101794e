//! One rule's matches of one evaluation, handed on as soon as that rule is done
//! (`Engine::evaluate_each`): stamped with how late they were detected and in the order
//! they completed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;
use cordon_schemas::fields::col;

use crate::matches::Match;
use crate::rule::RuleDefinition;
use crate::window::timestamp_nanos;

/// A rule done with one evaluation, and what it matched.
pub struct RuleDone<'a> {
    pub definition: &'a Arc<RuleDefinition>,
    /// In the order they completed (`sort_matches`).
    pub matches: Vec<Match>,
    /// Earliest arrival time (ns) of the burst's events; None for held events.
    pub earliest_arrival: Option<i64>,
}

/// Stamps each match with how long after its last event it was detected: the arrival
/// of the newest-arriving evidence of this batch (for a match that fell due, the
/// batch's newest arrival) minus the match's last seen.
pub(crate) fn stamp_detection_delay(matches: &mut [Match], batch: Option<&RecordBatch>, arrival_now: i64) {
    if matches.is_empty() {
        return;
    }
    let wanted: HashSet<&str> = matches
        .iter()
        .flat_map(|found| found.evidence.iter().map(|evidence| evidence.event_id.as_str()))
        .collect();
    let mut arrival_of: HashMap<String, i64> = HashMap::new();
    let ids = batch
        .and_then(|batch| batch.column_by_name(col::EVENT_ID))
        .and_then(|column| column.as_string_opt::<i32>().cloned());
    let received = batch.and_then(|batch| batch.column_by_name(col::RECEIVED_TIME).cloned());
    if let (Some(ids), Some(received)) = (ids, received) {
        for row in 0..ids.len() {
            if ids.is_valid(row)
                && wanted.contains(ids.value(row))
                && let Some(arrival) = timestamp_nanos(received.as_ref(), row)
            {
                arrival_of.insert(ids.value(row).to_string(), arrival);
            }
        }
    }
    for found in matches.iter_mut() {
        let completed = found
            .evidence
            .iter()
            .filter_map(|evidence| arrival_of.get(&evidence.event_id).copied())
            .max()
            .unwrap_or(arrival_now);
        found.detected_after = Some(completed.saturating_sub(found.last_seen).max(0));
    }
}

/// In the order they completed: by last seen, then first seen.
pub(crate) fn sort_matches(matches: &mut [Match]) {
    matches.sort_by(|a, b| {
        (a.last_seen, a.first_seen, &a.rule_id, a.entity_key()).cmp(&(
            b.last_seen,
            b.first_seen,
            &b.rule_id,
            b.entity_key(),
        ))
    });
}
