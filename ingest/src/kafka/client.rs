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

/// The settings every Cordon Kafka client starts from: brokers, the pass-through
/// properties (TLS, SASL) and secrets from the environment.
pub fn base_config(config: &KafkaConfig) -> Result<ClientConfig, ClientSettingError> {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.brokers);
    client.set("client.id", "cordon");
    for (key, value) in &config.client {
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
    let mut client = base_config(config)?;
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
    let mut client = base_config(config)?;
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
        let error = base_config(&config).unwrap_err().to_string();
        assert!(error.contains("CORDON_TEST_KAFKA_UNSET_VARIABLE") && error.contains("sasl.password"));
    }

    #[test]
    fn consumers_never_commit_on_their_own() {
        let client = consumer_config(&KafkaConfig::default()).unwrap();
        assert_eq!(client.get("enable.auto.commit"), Some("false"));
        assert_eq!(client.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(client.get("auto.offset.reset"), Some("earliest"));
    }
}
