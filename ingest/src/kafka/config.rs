//! Settings of the Kafka source (`[kafka]`), the dead-letter topic and the alert topic.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::InvalidSetting;

/// How the messages of one topic are encoded (contract section 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum MessageFormat {
    /// One OTLP `ExportLogsServiceRequest` in protobuf per message: what the
    /// OpenTelemetry Collector's Kafka exporter writes with `encoding: otlp_proto`.
    OtlpProto,
    /// The same request in OTLP JSON (`encoding: otlp_json`).
    OtlpJson,
    /// One flat JSON event per message (contract section 3).
    Json,
}

impl MessageFormat {
    pub fn label(self) -> &'static str {
        self.into()
    }
}

/// One consumed topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    pub name: String,
    pub format: MessageFormat,
    /// Whether the broker authenticates this topic's producers (ACLs on who may write
    /// to it): `authenticated` stores its events with producer `kafka:<topic>`, so
    /// automatic containment may rest on them; `unauthenticated` (the default) stores
    /// them with none.
    #[serde(default)]
    pub trust: TopicTrust,
    /// Host ids the topic's events may name (globs); others are rejected
    /// (`host_not_permitted`) and recorded as `cordon.spoofing` findings.
    #[serde(default = "any_host")]
    pub hosts: Vec<String>,
}

fn any_host() -> Vec<String> {
    vec!["*".into()]
}

/// How far a topic's producers are vouched for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicTrust {
    #[default]
    Unauthenticated,
    Authenticated,
}

impl TopicConfig {
    pub fn new(name: impl Into<String>, format: MessageFormat) -> TopicConfig {
        TopicConfig {
            name: name.into(),
            format,
            trust: TopicTrust::default(),
            hosts: any_host(),
        }
    }

    /// The provenance of this topic's events; `tls` when the client speaks TLS.
    pub fn provenance(&self, tls: bool) -> cordon_schemas::Provenance {
        let patterns = std::sync::Arc::new(cordon_schemas::HostPatterns::new(&self.hosts));
        cordon_schemas::Provenance {
            transport: "kafka",
            producer: (self.trust == TopicTrust::Authenticated).then(|| format!("kafka:{}", self.name).into()),
            tls,
            hosts: cordon_schemas::HostScope::Only(patterns),
        }
    }
}

/// The Kafka source. Off unless `enabled`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    pub enabled: bool,
    /// librdkafka's `bootstrap.servers`: `host:port[,host:port...]`.
    pub brokers: String,
    /// The consumer group; instances with the same group split the partitions.
    pub group_id: String,
    pub topics: Vec<TopicConfig>,
    /// Where undecodable messages go, with headers naming the error and their origin.
    /// Empty: they are counted, logged and skipped.
    pub dead_letter_topic: String,
    /// Alerts are published here, one JSON alert per message keyed by `host.id`.
    /// Empty: not published.
    pub alerts_topic: String,
    /// Passed to librdkafka as they are: `security.protocol`, `ssl.ca.location`,
    /// `sasl.mechanisms`, `sasl.username`, ... (librdkafka's CONFIGURATION.md).
    pub client: BTreeMap<String, String>,
    /// librdkafka properties whose values are secrets, read from the named environment
    /// variables (e.g. `"sasl.password" = "CORDON_KAFKA_PASSWORD"`), so they stay out
    /// of config files and logs.
    pub client_secrets_env: BTreeMap<String, String>,
    /// A batch is stored once it has this many messages...
    pub max_batch_messages: usize,
    /// ...or this many payload bytes...
    pub max_batch_bytes: usize,
    /// ...or its first message has waited this long.
    #[serde(with = "humantime_serde")]
    pub max_batch_wait: Duration,
    /// Durable offsets are committed at least this often (and always before partitions
    /// are given up and at shutdown).
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// How often consumer lag is measured (partition ends against committed offsets).
    #[serde(with = "humantime_serde")]
    pub lag_interval: Duration,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            enabled: false,
            brokers: "127.0.0.1:9092".into(),
            group_id: "cordon".into(),
            topics: vec![TopicConfig::new("agent-events", MessageFormat::OtlpProto)],
            dead_letter_topic: "cordon-dead-letters".into(),
            alerts_topic: String::new(),
            client: BTreeMap::new(),
            client_secrets_env: BTreeMap::new(),
            max_batch_messages: 2_000,
            max_batch_bytes: 16 << 20,
            max_batch_wait: Duration::from_millis(50),
            commit_interval: Duration::from_secs(1),
            lag_interval: Duration::from_secs(5),
        }
    }
}

/// Properties Cordon sets itself: setting them would break at-least-once delivery.
const RESERVED: &[&str] = &[
    "enable.auto.commit",
    "enable.auto.offset.store",
    "group.id",
    "bootstrap.servers",
    "statistics.interval.ms",
];

impl std::fmt::Debug for KafkaConfig {
    // Secrets come from the environment; the config names only variables. Client
    // properties may still hold a password someone pasted in: show keys only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("enabled", &self.enabled)
            .field("brokers", &self.brokers)
            .field("group_id", &self.group_id)
            .field("topics", &self.topics)
            .field("dead_letter_topic", &self.dead_letter_topic)
            .field("alerts_topic", &self.alerts_topic)
            .field("client", &self.client.keys().collect::<Vec<_>>())
            .field("client_secrets_env", &self.client_secrets_env)
            .finish_non_exhaustive()
    }
}

impl KafkaConfig {
    /// Whether the client connects to the brokers over TLS (`security.protocol`).
    pub fn uses_tls(&self) -> bool {
        self.client
            .get("security.protocol")
            .is_some_and(|protocol| protocol.to_ascii_lowercase().contains("ssl"))
    }

    /// The format of a consumed topic.
    pub fn format_of(&self, topic: &str) -> Option<MessageFormat> {
        self.topics
            .iter()
            .find(|configured| configured.name == topic)
            .map(|configured| configured.format)
    }

    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let invalid = |field, value: String, expected| Err(InvalidSetting { field, value, expected });
        if !self.enabled && self.alerts_topic.is_empty() {
            return Ok(());
        }
        if self.brokers.trim().is_empty() {
            return invalid("kafka.brokers", "\"\"".into(), "host:port[,host:port...]");
        }
        if self.enabled {
            if self.group_id.is_empty() {
                return invalid("kafka.group_id", "\"\"".into(), "a consumer group name");
            }
            if self.topics.is_empty() {
                return invalid("kafka.topics", "[]".into(), "at least one { name, format } table");
            }
            if let Some(topic) = self.topics.iter().find(|topic| topic.name.trim().is_empty()) {
                return invalid("kafka.topics.name", format!("{:?}", topic.name), "a topic name");
            }
            if self.topics.iter().any(|topic| topic.name == self.dead_letter_topic) {
                return invalid(
                    "kafka.dead_letter_topic",
                    self.dead_letter_topic.clone(),
                    "a topic that is not consumed (its messages would come back forever)",
                );
            }
        }
        if self.max_batch_messages == 0 {
            return invalid("kafka.max_batch_messages", "0".into(), "at least 1");
        }
        if self.max_batch_bytes < 1024 {
            return invalid(
                "kafka.max_batch_bytes",
                self.max_batch_bytes.to_string(),
                "at least 1024",
            );
        }
        if self.lag_interval < Duration::from_millis(100) {
            return invalid(
                "kafka.lag_interval",
                format!("{:?}", self.lag_interval),
                "at least 100ms",
            );
        }
        for key in self.client.keys().chain(self.client_secrets_env.keys()) {
            if RESERVED.contains(&key.as_str()) {
                return invalid(
                    "kafka.client",
                    key.clone(),
                    "a librdkafka property Cordon does not set itself (use kafka.brokers / kafka.group_id)",
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> KafkaConfig {
        KafkaConfig {
            enabled: true,
            ..KafkaConfig::default()
        }
    }

    #[test]
    fn defaults_are_valid_and_off() {
        assert!(!KafkaConfig::default().enabled);
        KafkaConfig::default().validate().unwrap();
        enabled().validate().unwrap();
    }

    #[test]
    fn reserved_properties_are_refused_by_name() {
        let mut config = enabled();
        config.client.insert("enable.auto.commit".into(), "true".into());
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("kafka.client") && error.contains("enable.auto.commit"),
            "{error}"
        );
    }

    #[test]
    fn consuming_the_dead_letter_topic_is_refused() {
        let mut config = enabled();
        config.dead_letter_topic = "agent-events".into();
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("kafka.dead_letter_topic")
        );
    }

    #[test]
    fn debug_shows_no_client_values() {
        let mut config = enabled();
        config.client.insert("sasl.password".into(), "hunter2-hunter2".into());
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn formats_parse_by_contract_name() {
        let topic: TopicConfig = toml::from_str("name = \"t\"\nformat = \"otlp_json\"").unwrap();
        assert_eq!(topic.format, MessageFormat::OtlpJson);
        assert!(toml::from_str::<TopicConfig>("name = \"t\"\nformat = \"avro\"").is_err());
    }

    #[test]
    fn a_topics_trust_and_hosts_become_its_events_provenance() {
        let open: TopicConfig = toml::from_str("name = \"t\"\nformat = \"json\"").unwrap();
        let provenance = open.provenance(false);
        assert_eq!((provenance.transport, provenance.producer), ("kafka", None));
        assert!(provenance.hosts.covers("any-host"));
        let vouched: TopicConfig = toml::from_str(
            "name = \"eu-agents\"\nformat = \"otlp_proto\"\ntrust = \"authenticated\"\nhosts = [\"eu-*\"]",
        )
        .unwrap();
        let provenance = vouched.provenance(true);
        assert_eq!(provenance.producer.as_deref(), Some("kafka:eu-agents"));
        assert!(provenance.tls);
        assert!(provenance.hosts.covers("eu-laptop-1") && !provenance.hosts.covers("us-laptop-1"));
    }
}
