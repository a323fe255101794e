//! Converts an encoded OTLP `ExportLogsServiceRequest` straight into rows, borrowing
//! every string from the request buffer.
//!
//! Why not prost: decoding into the generated structs allocates every key and value
//! (about 30 allocations a record) only for them to be copied into Arrow and dropped;
//! in the ingest profile that was the largest single cost. This walks the wire format of
//! the five messages involved and nothing else; anything it does not store (bodies,
//! trace ids, severity, scopes) is skipped unread. Arrays, maps and bytes values, which
//! are rare, go through prost. The tests check it against prost on the same bytes.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::AnyValue;
use prost::Message;

use crate::batch::EventBatchBuilder;
use crate::otlp::{ConversionReport, RequestConversion, any_value};
use crate::record::EventRecord;
use crate::value::AttrValue;

/// Why bytes are not an `ExportLogsServiceRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub struct WireError {
    pub what: &'static str,
    pub offset: usize,
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
    /// Offset of `bytes` in the whole request, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], base: usize) -> Self {
        Reader {
            bytes,
            position: 0,
            base,
        }
    }

    fn error(&self, what: &'static str) -> WireError {
        WireError {
            what,
            offset: self.base + self.position,
        }
    }

    fn done(&self) -> bool {
        self.position >= self.bytes.len()
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.bytes.get(self.position) else {
                return Err(self.error("truncated varint"));
            };
            self.position += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }

    fn fixed64(&mut self) -> Result<u64, WireError> {
        let end = self.position + 8;
        let Some(bytes) = self.bytes.get(self.position..end) else {
            return Err(self.error("truncated fixed64"));
        };
        self.position = end;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    /// A length-delimited field's bytes, as a reader of their own.
    fn nested(&mut self) -> Result<Reader<'a>, WireError> {
        let len = self.varint()? as usize;
        let start = self.position;
        let Some(bytes) = start.checked_add(len).and_then(|end| self.bytes.get(start..end)) else {
            return Err(self.error("length runs past the end of the message"));
        };
        self.position = start + len;
        Ok(Reader::new(bytes, self.base + start))
    }

    fn string(&mut self) -> Result<&'a str, WireError> {
        let nested = self.nested()?;
        std::str::from_utf8(nested.bytes).map_err(|_| WireError {
            what: "string is not UTF-8",
            offset: nested.base,
        })
    }

    /// The next field number and wire type, or None at the end.
    fn key(&mut self) -> Result<Option<(u32, u8)>, WireError> {
        if self.done() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = (key >> 3) as u32;
        if field == 0 {
            return Err(self.error("field number 0"));
        }
        Ok(Some((field, (key & 7) as u8)))
    }

    fn skip(&mut self, wire_type: u8) -> Result<(), WireError> {
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.nested().map(drop),
            FIXED32 => {
                let end = self.position + 4;
                if end > self.bytes.len() {
                    return Err(self.error("truncated fixed32"));
                }
                self.position = end;
                Ok(())
            }
            _ => Err(self.error("unsupported wire type")),
        }
    }

    fn expect(&self, wire_type: u8, wanted: u8) -> Result<(), WireError> {
        if wire_type == wanted {
            Ok(())
        } else {
            Err(self.error("field has the wrong wire type"))
        }
    }
}

fn any_value_of<'a>(mut reader: Reader<'a>) -> Result<Option<AttrValue<'a>>, WireError> {
    let whole = reader.bytes;
    let base = reader.base;
    let mut value = None;
    while let Some((field, wire_type)) = reader.key()? {
        match field {
            1 => {
                reader.expect(wire_type, LEN)?;
                value = Some(AttrValue::Str(Cow::Borrowed(reader.string()?)));
            }
            2 => {
                reader.expect(wire_type, VARINT)?;
                value = Some(AttrValue::Bool(reader.varint()? != 0));
            }
            3 => {
                reader.expect(wire_type, VARINT)?;
                value = Some(AttrValue::Int(reader.varint()? as i64));
            }
            4 => {
                reader.expect(wire_type, FIXED64)?;
                value = Some(AttrValue::Double(f64::from_bits(reader.fixed64()?)));
            }
            5..=7 => {
                // Arrays, maps and bytes: rare, so decoded by prost and kept as JSON.
                let decoded = AnyValue::decode(whole).map_err(|_| WireError {
                    what: "invalid AnyValue",
                    offset: base,
                })?;
                return Ok(any_value(&decoded).map(AttrValue::into_owned));
            }
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(value)
}

/// Applies the attributes of a `KeyValue` to `record`.
fn apply_key_value<'a>(record: &mut EventRecord<'a>, reader: Reader<'a>) -> Result<(), WireError> {
    if let Some((key, value)) = key_value_of(reader)? {
        record.set(Cow::Borrowed(key), value);
    }
    Ok(())
}

fn key_value_of<'a>(mut reader: Reader<'a>) -> Result<Option<(&'a str, AttrValue<'a>)>, WireError> {
    let mut key = None;
    let mut value = None;
    while let Some((field, wire_type)) = reader.key()? {
        match field {
            1 => {
                reader.expect(wire_type, LEN)?;
                key = Some(reader.string()?);
            }
            2 => {
                reader.expect(wire_type, LEN)?;
                value = any_value_of(reader.nested()?)?;
            }
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(key.zip(value))
}

/// A resource's attributes, decoded once for all of its records.
fn resource_attributes<'a>(mut resource_logs: Reader<'a>) -> Result<Vec<(&'a str, AttrValue<'a>)>, WireError> {
    let mut attributes = Vec::new();
    while let Some((field, wire_type)) = resource_logs.key()? {
        if field == 1 {
            resource_logs.expect(wire_type, LEN)?;
            let mut resource = resource_logs.nested()?;
            while let Some((field, wire_type)) = resource.key()? {
                if field == 1 {
                    resource.expect(wire_type, LEN)?;
                    attributes.extend(key_value_of(resource.nested()?)?);
                } else {
                    resource.skip(wire_type)?;
                }
            }
        } else {
            resource_logs.skip(wire_type)?;
        }
    }
    Ok(attributes)
}

fn log_record<'a>(
    mut reader: Reader<'a>,
    resource: &[(&'a str, AttrValue<'a>)],
    record: &mut EventRecord<'a>,
) -> Result<(), WireError> {
    record.reset();
    for (key, value) in resource {
        record.set(Cow::Borrowed(key), value.clone());
    }
    let mut event_name = None;
    while let Some((field, wire_type)) = reader.key()? {
        match field {
            1 => {
                reader.expect(wire_type, FIXED64)?;
                record.time_unix_nano = reader.fixed64()?;
            }
            6 => {
                reader.expect(wire_type, LEN)?;
                apply_key_value(record, reader.nested()?)?;
            }
            11 => {
                reader.expect(wire_type, FIXED64)?;
                record.observed_time_unix_nano = reader.fixed64()?;
            }
            12 => {
                reader.expect(wire_type, LEN)?;
                event_name = Some(reader.string()?);
            }
            // The body is never stored: raw content stays on the endpoint. A short
            // string body may name the event (`producers::normalize`).
            5 => {
                reader.expect(wire_type, LEN)?;
                record.body = short_string_body(reader.nested()?)?;
            }
            _ => reader.skip(wire_type)?,
        }
    }
    if let Some(name) = event_name.filter(|name| !name.is_empty()) {
        record.event_name = Some(Cow::Borrowed(name));
    }
    crate::producers::normalize(record);
    Ok(())
}

/// An AnyValue body's string, when it is one and short enough to be a name.
fn short_string_body<'a>(mut reader: Reader<'a>) -> Result<Option<Cow<'a, str>>, WireError> {
    let mut body = None;
    while let Some((field, wire_type)) = reader.key()? {
        if field == 1 && wire_type == LEN {
            // Not UTF-8 is not a name; prost would refuse it, but a body is never
            // stored, so it costs the record nothing.
            let bytes = reader.nested()?.bytes;
            body = std::str::from_utf8(bytes)
                .ok()
                .filter(|text| text.len() <= crate::otlp::MAX_BODY_NAME)
                .map(Cow::Borrowed);
        } else {
            reader.skip(wire_type)?;
        }
    }
    Ok(body)
}

/// Appends every valid record of an encoded OTLP logs request to `builder`. On a
/// malformed request the builder may hold part of it: drop it.
pub fn convert_encoded_request(
    bytes: &[u8],
    received_unix_nano: i64,
    builder: &mut EventBatchBuilder,
) -> Result<(ConversionReport, usize), WireError> {
    let mut conversion = RequestConversion::default();
    let mut record = EventRecord::new();
    let mut request = Reader::new(bytes, 0);
    while let Some((field, wire_type)) = request.key()? {
        if field != 1 {
            request.skip(wire_type)?;
            continue;
        }
        request.expect(wire_type, LEN)?;
        let resource_logs = request.nested()?;
        let resource = resource_attributes(Reader::new(resource_logs.bytes, resource_logs.base))?;
        let mut scopes = resource_logs;
        while let Some((field, wire_type)) = scopes.key()? {
            if field != 2 {
                scopes.skip(wire_type)?;
                continue;
            }
            scopes.expect(wire_type, LEN)?;
            let mut scope_logs = scopes.nested()?;
            while let Some((field, wire_type)) = scope_logs.key()? {
                if field != 2 {
                    scope_logs.skip(wire_type)?;
                    continue;
                }
                scope_logs.expect(wire_type, LEN)?;
                // Past the request's bounds a record is read (to be reported) but not expanded.
                log_record(scope_logs.nested()?, conversion.resource(&resource), &mut record)?;
                conversion.append(&record, builder, received_unix_nano);
            }
        }
    }
    Ok((conversion.report, conversion.records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat::FlatEvent;
    use crate::otlp::{convert_request, events_to_request, key_value};
    use crate::otlp_samples::sample;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

    fn both_ways(
        request: &ExportLogsServiceRequest,
    ) -> (arrow::record_batch::RecordBatch, arrow::record_batch::RecordBatch) {
        // The samples' own attribute names, kept as sent so both ways can be compared.
        let policy = std::sync::Arc::new(crate::content::ContentPolicy::new(
            &["tags", "labels", "custom.*"],
            crate::content::Unlisted::Drop,
            None,
        ));
        let mut by_prost = EventBatchBuilder::with_capacity(4).with_content_policy(policy.clone());
        let prost_report = convert_request(request, 7, &mut by_prost);
        let mut by_wire = EventBatchBuilder::with_capacity(4).with_content_policy(policy);
        let (wire_report, count) = convert_encoded_request(&request.encode_to_vec(), 7, &mut by_wire).unwrap();
        assert_eq!(count, crate::otlp::count_records(request));
        assert_eq!(wire_report.accepted, prost_report.accepted);
        assert_eq!(wire_report.rejected, prost_report.rejected);
        assert_eq!(wire_report.notices, prost_report.notices);
        // event ids are assigned per builder when missing; all samples carry none, so
        // compare everything but that column.
        let strip = |builder: &mut EventBatchBuilder| {
            let batch = builder.finish();
            let keep: Vec<usize> = (0..batch.num_columns())
                .filter(|i| batch.schema().field(*i).name() != "event_id")
                .collect();
            batch.project(&keep).unwrap()
        };
        (strip(&mut by_prost), strip(&mut by_wire))
    }

    #[test]
    fn rows_are_the_same_as_through_prost() {
        let (by_prost, by_wire) = both_ways(&sample());
        assert_eq!(by_prost, by_wire);
        let text = format!("{by_wire:?}");
        assert!(text.contains("ålice ✓"));
        assert!(!text.contains("raw content"));
        use arrow::array::{Array, AsArray};
        let attributes = by_wire.column_by_name("attributes").unwrap().as_map();
        let first = attributes.value(0);
        let keys: Vec<&str> = first.column(0).as_string::<i32>().iter().flatten().collect();
        let values: Vec<&str> = first.column(1).as_string::<i32>().iter().flatten().collect();
        assert!(keys.contains(&"tags") && keys.contains(&"labels"), "{keys:?}");
        assert!(
            values.contains(&r#"["a"]"#) && values.contains(&r#"{"k":1}"#),
            "{values:?}"
        );
        assert!(!first.is_empty());
    }

    /// `records` flows of one host: one resource over all of them.
    fn one_host_request(records: i64) -> ExportLogsServiceRequest {
        let events: Vec<FlatEvent> = (0..records)
            .map(|n| FlatEvent::new(1_000 + n, "network.flow", "wks-1"))
            .collect();
        events_to_request(&events)
    }

    #[test]
    fn a_resource_is_expanded_over_its_records_only_up_to_the_request_bounds() {
        // 1,000 resource attributes over 10,000 records (about 1 MB): 10 million
        // attributes to store, or 4 GB of map entries, before.
        let mut request = one_host_request(10_000);
        let resource = request.resource_logs[0].resource.as_mut().unwrap();
        let per_record = 1_000 + resource.attributes.len();
        resource
            .attributes
            .extend((0..1_000).map(|n| key_value(&format!("custom.r{n}"), &AttrValue::Str(Cow::Borrowed("v")))));
        let started = std::time::Instant::now();
        let (batch_prost, batch_wire) = both_ways(&request);
        let took = started.elapsed();
        let expected = crate::limits::MAX_REQUEST_ATTRIBUTES / per_record;
        assert_eq!(batch_wire.num_rows(), expected, "records up to the bound are kept");
        assert_eq!(batch_prost.num_rows(), expected);
        let mut builder = EventBatchBuilder::with_capacity(4);
        let (report, _) = convert_encoded_request(&request.encode_to_vec(), 7, &mut builder).unwrap();
        assert_eq!(report.rejected.len(), 10_000 - expected);
        assert!(
            report
                .rejected
                .iter()
                .all(|rejection| rejection.reason.label() == "request_too_large")
        );
        // Printed, not asserted: the row counts above guard the bound, and a timed
        // assertion failed a cold CI run whose cores were shared (60.9 s, usually a few).
        eprintln!("1,000 resource attributes x 10,000 records, both decoders: {took:?}");
    }

    #[test]
    fn the_request_bounds_count_value_bytes_too() {
        let mut request = one_host_request(3_000);
        let big = AttrValue::Str(Cow::Owned("x".repeat(crate::limits::MAX_VALUE_BYTES)));
        let resource = request.resource_logs[0].resource.as_mut().unwrap();
        resource.attributes.push(key_value("custom.blob", &big));
        let (_, batch) = both_ways(&request);
        let expected = crate::limits::MAX_REQUEST_VALUE_BYTES / crate::limits::MAX_VALUE_BYTES;
        // Each record also carries a few short values of its own.
        assert!(
            (expected - 2..=expected).contains(&batch.num_rows()),
            "{} rows",
            batch.num_rows()
        );
    }

    #[test]
    fn fields_in_any_order_and_resource_after_scopes_are_read() {
        let request = sample();
        // Re-encode each ResourceLogs with the resource after the scope logs.
        let mut bytes = Vec::new();
        for resource_logs in &request.resource_logs {
            let mut inner = Vec::new();
            for scope in &resource_logs.scope_logs {
                prost::encoding::message::encode(2, scope, &mut inner);
            }
            if let Some(resource) = &resource_logs.resource {
                prost::encoding::message::encode(1, resource, &mut inner);
            }
            prost::encoding::bytes::encode(1, &inner, &mut bytes);
        }
        let reordered = ExportLogsServiceRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(reordered, request, "prost reads it the same");
        let mut builder = EventBatchBuilder::with_capacity(4);
        let (report, _) = convert_encoded_request(&bytes, 7, &mut builder).unwrap();
        assert_eq!(report.accepted, 2);
    }

    #[test]
    fn malformed_bytes_are_an_error_never_a_panic() {
        let bytes = sample().encode_to_vec();
        for cut in 1..bytes.len() {
            let mut builder = EventBatchBuilder::with_capacity(4);
            let truncated = convert_encoded_request(&bytes[..cut], 0, &mut builder);
            if let Ok((_, count)) = truncated {
                assert!(count <= 3);
            }
        }
        let mut state: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..2_000 {
            let mut mutated = bytes.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let position = (state as usize) % mutated.len();
                mutated[position] = (state >> 32) as u8;
            }
            let mut builder = EventBatchBuilder::with_capacity(4);
            let ours = convert_encoded_request(&mutated, 0, &mut builder);
            if ExportLogsServiceRequest::decode(mutated.as_slice()).is_err() {
                // Whatever prost refuses, we may accept only if we skip the bad part unread.
                let _ = ours;
            }
        }
        let mut builder = EventBatchBuilder::with_capacity(1);
        let error = convert_encoded_request(&[0x0a, 0xff, 0xff, 0x0f], 0, &mut builder).unwrap_err();
        assert_eq!(error.what, "length runs past the end of the message");
        assert!(convert_encoded_request(&[0xff, 0xff, 0xff], 0, &mut builder).is_err());
    }

    #[test]
    fn invalid_utf8_is_refused_like_prost_does() {
        let mut event = FlatEvent::new(1, "file.access", "wks-1");
        event.set("user.name", "PLACEHOLDER");
        let mut bytes = events_to_request(&[event]).encode_to_vec();
        let at = bytes.windows(11).position(|window| window == b"PLACEHOLDER").unwrap();
        bytes[at] = 0xff;
        assert!(ExportLogsServiceRequest::decode(bytes.as_slice()).is_err());
        let mut builder = EventBatchBuilder::with_capacity(1);
        assert_eq!(
            convert_encoded_request(&bytes, 0, &mut builder).unwrap_err().what,
            "string is not UTF-8"
        );
    }

    /// An `AnyValue` that is an array in an array ... `depth` times around "x", built by
    /// hand: prost would recurse to encode it.
    fn nested_array(depth: usize) -> Vec<u8> {
        fn field(number: u64, payload: &[u8]) -> Vec<u8> {
            let mut out = Vec::with_capacity(payload.len() + 12);
            prost::encoding::encode_varint((number << 3) | 2, &mut out);
            prost::encoding::encode_varint(payload.len() as u64, &mut out);
            out.extend_from_slice(payload);
            out
        }
        let mut value = field(1, b"x");
        for _ in 0..depth {
            value = field(5, &field(1, &value));
        }
        value
    }

    #[test]
    fn deeply_nested_values_are_refused_not_a_stack_overflow() {
        // prost stops at 100 levels; without that, 100,000 would overflow the stack.
        let bytes = nested_array(20);
        let shallow = any_value_of(Reader::new(&bytes, 0)).unwrap().unwrap();
        assert!(
            matches!(shallow, AttrValue::Complex(ref json) if json.matches('[').count() == 20),
            "{shallow:?}"
        );
        let error = any_value_of(Reader::new(&nested_array(100_000), 0)).unwrap_err();
        assert_eq!(error.what, "invalid AnyValue");
    }
}
