//! OPA decision-log entries (contract section 1) as flat JSON events (section 3).
//!
//! OPA uploads a JSON array of entries such as
//! `{"decision_id": "...", "path": "agent/authz/allow", "input": {...}, "result": true,
//!   "timestamp": "2026-01-15T10:04:05.123Z", "labels": {"id": "...", "host.id": "wks-1"}}`.
//! Each becomes one `policy.decision` event; what is still missing (a host, a time) is
//! left for the flat conversion to reject, so OPA entries are checked like any event.

use serde_json::{Map, Value};

use crate::fields::attr;

/// The `service.name` of events mapped from OPA's decision logs.
pub const OPA_SERVICE: &str = "opa";
/// `input` keys at most this deep are flattened into `policy.input.*`; deeper values
/// are kept as JSON text, so a huge input cannot make thousands of attributes.
const MAX_INPUT_DEPTH: usize = 3;
/// At most this many `policy.input.*` attributes per decision.
const MAX_INPUT_ATTRIBUTES: usize = 64;

/// Maps one decision-log entry; `None` when the entry is not a JSON object.
pub fn decision_to_flat(entry: &Value) -> Option<Value> {
    let entry = entry.as_object()?;
    let mut event = Map::new();
    event.insert(attr::EVENT_NAME.into(), "policy.decision".into());
    event.insert(attr::SERVICE_NAME.into(), OPA_SERVICE.into());
    if let Some(time) = entry.get("timestamp").filter(|time| !time.is_null()) {
        event.insert(attr::TIME.into(), time.clone());
    }
    if let Some(host) = host_id(entry) {
        event.insert(attr::HOST_ID.into(), host.into());
    }
    if let Some(id) = entry.get("decision_id").and_then(Value::as_str) {
        // The decision id is unique per decision: it doubles as the event id, so a
        // re-uploaded log is stored once.
        event.insert(attr::EVENT_ID.into(), id.into());
        event.insert(attr::POLICY_DECISION_ID.into(), id.into());
    }
    if let Some(path) = entry.get("path").and_then(Value::as_str) {
        event.insert(attr::POLICY_PATH.into(), path.into());
    }
    let result = entry.get("result").unwrap_or(&Value::Null);
    event.insert(attr::POLICY_DECISION.into(), decision(result).into());
    if let Some(reason) = result.get("reason").filter(|reason| !reason.is_null()) {
        event.insert(attr::POLICY_REASON.into(), text(reason).into());
    }
    if let Some(input) = entry.get("input").and_then(Value::as_object) {
        if let Some(user) = input.get("user").filter(|user| !user.is_null()) {
            event.insert(attr::USER_NAME.into(), user_name(user).into());
        }
        // The broker may pass the agent it asks for; only the contract's own names count.
        for name in [attr::AGENT_ID, attr::AGENT_NAME] {
            if let Some(Value::String(value)) = input.get(name) {
                event.insert(name.into(), value.clone().into());
            }
        }
        let mut budget = MAX_INPUT_ATTRIBUTES;
        flatten_input("policy.input", input, 1, &mut budget, &mut event);
    }
    Some(Value::Object(event))
}

/// `host.id` from OPA's `labels`: the `host.id` label, else OPA's own `id` label.
fn host_id(entry: &Map<String, Value>) -> Option<String> {
    let labels = entry.get("labels")?.as_object()?;
    labels
        .get(attr::HOST_ID)
        .or_else(|| labels.get("id"))
        .and_then(Value::as_str)
        .filter(|host| !host.is_empty())
        .map(str::to_owned)
}

/// `allow` for `true` or `{"allow": true, ...}`; every other result denies.
fn decision(result: &Value) -> &'static str {
    let allowed = match result {
        Value::Bool(allowed) => *allowed,
        Value::String(text) => text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("allow"),
        Value::Object(fields) => fields.get("allow").and_then(Value::as_bool).unwrap_or(false),
        _ => false,
    };
    if allowed { "allow" } else { "deny" }
}

/// `input.user` is usually a name; some policies pass `{"name": ...}` or `{"id": ...}`.
fn user_name(user: &Value) -> String {
    match user {
        Value::Object(fields) => fields
            .get("name")
            .or_else(|| fields.get("id"))
            .map(text)
            .unwrap_or_else(|| user.to_string()),
        other => text(other),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn flatten_input(
    prefix: &str,
    object: &Map<String, Value>,
    depth: usize,
    budget: &mut usize,
    out: &mut Map<String, Value>,
) {
    for (key, value) in object {
        if *budget == 0 {
            return;
        }
        let name = format!("{prefix}.{key}");
        match value {
            Value::Null => {}
            Value::Object(inner) if depth < MAX_INPUT_DEPTH => flatten_input(&name, inner, depth + 1, budget, out),
            other => {
                out.insert(name, other.clone());
                *budget -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The entry OPA's decision-log documentation shows, with an agent broker's input.
    fn documented_entry() -> Value {
        json!({
            "labels": {"app": "cowork-broker", "id": "1780d507-aea2-45cc-ae50-fa153c8e4a5a", "version": "v0.70.0"},
            "decision_id": "4ca636c1-55e4-417a-b1d8-4aceb67960d1",
            "bundles": {"authz": {"revision": "W3sibCI6InN5cy9jYXRhbG9nIiwicyI6NDAzNTl9XQ=="}},
            "path": "agent/authz/allow",
            "input": {"user": "alice", "action": "net.upload", "path": "/home/alice/q3.xlsx",
                      "destination": {"host": "paste.example.net", "port": 443}},
            "result": {"allow": false, "reason": "destination not approved"},
            "requested_by": "[::1]:59943",
            "timestamp": "2026-01-15T10:04:05.123456Z",
            "metrics": {"timer_rego_query_eval_ns": 233}
        })
    }

    #[test]
    fn maps_the_documented_entry() {
        let event = decision_to_flat(&documented_entry()).unwrap();
        assert_eq!(event["event.name"], "policy.decision");
        assert_eq!(event["service.name"], "opa");
        assert_eq!(event["host.id"], "1780d507-aea2-45cc-ae50-fa153c8e4a5a");
        assert_eq!(event["event.id"], "4ca636c1-55e4-417a-b1d8-4aceb67960d1");
        assert_eq!(event["policy.decision_id"], "4ca636c1-55e4-417a-b1d8-4aceb67960d1");
        assert_eq!(event["policy.path"], "agent/authz/allow");
        assert_eq!(event["policy.decision"], "deny");
        assert_eq!(event["policy.reason"], "destination not approved");
        assert_eq!(event["user.name"], "alice");
        assert_eq!(event["policy.input.action"], "net.upload");
        assert_eq!(event["policy.input.path"], "/home/alice/q3.xlsx");
        assert_eq!(event["policy.input.destination.host"], "paste.example.net");
        assert_eq!(event["policy.input.destination.port"], 443);
        assert_eq!(event["time"], "2026-01-15T10:04:05.123456Z");
        // OPA's own bookkeeping is not an attribute of the decision.
        assert!(event.get("metrics").is_none() && event.get("requested_by").is_none());
    }

    #[test]
    fn the_host_id_label_wins_over_opas_instance_id() {
        let mut entry = documented_entry();
        entry["labels"]["host.id"] = json!("wks-0142");
        assert_eq!(decision_to_flat(&entry).unwrap()["host.id"], "wks-0142");
        entry["labels"] = json!({});
        assert!(decision_to_flat(&entry).unwrap().get("host.id").is_none());
    }

    #[test]
    fn results_map_to_allow_or_deny() {
        for (result, expected) in [
            (json!(true), "allow"),
            (json!(false), "deny"),
            (json!({"allow": true}), "allow"),
            (json!({"allow": false, "reason": "r"}), "deny"),
            (json!(null), "deny"),
            (json!("true"), "allow"),
            (json!(["x"]), "deny"),
        ] {
            let mut entry = documented_entry();
            entry["result"] = result.clone();
            assert_eq!(
                decision_to_flat(&entry).unwrap()["policy.decision"],
                expected,
                "{result}"
            );
        }
    }

    #[test]
    fn a_large_input_is_bounded() {
        let mut entry = documented_entry();
        let wide: Map<String, Value> = (0..500).map(|i| (format!("k{i}"), json!(i))).collect();
        entry["input"] = json!({"user": {"name": "bob"}, "wide": wide, "a": {"b": {"c": {"d": 1}}}});
        let event = decision_to_flat(&entry).unwrap();
        let inputs = event
            .as_object()
            .unwrap()
            .keys()
            .filter(|key| key.starts_with("policy.input."))
            .count();
        assert_eq!(inputs, MAX_INPUT_ATTRIBUTES);
        assert_eq!(event["user.name"], "bob");
    }

    #[test]
    fn not_an_object_is_none() {
        assert!(decision_to_flat(&json!([1, 2])).is_none());
    }
}
