//! Responses end to end: the simulator's attacks lead to signed webhooks at a real
//! receiver, exactly once even across `kill -9`; signatures check out with Python's
//! `hmac`; secrets stay out of logs and the API; responders act through the CLI.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cordon::api::Role;
use cordon::simulate::senders::SendReport;
use cordon::simulate::{Scenario, SimConfig, Simulator};
use cordon_schemas::FlatEvent;
use serde_json::Value;

use crate::common::*;
use crate::crash::free_port;

pub const SINK_SECRET: &str = "e2e-sink-secret-5f0c2a9d81b34e77";
const ADMIN: &str = "e2e-admin-token-0123456789abcdef";

/// A child process killed when the test ends, however it ends.
pub struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `cordon sink` on a free port, verifying with `secret`.
pub fn start_sink(secret: &str) -> (Proc, SocketAddr) {
    start_sink_at(format!("127.0.0.1:{}", free_port()).parse().unwrap(), secret)
}

fn start_sink_at(addr: SocketAddr, secret: &str) -> (Proc, SocketAddr) {
    let child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["sink", "--listen", &addr.to_string()])
        .env("CORDON_SINK_SECRET", secret)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    wait_for_port(addr, "cordon sink");
    (proc, addr)
}

/// A settings file sending every action to `sink`, signed with $CORDON_E2E_WEBHOOK_SECRET.
fn write_config(dir: &Path, sink: SocketAddr, api: SocketAddr) -> std::path::PathBuf {
    let mut text = format!(
        "[api]\nlisten = \"{api}\"\n[[api.tokens]]\nname = \"e2e admin\"\nrole = \"admin\"\ntoken = \"{ADMIN}\"\n\
         [responder.retry]\ninitial = \"100ms\"\nmax_delay = \"500ms\"\nmax_attempts = 40\n\
         [[producers.credentials]]\nname = \"{TEST_PRODUCER}\"\ntoken = \"{TEST_PRODUCER_TOKEN}\"\nhosts = [\"*\"]\n"
    );
    for action in ["revoke_token", "isolate_host", "release_host", "notify"] {
        text.push_str(&format!(
            "[responder.targets.{action}]\nurl = \"http://{sink}/{action}\"\nallow_http = true\nsecret_env = \"CORDON_E2E_WEBHOOK_SECRET\"\ntimeout = \"2s\"\n"
        ));
    }
    let path = dir.join("cordon.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Serve {
    proc: Proc,
    grpc: SocketAddr,
    api: SocketAddr,
}

fn serve(dir: &Path, config: &Path, api: SocketAddr, secret: &str, log: &str, stderr: Stdio) -> Serve {
    let grpc: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["serve", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("CORDON_OTLP__GRPC_LISTEN", grpc.to_string())
        .env("CORDON_OTLP__HTTP_LISTEN", "127.0.0.1:0")
        .env("CORDON_E2E_WEBHOOK_SECRET", secret)
        .env("CORDON_LOG", log)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let proc = Proc(child);
    wait_for_port(grpc, "cordon serve");
    wait_for_port(api, "the API");
    Serve { proc, grpc, api }
}

/// Events of `scenarios` with times just before now, so the rules see them as live.
pub fn attack_events(scenarios: &[Scenario], seed: u64) -> (Vec<FlatEvent>, Simulator) {
    let start = chrono::Utc::now().timestamp_nanos_opt().unwrap() - 90_000_000_000;
    let mut simulator = Simulator::new(SimConfig {
        seed,
        hosts: 8,
        rate: 20.0,
        duration: Duration::from_secs(80),
        start_unix_nano: start,
        scenarios: scenarios.to_vec(),
        attack_at: Duration::from_secs(5),
        ..SimConfig::default()
    });
    let events = simulator.events_until(i64::MAX);
    (events, simulator)
}

/// Sends as the suites' authenticated producer (automatic containment needs it).
pub async fn send(grpc: SocketAddr, events: &[FlatEvent]) {
    let mut sender = producer_sender(&format!("http://{grpc}")).await;
    let mut report = SendReport::default();
    for chunk in events.chunks(500) {
        sender.send(chunk, &mut report).await.unwrap();
    }
    assert_eq!(report.rejected, 0, "{:?}", report.last_message);
}

async fn get_json(url: String, token: Option<&str>) -> Value {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

pub async fn sink_deliveries(sink: SocketAddr) -> Vec<Value> {
    get_json(format!("http://{sink}/received"), None).await["deliveries"]
        .as_array()
        .unwrap()
        .clone()
}

fn calls(deliveries: &[Value], action: &str, host: &str) -> usize {
    deliveries
        .iter()
        .filter(|d| d["action"] == action && d["host_id"] == host)
        .count()
}

fn kill_9(served: Serve) {
    let mut proc = served.proc;
    proc.0.kill().unwrap(); // SIGKILL: no shutdown
    proc.0.wait().unwrap();
}

async fn actions_on(served: &Serve, host: &str) -> Vec<(String, String)> {
    let actions = get_json(
        format!("http://{}/api/v1/actions?host_id={host}", served.api),
        Some(ADMIN),
    )
    .await;
    actions["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exfil_chain_leads_to_one_revoke_and_one_isolation_even_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let sink: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(dir.path(), sink, api);
    let (mut events, simulator) = attack_events(&[Scenario::ExfilAttemptChain], 11);
    let injection = simulator.injections()[0].clone();
    let host = injection.host_id.clone();
    // The agent's token, as the IdP reported it: revoke_token should name it.
    let mut token = FlatEvent::new(injection.start_unix_nano - 1_000_000_000, "credential.token", &host);
    token
        .set("event.id", "e2e-token-refresh")
        .set("user.name", injection.user_name.as_str())
        .set("gen_ai.agent.id", injection.agent_id.as_str())
        .set("credential.action", "refresh")
        .set("credential.token_id", injection.token_id.as_str());
    events.insert(0, token);

    // The receiver is down: the responses are decided and stored, and wait.
    let served = serve(dir.path(), &config, api, SINK_SECRET, "warn", Stdio::null());
    send(served.grpc, &events).await;
    eventually(Duration::from_secs(60), "two pending responses", async || {
        let actions = actions_on(&served, &host).await;
        (actions.len() == 2).then_some(())
    })
    .await;
    kill_9(served);

    // Receiver up, Cordon back: the stored responses go out, once.
    let (_sink, sink_addr) = start_sink_at(sink, SINK_SECRET);
    let served = serve(dir.path(), &config, api, SINK_SECRET, "warn", Stdio::null());
    eventually(Duration::from_secs(60), "both responses at the sink", async || {
        let deliveries = sink_deliveries(sink_addr).await;
        (calls(&deliveries, "revoke_token", &host) >= 1 && calls(&deliveries, "isolate_host", &host) >= 1).then_some(())
    })
    .await;
    eventually(Duration::from_secs(20), "success recorded", async || {
        let actions = actions_on(&served, &host).await;
        actions.iter().all(|(_, state)| state == "succeeded").then_some(())
    })
    .await;

    // kill -9 again, and the producer sends everything again: nothing new goes out.
    kill_9(served);
    let served = serve(dir.path(), &config, api, SINK_SECRET, "warn", Stdio::null());
    send(served.grpc, &events).await;
    // Give the replayed windows and the responder time to do anything they would.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let states = actions_on(&served, &host).await;
    assert_eq!(states.len(), 2, "{states:?}");
    assert!(states.iter().all(|(_, state)| state == "succeeded"), "{states:?}");

    let deliveries = sink_deliveries(sink_addr).await;
    assert_eq!(calls(&deliveries, "revoke_token", &host), 1, "{deliveries:#?}");
    assert_eq!(calls(&deliveries, "isolate_host", &host), 1, "{deliveries:#?}");
    assert!(
        deliveries
            .iter()
            .all(|d| d["signature"] == "valid" && d["duplicate"] == false)
    );
    let body = &deliveries.iter().find(|d| d["action"] == "isolate_host").unwrap()["body"];
    assert_eq!(body["rule_id"], "exfil-attempt-chain");
    assert_eq!(body["requested_by"], "auto");
    assert_eq!(body["target"]["user_name"], injection.user_name.as_str());
    let revoke = &deliveries.iter().find(|d| d["action"] == "revoke_token").unwrap()["body"];
    assert_eq!(
        revoke["target"]["token_id"],
        injection.token_id.as_str(),
        "the token is looked up in the stored events"
    );
}

/// Each request's raw headers and body.
type Requests = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// A receiver that keeps each request's raw headers and body.
async fn raw_receiver() -> (SocketAddr, Requests) {
    let seen: Requests = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let keep = seen.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push((headers, body.to_vec()));
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

pub fn targets_to(config: &mut cordon::Config, addr: SocketAddr, secret_file: &Path) {
    for action in cordon_responder::actions::names() {
        config.responder.targets.insert(
            action.to_string(),
            cordon_responder::config::TargetConfig {
                url: format!("http://{addr}/{action}"),
                secret_env: None,
                secret_file: Some(secret_file.to_path_buf()),
                timeout: Duration::from_secs(2),
                headers: [("X-Tenant".to_string(), "acme".to_string())].into(),
                dry_run: false,
                max_in_flight: None,
                // A receiver on this machine.
                allow_http: true,
            },
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_hmac_verifies_the_signature_of_a_real_delivery() {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("secret");
    std::fs::write(&secret_file, SINK_SECRET).unwrap();
    let (addr, seen) = raw_receiver().await;
    let server = TestServer::start_with(|config| targets_to(config, addr, &secret_file)).await;
    let (events, _) = attack_events(&[Scenario::ExfilAttemptChain], 12);
    send(server.server.grpc_addr, &events).await;
    eventually(Duration::from_secs(60), "two deliveries", async || {
        (seen.lock().unwrap().len() >= 2).then_some(())
    })
    .await;

    let (headers, body) = seen.lock().unwrap()[0].clone();
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_string();
    assert_eq!(header("x-tenant"), "acme", "extra headers are sent");
    let body_file = secrets.path().join("body");
    std::fs::write(&body_file, &body).unwrap();
    // The receiver example the responder's README documents, run as a receiver would.
    let example = project_dir().join("responder/examples/verify_webhook.py");
    let check = |signature: &str, timestamp: &str, now: Option<i64>| {
        let mut command = Command::new(python());
        command
            .arg(&example)
            .args([SINK_SECRET, timestamp, signature])
            .arg(&body_file);
        if let Some(now) = now {
            command.arg(now.to_string());
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    };
    let timestamp = header("x-cordon-timestamp");
    let signature = header("x-cordon-signature");
    assert_eq!(check(&signature, &timestamp, None), "valid");
    let sent_at = timestamp.parse::<i64>().unwrap();
    let other_time = (sent_at + 1).to_string();
    assert!(
        check(&signature, &other_time, Some(sent_at)).starts_with("invalid: the signature"),
        "the check can fail"
    );
    assert!(
        check(&signature, &timestamp, Some(sent_at + 301)).starts_with("invalid: timestamp"),
        "a replay after the window is refused"
    );
    assert_eq!(check(&signature, &timestamp, Some(sent_at + 299)), "valid");
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(header("idempotency-key"), json["action_id"].as_str().unwrap());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_never_reaches_the_logs_the_errors_or_the_api() {
    let dir = tempfile::tempdir().unwrap();
    // The sink knows another secret: every delivery is refused (401), so errors are
    // logged and recorded, which is where a careless secret would show.
    let (_sink, sink) = start_sink("a-different-secret-0123456789");
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(dir.path(), sink, api);
    let secret = "the-webhook-secret-that-must-not-leak-4242";
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let served = serve(dir.path(), &config, api, secret, "debug", Stdio::from(log));
    let (events, _) = attack_events(&[Scenario::ExfilAttemptChain, Scenario::RepeatedPolicyDenies], 13);
    send(served.grpc, &events).await;
    let base = format!("http://{}", served.api);
    eventually(Duration::from_secs(60), "refused deliveries", async || {
        let failed = get_json(format!("{base}/api/v1/actions?state=failed"), Some(ADMIN)).await;
        (failed["actions"].as_array().unwrap().len() >= 3).then_some(())
    })
    .await;
    let actions = get_json(format!("{base}/api/v1/actions"), Some(ADMIN))
        .await
        .to_string();
    let audit = get_json(format!("{base}/api/v1/audit?limit=5000"), Some(ADMIN))
        .await
        .to_string();
    assert!(actions.contains("HTTP 401"), "the refusal is visible: {actions}");
    drop(served);
    let mut logged = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut logged)
        .unwrap();
    assert!(logged.contains("response failed"), "the failures were logged");
    for (place, text) in [("the log", &logged), ("GET /actions", &actions), ("GET /audit", &audit)] {
        assert!(!text.contains(secret), "the secret is in {place}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responders_approve_and_respond_through_the_cli_and_roles_are_enforced() {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("secret");
    std::fs::write(&secret_file, SINK_SECRET).unwrap();
    let (addr, seen) = raw_receiver().await;
    let server = TestServer::start_with(|config| targets_to(config, addr, &secret_file)).await;
    // This rule's playbook isolates only after approval.
    let (events, simulator) = attack_events(&[Scenario::AgentSpawnedNetworkTool], 14);
    let host = simulator.injections()[0].host_id.clone();
    send(server.server.grpc_addr, &events).await;
    let api = server.api_url();
    let responder = token_for(Role::Responder);
    let analyst = token_for(Role::Analyst);
    let held = eventually(Duration::from_secs(60), "a held isolation", async || {
        let (status, body) = server
            .api_get("/api/v1/actions?state=awaiting_approval", Some(Role::Analyst))
            .await;
        assert_eq!(status, 200);
        body["actions"].as_array().unwrap().first().cloned()
    })
    .await;
    let id = held["id"].as_str().unwrap().to_string();
    assert_eq!(held["target"]["host_id"], host.as_str());
    assert!(seen.lock().unwrap().is_empty(), "nothing sent before approval");

    let (ok, text) = cli(&["actions", "list", "--state", "awaiting_approval"], &api, &analyst);
    assert!(ok && text.contains(&id) && text.contains("asks for approval"), "{text}");
    let (ok, text) = cli(&["actions", "approve", &id, "--note", "looks real"], &api, &analyst);
    assert!(
        !ok && text.contains("403") && text.contains("responder"),
        "analysts cannot approve: {text}"
    );
    let (ok, text) = cli(
        &["actions", "approve", &id, "--note", "confirmed with the user"],
        &api,
        &responder,
    );
    assert!(ok, "{text}");
    eventually(Duration::from_secs(20), "the isolation", async || {
        (seen.lock().unwrap().len() == 1).then_some(())
    })
    .await;

    let (ok, text) = cli(
        &[
            "respond",
            "release-host",
            "--host",
            &host,
            "--reason",
            "cleaned up, back to work",
        ],
        &api,
        &responder,
    );
    assert!(ok && text.contains("release_host"), "{text}");
    eventually(Duration::from_secs(20), "the release", async || {
        (seen.lock().unwrap().len() == 2).then_some(())
    })
    .await;
    let release: Value = serde_json::from_slice(&seen.lock().unwrap()[1].1).unwrap();
    assert_eq!(release["action"], "release_host");
    assert_eq!(release["requested_by"], "test responder");
    assert_eq!(release["reason"], "cleaned up, back to work");

    let (ok, text) = cli(&["respond", "isolate-host", "--reason", "no host"], &api, &responder);
    assert!(!ok && text.contains("needs a host_id"), "{text}");
    let (ok, text) = cli(&["actions", "audit", "--action-id", &id], &api, &analyst);
    assert!(ok, "{text}");
    for expected in [
        "requested",
        "held",
        "approved",
        "test responder",
        "confirmed with the user",
        "attempt",
        "succeeded",
    ] {
        assert!(text.contains(expected), "audit lacks {expected}: {text}");
    }
    let (status, _) = server.api_get("/api/v1/audit", None).await;
    assert_eq!(status, 401);
    let (ok, text) = cli(&["actions", "retry", &id], &api, &responder);
    assert!(
        !ok && text.contains("409") && text.contains("succeeded"),
        "a delivered action is not resent: {text}"
    );
    server.stop().await;
}
