//! What the listener limits did, for dashboards and alerts on abuse.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

#[derive(Clone, Default)]
pub struct ListenerMetrics {
    /// Open connections, by listener.
    pub connections: Family<Labels, Gauge>,
    /// Connections closed by a limit, by listener and reason (`idle`,
    /// `over_connection_cap`, `header_timeout`).
    pub closed: Family<Labels, Counter>,
    /// Requests stopped by a limit, by listener and reason (`body_timeout`,
    /// `over_memory_budget`).
    pub limited: Family<Labels, Counter>,
    /// Bytes of the request memory budget in use.
    pub budget_bytes: Gauge,
    /// TLS certificate reloads, by listener and outcome (`loaded`, `failed`).
    pub tls_reloads: Family<Labels, Counter>,
}

impl ListenerMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cordon_listener_connections",
            "Open connections, by listener",
            self.connections.clone(),
        );
        registry.register(
            "cordon_listener_connections_closed",
            "Connections closed by a listener limit, by listener and reason",
            self.closed.clone(),
        );
        registry.register(
            "cordon_listener_requests_limited",
            "Requests stopped by a listener limit, by listener and reason",
            self.limited.clone(),
        );
        registry.register(
            "cordon_request_memory_bytes",
            "Bytes of request bodies (decompressed included) held, of listeners.memory_budget_bytes",
            self.budget_bytes.clone(),
        );
        registry.register(
            "cordon_listener_tls_reloads",
            "TLS certificate reloads after the files changed, by listener and outcome (failed: the last good one is kept)",
            self.tls_reloads.clone(),
        );
    }

    pub fn tls_reloaded(&self, listener: &'static str, outcome: &'static str) {
        self.tls_reloads
            .get_or_create(&vec![("listener", listener), ("outcome", outcome)])
            .inc();
    }

    pub fn closed(&self, listener: &'static str, reason: &'static str) {
        self.closed
            .get_or_create(&vec![("listener", listener), ("reason", reason)])
            .inc();
    }

    pub fn limited(&self, listener: &'static str, reason: &'static str) {
        self.limited
            .get_or_create(&vec![("listener", listener), ("reason", reason)])
            .inc();
    }
}
