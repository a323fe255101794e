//! librdkafka client settings shared by the consumer, the dead-letter producer and the
//! alert publisher.

use rdkafka::ClientConfig;

use super::config::KafkaConfig;

#[derive(Debug, thiserror::Error)]
pub enum ClientSettingError {
    #[error(
        "kafka.client_secrets_env: {property} names environment variable {variable}, which is not set; export it or remove the entry"
    )]
    MissingSecret { property: String, variable: String },
}

/// librdkafka properties only a consumer reads (marked C in its CONFIGURATION.md). The
/// one `client` table feeds every client; a producer given these prints a CONFWARN for
/// each at start, so they are left out of producers.
const CONSUMER_ONLY: &[&str] = &[
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "coordinator.query.interval.ms",
    "max.poll.interval.ms",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.wait.max.ms",
    "fetch.queue.backoff.ms",
    "fetch.message.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "fetch.error.backoff.ms",
    "isolation.level",
    "enable.partition.eof",
    "check.crcs",
];

/// The same for producer-only properties (marked P), left out of the consumer.
const PRODUCER_ONLY: &[&str] = &[
    "transactional.id",
    "transaction.timeout.ms",
    "enable.idempotence",
    "enable.gapless.guarantee",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.ms",
    "linger.ms",
    "message.send.max.retries",
    "retries",
    "queue.buffering.backpressure.threshold",
    "compression.codec",
    "compression.type",
    "compression.level",
    "batch.num.messages",
    "batch.size",
    "delivery.report.only.error",
    "sticky.partitioning.linger.ms",
    "acks",
    "request.required.acks",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "partitioner",
];

/// Which kind of client a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Consumer,
    Producer,
}

impl Role {
    fn reads(self, property: &str) -> bool {
        let other = match self {
            Role::Consumer => PRODUCER_ONLY,
            Role::Producer => CONSUMER_ONLY,
        };
        !other.contains(&property)
    }
}

/// The settings every Cordon Kafka client starts from: brokers, the pass-through
/// properties (TLS, SASL) that this kind of client reads, and secrets from the
/// environment.
pub fn base_config(config: &KafkaConfig, role: Role) -> Result<ClientConfig, ClientSettingError> {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.brokers);
    client.set("client.id", "cordon");
    for (key, value) in config.client.iter().filter(|(key, _)| role.reads(key)) {
        client.set(key, value);
    }
    for (property, variable) in &config.client_secrets_env {
        let value = std::env::var(variable).map_err(|_| ClientSettingError::MissingSecret {
            property: property.clone(),
            variable: variable.clone(),
        })?;
        client.set(property, value);
    }
    // librdkafka's own debug logging would print SASL settings; leave it to the operator.
    client.set_log_level(rdkafka::config::RDKafkaLogLevel::Warning);
    Ok(client)
}

/// Settings of a consumer in `config.group_id` whose offsets Cordon commits itself,
/// only once the events they cover are durable.
pub fn consumer_config(config: &KafkaConfig) -> Result<ClientConfig, ClientSettingError> {
    let mut client = base_config(config, Role::Consumer)?;
    client
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    // A new group reads a topic from its start: events already waiting must not be skipped.
    if !config.client.contains_key("auto.offset.reset") {
        client.set("auto.offset.reset", "earliest");
    }
    Ok(client)
}

/// Settings of a producer that waits for every in-sync replica and never duplicates on
/// retry: dead letters and published alerts are acknowledged work.
pub fn producer_config(config: &KafkaConfig) -> Result<ClientConfig, ClientSettingError> {
    let mut client = base_config(config, Role::Producer)?;
    client.set("acks", "all").set("enable.idempotence", "true");
    if !config.client.contains_key("message.timeout.ms") {
        client.set("message.timeout.ms", "30000");
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_the_environment_and_are_named_when_missing() {
        let mut config = KafkaConfig::default();
        config
            .client_secrets_env
            .insert("sasl.password".into(), "CORDON_TEST_KAFKA_UNSET_VARIABLE".into());
        let error = base_config(&config, Role::Producer).unwrap_err().to_string();
        assert!(error.contains("CORDON_TEST_KAFKA_UNSET_VARIABLE") && error.contains("sasl.password"));
    }

    #[test]
    fn consumers_never_commit_on_their_own() {
        let client = consumer_config(&KafkaConfig::default()).unwrap();
        assert_eq!(client.get("enable.auto.commit"), Some("false"));
        assert_eq!(client.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(client.get("auto.offset.reset"), Some("earliest"));
    }

    #[test]
    fn each_client_gets_only_the_pass_through_properties_it_reads() {
        let mut config = KafkaConfig::default();
        for (key, value) in [
            ("session.timeout.ms", "6000"),
            ("linger.ms", "5"),
            ("security.protocol", "ssl"),
        ] {
            config.client.insert(key.into(), value.into());
        }
        let consumer = consumer_config(&config).unwrap();
        let producer = producer_config(&config).unwrap();
        assert_eq!(consumer.get("session.timeout.ms"), Some("6000"));
        assert_eq!(consumer.get("linger.ms"), None);
        assert_eq!(producer.get("session.timeout.ms"), None);
        assert_eq!(producer.get("linger.ms"), Some("5"));
        for client in [&consumer, &producer] {
            assert_eq!(
                client.get("security.protocol"),
                Some("ssl"),
                "shared settings reach both"
            );
        }
    }
}
