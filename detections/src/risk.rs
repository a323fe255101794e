//! Entity risk: every alert adds its risk (its severity's base: low 20, medium 45,
//! high 70, critical 85) to each of its entities (host, user, agent, and the agent
//! session when known), decaying linearly to nothing over the risk period (a week by
//! default). Ten weak alerts on one user make one strong incident: the built-in rule
//! `entity-risk` reads the `cordon.risk` events each new alert writes and raises an
//! incident when an entity's risk crosses its threshold.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::alerts::Alert;

/// The event kind each new alert writes, one per entity.
pub const KIND: &str = "cordon.risk";
/// The built-in rule that raises risk incidents (its own alerts add no risk).
pub const INCIDENT_RULE: &str = "entity-risk";
/// Host id of risk that names no host.
pub const NO_HOST: &str = "cordon";

/// The entity kinds risk accrues to, with the event column that names each.
pub const ENTITY_KINDS: [(&str, &str); 4] = [
    ("user", "user_name"),
    ("host", "host_id"),
    ("agent", "gen_ai_agent_id"),
    ("session", "session_id"),
];

/// What one alert adds.
pub fn contribution(alert: &Alert) -> f64 {
    alert.severity.base_risk()
}

/// Whether the alert adds risk (risk incidents do not: no feedback).
pub fn adds_risk(alert: &Alert) -> bool {
    alert.rule_id != INCIDENT_RULE
}

/// The entities of an alert: (kind, id) for each it names.
pub fn entities(alert: &Alert) -> Vec<(&'static str, String)> {
    let from_alert = |column: &str| {
        alert
            .entity
            .get(column)
            .cloned()
            .flatten()
            .or_else(|| alert.fields.get(column).and_then(Value::as_str).map(str::to_string))
    };
    let mut out = Vec::new();
    for (kind, column) in ENTITY_KINDS {
        let value = match kind {
            "user" => alert.user_name.clone().or_else(|| from_alert(column)),
            "host" => alert.host_id.clone().or_else(|| from_alert(column)),
            "agent" => alert.agent_id.clone().or_else(|| from_alert(column)),
            _ => from_alert(column),
        };
        if let Some(value) = value.filter(|value| !value.is_empty()) {
            out.push((kind, value));
        }
    }
    out
}

/// The `cordon.risk` events of a new alert, one per entity; ids fixed by the alert and
/// the entity kind, so writing them again is a duplicate the store drops.
pub fn events_of(alert: &Alert) -> Vec<Value> {
    if !adds_risk(alert) {
        return Vec::new();
    }
    entities(alert)
        .into_iter()
        .map(|(kind, entity)| {
            let mut event = json!({
                "time": alert.last_seen,
                "event.name": KIND,
                "event.id": format!("cordon-risk-{}-{kind}", alert.id),
                "service.name": "cordon.detections",
                "host.id": alert.host_id.clone().unwrap_or_else(|| NO_HOST.into()),
                "risk.entity_type": kind,
                "risk.entity": entity,
                "risk.score": contribution(alert).to_string(),
                "risk.alert_id": alert.id,
                "risk.rule": alert.rule_id,
                "risk.severity": alert.severity.as_str(),
            });
            let object = event.as_object_mut().expect("an object");
            if let Some(user) = &alert.user_name {
                object.insert("user.name".into(), user.clone().into());
            }
            if let Some(agent) = &alert.agent_id {
                object.insert("gen_ai.agent.id".into(), agent.clone().into());
            }
            event
        })
        .collect()
}

/// How much of a contribution `age` later is left: all of it at once, none after the
/// period, linearly between.
pub fn weight(age: Duration, period: Duration) -> f64 {
    if period.is_zero() {
        return 0.0;
    }
    (1.0 - age.as_secs_f64() / period.as_secs_f64()).clamp(0.0, 1.0)
}

/// One alert as an entity's contribution.
#[derive(Debug, Clone, Serialize)]
pub struct Contribution {
    pub alert_id: String,
    pub rule_id: String,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub last_seen: String,
    /// What it adds now, after decay.
    pub risk: f64,
}

/// An entity's risk now.
#[derive(Debug, Clone, Serialize)]
pub struct EntityRisk {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    /// The sum of its alerts' decayed contributions, rounded to a tenth.
    pub risk: f64,
    /// Its contributing alerts, newest first.
    pub alerts: Vec<Contribution>,
    /// Risk incidents (`entity-risk` alerts) raised for it.
    pub incidents: Vec<String>,
}

fn nanos(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .and_then(|time| time.timestamp_nanos_opt())
}

/// Every entity's risk at `now` (ns) from `alerts`, riskiest first.
pub fn ranking(alerts: &[Alert], now: i64, period: Duration) -> Vec<EntityRisk> {
    let mut by_entity: BTreeMap<(String, String), EntityRisk> = BTreeMap::new();
    for alert in alerts {
        if !adds_risk(alert) {
            continue;
        }
        let Some(last_seen) = nanos(&alert.last_seen) else {
            continue;
        };
        let age = Duration::from_nanos(now.saturating_sub(last_seen).max(0) as u64);
        let risk = contribution(alert) * weight(age, period);
        if risk <= 0.0 {
            continue;
        }
        for (kind, id) in entities(alert) {
            let entity = by_entity
                .entry((kind.to_string(), id.clone()))
                .or_insert_with(|| EntityRisk {
                    kind: kind.to_string(),
                    id,
                    risk: 0.0,
                    alerts: Vec::new(),
                    incidents: Vec::new(),
                });
            entity.risk += risk;
            entity.alerts.push(Contribution {
                alert_id: alert.id.clone(),
                rule_id: alert.rule_id.clone(),
                title: alert.title.clone(),
                severity: alert.severity.as_str().to_string(),
                status: alert.status.as_str().to_string(),
                last_seen: alert.last_seen.clone(),
                risk: (risk * 10.0).round() / 10.0,
            });
        }
    }
    // Each risk incident, on the entity it names.
    for alert in alerts.iter().filter(|alert| !adds_risk(alert)) {
        if let (Some(kind), Some(id)) = (
            alert.entity.get("risk_entity_type").cloned().flatten(),
            alert.entity.get("risk_entity").cloned().flatten(),
        ) && let Some(entity) = by_entity.get_mut(&(kind, id))
            && !entity.incidents.contains(&alert.id)
        {
            entity.incidents.push(alert.id.clone());
        }
    }
    let mut ranked: Vec<EntityRisk> = by_entity.into_values().collect();
    for entity in &mut ranked {
        entity.risk = (entity.risk * 10.0).round() / 10.0;
        entity.alerts.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));
    }
    ranked.sort_by(|a, b| {
        b.risk
            .total_cmp(&a.risk)
            .then_with(|| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)))
    });
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_schemas::Severity;

    fn alert(id: &str, rule: &str, severity: Severity, user: &str, host: &str, last_seen: &str) -> Alert {
        let mut alert: Alert = serde_json::from_value(json!({
            "id": id, "rule_id": rule, "title": rule, "severity": severity.as_str(), "status": "open",
            "host_id": host, "user_name": user, "agent_id": null,
            "entity": {"user_name": user}, "first_seen": last_seen, "last_seen": last_seen,
            "count": 1, "risk": 20.0, "attack": [], "fields": {}, "evidence": [], "evidence_total": 0,
            "created_at": last_seen, "updated_at": last_seen,
        }))
        .unwrap();
        alert.fields.insert("session_id".into(), "sess-1".into());
        alert
    }

    #[test]
    fn risk_accrues_per_entity_and_decays_over_the_period() {
        let now = nanos("2026-01-16T10:00:00Z").unwrap();
        let day = Duration::from_secs(86_400);
        let alerts = vec![
            alert("a1", "r1", Severity::Low, "dave", "wks-1", "2026-01-16T10:00:00Z"),
            alert("a2", "r2", Severity::Low, "dave", "wks-2", "2026-01-16T04:00:00Z"),
            alert("a3", "r3", Severity::High, "erin", "wks-3", "2026-01-15T09:00:00Z"),
        ];
        let ranked = ranking(&alerts, now, day);
        let find = |kind: &str, id: &str| ranked.iter().find(|e| e.kind == kind && e.id == id).cloned();
        let dave = find("user", "dave").unwrap();
        // 20 now + 20 six hours into a day's decay (15).
        assert_eq!(dave.risk, 35.0);
        assert_eq!(dave.alerts[0].alert_id, "a1", "newest first");
        assert_eq!(find("session", "sess-1").unwrap().alerts.len(), 2);
        assert_eq!(find("host", "wks-1").unwrap().risk, 20.0);
        assert!(find("user", "erin").is_none(), "older than the period: nothing left");
        assert_eq!(ranked[0].risk, 35.0, "riskiest first");
    }

    #[test]
    fn incidents_add_no_risk_and_are_listed_on_their_entity() {
        let now = nanos("2026-01-16T10:00:00Z").unwrap();
        let mut incident = alert(
            "i1",
            INCIDENT_RULE,
            Severity::High,
            "dave",
            "wks-1",
            "2026-01-16T10:00:00Z",
        );
        incident.entity = BTreeMap::from([
            ("risk_entity_type".to_string(), Some("user".to_string())),
            ("risk_entity".to_string(), Some("dave".to_string())),
        ]);
        assert!(events_of(&incident).is_empty());
        let low = alert("a1", "r1", Severity::Low, "dave", "wks-1", "2026-01-16T09:00:00Z");
        let events = events_of(&low);
        assert_eq!(events.len(), 3, "user, host, session: {events:#?}");
        assert_eq!(events[0]["event.id"], "cordon-risk-a1-user");
        let ranked = ranking(&[incident, low], now, Duration::from_secs(86_400));
        let dave = ranked.iter().find(|e| e.kind == "user" && e.id == "dave").unwrap();
        assert_eq!(dave.incidents, vec!["i1"]);
        assert_eq!(dave.alerts.len(), 1);
    }
}
