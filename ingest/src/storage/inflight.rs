//! Which events are stored or on their way: the dedup index plus the events whose
//! batch is queued for the write-ahead log but not yet durable. A redelivery of an event
//! still on its way waits for the original's outcome instead of being answered "already
//! stored" at once: if the original then fails (a full disk, a crash), the retry stores
//! the event itself, and nothing is acknowledged that is not durable.

use std::collections::HashMap;

use arrow::array::BooleanArray;
use tokio::sync::watch;

use super::dedup::DedupIndex;

/// The outcome of one append: `None` while on its way, then whether it became durable.
pub type Outcome = watch::Receiver<Option<bool>>;

/// What to do with a batch's events.
pub enum Admission {
    /// Some are on their way in another append: wait for these, then ask again.
    Wait(Vec<Outcome>),
    /// `keep` marks the rows to store (the rest are stored already); they are now on
    /// their way until `settle`.
    Admitted {
        keep: BooleanArray,
        fresh_keys: Vec<u128>,
        outcome: watch::Sender<Option<bool>>,
    },
}

pub struct Seen {
    pub index: DedupIndex,
    on_their_way: HashMap<u128, Outcome>,
}

impl Seen {
    pub fn new(index: DedupIndex) -> Seen {
        Seen {
            index,
            on_their_way: HashMap::new(),
        }
    }

    pub fn admit(&mut self, keys: &[u128]) -> Admission {
        let mut waits: Vec<Outcome> = Vec::new();
        for key in keys {
            if let Some(outcome) = self.on_their_way.get(key)
                && !waits.iter().any(|known| known.same_channel(outcome))
            {
                waits.push(outcome.clone());
            }
        }
        if !waits.is_empty() {
            return Admission::Wait(waits);
        }
        let (outcome, receiver) = watch::channel(None);
        let mut fresh_keys = Vec::with_capacity(keys.len());
        let keep: BooleanArray = keys
            .iter()
            .map(|key| {
                let fresh = self.index.insert(*key);
                if fresh {
                    fresh_keys.push(*key);
                    self.on_their_way.insert(*key, receiver.clone());
                }
                Some(fresh)
            })
            .collect();
        Admission::Admitted {
            keep,
            fresh_keys,
            outcome,
        }
    }

    /// The append of `keys` ended: durable, or not (then they are forgotten, so a
    /// retry stores them).
    pub fn settle(&mut self, keys: &[u128], durable: bool) {
        if !durable {
            self.index.remove(keys);
        }
        for key in keys {
            self.on_their_way.remove(key);
        }
    }
}

/// Waits until every one of `outcomes` is known.
pub async fn wait_for_all(outcomes: Vec<Outcome>) {
    for mut outcome in outcomes {
        // A closed channel is settled too: its sender sends before it goes.
        let _ = outcome.wait_for(Option::is_some).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn seen() -> Seen {
        Seen::new(DedupIndex::new(Duration::from_secs(60), 1000, Default::default()))
    }

    fn admitted(admission: Admission) -> (Vec<bool>, Vec<u128>, watch::Sender<Option<bool>>) {
        match admission {
            Admission::Admitted {
                keep,
                fresh_keys,
                outcome,
            } => (keep.iter().map(Option::unwrap).collect(), fresh_keys, outcome),
            Admission::Wait(_) => panic!("expected admission"),
        }
    }

    #[test]
    fn a_redelivery_of_an_event_on_its_way_waits_for_it() {
        let mut seen = seen();
        let (keep, fresh, _outcome) = admitted(seen.admit(&[1, 2]));
        assert_eq!(keep, vec![true, true]);
        assert!(matches!(seen.admit(&[2, 3]), Admission::Wait(waits) if waits.len() == 1));
        seen.settle(&fresh, true);
        let (keep, _, _) = admitted(seen.admit(&[2, 3]));
        assert_eq!(keep, vec![false, true], "2 is stored now; 3 is new");
    }

    #[test]
    fn a_failed_original_leaves_its_events_to_the_retry() {
        let mut seen = seen();
        let (_, fresh, _outcome) = admitted(seen.admit(&[1, 2]));
        seen.settle(&fresh, false);
        let (keep, _, _) = admitted(seen.admit(&[1, 2]));
        assert_eq!(keep, vec![true, true]);
    }

    #[tokio::test]
    async fn waiters_wake_when_the_outcome_is_sent() {
        let mut seen = seen();
        let (_, fresh, outcome) = admitted(seen.admit(&[1]));
        let Admission::Wait(waits) = seen.admit(&[1]) else {
            panic!("expected a wait")
        };
        let waiter = tokio::spawn(wait_for_all(waits));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "still on its way");
        seen.settle(&fresh, true);
        outcome.send(Some(true)).unwrap();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
