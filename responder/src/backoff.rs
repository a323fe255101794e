//! When to try again: the shared backoff (`cordon_schemas::retry`), never sooner
//! than the receiver's `Retry-After`.

use std::time::Duration;

use cordon_schemas::retry::Backoff;
use rand::Rng;

use crate::config::RetryConfig;

/// The wait after try number `attempt` (1 for the first) failed in a retryable way.
/// Half of the exponential delay is fixed and half random ("equal jitter"), so a
/// fleet of actions that failed together does not retry together.
pub fn delay(retry: &RetryConfig, attempt: u32, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
    let jittered = Backoff::new(retry.initial, retry.max_delay).delay_with(attempt, rng);
    match retry_after {
        Some(asked) => jittered.max(asked.min(retry.max_retry_after)),
        None => jittered,
    }
}

/// A `Retry-After` value: delay seconds, or an HTTP date (RFC 9110) from `now`.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (date.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn retry() -> RetryConfig {
        RetryConfig {
            initial: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            horizon: Duration::from_secs(3600),
            max_attempts: Some(10),
            max_retry_after: Duration::from_secs(600),
        }
    }

    #[test]
    fn retry_after_is_a_floor_with_a_ceiling() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        assert!(delay(&retry(), 1, Some(Duration::from_secs(30)), &mut rng) >= Duration::from_secs(30));
        assert_eq!(
            delay(&retry(), 1, Some(Duration::from_secs(86_400)), &mut rng),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn reads_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-15T10:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Thu, 15 Jan 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Thu, 15 Jan 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
