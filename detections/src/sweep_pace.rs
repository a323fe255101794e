//! How far the engine's clocks moved since the last evaluation, as the kept rows'
//! housekeeping reads it: the sweep's share of each rule's rows, and the quiet clock
//! that says when a key evaluated earlier has been silent long enough to be packed.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::window::PartitionKey;

/// A new partition whose key no evaluation touched for this long is packed
/// (`cold_rows.rs`). Without it, a burst of hosts heard from once (a fleet coming
/// back online) stayed as arrays until a whole sweep round (10-20 s) had passed.
pub(crate) const QUIET: Duration = Duration::from_secs(2);

/// The incremental sweep looks at every kept row once per this much time (wall or
/// event time, whichever passes faster: a replay sweeps at the pace of its events).
/// One full sweep every 10 s rewrote all kept rows in one evaluation and held alerts up
/// for most of a second; the same work spread over the evaluations costs each a slice.
const SWEEP_ROUND: Duration = Duration::from_secs(10);

/// The pace of one evaluation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SweepPace {
    /// The share of kept rows the sweep visits (0 to 1).
    pub share: f64,
    /// Nanoseconds of wall or event time, whichever moved further each evaluation,
    /// summed: it only moves forward, however far behind or ahead the events are.
    pub clock: i64,
}

/// How far the clocks moved between the engine's evaluations.
#[derive(Default)]
pub(crate) struct PaceClock {
    /// When, and at which arrival time, the last evaluation was.
    last: Option<(Instant, i64)>,
    /// The sum of the paces' time.
    quiet: i64,
}

impl PaceClock {
    /// The pace of an evaluation at `arrival` (the newest arrival time): the share of
    /// each rule's kept rows it sweeps (the time since the last one over `SWEEP_ROUND`,
    /// at most all of them), and the quiet clock moved on by that time.
    pub fn next(&mut self, arrival: i64) -> SweepPace {
        let round = SWEEP_ROUND.as_secs_f64();
        let seconds = match self.last {
            None => round,
            Some((at, previous)) => {
                let wall = at.elapsed().as_secs_f64();
                let event = (arrival.saturating_sub(previous)).max(0) as f64 / 1e9;
                wall.max(event)
            }
        };
        self.last = Some((Instant::now(), arrival));
        // A jump of years in arrival time is as good as a day for packing.
        self.quiet = self.quiet.saturating_add((seconds.min(86_400.0) * 1e9) as i64);
        SweepPace {
            share: (seconds / round).min(1.0),
            clock: self.quiet,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_follows_event_time_when_it_runs_ahead_of_the_wall() {
        let mut clock = PaceClock::default();
        let first = clock.next(0);
        assert_eq!(first.share, 1.0, "the first evaluation sweeps everything");
        // Three seconds of events replayed in no time: the sweep and the quiet clock move
        // three seconds.
        let second = clock.next(3_000_000_000);
        assert!((0.3..0.31).contains(&second.share), "{second:?}");
        assert!(second.clock - first.clock >= 3_000_000_000, "{second:?}");
        // Arrival time going back moves nothing but the wall's share.
        let third = clock.next(0);
        assert!(third.share < 0.01 && third.clock >= second.clock, "{third:?}");
    }
}
