//! Response actions: list and inspect them, approve, deny or retry them, request one
//! by hand, and read the audit log. Responders act; every role may look.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use cordon_responder::model::AuditEntry;
use cordon_responder::service::ManualRequest;
use cordon_responder::store::{ActionFilter, AuditFilter};
use cordon_responder::{Action, ActionState, Responder, ResponderError};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::alerts::parse_since;
use super::auth::{Caller, Role};
use super::error::ApiError;

const READERS: &[Role] = &[Role::Analyst, Role::Engineer, Role::Responder];
const ACTORS: &[Role] = &[Role::Responder];

impl From<ResponderError> for ApiError {
    fn from(error: ResponderError) -> Self {
        match error {
            ResponderError::NotFound(_) => ApiError::not_found(error.to_string()),
            ResponderError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, error.to_string()),
            ResponderError::Invalid(_) => ApiError::bad_request(error.to_string()),
            other => ApiError::internal(other),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<String>,
    pub action: Option<String>,
    pub alert_id: Option<String>,
    pub host_id: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ActionList {
    pub actions: Vec<Action>,
}

/// One action with the exact body it sends and its audit trail.
#[derive(Debug, Serialize, Deserialize)]
pub struct ActionDetail {
    pub action: Action,
    pub body: serde_json::Value,
    pub audit: Vec<AuditEntry>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Why; kept in the audit log.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub action_id: Option<String>,
    pub since: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AuditList {
    pub audit: Vec<AuditEntry>,
}

fn limit(value: Option<usize>, default: usize) -> Result<usize, ApiError> {
    let limit = value.unwrap_or(default);
    if limit == 0 || limit > 5000 {
        return Err(ApiError::bad_request("limit must be between 1 and 5000"));
    }
    Ok(limit)
}

pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ActionList>, ApiError> {
    caller.require(READERS)?;
    let Query(query) = query.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let state_filter = match query.state.as_deref() {
        None => None,
        Some(text) => Some(ActionState::parse(text).ok_or_else(|| {
            let known: Vec<&str> = ActionState::ALL.iter().map(|state| state.as_str()).collect();
            ApiError::bad_request(format!("state must be one of {}, not {text:?}", known.join(", ")))
        })?),
    };
    let filter = ActionFilter {
        state: state_filter,
        action: query.action,
        alert_id: query.alert_id,
        host_id: query.host_id,
        limit: limit(query.limit, 100)?,
    };
    let responder = state.responder.clone();
    let actions = blocking(move || responder.list(&filter)).await?;
    Ok(Json(ActionList { actions }))
}

pub async fn get(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<ActionDetail>, ApiError> {
    caller.require(READERS)?;
    let responder = state.responder.clone();
    blocking(move || {
        let action = responder
            .get(&id)?
            .ok_or_else(|| ResponderError::NotFound(id.clone()))?;
        let body = responder.body(&id)?.unwrap_or_default();
        let audit = responder.audit(&AuditFilter {
            action_id: Some(id.clone()),
            limit: 1000,
            ..AuditFilter::default()
        })?;
        Ok(Json(ActionDetail {
            action,
            body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
            audit,
        }))
    })
    .await
}

/// Runs store work off the async workers (SQLite with full sync waits on the disk).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ResponderError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

/// The optional body of a decision; one that is not JSON is answered 400 in JSON.
type DecisionBody = Result<Option<Json<Decision>>, axum::extract::rejection::JsonRejection>;

/// A responder's decision on one action, made by `caller` with the body's note.
type Decide = fn(&Responder, &str, &str, Option<String>) -> Result<Action, ResponderError>;

async fn decide(
    caller: Caller,
    state: ApiState,
    id: String,
    body: DecisionBody,
    decide: Decide,
) -> Result<Json<Action>, ApiError> {
    caller.require(ACTORS)?;
    let body = body.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let note = body
        .and_then(|Json(decision)| decision.note)
        .filter(|note| !note.trim().is_empty());
    let responder = state.responder.clone();
    Ok(Json(
        blocking(move || decide(&responder, &id, &caller.name, note)).await?,
    ))
}

pub async fn approve(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: DecisionBody,
) -> Result<Json<Action>, ApiError> {
    decide(caller, state, id, body, Responder::approve).await
}

pub async fn deny(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: DecisionBody,
) -> Result<Json<Action>, ApiError> {
    decide(caller, state, id, body, Responder::deny).await
}

pub async fn retry(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: DecisionBody,
) -> Result<Json<Action>, ApiError> {
    decide(caller, state, id, body, Responder::retry).await
}

pub async fn respond(
    caller: Caller,
    State(state): State<ApiState>,
    body: Result<Json<ManualRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Action>), ApiError> {
    caller.require(ACTORS)?;
    let Json(request) = body.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let responder = state.responder.clone();
    let action = blocking(move || responder.request(request, &caller.name)).await?;
    Ok((StatusCode::CREATED, Json(action)))
}

pub async fn audit(
    caller: Caller,
    State(state): State<ApiState>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditList>, ApiError> {
    caller.require(READERS)?;
    let Query(query) = query.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let since = query
        .since
        .as_deref()
        .map(parse_since)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let filter = AuditFilter {
        action_id: query.action_id,
        since,
        limit: limit(query.limit, 200)?,
        after_seq: None,
    };
    let responder = state.responder.clone();
    let audit = blocking(move || responder.audit(&filter)).await?;
    Ok(Json(AuditList { audit }))
}
