//! One agent tool call, whoever reported it, as a contract event: a refused call is a
//! policy deny, a shell command that ran is an agent-caused process start, a web tool
//! that ran is a network flow, a file tool is a file access, and anything else is an
//! `agent.tool_call`. Every mapping of an agent's tool calls goes through here, so the
//! same call reads the same from Claude Code, Codex, a GenAI framework or MCP.

use std::borrow::Cow;

use crate::fields::attr;
use crate::record::EventRecord;

/// What a tool does, from its name (contract field `agent.tool.category`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Shell,
    Web,
    FileRead,
    FileWrite,
    Mcp,
    Other,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Shell => "shell",
            Category::Web => "web",
            Category::FileRead => "file_read",
            Category::FileWrite => "file_write",
            Category::Mcp => "mcp",
            Category::Other => "other",
        }
    }

    /// The category of a tool by its name: the names Claude Code, Codex, Gemini CLI,
    /// Copilot and the common agent frameworks give their built-in tools, then words
    /// in the name.
    pub fn of(tool: &str) -> Category {
        let lower = tool.to_ascii_lowercase();
        if lower.starts_with("mcp__") {
            return Category::Mcp;
        }
        match lower.as_str() {
            "bash" | "shell" | "local_shell" | "exec_command" | "run_shell_command" | "execute_command"
            | "run_terminal_cmd" | "terminal" | "powershell" | "unified_exec" | "container.exec" => {
                return Category::Shell;
            }
            "webfetch" | "web_fetch" | "websearch" | "web_search" | "fetch" | "http_request" | "browser"
            | "google_web_search" => return Category::Web,
            "read"
            | "glob"
            | "grep"
            | "ls"
            | "notebookread"
            | "read_file"
            | "read_many_files"
            | "view"
            | "list_directory"
            | "search_file_content" => return Category::FileRead,
            "write" | "edit" | "multiedit" | "notebookedit" | "apply_patch" | "write_file" | "edit_file"
            | "replace" | "str_replace_editor" | "create_file" => return Category::FileWrite,
            _ => {}
        }
        let has = |words: &[&str]| words.iter().any(|word| lower.contains(word));
        if has(&["shell", "bash", "exec", "command", "terminal"]) {
            Category::Shell
        } else if has(&["fetch", "http", "url", "web", "browse", "upload", "download", "request"]) {
            Category::Web
        } else if has(&["write", "edit", "patch", "save"]) {
            Category::FileWrite
        } else if has(&["read", "open", "cat", "list"]) {
            Category::FileRead
        } else {
            Category::Other
        }
    }
}

/// The answer to a call's permission check, in the producer's words mapped to two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Reject,
}

impl Decision {
    /// Claude Code says accept/reject; Codex approved, approved_for_session, denied,
    /// abort; guardrails allow/block/deny.
    pub fn parse(text: &str) -> Option<Decision> {
        match text.to_ascii_lowercase().as_str() {
            "accept" | "accepted" | "approved" | "approved_for_session" | "allow" | "allowed" | "pass" | "yes" => {
                Some(Decision::Accept)
            }
            "reject" | "rejected" | "denied" | "deny" | "abort" | "aborted" | "block" | "blocked" | "no" => {
                Some(Decision::Reject)
            }
            _ => None,
        }
    }
}

/// A tool call as one report of it tells it.
#[derive(Debug, Default)]
pub struct ToolCall {
    /// The agent product (`claude-code`, `codex`, ...), for `gen_ai.agent.name`.
    pub agent: Option<String>,
    pub tool: Option<String>,
    pub call_id: Option<String>,
    pub command: Option<String>,
    pub path: Option<String>,
    pub url: Option<String>,
    pub decision: Option<Decision>,
    /// Who decided (`config`, `user_reject`, a guardrail's name).
    pub decided_by: Option<String>,
    /// The report is of the call having run (a result, a finished span).
    pub ran: bool,
    pub success: Option<bool>,
    pub mcp_server: Option<String>,
}

/// Reads a boolean sent as a bool or as text (`"true"`).
pub fn truthy(record: &EventRecord<'_>, name: &str) -> Option<bool> {
    match record.value(name)? {
        crate::AttrValue::Bool(flag) => Some(*flag),
        other => match other.to_text().trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
    }
}

/// A string attribute, owned (the mapping is about to rewrite the record).
pub fn owned(record: &EventRecord<'_>, name: &str) -> Option<String> {
    record.text(name).map(Cow::into_owned).filter(|text| !text.is_empty())
}

/// The host of a URL (`https://user@host:8443/x` -> `host`).
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// The program a command line runs: its first word, without folder or quotes.
pub fn program(command: &str) -> Option<&str> {
    let word = command.split_whitespace().next()?.trim_matches(['"', '\'']);
    let name = word.rsplit(['/', '\\']).next().unwrap_or(word);
    (!name.is_empty()).then_some(name)
}

/// Values a tool's input names its command, path and URL under, in the JSON the
/// agents send (`tool_input`, `tool_parameters`, `arguments`, `gen_ai.tool.call.arguments`).
pub fn read_input(json: &str, call: &mut ToolCall) {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(json) else {
        return;
    };
    let text = |names: &[&str]| {
        names.iter().find_map(|name| match fields.get(*name)? {
            serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
            // Codex's shell tool: `{"command": ["bash", "-lc", "curl ..."]}`.
            serde_json::Value::Array(words) => {
                let words: Vec<&str> = words.iter().filter_map(serde_json::Value::as_str).collect();
                (!words.is_empty()).then(|| shell_words(&words))
            }
            _ => None,
        })
    };
    if call.command.is_none() {
        call.command = text(&["full_command", "command", "cmd", "bash_command", "script"]);
    }
    if call.path.is_none() {
        call.path = text(&["file_path", "path", "notebook_path", "filename", "target_file"]);
    }
    if call.url.is_none() {
        call.url = text(&["url", "uri", "endpoint"]);
    }
    if call.path.is_none()
        && let Some(patch) = text(&["input", "patch"])
    {
        call.path = patched_file(&patch);
    }
}

/// The first file a patch in Codex's `apply_patch` format touches
/// (`*** Update File: src/main.rs`).
fn patched_file(patch: &str) -> Option<String> {
    patch.lines().find_map(|line| {
        ["*** Update File: ", "*** Add File: ", "*** Delete File: "]
            .iter()
            .find_map(|marker| line.strip_prefix(marker))
            .map(|path| path.trim().to_string())
            .filter(|path| !path.is_empty())
    })
}

/// `["bash", "-lc", "curl x | sh"]` is the command `curl x | sh`.
fn shell_words(words: &[&str]) -> String {
    match words {
        [shell, flag, script] if matches!(program(shell), Some("bash" | "sh" | "zsh")) && flag.starts_with('-') => {
            script.to_string()
        }
        _ => words.join(" "),
    }
}

impl ToolCall {
    /// Writes the call into `record` as the contract kind that fits it.
    pub fn apply(self, record: &mut EventRecord<'_>) {
        let category = self.tool.as_deref().map_or(Category::Other, Category::of);
        let category = if self.mcp_server.is_some() && category == Category::Other {
            Category::Mcp
        } else {
            category
        };
        let kind = match (self.decision, self.ran, category) {
            (Some(Decision::Reject), _, _) => "policy.decision",
            (_, true, Category::Shell) if self.command.is_some() => "process.start",
            (_, true, Category::Web) if self.url.is_some() => "network.flow",
            (_, true, Category::FileRead | Category::FileWrite) if self.path.is_some() => "file.access",
            _ => "agent.tool_call",
        };
        record.event_name = Some(Cow::Borrowed(kind));
        if let Some(agent) = &self.agent
            && record.value(attr::AGENT_NAME).is_none()
        {
            record.put(attr::AGENT_NAME, agent.clone());
        }
        record.put(attr::TOOL_CATEGORY, category.as_str());
        if let Some(tool) = self.tool {
            record.put(attr::TOOL_NAME, tool);
        }
        if let Some(id) = self.call_id {
            record.put(attr::TOOL_CALL_ID, id);
        }
        if let Some(server) = self.mcp_server {
            record.put(attr::MCP_SERVER, server);
        }
        if let Some(decision) = self.decision {
            let (word, policy) = match decision {
                Decision::Accept => ("accept", "allow"),
                Decision::Reject => ("reject", "deny"),
            };
            record.put(attr::TOOL_DECISION, word);
            if kind == "policy.decision" {
                record.put(attr::POLICY_DECISION, policy);
                record.put(attr::POLICY_PATH, "agent/tool_permission");
                if let Some(by) = &self.decided_by {
                    record.put(attr::POLICY_REASON, format!("tool call refused ({by})"));
                }
            }
        }
        if let Some(success) = self.success {
            record.put("agent.tool.success", if success { "true" } else { "false" });
        }
        if let Some(command) = self.command {
            if let Some(name) = program(&command) {
                record.put(attr::PROCESS_EXECUTABLE_NAME, name.to_string());
            }
            record.put(attr::PROCESS_COMMAND_LINE, command);
        }
        if let Some(path) = self.path {
            let operation = if category == Category::FileWrite {
                "write"
            } else {
                "read"
            };
            record.put(attr::FILE_OPERATION, operation);
            record.put(attr::FILE_PATH, path);
        }
        if let Some(url) = self.url {
            if let Some(host) = url_host(&url) {
                record.put(attr::DESTINATION_ADDRESS, host.to_string());
            }
            record.put(attr::URL_FULL, crate::redact::command_line(&url).into_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_fall_in_categories_by_name() {
        for (tool, category) in [
            ("Bash", Category::Shell),
            ("shell", Category::Shell),
            ("exec_command", Category::Shell),
            ("WebFetch", Category::Web),
            ("upload_file", Category::Web),
            ("Write", Category::FileWrite),
            ("apply_patch", Category::FileWrite),
            ("Read", Category::FileRead),
            ("mcp__github__create_issue", Category::Mcp),
            ("get_weather", Category::Other),
        ] {
            assert_eq!(Category::of(tool), category, "{tool}");
        }
    }

    #[test]
    fn inputs_name_commands_paths_and_urls() {
        let mut call = ToolCall::default();
        read_input(
            r#"{"command":["bash","-lc","curl -s x | sh"],"workdir":"/w"}"#,
            &mut call,
        );
        assert_eq!(call.command.as_deref(), Some("curl -s x | sh"));
        let mut call = ToolCall::default();
        read_input(r#"{"file_path":"/home/a/.mcp.json","content":"{}"}"#, &mut call);
        assert_eq!(call.path.as_deref(), Some("/home/a/.mcp.json"));
        let mut call = ToolCall::default();
        read_input(
            r#"{"input":"*** Begin Patch\n*** Update File: /home/b/.codex/config.toml\n@@\n-x\n+y\n*** End Patch"}"#,
            &mut call,
        );
        assert_eq!(call.path.as_deref(), Some("/home/b/.codex/config.toml"));
        let mut call = ToolCall::default();
        read_input("not json", &mut call);
        assert!(call.command.is_none() && call.path.is_none() && call.url.is_none());
    }

    #[test]
    fn urls_give_their_host() {
        assert_eq!(
            url_host("https://user:pw@paste.example.net:8443/x?y"),
            Some("paste.example.net")
        );
        assert_eq!(url_host("http://[::1]:80/"), Some("::1"));
        assert_eq!(url_host("example.com/path"), Some("example.com"));
        assert_eq!(program("/usr/bin/curl -s x"), Some("curl"));
    }
}
