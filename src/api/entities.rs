//! `GET /api/v1/entities`: the riskiest entities (users, hosts, agents, agent sessions)
//! by the decayed risk of their alerts, with those alerts; and
//! `GET /api/v1/entities/{type}/{id}`: one entity's risk, alerts, risk incidents, the
//! responses aimed at it and its signals (building blocks), for the console's entity page.

use axum::Json;
use axum::extract::{Path, Query, State};
use cordon_detections::alerts::{Alert, AlertFilter};
use cordon_detections::risk::{self, ENTITY_KINDS, EntityRisk};
use cordon_responder::Action;
use cordon_responder::store::ActionFilter;
use datafusion::prelude::{col, lit};
use datafusion::scalar::ScalarValue;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::auth::{Caller, Role};
use super::error::ApiError;
use super::hunt::Rows;

const READERS: &[Role] = &[Role::Analyst, Role::Engineer, Role::Responder];
/// Alerts read to rank entities: the newest this many of the risk period.
const ALERTS_READ: usize = 50_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this kind: user, host, agent or session.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct EntityList {
    /// The risk period: how long an alert's risk takes to fade out, in seconds.
    pub period_seconds: u64,
    pub entities: Vec<EntityRisk>,
}

#[derive(Debug, Serialize)]
pub struct EntityView {
    pub period_seconds: u64,
    pub entity: EntityRisk,
    /// Its risk incidents (entity-risk alerts), newest first.
    pub incidents: Vec<Alert>,
    /// Responses aimed at it (its host's, or its user's), newest first.
    pub actions: Vec<Action>,
    /// Its signals (cordon.signal events of building-block rules) within the period, newest first.
    pub signals: Rows,
}

fn check_kind(kind: &str) -> Result<&'static str, ApiError> {
    ENTITY_KINDS
        .iter()
        .find(|(name, _)| *name == kind)
        .map(|(_, column)| *column)
        .ok_or_else(|| ApiError::bad_request(format!("type must be user, host, agent or session, not {kind:?}")))
}

async fn ranked(state: &ApiState) -> Result<(Vec<Alert>, Vec<EntityRisk>, u64), ApiError> {
    let period = state.rules.risk_period();
    let now = cordon_schemas::time::now_nanos();
    let since = now.saturating_sub(period.as_nanos() as i64);
    let alerts = state.alerts.clone();
    let listed = tokio::task::spawn_blocking(move || {
        alerts.list(&AlertFilter {
            since: Some(since),
            limit: ALERTS_READ,
            ..AlertFilter::default()
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let ranking = risk::ranking(&listed, now, period);
    Ok((listed, ranking, period.as_secs()))
}

pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EntityList>, ApiError> {
    caller.require(READERS)?;
    let Query(query) = query.map_err(|error| ApiError::bad_request(error.body_text()))?;
    if let Some(kind) = &query.kind {
        check_kind(kind)?;
    }
    let limit = query.limit.unwrap_or(50);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    let (_, ranking, period_seconds) = ranked(&state).await?;
    let entities = ranking
        .into_iter()
        .filter(|entity| query.kind.as_deref().is_none_or(|kind| entity.kind == kind))
        .take(limit)
        .collect();
    Ok(Json(EntityList {
        period_seconds,
        entities,
    }))
}

pub async fn get(
    caller: Caller,
    State(state): State<ApiState>,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<EntityView>, ApiError> {
    caller.require(READERS)?;
    let column = check_kind(&kind)?;
    let (alerts, ranking, period_seconds) = ranked(&state).await?;
    let entity = ranking
        .into_iter()
        .find(|entity| entity.kind == kind && entity.id == id)
        .unwrap_or_else(|| EntityRisk {
            kind: kind.clone(),
            id: id.clone(),
            risk: 0.0,
            alerts: Vec::new(),
            incidents: Vec::new(),
        });
    let mut incidents: Vec<Alert> = alerts
        .into_iter()
        .filter(|alert| entity.incidents.contains(&alert.id))
        .collect();
    incidents.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));

    let responder = state.responder.clone();
    let (target_kind, target) = (kind.clone(), id.clone());
    let mut actions = tokio::task::spawn_blocking(move || {
        responder.list(&ActionFilter {
            host_id: (target_kind == "host").then(|| target.clone()),
            limit: 1000,
            ..ActionFilter::default()
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    actions.retain(|action| match kind.as_str() {
        "host" => true,
        "user" => action.target.user_name.as_deref() == Some(id.as_str()),
        _ => action
            .alert_id
            .as_ref()
            .is_some_and(|alert| entity.alerts.iter().any(|c| &c.alert_id == alert)),
    });
    actions.truncate(200);

    let since = cordon_schemas::time::now_nanos().saturating_sub((period_seconds as i64).saturating_mul(1_000_000_000));
    let value = id.clone();
    let Json(signals) = super::hunt::on_pool(&state, 500, move |context| async move {
        let time = lit(ScalarValue::TimestampNanosecond(Some(since), Some("UTC".into())));
        context
            .table("events")
            .await
            .map_err(ApiError::internal)?
            .filter(
                col("event_name")
                    .eq(lit(cordon_detections::signals::KIND))
                    .and(col(column).eq(lit(value)))
                    .and(col("time").gt_eq(time)),
            )
            .map_err(ApiError::internal)?
            .sort(vec![col("time").sort(false, false)])
            .map_err(ApiError::internal)
    })
    .await?;
    Ok(Json(EntityView {
        period_seconds,
        entity,
        incidents,
        actions,
        signals,
    }))
}
