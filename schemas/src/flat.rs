//! The flat JSON event of contract section 3, both ways.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::fields::attr;
use crate::record::EventRecord;
use crate::reject::RejectReason;
use crate::value::AttrValue;

fn json_value(value: &Value) -> Option<AttrValue<'_>> {
    match value {
        Value::Null => None,
        Value::Bool(flag) => Some(AttrValue::Bool(*flag)),
        Value::Number(number) => Some(match number.as_i64() {
            Some(int) => AttrValue::Int(int),
            None => AttrValue::Double(number.as_f64().unwrap_or(f64::NAN)),
        }),
        Value::String(text) => Some(AttrValue::Str(Cow::Borrowed(text))),
        Value::Array(_) | Value::Object(_) => Some(AttrValue::Complex(value.to_string())),
    }
}

/// Parses the `time` field: RFC 3339 text or integer nanoseconds since the epoch.
pub fn parse_time(value: &Value) -> Result<u64, RejectReason> {
    match value {
        Value::Number(number) => number
            .as_u64()
            .ok_or_else(|| RejectReason::InvalidTime(number.to_string())),
        Value::String(text) => {
            if let Ok(nanos) = text.parse::<u64>() {
                return Ok(nanos);
            }
            DateTime::parse_from_rfc3339(text)
                .ok()
                .and_then(|time| time.timestamp_nanos_opt())
                .and_then(|nanos| u64::try_from(nanos).ok())
                .ok_or_else(|| RejectReason::InvalidTime(text.clone()))
        }
        other => Err(RejectReason::InvalidTime(other.to_string())),
    }
}

/// The normalized form of one flat JSON event. Validation happens when it is appended.
pub fn flat_json_to_event(value: &Value) -> Result<EventRecord<'_>, RejectReason> {
    let Value::Object(object) = value else {
        return Err(RejectReason::NotAnObject);
    };
    let mut record = EventRecord::new();
    for (key, value) in object {
        if key == attr::TIME {
            record.time_unix_nano = parse_time(value)?;
        } else if let Some(value) = json_value(value) {
            record.set(Cow::Borrowed(key.as_str()), value);
        }
    }
    // A producer's own events sent flat (a Claude Code event relayed through Kafka)
    // are mapped like the same events over OTLP.
    crate::producers::normalize(&mut record);
    Ok(record)
}

/// An owned event in its flat form: what producers (the simulator, tests) build.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlatEvent {
    pub time_unix_nano: i64,
    /// Every attribute by its contract name, including `host.id` and `event.name`.
    pub attributes: BTreeMap<String, AttrValue<'static>>,
}

impl FlatEvent {
    pub fn new(time_unix_nano: i64, event_name: &str, host_id: &str) -> Self {
        let mut event = FlatEvent {
            time_unix_nano,
            attributes: BTreeMap::new(),
        };
        event.set(attr::EVENT_NAME, event_name);
        event.set(attr::HOST_ID, host_id);
        event
    }

    /// Sets a string attribute.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.attributes
            .insert(name.to_string(), AttrValue::Str(Cow::Owned(value.into())));
        self
    }

    /// Sets an integer attribute.
    pub fn set_int(&mut self, name: &str, value: i64) -> &mut Self {
        self.attributes.insert(name.to_string(), AttrValue::Int(value));
        self
    }

    pub fn get(&self, name: &str) -> Option<&AttrValue<'static>> {
        self.attributes.get(name)
    }

    /// The value of a string attribute.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.attributes.get(name) {
            Some(AttrValue::Str(text)) => Some(text),
            _ => None,
        }
    }

    /// The JSON object of contract section 3, `time` as integer nanoseconds when
    /// `time_as_nanos` (the signing form), else RFC 3339.
    pub fn to_json(&self, time_as_nanos: bool) -> Value {
        let mut object = Map::new();
        let time = if time_as_nanos {
            Value::from(self.time_unix_nano)
        } else {
            Value::from(
                DateTime::<Utc>::from_timestamp_nanos(self.time_unix_nano).to_rfc3339_opts(SecondsFormat::Nanos, true),
            )
        };
        object.insert(attr::TIME.to_string(), time);
        for (name, value) in &self.attributes {
            object.insert(name.clone(), value.to_json());
        }
        Value::Object(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_contract_example_parses() {
        let value = json!({"time":"2026-01-15T10:04:05.123Z","host.id":"wks-0142",
            "event.name":"network.flow","event.id":"b1f0","event.sequence":8812,
            "user.name":"alice","destination.port":443,"network.io.bytes_sent":48213311});
        let record = flat_json_to_event(&value).unwrap();
        assert_eq!(record.time_unix_nano, 1_768_471_445_123_000_000);
        assert_eq!(record.host_id.as_deref(), Some("wks-0142"));
        assert_eq!(record.get("destination.port"), Some(&AttrValue::Int(443)));
        assert!(record.validate().is_ok());
    }

    #[test]
    fn time_accepts_nanos_and_rejects_nonsense() {
        assert_eq!(parse_time(&json!(5)).unwrap(), 5);
        assert_eq!(parse_time(&json!("5")).unwrap(), 5);
        assert!(matches!(
            parse_time(&json!("yesterday")),
            Err(RejectReason::InvalidTime(_))
        ));
        assert!(matches!(
            flat_json_to_event(&json!([1])),
            Err(RejectReason::NotAnObject)
        ));
    }

    #[test]
    fn flat_events_round_trip_through_json() {
        let mut event = FlatEvent::new(1_768_471_445_123_000_000, "network.flow", "wks-1");
        event.set_int("destination.port", 443).set("user.name", "alice");
        let text = event.to_json(false).to_string();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let record = flat_json_to_event(&parsed).unwrap();
        assert_eq!(record.time_unix_nano, 1_768_471_445_123_000_000);
        assert_eq!(record.get("user.name"), Some(&AttrValue::Str("alice".into())));
    }
}
