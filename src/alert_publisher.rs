//! Publishes each new alert to a Kafka topic (`kafka.alerts_topic`), one JSON alert per
//! message keyed by `host.id`, for downstream SIEMs.
//!
//! At least once: the position of the last alert Kafka acknowledged is kept in the data
//! directory and moved only after the acknowledgements of a batch, so a crash sends at
//! most one batch again (same alert `id`s) and never skips one. Alerts are sent as created; later
//! updates (more matches folded in) stay in the API.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cordon_detections::alerts::AlertStore;
use cordon_ingest::kafka::{KafkaConfig, KafkaMetrics, client::producer_config};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;

const BATCH: usize = 100;
const POLL: Duration = Duration::from_millis(500);

pub struct AlertPublisher {
    producer: FutureProducer,
    topic: String,
    alerts: Arc<AlertStore>,
    cursor: PathBuf,
    metrics: KafkaMetrics,
}

impl AlertPublisher {
    /// `None` unless `kafka.alerts_topic` is set.
    pub fn new(
        config: &KafkaConfig,
        alerts: Arc<AlertStore>,
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
            cursor: data_dir.join("kafka-alerts.position"),
            metrics,
        }))
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut position = read_position(&self.cursor);
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
                            let delay = Duration::from_millis((250u64 << attempt.min(5)).min(8_000));
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
                match write_position(&self.cursor, position) {
                    Ok(()) => saved = position,
                    Err(error) => {
                        tracing::error!(%error, path = %self.cursor.display(), "cannot save the alert-publishing position; alerts after a restart may be sent again")
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

fn read_position(path: &Path) -> i64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Writes the position durably: a temporary file, fsynced, renamed over the old one.
fn write_position(path: &Path, position: i64) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(position.to_string().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_survives_a_rewrite_and_defaults_to_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kafka-alerts.position");
        assert_eq!(read_position(&path), 0);
        write_position(&path, 41).unwrap();
        write_position(&path, 42).unwrap();
        assert_eq!(read_position(&path), 42);
    }
}
