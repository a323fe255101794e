//! Starts and stops the pipeline's stages on one runtime.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use cordon_ingest::sources::{SourceContext, SourcesConfig, start_all};
use cordon_ingest::storage::EventStore;
use cordon_ingest::{IngestMetrics, Ingestor};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;

/// A running Cordon server.
pub struct Server {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub ingestor: Arc<Ingestor>,
    pub metrics: IngestMetrics,
    pub registry: Arc<Registry>,
    shutdown: watch::Sender<bool>,
    sources: Vec<(&'static str, JoinHandle<()>)>,
    storage: JoinHandle<()>,
}

impl Server {
    /// Opens storage (replaying its log), then starts every source.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        config.validate()?;
        let metrics = IngestMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let storage_config = config.storage.clone();
        let retry_after = config.otlp.retry_after;
        let store_metrics = metrics.clone();
        let store =
            tokio::task::spawn_blocking(move || EventStore::open(storage_config, store_metrics, retry_after, vec![]))
                .await?
                .with_context(|| format!("cannot open storage in {}", config.storage.data_dir.display()))?;
        let ingestor = Arc::new(Ingestor::new(store.clone(), metrics.clone()));
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let context = SourceContext {
            ingestor: ingestor.clone(),
            config: SourcesConfig {
                otlp: config.otlp.clone(),
            },
            shutdown: shutdown_receiver.clone(),
        };
        let running = start_all(context).await?;
        let mut grpc_addr = config.otlp.grpc_listen;
        let mut http_addr = config.otlp.http_listen;
        let mut sources = Vec::new();
        for source in running {
            match (source.name, source.local_addr) {
                ("otlp_grpc", Some(addr)) => grpc_addr = addr,
                ("otlp_http", Some(addr)) => http_addr = addr,
                _ => {}
            }
            let name = source.name;
            let task = source.task;
            sources.push((
                name,
                tokio::spawn(async move {
                    if let Err(error) = task.await {
                        tracing::error!(%error, "source failed");
                    }
                }),
            ));
        }
        let storage = tokio::spawn(store.run_background(shutdown_receiver));
        Ok(Server {
            grpc_addr,
            http_addr,
            ingestor,
            metrics,
            registry: Arc::new(registry),
            shutdown,
            sources,
            storage,
        })
    }

    pub fn store(&self) -> &Arc<EventStore> {
        self.ingestor.store()
    }

    /// Stops the sources, then writes everything buffered to Parquet.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        for (name, task) in self.sources {
            task.await.with_context(|| format!("source {name} panicked"))?;
        }
        self.storage.await.context("storage task panicked")?;
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
