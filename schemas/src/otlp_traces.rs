//! OTLP spans to events: one event per span (contract section 2), at the span's start,
//! named by the span until a producer mapping (`producers/`) names its kind. Agents
//! export traces to the endpoint of their logs; their tool calls and permission checks
//! are in them (Claude Code's refused calls, GenAI `execute_tool`, MCP `tools/call`).
//!
//! Each event carries `trace.id`, `span.id`, `span.parent_id`, `span.name`,
//! `span.kind` (`internal`, `server`, `client`, `producer`, `consumer`), `span.status`
//! (`unset`, `ok`, `error`) and `span.duration_ms`. The status message and span events
//! are not kept (they carry exception text). A span without a tool of its own takes
//! its parent's tool attributes when the parent is in the same request: Claude Code
//! reports a call's permission check and run as children of the call's span.

use std::borrow::Cow;
use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use crate::batch::EventBatchBuilder;
use crate::fields::attr;
use crate::otlp::{ConversionReport, RequestConversion, any_value};
use crate::record::EventRecord;
use crate::value::AttrValue;

/// Attributes a child span takes from its parent when it has none of them.
const INHERITED: &[&str] = &[
    attr::TOOL_NAME,
    attr::TOOL_CALL_ID,
    "tool_name",
    "tool_use_id",
    "full_command",
];

/// Number of spans in a request.
pub fn count_spans(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .map(|scope| scope.spans.len())
        .sum()
}

fn kind_name(kind: i32) -> &'static str {
    match kind {
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "internal",
    }
}

fn status_name(span: &Span) -> &'static str {
    match span.status.as_ref().map(|status| status.code()) {
        Some(StatusCode::Ok) => "ok",
        Some(StatusCode::Error) => "error",
        _ => "unset",
    }
}

fn apply<'a>(record: &mut EventRecord<'a>, attributes: impl IntoIterator<Item = &'a KeyValue>) {
    for kv in attributes {
        if let Some(value) = kv.value.as_ref().and_then(any_value) {
            record.set(Cow::Borrowed(kv.key.as_str()), value);
        }
    }
}

/// The normalized form of one span under its resource's attributes (`inherited`: the
/// parent's tool attributes).
pub fn span_to_event<'a>(resource: &'a [KeyValue], inherited: &[&'a KeyValue], span: &'a Span) -> EventRecord<'a> {
    let mut record = EventRecord::new();
    record.time_unix_nano = span.start_time_unix_nano;
    apply(&mut record, resource);
    apply(&mut record, inherited.iter().copied());
    apply(&mut record, &span.attributes);
    if !span.name.is_empty() {
        record.event_name = Some(Cow::Borrowed(span.name.as_str()));
        record.set(
            Cow::Borrowed("span.name"),
            AttrValue::Str(Cow::Borrowed(span.name.as_str())),
        );
    }
    if !span.trace_id.is_empty() {
        record.put(attr::TRACE_ID, hex::encode(&span.trace_id));
    }
    if !span.span_id.is_empty() {
        record.put(attr::SPAN_ID, hex::encode(&span.span_id));
    }
    if !span.parent_span_id.is_empty() {
        record.put("span.parent_id", hex::encode(&span.parent_span_id));
    }
    record.put("span.kind", kind_name(span.kind));
    record.put("span.status", status_name(span));
    if span.end_time_unix_nano >= span.start_time_unix_nano && span.start_time_unix_nano > 0 {
        let millis = (span.end_time_unix_nano - span.start_time_unix_nano) / 1_000_000;
        record.set(Cow::Borrowed("span.duration_ms"), AttrValue::Int(millis as i64));
    }
    record
}

/// The tool attributes of every span that has some, by span id, for its children.
fn tool_parents(request: &ExportTraceServiceRequest) -> HashMap<&[u8], Vec<&KeyValue>> {
    let mut parents = HashMap::new();
    for span in request
        .resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| &scope.spans)
    {
        let tool: Vec<&KeyValue> = span
            .attributes
            .iter()
            .filter(|kv| INHERITED.contains(&kv.key.as_str()))
            .collect();
        if !tool.is_empty() && !span.span_id.is_empty() {
            parents.insert(span.span_id.as_slice(), tool);
        }
    }
    parents
}

/// Appends every valid span of an OTLP traces request to `builder`.
pub fn convert_traces(
    request: &ExportTraceServiceRequest,
    received_unix_nano: i64,
    builder: &mut EventBatchBuilder,
) -> ConversionReport {
    let mut conversion = RequestConversion::default();
    conversion.report.unit = Some("span(s)");
    let parents = tool_parents(request);
    for resource_spans in &request.resource_spans {
        let resource: &[KeyValue] = resource_spans
            .resource
            .as_ref()
            .map(|resource| resource.attributes.as_slice())
            .unwrap_or_default();
        for span in resource_spans.scope_spans.iter().flat_map(|scope| &scope.spans) {
            let applied = conversion.resource(resource);
            let inherited: Vec<&KeyValue> = parents
                .get(span.parent_span_id.as_slice())
                .map(|tool| {
                    tool.iter()
                        .copied()
                        .filter(|kv| span.attributes.iter().all(|own| own.key != kv.key))
                        .collect()
                })
                .unwrap_or_default();
            let mut record = span_to_event(applied, &inherited, span);
            crate::producers::normalize(&mut record);
            conversion.append(&record, builder, received_unix_nano);
        }
    }
    conversion.report
}
