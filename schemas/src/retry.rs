//! The one retry policy: waits that double from a first delay up to a cap, half fixed
//! and half random ("equal jitter"), so callers that failed together do not retry
//! together. Used by the responder's deliveries, the Kafka dead-letter writer, the
//! alert publisher and the simulator; each keeps its own delays and attempt limits.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failed try (before jitter).
    pub initial: Duration,
    /// No wait is longer.
    pub max: Duration,
}

impl Backoff {
    pub const fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max }
    }

    /// The wait after try `attempt` (1 for the first) failed, drawing the jitter from
    /// `rng` (seeded in tests).
    pub fn delay_with(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1u32 << exponent).min(self.max);
        let half = base / 2;
        half + Duration::from_nanos(rng.random_range(0..=half.as_nanos() as u64))
    }

    /// [`Backoff::delay_with`] with the thread's random source.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, &mut rand::rng())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempt in 1..=40 {
            let base = Duration::from_secs(1u64 << (attempt - 1).min(20)).min(Duration::from_secs(60));
            for _ in 0..50 {
                let wait = backoff.delay_with(attempt, &mut rng);
                assert!(wait >= base / 2 && wait <= base, "try {attempt}: {wait:?} vs {base:?}");
            }
        }
        let spread: std::collections::BTreeSet<_> = (0..20).map(|_| backoff.delay(4)).collect();
        assert!(spread.len() > 10, "jitter spreads retries");
    }

    #[test]
    fn attempt_zero_waits_like_the_first() {
        let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        assert!(backoff.delay(0) <= Duration::from_millis(200));
    }
}
