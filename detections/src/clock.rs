//! Event time per key. Each partition key (a host, a user) has a clock: the newest
//! event time seen for it. Lateness is judged against the key's own clock, so a laptop
//! that uploads hours of buffered events has them evaluated, while a host that is
//! merely out of order beyond the lateness bound has its stragglers set aside. Events
//! are judged one at a time in arrival order (ties in event-time order), so the verdict
//! on an event does not depend on how arrivals were batched.

use std::collections::HashMap;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::key_ids::KeyIds;

/// How an event stands against its key's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Evaluated; it moves the key's clock.
    OnTime,
    /// Evaluated, but its time is further ahead of its arrival than the allowed
    /// skew: it moves no clock.
    Skewed,
    /// Behind its key's clock by more than the lateness: stored, not evaluated.
    Late,
    /// Older than the maximum event age on arrival: stored, not evaluated.
    TooOld,
}

impl Timing {
    pub fn evaluated(self) -> bool {
        matches!(self, Timing::OnTime | Timing::Skewed)
    }
}

/// The time rules apply to events.
#[derive(Debug, Clone, Copy)]
pub struct TimePolicy {
    pub lateness: Duration,
    pub max_clock_skew: Duration,
    pub max_event_age: Duration,
}

impl TimePolicy {
    pub fn nanos(duration: Duration) -> i64 {
        i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
    }

    pub fn lateness_nanos(&self) -> i64 {
        Self::nanos(self.lateness)
    }

    /// The verdict on one event, given its key's clock (None: the key is new).
    pub fn judge(&self, event_time: i64, arrival: i64, clock: Option<i64>) -> Timing {
        if event_time < arrival.saturating_sub(Self::nanos(self.max_event_age)) {
            return Timing::TooOld;
        }
        if clock.is_some_and(|newest| event_time < newest.saturating_sub(self.lateness_nanos())) {
            return Timing::Late;
        }
        if event_time > arrival.saturating_add(Self::nanos(self.max_clock_skew)) {
            return Timing::Skewed;
        }
        Timing::OnTime
    }
}

/// Text keys of `columns` for every row of `batch`, in the form `KeptRows` uses for
/// its partitions (values joined by U+001F, null as U+2205), so a clock and a partition
/// of the same key find each other. None when a column is missing.
pub fn row_keys(batch: &RecordBatch, columns: &[String]) -> Option<Vec<String>> {
    let arrays: Vec<&dyn Array> = columns
        .iter()
        .map(|name| batch.column_by_name(name).map(|column| column.as_ref()))
        .collect::<Option<_>>()?;
    if let [single] = arrays.as_slice()
        && single.data_type() == &DataType::Utf8
    {
        let text = single.as_string::<i32>();
        return Some(
            (0..batch.num_rows())
                .map(|row| {
                    if text.is_null(row) {
                        NULL_KEY.to_string()
                    } else {
                        text.value(row).to_string()
                    }
                })
                .collect(),
        );
    }
    let options = FormatOptions::default().with_null(NULL_KEY);
    let formatters = arrays
        .iter()
        .map(|array| ArrayFormatter::try_new(*array, &options))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some(
        (0..batch.num_rows())
            .map(|row| {
                formatters
                    .iter()
                    .map(|formatter| formatter.value(row).to_string())
                    .collect::<Vec<_>>()
                    .join(KEY_SEPARATOR)
            })
            .collect(),
    )
}

pub const NULL_KEY: &str = "\u{2205}";
pub const KEY_SEPARATOR: &str = "\u{1f}";

#[derive(Debug, Clone, Copy)]
struct KeyClock {
    newest: i64,
    last_arrival: i64,
}

/// The clocks of one set of key columns (`host_id`; `user_name`; none: one clock for all).
#[derive(Debug, Default, Clone)]
pub struct KeyClocks {
    clocks: HashMap<String, KeyClock>,
}

impl KeyClocks {
    /// The newest event time of `key`, if it has one.
    pub fn newest(&self, key: &str) -> Option<i64> {
        self.clocks.get(key).map(|clock| clock.newest)
    }

    /// Judges one event and moves its key's clock when it counts: the one-at-a-time
    /// path that `observe_rows` must agree with.
    #[cfg(test)]
    pub fn observe(&mut self, policy: &TimePolicy, key: &str, event_time: i64, arrival: i64) -> Timing {
        let mut clock = self.clocks.get(key).copied();
        let verdict = step(policy, &mut clock, event_time, arrival);
        if let Some(clock) = clock {
            self.set(key, clock);
        }
        verdict
    }

    /// Judges the rows of a burst in `order` (arrival order), each against its key's
    /// clock: the verdicts of `observe` row by row, with one lookup of each key.
    pub(crate) fn observe_rows(
        &mut self,
        policy: &TimePolicy,
        ids: &KeyIds,
        order: &[usize],
        times: &[i64],
        arrivals: &[i64],
    ) -> Vec<Timing> {
        let mut clocks: Vec<Option<KeyClock>> = ids.keys.iter().map(|key| self.clocks.get(key).copied()).collect();
        let mut verdicts = vec![Timing::OnTime; ids.rows()];
        for &row in order {
            let clock = &mut clocks[ids.of_row[row] as usize];
            verdicts[row] = step(policy, clock, times[row], arrivals[row]);
        }
        for (key, clock) in ids.keys.iter().zip(clocks) {
            if let Some(clock) = clock {
                self.set(key, clock);
            }
        }
        verdicts
    }

    fn set(&mut self, key: &str, clock: KeyClock) {
        match self.clocks.get_mut(key) {
            Some(known) => *known = clock,
            None => {
                self.clocks.insert(key.to_string(), clock);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.clocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clocks.is_empty()
    }

    /// Forgets keys whose newest time is so far behind `floor` that the maximum event
    /// age already rules out anything their clock could: forgetting them changes no
    /// verdict.
    pub fn forget_before(&mut self, floor: i64) -> usize {
        let before = self.clocks.len();
        self.clocks.retain(|_, clock| clock.newest >= floor);
        before - self.clocks.len()
    }
}

/// One event against its key's clock (None: the key has none yet): the verdict, and
/// the clock moved when the event counts; an event that does not starts no clock.
fn step(policy: &TimePolicy, clock: &mut Option<KeyClock>, event_time: i64, arrival: i64) -> Timing {
    let verdict = policy.judge(event_time, arrival, clock.map(|clock| clock.newest));
    match clock {
        Some(clock) => {
            clock.last_arrival = clock.last_arrival.max(arrival);
            if verdict == Timing::OnTime {
                clock.newest = clock.newest.max(event_time);
            }
        }
        None if verdict == Timing::OnTime => {
            *clock = Some(KeyClock {
                newest: event_time,
                last_arrival: arrival,
            });
        }
        None => {}
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000_000;

    fn policy() -> TimePolicy {
        TimePolicy {
            lateness: Duration::from_secs(300),
            max_clock_skew: Duration::from_secs(60),
            max_event_age: Duration::from_secs(7 * 24 * 3600),
        }
    }

    #[test]
    fn each_key_keeps_its_own_time() {
        let mut clocks = KeyClocks::default();
        let policy = policy();
        assert_eq!(clocks.observe(&policy, "a", 60 * MIN, 60 * MIN), Timing::OnTime);
        // Host b uploads an hour of buffered events: on time against its own clock.
        assert_eq!(clocks.observe(&policy, "b", 0, 60 * MIN), Timing::OnTime);
        assert_eq!(clocks.observe(&policy, "b", 30 * MIN, 60 * MIN), Timing::OnTime);
        // Within b, a straggler more than the lateness behind b's newest is late ...
        assert_eq!(clocks.observe(&policy, "b", 24 * MIN, 60 * MIN), Timing::Late);
        // ... and one inside the bound is not.
        assert_eq!(clocks.observe(&policy, "b", 26 * MIN, 60 * MIN), Timing::OnTime);
        assert_eq!(clocks.newest("b"), Some(30 * MIN));
    }

    #[test]
    fn skewed_events_move_no_clock_and_old_ones_are_refused() {
        let mut clocks = KeyClocks::default();
        let policy = policy();
        assert_eq!(clocks.observe(&policy, "a", 10 * MIN, 10 * MIN), Timing::OnTime);
        assert_eq!(clocks.observe(&policy, "a", 100 * MIN, 10 * MIN), Timing::Skewed);
        assert_eq!(
            clocks.newest("a"),
            Some(10 * MIN),
            "a clock in the future moves nothing"
        );
        assert_eq!(clocks.observe(&policy, "a", 9 * MIN, 10 * MIN), Timing::OnTime);
        let week = 7 * 24 * 60 * MIN;
        assert_eq!(clocks.observe(&policy, "c", 0, week + MIN), Timing::TooOld);
        assert!(clocks.newest("c").is_none(), "a refused event starts no clock");
    }

    /// A burst judged at once gets the verdicts and leaves the clocks that judging its
    /// events one at a time would: keys interleaved, out of order, skewed, too old.
    #[test]
    fn a_burst_judged_per_key_is_judged_as_one_event_at_a_time() {
        use arrow::array::StringArray;
        use arrow::datatypes::{Field, Schema};
        use std::sync::Arc;

        let policy = policy();
        let keys = ["a", "b", "c", "a", "b"];
        // (key, event time, arrival) in minutes; arrivals out of order on purpose.
        let mut state = 7u64;
        let mut next = |below: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % below
        };
        let events: Vec<(&str, i64, i64)> = (0..400)
            .map(|_| {
                let key = keys[next(keys.len() as u64) as usize];
                let arrival = 20_000 + next(600) as i64;
                let time = match next(10) {
                    // Ahead of its arrival (skewed), past the maximum event age,
                    // then within or past the lateness behind its key's clock.
                    0 => arrival + 5,
                    1 => arrival - 20_000,
                    _ => arrival - next(30) as i64,
                };
                (key, time * MIN, arrival * MIN)
            })
            .collect();
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&row| (events[row].2, events[row].1));
        // "c" has a clock before the burst.
        let mut one_by_one = KeyClocks::default();
        let mut at_once = KeyClocks::default();
        for clocks in [&mut one_by_one, &mut at_once] {
            clocks.observe(&policy, "c", 19_990 * MIN, 19_990 * MIN);
        }
        let mut expected = vec![Timing::OnTime; events.len()];
        for &row in &order {
            let (key, time, arrival) = events[row];
            expected[row] = one_by_one.observe(&policy, key, time, arrival);
        }
        let schema = Arc::new(Schema::new(vec![Field::new("host_id", DataType::Utf8, false)]));
        let hosts = StringArray::from(events.iter().map(|(key, ..)| *key).collect::<Vec<_>>());
        let batch = RecordBatch::try_new(schema, vec![Arc::new(hosts)]).unwrap();
        let ids = KeyIds::of(&batch, &["host_id".to_string()]).unwrap();
        let times: Vec<i64> = events.iter().map(|event| event.1).collect();
        let arrivals: Vec<i64> = events.iter().map(|event| event.2).collect();
        let verdicts = at_once.observe_rows(&policy, &ids, &order, &times, &arrivals);
        assert_eq!(verdicts, expected);
        for timing in [Timing::Late, Timing::Skewed, Timing::TooOld] {
            assert!(verdicts.contains(&timing), "the burst has no {timing:?} event");
        }
        for key in ["a", "b", "c"] {
            assert_eq!(at_once.newest(key), one_by_one.newest(key), "{key}");
        }
        assert_eq!(at_once.len(), one_by_one.len());
    }

    #[test]
    fn forgetting_old_keys_keeps_recent_ones() {
        let mut clocks = KeyClocks::default();
        let policy = policy();
        clocks.observe(&policy, "old", 0, 0);
        clocks.observe(&policy, "new", 10 * MIN, 10 * MIN);
        assert_eq!(clocks.forget_before(5 * MIN), 1);
        assert_eq!(clocks.len(), 1);
        assert!(clocks.newest("new").is_some());
    }
}
