//! The memory budget of requests in flight: every listener's request bodies, and what
//! they decompress to, are charged to one budget before they are held. A request that
//! does not fit gets back-pressure instead of the memory.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::metrics::ListenerMetrics;

/// Charged in KiB so a budget of gigabytes fits a semaphore's permits.
const UNIT: usize = 1024;

#[derive(Clone)]
pub struct MemoryBudget {
    units: Arc<Semaphore>,
    total_units: usize,
    metrics: ListenerMetrics,
}

impl MemoryBudget {
    pub fn new(bytes: usize, metrics: ListenerMetrics) -> MemoryBudget {
        let total_units = bytes.div_ceil(UNIT).min(Semaphore::MAX_PERMITS);
        MemoryBudget {
            units: Arc::new(Semaphore::new(total_units)),
            total_units,
            metrics,
        }
    }

    /// Bytes charged now.
    pub fn in_use(&self) -> usize {
        (self.total_units - self.units.available_permits()) * UNIT
    }

    /// A charge that lasts as long as one request on `listener`.
    pub fn charge(&self, listener: &'static str) -> RequestCharge {
        RequestCharge {
            held: Arc::new(Held {
                listener,
                budget: self.clone(),
                permits: Mutex::new(Vec::new()),
            }),
        }
    }

    fn show(&self) {
        self.metrics.budget_bytes.set(self.in_use() as i64);
    }
}

/// What one request holds of the budget; freed when the last clone is dropped (after
/// the response is sent).
#[derive(Clone)]
pub struct RequestCharge {
    held: Arc<Held>,
}

struct Held {
    listener: &'static str,
    budget: MemoryBudget,
    permits: Mutex<Vec<OwnedSemaphorePermit>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.permits.get_mut().expect("charge lock").clear();
        self.budget.show();
    }
}

/// The budget had no room.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request memory budget (listeners.memory_budget_bytes) is in use; retry shortly")]
pub struct OverBudget;

impl RequestCharge {
    /// Takes `bytes` more, or fails at once (and counts it): waiting would hold what is
    /// already taken.
    pub fn take(&self, bytes: usize) -> Result<(), OverBudget> {
        let budget = &self.held.budget;
        let refused = || {
            budget.metrics.limited(self.held.listener, "over_memory_budget");
            OverBudget
        };
        let units = u32::try_from(bytes.div_ceil(UNIT)).map_err(|_| refused())?;
        if units == 0 {
            return Ok(());
        }
        let permit = budget
            .units
            .clone()
            .try_acquire_many_owned(units)
            .map_err(|_| refused())?;
        self.held.permits.lock().expect("charge lock").push(permit);
        budget.show();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_refused_past_the_budget_and_freed_with_the_request() {
        let metrics = ListenerMetrics::default();
        let gauge = metrics.budget_bytes.clone();
        let budget = MemoryBudget::new(4 << 20, metrics.clone());
        let first = budget.charge("api");
        first.take(3 << 20).unwrap();
        let second = budget.charge("api");
        assert!(second.take(2 << 20).is_err());
        let refused = metrics
            .limited
            .get_or_create(&vec![("listener", "api"), ("reason", "over_memory_budget")])
            .get();
        assert_eq!(refused, 1);
        second.take(1 << 20).unwrap();
        assert_eq!(budget.in_use(), 4 << 20);
        assert_eq!(gauge.get(), 4 << 20);
        drop(first);
        assert_eq!(budget.in_use(), 1 << 20);
        drop(second);
        assert_eq!((budget.in_use(), gauge.get()), (0, 0));
    }
}
