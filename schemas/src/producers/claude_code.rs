//! Claude Code (`service.name` `claude-code`): its OpenTelemetry log events and its
//! beta traces, as measured from Claude Code 2.1.332 exporting OTLP/HTTP JSON (see
//! `tests/python/stand_in_model.py` and the e2e test `agents::claude_code_cli`).
//! Documented at <https://code.claude.com/docs/en/monitoring-usage>.
//!
//! - Log events carry `event.name` without the prefix (`tool_decision`) and the full
//!   name in the body (`claude_code.tool_decision`); both are read.
//! - `claude_code.tool_decision` (`decision` accept/reject, `source`, `tool_name`,
//!   `tool_use_id`, `permission_mode`, and with `OTEL_LOG_TOOL_DETAILS=1` a JSON
//!   `tool_parameters`) and `claude_code.tool_result` (`success` and `duration_ms` as
//!   strings, `tool_parameters`, `tool_input`) become tool calls (`tool_call.rs`).
//! - Spans: `claude_code.tool` (the call: `gen_ai.tool.name`, `full_command`,
//!   `gen_ai.tool.call.id`), its children `claude_code.tool.blocked_on_user` (the
//!   permission check: `decision`, `source`) and `claude_code.tool.execution` (the run:
//!   `success`); the children get the call's tool and id from their parent (`otlp_traces.rs`).
//!   A call Claude Code refused shows as a blocked_on_user span with `decision=reject`.
//! - Every other event or span (`user_prompt`, `api_request`, `interaction`, ...) is
//!   the session's activity: `agent.session`.
//! - No `user.name` is sent: `user.email`, else `user.account_uuid` (both only when
//!   signed in to an account) stands in; the hashed installation id `user.id` is kept as
//!   it is, not taken for a person. No host is sent: see the contract on `host.id`.

use std::borrow::Cow;

use super::ProducerMapping;
use super::tool_call::{Decision, ToolCall, owned, read_input, truthy};
use crate::fields::attr;
use crate::record::EventRecord;

pub struct ClaudeCode;

const SERVICE: &str = "claude-code";
const PREFIX: &str = "claude_code.";

impl ProducerMapping for ClaudeCode {
    fn name(&self) -> &'static str {
        "claude-code"
    }

    fn claims(&self, record: &EventRecord<'_>) -> bool {
        record.service_name.as_deref() == Some(SERVICE)
            || record
                .event_name
                .as_deref()
                .is_some_and(|name| name.starts_with(PREFIX))
    }

    fn map(&self, record: &mut EventRecord<'_>) {
        let name = full_name(record);
        // `user.id` is a hash of the installation, not a person: not a user name.
        super::agent_identity(record, SERVICE, &["user.email", "user.account_uuid"]);
        if let Some(mode) = owned(record, "permission_mode") {
            record.put(attr::PERMISSION_MODE, mode);
        }
        let mut call = ToolCall {
            agent: Some(SERVICE.to_string()),
            tool: owned(record, attr::TOOL_NAME).or_else(|| owned(record, "tool_name")),
            call_id: owned(record, attr::TOOL_CALL_ID).or_else(|| owned(record, "tool_use_id")),
            command: owned(record, "full_command"),
            decision: record.text("decision").and_then(|text| Decision::parse(&text)),
            decided_by: owned(record, "source"),
            success: truthy(record, "success"),
            ..ToolCall::default()
        };
        for input in ["tool_parameters", "tool_input"] {
            if let Some(json) = record.text(input) {
                let json = json.into_owned();
                read_input(&json, &mut call);
            }
        }
        // The raw command is kept redacted as process.command_line, not as sent.
        record.remove("full_command");
        record.put("agent.event", name.clone());
        match name.as_str() {
            "claude_code.tool_decision" | "claude_code.tool" | "claude_code.tool.blocked_on_user" => call.apply(record),
            "claude_code.tool_result" | "claude_code.tool.execution" => {
                call.ran = true;
                call.apply(record);
            }
            _ => record.event_name = Some(Cow::Borrowed("agent.session")),
        }
    }
}

/// `claude_code.tool_result`, from the body or the unprefixed `event.name`.
fn full_name(record: &EventRecord<'_>) -> String {
    if let Some(body) = record.body.as_deref().filter(|body| body.starts_with(PREFIX)) {
        return body.to_string();
    }
    let name = record.event_name.as_deref().unwrap_or_default();
    if name.starts_with(PREFIX) {
        name.to_string()
    } else {
        format!("{PREFIX}{name}")
    }
}
