//! The REST API (contract section 8): bearer tokens with roles on every route.

pub mod actions;
pub mod alerts;
pub mod auth;
pub mod config;
pub mod console;
pub mod entities;
pub mod error;
pub mod hunt;
pub mod hunt_pool;
pub mod metrics;
pub mod openapi;
pub mod rules;

use std::sync::Arc;

use axum::Router;
use axum::routing::{MethodRouter, get, patch, post};
use cordon_detections::alerts::AlertStore;
use cordon_detections::service::Shared;

pub use auth::Role;
pub use config::{ApiConfig, HuntConfig, TokenConfig};

/// What handlers read.
#[derive(Clone)]
pub struct ApiState {
    pub alerts: Arc<AlertStore>,
    pub rules: Arc<Shared>,
    pub responder: Arc<cordon_responder::Responder>,
    /// The live events, for hunting, timelines and evidence.
    pub store: Arc<cordon_ingest::storage::EventStore>,
    pub hunts: hunt_pool::HuntPool,
    /// Every stage's metrics, for `/metrics`.
    pub registry: Arc<prometheus_client::registry::Registry>,
    pub tokens: Arc<auth::Tokens>,
}

/// Every route: method, path and handler. The router is built from this list, and a
/// test checks it against the OpenAPI document, so neither can drift from the other.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<ApiState>)> {
    vec![
        ("GET", "/api/v1/alerts", get(alerts::list)),
        ("GET", "/api/v1/alerts/{id}", get(alerts::get)),
        ("PATCH", "/api/v1/alerts/{id}", patch(alerts::triage)),
        ("GET", "/api/v1/alerts/{id}/events", get(hunt::alert_events)),
        ("GET", "/api/v1/rules", get(rules::list)),
        ("GET", "/api/v1/entities", get(entities::list)),
        ("GET", "/api/v1/entities/{type}/{id}", get(entities::get)),
        ("GET", "/api/v1/health/hosts", get(rules::host_health)),
        ("GET", "/api/v1/actions", get(actions::list)),
        ("GET", "/api/v1/actions/{id}", get(actions::get)),
        ("POST", "/api/v1/actions/{id}/approve", post(actions::approve)),
        ("POST", "/api/v1/actions/{id}/deny", post(actions::deny)),
        ("POST", "/api/v1/actions/{id}/retry", post(actions::retry)),
        ("POST", "/api/v1/respond", post(actions::respond)),
        ("GET", "/api/v1/audit", get(actions::audit)),
        ("POST", "/api/v1/hunt", post(hunt::hunt)),
        ("GET", "/api/v1/timeline", get(hunt::timeline)),
        ("GET", "/api/v1/openapi.json", get(openapi::document)),
        ("GET", "/metrics", get(metrics::scrape)),
    ]
}

/// Every route, each behind its role check.
pub fn router(state: ApiState) -> Router {
    // The console's page and script are public: they carry no data.
    let mut router = Router::new()
        .route("/", get(console::page))
        .route("/app.js", get(console::script))
        .route("/entities.js", get(console::entities_script));
    for (_, path, handler) in routes() {
        router = router.route(path, handler);
    }
    router.with_state(state)
}
