//! The REST API (contract section 8): bearer tokens with roles on every route.

pub mod actions;
pub mod alerts;
pub mod auth;
pub mod config;
pub mod error;
pub mod hunt;
pub mod metrics;
pub mod rules;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use cordon_detections::alerts::AlertStore;
use cordon_detections::service::Shared;

pub use auth::Role;
pub use config::{ApiConfig, TokenConfig};

/// What handlers read.
#[derive(Clone)]
pub struct ApiState {
    pub alerts: Arc<AlertStore>,
    pub rules: Arc<Shared>,
    pub responder: Arc<cordon_responder::Responder>,
    /// Where the events are, for hunting and timelines.
    pub storage: cordon_ingest::StorageConfig,
    /// Every stage's metrics, for `/metrics`.
    pub registry: Arc<prometheus_client::registry::Registry>,
    pub tokens: Arc<auth::Tokens>,
}

/// Every route, each behind its role check.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/alerts", get(alerts::list))
        .route("/api/v1/alerts/{id}", get(alerts::get).patch(alerts::triage))
        .route("/api/v1/rules", get(rules::list))
        .route("/api/v1/actions", get(actions::list))
        .route("/api/v1/actions/{id}", get(actions::get))
        .route("/api/v1/actions/{id}/approve", post(actions::approve))
        .route("/api/v1/actions/{id}/deny", post(actions::deny))
        .route("/api/v1/actions/{id}/retry", post(actions::retry))
        .route("/api/v1/respond", post(actions::respond))
        .route("/api/v1/audit", get(actions::audit))
        .route("/api/v1/hunt", post(hunt::hunt))
        .route("/api/v1/timeline", get(hunt::timeline))
        .route("/metrics", get(metrics::scrape))
        .with_state(state)
}
