//! The bounded queue from storage to the engine. Storage hands each durable batch over
//! on the write-ahead log's thread, before it acknowledges; when the engine falls
//! behind and the queue is full, storage waits, so acknowledgements slow down instead
//! of memory growing, and the wait is counted (`cordon_detection_queue_full_seconds`).
//!
//! The queue is bounded in events (`detections.queue_events`) as well as in batches:
//! a batch's size is its sender's choice, and what the queue holds is memory that
//! every queued event keeps alive past its flush to Parquet.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

use crate::metrics::DetectionMetrics;

/// Most events the engine takes into one evaluation by default (see `take_burst`).
pub const BURST_MAX_EVENTS: usize = 65_536;

/// Events queued for the engine before storage waits, by default: four of its bursts,
/// one being evaluated and three gathering (1.3 s at 200,000 events/s). Two bursts
/// measured p99 985 ms at 200,000 events/s against 663 ms with four and 786 ms with no
/// event bound: storage waited out the engine's passing slow bursts (docs/performance.md).
pub const QUEUE_EVENTS: usize = 4 * BURST_MAX_EVENTS;

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

/// Events a queue may hold: its producer takes them before queuing, its consumer gives
/// them back once evaluated. A batch larger than the whole budget still goes through
/// when nothing else is held, so no batch waits for ever.
pub struct EventBudget {
    capacity: usize,
    state: Mutex<BudgetState>,
    freed: Condvar,
}

#[derive(Default)]
struct BudgetState {
    held: usize,
    closed: bool,
}

impl EventBudget {
    pub fn new(capacity: usize) -> Arc<EventBudget> {
        Arc::new(EventBudget {
            capacity: capacity.max(1),
            state: Mutex::default(),
            freed: Condvar::new(),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Takes `events`, waiting while they do not fit. Blocks its thread (on a runtime
    /// worker, through `block_in_place`).
    pub fn take(&self, events: usize) -> Taken {
        let wait = || {
            let mut state = self.state.lock().expect("budget lock");
            let mut taken = Taken::Now;
            while !state.closed && state.held > 0 && state.held + events > self.capacity {
                taken = Taken::AfterWaiting;
                state = self.freed.wait(state).expect("budget lock");
            }
            if state.closed {
                return Taken::Closed;
            }
            state.held += events;
            taken
        };
        match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::block_in_place(wait),
            Err(_) => wait(),
        }
    }

    fn give_back(&self, events: usize) {
        let mut state = self.state.lock().expect("budget lock");
        state.held = state.held.saturating_sub(events);
        self.freed.notify_all();
    }

    /// The consumer stopped: whoever waits, and whoever comes, is told so.
    pub fn close(&self) {
        self.state.lock().expect("budget lock").closed = true;
        self.freed.notify_all();
    }

    /// The consumer's end: gives events back, and closes the budget when dropped so the
    /// producer never waits on a consumer that stopped, however it stopped.
    pub fn consumer(self: &Arc<Self>) -> BudgetConsumer {
        BudgetConsumer(self.clone())
    }
}

/// What `EventBudget::take` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Now,
    AfterWaiting,
    /// The consumer is gone: nothing was taken.
    Closed,
}

/// See `EventBudget::consumer`.
pub struct BudgetConsumer(Arc<EventBudget>);

impl BudgetConsumer {
    pub fn give_back(&self, events: usize) {
        self.0.give_back(events);
    }
}

impl Drop for BudgetConsumer {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The engine's end of the queue: gives the budget back as it evaluates, and closes it
/// when dropped so storage never waits on an engine that stopped.
pub struct QueueReceiver {
    pub batches: mpsc::Receiver<RecordBatch>,
    budget: BudgetConsumer,
}

impl QueueReceiver {
    /// `events` were evaluated (their alerts stored): storage may queue as many again.
    pub fn evaluated(&self, events: usize) {
        self.budget.give_back(events);
    }
}

pub struct BatchQueue {
    sender: mpsc::Sender<RecordBatch>,
    budget: Arc<EventBudget>,
    metrics: DetectionMetrics,
}

impl BatchQueue {
    /// A queue of `batches` batches and `events` events (each at least 1), and the
    /// engine's end of it.
    pub fn new(batches: usize, events: usize, metrics: DetectionMetrics) -> (BatchQueue, QueueReceiver) {
        let batches = batches.max(1);
        let (sender, receiver) = mpsc::channel(batches);
        let budget = EventBudget::new(events);
        metrics.queue_capacity_batches.set(batches as i64);
        metrics.queue_capacity_events.set(budget.capacity() as i64);
        let receiver = QueueReceiver {
            batches: receiver,
            budget: budget.consumer(),
        };
        (
            BatchQueue {
                sender,
                budget,
                metrics,
            },
            receiver,
        )
    }

    /// Queues `batch`, waiting while the queue is full. The engine counts a batch down
    /// (`queued_events`, `queued_batches`) once its alerts are stored.
    pub fn submit(&self, batch: &RecordBatch) {
        let rows = batch.num_rows();
        self.metrics.queued_events.inc_by(rows as i64);
        self.metrics.queued_batches.inc();
        let waited = std::time::Instant::now();
        let full = match self.budget.take(rows) {
            Taken::Closed => return self.gone(rows),
            taken => taken == Taken::AfterWaiting,
        };
        let batch = match self.sender.try_send(batch.clone()) {
            Ok(()) => return self.waited(full, waited.elapsed()),
            Err(mpsc::error::TrySendError::Closed(_)) => return self.gone(rows),
            Err(mpsc::error::TrySendError::Full(batch)) => batch,
        };
        let sent = match tokio::runtime::Handle::try_current() {
            // On a runtime thread (a benchmark feeding directly): wait without stalling it.
            Ok(runtime) => tokio::task::block_in_place(|| runtime.block_on(self.sender.send(batch))),
            Err(_) => self.sender.blocking_send(batch),
        };
        self.waited(true, waited.elapsed());
        if sent.is_err() {
            self.gone(rows);
        }
    }

    fn waited(&self, full: bool, waited: Duration) {
        if full {
            self.metrics.queue_full_seconds.inc_by(waited.as_secs_f64());
        }
    }

    /// The engine stopped (shutdown): nothing more is evaluated; the events are stored.
    fn gone(&self, rows: usize) {
        self.metrics.queued_batches.dec();
        self.metrics.queued_events.dec_by(rows as i64);
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
        let (queue, mut receiver) = BatchQueue::new(1, QUEUE_EVENTS, DetectionMetrics::default());
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
        receiver.batches.blocking_recv().unwrap();
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

    fn rows(count: usize) -> RecordBatch {
        let column = arrow::array::Int32Array::from(vec![0; count]);
        RecordBatch::try_from_iter([("n", Arc::new(column) as arrow::array::ArrayRef)]).unwrap()
    }

    /// Submits `batch` on a thread of its own; the receiver hears when it was queued.
    fn submit_on_thread(queue: &Arc<BatchQueue>, batch: RecordBatch) -> std::sync::mpsc::Receiver<()> {
        let (done, finished) = std::sync::mpsc::channel();
        let queue = queue.clone();
        std::thread::spawn(move || {
            queue.submit(&batch);
            done.send(()).unwrap();
        });
        finished
    }

    #[test]
    fn the_queue_is_bounded_in_events_whatever_the_batches_size() {
        let (queue, mut receiver) = BatchQueue::new(1024, 100, DetectionMetrics::default());
        let queue = Arc::new(queue);
        // One batch larger than the whole budget goes through when nothing is queued.
        queue.submit(&rows(500));
        let second = submit_on_thread(&queue, rows(60));
        assert!(
            second.recv_timeout(Duration::from_millis(200)).is_err(),
            "60 more events wait while 500 are queued"
        );
        assert_eq!(receiver.batches.blocking_recv().unwrap().num_rows(), 500);
        assert!(
            second.recv_timeout(Duration::from_millis(200)).is_err(),
            "taken off the queue is not yet evaluated: the events still count"
        );
        receiver.evaluated(500);
        second.recv_timeout(Duration::from_secs(10)).unwrap();
        // 60 queued: 40 more fit, 41 do not.
        queue.submit(&rows(40));
        let third = submit_on_thread(&queue, rows(1));
        assert!(third.recv_timeout(Duration::from_millis(200)).is_err());
        assert!(queue.metrics.queue_full_seconds.get() > 0.1);
        assert_eq!(queue.metrics.queue_capacity_events.get(), 100);
        // An engine that stops lets a waiting storage go on (its events stay stored).
        drop(receiver);
        third.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            queue.metrics.queued_events.get(),
            600,
            "the event submitted to a stopped engine is not counted as queued"
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
