//! Kafka source metrics: messages by outcome, consumer lag, commits, dead letters.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type TopicLabels = Vec<(&'static str, String)>;

#[derive(Clone, Default)]
pub struct KafkaMetrics {
    /// Messages taken from Kafka, by topic and outcome (`stored`, `dead_letter`,
    /// `skipped`): `rate()` of it is the consumer's throughput.
    pub messages: Family<TopicLabels, Counter>,
    /// Payload bytes consumed, by topic.
    pub bytes: Family<TopicLabels, Counter>,
    /// Messages the committed offset is behind the partition's end, by topic and
    /// partition (librdkafka's statistics).
    pub consumer_lag: Family<TopicLabels, Gauge>,
    /// Offset commits by result (`ok`, `error`).
    pub commits: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Messages written to the dead-letter topic, by source topic and reason.
    pub dead_letters: Family<TopicLabels, Counter>,
    /// Partitions this instance owns now.
    pub assigned_partitions: Gauge,
    /// Rebalances by kind (`assign`, `revoke`, `error`).
    pub rebalances: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Alerts published to the alert topic, by result.
    pub alerts_published: Family<Vec<(&'static str, &'static str)>, Counter>,
}

impl KafkaMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cordon_kafka_messages",
            "Kafka messages consumed, by topic and outcome (stored, dead_letter, skipped)",
            self.messages.clone(),
        );
        registry.register(
            "cordon_kafka_bytes",
            "Kafka payload bytes consumed, by topic",
            self.bytes.clone(),
        );
        registry.register(
            "cordon_kafka_consumer_lag",
            "Messages between the committed offset and the end of each assigned partition",
            self.consumer_lag.clone(),
        );
        registry.register(
            "cordon_kafka_commits",
            "Kafka offset commits, by result",
            self.commits.clone(),
        );
        registry.register(
            "cordon_kafka_dead_letters",
            "Messages sent to the dead-letter topic, by source topic and reason",
            self.dead_letters.clone(),
        );
        registry.register(
            "cordon_kafka_assigned_partitions",
            "Kafka partitions this instance consumes now",
            self.assigned_partitions.clone(),
        );
        registry.register(
            "cordon_kafka_rebalances",
            "Consumer-group rebalances seen, by kind",
            self.rebalances.clone(),
        );
        registry.register(
            "cordon_kafka_alerts_published",
            "Alerts published to the Kafka alert topic, by result",
            self.alerts_published.clone(),
        );
    }

    /// Counts `count` messages of `topic` that ended as `outcome`.
    pub fn messages_done(&self, topic: &str, outcome: &'static str, count: u64) {
        self.messages
            .get_or_create(&vec![("topic", topic.to_string()), ("outcome", outcome.to_string())])
            .inc_by(count);
    }

    pub fn messages_count(&self, topic: &str, outcome: &'static str) -> u64 {
        self.messages
            .get_or_create(&vec![("topic", topic.to_string()), ("outcome", outcome.to_string())])
            .get()
    }

    pub fn dead_letter(&self, topic: &str, reason: &'static str) {
        self.dead_letters
            .get_or_create(&vec![("topic", topic.to_string()), ("reason", reason.to_string())])
            .inc();
    }
}
