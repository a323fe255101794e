//! Builds Arrow record batches of events, checking each record on the way in.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Int64Builder, MapBuilder, StringBuilder, TimestampNanosecondBuilder,
};
use arrow::record_batch::RecordBatch;

use crate::content::ContentFate;
use crate::fields::{ATTR_FIELDS, FieldType};
use crate::kind::EventKind;
use crate::provenance::Provenance;
use crate::record::EventRecord;
use crate::reject::{Notice, RejectReason};
use crate::schema::event_schema;

/// Whether an event's signature was checked, and how it came out (contract section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum SignatureStatus {
    Missing,
    Valid,
    Bad,
}

impl SignatureStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

enum AttrBuilder {
    Str(StringBuilder),
    Int(Int64Builder),
}

/// Collects validated events into columns. Append records, then `finish`.
pub struct EventBatchBuilder {
    time: TimestampNanosecondBuilder,
    observed_time: TimestampNanosecondBuilder,
    received_time: TimestampNanosecondBuilder,
    time_estimated: BooleanBuilder,
    host_id: StringBuilder,
    host_name: StringBuilder,
    service_name: StringBuilder,
    event_name: StringBuilder,
    event_id: StringBuilder,
    signature_status: StringBuilder,
    transport: StringBuilder,
    producer: StringBuilder,
    tls: BooleanBuilder,
    /// A column an event does not set falls behind `rows` until its next value, or
    /// `finish`, appends the missing nulls at once.
    attrs: Vec<AttrBuilder>,
    extra: MapBuilder<StringBuilder, StringBuilder>,
    rows: usize,
    assigned_ids: u64,
    id_prefix: String,
    keys: std::sync::Arc<crate::signature::KeyRegistry>,
    /// Whether Cordon's own kinds (`cordon.response`) may be appended: only for
    /// Cordon's own writers, so no producer can forge a response outcome.
    own_kinds: bool,
    /// Event times further ahead of arrival than this are flagged (None: never).
    max_clock_skew_nanos: Option<i64>,
    /// Event times outside these bounds are rejected (None: any time in range).
    time_bounds: Option<crate::TimeBounds>,
    /// How the records arrive, stored on each row; its host scope is checked.
    provenance: Provenance,
    /// Records refused for a host outside the scope, by host, for the findings.
    spoofed: crate::spoofing::SpoofedHosts,
    /// Which unnamed attributes are stored as sent, hashed or dropped.
    content: std::sync::Arc<crate::content::ContentPolicy>,
    /// The policy's answer by attribute name: a resource's attributes repeat on every
    /// record, and matching names against the allow-list each time showed in the profile.
    allowed_names: ahash::AHashMap<String, bool>,
}

/// The attribute Cordon sets on an event whose time is ahead of its arrival by more
/// than the allowed skew: how many seconds ahead. A producer's own value is dropped.
pub const CLOCK_AHEAD_ATTRIBUTE: &str = "cordon.clock_ahead_seconds";

/// What happened to one appended record.
pub type AppendResult = Result<Vec<Notice>, RejectReason>;

impl EventBatchBuilder {
    pub fn with_capacity(capacity: usize) -> Self {
        let strings = || StringBuilder::with_capacity(capacity, capacity * 16);
        EventBatchBuilder {
            time: TimestampNanosecondBuilder::with_capacity(capacity),
            observed_time: TimestampNanosecondBuilder::with_capacity(capacity),
            received_time: TimestampNanosecondBuilder::with_capacity(capacity),
            time_estimated: BooleanBuilder::with_capacity(capacity),
            host_id: strings(),
            host_name: strings(),
            service_name: strings(),
            event_name: strings(),
            event_id: strings(),
            signature_status: strings(),
            transport: strings(),
            producer: strings(),
            tls: BooleanBuilder::with_capacity(capacity),
            attrs: ATTR_FIELDS
                .iter()
                .map(|field| match field.ty {
                    FieldType::Str => AttrBuilder::Str(StringBuilder::with_capacity(capacity, 0)),
                    FieldType::Int => AttrBuilder::Int(Int64Builder::with_capacity(capacity)),
                })
                .collect(),
            extra: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            rows: 0,
            assigned_ids: 0,
            id_prefix: String::new(),
            keys: std::sync::Arc::new(crate::signature::KeyRegistry::new()),
            own_kinds: false,
            max_clock_skew_nanos: None,
            time_bounds: None,
            provenance: Provenance::unauthenticated("unknown"),
            spoofed: Default::default(),
            content: crate::content::ContentPolicy::shared_default(),
            allowed_names: Default::default(),
        }
    }

    /// Stores producers' unnamed attributes as `policy` says (allow-list, hash, drop).
    pub fn with_content_policy(mut self, policy: std::sync::Arc<crate::content::ContentPolicy>) -> Self {
        self.content = policy;
        self.allowed_names.clear();
        self
    }

    /// Stores `provenance` on each row and rejects records for hosts outside its scope
    /// (`host_not_permitted`).
    pub fn with_provenance(mut self, provenance: Provenance) -> Self {
        self.provenance = provenance;
        self
    }

    /// Rejects records whose event time is outside `bounds` around their arrival.
    pub fn with_time_bounds(mut self, bounds: crate::TimeBounds) -> Self {
        self.time_bounds = Some(bounds);
        self
    }

    /// Flags events whose time is ahead of their arrival by more than `skew`.
    pub fn with_max_clock_skew(mut self, skew: std::time::Duration) -> Self {
        self.max_clock_skew_nanos = Some(i64::try_from(skew.as_nanos()).unwrap_or(i64::MAX));
        self
    }

    /// Accepts Cordon's own event kinds (its response feed, rule fixtures).
    pub fn allowing_own_kinds(mut self) -> Self {
        self.own_kinds = true;
        self
    }

    /// Verifies signatures against `keys`; without, every signature is `bad`.
    pub fn with_keys(mut self, keys: std::sync::Arc<crate::signature::KeyRegistry>) -> Self {
        self.keys = keys;
        self
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Checks a record and, if it may be stored, appends it as one row.
    /// `received_unix_nano` is when the pipeline got it.
    pub fn append(&mut self, record: &EventRecord<'_>, received_unix_nano: i64) -> AppendResult {
        // An agent names no host; a credential for exactly one host names it instead.
        if record.host_id.as_deref().is_none_or(|host| host.trim().is_empty())
            && let Some(host) = self.provenance.hosts.single_host()
        {
            let mut hosted = record.clone();
            hosted.host_id = Some(std::borrow::Cow::Owned(host.to_string()));
            return self.append(&hosted, received_unix_nano);
        }
        record.validate()?;
        let kind = EventKind::from_name(record.event_name.as_deref().unwrap_or_default());
        if !self.own_kinds && kind.is_cordons_own() {
            return Err(RejectReason::ReservedKind(kind.as_str()));
        }
        let host = record.host_id.as_deref().unwrap_or_default().trim();
        if !self.provenance.hosts.covers(host) {
            self.spoofed.add(host, record.event_name.as_deref().unwrap_or_default());
            return Err(RejectReason::HostNotPermitted {
                host: host.to_string(),
                producer: self.provenance.producer.as_deref().unwrap_or("(none)").to_string(),
            });
        }
        // Cordon's own writers (the response feed) name their attributes themselves.
        let producers = !self.own_kinds;
        self.append_row(record, received_unix_nano, producers)
    }

    /// Appends a record Cordon itself wrote about a request (a `cordon.spoofing`
    /// finding), past the checks that hold producers to their kinds and hosts.
    pub fn append_own(&mut self, record: &EventRecord<'_>, received_unix_nano: i64) -> AppendResult {
        record.validate()?;
        self.append_row(record, received_unix_nano, false)
    }

    /// Appends one `cordon.spoofing` finding per host that records were refused for
    /// since the last call; returns how many.
    pub fn append_spoofing_findings(&mut self, received_unix_nano: i64) -> usize {
        let findings = std::mem::take(&mut self.spoofed).findings(received_unix_nano);
        findings
            .iter()
            .filter(|finding| self.append_own(finding, received_unix_nano).is_ok())
            .count()
    }

    /// Whether the content policy stores an attribute of this name as sent (cached).
    fn name_allowed(&mut self, name: &str) -> bool {
        if let Some(allowed) = self.allowed_names.get(name) {
            return *allowed;
        }
        let allowed = self.content.allows(name);
        // Bounded: a request of random names must not grow it without end.
        if self.allowed_names.len() < 4_096 {
            self.allowed_names.insert(name.to_string(), allowed);
        }
        allowed
    }

    /// `from_producer`: its unnamed attributes go through the content policy.
    fn append_row(&mut self, record: &EventRecord<'_>, received_unix_nano: i64, from_producer: bool) -> AppendResult {
        let mut notices = record.notices();
        let received = received_unix_nano;
        let in_range = |nanos: u64| i64::try_from(nanos).map_err(|_| RejectReason::TimeOutOfRange(nanos));
        let (time, estimated) = match (record.time_unix_nano, record.observed_time_unix_nano) {
            (0, 0) => (received, true),
            (0, observed) => (in_range(observed)?, false),
            (time, _) => (in_range(time)?, false),
        };
        // Checked before anything is appended: a rejected record adds no row.
        let observed = in_range(record.observed_time_unix_nano)?;
        if let Some(bounds) = &self.time_bounds {
            bounds.check(time, received).map_err(|breach| breach.reason(bounds))?;
        }
        self.time.append_value(time);
        if observed == 0 {
            self.observed_time.append_null();
        } else {
            self.observed_time.append_value(observed);
        }
        self.received_time.append_value(received);
        self.time_estimated.append_value(estimated);
        self.host_id
            .append_value(record.host_id.as_deref().unwrap_or_default().trim());
        self.host_name.append_option(record.host_name.as_deref());
        self.service_name.append_option(record.service_name.as_deref());
        let name = record.event_name.as_deref().unwrap_or_default();
        self.event_name.append_value(EventKind::from_name(name).as_str());
        match record.event_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => self.event_id.append_value(id),
            None => {
                if self.id_prefix.is_empty() {
                    self.id_prefix = format!("cordon-{:016x}", fresh_id_seed());
                }
                self.assigned_ids += 1;
                self.event_id
                    .append_value(format!("{}-{}", self.id_prefix, self.assigned_ids));
            }
        }
        let signature = if record.signature.is_some() {
            self.keys.verify(record)
        } else {
            SignatureStatus::Missing
        };
        self.signature_status.append_value(signature.as_str());
        self.transport.append_value(self.provenance.transport);
        self.producer.append_option(self.provenance.producer.as_deref());
        self.tls.append_value(self.provenance.tls);
        // Only the columns the record sets; the rest catch up with nulls in bulk.
        for (position, value) in record.typed_values() {
            match &mut self.attrs[position] {
                AttrBuilder::Str(column) => {
                    column.append_nulls(self.rows - column.len());
                    column.append_value(value.to_text());
                }
                AttrBuilder::Int(column) => {
                    column.append_nulls(self.rows - column.len());
                    // validate() has checked that it converts.
                    column.append_option(value.as_int());
                }
            }
        }
        let unknown_name = EventKind::from_name(name) == EventKind::Other && name != "other";
        if unknown_name {
            // Keep the producer's name where hunts can still find it.
            self.extra.keys().append_value("event.name");
            self.extra.values().append_value(name);
        }
        let ahead = time.saturating_sub(received);
        if self.max_clock_skew_nanos.is_some_and(|skew| ahead > skew) {
            let seconds = ahead / 1_000_000_000;
            notices.push(Notice::ClockAhead(seconds));
            self.extra.keys().append_value(CLOCK_AHEAD_ATTRIBUTE);
            self.extra.values().append_value(seconds.to_string());
        }
        // One notice per record and outcome, naming the first attribute: a record of a
        // thousand unlisted attributes must not make a thousand notices.
        let mut hashed: (Option<&str>, usize) = (None, 0);
        let mut dropped: (Option<&str>, usize) = (None, 0);
        for (key, value) in &record.extra {
            if key == CLOCK_AHEAD_ATTRIBUTE {
                continue;
            }
            let text = value.to_text();
            let allowed = !from_producer || self.name_allowed(key);
            if !allowed {
                match self.content.judge_unlisted(&text) {
                    ContentFate::Keep => unreachable!("judge_unlisted never keeps"),
                    ContentFate::Hash(digest) => {
                        hashed = (hashed.0.or(Some(key)), hashed.1 + 1);
                        self.extra.keys().append_value(key);
                        self.extra.values().append_value(digest);
                        continue;
                    }
                    ContentFate::Drop => {
                        dropped = (dropped.0.or(Some(key)), dropped.1 + 1);
                        continue;
                    }
                }
            }
            self.extra.keys().append_value(key);
            self.extra.values().append_value(text);
        }
        let named = |(first, count): (Option<&str>, usize)| {
            first.map(|first| match count {
                1 => first.to_string(),
                _ => format!("{first} and {} more", count - 1),
            })
        };
        notices.extend(named(hashed).map(Notice::ContentHashed));
        notices.extend(named(dropped).map(Notice::ContentDropped));
        self.extra
            .append(true)
            .expect("map keys and values are appended in pairs");
        self.rows += 1;
        Ok(notices)
    }

    /// The rows appended so far as a batch of the event schema; the builder is empty after.
    pub fn finish(&mut self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish().with_timezone("UTC")),
            Arc::new(self.observed_time.finish().with_timezone("UTC")),
            Arc::new(self.received_time.finish().with_timezone("UTC")),
            Arc::new(self.time_estimated.finish()),
            Arc::new(self.host_id.finish()),
            Arc::new(self.host_name.finish()),
            Arc::new(self.service_name.finish()),
            Arc::new(self.event_name.finish()),
            Arc::new(self.event_id.finish()),
            Arc::new(self.signature_status.finish()),
            Arc::new(self.transport.finish()),
            Arc::new(self.producer.finish()),
            Arc::new(self.tls.finish()),
        ];
        for builder in &mut self.attrs {
            columns.push(match builder {
                AttrBuilder::Str(column) => {
                    column.append_nulls(self.rows - column.len());
                    Arc::new(column.finish())
                }
                AttrBuilder::Int(column) => {
                    column.append_nulls(self.rows - column.len());
                    Arc::new(column.finish())
                }
            });
        }
        columns.push(Arc::new(self.extra.finish()));
        self.rows = 0;
        RecordBatch::try_new(event_schema(), columns).expect("builder columns follow the event schema")
    }
}

fn fresh_id_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
