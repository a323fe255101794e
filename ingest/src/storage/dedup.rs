//! Remembers recently stored (`host.id`, `event.id`) pairs so a redelivered event is
//! stored once.
//!
//! Keys are 128-bit hashes kept in two generations: when the current one is older than
//! half the window, or holds half the key budget, it becomes the previous one and the
//! old previous one is dropped. A key is therefore remembered for at least half the
//! window (less only when the budget is hit, which is counted) and memory is bounded by
//! the budget. Compaction removes any duplicate that arrives later within a partition.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use xxhash_rust::xxh3::Xxh3;

/// The keys are already uniform hashes: use their low bits as the table hash.
#[derive(Default)]
pub struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(*byte);
        }
    }
    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

type KeySet = HashSet<u128, BuildHasherDefault<PassThroughHasher>>;

/// The identity of an event for deduplication.
pub fn event_key(host_id: &str, event_id: &str) -> u128 {
    let mut hasher = Xxh3::new();
    hasher.update(host_id.as_bytes());
    hasher.update(&[0xff]);
    hasher.update(event_id.as_bytes());
    hasher.digest128()
}

/// The identity of every row of an event batch, in row order.
pub fn batch_keys(batch: &arrow::record_batch::RecordBatch) -> Vec<u128> {
    use arrow::array::AsArray;
    use cordon_schemas::fields::col;
    let hosts = batch
        .column_by_name(col::HOST_ID)
        .expect("host_id column")
        .as_string::<i32>();
    let ids = batch
        .column_by_name(col::EVENT_ID)
        .expect("event_id column")
        .as_string::<i32>();
    (0..batch.num_rows())
        .map(|row| event_key(hosts.value(row), ids.value(row)))
        .collect()
}

pub struct DedupIndex {
    current: KeySet,
    previous: KeySet,
    started: Instant,
    half_window: Duration,
    max_keys_per_generation: usize,
    /// Generations cut short by the key budget: the window was shorter than configured.
    early_rotations: prometheus_client::metrics::counter::Counter,
}

impl DedupIndex {
    /// `early_rotations` counts generations cut short by `max_keys`.
    pub fn new(
        window: Duration,
        max_keys: usize,
        early_rotations: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        // Sized for a busy minute up front: growing a big table rehashes every key.
        let initial = (max_keys / 2).clamp(1, 1 << 20);
        DedupIndex {
            current: KeySet::with_capacity_and_hasher(initial, Default::default()),
            previous: KeySet::default(),
            started: Instant::now(),
            half_window: window / 2,
            max_keys_per_generation: (max_keys / 2).max(1),
            early_rotations,
        }
    }

    fn rotate_if_due(&mut self) {
        let full = self.current.len() >= self.max_keys_per_generation;
        if full || self.started.elapsed() >= self.half_window {
            if full {
                self.early_rotations.inc();
            }
            self.previous = std::mem::take(&mut self.current);
            self.started = Instant::now();
        }
    }

    pub fn contains(&self, key: u128) -> bool {
        self.current.contains(&key) || self.previous.contains(&key)
    }

    /// Records a key; false if it was already known.
    pub fn insert(&mut self, key: u128) -> bool {
        if self.contains(key) {
            return false;
        }
        self.rotate_if_due();
        self.current.insert(key)
    }

    /// Forgets keys whose events did not become durable after all.
    pub fn remove(&mut self, keys: &[u128]) {
        for key in keys {
            self.current.remove(key);
            self.previous.remove(key);
        }
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_accepted_once() {
        let mut index = DedupIndex::new(Duration::from_secs(600), 100, Default::default());
        let key = event_key("wks-1", "e-1");
        assert!(index.insert(key));
        assert!(!index.insert(key));
        assert!(
            index.insert(event_key("wks-2", "e-1")),
            "same id on another host is another event"
        );
        index.remove(&[key]);
        assert!(index.insert(key));
    }

    #[test]
    fn host_and_id_boundaries_do_not_collide() {
        assert_ne!(event_key("ab", "c"), event_key("a", "bc"));
    }

    #[test]
    fn memory_stays_within_the_budget() {
        let shortened = prometheus_client::metrics::counter::Counter::default();
        let mut index = DedupIndex::new(Duration::from_secs(600), 10, shortened.clone());
        for id in 0..100 {
            index.insert(event_key("h", &id.to_string()));
        }
        assert!(index.len() <= 10, "{}", index.len());
        assert!(shortened.get() > 0);
    }
}
