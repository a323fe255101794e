//! Falco's alerts (`crate::falco` flattens them: service `falco`, event `falco.<evt.type>`,
//! output fields under `falco.`), as the contract's eBPF kinds: an `execve` is a
//! `process.start`, a `connect`/`sendto`/`accept` with a remote address a
//! `network.flow`, an `open`/`creat`/`rename`/`unlink` of a path a `file.access`
//! (opened for writing, `write`; renamed, `rename`; unlinked, `delete`; else `read`).
//! Falco's field names: <https://falco.org/docs/reference/rules/supported-fields/>.
//!
//! A process whose parent or ancestor (`proc.pname`, `proc.aname[2..]`) is an agent
//! (`AGENTS`: `claude`, `codex`, `cursor-agent`, `gemini`, ...) is the agent's: it gets
//! `gen_ai.agent.name` and `gen_ai.agent.id` (`<agent>/pid-<the agent's pid>`), so the
//! agent rules see what the agent spawned even when the agent reports nothing.

use std::borrow::Cow;

use super::ProducerMapping;
use super::tool_call::owned;
use crate::fields::attr;
use crate::record::EventRecord;
use crate::value::AttrValue;

pub struct Falco;

/// Executable names of agents whose children Falco attributes to them.
pub const AGENTS: &[&str] = &[
    "claude",
    "codex",
    "cursor-agent",
    "cursor",
    "copilot",
    "gemini",
    "aider",
    "goose",
    "opencode",
    "cowork-agent",
];

impl ProducerMapping for Falco {
    fn name(&self) -> &'static str {
        "falco"
    }

    fn claims(&self, record: &EventRecord<'_>) -> bool {
        record.service_name.as_deref() == Some(crate::falco::FALCO_SERVICE)
            && record
                .event_name
                .as_deref()
                .is_some_and(|name| name.starts_with("falco."))
    }

    fn map(&self, record: &mut EventRecord<'_>) {
        let event_type = record.event_name.as_deref().unwrap_or_default()["falco.".len()..].to_string();
        copy(record, "falco.proc.pid", attr::PROCESS_PID);
        copy(record, "falco.proc.ppid", attr::PROCESS_PARENT_PID);
        copy(record, "falco.proc.name", attr::PROCESS_EXECUTABLE_NAME);
        copy(record, "falco.proc.exepath", attr::PROCESS_EXECUTABLE_PATH);
        copy(record, "falco.proc.cmdline", attr::PROCESS_COMMAND_LINE);
        copy(record, "falco.proc.pname", attr::PROCESS_PARENT_EXECUTABLE_NAME);
        copy(record, "falco.user.name", attr::USER_NAME);
        attribute_to_agent(record);
        let kind = match event_type.as_str() {
            "execve" | "execveat" => Some("process.start"),
            "connect" | "sendto" | "sendmsg" | "accept" | "accept4" | "recvfrom" => {
                let remote = owned(record, "falco.fd.rip").or_else(|| owned(record, "falco.fd.sip"));
                remote.map(|ip| {
                    record.put(attr::DESTINATION_IP, ip);
                    let port = record
                        .value("falco.fd.rport")
                        .or_else(|| record.value("falco.fd.sport"))
                        .cloned();
                    if let Some(port) = port {
                        record.put_value(attr::DESTINATION_PORT, port);
                    }
                    copy(record, "falco.fd.l4proto", attr::NETWORK_TRANSPORT);
                    "network.flow"
                })
            }
            "open" | "openat" | "openat2" | "creat" | "rename" | "renameat" | "renameat2" | "unlink" | "unlinkat" => {
                let path = owned(record, "falco.fd.name")
                    .or_else(|| owned(record, "falco.evt.arg.name"))
                    .or_else(|| owned(record, "falco.fs.path.name"))
                    .filter(|path| path.starts_with('/') || path.contains('\\'));
                path.map(|path| {
                    let operation = file_operation(&event_type, owned(record, "falco.evt.arg.flags").as_deref());
                    record.put(attr::FILE_PATH, path);
                    record.put(attr::FILE_OPERATION, operation);
                    "file.access"
                })
            }
            _ => None,
        };
        if let Some(kind) = kind {
            record.event_name = Some(Cow::Borrowed(kind));
        }
    }
}

fn copy(record: &mut EventRecord<'_>, from: &str, to: &'static str) {
    if record.value(to).is_none()
        && let Some(value) = record.value(from).cloned()
    {
        let value = match value {
            AttrValue::Str(text) => AttrValue::Str(Cow::Owned(text.into_owned())),
            other => other.into_owned(),
        };
        record.put_value(to, value);
    }
}

fn file_operation(event_type: &str, flags: Option<&str>) -> &'static str {
    match event_type {
        "rename" | "renameat" | "renameat2" => "rename",
        "unlink" | "unlinkat" => "delete",
        "creat" => "write",
        _ if flags.is_some_and(|flags| {
            ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                .iter()
                .any(|flag| flags.contains(flag))
        }) =>
        {
            "write"
        }
        _ => "read",
    }
}

/// The agent among the process's parent and ancestors, with that ancestor's pid.
fn attribute_to_agent(record: &mut EventRecord<'_>) {
    if record.value(attr::AGENT_ID).is_some() {
        return;
    }
    let mut lineage = vec![("falco.proc.pname".to_string(), "falco.proc.ppid".to_string())];
    lineage.extend((2..=7).map(|n| (format!("falco.proc.aname[{n}]"), format!("falco.proc.apid[{n}]"))));
    for (name, pid) in lineage {
        let Some(ancestor) = owned(record, &name) else { continue };
        let program = ancestor.rsplit('/').next().unwrap_or(&ancestor).to_ascii_lowercase();
        if let Some(agent) = AGENTS.iter().find(|agent| program == **agent) {
            let id = match owned(record, &pid) {
                Some(pid) => format!("{agent}/pid-{pid}"),
                None => (*agent).to_string(),
            };
            record.put(attr::AGENT_NAME, *agent);
            record.put(attr::AGENT_ID, id);
            return;
        }
    }
}
