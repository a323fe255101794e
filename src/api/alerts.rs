//! `GET /api/v1/alerts` and `GET /api/v1/alerts/{id}`.

use axum::Json;
use axum::extract::{Path, Query, State};
use cordon_detections::alerts::{Alert, AlertFilter, AlertStatus, Triage};
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::auth::{Caller, Role};
use super::error::ApiError;

/// Every role may read alerts.
const READERS: &[Role] = &[Role::Analyst, Role::Engineer, Role::Responder];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<String>,
    pub rule_id: Option<String>,
    pub host_id: Option<String>,
    pub user_name: Option<String>,
    /// RFC 3339 time, or a duration back from now (`15m`, `24h`).
    pub since: Option<String>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AlertList {
    pub alerts: Vec<Alert>,
}

/// Parses `since`: an RFC 3339 time or a duration before now.
pub fn parse_since(text: &str) -> Result<i64, String> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return time
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("since {text} is out of range"));
    }
    let back = humantime::parse_duration(text)
        .map_err(|_| format!("since must be an RFC 3339 time or a duration like 15m, not {text:?}"))?;
    let now = cordon_schemas::time::now_nanos();
    // Further back than nanoseconds reach (about 1677): from the beginning.
    Ok(i64::try_from(back.as_nanos())
        .ok()
        .and_then(|back| now.checked_sub(back))
        .unwrap_or(i64::MIN))
}

pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AlertList>, ApiError> {
    caller.require(READERS)?;
    let Query(query) = query.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(AlertStatus::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!("status must be open, acknowledged or closed, not {text:?}"))
        })?),
    };
    let since = query
        .since
        .as_deref()
        .map(parse_since)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    let filter = AlertFilter {
        status,
        rule_id: query.rule_id,
        host_id: query.host_id,
        user_name: query.user_name,
        since,
        limit,
        offset: query.offset.unwrap_or(0),
    };
    let alerts = state.alerts.list(&filter).map_err(ApiError::internal)?;
    Ok(Json(AlertList { alerts }))
}

pub async fn get(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Alert>, ApiError> {
    caller.require(READERS)?;
    match state.alerts.get(&id).map_err(ApiError::internal)? {
        Some(alert) => Ok(Json(alert)),
        None => Err(ApiError::not_found(format!("no alert {id}"))),
    }
}

/// Who may triage: analysts and responders (and admins).
const TRIAGERS: &[Role] = &[Role::Analyst, Role::Responder];

/// `PATCH /api/v1/alerts/{id}`: status (`open`, `acknowledged`, `closed` with a
/// `close_reason`), `assignee` ("" unassigns), and a `note`; each change is kept in the
/// alert's notes with who made it.
pub async fn triage(
    caller: Caller,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Json<Triage>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Alert>, ApiError> {
    caller.require(TRIAGERS)?;
    let Json(triage) = body.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let alerts = state.alerts.clone();
    let who = caller.name.clone();
    let outcome = tokio::task::spawn_blocking(move || alerts.triage(&id, &triage, &who).map(|result| (id, result)))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    match outcome {
        (_, Ok(Some(alert))) => Ok(Json(alert)),
        (id, Ok(None)) => Err(ApiError::not_found(format!("no alert {id}"))),
        (_, Err(message)) => Err(ApiError::bad_request(message)),
    }
}
