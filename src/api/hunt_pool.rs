//! Where hunts run: apart from ingest and the API, on a small runtime of their own with
//! large stacks, a few at a time, and stopped for real when the time limit passes or
//! the caller goes away. A runaway hunt can then only slow other hunts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

use super::config::HuntConfig;

/// Planning and displaying deep expressions recurses: `guard::MAX_NESTING` levels of
/// `1+1+...` need 2-4 MiB in a debug build; four times that, for other shapes.
const STACK_BYTES: usize = 16 << 20;

/// Why a hunt gave no rows.
#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    #[error("{running} hunts are running, the most at once; retry in a few seconds")]
    Busy { running: usize },
    #[error("the query ran past {} s and was stopped: narrow it (a time range, fewer columns, a LIMIT)", .0.as_secs())]
    TimedOut(Duration),
    #[error("the hunt failed inside: {0}")]
    Crashed(String),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Default)]
pub struct HuntMetrics {
    running: Gauge,
    finished: Family<OutcomeLabel, Counter>,
}

impl HuntMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cordon_hunts_running",
            "Hunts, timelines and evidence queries running now",
            self.running.clone(),
        );
        registry.register(
            "cordon_hunts",
            "Hunts by outcome: ok, error (refused or failed), timeout, busy (refused: too many at once), cancelled (the caller left)",
            self.finished.clone(),
        );
    }

    fn count(&self, outcome: &'static str) {
        self.finished.get_or_create(&OutcomeLabel { outcome }).inc();
    }
}

/// The runtime, shut down without blocking when the last handle goes (which may be on
/// an async thread, where dropping a runtime would panic).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

#[derive(Clone)]
pub struct HuntPool {
    runtime: Arc<OwnRuntime>,
    slots: Arc<Semaphore>,
    config: HuntConfig,
    metrics: HuntMetrics,
}

/// Counts a hunt as cancelled and stops it if the caller's future is dropped first.
struct StopOnDrop {
    handle: tokio::task::AbortHandle,
    metrics: HuntMetrics,
    armed: bool,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.handle.abort();
            self.metrics.count("cancelled");
        }
    }
}

/// Keeps the running gauge true however the hunt task ends (finished or aborted).
struct Running {
    gauge: Gauge,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl HuntPool {
    pub fn start(config: HuntConfig, metrics: HuntMetrics) -> std::io::Result<HuntPool> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .max_blocking_threads(config.threads.max(1))
            .thread_stack_size(STACK_BYTES)
            .thread_name("cordon-hunt")
            .enable_all()
            .build()?;
        Ok(HuntPool {
            runtime: Arc::new(OwnRuntime(Some(runtime))),
            slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
            metrics,
        })
    }

    pub fn time_limit(&self) -> Duration {
        self.config.time_limit
    }

    /// Runs `work` on the hunt runtime once a slot is free (waiting up to
    /// `queue_wait`), stopping it at the time limit. `Ok(Err(_))` is the hunt's own
    /// error (a refusal, a planning error), counted as `error`.
    pub async fn run<T, E, F>(&self, work: F) -> Result<Result<T, E>, HuntError>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let permit = match tokio::time::timeout(self.config.queue_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                self.metrics.count("busy");
                return Err(HuntError::Busy {
                    running: self.config.concurrency,
                });
            }
        };
        self.metrics.running.inc();
        let running = Running {
            gauge: self.metrics.running.clone(),
            _permit: permit,
        };
        let runtime = self
            .runtime
            .0
            .as_ref()
            .expect("the hunt runtime lives while the pool does");
        let mut task = runtime.spawn(async move {
            let _running = running;
            work.await
        });
        let mut guard = StopOnDrop {
            handle: task.abort_handle(),
            metrics: self.metrics.clone(),
            armed: true,
        };
        let outcome = tokio::time::timeout(self.config.time_limit, &mut task).await;
        guard.armed = false;
        match outcome {
            Err(_) => {
                task.abort();
                self.metrics.count("timeout");
                Err(HuntError::TimedOut(self.config.time_limit))
            }
            Ok(Err(join)) => {
                self.metrics.count("error");
                Err(HuntError::Crashed(join.to_string()))
            }
            Ok(Ok(result)) => {
                self.metrics.count(if result.is_ok() { "ok" } else { "error" });
                Ok(result)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn pool(concurrency: usize, time_limit: Duration) -> HuntPool {
        let config = HuntConfig {
            concurrency,
            time_limit,
            queue_wait: Duration::from_millis(50),
            ..HuntConfig::default()
        };
        HuntPool::start(config, HuntMetrics::default()).unwrap()
    }

    /// A hunt that spins until told to stop, yielding as DataFusion's streams do.
    async fn spin(stopped: Arc<AtomicBool>) -> Result<(), ()> {
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let _flag = Flag(stopped);
        loop {
            tokio::task::yield_now().await;
        }
    }

    async fn until(what: &str, done: impl Fn() -> bool) {
        for _ in 0..200 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what}");
    }

    #[tokio::test]
    async fn a_hunt_past_its_time_limit_is_stopped_and_frees_its_slot() {
        let pool = pool(1, Duration::from_millis(100));
        let stopped = Arc::new(AtomicBool::new(false));
        let outcome = pool.run(spin(stopped.clone())).await;
        assert!(matches!(outcome, Err(HuntError::TimedOut(_))), "{outcome:?}");
        until("the timed-out hunt to stop", || stopped.load(Ordering::SeqCst)).await;
        until("its slot to be free", || pool.metrics.running.get() == 0).await;
        assert_eq!(pool.run(async { Ok::<_, ()>(7) }).await.unwrap(), Ok(7));
    }

    #[tokio::test]
    async fn a_caller_that_leaves_stops_its_hunt() {
        let pool = pool(1, Duration::from_secs(60));
        let stopped = Arc::new(AtomicBool::new(false));
        let left = tokio::time::timeout(Duration::from_millis(100), pool.run(spin(stopped.clone()))).await;
        assert!(left.is_err(), "the caller gave up first");
        until("the abandoned hunt to stop", || stopped.load(Ordering::SeqCst)).await;
        let cancelled = pool
            .metrics
            .finished
            .get_or_create(&OutcomeLabel { outcome: "cancelled" })
            .get();
        assert_eq!(cancelled, 1);
    }

    #[tokio::test]
    async fn more_hunts_than_slots_are_refused_as_busy() {
        let pool = pool(1, Duration::from_secs(60));
        let stopped = Arc::new(AtomicBool::new(false));
        let first = tokio::spawn({
            let pool = pool.clone();
            let stopped = stopped.clone();
            async move { pool.run(spin(stopped)).await }
        });
        until("the first hunt to start", || pool.metrics.running.get() == 1).await;
        let second = pool.run(async { Ok::<_, ()>(1) }).await;
        assert!(matches!(second, Err(HuntError::Busy { running: 1 })), "{second:?}");
        first.abort();
        until("the first hunt to stop", || stopped.load(Ordering::SeqCst)).await;
    }

    #[tokio::test]
    async fn a_panicking_hunt_is_an_error_not_a_crash() {
        let pool = pool(1, Duration::from_secs(5));
        let outcome = pool
            .run(async { if true { panic!("boom") } else { Ok::<(), ()>(()) } })
            .await;
        assert!(matches!(outcome, Err(HuntError::Crashed(_))), "{outcome:?}");
        assert_eq!(pool.run(async { Ok::<_, ()>(2) }).await.unwrap(), Ok(2));
    }
}
