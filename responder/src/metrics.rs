//! The responder's Prometheus metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
    /// created, held, succeeded, failed, denied, dry_run.
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub action: String,
    /// success, retry, fail.
    pub result: String,
}

#[derive(Clone)]
pub struct ResponderMetrics {
    pub actions: Family<ActionLabels, Counter>,
    pub attempts: Family<AttemptLabels, Counter>,
    pub delivery_seconds: Histogram,
}

impl Default for ResponderMetrics {
    fn default() -> Self {
        ResponderMetrics {
            actions: Family::default(),
            attempts: Family::default(),
            delivery_seconds: Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        }
    }
}

impl ResponderMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cordon_response_actions",
            "Response actions by action and outcome",
            self.actions.clone(),
        );
        registry.register(
            "cordon_response_attempts",
            "Webhook tries by action and result",
            self.attempts.clone(),
        );
        registry.register(
            "cordon_response_delivery_seconds",
            "Time for one webhook try",
            self.delivery_seconds.clone(),
        );
    }

    /// Creates every action's series at zero, so dashboards and alerts see them
    /// before the first action of a kind.
    pub fn init(&self, actions: &[&str]) {
        for action in actions {
            for outcome in ["created", "held", "succeeded", "failed", "denied", "dry_run"] {
                let _ = self.actions.get_or_create(&ActionLabels {
                    action: action.to_string(),
                    outcome: outcome.into(),
                });
            }
            for result in ["success", "retry", "fail"] {
                let _ = self.attempts.get_or_create(&AttemptLabels {
                    action: action.to_string(),
                    result: result.into(),
                });
            }
        }
    }

    pub fn action(&self, action: &str, outcome: &str) {
        self.actions
            .get_or_create(&ActionLabels {
                action: action.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn attempt(&self, action: &str, result: &str) {
        self.attempts
            .get_or_create(&AttemptLabels {
                action: action.into(),
                result: result.into(),
            })
            .inc();
    }
}
