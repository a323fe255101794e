//! What the service does with alerts as rules fold them: metrics, the log, the
//! alert listeners (the responder), and the events derived from them (signals, risk).

use crate::alerts::{Alert, Folded};
use crate::metrics::DetectionMetrics;
use crate::process::Burst;
use crate::rule::RuleDefinition;

use super::{AlertListener, EventSink};

/// The service's outlets for what rules raised, borrowed beside the engine while it
/// evaluates: a rule's alerts go out as soon as that rule is done.
pub(super) struct Raiser<'a> {
    pub listeners: &'a [AlertListener],
    pub signals: Option<&'a EventSink>,
    pub metrics: &'a DetectionMetrics,
}

impl Raiser<'_> {
    /// Raises what one rule's evaluation folded into alerts, and sends its signals.
    pub fn raise(&self, burst: &Burst) {
        for (folded, definition) in &burst.raised {
            match folded {
                Folded::Created(alert) => self.raised(alert, definition, true, burst.earliest_arrival),
                Folded::Updated(alert) => self.raised(alert, definition, false, burst.earliest_arrival),
                Folded::Unchanged => {}
            }
        }
        for (rule, error) in &burst.store_errors {
            tracing::error!(%rule, %error, "cannot store an alert");
        }
        for (found, definition) in &burst.signals {
            self.metrics
                .signals
                .get_or_create(&vec![("rule", found.rule_id.clone())])
                .inc();
            if let Some(sink) = self.signals {
                // Closed only at shutdown; a signal then is found again on replay.
                self.derived(sink, crate::signals::event_of(found, definition));
            }
        }
    }

    /// The burst as a whole, once every rule is done.
    pub fn log_burst(&self, burst: &Burst, rows: usize, started: std::time::Instant) {
        tracing::debug!(
            events = rows,
            matches = burst.matches,
            took_ms = started.elapsed().as_millis() as u64,
            "detections processed a burst"
        );
    }

    /// Sends a derived event (a signal, a risk event) to be stored, counted as queued
    /// until the sink's reader has stored it (and so queued it in turn): "nothing
    /// queued" then also means no rule is still to see what the rules derived.
    fn derived(&self, sink: &EventSink, event: serde_json::Value) {
        self.metrics.queued_events.inc();
        if sink.send(event).is_err() {
            self.metrics.queued_events.dec();
        }
    }

    fn raised(&self, alert: &Alert, definition: &RuleDefinition, created: bool, arrival: Option<i64>) {
        let outcome = if created { "created" } else { "folded" };
        self.metrics
            .alerts
            .get_or_create(&vec![("rule", alert.rule_id.clone()), ("outcome", outcome.to_string())])
            .inc();
        if let Some(arrival) = arrival {
            let now = cordon_schemas::time::now_nanos();
            self.metrics
                .event_to_alert_seconds
                .observe((now - arrival).max(0) as f64 / 1e9);
        }
        if created {
            tracing::warn!(
                alert = %alert.id, rule = %alert.rule_id, severity = alert.severity.as_str(),
                host = alert.host_id.as_deref().unwrap_or("-"), user = alert.user_name.as_deref().unwrap_or("-"),
                "alert raised"
            );
        }
        if created && let Some(sink) = self.signals {
            for event in crate::risk::events_of(alert) {
                self.derived(sink, event);
            }
        }
        for listener in self.listeners {
            listener(alert, definition, created);
        }
    }
}
