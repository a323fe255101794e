//! Sources that upload JSON documents over the OTLP/HTTP listener, each mapped to flat
//! events (contract section 3) by a function of `cordon_schemas`: OPA's decision logs
//! (`opa.rs`), Falco's alerts (`falco.rs`). A new one is a `JsonUpload` and one line in
//! `sources.rs`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use crate::auth::ConnectionInfo;
use crate::error::IngestError;
use crate::ingestor::{Ingestor, Transport};
use crate::listener::RequestCharge;
use crate::otlp::http::{Encoding, HttpLimits, authenticate, error_response, read_limited};
use cordon_schemas::Provenance;

/// One JSON upload source.
#[derive(Clone, Copy)]
pub struct JsonUpload {
    pub path: &'static str,
    pub transport: Transport,
    /// What the body should be, for error messages (`an OPA decision-log upload`).
    pub what: &'static str,
    /// One uploaded document to a flat event; `None` when it is not an object.
    pub map: fn(&Value) -> Option<Value>,
}

#[derive(Clone)]
struct UploadState {
    source: JsonUpload,
    ingestor: Arc<Ingestor>,
    limits: HttpLimits,
}

/// The source's route, to merge into the OTLP/HTTP listener's router.
pub fn router(source: JsonUpload, ingestor: Arc<Ingestor>, limits: HttpLimits) -> Router {
    Router::new()
        .route(source.path, post(upload))
        .layer(DefaultBodyLimit::disable())
        .with_state(UploadState {
            source,
            ingestor,
            limits,
        })
}

async fn upload(
    State(state): State<UploadState>,
    charge: Option<Extension<RequestCharge>>,
    connection: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let transport = state.source.transport;
    // A bearer token or a client certificate, as for OTLP.
    let provenance = match authenticate(&state.ingestor, transport, &headers, connection.as_deref()) {
        Ok(provenance) => provenance,
        Err(error) => return error_response(Encoding::Json, &error),
    };
    match store(&state, provenance, &headers, body, charge.as_deref()).await {
        // These producers retry any upload that is not 2xx: documents that can never be
        // stored (no host) are counted and named here instead of retried forever.
        Ok(outcome) => {
            if outcome.rejected > 0 {
                tracing::warn!(
                    source = transport.label(),
                    rejected = outcome.rejected,
                    message = %outcome.message,
                    "uploaded documents rejected"
                );
            }
            (StatusCode::OK, Json(outcome)).into_response()
        }
        Err(error) => {
            state.ingestor.refused(transport, &error);
            error_response(Encoding::Json, &error)
        }
    }
}

async fn store(
    state: &UploadState,
    provenance: Provenance,
    headers: &HeaderMap,
    body: Body,
    charge: Option<&RequestCharge>,
) -> Result<crate::IngestOutcome, IngestError> {
    let what = state.source.what;
    let bytes = read_limited(headers, body, state.limits, charge).await?;
    let documents: Value = serde_json::from_slice(&bytes)
        .map_err(|error| IngestError::Undecodable(format!("body is not {what} (JSON): {error}")))?;
    // An array of documents, or one (as the producer sends it, or a replay tool does).
    let documents = match documents {
        Value::Array(documents) => documents,
        document @ Value::Object(_) => vec![document],
        _ => {
            return Err(IngestError::Undecodable(format!(
                "body is not {what}: expected a JSON object or an array of them"
            )));
        }
    };
    let mut batch = state.ingestor.batch(provenance);
    for document in &documents {
        // A document that is not an object goes in as it is, to be rejected and counted.
        let event = (state.source.map)(document).unwrap_or_else(|| document.clone());
        batch.add_flat(&event);
    }
    batch.commit().await
}
