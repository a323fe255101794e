//! What coding agents send on their own, shaped as they send it (measured from Claude
//! Code 2.1 and read from Codex's source; `cordon_schemas::producers` maps it): Claude
//! Code's log events named without their prefix, numbers and booleans as strings, tool
//! details as JSON text, a per-session `event.sequence`; Codex's `codex.*` events with
//! `conversation.id`. Neither sends a host: the simulator adds `host.id` as an operator
//! does through `OTEL_RESOURCE_ATTRIBUTES`.

use cordon_schemas::FlatEvent;
use cordon_schemas::fields::attr;
use serde_json::{Value, json};

use super::world::Host;

pub const CLAUDE_CODE: &str = "claude-code";
pub const CODEX: &str = "codex_cli_rs";

/// One agent session on a host: who runs it, and its own event counter.
pub struct Session<'a> {
    pub host: &'a Host,
    pub id: String,
    sequence: i64,
}

impl<'a> Session<'a> {
    /// A session whose id is derived from the host and a number: deterministic.
    pub fn new(host: &'a Host, number: u64) -> Session<'a> {
        Session {
            host,
            id: format!("{:08x}-5e55-4d00-8000-{:012x}", fxhash(&host.id), number),
            sequence: 0,
        }
    }

    /// Continues a session whose last event was numbered `sequence - 1`.
    pub fn resume(host: &'a Host, number: u64, sequence: i64) -> Session<'a> {
        Session {
            sequence,
            ..Session::new(host, number)
        }
    }

    /// The number its next event gets.
    pub fn sequence(&self) -> i64 {
        self.sequence
    }

    fn email(&self) -> String {
        format!("{}@corp.example.com", self.host.user)
    }

    /// A Claude Code log event (`name` without the `claude_code.` prefix, as sent).
    fn claude(&mut self, time: i64, name: &str) -> FlatEvent {
        let mut event = FlatEvent::new(time, name, &self.host.id);
        event
            .set(attr::SERVICE_NAME, CLAUDE_CODE)
            .set("service.version", "2.1.332")
            .set("session.id", self.id.clone())
            .set("user.email", self.email())
            .set("terminal.type", "vscode")
            .set_int(attr::EVENT_SEQUENCE, self.sequence);
        self.sequence += 1;
        event
    }

    /// `claude_code.tool_decision` for one call, with `OTEL_LOG_TOOL_DETAILS=1`.
    pub fn claude_decision(
        &mut self,
        time: i64,
        call: &ToolCall,
        decision: &str,
        source: &str,
        mode: &str,
    ) -> FlatEvent {
        let mut event = self.claude(time, "tool_decision");
        event
            .set("decision", decision)
            .set("source", source)
            .set("tool_name", call.tool)
            .set("tool_use_id", call.id.clone())
            .set("tool_source", "builtin")
            .set("tool_parameters", call.parameters())
            .set("permission_mode", mode);
        event
    }

    /// `claude_code.tool_result`: the call ran.
    pub fn claude_result(&mut self, time: i64, call: &ToolCall, duration_ms: i64) -> FlatEvent {
        let mut event = self.claude(time, "tool_result");
        let input = call.input.to_string();
        event
            .set("tool_name", call.tool)
            .set("tool_use_id", call.id.clone())
            .set("success", "true")
            .set("duration_ms", duration_ms.to_string())
            .set("tool_parameters", call.parameters())
            .set("tool_input", input.clone())
            .set("tool_input_size_bytes", input.len().to_string());
        event
    }

    /// `claude_code.api_request`: one model call.
    pub fn claude_api_request(&mut self, time: i64, input_tokens: i64) -> FlatEvent {
        let mut event = self.claude(time, "api_request");
        event
            .set("model", "claude-sonnet-4-5")
            .set_int("input_tokens", input_tokens)
            .set_int("output_tokens", input_tokens / 8)
            .set_int("duration_ms", 900 + input_tokens % 700);
        event
    }

    /// A Codex log event.
    fn codex(&mut self, time: i64, name: &str) -> FlatEvent {
        let mut event = FlatEvent::new(time, name, &self.host.id);
        event
            .set(attr::SERVICE_NAME, CODEX)
            .set("conversation.id", self.id.clone())
            .set("user.email", self.email())
            .set("app.version", "0.171.0")
            .set("model", "gpt-5-codex");
        event
    }

    /// `codex.conversation_starts` with its approval and sandbox settings.
    pub fn codex_starts(&mut self, time: i64, approval: &str, sandbox: &str) -> FlatEvent {
        let mut event = self.codex(time, "codex.conversation_starts");
        event
            .set("provider_name", "openai")
            .set("approval_policy", approval)
            .set("sandbox_policy", sandbox)
            .set("mcp_servers", "github");
        event
    }

    /// `codex.tool_decision` (`approved`, `denied`, `abort`, ...).
    pub fn codex_decision(&mut self, time: i64, call: &ToolCall, decision: &str) -> FlatEvent {
        let mut event = self.codex(time, "codex.tool_decision");
        event
            .set("tool_name", call.tool)
            .set("call_id", call.id.clone())
            .set("decision", decision)
            .set("source", "user");
        event
    }
}

/// One tool call: its tool, id and input (what the agent passes the tool).
pub struct ToolCall {
    pub tool: &'static str,
    pub id: String,
    pub input: Value,
}

impl ToolCall {
    pub fn shell(id: String, command: &str) -> ToolCall {
        ToolCall {
            tool: "Bash",
            id,
            input: json!({"command": command, "description": "Run a command"}),
        }
    }

    pub fn file(tool: &'static str, id: String, path: &str) -> ToolCall {
        ToolCall {
            tool,
            id,
            input: json!({"file_path": path}),
        }
    }

    pub fn fetch(id: String, url: &str) -> ToolCall {
        ToolCall {
            tool: "WebFetch",
            id,
            input: json!({"url": url, "prompt": "Summarise the page"}),
        }
    }

    /// Claude Code's `tool_parameters`: for its shell tool, the command and its first word.
    fn parameters(&self) -> String {
        match self.input.get("command").and_then(Value::as_str) {
            Some(command) => json!({
                "bash_command": command.split_whitespace().next().unwrap_or_default(),
                "full_command": command,
                "description": "Run a command",
            })
            .to_string(),
            None => self.input.to_string(),
        }
    }
}

/// A stable small hash (FNV-1a) for ids derived from names.
fn fxhash(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}
