//! The dead-letter topic: messages that could not be (fully) stored, kept as they
//! arrived, with headers naming the error and where they came from.

use std::time::Duration;

use cordon_schemas::retry::Backoff;
use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;

use super::client::producer_config;
use super::config::KafkaConfig;
use super::consumer::KafkaSourceError;
use super::metrics::KafkaMetrics;
use crate::error::IngestError;
use crate::ingestor::MessageReport;

/// Waits between tries to write one message to the dead-letter topic.
const RETRY: Backoff = Backoff::new(Duration::from_millis(400), Duration::from_secs(5));

/// Header names on a dead letter.
pub mod header {
    pub const ERROR: &str = "cordon.error";
    pub const REASON: &str = "cordon.reason";
    pub const SOURCE_TOPIC: &str = "cordon.source.topic";
    pub const SOURCE_PARTITION: &str = "cordon.source.partition";
    pub const SOURCE_OFFSET: &str = "cordon.source.offset";
    pub const REJECTED: &str = "cordon.rejected";
}

/// One message on its way to the dead-letter topic.
pub struct DeadLetter<'a> {
    message: &'a OwnedMessage,
    reason: &'static str,
    error: String,
    rejected: Option<usize>,
}

impl<'a> DeadLetter<'a> {
    /// Nothing of the message could be read.
    pub fn unreadable(message: &'a OwnedMessage, error: &IngestError) -> Self {
        DeadLetter {
            message,
            reason: "undecodable",
            error: error.to_string(),
            rejected: None,
        }
    }

    /// Some of its records were rejected (the others are stored).
    pub fn rejected(message: &'a OwnedMessage, report: &MessageReport) -> Self {
        DeadLetter {
            message,
            reason: "rejected_records",
            error: report.message.clone(),
            rejected: Some(report.rejected),
        }
    }
}

pub struct DeadLetters {
    topic: String,
    producer: Option<FutureProducer>,
    metrics: KafkaMetrics,
}

impl DeadLetters {
    pub fn new(config: &KafkaConfig, metrics: KafkaMetrics) -> Result<Self, KafkaSourceError> {
        let producer = if config.dead_letter_topic.is_empty() {
            None
        } else {
            Some(
                producer_config(config)?
                    .create::<FutureProducer>()
                    .map_err(KafkaSourceError::Consumer)?,
            )
        };
        Ok(DeadLetters {
            topic: config.dead_letter_topic.clone(),
            producer,
            metrics,
        })
    }

    pub fn enabled(&self) -> bool {
        self.producer.is_some()
    }

    /// Sends a dead letter and waits until Kafka has it, retrying: the source's offset
    /// must not pass a message that is neither stored nor dead-lettered. `false` if
    /// shutdown came first.
    pub async fn send(&self, letter: DeadLetter<'_>, shutdown: &mut watch::Receiver<bool>) -> bool {
        let message = letter.message;
        let source_topic = message.topic();
        self.metrics.dead_letter(source_topic, letter.reason);
        let Some(producer) = &self.producer else {
            tracing::error!(
                topic = source_topic, partition = message.partition(), offset = message.offset(),
                reason = letter.reason, error = %letter.error,
                "kafka message not stored and no kafka.dead_letter_topic is set: skipped"
            );
            return true;
        };
        tracing::warn!(
            topic = source_topic, partition = message.partition(), offset = message.offset(),
            reason = letter.reason, error = %letter.error, dead_letter_topic = %self.topic,
            "kafka message sent to the dead-letter topic"
        );
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let rejected = letter.rejected.map(|count| count.to_string());
        let mut attempt = 0u32;
        loop {
            let mut headers = OwnedHeaders::new();
            // The producer's own headers travel on, ahead of Cordon's.
            if let Some(original) = message.headers() {
                for index in 0..original.count() {
                    let header = original.get(index);
                    headers = headers.insert(Header {
                        key: header.key,
                        value: header.value,
                    });
                }
            }
            headers = headers
                .insert(Header {
                    key: header::ERROR,
                    value: Some(letter.error.as_str()),
                })
                .insert(Header {
                    key: header::REASON,
                    value: Some(letter.reason),
                })
                .insert(Header {
                    key: header::SOURCE_TOPIC,
                    value: Some(source_topic),
                })
                .insert(Header {
                    key: header::SOURCE_PARTITION,
                    value: Some(partition.as_str()),
                })
                .insert(Header {
                    key: header::SOURCE_OFFSET,
                    value: Some(offset.as_str()),
                });
            if let Some(rejected) = &rejected {
                headers = headers.insert(Header {
                    key: header::REJECTED,
                    value: Some(rejected.as_str()),
                });
            }
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).headers(headers);
            if let Some(payload) = message.payload() {
                record = record.payload(payload);
            }
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            match producer.send(record, Duration::from_secs(10)).await {
                Ok(_) => return true,
                Err((error, _)) => {
                    attempt += 1;
                    let delay = RETRY.delay(attempt);
                    tracing::error!(
                        %error, dead_letter_topic = %self.topic, ?delay,
                        "cannot write to the dead-letter topic (does it exist?); the partition waits until it can"
                    );
                    tokio::select! {
                        _ = shutdown.wait_for(|stop| *stop) => return false,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}
