//! `GET /api/v1/rules`: every rule with its evaluations, matches, errors and load errors.

use axum::Json;
use axum::extract::State;
use cordon_detections::service::RuleView;
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
