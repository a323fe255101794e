//! The bounded queue from storage to the engine. Storage hands each durable batch over
//! on the write-ahead log's thread, before it acknowledges; when the engine falls
//! behind and the queue is full, storage waits, so acknowledgements slow down instead
//! of memory growing, and the wait is counted (`cordon_detection_queue_full_seconds`).

use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

use crate::metrics::DetectionMetrics;

/// Most events the engine takes into one evaluation by default (see `take_burst`).
pub const BURST_MAX_EVENTS: usize = 65_536;

/// `first` and whatever else is queued behind it, until the burst holds `max_events`
/// events: the engine evaluates what arrived while it was busy in one go (fewer, larger
/// evaluations under load), bounded so that one evaluation's memory and time stay so.
pub fn take_burst<T>(
    first: T,
    receiver: &mut mpsc::Receiver<T>,
    max_events: usize,
    events: impl Fn(&T) -> usize,
) -> Vec<T> {
    let mut total = events(&first);
    let mut burst = vec![first];
    while total < max_events {
        let Ok(more) = receiver.try_recv() else { break };
        total += events(&more);
        burst.push(more);
    }
    burst
}

pub struct BatchQueue {
    sender: mpsc::Sender<RecordBatch>,
    metrics: DetectionMetrics,
}

impl BatchQueue {
    /// A queue of `capacity` batches (at least 1), and the engine's end of it.
    pub fn new(capacity: usize, metrics: DetectionMetrics) -> (BatchQueue, mpsc::Receiver<RecordBatch>) {
        let capacity = capacity.max(1);
        let (sender, receiver) = mpsc::channel(capacity);
        metrics.queue_capacity_batches.set(capacity as i64);
        (BatchQueue { sender, metrics }, receiver)
    }

    /// Queues `batch`, waiting while the queue is full. The engine counts a batch down
    /// (`queued_events`, `queued_batches`) once its alerts are stored.
    pub fn submit(&self, batch: &RecordBatch) {
        let rows = batch.num_rows() as i64;
        self.metrics.queued_events.inc_by(rows);
        self.metrics.queued_batches.inc();
        let batch = match self.sender.try_send(batch.clone()) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Closed(_)) => return self.gone(rows),
            Err(mpsc::error::TrySendError::Full(batch)) => batch,
        };
        let waited = std::time::Instant::now();
        let sent = match tokio::runtime::Handle::try_current() {
            // On a runtime thread (a benchmark feeding directly): wait without stalling it.
            Ok(runtime) => tokio::task::block_in_place(|| runtime.block_on(self.sender.send(batch))),
            Err(_) => self.sender.blocking_send(batch),
        };
        self.metrics.queue_full_seconds.inc_by(waited.elapsed().as_secs_f64());
        if sent.is_err() {
            self.gone(rows);
        }
    }

    /// The engine stopped (shutdown): nothing more is evaluated; the events are stored.
    fn gone(&self, rows: i64) {
        self.metrics.queued_batches.dec();
        self.metrics.queued_events.dec_by(rows);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn batch() -> RecordBatch {
        RecordBatch::new_empty(cordon_schemas::event_schema())
    }

    #[test]
    fn a_full_queue_makes_storage_wait_and_says_so() {
        let (queue, mut receiver) = BatchQueue::new(1, DetectionMetrics::default());
        let queue = Arc::new(queue);
        queue.submit(&batch());
        let (done, finished) = std::sync::mpsc::channel();
        let storage = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                queue.submit(&batch());
                done.send(()).unwrap();
            })
        };
        // The second batch is counted as soon as storage hands it over...
        let handed = std::time::Instant::now();
        while queue.metrics.queued_batches.get() < 2 {
            assert!(
                handed.elapsed() < Duration::from_secs(10),
                "the second batch was never handed over"
            );
            std::thread::yield_now();
        }
        // ...and storage stays waiting while the queue is full.
        assert!(
            finished.recv_timeout(Duration::from_millis(200)).is_err(),
            "the second batch waits while the queue is full"
        );
        assert_eq!(queue.metrics.queued_batches.get(), 2);
        receiver.blocking_recv().unwrap();
        finished.recv_timeout(Duration::from_secs(10)).unwrap();
        storage.join().unwrap();
        assert!(queue.metrics.queue_full_seconds.get() > 0.1);
        drop(receiver);
        queue.submit(&batch());
        assert_eq!(
            queue.metrics.queued_batches.get(),
            2,
            "a stopped engine takes nothing more"
        );
    }

    #[test]
    fn a_burst_takes_what_is_queued_up_to_its_bound() {
        let (sender, mut receiver) = mpsc::channel::<usize>(16);
        for events in [300, 300, 300, 300] {
            sender.try_send(events).unwrap();
        }
        let first = receiver.try_recv().unwrap();
        // 300 + 300 + 300 reaches 700: the fourth waits for the next burst.
        assert_eq!(
            take_burst(first, &mut receiver, 700, |events| *events),
            vec![300, 300, 300]
        );
        let first = receiver.try_recv().unwrap();
        assert_eq!(take_burst(first, &mut receiver, 700, |events| *events), vec![300]);
    }
}
