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
    pub evaluations: Family<RuleLabel, Counter>,
    pub evaluation_seconds: Family<RuleLabel, Histogram>,
    pub evaluation_errors: Family<RuleLabel, Counter>,
    pub matches: Family<RuleLabel, Counter>,
    /// Alerts, by rule and outcome (`created`, `folded`).
    pub alerts: Family<Vec<(&'static str, String)>, Counter>,
    pub kept_rows: Family<RuleLabel, Gauge>,
    pub rule_load_errors: Counter,
    /// From an event's arrival to the alert it raised or folded into.
    pub event_to_alert_seconds: Histogram,
    /// Events handed to the engine and not yet fully evaluated (alerts stored).
    pub queued_events: Gauge,
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
            evaluations: Family::default(),
            evaluation_seconds: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))),
            evaluation_errors: Family::default(),
            matches: Family::default(),
            alerts: Family::default(),
            kept_rows: Family::default(),
            rule_load_errors: Counter::default(),
            event_to_alert_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            queued_events: Gauge::default(),
        }
    }

    /// Adds the detection metrics to `registry` (the stage families are registered by
    /// their owner, `StageMetrics::register`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cordon_detection_late_events",
            "Events later than detections.lateness: counted and not evaluated",
            self.late_events.clone(),
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
        registry.register("cordon_rule_matches", "Rows match.sql returned", self.matches.clone());
        registry.register(
            "cordon_alerts",
            "Alerts raised or folded into, by rule and outcome",
            self.alerts.clone(),
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
            "Events handed to the detection engine and not yet evaluated",
            self.queued_events.clone(),
        );
    }
}
