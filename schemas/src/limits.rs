//! What one record may be, checked at the door. A record outside a bound is rejected
//! with a reason of its own (and counted); the rest of its request is kept.

use std::time::Duration;

/// Attributes one record may carry (resource and log attributes together). OpenTelemetry
/// SDKs default to 128; past this the record is rejected, and the rest not even looked at.
pub const MAX_ATTRIBUTES: usize = 1024;
/// The largest string, bytes or structured attribute value accepted (bytes of text).
pub const MAX_VALUE_BYTES: usize = 64 << 10;

/// Attributes one request may expand to: a resource's attributes count once for each
/// of its records, since each row stores them. 2,000 resource attributes over 2,000
/// small records (55 KB) made 4 million; an 8 MiB request could make hundreds of
/// millions. A collector's 8,192 records of 128 attributes are a quarter of this.
pub const MAX_REQUEST_ATTRIBUTES: usize = 1 << 22;
/// Bytes of attribute values one request may expand to, counted the same way.
pub const MAX_REQUEST_VALUE_BYTES: usize = 128 << 20;

/// Distinct hours one request's events may fall in: each is a Parquet file at the
/// next flush (5,000 hours in one 234 KB request wrote about 2,900 files). The default
/// event-time bounds (7 days back, 10 minutes ahead) span 170, so only raised bounds
/// (back-filling) can reach it.
pub const MAX_REQUEST_HOURS: usize = 256;

const HOUR_NANOS: u64 = 3_600_000_000_000;

/// What a request's records have expanded to so far. Past either bound, the record
/// that crosses it and every later one are rejected (`request_too_large`), and the
/// later ones cost no more than reading them.
#[derive(Debug, Default, Clone)]
pub struct Expansion {
    attributes: usize,
    bytes: usize,
    hours: std::collections::HashSet<u64>,
}

impl Expansion {
    /// Counts `record` against the request's bounds.
    pub fn charge(&mut self, record: &crate::EventRecord<'_>) -> Result<(), crate::RejectReason> {
        // The hour it will be stored under (no time: received now, an hour of its own).
        let time = match record.time_unix_nano {
            0 => record.observed_time_unix_nano,
            time => time,
        };
        let hour = time / HOUR_NANOS;
        if !self.hours.contains(&hour) {
            if self.hours.len() >= MAX_REQUEST_HOURS {
                return Err(crate::RejectReason::TooManyHours {
                    limit: MAX_REQUEST_HOURS,
                });
            }
            self.hours.insert(hour);
        }
        if !self.exhausted() {
            self.attributes += record.attributes_set().min(MAX_ATTRIBUTES);
            self.bytes += record.value_bytes();
        }
        if self.exhausted() {
            return Err(crate::RejectReason::RequestTooLarge {
                attributes: MAX_REQUEST_ATTRIBUTES,
                bytes: MAX_REQUEST_VALUE_BYTES,
            });
        }
        Ok(())
    }

    /// Whether the request is past a bound: its remaining records are rejected.
    pub fn exhausted(&self) -> bool {
        self.attributes > MAX_REQUEST_ATTRIBUTES || self.bytes > MAX_REQUEST_VALUE_BYTES
    }
}

/// Bounds on one record's event time, relative to its arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    /// Oldest accepted: this far behind arrival.
    pub max_age: Duration,
    /// Newest accepted: this far ahead of arrival.
    pub max_ahead: Duration,
}

impl Default for TimeBounds {
    fn default() -> Self {
        TimeBounds {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_ahead: Duration::from_secs(10 * 60),
        }
    }
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

/// Where an event time falls against the bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfBounds {
    /// Older than `max_age` before arrival, by this many nanoseconds behind arrival.
    TooOld(i64),
    /// Further ahead of arrival than `max_ahead`, by this many nanoseconds.
    TooFarAhead(i64),
}

impl TimeBounds {
    /// Checks `time` (ns) against `arrival` (ns); checked arithmetic, so any pair of
    /// i64 times gives an answer.
    pub fn check(&self, time: i64, arrival: i64) -> Result<(), OutOfBounds> {
        let behind = i128::from(arrival) - i128::from(time);
        if behind > i128::from(nanos(self.max_age)) {
            return Err(OutOfBounds::TooOld(i64::try_from(behind).unwrap_or(i64::MAX)));
        }
        if -behind > i128::from(nanos(self.max_ahead)) {
            return Err(OutOfBounds::TooFarAhead(i64::try_from(-behind).unwrap_or(i64::MAX)));
        }
        Ok(())
    }
}

impl OutOfBounds {
    /// The rejection, naming the bound and what to do.
    pub fn reason(self, bounds: &TimeBounds) -> crate::RejectReason {
        const DAY: f64 = 86_400e9;
        match self {
            OutOfBounds::TooOld(behind) => crate::RejectReason::TimeTooOld {
                days: behind as f64 / DAY,
                limit_days: bounds.max_age.as_secs_f64() / 86_400.0,
            },
            OutOfBounds::TooFarAhead(ahead) => crate::RejectReason::TimeTooFarAhead {
                seconds: ahead / 1_000_000_000,
                limit_seconds: bounds.max_ahead.as_secs(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_may_span_a_bounded_number_of_hours() {
        let mut expansion = Expansion::default();
        let mut record = crate::EventRecord::new();
        for hour in 0..MAX_REQUEST_HOURS as u64 {
            record.time_unix_nano = hour * HOUR_NANOS + 1;
            assert_eq!(expansion.charge(&record), Ok(()));
        }
        record.time_unix_nano = 5_000 * HOUR_NANOS;
        assert_eq!(
            expansion.charge(&record).unwrap_err().label(),
            "too_many_hours",
            "a new hour past the bound"
        );
        record.time_unix_nano = 7 * HOUR_NANOS + 59;
        assert_eq!(expansion.charge(&record), Ok(()), "an hour already in the request");
    }

    const SECOND: i64 = 1_000_000_000;

    #[test]
    fn times_inside_the_bounds_pass_and_extremes_are_refused_without_overflow() {
        let bounds = TimeBounds::default();
        let now = 1_800_000_000 * SECOND;
        assert_eq!(bounds.check(now, now), Ok(()));
        assert_eq!(bounds.check(now + 600 * SECOND, now), Ok(()));
        assert_eq!(bounds.check(now - 7 * 24 * 3600 * SECOND, now), Ok(()));
        assert_eq!(
            bounds.check(now + 601 * SECOND, now),
            Err(OutOfBounds::TooFarAhead(601 * SECOND))
        );
        assert!(matches!(bounds.check(i64::MAX, now), Err(OutOfBounds::TooFarAhead(_))));
        assert!(matches!(bounds.check(i64::MIN, now), Err(OutOfBounds::TooOld(_))));
        assert!(matches!(bounds.check(0, now), Err(OutOfBounds::TooOld(_))));
        assert!(matches!(
            bounds.check(i64::MIN, i64::MAX),
            Err(OutOfBounds::TooOld(i64::MAX))
        ));
    }
}
