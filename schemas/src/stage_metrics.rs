//! Metrics every stage reports under the same names, told apart by a `stage` label
//! (`ingest`, `detections`, later `kafka`): one dashboard query follows events through
//! the whole pipeline. Registered once by the server; each stage holds handles.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Label pairs of a stage metric; `stage` is always one of them.
pub type Labels = Vec<(&'static str, &'static str)>;

#[derive(Clone, Default)]
pub struct StageMetrics {
    /// Events a stage took in (`cordon_events_in_total{stage}`).
    pub events_in: Family<Labels, Counter>,
    /// Events a stage passed on: made durable (ingest).
    pub events_out: Family<Labels, Counter>,
    /// Events a stage refused, by `reason`.
    pub events_rejected: Family<Labels, Counter>,
}

impl StageMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register("cordon_events_in", "Events a stage took in", self.events_in.clone());
        registry.register("cordon_events_out", "Events a stage passed on", self.events_out.clone());
        registry.register(
            "cordon_events_rejected",
            "Events a stage refused, by reason",
            self.events_rejected.clone(),
        );
    }

    /// The counter of `labels`, shared with the family (a clone counts into it).
    pub fn counter(family: &Family<Labels, Counter>, labels: Labels) -> Counter {
        family.get_or_create(&labels).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_counts_into_the_one_registered_family() {
        let stages = StageMetrics::default();
        let mut registry = Registry::default();
        stages.register(&mut registry);
        let ingest = StageMetrics::counter(&stages.events_in, vec![("stage", "ingest")]);
        let detections = StageMetrics::counter(&stages.events_in, vec![("stage", "detections")]);
        ingest.inc_by(3);
        detections.inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert_eq!(text.matches("# TYPE cordon_events_in counter").count(), 1, "{text}");
        assert!(text.contains("cordon_events_in_total{stage=\"ingest\"} 3"), "{text}");
        assert!(
            text.contains("cordon_events_in_total{stage=\"detections\"} 1"),
            "{text}"
        );
    }
}
