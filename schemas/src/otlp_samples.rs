//! OTLP requests the conversions' tests share (test builds only).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value};

use crate::flat::FlatEvent;
use crate::otlp::{events_to_request, key_value};
use crate::value::AttrValue;

/// Three records over two resources: every kind of value (arrays, maps, bytes, escapes
/// and non-ASCII text), a string body, ids and severity, and one record without a host.
pub fn sample() -> ExportLogsServiceRequest {
    let mut first = FlatEvent::new(1_000, "network.flow", "wks-1");
    first
        .set("service.name", "falco")
        .set_int("destination.port", 443)
        .set_int("network.io.bytes_sent", -5)
        .set("user.name", "ålice ✓ \"quoted\"");
    first.attributes.insert("custom.ratio".into(), AttrValue::Double(0.25));
    first.attributes.insert("custom.flag".into(), AttrValue::Bool(true));
    let second = FlatEvent::new(2_000, "unknown.kind", "wks-2");
    let mut no_host = FlatEvent::new(3_000, "file.access", "x");
    no_host.attributes.remove("host.id");
    let mut request = events_to_request(&[first, second, no_host]);
    let log = request
        .resource_logs
        .iter_mut()
        .flat_map(|resource| resource.scope_logs.iter_mut())
        .flat_map(|scope| scope.log_records.iter_mut())
        .find(|log| log.event_name == "network.flow")
        .unwrap();
    log.body = Some(AnyValue {
        value: Some(Value::StringValue("raw content".into())),
    });
    log.trace_id = vec![0xab; 16];
    log.span_id = vec![1; 8];
    log.severity_text = "INFO".into();
    log.severity_number = 9;
    log.attributes.push(KeyValue {
        key: "tags".into(),
        value: Some(AnyValue {
            value: Some(Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Value::StringValue("a".into())),
                }],
            })),
        }),
        ..Default::default()
    });
    log.attributes.push(KeyValue {
        key: "labels".into(),
        value: Some(AnyValue {
            value: Some(Value::KvlistValue(KeyValueList {
                values: vec![key_value("k", &AttrValue::Int(1))],
            })),
        }),
        ..Default::default()
    });
    log.attributes.push(KeyValue {
        key: "blob".into(),
        value: Some(AnyValue {
            value: Some(Value::BytesValue(vec![0, 1, 254, 255])),
        }),
        ..Default::default()
    });
    request
}
