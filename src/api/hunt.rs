//! Hunting and entity timelines over the stored events: read-only SQL (as `cordon
//! query`) with a row limit, a size and nesting limit checked before planning, and a
//! memory limit, run on the hunt pool (its own runtime, a few at once, stopped at the
//! time limit or when the caller leaves) over the live store's snapshot.

use std::time::Instant;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use datafusion::dataframe::DataFrame;
use datafusion::prelude::{SQLOptions, SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::alerts::parse_since;
use super::auth::{Caller, Role};
use super::error::ApiError;
use super::hunt_pool::HuntError;

const READERS: &[Role] = &[Role::Analyst, Role::Engineer, Role::Responder];
/// Rows a hunt or timeline returns at most.
pub const MAX_ROWS: usize = 10_000;
/// Memory a hunt's operators (sorts, joins, aggregations) may use.
pub const MEMORY_LIMIT: usize = 512 << 20;
/// The rows a hunt answers, in Arrow, at most: the result is built in memory.
pub const MAX_RESULT_BYTES: usize = 64 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuntRequest {
    pub sql: String,
    /// Rows to return, 1-10,000 (default 1,000).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Rows {
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    /// More rows matched than were returned.
    pub truncated: bool,
    pub elapsed_ms: u64,
}

fn row_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(1000);
    if limit == 0 || limit > MAX_ROWS {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_ROWS}")));
    }
    Ok(limit)
}

impl From<HuntError> for ApiError {
    fn from(error: HuntError) -> Self {
        match error {
            HuntError::Busy { .. } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, error.to_string()),
            HuntError::TimedOut(_) => ApiError::bad_request(error.to_string()),
            HuntError::Crashed(_) => ApiError::internal(error),
        }
    }
}

/// Runs `query` (which builds a frame in a session over the live events) on the hunt
/// pool and answers its rows.
pub(crate) async fn on_pool<Q, F>(state: &ApiState, limit: usize, query: Q) -> Result<Json<Rows>, ApiError>
where
    Q: FnOnce(SessionContext) -> F + Send + 'static,
    F: std::future::Future<Output = Result<DataFrame, ApiError>> + Send + 'static,
{
    let store = state.store.clone();
    let started = Instant::now();
    let rows = state
        .hunts
        .run(async move {
            // The session (and its pin on the files) lives until the rows are read.
            let session = crate::query::live_session(&store, MEMORY_LIMIT)
                .await
                .map_err(ApiError::internal)?;
            rows_of(query(session.context.clone()).await?, limit, started).await
        })
        .await??;
    Ok(Json(rows))
}

/// Runs `frame` with the row and size limits and turns the rows into JSON objects.
async fn rows_of(frame: DataFrame, limit: usize, started: Instant) -> Result<Rows, ApiError> {
    let frame = frame
        .limit(0, Some(limit + 1))
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let mut stream = frame
        .execute_stream()
        .await
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let mut batches = Vec::new();
    let mut bytes = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|error| ApiError::bad_request(error.to_string()))?;
        bytes += batch.get_array_memory_size();
        if bytes > MAX_RESULT_BYTES {
            return Err(ApiError::bad_request(format!(
                "the rows come to more than {} MiB: select fewer or narrower columns, or fewer rows",
                MAX_RESULT_BYTES >> 20
            )));
        }
        batches.push(batch);
    }
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    for batch in &batches {
        writer.write(batch).map_err(ApiError::internal)?;
    }
    writer.finish().map_err(ApiError::internal)?;
    let bytes = writer.into_inner();
    let mut rows: Vec<serde_json::Map<String, serde_json::Value>> = if bytes.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&bytes).map_err(ApiError::internal)?
    };
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    Ok(Rows {
        rows,
        truncated,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// `POST /api/v1/hunt`: `{"sql": "...", "limit": 1000}`. One read-only statement over
/// `events` and the per-kind tables; DDL, DML and other statements are refused, and so
/// is SQL over 64 KiB or nested past `guard::MAX_NESTING`, before anything plans it.
pub async fn hunt(
    caller: Caller,
    State(state): State<ApiState>,
    body: Result<Json<HuntRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Rows>, ApiError> {
    caller.require(READERS)?;
    let Json(request) = body.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let limit = row_limit(request.limit)?;
    tracing::info!(who = %caller.name, "hunt query run");
    on_pool(&state, limit, move |context| async move {
        let statement = cordon_detections::guard::single_query(&request.sql)
            .map_err(|refusal| ApiError::bad_request(refusal.message))?;
        let plan = context
            .state()
            .statement_to_plan(statement)
            .await
            .map_err(|error| ApiError::bad_request(error.to_string()))?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|error| ApiError::bad_request(error.to_string()))?;
        context
            .execute_logical_plan(plan)
            .await
            .map_err(|error| ApiError::bad_request(error.to_string()))
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    pub host_id: Option<String>,
    pub user_name: Option<String>,
    /// RFC 3339 or a duration back from now; default 1h.
    pub since: Option<String>,
    /// RFC 3339 or a duration back from now; default now.
    pub until: Option<String>,
    pub limit: Option<usize>,
}

/// `GET /api/v1/timeline?host_id=...|user_name=...`: the entity's events, newest first.
pub async fn timeline(
    caller: Caller,
    State(state): State<ApiState>,
    query: Result<Query<TimelineQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Rows>, ApiError> {
    caller.require(READERS)?;
    let Query(query) = query.map_err(|error| ApiError::bad_request(error.body_text()))?;
    if query.host_id.is_none() && query.user_name.is_none() {
        return Err(ApiError::bad_request("give host_id, user_name or both"));
    }
    let limit = row_limit(query.limit.or(Some(200)))?;
    let since = parse_since(query.since.as_deref().unwrap_or("1h")).map_err(ApiError::bad_request)?;
    let until = match query.until.as_deref() {
        Some(text) => parse_since(text).map_err(ApiError::bad_request)?,
        None => cordon_schemas::time::now_nanos(),
    };
    on_pool(&state, limit, move |context| async move {
        timeline_frame(
            &context,
            query.host_id.as_deref(),
            query.user_name.as_deref(),
            since,
            until,
        )
        .await
        .map_err(ApiError::internal)
    })
    .await
}

/// An entity's events between `since` and `until` (ns), newest first: the timeline's
/// query, shared with `cordon bench hunt`.
pub async fn timeline_frame(
    context: &SessionContext,
    host_id: Option<&str>,
    user_name: Option<&str>,
    since: i64,
    until: i64,
) -> datafusion::error::Result<DataFrame> {
    let time = |nanos: i64| lit(ScalarValue::TimestampNanosecond(Some(nanos), Some("UTC".into())));
    // Values go in as literals, never spliced into SQL text.
    let mut frame = context
        .table("events")
        .await?
        .filter(col("time").gt_eq(time(since)).and(col("time").lt_eq(time(until))))?;
    if let Some(host) = host_id {
        frame = frame.filter(col("host_id").eq(lit(host)))?;
    }
    if let Some(user) = user_name {
        frame = frame.filter(col("user_name").eq(lit(user)))?;
    }
    frame.sort(vec![col("time").sort(false, false)])
}

/// `GET /api/v1/alerts/{id}/events`: the stored events an alert rests on, oldest first.
pub async fn alert_events(
    caller: Caller,
    State(state): State<ApiState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Rows>, ApiError> {
    caller.require(READERS)?;
    let alerts = state.alerts.clone();
    let lookup = id.clone();
    let alert = tokio::task::spawn_blocking(move || alerts.get(&lookup))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    let ids: Vec<datafusion::logical_expr::Expr> = alert
        .evidence
        .iter()
        .map(|evidence| lit(evidence.event_id.as_str()))
        .collect();
    if ids.is_empty() {
        return Ok(Json(Rows {
            rows: Vec::new(),
            truncated: false,
            elapsed_ms: 0,
        }));
    }
    on_pool(&state, MAX_ROWS, move |context| async move {
        context
            .table("events")
            .await
            .map_err(ApiError::internal)?
            .filter(col("event_id").in_list(ids, false))
            .map_err(ApiError::internal)?
            .sort(vec![col("time").sort(true, false)])
            .map_err(ApiError::internal)
    })
    .await
}
