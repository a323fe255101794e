//! Real agents as producers, nothing hand-encoded: the Claude Code CLI (npm
//! `@anthropic-ai/claude-code`, driven by a local stand-in of its model API), a real MCP
//! client and server (PyPI `mcp`), and the OpenAI Agents SDK with OpenTelemetry's GenAI
//! instrumentation, each pointed at Cordon as its documentation says, their telemetry
//! mapped (`cordon_schemas::producers`) and detected. `scripts/setup-test-env.sh`
//! installs them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::common::*;

/// The host the agents' credential names: they send no host of their own.
pub const AGENT_HOST: &str = "wks-agent-01";
pub const AGENT_TOKEN: &str = "agent-wks-agent-01-0123456789abcdef";

pub type Row = Map<String, Value>;

fn with_agent_credential(config: &mut cordon::Config) {
    config
        .producers
        .credentials
        .push(cordon_ingest::auth::CredentialConfig {
            name: "agents-wks-agent-01".into(),
            token: Some(AGENT_TOKEN.into()),
            hosts: vec![AGENT_HOST.into()],
            ..Default::default()
        });
}

pub fn claude_binary() -> PathBuf {
    let binary = cache_dir().join("agents/node_modules/.bin/claude");
    assert!(
        binary.exists(),
        "no Claude Code CLI at {}: run scripts/setup-test-env.sh (or scripts/test.sh) first",
        binary.display()
    );
    binary
}

/// The stand-in model API (`tests/python/stand_in_model.py`), killed on drop.
pub struct StandIn {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StandIn {
    /// Answers a request offering the shell tool with a call running `command`
    /// (`{port}` is its own port), and then with `answer`.
    pub fn start(dir: &Path, command: &str, answer: &str) -> StandIn {
        let port_file = dir.join("stand-in.port");
        let child = Command::new(python())
            .arg(python_script("stand_in_model.py"))
            .arg(&port_file)
            .arg(command)
            .env("STAND_IN_ANSWER", answer)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while !port_file.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the stand-in model did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let port = std::fs::read_to_string(&port_file).unwrap().trim().parse().unwrap();
        StandIn {
            child,
            port,
            log: dir.join("stand-in.port.log"),
        }
    }

    /// The requests it served, one path a line.
    pub fn requests(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Runs `claude -p prompt` against the stand-in with telemetry to `otlp_http` (the
/// settings the README recommends: logs and traces over OTLP/HTTP JSON, tool details
/// on), presenting `token`. `extra` adds or overrides variables.
pub fn run_claude(
    dir: &Path,
    otlp_http: &str,
    token: &str,
    model: &StandIn,
    prompt: &str,
    extra: &[(&str, &str)],
) -> Output {
    let home = dir.join("home");
    let project = dir.join("project");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&project).unwrap();
    let mut command = Command::new(claude_binary());
    command
        .current_dir(&project)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("ANTHROPIC_BASE_URL", format!("http://127.0.0.1:{}", model.port))
        .env("ANTHROPIC_API_KEY", "sk-stand-in")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("CLAUDE_CODE_ENABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_ENHANCED_TELEMETRY_BETA", "1")
        .env("OTEL_LOGS_EXPORTER", "otlp")
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_METRICS_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_http)
        .env("OTEL_EXPORTER_OTLP_HEADERS", format!("Authorization=Bearer {token}"))
        .env("OTEL_LOGS_EXPORT_INTERVAL", "500")
        .env("OTEL_LOG_TOOL_DETAILS", "1")
        .args(["-p", prompt, "--allowedTools", "Bash(curl:*)"]);
    for (name, value) in extra {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "claude failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs one of the Python producers (`mcp_tools.py`, `genai_agent.py`) exporting to
/// `otlp_http` with `token`, for `host`.
pub fn run_python_producer(
    script: &str,
    args: &[&str],
    otlp_http: &str,
    token: &str,
    host: &str,
    extra: &[(&str, &str)],
) {
    let mut command = Command::new(python());
    command
        .arg(python_script(script))
        .args(args)
        .env("CORDON_OTLP_HTTP", otlp_http)
        .env("CORDON_TOKEN", token)
        .env("OTEL_RESOURCE_ATTRIBUTES", format!("host.id={host}"));
    for (name, value) in extra {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{script} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn text<'a>(row: &'a Row, column: &str) -> Option<&'a str> {
    row.get(column).and_then(Value::as_str)
}

pub fn attribute<'a>(row: &'a Row, key: &str) -> Option<&'a str> {
    row.get("attributes")?.get(key)?.as_str()
}

/// The stored rows of `service`, once `ready` holds for them.
async fn rows_of(server: &TestServer, service: &str, ready: impl Fn(&[Row]) -> bool) -> Vec<Row> {
    let storage = server.storage();
    eventually(Duration::from_secs(60), &format!("{service}'s telemetry"), async || {
        let rows: Vec<Row> = stored_rows(&storage)
            .await
            .into_iter()
            .filter(|row| text(row, "service_name") == Some(service))
            .collect();
        ready(&rows).then_some(rows)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_running_curl_is_mapped_and_raises_the_shell_network_rule_once() {
    let server = TestServer::start_with(with_agent_credential).await;
    let dir = tempfile::tempdir().unwrap();
    let model = StandIn::start(
        dir.path(),
        "curl -s http://127.0.0.1:{port}/probe -o /dev/null",
        "Done.",
    );
    let otlp = format!("http://{}", server.server.http_addr);
    run_claude(
        dir.path(),
        &otlp,
        AGENT_TOKEN,
        &model,
        "check the endpoint with curl",
        &[],
    );
    assert!(
        model.requests().contains("GET /probe"),
        "curl really ran: {}",
        model.requests()
    );

    let rows = rows_of(&server, "claude-code", |rows| {
        rows.iter().any(|row| text(row, "event_name") == Some("process.start"))
            && rows.iter().any(|row| text(row, "span_id").is_some())
    })
    .await;
    // The log events: the decision and the result of the one Bash call.
    let by_event = |name: &str| -> Vec<&Row> {
        rows.iter()
            .filter(|row| attribute(row, "agent.event") == Some(name))
            .collect()
    };
    let decision = by_event("claude_code.tool_decision");
    assert_eq!(decision.len(), 1, "{rows:#?}");
    assert_eq!(text(decision[0], "event_name"), Some("agent.tool_call"));
    assert_eq!(text(decision[0], "agent_tool_decision"), Some("accept"));
    let result = by_event("claude_code.tool_result");
    assert_eq!(result.len(), 1);
    let result = result[0];
    assert_eq!(text(result, "event_name"), Some("process.start"));
    assert_eq!(text(result, "host_id"), Some(AGENT_HOST), "the credential's host");
    assert_eq!(text(result, "producer"), Some("agents-wks-agent-01"));
    assert_eq!(text(result, "process_executable_name"), Some("curl"));
    let command = text(result, "process_command_line").unwrap();
    assert!(command.starts_with("curl -s http://127.0.0.1:"), "{command}");
    let session = text(result, "session_id").unwrap();
    assert_eq!(text(decision[0], "session_id"), Some(session), "one session key");
    let call = text(result, "gen_ai_tool_call_id").unwrap();
    assert_eq!(
        text(decision[0], "gen_ai_tool_call_id"),
        Some(call),
        "one tool-call key"
    );
    // The traces: the call's span and its run, in the same session and call.
    let tool_span = by_event("claude_code.tool");
    assert_eq!(tool_span.len(), 1);
    assert_eq!(text(tool_span[0], "gen_ai_tool_call_id"), Some(call));
    assert_eq!(text(tool_span[0], "session_id"), Some(session));
    assert_eq!(attribute(tool_span[0], "span.kind"), Some("internal"));
    assert!(text(tool_span[0], "trace_id").is_some_and(|id| id.len() == 32));

    // Operators see the mapping at work on /metrics.
    let mapped = server
        .server
        .ingestor
        .metrics()
        .events_mapped
        .get_or_create(&vec![("producer", "claude-code")])
        .get();
    assert!(
        mapped as usize >= rows.len(),
        "{mapped} of {} rows counted as mapped",
        rows.len()
    );

    server.detections_idle().await;
    let alerts = server.alerts().await;
    let shell: Vec<&Value> = alerts
        .iter()
        .filter(|alert| alert["rule_id"] == "agent-shell-network-tool")
        .collect();
    assert_eq!(shell.len(), 1, "{alerts:#?}");
    assert_eq!(shell[0]["host_id"], AGENT_HOST);
    assert_eq!(shell[0]["entity"]["session_id"], session);
    assert_eq!(shell[0]["fields"]["network_tool"], "curl");
    assert!(
        !alerts
            .iter()
            .any(|alert| alert["rule_id"] == "agent-spawned-network-tool"),
        "one curl, one alert: {alerts:#?}"
    );
}

/// What Claude Code sent (its captured export, `schemas/testdata/claude_code`), sent
/// as it sends it when streaming: chunked, no Content-Length.
fn chunked(body: &'static str) -> reqwest::Body {
    use http_body_util::StreamBody;
    let frames: Vec<Result<http_body::Frame<bytes::Bytes>, std::io::Error>> = body
        .as_bytes()
        .chunks(4096)
        .map(|chunk| Ok(http_body::Frame::data(bytes::Bytes::from_static(chunk))))
        .collect();
    reqwest::Body::wrap(StreamBody::new(futures::stream::iter(frames)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_less_agent_is_refused_naming_the_setting_and_taken_with_a_host_credential() {
    let server = TestServer::start_with(with_agent_credential).await;
    const LOGS: &str = include_str!("../../schemas/testdata/claude_code/logs_reject.json");
    let records = LOGS.matches("\"logRecords\"").count().max(1);
    let post = async |token: &str| -> Value {
        let response = reqwest::Client::new()
            .post(format!("http://{}/v1/logs", server.server.http_addr))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(chunked(LOGS))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    };
    // The fleet's credential covers every host, so it names none: refused, and told why.
    let refused = post(TEST_PRODUCER_TOKEN).await;
    let message = refused["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(message.contains("OTEL_RESOURCE_ATTRIBUTES=host.id=<host>"), "{message}");
    let rejected = refused["partialSuccess"]["rejectedLogRecords"].as_i64().unwrap();
    assert!(rejected >= records as i64, "{refused}");
    // The agent's own credential names its host: everything is taken.
    let taken = post(AGENT_TOKEN).await;
    assert!(
        taken["partialSuccess"]["rejectedLogRecords"].as_i64().unwrap_or(0) == 0,
        "{taken}"
    );
    let rows = rows_of(&server, "claude-code", |rows| rows.len() as i64 >= rejected).await;
    assert!(rows.iter().all(|row| text(row, "host_id") == Some(AGENT_HOST)));
    assert!(
        rows.iter()
            .any(|row| text(row, "event_name") == Some("policy.decision")
                && text(row, "policy_decision") == Some("deny")),
        "the refused call is a policy deny"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_client_and_server_spans_arrive_and_map() {
    let server = TestServer::start().await;
    let otlp = format!("http://{}", server.server.http_addr);
    // Both sides export over OTLP/gRPC (TraceService/Export), gzip-compressed.
    let grpc = server.grpc_url();
    let over_grpc = [
        ("CORDON_OTLP_GRPC", grpc.as_str()),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
    ];
    run_python_producer(
        "mcp_tools.py",
        &[],
        &otlp,
        TEST_PRODUCER_TOKEN,
        "wks-mcp-01",
        &over_grpc,
    );
    let ready = |rows: &[Row]| {
        rows.iter()
            .filter(|row| attribute(row, "agent.event") == Some("mcp.tools/call"))
            .count()
            >= 1
    };
    let server_rows = rows_of(&server, "mcp-files-server", ready).await;
    let client_rows = rows_of(&server, "mcp-demo-client", ready).await;
    let call = |rows: &[Row]| -> Row {
        rows.iter()
            .find(|row| attribute(row, "agent.event") == Some("mcp.tools/call"))
            .unwrap()
            .clone()
    };
    let (served, sent) = (call(&server_rows), call(&client_rows));
    for (row, kind) in [(&served, "server"), (&sent, "client")] {
        assert_eq!(text(row, "event_name"), Some("agent.tool_call"), "{row:#?}");
        assert_eq!(text(row, "gen_ai_tool_name"), Some("read_file"));
        assert_eq!(text(row, "agent_tool_category"), Some("file_read"));
        assert_eq!(text(row, "mcp_server_name"), Some("mcp"));
        assert_eq!(text(row, "host_id"), Some("wks-mcp-01"));
        assert_eq!(attribute(row, "span.kind"), Some(kind));
        assert_eq!(attribute(row, "mcp.method.name"), Some("tools/call"));
        assert_eq!(text(row, "transport"), Some("otlp_grpc"));
    }
    // The trace context crossed: both sides are one session and one call.
    assert_eq!(text(&served, "trace_id"), text(&sent, "trace_id"));
    assert_eq!(text(&served, "session_id"), text(&sent, "session_id"));
    assert_eq!(text(&served, "gen_ai_tool_call_id"), text(&sent, "gen_ai_tool_call_id"));
    assert!(
        server_rows
            .iter()
            .any(|row| text(row, "event_name") == Some("agent.session")),
        "the other methods are the session's activity"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genai_framework_execute_tool_span_arrives_and_maps() {
    let server = TestServer::start().await;
    let otlp = format!("http://{}", server.server.http_addr);
    // Over OTLP/HTTP protobuf, gzip-compressed.
    run_python_producer(
        "genai_agent.py",
        &["fetch the upload page"],
        &otlp,
        TEST_PRODUCER_TOKEN,
        "wks-genai-01",
        &[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")],
    );
    let rows = rows_of(&server, "research-agent", |rows| {
        rows.iter()
            .any(|row| attribute(row, "agent.event") == Some("gen_ai.execute_tool"))
            && rows
                .iter()
                .any(|row| attribute(row, "agent.event") == Some("gen_ai.invoke_agent"))
    })
    .await;
    let tool = rows
        .iter()
        .find(|row| attribute(row, "agent.event") == Some("gen_ai.execute_tool"))
        .unwrap();
    // A web tool that ran is a network flow to where it went.
    assert_eq!(text(tool, "event_name"), Some("network.flow"), "{tool:#?}");
    assert_eq!(text(tool, "gen_ai_tool_name"), Some("fetch_url"));
    assert_eq!(text(tool, "agent_tool_category"), Some("web"));
    assert_eq!(text(tool, "destination_address"), Some("paste.example.net"));
    assert_eq!(text(tool, "url_full"), Some("https://paste.example.net/upload"));
    assert_eq!(text(tool, "host_id"), Some("wks-genai-01"));
    assert_eq!(text(tool, "transport"), Some("otlp_http"));
    assert!(text(tool, "gen_ai_agent_name").is_some());
    // The run is the session: every span of it carries the same key.
    let session = text(tool, "session_id").unwrap();
    assert_eq!(Some(session), text(tool, "trace_id"));
    let agent = rows
        .iter()
        .find(|row| attribute(row, "agent.event") == Some("gen_ai.invoke_agent"))
        .unwrap();
    assert_eq!(text(agent, "event_name"), Some("agent.session"));
    assert_eq!(text(agent, "session_id"), Some(session));
}
