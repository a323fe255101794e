//! `GET /api/v1/openapi.json`: the API described (kept true by a test that walks it
//! against the routes and their role checks).

use axum::Json;

use super::auth::{Caller, Role};
use super::error::ApiError;

/// The document, as shipped.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document(caller: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(&[Role::Analyst, Role::Engineer, Role::Responder])?;
    serde_json::from_str(DOCUMENT).map(Json).map_err(ApiError::internal)
}
