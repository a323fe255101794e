//! Publishes each new alert to a Kafka topic (`kafka.alerts_topic`), one JSON alert per
//! message keyed by `host.id`, for downstream SIEMs.
//!
//! At least once: its cursor in the alert feed (consumer `kafka-alerts`) moves only
//! after Kafka acknowledged a batch, so a crash sends at most one batch again (same
//! alert `id`s) and never skips one. Alerts are sent as created; later updates (more
//! matches folded in) stay in the API.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cordon_ingest::kafka::{KafkaConfig, KafkaMetrics, client::producer_config};
use cordon_schemas::AlertFeed;
use cordon_schemas::retry::Backoff;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;

const BATCH: usize = 100;

/// The publisher's cursor in the alert feed.
pub const FEED_CONSUMER: &str = "kafka-alerts";
const POLL: Duration = Duration::from_millis(500);
/// Waits between tries to publish one alert.
const RETRY: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(8));

pub struct AlertPublisher {
    producer: FutureProducer,
    topic: String,
    alerts: Arc<dyn AlertFeed>,
    /// Where releases before the alert feed kept the position (read once, if present).
    legacy_position: PathBuf,
    metrics: KafkaMetrics,
}

impl AlertPublisher {
    /// `None` unless `kafka.alerts_topic` is set.
    pub fn new(
        config: &KafkaConfig,
        alerts: Arc<dyn AlertFeed>,
        data_dir: &Path,
        metrics: KafkaMetrics,
    ) -> anyhow::Result<Option<AlertPublisher>> {
        if config.alerts_topic.is_empty() {
            return Ok(None);
        }
        let producer = producer_config(config)?
            .create()
            .context("cannot create the Kafka producer for kafka.alerts_topic")?;
        Ok(Some(AlertPublisher {
            producer,
            topic: config.alerts_topic.clone(),
            alerts,
            legacy_position: data_dir.join("kafka-alerts.position"),
            metrics,
        }))
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut position = match self.start_position() {
            Ok(position) => position,
            Err(error) => {
                tracing::error!(%error, "cannot read the alert-publishing cursor; alerts are not published to Kafka");
                return;
            }
        };
        let mut saved = position;
        tracing::info!(topic = %self.topic, position, "publishing alerts to Kafka");
        loop {
            let batch = match self.alerts.created_after(position, BATCH) {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::error!(%error, "cannot read alerts to publish; retrying");
                    Vec::new()
                }
            };
            let full = batch.len() == BATCH;
            for (next, alert) in batch {
                let key = alert.host_id.clone().unwrap_or_default();
                let payload = serde_json::to_vec(&alert).expect("alerts serialize");
                let mut attempt = 0u32;
                loop {
                    let record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
                    match self.producer.send(record, Duration::from_secs(10)).await {
                        Ok(_) => {
                            self.metrics
                                .alerts_published
                                .get_or_create(&vec![("result", "ok")])
                                .inc();
                            break;
                        }
                        Err((error, _)) => {
                            self.metrics
                                .alerts_published
                                .get_or_create(&vec![("result", "error")])
                                .inc();
                            attempt += 1;
                            let delay = RETRY.delay(attempt);
                            tracing::warn!(%error, topic = %self.topic, alert = %alert.id, ?delay, "cannot publish alert; retrying");
                            tokio::select! {
                                _ = shutdown.wait_for(|stop| *stop) => return,
                                _ = tokio::time::sleep(delay) => {}
                            }
                        }
                    }
                }
                position = next;
            }
            // Saved once per batch (an fsync): a crash resends at most one batch.
            if position != saved {
                match self.alerts.set_cursor(FEED_CONSUMER, position) {
                    Ok(()) => saved = position,
                    Err(error) => {
                        tracing::error!(%error, "cannot save the alert-publishing cursor; alerts after a restart may be sent again")
                    }
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

impl AlertPublisher {
    /// The feed cursor; on the first start after an upgrade, the position file the
    /// publisher kept before, carried into the feed.
    fn start_position(&self) -> anyhow::Result<i64> {
        if let Some(position) = self.alerts.cursor(FEED_CONSUMER)? {
            return Ok(position);
        }
        let legacy = read_position(&self.legacy_position);
        if legacy > 0 {
            self.alerts.set_cursor(FEED_CONSUMER, legacy)?;
            tracing::info!(
                position = legacy,
                "alert-publishing position carried over to the alert feed"
            );
        }
        Ok(legacy)
    }
}

/// The position a release before the alert feed wrote (0 when there is none).
fn read_position(path: &Path) -> i64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_legacy_position_is_read_and_a_missing_one_is_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kafka-alerts.position");
        assert_eq!(read_position(&path), 0);
        std::fs::write(&path, "42").unwrap();
        assert_eq!(read_position(&path), 42);
    }
}
