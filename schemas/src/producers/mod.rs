//! Producer mappings: what agents and sensors send on their own (Claude Code's and
//! Codex's OpenTelemetry events, OpenTelemetry GenAI and MCP spans, Falco's alerts)
//! rewritten into the
//! contract's kinds and fields before the record is checked and stored.
//!
//! A mapping is one file here and one line in `REGISTRY`. It is chosen by what the data
//! says (`service.name`, the event or span name, the attributes present), never by
//! configuration, so that pointing an agent at Cordon is enough. The first mapping that
//! claims a record maps it; records nobody claims are stored as sent. Whatever a
//! mapping does not name stays in the attributes map, under the content policy.

mod claude_code;
mod codex;
pub mod falco;
mod genai;
mod mcp;
pub mod tool_call;

use std::borrow::Cow;

use crate::record::EventRecord;

/// One producer's mapping.
pub trait ProducerMapping: Sync {
    /// The producer, as the docs and tests name it.
    fn name(&self) -> &'static str;
    /// Whether `record` is this producer's (cheap: called for every record).
    fn claims(&self, record: &EventRecord<'_>) -> bool;
    /// Rewrites `record` into the contract's kinds and fields.
    fn map(&self, record: &mut EventRecord<'_>);
}

/// Every mapping, most specific first: Claude Code's and Codex's spans also carry the
/// GenAI conventions' attributes.
pub static REGISTRY: &[&dyn ProducerMapping] = &[
    &claude_code::ClaudeCode,
    &codex::Codex,
    &falco::Falco,
    &mcp::Mcp,
    &genai::GenAi,
];

/// The body of a LogRecord names its event when it reads like a name, not like a
/// message (`claude_code.tool_result`, not `user logged in`).
fn body_is_a_name(body: &str) -> bool {
    !body.is_empty()
        && body.len() <= 128
        && body
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'/'))
}

/// Applies the mapping that claims `record`, if any, then the rules every record
/// follows (an event name from the body, secrets out of command lines). A record
/// whose name is already a contract kind is left to the contract.
pub fn normalize(record: &mut EventRecord<'_>) {
    if record.event_name.as_deref().is_none_or(str::is_empty)
        && let Some(body) = record.body.take()
        && body_is_a_name(&body)
    {
        record.event_name = Some(body);
    }
    // Records already in a contract kind are the contract's, whoever sent them.
    let native = record
        .event_name
        .as_deref()
        .is_none_or(|name| crate::EventKind::from_name(name) == crate::EventKind::Other);
    if native && let Some(mapping) = REGISTRY.iter().find(|mapping| mapping.claims(record)) {
        mapping.map(record);
        record.mapped_by = Some(mapping.name());
    }
    redact_command_line(record);
}

/// Who acted, for an agent's own telemetry: the product as `gen_ai.agent.name`, the
/// session as the agent instance (`gen_ai.agent.id` `<product>/<session.id>`), and the
/// first of `users` present as `user.name` when the producer sent none. The agent's
/// per-session `event.sequence` becomes `agent.event.sequence`.
fn agent_identity(record: &mut EventRecord<'_>, product: &str, users: &[&str]) {
    use crate::fields::attr;
    // An agent counts its events per session (Claude Code from 0 in each), not per
    // host as the contract's event.sequence does: kept aside, it makes no false gap.
    if let Some(sequence) = record.remove(attr::EVENT_SEQUENCE) {
        record.put_value("agent.event.sequence", sequence);
    }
    if record.value(attr::USER_NAME).is_none()
        && let Some(user) = users.iter().find_map(|name| tool_call::owned(record, name))
    {
        record.put(attr::USER_NAME, user);
    }
    if record.value(attr::AGENT_NAME).is_none() {
        record.put(attr::AGENT_NAME, product.to_string());
    }
    if record.value(attr::AGENT_ID).is_none() {
        let session = tool_call::owned(record, attr::SESSION_ID).unwrap_or_else(|| "unknown".into());
        record.put(attr::AGENT_ID, format!("{product}/{session}"));
    }
}

fn redact_command_line(record: &mut EventRecord<'_>) {
    let name = crate::fields::attr::PROCESS_COMMAND_LINE;
    let redacted = match record.text(name) {
        Some(line) => match crate::redact::command_line(&line) {
            Cow::Owned(redacted) => redacted,
            Cow::Borrowed(_) => return,
        },
        None => return,
    };
    record.remove(name);
    record.put(name, redacted);
}

#[cfg(test)]
mod tests;
