//! OTLP traces, protobuf and JSON: spans to events, through the producer mappings
//! (Claude Code, GenAI, MCP) and the redaction of command lines.
#![no_main]

use cordon_schemas::EventBatchBuilder;
use cordon_schemas::otlp_traces::convert_traces;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fuzz_target!(|bytes: &[u8]| {
    let requests = [
        ExportTraceServiceRequest::decode(bytes).ok(),
        serde_json::from_slice::<ExportTraceServiceRequest>(bytes).ok(),
    ];
    for request in requests.into_iter().flatten() {
        let mut builder = EventBatchBuilder::with_capacity(16);
        let _ = convert_traces(&request, 1_700_000_000_000_000_000, &mut builder);
        builder.finish();
    }
});
