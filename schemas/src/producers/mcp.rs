//! MCP spans (the OpenTelemetry semantic conventions for MCP,
//! <https://opentelemetry.io/docs/specs/semconv/gen-ai/mcp/>, as MCP SDK
//! instrumentations emit them): `mcp.method.name` (`tools/call`, `resources/read`,
//! `initialize`, ...), `mcp.session.id`, `gen_ai.tool.name` (or the span name
//! `tools/call <tool>`), `mcp.resource.uri`, `error.type`.
//!
//! `tools/call` is a tool call that ran (its category from the tool's name, MCP when
//! the name says nothing), `resources/read` a read of the resource (a `file://` URI is
//! a file path), everything else the session's activity (`agent.session`). The session
//! key is a GenAI conversation id, else the MCP session id, else the trace id (the
//! Python SDK 2.x carries the trace context from client to server: both sides' spans
//! share it). Measured from `mcp` 2.3.0, which emits these spans itself
//! (`tests/python/mcp_tools.py`).

use std::borrow::Cow;

use super::ProducerMapping;
use super::tool_call::{ToolCall, owned, read_input};
use crate::fields::attr;
use crate::record::EventRecord;

pub struct Mcp;

const METHOD: &str = "mcp.method.name";

impl ProducerMapping for Mcp {
    fn name(&self) -> &'static str {
        "mcp"
    }

    fn claims(&self, record: &EventRecord<'_>) -> bool {
        record.value(METHOD).is_some()
    }

    fn map(&self, record: &mut EventRecord<'_>) {
        let method = owned(record, METHOD).unwrap_or_default();
        let span_name = record.event_name.as_deref().unwrap_or_default().to_string();
        if record.value(attr::SESSION_ID).is_none() {
            let session = owned(record, "gen_ai.conversation.id")
                .or_else(|| owned(record, "mcp.session.id"))
                .or_else(|| owned(record, attr::TRACE_ID));
            if let Some(session) = session {
                record.put(attr::SESSION_ID, session);
            }
        }
        record.put("agent.event", format!("mcp.{method}"));
        let failed =
            record.value("error.type").is_some() || record.text("span.status").is_some_and(|status| status == "error");
        // An MCP span may be the server's: the agent is named by whoever else reports.
        let agent = None;
        match method.as_str() {
            "tools/call" => {
                // `tools/call get_weather` (server), `MCP send tools/call get_weather`
                // (client): the tool's name when no attribute gives it.
                let from_span = span_name
                    .split_once("tools/call ")
                    .map(|(_, tool)| tool.trim().to_string())
                    .filter(|tool| !tool.is_empty());
                let mut call = ToolCall {
                    agent,
                    tool: owned(record, attr::TOOL_NAME)
                        .or_else(|| owned(record, "mcp.tool.name"))
                        .or(from_span),
                    // The JSON-RPC id within the trace: the client's and the server's
                    // span of one call share both.
                    call_id: owned(record, attr::TOOL_CALL_ID).or_else(|| {
                        let id = owned(record, "jsonrpc.request.id")?;
                        Some(format!("{}/{id}", owned(record, attr::TRACE_ID)?))
                    }),
                    mcp_server: owned(record, "server.address").or_else(|| Some("mcp".into())),
                    ran: true,
                    success: Some(!failed),
                    ..ToolCall::default()
                };
                if let Some(json) = record.text("gen_ai.tool.call.arguments") {
                    let json = json.into_owned();
                    read_input(&json, &mut call);
                }
                call.apply(record);
            }
            "resources/read" => {
                let uri = owned(record, "mcp.resource.uri");
                let call = ToolCall {
                    agent,
                    tool: Some("resources/read".into()),
                    path: uri
                        .as_deref()
                        .and_then(|uri| uri.strip_prefix("file://"))
                        .map(str::to_string),
                    url: uri.filter(|uri| !uri.starts_with("file://")),
                    mcp_server: Some("mcp".into()),
                    ran: true,
                    success: Some(!failed),
                    ..ToolCall::default()
                };
                // Its name makes it a read: a file.access when the URI is a file.
                call.apply(record);
            }
            _ => record.event_name = Some(Cow::Borrowed("agent.session")),
        }
    }
}
