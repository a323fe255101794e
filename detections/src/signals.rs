//! Signals: the matches of a rule with `alert = false` (a building block, as Elastic
//! calls them). Not alerts: each is stored as a `cordon.signal` event (contract
//! section 4) that other rules read as the `signals` table, with the same windows and
//! keys as events, and that analysts see on the entity view, not in the alert queue.

use serde_json::{Value, json};

use crate::matches::Match;
use crate::rule::RuleDefinition;

/// The event kind.
pub const KIND: &str = "cordon.signal";
/// The view rules read signals from: the signal events, with their rule, title,
/// severity and evidence as columns.
pub const VIEW: &str = "signals";
/// Host id of a signal whose match names no host.
pub const NO_HOST: &str = "cordon";

/// `CREATE VIEW signals ...` over the events table.
pub fn view_sql(events_table: &str) -> String {
    format!(
        "CREATE VIEW {VIEW} AS SELECT *, \
         attributes['signal.rule'] AS signal_rule, \
         attributes['signal.title'] AS signal_title, \
         attributes['signal.severity'] AS signal_severity, \
         string_to_array(attributes['signal.evidence'], ',') AS signal_evidence \
         FROM {events_table} WHERE event_name = '{KIND}'"
    )
}

fn rfc3339(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The flat event (contract section 3) of one signal. Its id is fixed by the rule and
/// the match's evidence, so the same match found again (a replay after a restart) is
/// the same event, dropped as a duplicate by the store.
pub fn event_of(found: &Match, definition: &RuleDefinition) -> Value {
    let value = |name: &str| found.value(name);
    let evidence: Vec<&str> = found.evidence.iter().map(|e| e.event_id.as_str()).collect();
    let mut event = json!({
        "time": rfc3339(found.last_seen),
        "event.name": KIND,
        "event.id": format!("cordon-signal-{}-{:016x}", found.rule_id, found.evidence_hash()),
        "service.name": "cordon.detections",
        "host.id": value("host_id").unwrap_or_else(|| NO_HOST.into()),
        "signal.rule": found.rule_id,
        "signal.title": definition.settings.title,
        "signal.severity": definition.settings.severity.as_str(),
        "signal.first_seen": rfc3339(found.first_seen),
        "signal.evidence": evidence.join(","),
    });
    let object = event.as_object_mut().expect("an object");
    for (column, attribute) in [
        ("user_name", "user.name"),
        ("gen_ai_agent_id", "gen_ai.agent.id"),
        ("session_id", "session.id"),
    ] {
        if let Some(text) = value(column) {
            object.insert(attribute.into(), text.into());
        }
    }
    for (name, field) in &found.fields {
        if matches!(
            name.as_str(),
            "host_id" | "user_name" | "gen_ai_agent_id" | "session_id"
        ) || field.is_null()
        {
            continue;
        }
        let text = match field {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        object.insert(format!("signal.{name}"), text.into());
    }
    event
}
