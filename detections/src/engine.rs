//! The rule engine: new events in, matches out.
//!
//! For each batch of newly stored events, in arrival order (ties in event-time order):
//! each event is judged against its key's clock (`clock.rs`: a host's for
//! host-partitioned rules, a user's for user-partitioned ones); every rule's input.sql
//! runs over the events on time for it, its output joins the rule's kept rows by
//! partition, and match.sql runs over the partitions that received rows or have rows
//! falling due. Rows are evicted only after match.sql has seen them.
//!
//! The invariant (detections/README.md, "Time"): for the same arrivals, the alerts are
//! the same however they were batched, merged across hosts or replayed; an event
//! within the lateness bound of its key's clock is always evaluated.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use serde::Serialize;

use crate::clock::{KeyClocks, TimePolicy};
use crate::compile::{CompiledRule, Limits, compile};
use crate::error::{EvalError, RuleError};
use crate::health::{HealthBook, HealthReport};
use crate::held::{Held, HeldColumns};
use crate::live_rule::LiveRule;
use crate::matches::Match;
use crate::metrics::{DetectionMetrics, rule_label};
use crate::reference::ReferenceTable;
use crate::rule::{RuleDefinition, rule_dirs};
use crate::sweep_pace::PaceClock;
use crate::window::KeptRows;
use cordon_schemas::event_schema;

/// How the engine treats time, and the limits rules run under.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Events up to this far behind their key's newest event still complete matches.
    pub lateness: Duration,
    /// How far ahead of its arrival an event's time may be and still move its key's clock.
    pub max_clock_skew: Duration,
    /// Events older than this on arrival are stored and reported, not evaluated.
    pub max_event_age: Duration,
    pub limits: Limits,
    /// Replaces every rule's non-zero window (benchmarks, what-if runs).
    pub window_override: Option<Duration>,
    /// Sets every rule's `evaluate_every` (benchmarks, the batching properties).
    pub evaluate_every_override: Option<Duration>,
    /// Matches every evaluated partition whatever the rules' anchors (`anchor.rs`): how
    /// the fixtures check an anchor, and a what-if for a benchmark.
    pub ignore_anchors: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lateness: Duration::from_secs(300),
            max_clock_skew: Duration::from_secs(60),
            max_event_age: Duration::from_secs(7 * 24 * 3600),
            limits: Limits {
                memory_bytes: 256 << 20,
                timeout: Duration::from_secs(10),
            },
            window_override: None,
            evaluate_every_override: None,
            ignore_anchors: false,
        }
    }
}

impl EngineConfig {
    pub fn time_policy(&self) -> TimePolicy {
        TimePolicy {
            lateness: self.lateness,
            max_clock_skew: self.max_clock_skew,
            max_event_age: self.max_event_age,
        }
    }
}

/// An evaluation that failed, and the event times it covered: those events were not
/// evaluated by this rule (a backtest over the range re-runs them).
#[derive(Debug, Clone, Serialize)]
pub struct FailedEvaluation {
    /// RFC 3339, wall clock.
    pub at: String,
    pub timed_out: bool,
    pub error: String,
    /// Event times of the events it covered, RFC 3339.
    pub from: Option<String>,
    pub to: Option<String>,
    pub events: usize,
    /// The ids of those events (the first few, then how many in all).
    pub event_ids: String,
}

/// What a rule did lately, for `cordon rules` and the API.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleStatus {
    pub evaluations: u64,
    /// Wall time its evaluations took, summed (both stages): with `evaluations`, what
    /// the rule costs, and which rule to look at first when the engine falls behind.
    pub evaluation_seconds: f64,
    pub matches: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub last_error: Option<String>,
    /// The latest failed evaluations, newest last.
    pub failures: Vec<FailedEvaluation>,
    /// Wall-clock time of the last evaluation, RFC 3339.
    pub last_evaluated: Option<String>,
    pub kept_rows: usize,
    pub kept_partitions: usize,
    /// The event columns whose values key this rule's clocks (empty: one for all).
    pub clock_key: Vec<String>,
    /// Events waiting for its next evaluation (`evaluate_every`), and their bytes.
    pub held_events: usize,
    pub held_bytes: usize,
}

/// The clocks of one set of key columns, shared by the rules keyed on them.
struct ClockGroup {
    columns: Vec<String>,
    /// Shared with the rules' tasks while they run (`fan_out.rs`), changed only between.
    clocks: Arc<KeyClocks>,
}

/// What one batch produced.
#[derive(Debug, Default)]
pub struct Processed {
    /// In the order they completed: by last seen, then first seen.
    pub matches: Vec<Match>,
    pub errors: Vec<EvalError>,
    /// Events not evaluated by at least one rule: late for their key, or too old.
    pub late_events: usize,
    /// Earliest arrival time (ns) of the batch's events, for latency figures.
    pub earliest_arrival: Option<i64>,
    /// Whether any rule was evaluated.
    pub evaluated: bool,
}

pub struct Engine {
    config: EngineConfig,
    policy: TimePolicy,
    reference: BTreeMap<String, ReferenceTable>,
    rules: BTreeMap<String, LiveRule>,
    clocks: Vec<ClockGroup>,
    health: HealthBook,
    /// Newest arrival seen (ns): what "too old" and forgetting silent keys count from.
    newest_arrival: Option<i64>,
    /// Arrival time at which silent keys were last forgotten.
    last_forget: i64,
    late_events: u64,
    metrics: DetectionMetrics,
}

mod each_rule;
mod judge;

pub use each_rule::Step;

/// The transport of the events the detections write themselves (signals, risk).
const DERIVED_TRANSPORT: &str = "detections";

/// How often (in arrival time) keys silent for longer than the maximum event age are
/// forgotten.
const FORGET_EVERY: i64 = 60_000_000_000;

impl Engine {
    pub fn new(config: EngineConfig, reference: BTreeMap<String, ReferenceTable>, metrics: DetectionMetrics) -> Self {
        Engine {
            policy: config.time_policy(),
            config,
            reference,
            rules: BTreeMap::new(),
            clocks: Vec::new(),
            health: HealthBook::default(),
            newest_arrival: None,
            last_forget: i64::MIN,
            late_events: 0,
            metrics,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn reference(&self) -> &BTreeMap<String, ReferenceTable> {
        &self.reference
    }

    /// Loads every rule under `rules_dir`; the rules that fail are returned with why.
    pub async fn load_dir(&mut self, rules_dir: &std::path::Path) -> Result<Vec<RuleError>, RuleError> {
        let mut errors = Vec::new();
        for dir in rule_dirs(rules_dir)? {
            match self.compile(&dir).await {
                Ok(Some(compiled)) => self.install(compiled),
                Ok(None) => {}
                Err(error) => {
                    self.metrics.rule_load_errors.inc();
                    errors.push(error);
                }
            }
        }
        Ok(errors)
    }

    /// Reads and plans the rule in `dir`; None when it is disabled.
    pub async fn compile(&self, dir: &std::path::Path) -> Result<Option<CompiledRule>, RuleError> {
        let mut definition = RuleDefinition::load_with_window(dir, self.config.lateness, self.config.window_override)?;
        if let Some(every) = self.config.evaluate_every_override {
            definition.settings.evaluate_every = Some(every);
        }
        if self.config.ignore_anchors {
            definition.settings.anchor = None;
        }
        if definition.settings.disabled {
            return Ok(None);
        }
        compile(definition, &self.reference, self.config.limits).await.map(Some)
    }

    /// The clock group for a rule's partition columns: those that are event columns
    /// (a partition column input.sql computes has no clock of its own).
    fn clock_for(&mut self, partition_by: &[String]) -> usize {
        let schema = event_schema();
        let columns: Vec<String> = partition_by
            .iter()
            .filter(|name| schema.index_of(name).is_ok())
            .cloned()
            .collect();
        if let Some(index) = self.clocks.iter().position(|group| group.columns == columns) {
            return index;
        }
        self.clocks.push(ClockGroup {
            columns,
            clocks: Arc::default(),
        });
        self.clocks.len() - 1
    }

    /// Adds or replaces a rule. A replaced rule keeps its kept rows when its input
    /// stage produces the same columns; otherwise it starts empty. Events held for its
    /// next evaluation (`evaluate_every`) stay held when its clocks are the same.
    pub fn install(&mut self, compiled: CompiledRule) {
        let id = compiled.definition.id.clone();
        let previous = self.rules.remove(&id);
        let schema = Arc::new(crate::compile::stored_schema(&compiled.input.output));
        let settings = &compiled.definition.settings;
        let clock = self.clock_for(&settings.partition_by);
        let fresh = || {
            let mut kept = KeptRows::new(
                schema.clone(),
                &settings.partition_by,
                settings.window,
                settings.max_rows_per_partition,
            )
            .expect("checked at compile");
            kept.set_anchor(settings.anchor.as_ref()).expect("checked at compile");
            kept
        };
        let keyed = !self.clocks[clock].columns.is_empty();
        let mut held = Held::new(keyed);
        let mut pace = PaceClock::default();
        let mut previous_columns = HeldColumns::new(&event_schema(), None);
        // A reloaded rule keeps its rows when they still fit its new input and keys.
        let (kept, mut status) = match previous {
            Some(previous) => {
                pace = previous.pace;
                if previous.clock == clock {
                    held = previous.held;
                    previous_columns = previous.held_columns;
                } else if !previous.held.is_empty() {
                    tracing::warn!(
                        rule = %id, events = previous.held.events(),
                        "a rule reloaded with other partition columns drops the events held for its next evaluation, as it drops its kept rows"
                    );
                }
                let same = previous.kept.schema() == &schema
                    && previous.compiled.definition.settings.partition_by == settings.partition_by
                    && previous.compiled.definition.settings.window == settings.window
                    && previous.compiled.definition.settings.max_rows_per_partition == settings.max_rows_per_partition;
                if same {
                    (previous.kept, previous.status)
                } else {
                    (fresh(), previous.status)
                }
            }
            None => (fresh(), RuleStatus::default()),
        };
        let mut kept = kept;
        if let Err(error) = kept.set_anchor(settings.anchor.as_ref()) {
            tracing::error!(rule = %id, %error, "cannot find the anchor rows among a reloaded rule's kept rows: it starts empty");
            kept = fresh();
        }
        status.clock_key = self.clocks[clock].columns.clone();
        // Series from zero, so `rate()` and alerting on errors work before the first one.
        let label = rule_label(&id);
        let _ = self.metrics.evaluations.get_or_create(&label);
        let _ = self.metrics.evaluation_errors.get_or_create(&label);
        let _ = self.metrics.events_not_evaluated.get_or_create(&label);
        let _ = self.metrics.matches.get_or_create(&label);
        let held_columns = HeldColumns::new(&event_schema(), compiled.input.read_columns().as_deref());
        if let Err(error) = held.reproject(&event_schema(), &previous_columns, &held_columns) {
            tracing::error!(rule = %id, %error, events = held.events(), "cannot keep the events held for a reloaded rule: they are dropped");
            held = Held::new(keyed);
        }
        self.rules.insert(
            id,
            LiveRule {
                compiled,
                kept,
                status,
                clock,
                broken: false,
                held,
                held_columns,
                pace,
            },
        );
    }

    pub fn remove(&mut self, id: &str) -> bool {
        self.rules.remove(id).is_some()
    }

    pub fn rule_ids(&self) -> Vec<String> {
        self.rules.keys().cloned().collect()
    }

    pub fn definition(&self, id: &str) -> Option<Arc<RuleDefinition>> {
        self.rules.get(id).map(|rule| rule.compiled.definition.clone())
    }

    pub fn definitions(&self) -> Vec<Arc<RuleDefinition>> {
        self.rules
            .values()
            .map(|rule| rule.compiled.definition.clone())
            .collect()
    }

    pub fn statuses(&self) -> BTreeMap<String, RuleStatus> {
        self.rules
            .iter()
            .map(|(id, rule)| {
                let mut status = rule.status.clone();
                status.kept_rows = rule.kept.rows();
                status.kept_partitions = rule.kept.partitions();
                status.held_events = rule.held.events();
                status.held_bytes = rule.held.bytes();
                (id.clone(), status)
            })
            .collect()
    }

    /// Events not evaluated by some rule (late for their key, or too old), since start.
    pub fn late_events(&self) -> u64 {
        self.late_events
    }

    /// Data health per host: the worst `limit` hosts, and those silent for `silent_after`.
    pub fn health(&self, limit: usize, silent_after: Duration) -> HealthReport {
        let silent_since = self
            .newest_arrival
            .map_or(i64::MIN, |newest| newest.saturating_sub(silent_after.as_nanos() as i64));
        self.health.report(limit, silent_since)
    }

    /// Keys tracked: clocks of every group, and hosts in the health book.
    pub fn tracked_keys(&self) -> (usize, usize) {
        (
            self.clocks.iter().map(|group| group.clocks.len()).sum(),
            self.health.len(),
        )
    }

    /// Runs every rule over `batch` (events in the stored event schema); a rule with
    /// `evaluate_every` holds them until their key's beat (`held.rs`). The matches come
    /// back together, in the order they completed.
    pub async fn process(&mut self, batch: &RecordBatch) -> Processed {
        self.evaluate(Step::Events(batch)).await
    }

    /// Evaluates the events rules hold (`evaluate_every`) whose beat has come by `now`
    /// (wall time, ns, while no events arrive to move arrival time on), or, with
    /// `Due::All`, all they hold (after a replay, before a reload, at shutdown).
    pub async fn evaluate_held(&mut self, due: Due) -> Processed {
        self.evaluate(Step::Held(due)).await
    }

    /// The events the engine was given that some rule still holds for a later
    /// evaluation: "queued" until then (`service.rs`).
    pub fn held_events(&self) -> usize {
        self.rules.values().map(|rule| rule.held.events()).max().unwrap_or(0)
    }

    /// Forgets clocks and health of keys silent for longer than the maximum event age:
    /// that bound already rules out anything their clocks could, so no verdict changes
    /// and memory follows the keys heard from lately, not every key ever seen.
    fn forget_silent_keys(&mut self, arrival_now: i64) {
        if arrival_now.saturating_sub(self.last_forget) < FORGET_EVERY {
            return;
        }
        self.last_forget = arrival_now;
        let max_age = TimePolicy::nanos(self.config.max_event_age);
        let floor = arrival_now
            .saturating_sub(max_age)
            .saturating_add(self.policy.lateness_nanos());
        for group in &mut self.clocks {
            Arc::make_mut(&mut group.clocks).forget_before(floor);
        }
        self.health.forget_before(arrival_now.saturating_sub(max_age));
    }
}

/// When rules holding events are to be evaluated.
#[derive(Debug, Clone, Copy)]
pub enum Due {
    /// Those whose interval has passed by this time (ns).
    At(i64),
    /// Every one holding events.
    All,
}
