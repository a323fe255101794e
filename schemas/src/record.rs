//! One event, normalized from whatever transport carried it, before it becomes a row.

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::fields::{ATTR_FIELDS, FieldType, attr};
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
    /// An OTLP LogRecord's body when it is a short string: some producers name the
    /// event there (Claude Code). Read by the producer mappings, never stored.
    pub body: Option<Cow<'a, str>>,
    /// The producer mapping that rewrote the record (`producers::REGISTRY`), if one did.
    pub mapped_by: Option<&'static str>,
    /// Values of the typed attribute columns, indexed like `ATTR_FIELDS`.
    typed: Vec<Option<AttrValue<'a>>>,
    /// Which of `typed` hold a value, one bit each: an event sets a handful of the
    /// columns, and clearing or appending all of them per event showed in the profile.
    typed_set: TypedSet,
    /// Attributes the contract does not name, for the map column.
    pub extra: Vec<(Cow<'a, str>, AttrValue<'a>)>,
    /// Attributes set, kept or not: past `MAX_ATTRIBUTES` the record is rejected.
    attributes_set: usize,
    /// The first value over `MAX_VALUE_BYTES`: its name and size.
    oversized: Option<(String, usize)>,
    /// Bytes of text in the values set (what the record costs to keep).
    value_bytes: usize,
    /// Where each name is in `extra`, once it is too long to search.
    extra_index: ahash::AHashMap<Cow<'a, str>, usize>,
}

/// One bit per typed attribute column.
type TypedSet = u128;
const _: () = assert!(
    ATTR_FIELDS.len() <= TypedSet::BITS as usize,
    "more typed attributes than TypedSet has bits: widen it"
);

/// Below this many unnamed attributes a linear search beats hashing.
const LINEAR_SEARCH: usize = 16;

fn text_bytes(value: &AttrValue<'_>) -> usize {
    match value {
        AttrValue::Str(text) => text.len(),
        AttrValue::Complex(text) => text.len(),
        AttrValue::Int(_) | AttrValue::Double(_) | AttrValue::Bool(_) => 0,
    }
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
        self.body = None;
        self.mapped_by = None;
        for position in self.typed_positions() {
            self.typed[position] = None;
        }
        self.typed_set = 0;
        self.extra.clear();
        self.attributes_set = 0;
        self.oversized = None;
        self.value_bytes = 0;
        self.extra_index.clear();
    }

    /// Sets one attribute by its contract name; a later call for the same name wins
    /// (log attributes are applied after resource attributes, so they override).
    pub fn set(&mut self, name: Cow<'a, str>, value: AttrValue<'a>) {
        self.attributes_set += 1;
        if self.attributes_set > crate::limits::MAX_ATTRIBUTES || self.oversized.is_some() {
            return; // rejected already: the rest costs nothing
        }
        let bytes = text_bytes(&value);
        if bytes > crate::limits::MAX_VALUE_BYTES {
            self.oversized = Some((name.into_owned(), bytes));
            return;
        }
        self.value_bytes += bytes;
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
                    self.typed_set |= 1 << position;
                } else {
                    self.set_extra(name, value);
                }
            }
        }
    }

    fn set_extra(&mut self, name: Cow<'a, str>, value: AttrValue<'a>) {
        if self.extra.len() < LINEAR_SEARCH {
            match self.extra.iter_mut().find(|(key, _)| key == &name) {
                Some(slot) => slot.1 = value,
                None => self.extra.push((name, value)),
            }
            return;
        }
        if self.extra_index.is_empty() {
            for (position, (key, _)) in self.extra.iter().enumerate() {
                self.extra_index.insert(key.clone(), position);
            }
        }
        match self.extra_index.get(&name) {
            Some(&position) => self.extra[position].1 = value,
            None => {
                self.extra_index.insert(name.clone(), self.extra.len());
                self.extra.push((name, value));
            }
        }
    }

    /// The value of any attribute but the fixed ones (host, service, event name and id),
    /// typed or not.
    pub fn value(&self, name: &str) -> Option<&AttrValue<'a>> {
        match typed_index(name) {
            Some(position) => self.typed[position].as_ref(),
            None => self.extra.iter().find(|(key, _)| key == name).map(|(_, value)| value),
        }
    }

    /// `value` as text.
    pub fn text(&self, name: &str) -> Option<Cow<'_, str>> {
        self.value(name).map(AttrValue::to_text)
    }

    /// Takes an attribute out of the record (a producer mapping moved or dropped it).
    pub fn remove(&mut self, name: &str) -> Option<AttrValue<'a>> {
        if let Some(position) = typed_index(name) {
            self.typed_set &= !(1 << position);
            return self.typed[position].take();
        }
        let position = self.extra.iter().position(|(key, _)| key == name)?;
        self.extra_index.clear(); // positions moved; rebuilt when next needed
        Some(self.extra.remove(position).1)
    }

    /// Sets an attribute a producer mapping derived.
    pub fn put(&mut self, name: &'static str, value: impl Into<String>) {
        self.set(Cow::Borrowed(name), AttrValue::Str(Cow::Owned(value.into())));
    }

    /// Sets an attribute to a value taken from another (kept borrowed where it was).
    pub fn put_value(&mut self, name: &'static str, value: AttrValue<'a>) {
        self.set(Cow::Borrowed(name), value);
    }

    /// Attributes set on the record (resource and log attributes, kept or not).
    pub fn attributes_set(&self) -> usize {
        self.attributes_set
    }

    /// Bytes of text in the values set, up to the first refused one.
    pub fn value_bytes(&self) -> usize {
        self.value_bytes
    }

    /// The value of a typed attribute by its contract name.
    pub fn get(&self, name: &str) -> Option<&AttrValue<'a>> {
        typed_index(name).and_then(|position| self.typed[position].as_ref())
    }

    /// The positions in `ATTR_FIELDS` of the typed attributes set, in column order.
    fn typed_positions(&self) -> impl Iterator<Item = usize> + use<> {
        let mut left = self.typed_set;
        std::iter::from_fn(move || {
            (left != 0).then(|| {
                let position = left.trailing_zeros() as usize;
                left &= left - 1;
                position
            })
        })
    }

    /// The typed attributes set, by their position in `ATTR_FIELDS`, in column order.
    pub fn typed_values(&self) -> impl Iterator<Item = (usize, &AttrValue<'a>)> {
        self.typed_positions().map(|position| {
            let value = self.typed[position].as_ref().expect("a set bit has a value");
            (position, value)
        })
    }

    /// Checks the record against the contract without changing it: what would be stored,
    /// or why it cannot be.
    pub fn validate(&self) -> Result<(), RejectReason> {
        if self.attributes_set > crate::limits::MAX_ATTRIBUTES {
            return Err(RejectReason::TooManyAttributes {
                count: self.attributes_set,
                limit: crate::limits::MAX_ATTRIBUTES,
            });
        }
        if let Some((name, bytes)) = &self.oversized {
            return Err(RejectReason::ValueTooLarge {
                name: name.clone(),
                bytes: *bytes,
                limit: crate::limits::MAX_VALUE_BYTES,
            });
        }
        if self.host_id.as_deref().is_none_or(|id| id.trim().is_empty()) {
            return Err(RejectReason::MissingHostId);
        }
        if self.event_name.as_deref().is_none_or(|name| name.trim().is_empty()) {
            return Err(RejectReason::MissingEventName);
        }
        for (position, value) in self.typed_values() {
            let field = &ATTR_FIELDS[position];
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
    fn many_attributes_stay_in_order_and_the_last_value_of_a_name_wins() {
        let mut record = valid();
        for round in 0..2 {
            for n in 0..100 {
                record.set(format!("custom.{n}").into(), AttrValue::Int(round));
            }
        }
        assert_eq!(record.extra.len(), 100);
        assert_eq!(record.extra[42], ("custom.42".into(), AttrValue::Int(1)));
        assert!(record.validate().is_ok());
    }

    #[test]
    fn a_record_past_the_attribute_or_value_bounds_is_rejected() {
        let mut crowded = valid();
        for n in 0..100_000 {
            crowded.set(format!("custom.{n}").into(), AttrValue::Int(n));
        }
        assert_eq!(crowded.validate().unwrap_err().label(), "too_many_attributes");
        assert!(crowded.extra.len() < crate::limits::MAX_ATTRIBUTES);
        let mut large = valid();
        large.set(
            "custom.blob".into(),
            AttrValue::Str("x".repeat(crate::limits::MAX_VALUE_BYTES + 1).into()),
        );
        let error = large.validate().unwrap_err();
        assert_eq!(error.label(), "value_too_large");
        assert!(error.to_string().contains("custom.blob"), "{error}");
        large.reset();
        large.set("host.id".into(), AttrValue::Str("wks-1".into()));
        large.set("event.name".into(), AttrValue::Str("network.flow".into()));
        assert!(large.validate().is_ok(), "reset clears the bounds");
    }
}
