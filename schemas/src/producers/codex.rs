//! OpenAI's Codex CLI (`service.name` `codex_cli_rs`, `codex-cli`, `codex_exec`, ...):
//! its OpenTelemetry log events, named in `event.name` with the `codex.` prefix, as
//! its source emits them (codex-rs/otel, `SessionTelemetry`) and its docs list
//! (<https://developers.openai.com/codex/config-advanced#observability-and-telemetry>).
//!
//! - `codex.conversation_starts`: the session's settings, `approval_policy` and
//!   `sandbox_policy` (`agent.permission_mode` is `<approval>/<sandbox>`, so
//!   `never/danger-full-access` is `--dangerously-bypass-approvals-and-sandbox`) and
//!   `mcp_servers`: `agent.session`.
//! - `codex.tool_decision` (`tool_name`, `call_id`, `decision` approved /
//!   approved_for_session / denied / abort, `source`) and `codex.tool_result`
//!   (`arguments` as JSON, `success` as a string, `output`, `mcp_server`): tool calls.
//! - Every other `codex.*` event (`user_prompt`, `api_request`, `sse_event`, ...):
//!   `agent.session`. `conversation.id` is the session key.

use std::borrow::Cow;

use super::ProducerMapping;
use super::tool_call::{Decision, ToolCall, owned, read_input, truthy};
use crate::fields::attr;
use crate::record::EventRecord;

pub struct Codex;

const PREFIX: &str = "codex.";

impl ProducerMapping for Codex {
    fn name(&self) -> &'static str {
        "codex"
    }

    fn claims(&self, record: &EventRecord<'_>) -> bool {
        record
            .event_name
            .as_deref()
            .is_some_and(|name| name.starts_with(PREFIX))
            || record
                .service_name
                .as_deref()
                .is_some_and(|service| service.starts_with("codex"))
    }

    fn map(&self, record: &mut EventRecord<'_>) {
        let name = record.event_name.as_deref().unwrap_or_default().to_string();
        if record.value(attr::SESSION_ID).is_none()
            && let Some(conversation) = owned(record, "conversation.id")
        {
            record.put(attr::SESSION_ID, conversation);
        }
        super::agent_identity(record, "codex", &["user.email", "user.account_id"]);
        record.put("agent.event", name.clone());
        match name.as_str() {
            "codex.conversation_starts" => {
                let approval = owned(record, "approval_policy").unwrap_or_else(|| "unknown".into());
                let sandbox = owned(record, "sandbox_policy").unwrap_or_else(|| "unknown".into());
                record.put(attr::PERMISSION_MODE, format!("{approval}/{sandbox}"));
                record.event_name = Some(Cow::Borrowed("agent.session"));
            }
            "codex.tool_decision" | "codex.tool_result" => {
                let mut call = ToolCall {
                    agent: Some("codex".to_string()),
                    tool: owned(record, "tool_name"),
                    call_id: owned(record, "call_id"),
                    decision: record.text("decision").and_then(|text| Decision::parse(&text)),
                    decided_by: owned(record, "source"),
                    success: truthy(record, "success"),
                    mcp_server: owned(record, "mcp_server"),
                    ran: name == "codex.tool_result",
                    ..ToolCall::default()
                };
                if let Some(json) = record.text("arguments") {
                    let json = json.into_owned();
                    read_input(&json, &mut call);
                }
                call.apply(record);
            }
            _ => record.event_name = Some(Cow::Borrowed("agent.session")),
        }
    }
}
