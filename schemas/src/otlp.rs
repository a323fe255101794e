//! OTLP LogRecords to events (contract section 2), and events back to OTLP for producers.

use std::borrow::Cow;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::collections::BTreeMap;

use crate::flat::FlatEvent;

use crate::batch::EventBatchBuilder;
use crate::fields::attr;
use crate::limits::Expansion;
use crate::record::EventRecord;
use crate::reject::{Notice, RejectReason};
use crate::value::AttrValue;

/// One rejected record of a request: where it was, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Position of the record in the request, counting all records in order.
    pub index: usize,
    pub reason: RejectReason,
}

/// What converting one request did: rows appended, rejections, notices.
#[derive(Debug, Default)]
pub struct ConversionReport {
    pub accepted: usize,
    pub rejected: Vec<Rejection>,
    pub notices: Vec<Notice>,
    /// What a record is called in messages: `log record(s)` unless set (`span(s)`).
    pub unit: Option<&'static str>,
    /// Accepted records a producer mapping rewrote, by mapping (`producers::REGISTRY`).
    pub mapped: Vec<(&'static str, usize)>,
}

impl ConversionReport {
    /// Folds the outcome of one record into the report.
    pub fn record(&mut self, index: usize, outcome: Result<Vec<Notice>, RejectReason>) {
        match outcome {
            Ok(notices) => {
                self.accepted += 1;
                self.notices.extend(notices);
            }
            Err(reason) => self.rejected.push(Rejection { index, reason }),
        }
    }

    /// Counts an accepted record that `mapping` rewrote.
    pub fn mapped_by(&mut self, mapping: &'static str) {
        match self.mapped.iter_mut().find(|(name, _)| *name == mapping) {
            Some((_, count)) => *count += 1,
            None => self.mapped.push((mapping, 1)),
        }
    }

    /// Records one record's outcome, and the mapping that rewrote it if it was kept.
    pub fn record_mapped(
        &mut self,
        index: usize,
        outcome: Result<Vec<Notice>, RejectReason>,
        mapped: Option<&'static str>,
    ) {
        if outcome.is_ok()
            && let Some(mapping) = mapped
        {
            self.mapped_by(mapping);
        }
        self.record(index, outcome);
    }

    /// Adds `other`'s records after this report's (their indexes shift by `offset`).
    pub fn merge(&mut self, other: ConversionReport, offset: usize) {
        self.unit = self.unit.or(other.unit);
        for (mapping, count) in other.mapped {
            match self.mapped.iter_mut().find(|(name, _)| *name == mapping) {
                Some((_, total)) => *total += count,
                None => self.mapped.push((mapping, count)),
            }
        }
        self.accepted += other.accepted;
        self.rejected.extend(other.rejected.into_iter().map(|mut rejection| {
            rejection.index += offset;
            rejection
        }));
        self.notices.extend(other.notices);
    }

    /// A message for the producer naming what was wrong (OTLP `partial_success`), with
    /// the first few records' reasons. Empty when everything was stored as sent.
    pub fn message(&self) -> String {
        let unit = self.unit.unwrap_or("log record(s)");
        const SHOWN: usize = 5;
        let mut parts = Vec::new();
        if !self.rejected.is_empty() {
            let reasons: Vec<String> = self
                .rejected
                .iter()
                .take(SHOWN)
                .map(|rejection| format!("record {}: {}", rejection.index, rejection.reason))
                .collect();
            let more = self.rejected.len().saturating_sub(SHOWN);
            let tail = if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            };
            parts.push(format!(
                "{} {unit} rejected: {}{}",
                self.rejected.len(),
                reasons.join("; "),
                tail
            ));
        }
        if !self.notices.is_empty() {
            let mut distinct: Vec<String> = Vec::new();
            for notice in &self.notices {
                let text = notice.to_string();
                if !distinct.contains(&text) {
                    distinct.push(text);
                }
            }
            let more = distinct.len().saturating_sub(SHOWN);
            distinct.truncate(SHOWN);
            let tail = if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            };
            parts.push(format!("warnings: {}{}", distinct.join("; "), tail));
        }
        parts.join(". ")
    }
}

/// One request's conversion, record by record: each record charged against the
/// request's bounds (`limits::Expansion`), then appended or its rejection noted.
#[derive(Default)]
pub struct RequestConversion {
    pub report: ConversionReport,
    /// Records seen, kept or not.
    pub records: usize,
    expansion: Expansion,
}

impl RequestConversion {
    /// The resource attributes to expand over the next record: none once the request
    /// is past its bounds (the record is then rejected without being expanded).
    pub fn resource<'r, T>(&self, attributes: &'r [T]) -> &'r [T] {
        if self.expansion.exhausted() { &[] } else { attributes }
    }

    /// Appends `record` to `builder`, or notes why not.
    pub fn append(&mut self, record: &EventRecord<'_>, builder: &mut EventBatchBuilder, received_unix_nano: i64) {
        let outcome = self
            .expansion
            .charge(record)
            .and_then(|()| builder.append(record, received_unix_nano));
        self.report.record_mapped(self.records, outcome, record.mapped_by);
        self.records += 1;
    }
}

/// The value of an OTLP AnyValue, borrowing its strings.
pub fn any_value(value: &AnyValue) -> Option<AttrValue<'_>> {
    match value.value.as_ref()? {
        Value::StringValue(text) => Some(AttrValue::Str(Cow::Borrowed(text))),
        Value::BoolValue(flag) => Some(AttrValue::Bool(*flag)),
        Value::IntValue(number) => Some(AttrValue::Int(*number)),
        Value::DoubleValue(number) => Some(AttrValue::Double(*number)),
        Value::ArrayValue(_) | Value::KvlistValue(_) | Value::BytesValue(_) => {
            Some(AttrValue::Complex(any_value_json(value).to_string()))
        }
        Value::StringValueStrindex(_) => None,
    }
}

fn any_value_json(value: &AnyValue) -> serde_json::Value {
    match &value.value {
        Some(Value::StringValue(text)) => text.clone().into(),
        Some(Value::BoolValue(flag)) => (*flag).into(),
        Some(Value::IntValue(number)) => (*number).into(),
        Some(Value::DoubleValue(number)) => (*number).into(),
        Some(Value::ArrayValue(array)) => array.values.iter().map(any_value_json).collect(),
        Some(Value::KvlistValue(list)) => list
            .values
            .iter()
            .map(|kv| {
                (
                    kv.key.clone(),
                    kv.value.as_ref().map(any_value_json).unwrap_or_default(),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Some(Value::BytesValue(bytes)) => bytes
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
            .into(),
        Some(Value::StringValueStrindex(_)) | None => serde_json::Value::Null,
    }
}

fn apply_attributes<'a>(record: &mut EventRecord<'a>, attributes: &'a [KeyValue]) {
    for kv in attributes {
        if let Some(value) = kv.value.as_ref().and_then(any_value) {
            record.set(Cow::Borrowed(kv.key.as_str()), value);
        }
    }
}

/// Bodies longer than this are messages, not event names, and are not even read.
pub const MAX_BODY_NAME: usize = 128;

/// The normalized form of one LogRecord under its resource's attributes.
pub fn log_record_to_event<'a>(resource_attributes: &'a [KeyValue], log: &'a LogRecord) -> EventRecord<'a> {
    let mut record = EventRecord::new();
    record.time_unix_nano = log.time_unix_nano;
    record.observed_time_unix_nano = log.observed_time_unix_nano;
    apply_attributes(&mut record, resource_attributes);
    apply_attributes(&mut record, &log.attributes);
    if !log.event_name.is_empty() {
        record.event_name = Some(Cow::Borrowed(log.event_name.as_str()));
    }
    // The body is never stored: raw content stays on the endpoint (contract section 2).
    // A short one may name the event (`producers::normalize`).
    if let Some(Value::StringValue(body)) = log.body.as_ref().and_then(|body| body.value.as_ref())
        && body.len() <= MAX_BODY_NAME
    {
        record.body = Some(Cow::Borrowed(body.as_str()));
    }
    crate::producers::normalize(&mut record);
    record
}

/// Appends every valid record of an OTLP logs request to `builder`.
pub fn convert_request(
    request: &ExportLogsServiceRequest,
    received_unix_nano: i64,
    builder: &mut EventBatchBuilder,
) -> ConversionReport {
    let mut conversion = RequestConversion::default();
    for resource_logs in &request.resource_logs {
        let resource_attributes: &[KeyValue] = resource_logs
            .resource
            .as_ref()
            .map(|resource| resource.attributes.as_slice())
            .unwrap_or_default();
        for scope_logs in &resource_logs.scope_logs {
            for log in &scope_logs.log_records {
                let record = log_record_to_event(conversion.resource(resource_attributes), log);
                conversion.append(&record, builder, received_unix_nano);
            }
        }
    }
    conversion.report
}

/// Number of LogRecords in a request.
pub fn count_records(request: &ExportLogsServiceRequest) -> usize {
    request
        .resource_logs
        .iter()
        .flat_map(|resource_logs| &resource_logs.scope_logs)
        .map(|scope_logs| scope_logs.log_records.len())
        .sum()
}

/// An OTLP KeyValue, for producers that build requests.
pub fn key_value(key: &str, value: &AttrValue<'_>) -> KeyValue {
    let value = match value {
        AttrValue::Str(text) => Value::StringValue(text.to_string()),
        AttrValue::Int(number) => Value::IntValue(*number),
        AttrValue::Double(number) => Value::DoubleValue(*number),
        AttrValue::Bool(flag) => Value::BoolValue(*flag),
        AttrValue::Complex(json) => Value::StringValue(json.clone()),
    };
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// Whether an attribute belongs on the OTLP resource rather than the LogRecord.
pub fn is_resource_attribute(name: &str) -> bool {
    matches!(name, attr::HOST_ID | attr::HOST_NAME | attr::SERVICE_NAME)
}

/// One OTLP LogRecord for a flat event: `event.name` in the record's `event_name`
/// field, the resource attributes left out (see `events_to_request`).
pub fn flat_to_log_record(event: &FlatEvent) -> LogRecord {
    let attributes = event
        .attributes
        .iter()
        .filter(|(name, _)| !is_resource_attribute(name) && name.as_str() != attr::EVENT_NAME)
        .map(|(name, value)| key_value(name, value))
        .collect();
    LogRecord {
        time_unix_nano: event.time_unix_nano as u64,
        observed_time_unix_nano: event.time_unix_nano as u64,
        event_name: event.text(attr::EVENT_NAME).unwrap_or_default().to_string(),
        attributes,
        ..Default::default()
    }
}

/// An OTLP logs request carrying `events`, one ResourceLogs per producer (host and
/// service), as an OpenTelemetry SDK on each endpoint would send them.
pub fn events_to_request(events: &[FlatEvent]) -> ExportLogsServiceRequest {
    let mut by_resource: BTreeMap<Vec<(String, String)>, Vec<LogRecord>> = BTreeMap::new();
    for event in events {
        let resource: Vec<(String, String)> = [attr::HOST_ID, attr::HOST_NAME, attr::SERVICE_NAME]
            .into_iter()
            .filter_map(|name| Some((name.to_string(), event.get(name)?.to_text().into_owned())))
            .collect();
        by_resource.entry(resource).or_default().push(flat_to_log_record(event));
    }
    let resource_logs = by_resource
        .into_iter()
        .map(|(resource, log_records)| ResourceLogs {
            resource: Some(Resource {
                attributes: resource
                    .iter()
                    .map(|(name, value)| key_value(name, &AttrValue::Str(Cow::Borrowed(value))))
                    .collect(),
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "cordon".into(),
                    ..Default::default()
                }),
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(key: &str, value: &str) -> KeyValue {
        key_value(key, &AttrValue::Str(value.into()))
    }

    fn request(resource: Vec<KeyValue>, logs: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: logs,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn log_attributes_override_the_resource_and_event_name_field_wins() {
        let log = LogRecord {
            time_unix_nano: 10,
            event_name: "network.flow".into(),
            attributes: vec![string("host.id", "wks-log"), string("event.name", "ignored")],
            ..Default::default()
        };
        let request = request(vec![string("host.id", "wks-res")], vec![log]);
        let mut builder = EventBatchBuilder::with_capacity(1);
        let report = convert_request(&request, 99, &mut builder);
        assert_eq!(report.accepted, 1);
        let batch = builder.finish();
        use arrow::array::AsArray;
        assert_eq!(
            batch.column_by_name("host_id").unwrap().as_string::<i32>().value(0),
            "wks-log"
        );
        assert_eq!(
            batch.column_by_name("event_name").unwrap().as_string::<i32>().value(0),
            "network.flow"
        );
    }

    #[test]
    fn flat_events_survive_the_trip_through_otlp() {
        let mut first = FlatEvent::new(1_000, "network.flow", "wks-1");
        first
            .set("service.name", "agent-broker")
            .set_int("destination.port", 443);
        let second = FlatEvent::new(2_000, "file.access", "wks-2");
        let request = events_to_request(&[first, second]);
        assert_eq!(request.resource_logs.len(), 2);
        let mut builder = EventBatchBuilder::with_capacity(2);
        let report = convert_request(&request, 1, &mut builder);
        assert_eq!((report.accepted, report.rejected.len()), (2, 0));
        let batch = builder.finish();
        use arrow::array::AsArray;
        let services = batch.column_by_name("service_name").unwrap().as_string::<i32>();
        assert_eq!(services.value(0), "agent-broker");
        assert!(batch.column_by_name("service_name").unwrap().is_null(1));
    }

    #[test]
    fn a_mixed_batch_keeps_the_good_records_and_names_the_bad() {
        let good = LogRecord {
            event_name: "file.access".into(),
            attributes: vec![string("host.id", "wks-1")],
            ..Default::default()
        };
        let no_host = LogRecord {
            event_name: "file.access".into(),
            ..Default::default()
        };
        let request = request(vec![], vec![good.clone(), no_host, good]);
        let mut builder = EventBatchBuilder::with_capacity(3);
        let report = convert_request(&request, 1, &mut builder);
        assert_eq!(report.accepted, 2);
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(report.rejected[0].index, 1);
        let message = report.message();
        assert!(
            message.contains("1 log record(s) rejected: record 1: missing host.id"),
            "{message}"
        );
    }
}
