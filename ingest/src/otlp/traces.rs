//! OTLP traces (`TraceService/Export`, `POST /v1/traces`): each span stored as one
//! event (`cordon_schemas::otlp_traces`), with the same checks, partial success,
//! back-pressure and durability as logs. Agents put their tool calls and permission
//! checks in spans (Claude Code's beta traces, GenAI `execute_tool`, MCP `tools/call`).

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::error::IngestError;
use crate::ingestor::IngestOutcome;

pub const TRACES_PATH: &str = "/v1/traces";
pub const TRACES_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The answer for a request's outcome (OTLP partial success, counted in spans).
pub fn response_for(outcome: &IngestOutcome) -> ExportTraceServiceResponse {
    let partial_success = (outcome.rejected > 0 || !outcome.message.is_empty()).then(|| ExportTracePartialSuccess {
        rejected_spans: outcome.rejected as i64,
        error_message: outcome.message.clone(),
    });
    ExportTraceServiceResponse { partial_success }
}

/// A traces request in protobuf.
pub fn decode_protobuf(body: &[u8]) -> Result<ExportTraceServiceRequest, IngestError> {
    ExportTraceServiceRequest::decode(body).map_err(|error| {
        IngestError::Undecodable(format!(
            "body is not an OTLP ExportTraceServiceRequest (protobuf): {error}"
        ))
    })
}

/// A traces request in OTLP JSON.
pub fn decode_json(body: &[u8]) -> Result<ExportTraceServiceRequest, IngestError> {
    serde_json::from_slice(body).map_err(|error| {
        IngestError::Undecodable(format!("body is not an OTLP ExportTraceServiceRequest (JSON): {error}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_what_was_expected() {
        let error = decode_protobuf(b"\xff\xff not protobuf").unwrap_err();
        assert!(error.to_string().contains("ExportTraceServiceRequest"), "{error}");
        assert!(decode_json(b"{\"resourceSpans\": 7}").is_err());
        assert!(
            decode_json(b"{\"resourceSpans\": []}")
                .unwrap()
                .resource_spans
                .is_empty()
        );
    }
}
