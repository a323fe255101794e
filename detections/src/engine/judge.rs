//! Judging a burst's events against their keys' clocks, in arrival order: which each
//! clock group evaluates, and what data health counts of them (`clock.rs`, `health.rs`).

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;

use super::{DERIVED_TRANSPORT, Engine};
use crate::clock::Timing;
use crate::health::{Standing, Tally};
use crate::key_ids::KeyIds;
use crate::window::timestamp_nanos;
use cordon_schemas::fields::col;

impl Engine {
    /// Judges every event of `batch` against each clock group, in arrival order (ties
    /// by event time), and returns, per group, the events it evaluates.
    pub(super) fn judge(&mut self, batch: &RecordBatch) -> Judged {
        let rows = batch.num_rows();
        let schema = batch.schema();
        let time = batch.column(schema.index_of(col::TIME).expect("event schema")).clone();
        let received = schema
            .index_of(col::RECEIVED_TIME)
            .ok()
            .map(|index| batch.column(index).clone());
        let times: Vec<i64> = (0..rows)
            .map(|row| timestamp_nanos(time.as_ref(), row).unwrap_or(i64::MIN))
            .collect();
        let arrivals: Vec<i64> = (0..rows)
            .map(|row| {
                received
                    .as_ref()
                    .and_then(|column| timestamp_nanos(column.as_ref(), row))
                    .unwrap_or(times[row])
            })
            .collect();
        let mut order: Vec<usize> = (0..rows).collect();
        order.sort_by_key(|&row| (arrivals[row], times[row]));
        let lateness = self.policy.lateness_nanos();
        let mut standing: Vec<Standing> = (0..rows)
            .map(|row| Standing {
                verdict: Timing::OnTime,
                delayed: arrivals[row].saturating_sub(times[row]) > lateness,
            })
            .collect();
        // Delayed means evaluated although it came late; "by some rule", as a user-keyed
        // rule may set aside what the host-keyed ones evaluate.
        let mut evaluated_anywhere = vec![self.clocks.is_empty(); rows];
        let mut inputs = Vec::with_capacity(self.clocks.len());
        let mut keys_per_group = Vec::with_capacity(self.clocks.len());
        let mut row_keys_per_group = Vec::with_capacity(self.clocks.len());
        let policy = self.policy;
        let mut host_ids = None;
        for group in &mut self.clocks {
            let ids = match group.columns.as_slice() {
                [] => KeyIds::one("", rows),
                columns => KeyIds::of(batch, columns).unwrap_or_else(|| KeyIds::one("", rows)),
            };
            let clocks = Arc::make_mut(&mut group.clocks);
            let verdicts = clocks.observe_rows(&policy, &ids, &order, &times, &arrivals);
            let mut evaluated = vec![false; rows];
            for (row, verdict) in verdicts.into_iter().enumerate() {
                evaluated[row] = verdict.evaluated();
                evaluated_anywhere[row] |= evaluated[row];
                let worst = &mut standing[row].verdict;
                if rank(verdict) > rank(*worst) {
                    *worst = verdict;
                }
            }
            let touched: HashSet<String> = ids.keys.iter().cloned().collect();
            let (input, input_keys) = if evaluated.iter().all(|on| *on) {
                (batch.clone(), ids.clone())
            } else {
                let input =
                    filter_record_batch(batch, &BooleanArray::from(evaluated.clone())).expect("mask matches the batch");
                (input, ids.filtered(&evaluated))
            };
            if group.columns == [col::HOST_ID] {
                host_ids = Some(ids);
            }
            inputs.push(input);
            row_keys_per_group.push(input_keys);
            keys_per_group.push(Arc::new(touched));
        }
        let hosts = batch
            .column_by_name(col::HOST_ID)
            .and_then(|column| column.as_string_opt::<i32>().cloned());
        let host_ids = host_ids.or_else(|| KeyIds::of(batch, &[col::HOST_ID.to_string()]));
        // Cordon's own signals and risk carry the event time of what they are about:
        // they say nothing of a host's clock or delivery, so data health skips them.
        let transports = batch
            .column_by_name(col::TRANSPORT)
            .and_then(|column| column.as_string_opt::<i32>().cloned());
        let mut not_evaluated = 0;
        let (mut too_old, mut skewed, mut delayed) = (0u64, 0u64, 0u64);
        let mut tallies: Vec<Option<Tally>> = vec![None; host_ids.as_ref().map_or(0, |ids| ids.keys.len())];
        for row in 0..rows {
            standing[row].delayed &= evaluated_anywhere[row];
            let stood = standing[row];
            if transports
                .as_ref()
                .is_some_and(|transports| transports.is_valid(row) && transports.value(row) == DERIVED_TRANSPORT)
            {
                not_evaluated += usize::from(matches!(stood.verdict, Timing::Late | Timing::TooOld));
                continue;
            }
            match stood.verdict {
                Timing::Late | Timing::TooOld => not_evaluated += 1,
                Timing::Skewed => skewed += 1,
                Timing::OnTime => {}
            }
            too_old += u64::from(stood.verdict == Timing::TooOld);
            delayed += u64::from(stood.delayed);
            if let (Some(hosts), Some(ids)) = (&hosts, &host_ids)
                && hosts.is_valid(row)
            {
                tallies[ids.of_row[row] as usize]
                    .get_or_insert_default()
                    .add(times[row], arrivals[row], stood);
            }
        }
        if let Some(ids) = &host_ids {
            for (host, tally) in ids.keys.iter().zip(&tallies) {
                if let Some(tally) = tally {
                    self.health.absorb(host, tally);
                }
            }
        }
        if let Some(&newest) = arrivals.iter().max() {
            self.newest_arrival = Some(self.newest_arrival.map_or(newest, |known| known.max(newest)));
        }
        self.metrics.too_old_events.inc_by(too_old);
        self.metrics.skewed_events.inc_by(skewed);
        self.metrics.delayed_events.inc_by(delayed);
        if not_evaluated > 0 {
            self.late_events += not_evaluated as u64;
            self.metrics.late_events.inc_by(not_evaluated as u64);
            tracing::warn!(
                events = not_evaluated,
                too_old,
                lateness = ?self.config.lateness,
                "events behind their host's (or user's) clock by more than the lateness, or older than the maximum event age: stored, not evaluated; GET /api/v1/health/hosts names the hosts"
            );
        }
        Judged {
            inputs,
            row_keys: row_keys_per_group,
            keys: keys_per_group,
            arrivals,
            not_evaluated,
        }
    }
}

/// The worse of two verdicts, for reporting an event once across clock groups.
fn rank(verdict: Timing) -> u8 {
    match verdict {
        Timing::OnTime => 0,
        Timing::Skewed => 1,
        Timing::Late => 2,
        Timing::TooOld => 3,
    }
}

/// A batch judged: per clock group, the events it evaluates and the keys it touched.
pub(super) struct Judged {
    pub(super) inputs: Vec<RecordBatch>,
    /// Per group, the clock key of each of its input's rows.
    pub(super) row_keys: Vec<KeyIds>,
    pub(super) keys: Vec<Arc<HashSet<String>>>,
    pub(super) arrivals: Vec<i64>,
    pub(super) not_evaluated: usize,
}
