//! Starts and stops the pipeline's stages on one runtime.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use cordon_ingest::listener::Listeners;
use cordon_ingest::storage::EventStore;
use cordon_ingest::{IngestMetrics, Ingestor};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{ApiState, auth::Tokens};
use crate::config::Config;
use crate::ingest_stage::{RunningSources, open_store, start_sources};
use cordon_detections::alerts::AlertStore;
use cordon_detections::service::{AlertListener, DetectionService};
use cordon_detections::{DetectionMetrics, settings::RuleSettings};
use cordon_responder::{Responder, ResponderMetrics};

/// A running Cordon server.
pub struct Server {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub ingestor: Arc<Ingestor>,
    pub detections: Arc<DetectionService>,
    pub responder: Arc<Responder>,
    pub metrics: IngestMetrics,
    pub registry: Arc<Registry>,
    shutdown: watch::Sender<bool>,
    sources: RunningSources,
    storage: JoinHandle<()>,
    engine: JoinHandle<()>,
    responder_task: JoinHandle<()>,
    response_events: Option<JoinHandle<()>>,
    signal_task: JoinHandle<()>,
    publisher: Option<JoinHandle<()>>,
    api: JoinHandle<()>,
}

impl Server {
    /// Opens storage (replaying its log), then starts every source.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        config.validate()?;
        let keys = match &config.signatures.keys_file {
            Some(path) => {
                cordon_schemas::signature::KeyRegistry::load(path).context("cannot read signatures.keys_file")?
            }
            None => cordon_schemas::signature::KeyRegistry::new(),
        };
        tracing::info!(keys = keys.len(), "signature key registry loaded");
        if keys.unbound() > 0 {
            tracing::warn!(
                unbound = keys.unbound(),
                "signature keys bound to no host can sign for any host: add each key's hosts (signatures.keys_file, third field)"
            );
        }
        let mut registry = Registry::default();
        let stages = cordon_schemas::stage_metrics::StageMetrics::default();
        stages.register(&mut registry);
        let metrics = IngestMetrics::with_stages(&stages);
        metrics.register(&mut registry);
        let auth = crate::trust_boundary::producer_authenticator(&config, &metrics)?;
        let store = open_store(&config, &metrics).await?;
        let ingestor = Arc::new(
            Ingestor::new(store.clone(), metrics.clone())
                .with_authenticator(auth)
                .with_content_policy(crate::content_policy::content_policy(&config)?)
                .with_keys(Arc::new(keys))
                .with_max_clock_skew(config.detections.max_clock_skew)
                .with_time_bounds(config.limits.time_bounds()),
        );
        let (shutdown, shutdown_receiver) = watch::channel(false);

        // Detections start before any source, so every batch stored from now on
        // reaches them, and the recent past is replayed into their windows first.
        let detection_metrics = DetectionMetrics::with_stages(&stages);
        detection_metrics.register(&mut registry);
        let warmup = recent_events(&store, &config).await?;
        // The alert store is the detections' output and the responder's feed: opened
        // first, so the responder exists before the first alert and is woken by it.
        let alerts = Arc::new(
            AlertStore::open(&config.alerts_db(), config.detections.evidence_cap)
                .context("cannot open the alert store")?,
        );
        let responder_metrics = ResponderMetrics::default();
        responder_metrics.register(&mut registry);
        let responder = Responder::open(
            config.responder.clone(),
            &config.responder_db(),
            alerts.clone(),
            responder_metrics,
        )
        .context("cannot start the responder")?;
        responder.set_enricher(Arc::new(crate::token_lookup::StoredTokens::new(
            store.clone(),
            tokio::runtime::Handle::current(),
        )));
        let wake_responder: AlertListener = {
            let responder = responder.clone();
            Arc::new(move |_alert, _rule, created| {
                if created {
                    responder.wake();
                }
            })
        };
        let (signal_sink, signal_events) = tokio::sync::mpsc::unbounded_channel();
        let (detections, engine) = DetectionService::start(
            config.detections.clone(),
            alerts,
            detection_metrics,
            warmup,
            vec![wake_responder],
            Some(signal_sink),
            shutdown_receiver.clone(),
        )
        .await
        .context("cannot start detections")?;
        let detections = Arc::new(detections);
        let responder_task = responder.start(detections.shared.clone(), shutdown_receiver.clone());
        let publisher = crate::alert_publisher::AlertPublisher::new(
            &config.kafka,
            detections.alerts.clone(),
            &config.storage.data_dir,
            metrics.kafka.clone(),
        )?
        .map(|publisher| tokio::spawn(publisher.run(shutdown_receiver.clone())));
        {
            let detections = detections.clone();
            store.add_listener(Arc::new(move |batch| detections.submit(batch)));
        }
        let signal_task = tokio::spawn(crate::signal_events::run(
            signal_events,
            ingestor.clone(),
            detections.metrics.queued_events.clone(),
        ));
        let response_events = config.responder.outcome_events.then(|| {
            tokio::spawn(crate::response_events::run(
                responder.clone(),
                ingestor.clone(),
                shutdown_receiver.clone(),
            ))
        });
        let tokens = Arc::new(Tokens::load(&config.api.tokens)?);
        if tokens.is_empty() {
            tracing::warn!("no API tokens: every API call will get 401; add [[api.tokens]] or set CORDON_ADMIN_TOKEN");
        }
        let hunt_metrics = crate::api::hunt_pool::HuntMetrics::default();
        hunt_metrics.register(&mut registry);
        let registry = Arc::new(registry);
        let hunts = crate::api::hunt_pool::HuntPool::start(config.api.hunt.clone(), hunt_metrics)
            .context("cannot start the hunt runtime")?;
        let api_state = ApiState {
            registry: registry.clone(),
            store: store.clone(),
            hunts,
            alerts: detections.alerts.clone(),
            rules: detections.shared.clone(),
            responder: responder.clone(),
            tokens,
        };
        let api_listener = tokio::net::TcpListener::bind(config.api.listen)
            .await
            .with_context(|| format!("cannot listen on {} (api.listen)", config.api.listen))?;
        let api_addr = api_listener.local_addr()?;
        let listeners = Listeners::new(config.listeners.clone(), metrics.listeners.clone());
        let api_tls = config
            .api
            .tls
            .as_ref()
            .map(|tls| cordon_ingest::listener::ReloadingTls::load("api", tls))
            .transpose()
            .context("invalid setting api.tls")?;
        let api = {
            let serve = listeners.serve(
                "api",
                api_listener,
                crate::api::router(api_state),
                None,
                api_tls,
                shutdown_receiver.clone(),
            );
            tokio::spawn(async move {
                if let Err(error) = serve.await {
                    tracing::error!(%error, "API server failed");
                }
            })
        };
        let sources = start_sources(&ingestor, &config, &listeners, shutdown_receiver.clone()).await?;
        let storage = tokio::spawn(store.run_background(shutdown_receiver));
        Ok(Server {
            grpc_addr: sources.grpc_addr,
            http_addr: sources.http_addr,
            api_addr,
            ingestor,
            detections,
            responder,
            metrics,
            registry,
            shutdown,
            sources,
            storage,
            engine,
            responder_task,
            response_events,
            signal_task,
            publisher,
            api,
        })
    }

    pub fn store(&self) -> &Arc<EventStore> {
        self.ingestor.store()
    }

    /// Stops the sources, then writes everything buffered to Parquet.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.sources.join().await?;
        if let Some(feed) = self.response_events {
            feed.await.context("response events task panicked")?;
        }
        self.storage.await.context("storage task panicked")?;
        self.engine.await.context("detection task panicked")?;
        self.signal_task.await.context("signal task panicked")?;
        self.responder_task.await.context("responder task panicked")?;
        if let Some(publisher) = self.publisher {
            publisher.await.context("alert publisher panicked")?;
        }
        self.api.await.context("API task panicked")?;
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

/// Stored events recent enough to matter to a rule window (the longest window plus
/// the lateness, by event time or by arrival: a laptop's buffered events are old but
/// recently arrived), in arrival order, so a restart rebuilds the windows and clocks
/// it had.
async fn recent_events(
    store: &Arc<EventStore>,
    config: &Config,
) -> anyhow::Result<Vec<arrow::record_batch::RecordBatch>> {
    let longest = cordon_detections::rule::rule_dirs(&config.detections.rules_dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|dir| RuleSettings::load(&dir.join(cordon_detections::rule::SETTINGS_FILE)).ok())
        .map(|settings| match config.detections.window_override {
            Some(window) if !settings.window.is_zero() => window,
            _ => settings.window,
        })
        .max()
        .unwrap_or_default();
    let span = longest + config.detections.lateness + config.detections.max_clock_skew;
    let since = chrono::Utc::now() - chrono::Duration::from_std(span)?;
    let snapshot = store.snapshot()?;
    let context = datafusion::prelude::SessionContext::new();
    cordon_ingest::catalog::register_event_tables(&context, snapshot).await?;
    let sql = format!(
        "SELECT * FROM events WHERE time >= to_timestamp_nanos({since}) OR received_time >= to_timestamp_nanos({since}) \
         ORDER BY received_time, time",
        since = since.timestamp_nanos_opt().unwrap_or(0)
    );
    Ok(context.sql(&sql).await?.collect().await?)
}
