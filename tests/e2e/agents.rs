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
const AGENT_HOST: &str = "wks-agent-01";
const AGENT_TOKEN: &str = "agent-wks-agent-01-0123456789abcdef";

type Row = Map<String, Value>;

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

fn attribute<'a>(row: &'a Row, key: &str) -> Option<&'a str> {
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

/// Content the agents are told to log, each a marker that must be found nowhere.
const PROMPT: &str = "check the endpoint with curl, marker PROMPT-7f3a9c";
const ANSWER: &str = "Checked: marker ANSWER-19c2e4";
const GENAI_PROMPT: &str = "fetch the upload page, marker GENAI-PROMPT-55e1d0";
const TOOL_OUTPUT: &str = "page text, marker TOOL-OUTPUT-a8d0b7";
const MARKERS: &[&str] = &[
    "PROMPT-7f3a9c",
    "ANSWER-19c2e4",
    "GENAI-PROMPT-55e1d0",
    "TOOL-OUTPUT-a8d0b7",
];

/// Every file under `dir`, read whole, as one byte string.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
        } else {
            bytes.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    bytes
}

fn assert_no_marker(what: &str, haystack: &[u8]) {
    for marker in MARKERS {
        assert!(
            !haystack.windows(marker.len()).any(|window| window == marker.as_bytes()),
            "{marker} found in {what}"
        );
    }
}

/// The keyed hash Cordon should store for `text`, computed independently (Python's
/// hmac) from the key in the data directory.
fn expected_hash(data_dir: &Path, text: &str) -> String {
    let key = std::fs::read_to_string(data_dir.join("content-hash.key")).unwrap();
    let output = Command::new(python())
        .args([
            "-c",
            "import hmac,hashlib,sys; print(hmac.new(bytes.fromhex(sys.argv[1]), sys.argv[2].encode(), hashlib.sha256).hexdigest())",
            key.trim(),
            text,
        ])
        .output()
        .unwrap();
    let digest = String::from_utf8(output.stdout).unwrap();
    format!("hmac-sha256:{};bytes={}", digest.trim(), text.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_content_is_kept_only_as_keyed_hashes_not_in_storage_api_or_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (http, api) = (crate::crash::free_port(), crate::crash::free_port());
    let analyst = token_for(cordon::api::Role::Analyst);
    let config = dir.path().join("cordon.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[otlp]
grpc_listen = "127.0.0.1:{grpc}"
http_listen = "127.0.0.1:{http}"
[api]
listen = "127.0.0.1:{api}"
[[api.tokens]]
name = "analyst"
role = "analyst"
token = "{analyst}"
[storage]
flush_interval = "1h"
[producers]
allow_unauthenticated_ingest = false
[[producers.credentials]]
name = "agents"
token = "{AGENT_TOKEN}"
hosts = ["{AGENT_HOST}"]
"#,
            grpc = crate::crash::free_port()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("cordon.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        // Everything Cordon says, at its most talkative.
        .env("CORDON_LOG", "debug")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut served = crate::crash::Served {
        child,
        grpc: format!("127.0.0.1:{http}").parse().unwrap(),
    };
    wait_for_port(("127.0.0.1", api), "cordon serve");
    let otlp = format!("http://127.0.0.1:{http}");

    // Claude Code with prompts logged, and a framework capturing messages and tool I/O.
    let model = StandIn::start(dir.path(), "curl -s http://127.0.0.1:{port}/probe -o /dev/null", ANSWER);
    run_claude(
        dir.path(),
        &otlp,
        AGENT_TOKEN,
        &model,
        PROMPT,
        &[("OTEL_LOG_USER_PROMPTS", "1")],
    );
    run_python_producer(
        "genai_agent.py",
        &[GENAI_PROMPT],
        &otlp,
        AGENT_TOKEN,
        AGENT_HOST,
        &[("GENAI_TOOL_OUTPUT", TOOL_OUTPUT)],
    );

    // The API: a hunt over every stored event.
    let hunt = async || -> Vec<Row> {
        let response = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{api}/api/v1/hunt"))
            .bearer_auth(&analyst)
            .json(&serde_json::json!({"sql": "SELECT * FROM events", "limit": 10000}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row.as_object().unwrap().clone())
            .collect()
    };
    let prompt_hash = expected_hash(&data, PROMPT);
    let output_hash = expected_hash(&data, TOOL_OUTPUT);
    let rows = eventually(Duration::from_secs(60), "the agents' content, hashed", async || {
        let rows = hunt().await;
        let has = |key: &str, hash: &str| rows.iter().any(|row| attribute(row, key) == Some(hash));
        (has("prompt", &prompt_hash)
            && has("user_prompt", &prompt_hash)
            && has("gen_ai.tool.call.result", &output_hash))
        .then_some(rows)
    })
    .await;
    // The same prompt, hashed in Claude Code's log event and in its trace, matches the
    // hash computed independently: a hunt can compare without reading.
    assert_no_marker(
        "the hunt API's answer",
        serde_json::to_string(&rows).unwrap().as_bytes(),
    );
    assert!(
        rows.iter().any(|row| attribute(row, "assistant_response").is_none()
            && attribute(row, "agent.event") == Some("claude_code.assistant_response")
            && attribute(row, "response").is_some_and(|hash| hash.starts_with("hmac-sha256:"))),
        "the answer is hashed"
    );
    assert_no_marker("the write-ahead log", &all_bytes(&data));

    // Stopped gracefully, everything is in Parquet: read back, still no content.
    let pid = served.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(served.child.wait().unwrap().success());
    let stored = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["query", "--format", "json", "--data-dir"])
        .arg(&data)
        .arg("SELECT * FROM events")
        .env("CORDON_LOG", "warn")
        .output()
        .unwrap();
    assert!(stored.status.success(), "{}", String::from_utf8_lossy(&stored.stderr));
    let parquet_rows = String::from_utf8(stored.stdout).unwrap();
    assert!(parquet_rows.contains(&prompt_hash), "the hashes are in Parquet");
    assert_no_marker("Parquet", parquet_rows.as_bytes());
    assert_no_marker("the data directory", &all_bytes(&data));
    let logged = std::fs::read(dir.path().join("cordon.log")).unwrap();
    assert!(logged.len() > 1000, "the debug log was written");
    assert_no_marker("Cordon's debug log", &logged);
}
