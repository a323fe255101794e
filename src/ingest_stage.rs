//! The pipeline's first stage on its own: storage and the sources that feed it.
//!
//! `Server` wires detections, the responder and the API around it; `bench ingest`
//! runs it bare too, to measure the ingest path apart from what the later stages cost.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use cordon_ingest::listener::Listeners;
use cordon_ingest::sources::{SourceContext, SourcesConfig, start_all};
use cordon_ingest::storage::EventStore;
use cordon_ingest::{IngestMetrics, Ingestor};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;

/// Opens storage, replaying its write-ahead log.
pub async fn open_store(config: &Config, metrics: &IngestMetrics) -> anyhow::Result<Arc<EventStore>> {
    let storage_config = config.storage.clone();
    let retry_after = config.otlp.retry_after;
    let store_metrics = metrics.clone();
    tokio::task::spawn_blocking(move || EventStore::open(storage_config, store_metrics, retry_after, vec![]))
        .await?
        .with_context(|| format!("cannot open storage in {}", config.storage.data_dir.display()))
}

/// Sources that are running, and the addresses the OTLP ones listen on.
pub struct RunningSources {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl RunningSources {
    pub async fn join(self) -> anyhow::Result<()> {
        for (name, task) in self.tasks {
            task.await.with_context(|| format!("source {name} panicked"))?;
        }
        Ok(())
    }
}

/// Starts every configured source; each runs until `shutdown` turns true.
pub async fn start_sources(
    ingestor: &Arc<Ingestor>,
    config: &Config,
    listeners: &Listeners,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<RunningSources> {
    let context = SourceContext {
        ingestor: ingestor.clone(),
        config: SourcesConfig {
            otlp: config.otlp.clone(),
            kafka: config.kafka.clone(),
        },
        listeners: listeners.clone(),
        shutdown,
    };
    let mut running = RunningSources {
        grpc_addr: config.otlp.grpc_listen,
        http_addr: config.otlp.http_listen,
        tasks: Vec::new(),
    };
    for source in start_all(context).await? {
        match (source.name, source.local_addr) {
            ("otlp_grpc", Some(addr)) => running.grpc_addr = addr,
            ("otlp_http", Some(addr)) => running.http_addr = addr,
            _ => {}
        }
        let task = source.task;
        running.tasks.push((
            source.name,
            tokio::spawn(async move {
                if let Err(error) = task.await {
                    tracing::error!(%error, "source failed");
                }
            }),
        ));
    }
    Ok(running)
}

/// Storage and sources without the later stages: what `bench ingest` measures.
pub struct IngestStage {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub metrics: IngestMetrics,
    shutdown: watch::Sender<bool>,
    sources: RunningSources,
    storage: JoinHandle<()>,
}

impl IngestStage {
    pub async fn start(config: &Config) -> anyhow::Result<IngestStage> {
        config.validate()?;
        let metrics = IngestMetrics::default();
        let store = open_store(config, &metrics).await?;
        let auth = crate::trust_boundary::producer_authenticator(config, &metrics)?;
        let ingestor = Arc::new(
            Ingestor::new(store.clone(), metrics.clone())
                .with_authenticator(auth)
                .with_content_policy(crate::content_policy::content_policy(config)?)
                .with_max_clock_skew(config.detections.max_clock_skew)
                .with_time_bounds(config.limits.time_bounds()),
        );
        let (shutdown, receiver) = watch::channel(false);
        let listeners = Listeners::new(config.listeners.clone(), metrics.listeners.clone());
        let sources = start_sources(&ingestor, config, &listeners, receiver.clone()).await?;
        let storage = tokio::spawn(store.run_background(receiver));
        Ok(IngestStage {
            grpc_addr: sources.grpc_addr,
            http_addr: sources.http_addr,
            metrics,
            shutdown,
            sources,
            storage,
        })
    }

    /// Stops the sources, then writes everything buffered to Parquet.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.sources.join().await?;
        self.storage.await.context("storage task panicked")
    }
}
