//! Files a compaction replaced stay on disk while a reader may still read them.
//!
//! Each snapshot of the live store holds a [`ReadPin`] stamped with the current epoch.
//! A compaction's replaced partition is retired at an epoch and its inputs are deleted
//! only once no pin from that epoch or before is alive: a hunt that listed the inputs
//! reads them to the end, and a snapshot taken after the retirement does not list them
//! (the partition's pending intent hides them, see `compaction::replaced_inputs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct State {
    epoch: u64,
    /// Live pins per epoch.
    live: BTreeMap<u64, usize>,
    /// Partitions whose replaced inputs wait for the pins of their epoch and before.
    retired: Vec<(u64, PathBuf)>,
}

/// Called with a partition folder whose replaced inputs may now be deleted.
pub type Finish = Arc<dyn Fn(&std::path::Path) + Send + Sync>;

pub struct ReaderPins {
    state: Mutex<State>,
    finish: Finish,
}

impl std::fmt::Debug for ReaderPins {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ReaderPins").finish_non_exhaustive()
    }
}

/// Held by a reader for as long as it reads the files of its snapshot.
#[derive(Debug)]
pub struct ReadPin {
    epoch: u64,
    pins: Arc<ReaderPins>,
}

impl ReaderPins {
    pub fn new(finish: Finish) -> Arc<ReaderPins> {
        Arc::new(ReaderPins {
            state: Mutex::new(State::default()),
            finish,
        })
    }

    /// A pin for a snapshot about to list the files.
    pub fn pin(self: &Arc<Self>) -> Arc<ReadPin> {
        let mut state = self.state.lock().expect("reader pins lock");
        let epoch = state.epoch;
        *state.live.entry(epoch).or_default() += 1;
        Arc::new(ReadPin {
            epoch,
            pins: self.clone(),
        })
    }

    /// A partition whose compaction output is in place: its inputs go once the readers
    /// that may have listed them are done (at once when there are none).
    pub fn retire(&self, partition: PathBuf) {
        let ready = {
            let mut state = self.state.lock().expect("reader pins lock");
            let epoch = state.epoch;
            state.epoch += 1;
            state.retired.push((epoch, partition));
            take_ready(&mut state)
        };
        self.finish_all(ready);
    }

    /// Partitions still waiting for readers.
    pub fn waiting(&self) -> usize {
        self.state.lock().expect("reader pins lock").retired.len()
    }

    fn release(&self, epoch: u64) {
        let ready = {
            let mut state = self.state.lock().expect("reader pins lock");
            if let Some(count) = state.live.get_mut(&epoch) {
                *count -= 1;
                if *count == 0 {
                    state.live.remove(&epoch);
                }
            }
            take_ready(&mut state)
        };
        self.finish_all(ready);
    }

    fn finish_all(&self, ready: Vec<PathBuf>) {
        for partition in ready {
            (self.finish)(&partition);
        }
    }
}

/// The retired partitions no live pin can still be reading.
fn take_ready(state: &mut State) -> Vec<PathBuf> {
    let oldest_live = state.live.keys().next().copied();
    let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.retired)
        .into_iter()
        .partition(|(epoch, _)| oldest_live.is_none_or(|oldest| oldest > *epoch));
    state.retired = waiting;
    ready.into_iter().map(|(_, partition)| partition).collect()
}

impl Drop for ReadPin {
    fn drop(&mut self) {
        self.pins.release(self.epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording() -> (Arc<ReaderPins>, Arc<Mutex<Vec<PathBuf>>>) {
        let finished = Arc::new(Mutex::new(Vec::new()));
        let sink = finished.clone();
        let pins = ReaderPins::new(Arc::new(move |partition: &std::path::Path| {
            sink.lock().unwrap().push(partition.to_path_buf())
        }));
        (pins, finished)
    }

    #[test]
    fn inputs_wait_for_the_readers_before_them_only() {
        let (pins, finished) = recording();
        pins.retire("p0".into());
        assert_eq!(*finished.lock().unwrap(), [PathBuf::from("p0")], "no reader: at once");

        let early = pins.pin();
        pins.retire("p1".into());
        let late = pins.pin();
        assert_eq!(pins.waiting(), 1, "a reader from before holds p1");
        drop(early);
        assert_eq!(finished.lock().unwrap().last().unwrap(), &PathBuf::from("p1"));
        assert_eq!(pins.waiting(), 0, "the later reader never listed p1's inputs");
        drop(late);
    }

    #[test]
    fn clones_of_one_pin_hold_until_the_last() {
        let (pins, finished) = recording();
        let pin = pins.pin();
        let clone = pin.clone();
        pins.retire("p".into());
        drop(pin);
        assert!(finished.lock().unwrap().is_empty());
        drop(clone);
        assert_eq!(finished.lock().unwrap().len(), 1);
    }
}
