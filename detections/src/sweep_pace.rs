//! How far the engine's clocks moved since the last evaluation, as the kept rows'
//! housekeeping reads it: the sweep's share of each rule's rows, and the quiet clock
//! that says when a key evaluated earlier has been silent long enough to be packed.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use crate::window::PartitionKey;

/// A new partition whose key no evaluation touched for this long is packed
/// (`cold_rows.rs`). Without it, a burst of hosts heard from once (a fleet coming
/// back online) stayed as arrays until a whole sweep round (10-20 s) had passed.
pub(crate) const QUIET: Duration = Duration::from_secs(2);

/// The pace of one evaluation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SweepPace {
    /// The share of kept rows the sweep visits (0 to 1).
    pub share: f64,
    /// Nanoseconds of wall or event time, whichever moved further each evaluation,
    /// summed: it only moves forward, however far behind or ahead the events are.
    pub clock: i64,
}

/// The keys recent evaluations created partitions for, oldest first, with the evaluation and the
/// quiet clock then.
#[derive(Default)]
pub(crate) struct RecentKeys {
    evaluations: VecDeque<(i64, u64, BTreeSet<PartitionKey>)>,
}

impl RecentKeys {
    pub fn push(&mut self, clock: i64, tick: u64, keys: BTreeSet<PartitionKey>) {
        if !keys.is_empty() {
            self.evaluations.push_back((clock, tick, keys));
        }
    }

    /// Takes the evaluations at least `QUIET` before `clock`: (tick, keys).
    pub fn quiet_by(&mut self, clock: i64) -> Vec<(u64, BTreeSet<PartitionKey>)> {
        let quiet = QUIET.as_nanos() as i64;
        let mut due = Vec::new();
        while let Some((at, _, _)) = self.evaluations.front()
            && clock.saturating_sub(*at) >= quiet
        {
            let (_, tick, keys) = self.evaluations.pop_front().expect("front exists");
            due.push((tick, keys));
        }
        due
    }
}
