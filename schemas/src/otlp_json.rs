//! Converts an OTLP/JSON `ExportLogsServiceRequest` into rows, borrowing strings from
//! the body.
//!
//! Why not serde into opentelemetry-proto's types: their `AnyValue` is a flattened
//! field, so serde buffers every attribute value into an owned tree before reading it,
//! and every key and string is allocated, only to be copied into Arrow and dropped
//! (JSON decode ran at 26-29% of the protobuf decode's rate). This reads the same
//! fields with the same types, strings borrowed unless escaped.
//!
//! It is deliberately no more lenient than the reference: a body it declines (malformed,
//! or a form it leaves alone, such as `0x`-prefixed ids) is decoded by
//! opentelemetry-proto's serde instead, whose verdict and error message the sender gets.
//! Whatever this accepts, the reference accepts with the same rows: the tests and the
//! `otlp_json` fuzz target check it.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue as ProtoAnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValueList, any_value::Value,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::batch::EventBatchBuilder;
use crate::otlp::{ConversionReport, MAX_BODY_NAME, RequestConversion, any_value, convert_request, count_records};
use crate::record::EventRecord;
use crate::value::AttrValue;

// The messages, field for field and in the same order as opentelemetry-proto declares
// them (serde also reads a struct given as a JSON array, by position). A field read only
// to be checked has a leading underscore, which camelCase drops from its JSON name.

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Request<'a> {
    #[serde(borrow)]
    resource_logs: Vec<ResourceLogs<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ResourceLogs<'a> {
    #[serde(borrow)]
    resource: Option<Resource<'a>>,
    #[serde(borrow)]
    scope_logs: Vec<ScopeLogs<'a>>,
    #[serde(borrow)]
    _schema_url: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Resource<'a> {
    #[serde(borrow)]
    attributes: Vec<KeyValue<'a>>,
    _dropped_attributes_count: u32,
    _entity_refs: Vec<EntityRef>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ScopeLogs<'a> {
    _scope: Option<InstrumentationScope>,
    #[serde(borrow)]
    log_records: Vec<LogRecord<'a>>,
    #[serde(borrow)]
    _schema_url: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct LogRecord<'a> {
    #[serde(deserialize_with = "unix_nanos")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "unix_nanos")]
    observed_time_unix_nano: u64,
    _severity_number: i32,
    #[serde(borrow)]
    _severity_text: Cow<'a, str>,
    #[serde(borrow)]
    body: Option<AnyValue<'a>>,
    #[serde(borrow)]
    attributes: Vec<KeyValue<'a>>,
    _dropped_attributes_count: u32,
    _flags: u32,
    #[serde(deserialize_with = "plain_hex")]
    _trace_id: (),
    #[serde(deserialize_with = "plain_hex")]
    _span_id: (),
    #[serde(borrow)]
    event_name: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyValue<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    value: Option<AnyValue<'a>>,
    #[serde(default)]
    _key_strindex: i32,
}

/// An AnyValue: one of the typed fields, or none.
#[derive(Default)]
struct AnyValue<'a>(Option<AttrValue<'a>>);

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum ValueField {
    StringValue,
    BoolValue,
    IntValue,
    DoubleValue,
    ArrayValue,
    KvlistValue,
    BytesValue,
    #[serde(other)]
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for AnyValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(AnyValueVisitor(std::marker::PhantomData))
    }
}

struct AnyValueVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for AnyValueVisitor<'a> {
    type Value = AnyValue<'a>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON object for AnyValue")
    }

    // As the reference: every typed field present and not null sets the value, the
    // last one wins, unknown fields are skipped.
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<AnyValue<'a>, M::Error> {
        let mut value = None;
        while let Some(field) = map.next_key::<ValueField>()? {
            let next = match field {
                ValueField::StringValue => map.next_value::<Option<Text<'a>>>()?.map(|text| AttrValue::Str(text.0)),
                ValueField::BoolValue => map.next_value::<Option<bool>>()?.map(AttrValue::Bool),
                ValueField::IntValue => map.next_value::<Option<Int64>>()?.map(|int| AttrValue::Int(int.0)),
                ValueField::DoubleValue => map.next_value::<Option<f64>>()?.map(AttrValue::Double),
                // Arrays, maps and bytes are rare: read into the reference's types and kept as JSON.
                ValueField::ArrayValue => map
                    .next_value::<Option<ArrayValue>>()?
                    .map(|array| complex(Value::ArrayValue(array))),
                ValueField::KvlistValue => map
                    .next_value::<Option<KeyValueList>>()?
                    .map(|list| complex(Value::KvlistValue(list))),
                ValueField::BytesValue => match map.next_value::<Option<String>>()? {
                    Some(text) => {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(text.as_bytes())
                            .map_err(de::Error::custom)?;
                        Some(complex(Value::BytesValue(bytes)))
                    }
                    None => None,
                },
                ValueField::Other => {
                    // Read, not skipped: the reference buffers it, which checks its
                    // strings are UTF-8 (skipping does not).
                    map.next_value::<serde_json::Value>()?;
                    None
                }
            };
            if next.is_some() {
                value = next;
            }
        }
        Ok(AnyValue(value))
    }
}

fn complex(value: Value) -> AttrValue<'static> {
    let wrapped = ProtoAnyValue { value: Some(value) };
    any_value(&wrapped)
        .map(AttrValue::into_owned)
        .expect("arrays, maps and bytes have a value")
}

/// A string, borrowed from the body unless it had escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

/// An int64 as OTLP/JSON sends it: a number or a decimal string.
struct Int64(i64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Int64Visitor;
        impl Visitor<'_> for Int64Visitor {
            type Value = Int64;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an int64 as a number or a string")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Int64, E> {
                Ok(Int64(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Int64, E> {
                i64::try_from(value).map(Int64).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Int64, E> {
                value.parse().map(Int64).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Int64Visitor)
    }
}

/// A fixed64 time: a number or a decimal string.
fn unix_nanos<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    struct NanosVisitor;
    impl Visitor<'_> for NanosVisitor {
        type Value = u64;
        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a u64 integer or a string containing a u64 integer")
        }
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
            Ok(value)
        }
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
            u64::try_from(value).map_err(E::custom)
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<u64, E> {
            value.parse().map_err(E::custom)
        }
    }
    deserializer.deserialize_any(NanosVisitor)
}

/// A trace or span id, checked but not kept: plain hex only (the reference also takes a
/// `0x` prefix; such a body is left to it).
fn plain_hex<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
    struct HexVisitor;
    impl Visitor<'_> for HexVisitor {
        type Value = ();
        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a string of hex digits")
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
            if value.len().is_multiple_of(2) && value.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                Ok(())
            } else {
                Err(E::custom("not plain hex"))
            }
        }
    }
    deserializer.deserialize_str(HexVisitor)
}

/// The value to store for `value`, borrowing its string.
fn reborrow<'b>(value: &'b AttrValue<'_>) -> AttrValue<'b> {
    match value {
        AttrValue::Str(text) => AttrValue::Str(Cow::Borrowed(text.as_ref())),
        AttrValue::Int(number) => AttrValue::Int(*number),
        AttrValue::Double(number) => AttrValue::Double(*number),
        AttrValue::Bool(flag) => AttrValue::Bool(*flag),
        AttrValue::Complex(json) => AttrValue::Complex(json.clone()),
    }
}

fn apply_attributes<'b>(record: &mut EventRecord<'b>, attributes: &'b [KeyValue<'_>]) {
    for kv in attributes {
        if let Some(value) = kv.value.as_ref().and_then(|value| value.0.as_ref()) {
            record.set(Cow::Borrowed(kv.key.as_ref()), reborrow(value));
        }
    }
}

/// One LogRecord under its resource's attributes, as `otlp::log_record_to_event` makes it.
fn fill_record<'b>(record: &mut EventRecord<'b>, resource: &'b [KeyValue<'_>], log: &'b LogRecord<'_>) {
    record.reset();
    record.time_unix_nano = log.time_unix_nano;
    record.observed_time_unix_nano = log.observed_time_unix_nano;
    apply_attributes(record, resource);
    apply_attributes(record, &log.attributes);
    if !log.event_name.is_empty() {
        record.event_name = Some(Cow::Borrowed(log.event_name.as_ref()));
    }
    // The body is never stored; a short string body may name the event.
    if let Some(AnyValue(Some(AttrValue::Str(body)))) = &log.body
        && body.len() <= MAX_BODY_NAME
    {
        record.body = Some(Cow::Borrowed(body.as_ref()));
    }
    crate::producers::normalize(record);
}

/// Appends every valid record of an OTLP/JSON logs request to `builder`, with the
/// number of records read. An error means the body was not read here and nothing was
/// appended: [`convert_json_request`] then asks the reference.
pub fn convert_borrowed(
    bytes: &[u8],
    received_unix_nano: i64,
    builder: &mut EventBatchBuilder,
) -> Result<(ConversionReport, usize), serde_json::Error> {
    let request: Request<'_> = serde_json::from_slice(bytes)?;
    let mut conversion = RequestConversion::default();
    let mut record = EventRecord::new();
    for resource_logs in &request.resource_logs {
        let resource = resource_logs
            .resource
            .as_ref()
            .map(|resource| resource.attributes.as_slice())
            .unwrap_or_default();
        for log in resource_logs.scope_logs.iter().flat_map(|scope| &scope.log_records) {
            fill_record(&mut record, conversion.resource(resource), log);
            conversion.append(&record, builder, received_unix_nano);
        }
    }
    Ok((conversion.report, conversion.records))
}

/// Appends every valid record of an OTLP/JSON logs request to `builder`: read borrowing
/// strings when it can be, by opentelemetry-proto's serde otherwise. The error is the
/// reference's, for the sender.
pub fn convert_json_request(
    bytes: &[u8],
    received_unix_nano: i64,
    builder: &mut EventBatchBuilder,
) -> Result<(ConversionReport, usize), serde_json::Error> {
    if let Ok(converted) = convert_borrowed(bytes, received_unix_nano, builder) {
        return Ok(converted);
    }
    let request: ExportLogsServiceRequest = serde_json::from_slice(bytes)?;
    Ok((
        convert_request(&request, received_unix_nano, builder),
        count_records(&request),
    ))
}

#[cfg(test)]
#[path = "otlp_json_tests.rs"]
mod tests;
