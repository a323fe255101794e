//! `GET /api/v1/rules`: every rule with its evaluations, matches, errors (with the
//! event times each failed evaluation covered) and load errors; `GET
//! /api/v1/health/hosts`: data health per host.

use axum::Json;
use axum::extract::Query;
use axum::extract::State;
use cordon_detections::health::HealthReport;
use cordon_detections::service::RuleView;
use serde::Deserialize;
use serde::Serialize;

use super::ApiState;
use super::auth::{Caller, Role};
use super::error::ApiError;

#[derive(Serialize)]
pub struct RuleList {
    pub rules: Vec<RuleView>,
}

pub async fn list(caller: Caller, State(state): State<ApiState>) -> Result<Json<RuleList>, ApiError> {
    caller.require(&[Role::Analyst, Role::Engineer, Role::Responder])?;
    let rules = state
        .rules
        .rules
        .read()
        .expect("rules lock")
        .values()
        .cloned()
        .collect();
    Ok(Json(RuleList { rules }))
}

#[derive(Deserialize)]
pub struct HealthQuery {
    pub limit: Option<usize>,
}

/// `GET /api/v1/health/hosts`: how each host's events stood against event time.
pub async fn host_health(
    caller: Caller,
    State(state): State<ApiState>,
    query: Result<Query<HealthQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<HealthReport>, ApiError> {
    caller.require(&[Role::Analyst, Role::Engineer, Role::Responder])?;
    let Query(query) = query.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let mut report = state.rules.health.read().expect("health lock").clone();
    report.troubled.truncate(limit);
    report.silent.truncate(limit);
    Ok(Json(report))
}
