//! The Kafka source's loop: gather a batch of messages, make their events durable with
//! one append, dead-letter what cannot be read, then mark the offsets durable.
//! Offsets are committed only after that, so a crash reads some messages again and the
//! store drops the redelivered events by (`host.id`, `event.id`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use tokio::sync::watch;

use super::client::consumer_config;
use super::config::{KafkaConfig, MessageFormat};
use super::dead_letter::{DeadLetter, DeadLetters};
use super::group::GroupContext;
use super::metrics::KafkaMetrics;
use crate::error::IngestError;
use crate::ingestor::{IngestBatch, Ingestor, MessageReport, Transport, retry_after};

#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    #[error("kafka settings: {0}")]
    Settings(#[from] super::client::ClientSettingError),
    #[error("cannot create the Kafka consumer (check kafka.brokers and kafka.client): {0}")]
    Consumer(#[source] rdkafka::error::KafkaError),
    #[error("cannot subscribe to {topics:?}: {source}")]
    Subscribe {
        topics: Vec<String>,
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

/// How long shutdown waits for the final commit and for leaving the group.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running member of the consumer group.
pub struct KafkaSource {
    config: KafkaConfig,
    consumer: Arc<StreamConsumer<GroupContext>>,
    dead_letters: DeadLetters,
    ingestor: Arc<Ingestor>,
    metrics: KafkaMetrics,
}

/// What became of one message of a batch.
enum Fate {
    Stored(MessageReport),
    Unreadable(IngestError),
}

impl KafkaSource {
    pub fn new(config: KafkaConfig, ingestor: Arc<Ingestor>) -> Result<Self, KafkaSourceError> {
        let metrics = ingestor.metrics().kafka.clone();
        let consumer: StreamConsumer<GroupContext> = consumer_config(&config)?
            .create_with_context(GroupContext::new(metrics.clone()))
            .map_err(KafkaSourceError::Consumer)?;
        let topics: Vec<&str> = config.topics.iter().map(|topic| topic.name.as_str()).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| KafkaSourceError::Subscribe {
                topics: topics.iter().map(|topic| topic.to_string()).collect(),
                source,
            })?;
        let dead_letters = DeadLetters::new(&config, metrics.clone())?;
        Ok(KafkaSource {
            config,
            consumer: Arc::new(consumer),
            dead_letters,
            ingestor,
            metrics,
        })
    }

    /// Consumes until `shutdown`, then commits what is durable and leaves the group.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let lag = tokio::spawn(report_lag(
            self.consumer.clone(),
            self.config.lag_interval,
            shutdown.clone(),
        ));
        let mut last_commit = Instant::now();
        while let Some(messages) = self.gather(&mut shutdown).await {
            if !messages.is_empty() && !self.store(&messages, &mut shutdown).await {
                break;
            }
            if last_commit.elapsed() >= self.config.commit_interval {
                last_commit = Instant::now();
                if let Err(error) = self.consumer.context().commit(&*self.consumer, CommitMode::Async) {
                    tracing::warn!(%error, "kafka offset commit failed; retried with the next one");
                }
            }
        }
        // The last commit and leaving the group talk to the broker with no deadline of
        // their own: bound them, so a broker that is down cannot stop a shutdown.
        let _ = lag.await;
        let consumer = self.consumer;
        let close = tokio::task::spawn_blocking(move || {
            let context = consumer.context().clone();
            if let Err(error) = context.commit(&*consumer, CommitMode::Sync) {
                tracing::warn!(%error, "final kafka offset commit failed; some events will be read again (and stored once)");
            }
            context.closing();
            consumer.unsubscribe();
            drop(consumer);
        });
        if tokio::time::timeout(CLOSE_TIMEOUT, close).await.is_err() {
            tracing::warn!(
                timeout = ?CLOSE_TIMEOUT,
                "kafka did not answer the final commit in time; stopping without it (uncommitted events will be read again and stored once)"
            );
        }
        tracing::info!("kafka source stopped");
    }

    /// The next batch: up to the configured size, or what arrived within
    /// `max_batch_wait` of its first message. Empty after `commit_interval` without
    /// messages (so offsets still get committed); `None` at shutdown.
    async fn gather(&self, shutdown: &mut watch::Receiver<bool>) -> Option<Vec<OwnedMessage>> {
        let first = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return None,
            received = tokio::time::timeout(self.config.commit_interval, self.consumer.recv()) => received,
        };
        let first = match first {
            Err(_elapsed) => return Some(Vec::new()),
            Ok(Err(error)) => {
                tracing::warn!(%error, "kafka receive failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Some(Vec::new());
            }
            Ok(Ok(message)) => message.detach(),
        };
        let deadline = tokio::time::Instant::now() + self.config.max_batch_wait;
        let mut bytes = first.payload().map_or(0, <[u8]>::len);
        let mut messages = vec![first];
        while messages.len() < self.config.max_batch_messages && bytes < self.config.max_batch_bytes {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(Ok(message)) => {
                    bytes += message.payload().map_or(0, <[u8]>::len);
                    messages.push(message.detach());
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "kafka receive failed");
                    break;
                }
                Err(_elapsed) => break,
            }
        }
        Some(messages)
    }

    /// Makes a batch durable and dead-letters what could not be read; `false` if
    /// shutdown came first (nothing of the batch is then marked durable).
    async fn store(&self, messages: &[OwnedMessage], shutdown: &mut watch::Receiver<bool>) -> bool {
        let verdicts = loop {
            match self.store_once(messages).await {
                Ok(verdicts) => break verdicts,
                Err(error) => {
                    self.ingestor.refused(Transport::Kafka, &error);
                    let delay = retry_after(&error).unwrap_or(Duration::from_secs(1));
                    tracing::warn!(%error, ?delay, "kafka batch not stored; retrying (offsets stay uncommitted)");
                    tokio::select! {
                        _ = shutdown.wait_for(|stop| *stop) => return false,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };
        // Counters and offsets move once per batch, not per message.
        let mut outcomes: BTreeMap<(&str, &'static str), u64> = BTreeMap::new();
        let mut bytes: BTreeMap<&str, u64> = BTreeMap::new();
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for (message, verdict) in messages.iter().zip(&verdicts) {
            let letter = match verdict {
                Fate::Stored(report) if report.rejected == 0 => None,
                Fate::Stored(report) => Some(DeadLetter::rejected(message, report)),
                Fate::Unreadable(error) => Some(DeadLetter::unreadable(message, error)),
            };
            let outcome = match letter {
                None => "stored",
                Some(letter) => {
                    if !self.dead_letters.send(letter, shutdown).await {
                        return false;
                    }
                    if self.dead_letters.enabled() {
                        "dead_letter"
                    } else {
                        "skipped"
                    }
                }
            };
            let topic = message.topic();
            *outcomes.entry((topic, outcome)).or_default() += 1;
            *bytes.entry(topic).or_default() += message.payload().map_or(0, <[u8]>::len) as u64;
            let offset = next.entry((topic, message.partition())).or_default();
            *offset = (*offset).max(message.offset() + 1);
        }
        for ((topic, outcome), count) in outcomes {
            self.metrics.messages_done(topic, outcome, count);
        }
        for (topic, count) in bytes {
            self.metrics
                .bytes
                .get_or_create(&vec![("topic", topic.to_string())])
                .inc_by(count);
        }
        let context = self.consumer.context();
        for ((topic, partition), next) in next {
            context.mark_durable(topic, partition, next);
        }
        true
    }

    /// One attempt at storing a batch. A message that does not decode may leave part
    /// of its records in the batch, so the batch is then built again without it.
    async fn store_once(&self, messages: &[OwnedMessage]) -> Result<Vec<Fate>, IngestError> {
        // Each topic has its own provenance (trust, hosts), so its own append.
        let mut by_topic: Vec<(&str, Vec<usize>)> = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            match by_topic.iter_mut().find(|(topic, _)| *topic == message.topic()) {
                Some((_, indices)) => indices.push(index),
                None => by_topic.push((message.topic(), vec![index])),
            }
        }
        let mut verdicts: Vec<Option<Fate>> = messages.iter().map(|_| None).collect();
        for (topic, indices) in by_topic {
            let provenance = || match self.config.topics.iter().find(|configured| configured.name == topic) {
                Some(configured) => configured.provenance(self.config.uses_tls()),
                None => Transport::Kafka.into(),
            };
            let mut batch = self.ingestor.batch(provenance());
            let mut topic_verdicts: Vec<Fate> = indices
                .iter()
                .map(|&index| self.add(&mut batch, &messages[index]))
                .collect();
            if topic_verdicts
                .iter()
                .any(|verdict| matches!(verdict, Fate::Unreadable(_)))
            {
                batch = self.ingestor.batch(provenance());
                for (&index, verdict) in indices.iter().zip(topic_verdicts.iter_mut()) {
                    if matches!(verdict, Fate::Stored(_)) {
                        *verdict = self.add(&mut batch, &messages[index]);
                    }
                }
            }
            batch.commit().await?;
            for (index, verdict) in indices.into_iter().zip(topic_verdicts) {
                verdicts[index] = Some(verdict);
            }
        }
        Ok(verdicts
            .into_iter()
            .map(|verdict| verdict.expect("every message is in its topic's group"))
            .collect())
    }

    fn add(&self, batch: &mut IngestBatch<'_>, message: &OwnedMessage) -> Fate {
        let Some(payload) = message.payload().filter(|payload| !payload.is_empty()) else {
            return Fate::Unreadable(IngestError::Undecodable("empty message (no payload)".into()));
        };
        // Subscribed topics are configured ones; a topic without a format cannot occur.
        let format = self.config.format_of(message.topic()).unwrap_or(MessageFormat::Json);
        let added = match format {
            MessageFormat::OtlpProto => batch.add_otlp_proto(payload),
            MessageFormat::OtlpJson => batch.add_otlp_json(payload),
            MessageFormat::Json => batch.add_flat_json(payload),
        };
        match added {
            Ok(report) => Fate::Stored(report),
            Err(error) => Fate::Unreadable(error),
        }
    }
}

/// Measures consumer lag every `interval` until shutdown.
async fn report_lag(
    consumer: Arc<StreamConsumer<GroupContext>>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let consumer = consumer.clone();
        // Blocking librdkafka calls, each bounded by the interval.
        let measured = tokio::task::spawn_blocking(move || {
            consumer
                .context()
                .refresh_lag(&*consumer, interval.max(Duration::from_secs(1)))
        });
        let _ = measured.await;
    }
}
