//! Content the agents are told to log (Claude Code's prompts and answers, a GenAI
//! framework's messages and tool output) is kept only as keyed hashes: not in the
//! write-ahead log, Parquet, the hunt API or a debug log of a `cordon serve` process,
//! while the hash matches one computed independently.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::agents::{AGENT_HOST, AGENT_TOKEN, Row, StandIn, attribute, run_claude, run_python_producer};
use crate::common::*;

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
