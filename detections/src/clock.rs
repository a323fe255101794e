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

    /// Judges one event and moves its key's clock when it counts.
    pub fn observe(&mut self, policy: &TimePolicy, key: &str, event_time: i64, arrival: i64) -> Timing {
        let clock = self.clocks.get_mut(key);
        let verdict = policy.judge(event_time, arrival, clock.as_ref().map(|clock| clock.newest));
        match clock {
            Some(clock) => {
                clock.last_arrival = clock.last_arrival.max(arrival);
                if verdict == Timing::OnTime {
                    clock.newest = clock.newest.max(event_time);
                }
            }
            None if verdict == Timing::OnTime => {
                self.clocks.insert(
                    key.to_string(),
                    KeyClock {
                        newest: event_time,
                        last_arrival: arrival,
                    },
                );
            }
            None => {}
        }
        verdict
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
