//! The detection stage's metrics, in the pipeline's scheme: `cordon_events_in_total`
//! with `stage="detections"`, and per-rule evaluation figures labelled `rule`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use cordon_schemas::stage_metrics::StageMetrics;

pub type RuleLabel = Vec<(&'static str, String)>;

pub fn rule_label(rule: &str) -> RuleLabel {
    vec![("rule", rule.to_string())]
}

#[derive(Clone)]
pub struct DetectionMetrics {
    /// Events the engine received.
    pub events_in: Counter,
    /// Events later than the lateness bound: counted and left out of windows.
    pub late_events: Counter,
    /// Events older than detections.max_event_age on arrival.
    pub too_old_events: Counter,
    /// Events ahead of their arrival by more than detections.max_clock_skew.
    pub skewed_events: Counter,
    /// Events evaluated although they arrived more than the lateness after their time.
    pub delayed_events: Counter,
    /// Per host, for the hosts with the most events set aside (`kind`: late, too_old,
    /// skewed, delayed); refreshed as the engine publishes its state.
    pub top_hosts: Family<Vec<(&'static str, String)>, Gauge>,
    /// Keys with a clock, and hosts in the data-health book.
    pub tracked_keys: Family<Vec<(&'static str, String)>, Gauge>,
    pub evaluations: Family<RuleLabel, Counter>,
    pub evaluation_seconds: Family<RuleLabel, Histogram>,
    pub evaluation_errors: Family<RuleLabel, Counter>,
    /// Events a rule failed on and left out (the others of their batch were evaluated).
    pub events_not_evaluated: Family<RuleLabel, Counter>,
    pub matches: Family<RuleLabel, Counter>,
    /// Alerts, by rule and outcome (`created`, `folded`).
    pub alerts: Family<Vec<(&'static str, String)>, Counter>,
    /// Signals (matches of `alert = false` rules), by rule.
    pub signals: Family<Vec<(&'static str, String)>, Counter>,
    pub kept_rows: Family<RuleLabel, Gauge>,
    pub rule_load_errors: Counter,
    /// From an event's arrival to the alert it raised or folded into.
    pub event_to_alert_seconds: Histogram,
    /// Events handed to the engine and not yet fully evaluated (alerts stored), and the
    /// signal and risk events the rules derived, until they are stored and queued in turn.
    pub queued_events: Gauge,
    /// Batches waiting in the queue from storage to the engine, and its capacity.
    pub queued_batches: Gauge,
    pub queue_capacity_batches: Gauge,
    pub queue_capacity_events: Gauge,
    /// Time storage waited because the queue was full (back-pressure on ingest).
    pub queue_full_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
}

impl Default for DetectionMetrics {
    fn default() -> Self {
        DetectionMetrics::with_stages(&StageMetrics::default())
    }
}

impl DetectionMetrics {
    /// The detection metrics, counting events in under `stage="detections"` in `stages`.
    pub fn with_stages(stages: &StageMetrics) -> Self {
        DetectionMetrics {
            events_in: StageMetrics::counter(&stages.events_in, vec![("stage", "detections")]),
            late_events: Counter::default(),
            too_old_events: Counter::default(),
            skewed_events: Counter::default(),
            delayed_events: Counter::default(),
            top_hosts: Family::default(),
            tracked_keys: Family::default(),
            evaluations: Family::default(),
            evaluation_seconds: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))),
            evaluation_errors: Family::default(),
            events_not_evaluated: Family::default(),
            matches: Family::default(),
            alerts: Family::default(),
            signals: Family::default(),
            kept_rows: Family::default(),
            rule_load_errors: Counter::default(),
            event_to_alert_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            queued_events: Gauge::default(),
            queued_batches: Gauge::default(),
            queue_capacity_batches: Gauge::default(),
            queue_capacity_events: Gauge::default(),
            queue_full_seconds: Counter::default(),
        }
    }

    /// Adds the detection metrics to `registry` (the stage families are registered by
    /// their owner, `StageMetrics::register`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cordon_detection_late_events",
            "Events behind their key's clock by more than detections.lateness, or older than detections.max_event_age: stored, not evaluated",
            self.late_events.clone(),
        );
        registry.register(
            "cordon_detection_too_old_events",
            "Events older than detections.max_event_age on arrival: stored, not evaluated",
            self.too_old_events.clone(),
        );
        registry.register(
            "cordon_detection_skewed_events",
            "Events ahead of their arrival by more than detections.max_clock_skew: evaluated, moving no clock",
            self.skewed_events.clone(),
        );
        registry.register(
            "cordon_detection_delayed_events",
            "Events evaluated although they arrived more than detections.lateness after their time (buffered hosts)",
            self.delayed_events.clone(),
        );
        registry.register(
            "cordon_detection_host_events",
            "Per host, for the hosts with the most events late, too old, skewed or delayed (top 10 per kind)",
            self.top_hosts.clone(),
        );
        registry.register(
            "cordon_detection_tracked_keys",
            "Keys the engine tracks: clocks (what=clocks) and hosts in the data-health book (what=hosts)",
            self.tracked_keys.clone(),
        );
        registry.register("cordon_rule_evaluations", "Rule evaluations", self.evaluations.clone());
        registry.register(
            "cordon_rule_evaluation_seconds",
            "Time one rule evaluation took (both stages)",
            self.evaluation_seconds.clone(),
        );
        registry.register(
            "cordon_rule_errors",
            "Rule evaluations that failed",
            self.evaluation_errors.clone(),
        );
        registry.register(
            "cordon_rule_events_not_evaluated",
            "Events a rule failed on and left out, the rest of their batch evaluated without them",
            self.events_not_evaluated.clone(),
        );
        registry.register("cordon_rule_matches", "Rows match.sql returned", self.matches.clone());
        registry.register(
            "cordon_alerts",
            "Alerts raised or folded into, by rule and outcome",
            self.alerts.clone(),
        );
        registry.register(
            "cordon_signals",
            "Signals (matches of rules with alert = false), by rule",
            self.signals.clone(),
        );
        registry.register(
            "cordon_rule_kept_rows",
            "Rows a rule keeps in its windows",
            self.kept_rows.clone(),
        );
        registry.register(
            "cordon_rule_load_errors",
            "Rule folders that failed to load",
            self.rule_load_errors.clone(),
        );
        registry.register(
            "cordon_event_to_alert_seconds",
            "Time from an event's arrival to the alert it raised or folded into",
            self.event_to_alert_seconds.clone(),
        );
        registry.register(
            "cordon_detection_queued_events",
            "Events handed to the detection engine and not yet evaluated by every rule (held by a rule with evaluate_every until it evaluates them; with the signal and risk events it derived, until stored)",
            self.queued_events.clone(),
        );
        registry.register(
            "cordon_detection_queued_batches",
            "Batches waiting in the queue from storage to the detection engine",
            self.queued_batches.clone(),
        );
        registry.register(
            "cordon_detection_queue_capacity_batches",
            "Batches the queue from storage to the detection engine holds before storage waits",
            self.queue_capacity_batches.clone(),
        );
        registry.register(
            "cordon_detection_queue_capacity_events",
            "Events the queue from storage to the detection engine holds before storage waits",
            self.queue_capacity_events.clone(),
        );
        registry.register(
            "cordon_detection_queue_full_seconds",
            "Time storage waited on a full detection queue: acknowledgements slow while detections catch up",
            self.queue_full_seconds.clone(),
        );
    }
}
