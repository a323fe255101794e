//! Every HTTP and gRPC listener (OTLP/gRPC, OTLP/HTTP with OPA, the API) is served
//! here, under one set of limits: connections per listener, header, body and idle
//! timeouts, HTTP/2 streams per connection, and one memory budget for request bodies.
//! hyper's own server settings do most of it; what hyper has no setting for (idle
//! connections, body deadlines, the budget) is the three modules below.

mod activity;
mod body;
mod budget;
mod config;
mod metrics;
mod tls;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures::future::BoxFuture;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

pub use body::{BodyLimitError, OVER_BUDGET_RETRY};
pub use budget::{MemoryBudget, OverBudget, RequestCharge};
pub use config::ListenerConfig;
pub use metrics::ListenerMetrics;
pub use tls::{ReloadingTls, TlsConfig, TlsError, certificate_subjects};

use crate::auth::ConnectionInfo;

use activity::{Activity, Tracked};
use body::{Guarded, LimitedBody};

/// How long connections get to finish their requests at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// HTTP/2 flow-control windows: bytes a connection and one request may have in flight
/// before Cordon reads them.
#[derive(Debug, Clone, Copy)]
pub struct Http2Windows {
    pub stream: u32,
    pub connection: u32,
}

/// The limits, their metrics and the shared memory budget, for every listener.
#[derive(Clone)]
pub struct Listeners {
    config: ListenerConfig,
    metrics: ListenerMetrics,
    budget: MemoryBudget,
}

impl Listeners {
    pub fn new(config: ListenerConfig, metrics: ListenerMetrics) -> Listeners {
        let budget = MemoryBudget::new(config.memory_budget_bytes, metrics.clone());
        Listeners {
            config,
            metrics,
            budget,
        }
    }

    pub fn metrics(&self) -> &ListenerMetrics {
        &self.metrics
    }

    /// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown`
    /// turns true, then gives connections `SHUTDOWN_GRACE` to finish.
    pub fn serve(
        &self,
        name: &'static str,
        listener: TcpListener,
        router: Router,
        windows: Option<Http2Windows>,
        tls: Option<Arc<ReloadingTls>>,
        mut shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, io::Result<()>> {
        let this = self.clone();
        Box::pin(async move {
            if let Some(tls) = &tls {
                tokio::spawn(tls.clone().watch(this.metrics.clone(), shutdown.clone()));
            }
            let slots = Arc::new(Semaphore::new(this.config.max_connections));
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let Ok(slot) = slots.clone().try_acquire_owned() else {
                                // Closed at once, so the backlog does not fill with
                                // connections nobody will serve.
                                this.metrics.closed(name, "over_connection_cap");
                                drop(stream);
                                continue;
                            };
                            let connection = this.clone().connection(name, stream, router.clone(), windows, tls.clone(), slot, shutdown.clone());
                            connections.spawn(connection);
                        }
                        Err(error) => {
                            // Out of file descriptors, usually: wait rather than spin.
                            tracing::warn!(listener = name, %error, "cannot accept a connection; retrying in 100 ms");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    _ = stopped(&mut shutdown) => break,
                }
            }
            drop(listener);
            let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
                while connections.join_next().await.is_some() {}
            });
            if drained.await.is_err() {
                tracing::warn!(
                    listener = name,
                    "connections still open after the shutdown grace; closing them"
                );
                connections.shutdown().await;
            }
            Ok(())
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn connection(
        self,
        name: &'static str,
        stream: TcpStream,
        router: Router,
        windows: Option<Http2Windows>,
        tls: Option<Arc<ReloadingTls>>,
        _slot: OwnedSemaphorePermit,
        shutdown: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        let open = self
            .metrics
            .connections
            .get_or_create(&vec![("listener", name)])
            .clone();
        open.inc();
        let activity = Activity::new();
        let tracked = Tracked::new(stream, activity.clone());
        let plain = ConnectionInfo::default();
        match tls {
            None => {
                self.serve_connection(name, tracked, plain, router, windows, activity, shutdown)
                    .await
            }
            // The handshake gets the header timeout: a client that opens a socket and
            // sends nothing holds a slot no longer over TLS than without.
            Some(tls) => match tokio::time::timeout(self.config.header_timeout, tls.acceptor().accept(tracked)).await {
                Ok(Ok(stream)) => {
                    let subjects = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|leaf| certificate_subjects(leaf))
                        .unwrap_or_default();
                    let info = ConnectionInfo {
                        tls: true,
                        client_subjects: subjects.into(),
                    };
                    self.serve_connection(name, stream, info, router, windows, activity, shutdown)
                        .await
                }
                Ok(Err(error)) => {
                    self.metrics.closed(name, "tls_handshake");
                    tracing::debug!(listener = name, %error, "TLS handshake failed");
                }
                Err(_) => self.metrics.closed(name, "tls_handshake_timeout"),
            },
        }
        open.dec();
    }

    #[allow(clippy::too_many_arguments)]
    async fn serve_connection<S>(
        &self,
        name: &'static str,
        stream: S,
        info: ConnectionInfo,
        router: Router,
        windows: Option<Http2Windows>,
        activity: Arc<Activity>,
        mut shutdown: watch::Receiver<bool>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(stream);
        let builder = self.builder(windows);
        let service = {
            let this = self.clone();
            let activity = activity.clone();
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let under_way = activity.request();
                let charge = this.budget.charge(name);
                let (mut parts, body) = request.into_parts();
                parts.extensions.insert(charge.clone());
                parts.extensions.insert(info.clone());
                let body = LimitedBody::new(
                    body,
                    this.config.body_timeout,
                    charge.clone(),
                    name,
                    this.metrics.clone(),
                );
                let request = hyper::Request::from_parts(parts, axum::body::Body::new(body));
                let router = router.clone();
                async move {
                    let response = router.oneshot(request).await.unwrap_or_else(|never| match never {});
                    Ok::<_, std::convert::Infallible>(response.map(|body| Guarded::new(body, (under_way, charge))))
                }
            })
        };
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        let tick = (self.config.idle_timeout / 4).min(Duration::from_secs(1));
        let mut closing = false;
        let result = loop {
            tokio::select! {
                result = connection.as_mut() => break result,
                _ = tokio::time::sleep(tick), if !closing => {
                    if activity.idle_for() >= self.config.idle_timeout {
                        self.metrics.closed(name, "idle");
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
                _ = stopped(&mut shutdown), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        };
        if let Err(error) = result
            && error
                .downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_timeout)
        {
            self.metrics.closed(name, "header_timeout");
        }
    }

    fn builder(&self, windows: Option<Http2Windows>) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.config.header_timeout);
        let mut http2 = builder.http2();
        http2
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.config.http2_max_streams)
            .max_header_list_size(64 << 10);
        if let Some(windows) = windows {
            http2
                .initial_stream_window_size(windows.stream)
                .initial_connection_window_size(windows.connection);
        }
        builder
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
