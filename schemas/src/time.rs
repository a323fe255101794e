//! Wall-clock time as every stage writes it: nanoseconds since the Unix epoch, and
//! RFC 3339 with milliseconds in UTC for people and APIs.

/// Now, in nanoseconds since the epoch (0 before 1970, which a real clock never is).
pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_in_utc() {
        assert_eq!(rfc3339(1_700_000_000_123_456_789), "2023-11-14T22:13:20.123Z");
        let now = now_nanos();
        assert!(now > 1_700_000_000_000_000_000, "{now}");
    }
}
