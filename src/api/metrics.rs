//! `GET /metrics`: every stage's metrics in the OpenMetrics text format. Like every
//! route it needs a token (any role); point Prometheus at it with
//! `authorization: { credentials_file: ... }`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiState;
use super::auth::{Caller, Role};
use super::error::ApiError;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn scrape(caller: Caller, State(state): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    caller.require(&[Role::Analyst, Role::Engineer, Role::Responder])?;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &state.registry).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text))
}
