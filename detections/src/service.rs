//! The detection stage as a running service: newly stored batches in (through a
//! storage listener), rules over them, matches folded into the alert store. It
//! reloads a rule folder when its files change; a broken edit keeps the last good
//! version running and is reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::alerts::{Alert, AlertStore};
use crate::compile::Limits;
use crate::engine::{Due, Engine, EngineConfig, RuleStatus, Step};
use crate::metrics::DetectionMetrics;
use crate::process::{Burst, evaluate_and_raise};
use crate::queue::{BatchQueue, take_burst};
use crate::rule::RuleDefinition;

mod raise;
mod reload;

use raise::Raiser;
use reload::fingerprint;

/// The service's outlets, borrowed field by field so the engine can be borrowed
/// mutably beside them.
macro_rules! raiser {
    ($running:expr) => {
        Raiser {
            listeners: &$running.listeners,
            signals: $running.signals.as_ref(),
            metrics: &$running.metrics,
        }
    };
}

/// The `[detections]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    /// Folder of rule folders.
    pub rules_dir: PathBuf,
    /// Folder of reference tables (CSV).
    pub reference_dir: PathBuf,
    /// Events up to this late still complete matches; later ones are counted.
    #[serde(with = "humantime_serde")]
    pub lateness: Duration,
    /// How far an event's time may run ahead of its arrival and still move its key's clock.
    #[serde(with = "humantime_serde")]
    pub max_clock_skew: Duration,
    /// Events older than this on arrival are stored and reported, not evaluated (a
    /// laptop's buffered events are evaluated up to this age).
    #[serde(with = "humantime_serde")]
    pub max_event_age: Duration,
    /// A host not heard from for this long shows as silent in the data-health view.
    #[serde(with = "humantime_serde")]
    pub silent_after: Duration,
    /// Longest one stage of one rule may run.
    #[serde(with = "humantime_serde")]
    pub eval_timeout: Duration,
    /// Memory one rule evaluation may use, in MiB.
    pub eval_memory_mib: usize,
    /// How often rule folders are checked for changes.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// Stored batches waiting for the engine before storage waits for it (and so
    /// acknowledgements slow): bounded so a slow rule cannot grow memory without end.
    pub queue_batches: usize,
    /// Stored events waiting for the engine (or in its evaluation) before storage waits
    /// for it: what the queue holds is memory kept past the Parquet flush, and a
    /// batch's size is its sender's choice, so the queue is bounded in events too.
    pub queue_events: usize,
    /// Most events one evaluation takes from the queue: under load the engine takes
    /// whatever is queued up to this many, so one burst's memory and time stay bounded.
    pub burst_max_events: usize,
    /// Threads the rules evaluate on (default: one per core but one, which ingest and
    /// storage keep: on 2 cores at 200,000 events/s an engine on both starved the
    /// Parquet writes until ingest refused events).
    pub threads: Option<usize>,
    /// How long an alert's risk lasts: it decays linearly to nothing over this period
    /// (the entity view's ranking; the entity-risk rule has its own window).
    #[serde(with = "humantime_serde")]
    pub risk_period: Duration,
    /// The alert database; default `<data_dir>/alerts.db`.
    pub alerts_db: Option<PathBuf>,
    /// Evidence events kept per alert.
    pub evidence_cap: usize,
    /// Runs every rule with this window instead of its own (benchmarks, what-if runs).
    #[serde(with = "humantime_serde", default)]
    pub window_override: Option<Duration>,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            rules_dir: PathBuf::from("detections/rules"),
            reference_dir: PathBuf::from("detections/reference"),
            lateness: Duration::from_secs(300),
            max_clock_skew: Duration::from_secs(60),
            max_event_age: Duration::from_secs(7 * 24 * 3600),
            silent_after: Duration::from_secs(15 * 60),
            eval_timeout: Duration::from_secs(10),
            eval_memory_mib: 256,
            reload_interval: Duration::from_secs(2),
            queue_batches: 1024,
            queue_events: crate::queue::QUEUE_EVENTS,
            burst_max_events: crate::queue::BURST_MAX_EVENTS,
            threads: None,
            risk_period: Duration::from_secs(7 * 24 * 3600),
            alerts_db: None,
            evidence_cap: crate::alerts::store::DEFAULT_EVIDENCE_CAP,
            window_override: None,
        }
    }
}

impl DetectionConfig {
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            lateness: self.lateness,
            max_clock_skew: self.max_clock_skew,
            max_event_age: self.max_event_age,
            limits: Limits {
                memory_bytes: self.eval_memory_mib << 20,
                timeout: self.eval_timeout,
            },
            window_override: self.window_override,
            evaluate_every_override: None,
            ignore_anchors: false,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.eval_memory_mib == 0 {
            return Err("detections.eval_memory_mib must be at least 1".into());
        }
        if self.eval_timeout.is_zero() {
            return Err("detections.eval_timeout must be longer than 0s".into());
        }
        if !self.rules_dir.is_dir() {
            return Err(format!(
                "detections.rules_dir {} is not a folder; run from the project folder or set detections.rules_dir",
                self.rules_dir.display()
            ));
        }
        Ok(())
    }
}

/// Hosts kept in the published data-health report (the API lists up to this many).
const HEALTH_HOSTS_KEPT: usize = 1000;
/// How often the data-health report is rebuilt.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// Hosts per kind on `/metrics`.
const TOP_HOSTS_ON_METRICS: usize = 10;

/// A rule's state as the API and CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub attack: Vec<String>,
    pub atlas: Vec<String>,
    pub loaded: bool,
    /// The rule's playbook as its rule.toml gives it.
    pub response: Vec<crate::settings::ResponseStep>,
    /// Why the folder's current files do not load (the last good version still runs).
    pub load_error: Option<String>,
    /// Its `evaluate_every`, if it holds its events between evaluations.
    #[serde(with = "humantime_serde")]
    pub evaluate_every: Option<Duration>,
    /// Its `anchor`: match.sql runs only over the partitions keeping such a row.
    pub anchor: Option<crate::anchor::Anchor>,
    #[serde(flatten)]
    pub status: RuleStatus,
}

/// What the API reads while the service runs.
#[derive(Default)]
pub struct Shared {
    pub rules: RwLock<BTreeMap<String, RuleView>>,
    /// The data-health report, refreshed as the engine publishes.
    pub health: RwLock<crate::health::HealthReport>,
    /// `risk_period` in seconds (0 until the service starts: the default then).
    risk_period_secs: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// How long an alert's risk takes to fade out (`detections.risk_period`).
    pub fn risk_period(&self) -> Duration {
        match self.risk_period_secs.load(std::sync::atomic::Ordering::Relaxed) {
            0 => DetectionConfig::default().risk_period,
            secs => Duration::from_secs(secs),
        }
    }
}

/// The responder's playbooks: each loaded rule's `[[response]]` steps.
impl cordon_schemas::PlaybookSource for Shared {
    fn steps(&self, rule_id: &str) -> Option<Vec<cordon_schemas::ResponseStep>> {
        let rules = self.rules.read().expect("rules lock");
        rules
            .get(rule_id)
            .filter(|view| view.loaded)
            .map(|view| view.response.clone())
    }
}

/// Called with each alert created or updated, and the rule that raised it.
pub type AlertListener = Arc<dyn Fn(&Alert, &RuleDefinition, bool) + Send + Sync>;

/// Where the events the detections write go, as flat JSON: the signals of `alert =
/// false` rules (`cordon.signal`) and the risk each new alert adds (`cordon.risk`). The
/// server stores them through its ingestor, so rules and hunts see them. Each is counted
/// in `queued_events` when sent; the reader counts it down once it is stored.
pub type EventSink = tokio::sync::mpsc::UnboundedSender<serde_json::Value>;

pub struct DetectionService {
    queue: BatchQueue,
    pub shared: Arc<Shared>,
    pub alerts: Arc<AlertStore>,
    pub metrics: DetectionMetrics,
}

impl DetectionService {
    /// Loads the rules and opens the alert store. Rules that fail to load are
    /// reported and left out; the service still starts.
    /// Starts the engine over `alerts` (opened by the caller, so the stages that read
    /// the alert feed can be wired before detections start).
    pub async fn start(
        config: DetectionConfig,
        alerts: Arc<AlertStore>,
        metrics: DetectionMetrics,
        warmup: Vec<RecordBatch>,
        listeners: Vec<AlertListener>,
        signals: Option<EventSink>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(DetectionService, tokio::task::JoinHandle<()>), crate::error::StartError> {
        let reference = crate::reference::load_dir(&config.reference_dir)?;
        let mut engine = Engine::new(config.engine_config(), reference, metrics.clone());
        let errors = engine.load_dir(&config.rules_dir).await?;
        let mut load_errors: BTreeMap<String, String> = BTreeMap::new();
        for error in errors {
            tracing::error!(error = %error, "rule not loaded");
            let id = error
                .position()
                .and_then(|at| rule_id_of(&config.rules_dir, &at.file))
                .unwrap_or_else(|| "?".into());
            load_errors.insert(id, error.to_string());
        }
        let shared = Arc::new(Shared::default());
        shared
            .risk_period_secs
            .store(config.risk_period.as_secs(), std::sync::atomic::Ordering::Relaxed);
        let mut state = Running {
            engine,
            alerts: alerts.clone(),
            shared: shared.clone(),
            load_errors,
            listeners,
            signals,
            metrics: metrics.clone(),
            config: config.clone(),
            fingerprints: BTreeMap::new(),
            reference_fingerprint: fingerprint(&config.reference_dir),
            last_health: std::cell::Cell::new(None),
        };
        state.fingerprints = state.current_fingerprints();
        let warm_rows: usize = warmup.iter().map(RecordBatch::num_rows).sum();
        for batch in warmup {
            state.process(batch).await;
        }
        // Nothing of the replay stays held: the live events' count starts from zero.
        state.evaluate_held(Due::All).await;
        if warm_rows > 0 {
            tracing::info!(
                events = warm_rows,
                "detections replayed recent events into their windows"
            );
        }
        state.publish();
        tracing::info!(rules = state.engine.rule_ids().len(), "detections running");
        let (queue, mut receiver) = BatchQueue::new(config.queue_batches, config.queue_events, metrics.clone());
        let queued = metrics.queued_events.clone();
        let queued_batches = metrics.queued_batches.clone();
        // The engine runs on threads of its own: its evaluations are CPU-bound and would
        // otherwise hold workers that acknowledgements need. Its rules evaluate in
        // parallel on them (`fan_out.rs`).
        let threads = config.threads;
        let task = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads.unwrap_or_else(default_threads).max(1))
                .thread_name("cordon-detections")
                .enable_all()
                .build()
                .expect("the detection runtime builds");
            runtime.block_on(async move {
                let mut reload = tokio::time::interval(config.reload_interval);
                reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                // Rules holding events (`evaluate_every`) are evaluated on time while
                // nothing arrives to move arrival time on.
                let mut held = tokio::time::interval(HELD_CHECK);
                held.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                // Events rules hold (`evaluate_every`), counted in "queued" until
                // evaluated: "nothing queued" must mean every alert of them is stored.
                let mut held_counted = 0usize;
                let mut settle = |state: &Running, taken: usize| {
                    let held_now = state.engine.held_events();
                    queued.dec_by((taken + held_counted).saturating_sub(held_now) as i64);
                    held_counted = held_now;
                };
                loop {
                    tokio::select! {
                        batch = receiver.batches.recv() => {
                            let Some(batch) = batch else { break };
                            // Take whatever else is queued (up to a bound): one evaluation per burst.
                            let batches = take_burst(batch, &mut receiver.batches, config.burst_max_events, RecordBatch::num_rows);
                            queued_batches.dec_by(batches.len() as i64);
                            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                            match concat_batches(&batches[0].schema(), &batches) {
                                Ok(batch) => {
                                    state.process(batch).await;
                                    state.publish();
                                }
                                Err(error) => tracing::error!(%error, "cannot combine batches for detections"),
                            }
                            // Only now, once their alerts are stored.
                            settle(&state, rows);
                            receiver.evaluated(rows);
                        }
                        _ = held.tick() => {
                            if state.evaluate_held(Due::At(cordon_schemas::time::now_nanos())).await {
                                state.publish();
                            }
                            settle(&state, 0);
                        }
                        _ = reload.tick() => {
                            // A change evaluates what rules hold first (`reload.rs`).
                            state.reload_changed().await;
                            settle(&state, 0);
                        }
                        _ = shutdown.changed() => break,
                    }
                }
                // What rules still hold is evaluated before stopping (a restart would
                // replay it, but a stop need not wait for one).
                state.evaluate_held(Due::All).await;
                settle(&state, 0);
            })
        });
        Ok((
            DetectionService {
                queue,
                shared,
                alerts,
                metrics,
            },
            task,
        ))
    }

    /// Hands a newly stored batch to the engine (a storage listener, on the write-ahead
    /// log's thread); waits while the queue is full (see `queue.rs`).
    pub fn submit(&self, batch: &RecordBatch) {
        self.queue.submit(batch);
    }
}

/// How often the service looks for rules whose held events are due while no events
/// arrive (`evaluate_every`): their alerts are at most this much later than the interval.
const HELD_CHECK: Duration = Duration::from_millis(250);

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get().saturating_sub(1).max(1))
}

fn rule_id_of(rules_dir: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(rules_dir).ok()?;
    relative
        .components()
        .next()
        .map(|part| part.as_os_str().to_string_lossy().to_string())
}

struct Running {
    engine: Engine,
    alerts: Arc<AlertStore>,
    shared: Arc<Shared>,
    load_errors: BTreeMap<String, String>,
    listeners: Vec<AlertListener>,
    signals: Option<EventSink>,
    metrics: DetectionMetrics,
    config: DetectionConfig,
    fingerprints: BTreeMap<PathBuf, Vec<(PathBuf, u64, Option<SystemTime>)>>,
    reference_fingerprint: Vec<(PathBuf, u64, Option<SystemTime>)>,
    last_health: std::cell::Cell<Option<std::time::Instant>>,
}

impl Running {
    /// Evaluates a burst; each rule's alerts are raised as soon as it is done.
    async fn process(&mut self, batch: RecordBatch) {
        self.evaluate(Step::Events(&batch), batch.num_rows()).await;
    }

    /// Evaluates the rules whose held events are `due`; whether any was.
    async fn evaluate_held(&mut self, due: Due) -> bool {
        self.evaluate(Step::Held(due), 0).await.evaluated
    }

    async fn evaluate(&mut self, step: Step<'_>, rows: usize) -> Burst {
        let started = std::time::Instant::now();
        let raiser = raiser!(self);
        let burst = evaluate_and_raise(&mut self.engine, &self.alerts, step, |part| raiser.raise(&part)).await;
        raiser.log_burst(&burst, rows, started);
        burst
    }

    fn publish(&self) {
        let statuses = self.engine.statuses();
        let mut views = BTreeMap::new();
        for definition in self.engine.definitions() {
            let settings = &definition.settings;
            views.insert(
                definition.id.clone(),
                RuleView {
                    id: definition.id.clone(),
                    title: settings.title.clone(),
                    severity: settings.severity.as_str().to_string(),
                    attack: settings.attack.clone(),
                    atlas: settings.atlas.clone(),
                    loaded: true,
                    response: settings.response.clone(),
                    load_error: self.load_errors.get(&definition.id).cloned(),
                    evaluate_every: settings.evaluate_every,
                    anchor: settings.anchor.clone(),
                    status: statuses.get(&definition.id).cloned().unwrap_or_default(),
                },
            );
        }
        for (id, error) in &self.load_errors {
            views.entry(id.clone()).or_insert_with(|| RuleView {
                id: id.clone(),
                title: String::new(),
                severity: String::new(),
                attack: Vec::new(),
                atlas: Vec::new(),
                loaded: false,
                response: Vec::new(),
                load_error: Some(error.clone()),
                evaluate_every: None,
                anchor: None,
                status: RuleStatus::default(),
            });
        }
        *self.shared.rules.write().expect("rules lock") = views;
        // The report ranks every host: at most once a second, not once a burst.
        let due = self.last_health.get().is_none_or(|at| at.elapsed() >= HEALTH_EVERY);
        if due {
            self.last_health.set(Some(std::time::Instant::now()));
            let report = self.engine.health(HEALTH_HOSTS_KEPT, self.config.silent_after);
            self.publish_health_metrics(&report);
            *self.shared.health.write().expect("health lock") = report;
        }
    }

    /// The top hosts per kind on `/metrics` (a bounded number of series, whatever the
    /// fleet's size), and how many keys the engine tracks.
    fn publish_health_metrics(&self, report: &crate::health::HealthReport) {
        let top = &self.metrics.top_hosts;
        top.clear();
        type Count = fn(&crate::health::HostHealth) -> u64;
        let kinds: [(&str, Count); 4] = [
            ("late", |h| h.late),
            ("too_old", |h| h.too_old),
            ("skewed", |h| h.skewed),
            ("delayed", |h| h.delayed),
        ];
        for (kind, count) in kinds {
            let mut hosts: Vec<_> = report.troubled.iter().filter(|h| count(h) > 0).collect();
            hosts.sort_by(|a, b| count(b).cmp(&count(a)).then_with(|| a.host_id.cmp(&b.host_id)));
            for host in hosts.into_iter().take(TOP_HOSTS_ON_METRICS) {
                top.get_or_create(&vec![("kind", kind.to_string()), ("host", host.host_id.clone())])
                    .set(count(host) as i64);
            }
        }
        let (clocks, hosts) = self.engine.tracked_keys();
        let tracked = &self.metrics.tracked_keys;
        tracked
            .get_or_create(&vec![("what", "clocks".to_string())])
            .set(clocks as i64);
        tracked
            .get_or_create(&vec![("what", "hosts".to_string())])
            .set(hosts as i64);
    }
}
