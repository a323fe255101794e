//! One event, normalized from whatever transport carried it, before it becomes a row.

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::fields::{ATTR_FIELDS, FieldType, attr, is_content_like};
use crate::reject::{Notice, RejectReason};
use crate::value::AttrValue;

/// An event as its attributes arrived, sorted into the contract's slots.
#[derive(Debug, Clone, Default)]
pub struct EventRecord<'a> {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub host_id: Option<Cow<'a, str>>,
    pub host_name: Option<Cow<'a, str>>,
    pub service_name: Option<Cow<'a, str>>,
    pub event_name: Option<Cow<'a, str>>,
    pub event_id: Option<Cow<'a, str>>,
    /// Whether a `signature.ed25519` attribute came with the event.
    pub signature: Option<Cow<'a, str>>,
    /// Values of the typed attribute columns, indexed like `ATTR_FIELDS`.
    pub typed: Vec<Option<AttrValue<'a>>>,
    /// Attributes the contract does not name, for the map column.
    pub extra: Vec<(Cow<'a, str>, AttrValue<'a>)>,
    /// Attributes dropped because they looked like raw content.
    pub dropped_content: Vec<String>,
}

fn typed_index(name: &str) -> Option<usize> {
    // Looked up for every attribute of every event: SipHash showed in the profile.
    static INDEX: OnceLock<ahash::AHashMap<&'static str, usize>> = OnceLock::new();
    INDEX
        .get_or_init(|| {
            ATTR_FIELDS
                .iter()
                .enumerate()
                .map(|(position, field)| (field.attr, position))
                .collect()
        })
        .get(name)
        .copied()
}

fn text_of<'a>(value: AttrValue<'a>) -> Cow<'a, str> {
    match value {
        AttrValue::Str(text) => text,
        other => Cow::Owned(other.to_text().into_owned()),
    }
}

impl<'a> EventRecord<'a> {
    pub fn new() -> Self {
        EventRecord {
            typed: vec![None; ATTR_FIELDS.len()],
            ..Default::default()
        }
    }

    /// Empties the record for reuse, keeping its allocations.
    pub fn reset(&mut self) {
        self.time_unix_nano = 0;
        self.observed_time_unix_nano = 0;
        self.host_id = None;
        self.host_name = None;
        self.service_name = None;
        self.event_name = None;
        self.event_id = None;
        self.signature = None;
        self.typed.iter_mut().for_each(|slot| *slot = None);
        self.extra.clear();
        self.dropped_content.clear();
    }

    /// Sets one attribute by its contract name; a later call for the same name wins
    /// (log attributes are applied after resource attributes, so they override).
    pub fn set(&mut self, name: Cow<'a, str>, value: AttrValue<'a>) {
        match name.as_ref() {
            attr::HOST_ID => self.host_id = Some(text_of(value)),
            attr::HOST_NAME => self.host_name = Some(text_of(value)),
            attr::SERVICE_NAME => self.service_name = Some(text_of(value)),
            attr::EVENT_NAME => self.event_name = Some(text_of(value)),
            attr::EVENT_ID => self.event_id = Some(text_of(value)),
            attr::SIGNATURE_ED25519 => self.signature = Some(text_of(value)),
            other => {
                if let Some(position) = typed_index(other) {
                    self.typed[position] = Some(value);
                } else if is_content_like(other) {
                    self.dropped_content.push(other.to_string());
                } else if let Some(slot) = self.extra.iter_mut().find(|(key, _)| key == &name) {
                    slot.1 = value;
                } else {
                    self.extra.push((name, value));
                }
            }
        }
    }

    /// The value of a typed attribute by its contract name.
    pub fn get(&self, name: &str) -> Option<&AttrValue<'a>> {
        typed_index(name).and_then(|position| self.typed[position].as_ref())
    }

    /// Checks the record against the contract without changing it: what would be stored,
    /// or why it cannot be.
    pub fn validate(&self) -> Result<(), RejectReason> {
        if self.host_id.as_deref().is_none_or(|id| id.trim().is_empty()) {
            return Err(RejectReason::MissingHostId);
        }
        if self.event_name.as_deref().is_none_or(|name| name.trim().is_empty()) {
            return Err(RejectReason::MissingEventName);
        }
        for (field, value) in ATTR_FIELDS.iter().zip(&self.typed) {
            let Some(value) = value else { continue };
            if field.ty == FieldType::Int && value.as_int().is_none() {
                return Err(RejectReason::InvalidAttribute {
                    name: field.attr,
                    expected: "int",
                    got: value.type_name(),
                    preview: value.preview(),
                });
            }
        }
        Ok(())
    }

    /// What will be stored differently from how it was sent.
    pub fn notices(&self) -> Vec<Notice> {
        let mut notices = Vec::new();
        if let Some(name) = self.event_name.as_deref()
            && crate::EventKind::from_name(name) == crate::EventKind::Other
        {
            notices.push(Notice::UnknownEventName(name.to_string()));
        }
        if self.time_unix_nano == 0 && self.observed_time_unix_nano == 0 {
            notices.push(Notice::TimeEstimated);
        }
        if self.event_id.as_deref().is_none_or(str::is_empty) {
            notices.push(Notice::EventIdAssigned);
        }
        notices.extend(self.dropped_content.iter().cloned().map(Notice::ContentDropped));
        notices
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> EventRecord<'static> {
        let mut record = EventRecord::new();
        record.set("host.id".into(), AttrValue::Str("wks-1".into()));
        record.set("event.name".into(), AttrValue::Str("network.flow".into()));
        record
    }

    #[test]
    fn later_values_override_earlier_ones() {
        let mut record = valid();
        record.set("host.id".into(), AttrValue::Str("wks-2".into()));
        record.set("custom.tag".into(), AttrValue::Int(1));
        record.set("custom.tag".into(), AttrValue::Int(2));
        assert_eq!(record.host_id.as_deref(), Some("wks-2"));
        assert_eq!(record.extra, vec![("custom.tag".into(), AttrValue::Int(2))]);
    }

    #[test]
    fn missing_host_or_name_and_bad_ints_are_rejected() {
        let mut no_host = valid();
        no_host.host_id = None;
        assert_eq!(no_host.validate(), Err(RejectReason::MissingHostId));
        let mut blank_host = valid();
        blank_host.host_id = Some("  ".into());
        assert_eq!(blank_host.validate(), Err(RejectReason::MissingHostId));
        let mut no_name = valid();
        no_name.event_name = None;
        assert_eq!(no_name.validate(), Err(RejectReason::MissingEventName));
        let mut bad_port = valid();
        bad_port.set("destination.port".into(), AttrValue::Str("https".into()));
        let error = bad_port.validate().unwrap_err();
        assert_eq!(error.label(), "invalid_attribute");
        assert!(error.to_string().contains("destination.port"), "{error}");
        assert!(valid().validate().is_ok());
    }

    #[test]
    fn content_like_attributes_are_dropped_and_reported() {
        let mut record = valid();
        record.set("clipboard.content".into(), AttrValue::Str("secret".into()));
        assert!(record.extra.is_empty());
        assert!(
            record
                .notices()
                .contains(&Notice::ContentDropped("clipboard.content".into()))
        );
    }
}
