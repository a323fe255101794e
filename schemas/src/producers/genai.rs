//! OpenTelemetry GenAI spans from agent frameworks (the semantic conventions'
//! <https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-agent-spans/>):
//! `gen_ai.operation.name` `execute_tool` (`gen_ai.tool.name`, `gen_ai.tool.call.id`,
//! `gen_ai.tool.type`, opt-in `gen_ai.tool.call.arguments`), `invoke_agent` and
//! `create_agent` (`gen_ai.agent.id`, `gen_ai.agent.name`), model calls (`chat`, ...),
//! and guardrail verdicts: `apply_guardrail {gen_ai.guardian.name}` spans with
//! `gen_ai.security.decision.type` (`allow`, `warn`, `deny`, `modify`, `audit`),
//! `gen_ai.security.decision.reason`, `gen_ai.security.target.type` and
//! `gen_ai.security.policy.name` (the conventions' proposal, semantic-conventions PR
//! 3233), and the older `gen_ai.guardrail.*` shape some instrumentations send
//! (`.name`, `.decision` or `.action`, `.triggered`).
//!
//! A tool span is a tool call that ran (`tool_call.rs`); a guardrail that triggered
//! or blocked is a policy deny, one that passed an allow; the rest is the session's
//! activity (`agent.session`). `gen_ai.conversation.id` is the session key, else the
//! trace id (the OpenAI Agents SDK's instrumentation sets no conversation id: one run
//! is one trace); `gen_ai.tool.call.id` the call key, else the span id.

use std::borrow::Cow;

use super::ProducerMapping;
use super::tool_call::{Decision, ToolCall, owned, read_input, truthy};
use crate::fields::attr;
use crate::record::EventRecord;

pub struct GenAi;

const OPERATION: &str = "gen_ai.operation.name";

impl ProducerMapping for GenAi {
    fn name(&self) -> &'static str {
        "opentelemetry-genai"
    }

    fn claims(&self, record: &EventRecord<'_>) -> bool {
        record.value(OPERATION).is_some()
            || record.value("gen_ai.guardrail.name").is_some()
            || record.value("gen_ai.guardian.name").is_some()
    }

    fn map(&self, record: &mut EventRecord<'_>) {
        let operation = owned(record, OPERATION).unwrap_or_default();
        // The conversation is the session; without one (frameworks set it only when
        // the application has one), the trace: one agent run.
        if record.value(attr::SESSION_ID).is_none()
            && let Some(session) = owned(record, "gen_ai.conversation.id").or_else(|| owned(record, attr::TRACE_ID))
        {
            record.put(attr::SESSION_ID, session);
        }
        let agent = owned(record, attr::AGENT_NAME)
            .or_else(|| record.service_name.as_deref().map(str::to_string))
            .unwrap_or_else(|| "agent".into());
        super::agent_identity(record, &agent, &[]);
        let agent = Some(agent);
        record.put("agent.event", format!("gen_ai.{operation}"));
        if let Some(verdict) = guardrail_verdict(record, &operation) {
            let name = owned(record, "gen_ai.guardian.name")
                .or_else(|| owned(record, "gen_ai.security.policy.name"))
                .or_else(|| owned(record, "gen_ai.guardrail.name"))
                .unwrap_or_else(|| "guardrail".into());
            record.event_name = Some(Cow::Borrowed("policy.decision"));
            record.put(attr::POLICY_PATH, format!("guardrail/{name}"));
            record.put(
                attr::POLICY_DECISION,
                if verdict == Decision::Reject { "deny" } else { "allow" },
            );
            // The conventions keep the reason low-cardinality and free of content.
            if let Some(reason) = owned(record, "gen_ai.security.decision.reason")
                .or_else(|| owned(record, "gen_ai.security.decision.type"))
            {
                record.put(attr::POLICY_REASON, reason);
            }
            return;
        }
        if operation == "execute_tool" {
            let failed = record.text("span.status").is_some_and(|status| status == "error")
                || record.value("error.type").is_some();
            let mut call = ToolCall {
                agent,
                tool: owned(record, attr::TOOL_NAME),
                // Without the model's call id, the span is the call.
                call_id: owned(record, attr::TOOL_CALL_ID).or_else(|| owned(record, attr::SPAN_ID)),
                ran: true,
                success: Some(!failed),
                ..ToolCall::default()
            };
            if let Some(json) = record.text("gen_ai.tool.call.arguments") {
                let json = json.into_owned();
                read_input(&json, &mut call);
            }
            call.apply(record);
            return;
        }
        record.event_name = Some(Cow::Borrowed("agent.session"));
    }
}

/// A guardrail's verdict: its decision (`deny` refuses; `warn`, `modify` and `audit`
/// let the call through), else whether it triggered.
fn guardrail_verdict(record: &EventRecord<'_>, operation: &str) -> Option<Decision> {
    let is_guardrail = operation.contains("guardrail")
        || record.value("gen_ai.guardrail.name").is_some()
        || record.value("gen_ai.guardian.name").is_some();
    if !is_guardrail {
        return None;
    }
    let stated = [
        "gen_ai.security.decision.type",
        "gen_ai.guardrail.decision",
        "gen_ai.guardrail.action",
    ]
    .iter()
    .find_map(|name| record.text(name).map(|text| text.to_ascii_lowercase()));
    if let Some(stated) = stated {
        return Some(match stated.as_str() {
            "warn" | "modify" | "audit" | "flag" | "flagged" | "redact" => Decision::Accept,
            other => Decision::parse(other).unwrap_or(Decision::Accept),
        });
    }
    match truthy(record, "gen_ai.guardrail.triggered") {
        Some(true) => Some(Decision::Reject),
        _ => Some(Decision::Accept),
    }
}
