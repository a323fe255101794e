//! What the detection service's tests share: the service started over an in-memory
//! alert store.

use std::sync::Arc;

use cordon_detections::DetectionMetrics;
use cordon_detections::alerts::AlertStore;
use cordon_detections::service::{AlertListener, DetectionConfig, DetectionService};

/// The service under `config`, each alert told to `listeners`; the sender stops it
/// when dropped.
pub async fn start_service(
    config: DetectionConfig,
    listeners: Vec<AlertListener>,
) -> (DetectionService, DetectionMetrics, tokio::sync::watch::Sender<bool>) {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let metrics = DetectionMetrics::default();
    let (service, _engine) = DetectionService::start(
        config,
        Arc::new(AlertStore::in_memory()),
        metrics.clone(),
        Vec::new(),
        listeners,
        None,
        shutdown,
    )
    .await
    .unwrap();
    (service, metrics, stop)
}
