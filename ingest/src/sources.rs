//! The registry of sources. Adding a source is one module and one line in `sources()`.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::config::OtlpConfig;
use crate::ingestor::Ingestor;
use crate::kafka::{KafkaConfig, KafkaSource};
use crate::listener::{Listeners, ReloadingTls};
use crate::{falco, json_upload, opa, otlp};

/// Settings every source can read.
#[derive(Debug, Clone, Default)]
pub struct SourcesConfig {
    pub otlp: OtlpConfig,
    pub kafka: KafkaConfig,
}

/// What a source is started with.
#[derive(Clone)]
pub struct SourceContext {
    pub ingestor: Arc<Ingestor>,
    pub config: SourcesConfig,
    /// The limits every HTTP and gRPC listener is served under.
    pub listeners: Listeners,
    pub shutdown: watch::Receiver<bool>,
}

/// A started source: where it listens, and the future that runs it until shutdown.
pub struct RunningSource {
    pub name: &'static str,
    pub local_addr: Option<SocketAddr>,
    pub task: BoxFuture<'static, Result<(), SourceError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "source {name}: cannot listen on {addr}: {source} (is another process using the port? set another address in the config)"
    )]
    Bind {
        name: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("source {name} cannot start: {message}")]
    Setup { name: &'static str, message: String },
    #[error("source {name} stopped: {message}")]
    Stopped { name: &'static str, message: String },
}

/// Starts a source; `None` when its config leaves it off.
pub type StartSource = fn(SourceContext) -> BoxFuture<'static, Result<Option<RunningSource>, SourceError>>;

/// Every source Cordon has.
pub fn sources() -> Vec<(&'static str, StartSource)> {
    vec![
        ("otlp_grpc", start_otlp_grpc),
        ("otlp_http", start_otlp_http),
        ("kafka", start_kafka),
    ]
}

/// Starts every source; fails if any cannot start.
pub async fn start_all(context: SourceContext) -> Result<Vec<RunningSource>, SourceError> {
    let mut running = Vec::new();
    for (_, start) in sources() {
        if let Some(source) = start(context.clone()).await? {
            tracing::info!(source = source.name, addr = ?source.local_addr, "source listening");
            running.push(source);
        }
    }
    Ok(running)
}

/// A listening source whose `serve` future runs until shutdown.
fn running<E: std::fmt::Display + 'static>(
    name: &'static str,
    local: SocketAddr,
    serve: BoxFuture<'static, Result<(), E>>,
) -> RunningSource {
    let task = Box::pin(async move {
        serve.await.map_err(|error| SourceError::Stopped {
            name,
            message: error.to_string(),
        })
    });
    RunningSource {
        name,
        local_addr: Some(local),
        task,
    }
}

fn bind_failed(name: &'static str, addr: SocketAddr) -> impl FnOnce(std::io::Error) -> SourceError {
    move |source| SourceError::Bind { name, addr, source }
}

/// The OTLP listeners' TLS, if configured; a setting that cannot serve stops the start.
fn load_tls(name: &'static str, config: &OtlpConfig) -> Result<Option<Arc<ReloadingTls>>, SourceError> {
    config
        .tls
        .as_ref()
        .map(|tls| ReloadingTls::load(name, tls))
        .transpose()
        .map_err(|error| SourceError::Setup {
            name,
            message: format!("otlp.tls: {error}"),
        })
}

fn start_otlp_grpc(context: SourceContext) -> BoxFuture<'static, Result<Option<RunningSource>, SourceError>> {
    Box::pin(async move {
        let name = "otlp_grpc";
        let config = &context.config.otlp;
        let tls = load_tls(name, config)?;
        let (local, serve) = otlp::grpc::bind(
            config,
            context.ingestor.clone(),
            &context.listeners,
            tls,
            context.shutdown.clone(),
        )
        .await
        .map_err(bind_failed(name, config.grpc_listen))?;
        Ok(Some(running(name, local, serve)))
    })
}

fn start_otlp_http(context: SourceContext) -> BoxFuture<'static, Result<Option<RunningSource>, SourceError>> {
    Box::pin(async move {
        let name = "otlp_http";
        let config = &context.config.otlp;
        let limits = otlp::http::HttpLimits {
            max_request_bytes: config.max_request_bytes,
            max_decompressed_bytes: config.max_decompressed_bytes,
        };
        // The JSON uploads (OPA's decision logs, Falco's alerts) share the OTLP/HTTP
        // listener (contract section 1).
        let router = [opa::OPA_LOGS, falco::FALCO].into_iter().fold(
            otlp::http::router(context.ingestor.clone(), limits),
            |router, source| router.merge(json_upload::router(source, context.ingestor.clone(), limits)),
        );
        let tls = load_tls(name, config)?;
        let (local, serve) = otlp::http::bind(
            config.http_listen,
            router,
            &context.listeners,
            tls,
            context.shutdown.clone(),
        )
        .await
        .map_err(bind_failed(name, config.http_listen))?;
        Ok(Some(running(name, local, serve)))
    })
}

fn start_kafka(context: SourceContext) -> BoxFuture<'static, Result<Option<RunningSource>, SourceError>> {
    Box::pin(async move {
        let name = "kafka";
        let config = context.config.kafka.clone();
        if !config.enabled {
            return Ok(None);
        }
        let source = KafkaSource::new(config, context.ingestor.clone()).map_err(|error| SourceError::Setup {
            name,
            message: error.to_string(),
        })?;
        let task = Box::pin(async move {
            source.run(context.shutdown).await;
            Ok(())
        });
        Ok(Some(RunningSource {
            name,
            local_addr: None,
            task,
        }))
    })
}
