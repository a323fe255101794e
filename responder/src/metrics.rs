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
