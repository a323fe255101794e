//! `POST /v1/opa/logs`: OPA's decision-log upload (contract section 1). Point OPA's
//! `decision_logs` service at it; each entry becomes a `policy.decision` event.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use cordon_schemas::opa::decision_to_flat;
use serde_json::Value;

use crate::auth::ConnectionInfo;
use crate::error::IngestError;
use crate::ingestor::{Ingestor, Transport};
use crate::listener::RequestCharge;
use crate::otlp::http::{Encoding, HttpLimits, authenticate, error_response, read_limited};
use cordon_schemas::Provenance;

pub const OPA_LOGS_PATH: &str = "/v1/opa/logs";

#[derive(Clone)]
struct OpaState {
    ingestor: Arc<Ingestor>,
    limits: HttpLimits,
}

/// The decision-log route, to merge into the OTLP/HTTP listener's router.
pub fn router(ingestor: Arc<Ingestor>, limits: HttpLimits) -> Router {
    Router::new()
        .route(OPA_LOGS_PATH, post(upload))
        .layer(DefaultBodyLimit::disable())
        .with_state(OpaState { ingestor, limits })
}

async fn upload(
    State(state): State<OpaState>,
    charge: Option<Extension<RequestCharge>>,
    connection: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // OPA's decision_logs service sends `credentials.bearer` or a client certificate.
    let provenance = match authenticate(&state.ingestor, Transport::OpaLogs, &headers, connection.as_deref()) {
        Ok(provenance) => provenance,
        Err(error) => return error_response(Encoding::Json, &error),
    };
    match store(&state, provenance, &headers, body, charge.as_deref()).await {
        // OPA retries any upload that is not 2xx: entries that can never be stored
        // (no host label) are counted and named here instead of retried forever.
        Ok(outcome) => {
            if outcome.rejected > 0 {
                tracing::warn!(rejected = outcome.rejected, message = %outcome.message, "OPA decisions rejected");
            }
            (StatusCode::OK, Json(outcome)).into_response()
        }
        Err(error) => {
            state.ingestor.refused(Transport::OpaLogs, &error);
            error_response(Encoding::Json, &error)
        }
    }
}

async fn store(
    state: &OpaState,
    provenance: Provenance,
    headers: &HeaderMap,
    body: Body,
    charge: Option<&RequestCharge>,
) -> Result<crate::IngestOutcome, IngestError> {
    let bytes = read_limited(headers, body, state.limits, charge).await?;
    let entries: Value = serde_json::from_slice(&bytes).map_err(|error| {
        IngestError::Undecodable(format!(
            "body is not an OPA decision-log upload (a JSON array): {error}"
        ))
    })?;
    // OPA uploads an array; a single entry is taken too, as tools that replay logs send it.
    let entries = match entries {
        Value::Array(entries) => entries,
        entry @ Value::Object(_) => vec![entry],
        _ => {
            return Err(IngestError::Undecodable(
                "body is not an OPA decision-log upload: expected a JSON array of decisions".into(),
            ));
        }
    };
    let mut batch = state.ingestor.batch(provenance);
    for entry in &entries {
        // An entry that is not an object goes in as it is, to be rejected and counted.
        let event = decision_to_flat(entry).unwrap_or_else(|| entry.clone());
        batch.add_flat(&event);
    }
    batch.commit().await
}
