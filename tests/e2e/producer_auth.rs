//! The ingest trust boundary with real producers: the OpenTelemetry Python SDK's
//! exporters over TLS, configured only by the SDK's own environment variables, against
//! a server with producer credentials (a bearer token for a fleet, a client certificate
//! for one host); OPA-style uploads with the same credentials; certificate rotation.

use std::path::Path;
use std::time::Duration;

use cordon::config::Config;
use cordon_ingest::auth::CredentialConfig;
use cordon_ingest::listener::TlsConfig;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::common::*;
use crate::pki::{Ca, Leaf};

const FLEET_TOKEN: &str = "collector-token-0123456789abcdef";
const CLIENT_SUBJECT: &str = "wks-0012.fleet.example";

struct Pki {
    dir: tempfile::TempDir,
    server_ca: Ca,
    server: Leaf,
    client_ca: Ca,
    client: Leaf,
    intruder: Leaf,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = Ca::new(dir.path(), "server");
    let server = server_ca.server(dir.path(), "server");
    let client_ca = Ca::new(dir.path(), "clients");
    let client = client_ca.client(dir.path(), "wks-0012", CLIENT_SUBJECT);
    // Same subject, another CA: must not get in.
    let intruder = Ca::new(dir.path(), "intruder").client(dir.path(), "intruder", CLIENT_SUBJECT);
    Pki {
        dir,
        server_ca,
        server,
        client_ca,
        client,
        intruder,
    }
}

fn secured(config: &mut Config, pki: &Pki) {
    config.otlp.tls = Some(TlsConfig {
        cert: pki.server.cert.clone(),
        key: pki.server.key.clone(),
        client_ca: Some(pki.client_ca.cert.clone()),
        reload_interval: Duration::from_millis(200),
    });
    config.producers.allow_unauthenticated_ingest = false;
    config.producers.credentials = vec![
        CredentialConfig {
            name: "collector-eu".into(),
            token: Some(FLEET_TOKEN.into()),
            hosts: vec!["eu-*".into()],
            ..Default::default()
        },
        CredentialConfig {
            name: "wks-0012".into(),
            client_subject: Some(CLIENT_SUBJECT.into()),
            hosts: vec!["wks-0012".into()],
            ..Default::default()
        },
    ];
}

/// How a run of the SDK presents itself.
#[derive(Default)]
struct Credentials<'a> {
    token: Option<&'a str>,
    client: Option<&'a Leaf>,
}

/// Sends `events` with the SDK exporter over TLS; whether every export succeeded.
async fn sdk_send(
    exporter: &str,
    endpoint: &str,
    ca: &Path,
    events: &[cordon_schemas::FlatEvent],
    credentials: Credentials<'_>,
) -> bool {
    let file = write_jsonl(events);
    let mut command = Command::new(python());
    command
        .arg(python_script("otel_send.py"))
        .args(["--exporter", exporter, "--endpoint", endpoint])
        .arg("--events")
        .arg(file.path())
        .env("OTEL_EXPORTER_OTLP_CERTIFICATE", ca)
        // requests lets these override the CA the SDK sets (some machines set them
        // system-wide), and the HTTP exporter would then not trust Cordon's CA.
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        // A refused export is retried with backoff by default; fail fast instead.
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "5");
    if let Some(token) = credentials.token {
        command.env("OTEL_EXPORTER_OTLP_HEADERS", format!("authorization=Bearer%20{token}"));
    }
    if let Some(client) = credentials.client {
        command
            .env("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &client.cert)
            .env("OTEL_EXPORTER_OTLP_CLIENT_KEY", &client.key);
    }
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the SDK gave up within two minutes")
        .unwrap();
    if !output.status.success() {
        // Shown when a test fails: what the SDK said.
        eprintln!(
            "{exporter} to {endpoint}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output.status.success()
}

fn events_for(host: &str, seed: u64, count: usize) -> Vec<cordon_schemas::FlatEvent> {
    let mut events = simulated(seed, count, &[]);
    events.truncate(count);
    for event in &mut events {
        event.attributes.insert(
            "host.id".into(),
            cordon_schemas::AttrValue::Str(host.to_string().into()),
        );
    }
    events
}

fn https(addr: std::net::SocketAddr, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", addr.port())
}

async fn provenance_rows(test: &TestServer, host: &str) -> Vec<(String, Option<String>, Option<bool>)> {
    stored_rows(&test.storage())
        .await
        .into_iter()
        .filter(|row| row["host_id"] == host)
        .map(|row| {
            (
                row["transport"].as_str().unwrap_or_default().to_string(),
                row["producer"].as_str().map(str::to_string),
                row["tls"].as_bool(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exporters_over_tls_are_taken_only_with_a_right_credential() {
    let pki = pki();
    let test = TestServer::start_with(|config| secured(config, &pki)).await;
    let http = https(test.server.http_addr, "/v1/logs");
    let grpc = https(test.server.grpc_addr, "");
    let ca = &pki.server_ca.cert;

    // A bearer token (OTEL_EXPORTER_OTLP_HEADERS) over TLS, for hosts it covers.
    let fleet = events_for("eu-laptop-1", 1, 40);
    let token = Credentials {
        token: Some(FLEET_TOKEN),
        ..Default::default()
    };
    assert!(
        sdk_send("http-protobuf", &http, ca, &fleet, token).await,
        "a right token is taken"
    );
    let rows = provenance_rows(&test, "eu-laptop-1").await;
    assert_eq!(rows.len(), 40);
    assert!(
        rows.iter()
            .all(|row| row == &("otlp_http".into(), Some("collector-eu".into()), Some(true))),
        "{rows:?}"
    );

    // No token, and a wrong one: refused, nothing stored.
    let stranger = events_for("eu-laptop-2", 2, 10);
    assert!(!sdk_send("http-protobuf", &http, ca, &stranger, Credentials::default()).await);
    let wrong = Credentials {
        token: Some("not-the-token-0123456789abcdef"),
        ..Default::default()
    };
    assert!(!sdk_send("grpc", &grpc, ca, &stranger, wrong).await);
    assert!(provenance_rows(&test, "eu-laptop-2").await.is_empty());
    let refused = |reason| test.server.metrics.requests_rejected_count("otlp_http", reason);
    assert!(refused("unauthenticated") >= 1, "the missing token is counted");
    assert!(
        test.server
            .metrics
            .requests_rejected_count("otlp_grpc", "bad_credential")
            >= 1,
        "the wrong token is counted"
    );

    // A client certificate from the clients' CA (gRPC, mutual TLS) names wks-0012.
    let own = events_for("wks-0012", 3, 30);
    let certificate = Credentials {
        client: Some(&pki.client),
        ..Default::default()
    };
    assert!(sdk_send("grpc", &grpc, ca, &own, certificate).await);
    let rows = provenance_rows(&test, "wks-0012").await;
    assert_eq!(rows.len(), 30);
    assert!(
        rows.iter()
            .all(|row| row.1.as_deref() == Some("wks-0012") && row.2 == Some(true))
    );

    // The same subject from another CA is refused at the handshake.
    let forged = events_for("wks-0012", 4, 5);
    let intruder = Credentials {
        client: Some(&pki.intruder),
        ..Default::default()
    };
    assert!(!sdk_send("grpc", &grpc, ca, &forged, intruder).await);
    assert_eq!(provenance_rows(&test, "wks-0012").await.len(), 30);
    let handshakes = test
        .server
        .metrics
        .listeners
        .closed
        .get_or_create(&vec![("listener", "otlp_grpc"), ("reason", "tls_handshake")])
        .get();
    assert!(handshakes >= 1, "the refused handshake is counted");
    test.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_naming_another_host_is_rejected_and_raises_telemetry_spoofing() {
    let pki = pki();
    let test = TestServer::start_with(|config| secured(config, &pki)).await;
    let grpc = https(test.server.grpc_addr, "");
    // wks-0012's certificate sends its own events and three that claim ceo-laptop.
    let mut events = events_for("wks-0012", 5, 20);
    events.extend(events_for("ceo-laptop", 6, 3));
    let certificate = Credentials {
        client: Some(&pki.client),
        ..Default::default()
    };
    // A partial success is still a success to the SDK: its own events are kept.
    assert!(sdk_send("grpc", &grpc, &pki.server_ca.cert, &events, certificate).await);
    assert_eq!(provenance_rows(&test, "wks-0012").await.len(), 20);
    assert_eq!(test.server.metrics.rejected_count("host_not_permitted"), 3);
    let stored = count(
        &test.storage(),
        "SELECT count(*) FROM events WHERE host_id = 'ceo-laptop' AND event_name <> 'cordon.spoofing' AND transport <> 'detections'",
    )
    .await;
    assert_eq!(stored, 0, "no event of ceo-laptop is taken from wks-0012's credential");

    test.detections_idle().await;
    let alert = eventually(Duration::from_secs(30), "the telemetry-spoofing alert", async || {
        test.alerts()
            .await
            .into_iter()
            .find(|alert| alert["rule_id"] == "telemetry-spoofing")
    })
    .await;
    assert_eq!(alert["host_id"], "ceo-laptop");
    let text = alert.to_string();
    assert!(text.contains("wks-0012"), "the alert names the producer: {text}");
    test.server.stop().await.unwrap();
}

fn https_client(pki: &Pki, identity: Option<&Leaf>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.server_ca.cert).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder().add_root_certificate(ca);
    if let Some(leaf) = identity {
        let mut pem = std::fs::read(&leaf.cert).unwrap();
        pem.extend(std::fs::read(&leaf.key).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

fn opa_upload(host: &str, decisions: usize) -> Value {
    Value::Array(
        (0..decisions)
            .map(|index| {
                json!({
                    "labels": {"host.id": host, "id": "opa-1", "version": "0.70.0"},
                    "decision_id": format!("{host}-decision-{index}"),
                    "path": "agent/broker/allow",
                    "input": {"user": "mallory", "action": "file.read", "path": "/srv/finance/q.xlsx"},
                    "result": {"allow": false, "reason": "path not allowed for agents"},
                    "timestamp": format!("2026-01-15T10:00:{:02}Z", index % 60),
                })
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opa_uploads_need_a_credential_that_covers_their_host() {
    let pki = pki();
    let test = TestServer::start_with(|config| secured(config, &pki)).await;
    let url = https(test.server.http_addr, "/v1/opa/logs");
    let post = async |client: &reqwest::Client, token: Option<&str>, body: &Value| {
        let mut request = client.post(&url).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap_or(Value::Null))
    };
    let plain = https_client(&pki, None);
    let (status, body) = post(&plain, None, &opa_upload("eu-opa-1", 3)).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = post(&plain, Some("0123456789abcdef-not-a-token"), &opa_upload("eu-opa-1", 3)).await;
    assert_eq!(status, 401);
    let (status, body) = post(&plain, Some(FLEET_TOKEN), &opa_upload("eu-opa-1", 3)).await;
    assert_eq!((status, body["stored"].clone()), (200, json!(3)), "{body}");
    // OPA with the host's client certificate, uploading for a host it does not cover.
    let host_client = https_client(&pki, Some(&pki.client));
    let (status, body) = post(&host_client, None, &opa_upload("wks-0012", 2)).await;
    assert_eq!((status, body["stored"].clone()), (200, json!(2)), "{body}");
    let (status, body) = post(&host_client, None, &opa_upload("cfo-laptop", 2)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rejected"], 2, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("host_not_permitted")
            || body["message"].as_str().unwrap().contains("cfo-laptop"),
        "{body}"
    );
    let rows = provenance_rows(&test, "eu-opa-1").await;
    assert!(
        rows.iter()
            .all(|row| row == &("opa_logs".into(), Some("collector-eu".into()), Some(true))),
        "{rows:?}"
    );
    let findings = count(
        &test.storage(),
        "SELECT count(*) FROM cordon_spoofing WHERE host_id = 'cfo-laptop' AND producer = 'wks-0012' AND transport = 'opa_logs'",
    )
    .await;
    assert_eq!(findings, 1);
    test.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_without_a_restart_and_after_one_and_no_event_is_lost() {
    let pki = pki();
    let test = TestServer::start_with(|config| secured(config, &pki)).await;
    let http = https(test.server.http_addr, "/v1/logs");
    let before = events_for("eu-rotate", 7, 50);
    let token = || Credentials {
        token: Some(FLEET_TOKEN),
        ..Default::default()
    };
    assert!(sdk_send("http-protobuf", &http, &pki.server_ca.cert, &before, token()).await);

    // A new CA and certificate replace the files in place, as cert-manager or certbot would.
    let new_ca = Ca::new(pki.dir.path(), "rotated");
    let rotated = new_ca.server(pki.dir.path(), "rotated");
    std::fs::copy(&rotated.key, &pki.server.key).unwrap();
    std::fs::copy(&rotated.cert, &pki.server.cert).unwrap();
    let reloads = || {
        test.server
            .metrics
            .listeners
            .tls_reloads
            .get_or_create(&vec![("listener", "otlp_http"), ("outcome", "loaded")])
            .get()
    };
    eventually(Duration::from_secs(10), "the reload", async || {
        (reloads() >= 1).then_some(())
    })
    .await;

    let after = events_for("eu-rotate", 8, 50);
    assert!(
        sdk_send("http-protobuf", &http, &new_ca.cert, &after, token()).await,
        "the new certificate is served"
    );
    let stale = events_for("eu-rotate", 9, 5);
    assert!(
        !sdk_send("http-protobuf", &http, &pki.server_ca.cert, &stale, token()).await,
        "the old one no longer is"
    );
    assert_eq!(
        provenance_rows(&test, "eu-rotate").await.len(),
        100,
        "every event sent across the rotation is stored"
    );

    // A restart on the same data with the rotated files: the new certificate from the
    // start, and nothing acknowledged before it lost.
    let dir = test.stop().await;
    let test = TestServer::start_in(dir, |config| secured(config, &pki)).await;
    let http = https(test.server.http_addr, "/v1/logs");
    let again = events_for("eu-rotate", 10, 20);
    assert!(sdk_send("http-protobuf", &http, &new_ca.cert, &again, token()).await);
    assert_eq!(provenance_rows(&test, "eu-rotate").await.len(), 120);
    test.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_cordon_listens_on_the_network_only_when_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.producers = Default::default();
    config.otlp.grpc_listen = "0.0.0.0:0".parse().unwrap();
    let message = match cordon::server::Server::start(config.clone()).await {
        Ok(_) => panic!("started on the network with no producer credential"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        message.contains("otlp.grpc_listen") && message.contains("allow_unauthenticated_ingest"),
        "{message}"
    );

    config.producers.allow_unauthenticated_ingest = true;
    let server = cordon::server::Server::start(config).await.unwrap();
    assert_eq!(server.metrics.unauthenticated_allowed.get(), 1);
    server.stop().await.unwrap();

    // With a credential, requests without one get 401 even on loopback.
    let pki = pki();
    let test = TestServer::start_with(|config| secured(config, &pki)).await;
    assert_eq!(test.server.metrics.unauthenticated_allowed.get(), 0);
    test.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_console_are_served_over_tls() {
    let pki = pki();
    let test = TestServer::start_with(|config| {
        config.api.tls = Some(TlsConfig {
            cert: pki.server.cert.clone(),
            key: pki.server.key.clone(),
            client_ca: None,
            reload_interval: Duration::from_secs(5),
        })
    })
    .await;
    let url = https(test.server.api_addr, "/api/v1/alerts");
    let response = https_client(&pki, None)
        .get(&url)
        .bearer_auth(token_for(cordon::api::Role::Analyst))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let plain = reqwest::get(format!("http://{}/api/v1/alerts", test.server.api_addr)).await;
    assert!(plain.is_err(), "plain HTTP is not served on a TLS listener");
    test.server.stop().await.unwrap();
}
