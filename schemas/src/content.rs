//! What of a producer's attributes is stored: the contract's own, and those an
//! allow-list names (by default, what OpenTelemetry SDKs, Claude Code, Codex, the GenAI
//! and MCP conventions and OPA send that is metadata, never content). Anything else is
//! dropped, or kept only as a keyed hash (HMAC-SHA256) with its length, so that a
//! hunt can still tell two values apart without anyone reading them. A deny-list of
//! names would be bypassed by the next spelling (`clipboardContent`, `message`,
//! `gen_ai.prompt`); an allow-list is not.

use std::collections::HashSet;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::glob::Glob;

/// What happens to an attribute no list names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unlisted {
    /// Not stored (counted).
    Drop,
    /// Stored as `hmac-sha256:<hex>;bytes=<length>` under its name (counted).
    #[default]
    Hash,
}

/// The allow-list Cordon ships: metadata real producers send. Patterns take `*` for
/// one dotted segment and `**` for any number.
pub const DEFAULT_ALLOW: &[&str] = &[
    // OpenTelemetry SDK and resource conventions.
    "telemetry.sdk.*",
    "telemetry.distro.*",
    "service.*",
    "service.instance.id",
    "host.*",
    "host.cpu.*",
    "host.image.*",
    "os.*",
    "process.pid",
    "process.owner",
    "process.runtime.*",
    "process.executable.*",
    "deployment.**",
    "cloud.*",
    "container.id",
    "container.name",
    "server.address",
    "server.port",
    "url.scheme",
    "network.protocol.*",
    "user_agent.original",
    "http.response.status_code",
    "error.type",
    "event.timestamp",
    "event.sequence",
    // Claude Code's OpenTelemetry events (claude_code.*): session, usage, decisions.
    "session.id",
    "app.version",
    "organization.id",
    "user.account_uuid",
    "user.account_id",
    "user.id",
    "user.email",
    "terminal.type",
    "model",
    "cost_usd",
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "tool_name",
    "success",
    "decision",
    "source",
    "status_code",
    "attempt",
    "prompt_length",
    "speed",
    "prompt.id",
    "tool_use_id",
    "tool_source",
    "tool_input_size_bytes",
    "tool_result_size_bytes",
    "user_prompt_length",
    "response_length",
    "permission_mode",
    "span.type",
    "interaction.sequence",
    "interaction.duration_ms",
    "llm_request.context",
    "ttft_ms",
    "stop_reason",
    "effort",
    "query_source",
    "anthropic.provider",
    "bash_command_class",
    "bash_argv0",
    // Codex's OpenTelemetry events (codex.*).
    "conversation.id",
    "auth_mode",
    "slug",
    "provider_name",
    "reasoning_effort",
    "reasoning_summary",
    "approval_policy",
    "sandbox_policy",
    "call_id",
    "event.kind",
    "input_token_count",
    "output_token_count",
    "cached_token_count",
    "reasoning_token_count",
    "tool_token_count",
    "mcp_servers",
    "mcp_server",
    "mcp_server_origin",
    "tool_origin",
    // OpenTelemetry GenAI and MCP conventions: names, ids and counts, no messages.
    "gen_ai.system",
    "gen_ai.provider.name",
    "gen_ai.operation.name",
    "gen_ai.request.model",
    "gen_ai.request.max_tokens",
    "gen_ai.request.temperature",
    "gen_ai.response.model",
    "gen_ai.response.id",
    "gen_ai.response.finish_reasons",
    "gen_ai.usage.*",
    "gen_ai.conversation.id",
    "gen_ai.tool.name",
    "gen_ai.tool.type",
    "gen_ai.tool.call.id",
    "gen_ai.agent.description",
    "gen_ai.guardian.*",
    "gen_ai.guardrail.*",
    "gen_ai.security.decision.type",
    "gen_ai.security.decision.reason",
    "gen_ai.security.decision.code",
    "gen_ai.security.target.type",
    "gen_ai.security.target.id",
    "gen_ai.security.policy.*",
    "mcp.method.name",
    "mcp.session.id",
    "mcp.protocol.version",
    "mcp.tool.name",
    "mcp.resource.uri",
    "jsonrpc.request.id",
    "jsonrpc.protocol.version",
    // What Cordon itself derives from agents' telemetry (producers/, otlp_traces.rs).
    "agent.event",
    "agent.event.sequence",
    "agent.tool.*",
    "span.*",
    // OPA's decision input, two levels down (deeper levels arrive as JSON text).
    "policy.input.*",
    "policy.input.*.*",
    // Falco's alerts (falco.rs): rule, priority and its output fields (process, file
    // descriptor and event fields; content-like last segments are still refused).
    "falco.**",
    // The contract's namespaces: fields beside the ones with columns.
    "file.*",
    "destination.*",
    "source.*",
    "network.*",
    "tls.**",
    "dlp.*",
    "broker.*",
    "credential.*",
    "data.classification",
];

/// Last name segments that are content, whatever pattern would let them through:
/// a `policy.input.*` or `tool.*` entry does not admit `policy.input.prompt`.
const CONTENT_SEGMENTS: &[&str] = &[
    "content",
    "contents",
    "body",
    "text",
    "payload",
    "raw",
    "plaintext",
    "prompt",
    "prompts",
    "completion",
    "completions",
    "message",
    "messages",
    "arguments",
    "output",
    "data",
    "clipboard",
    "instructions",
    "buffer",
];

/// The policy one ingest applies.
pub struct ContentPolicy {
    exact: HashSet<String>,
    patterns: Vec<Glob>,
    unlisted: Unlisted,
    /// The HMAC key for `Unlisted::Hash`; without one, unlisted attributes are dropped.
    key: Option<Vec<u8>>,
}

/// What becomes of one attribute.
#[derive(Debug, PartialEq, Eq)]
pub enum ContentFate {
    Keep,
    Hash(String),
    Drop,
}

impl Default for ContentPolicy {
    /// The shipped allow-list; unlisted attributes dropped (no key to hash with).
    fn default() -> Self {
        ContentPolicy::new::<&str>(&[], Unlisted::Drop, None)
    }
}

impl std::fmt::Debug for ContentPolicy {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ContentPolicy")
            .field("exact", &self.exact.len())
            .field("patterns", &self.patterns.len())
            .field("unlisted", &self.unlisted)
            .field("key", &self.key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// A dotted name as a path, so that the glob's `*` stays within one segment.
fn as_path(name: &str) -> String {
    name.replace('/', "\u{1}").replace('.', "/")
}

fn last_segment_is_content(name: &str) -> bool {
    let last = name.rsplit(['.', '_', '-']).next().unwrap_or(name).trim();
    CONTENT_SEGMENTS
        .iter()
        .any(|segment| last.eq_ignore_ascii_case(segment))
}

impl ContentPolicy {
    /// The default policy, compiled once: every batch builder starts with it, and one
    /// is made per request.
    pub fn shared_default() -> std::sync::Arc<ContentPolicy> {
        static DEFAULT: std::sync::OnceLock<std::sync::Arc<ContentPolicy>> = std::sync::OnceLock::new();
        DEFAULT
            .get_or_init(|| std::sync::Arc::new(ContentPolicy::default()))
            .clone()
    }

    /// The shipped allow-list plus `extra`; `key` for hashing unlisted values.
    pub fn new<S: AsRef<str>>(extra: &[S], unlisted: Unlisted, key: Option<Vec<u8>>) -> ContentPolicy {
        let mut exact = HashSet::new();
        let mut patterns = Vec::new();
        let all = DEFAULT_ALLOW.iter().copied().chain(extra.iter().map(AsRef::as_ref));
        for entry in all {
            let entry = entry.trim();
            if entry.contains('*') || entry.contains('?') {
                patterns.push(Glob::new(&as_path(entry), true));
            } else {
                exact.insert(entry.to_ascii_lowercase());
            }
        }
        ContentPolicy {
            exact,
            patterns,
            unlisted,
            key,
        }
    }

    /// Whether an attribute of this name is stored as sent.
    pub fn allows(&self, name: &str) -> bool {
        if self.exact.contains(&name.to_ascii_lowercase()) {
            return true;
        }
        if last_segment_is_content(name) {
            return false;
        }
        let path = as_path(name);
        let mut scratch = Vec::new();
        self.patterns.iter().any(|pattern| pattern.matches(&path, &mut scratch))
    }

    /// What to store for an attribute `name` whose value reads `text`.
    pub fn judge(&self, name: &str, text: &str) -> ContentFate {
        if self.allows(name) {
            return ContentFate::Keep;
        }
        self.judge_unlisted(text)
    }

    /// What to store of an attribute no list names, whose value reads `text`.
    pub fn judge_unlisted(&self, text: &str) -> ContentFate {
        match (&self.unlisted, &self.key) {
            (Unlisted::Hash, Some(key)) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
                mac.update(text.as_bytes());
                let digest = mac.finalize().into_bytes();
                let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
                ContentFate::Hash(format!("hmac-sha256:{hex};bytes={}", text.len()))
            }
            _ => ContentFate::Drop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashing() -> ContentPolicy {
        ContentPolicy::new(&["team", "acme.ticket.*"], Unlisted::Hash, Some(b"key".to_vec()))
    }

    #[test]
    fn the_probes_bypasses_are_not_stored_as_sent() {
        let policy = hashing();
        for name in [
            "clipboard.content",
            "clipboard.content ",
            "clipboardContent",
            "clipboard_content",
            "message",
            "gen_ai.prompt",
            "gen_ai.completion",
            "gen_ai.input.messages",
            "tool_parameters",
            "policy.input.request.body",
            "policy.input.prompt",
            "policy.input.a.b.c",
            "event.data",
        ] {
            assert!(!policy.allows(name), "{name:?} would be stored");
            match policy.judge(name, "secret words") {
                ContentFate::Hash(value) => {
                    assert!(
                        value.starts_with("hmac-sha256:") && value.ends_with(";bytes=12"),
                        "{value}"
                    );
                    assert!(!value.contains("secret"));
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn what_real_producers_send_as_metadata_is_kept() {
        let policy = hashing();
        for name in [
            "telemetry.sdk.language",
            "service.instance.id",
            "os.type",
            "session.id",
            "input_tokens",
            "gen_ai.usage.input_tokens",
            "gen_ai.request.model",
            "policy.input.destination.host",
            "tls.client.ja3",
            "team",
            "acme.ticket.id",
        ] {
            assert!(policy.allows(name), "{name}");
        }
        assert!(!policy.allows("acme.ticket.notes.more"), "`*` is one segment");
    }

    #[test]
    fn hashes_are_keyed_stable_and_without_a_key_values_are_dropped() {
        let one = hashing().judge("message", "hello");
        assert_eq!(one, hashing().judge("message", "hello"));
        let other_key = ContentPolicy::new::<&str>(&[], Unlisted::Hash, Some(b"other".to_vec()));
        assert_ne!(one, other_key.judge("message", "hello"));
        assert_eq!(ContentPolicy::default().judge("message", "hello"), ContentFate::Drop);
        let dropping = ContentPolicy::new::<&str>(&[], Unlisted::Drop, Some(b"key".to_vec()));
        assert_eq!(dropping.judge("message", "hello"), ContentFate::Drop);
    }
}
