//! Shared pieces of the end-to-end tests: a server on loopback ports, simulated events,
//! the Python test environment, and reading back what was stored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cordon::simulate::{Scenario, SimConfig, Simulator};
use cordon::{Config, Server};
use cordon_schemas::FlatEvent;
use cordon_schemas::fields::ATTR_FIELDS;
use serde_json::Value;

/// Where the scripts keep their caches (`scripts/lib.sh`: `CORDON_CACHE`).
/// Waits (blocking) until something listens on `addr`.
pub fn wait_for_port(addr: impl std::net::ToSocketAddrs, what: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `check` every 200 ms until it gives a value; fails after `limit`.
pub async fn eventually<T>(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    eventually_seen(limit, what, async || {
        check().await.ok_or_else(|| "nothing yet".to_string())
    })
    .await
}

/// As `eventually`, with `check` saying what it saw instead (`Err`), so a timeout
/// reports the last state.
pub async fn eventually_seen<T>(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        let seen = match check().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        assert!(
            started.elapsed() < limit,
            "timed out waiting for {what}; last saw {seen}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The project folder, read at run time: `env!` would bake in the folder the test was
/// built in, and a target directory shared between checkouts (CI's cache) would then
/// point at another checkout, or at none.
pub fn project_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"))
}

/// How many rules ship in `detections/rules/` (one folder with a `rule.toml` each):
/// counted, so tests need no hand-copied number.
pub fn builtin_rule_count() -> usize {
    std::fs::read_dir(project_dir().join("detections/rules"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.path().join("rule.toml").is_file())
        })
        .count()
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("CORDON_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/cordon"))
}

/// The Python of the test virtualenv that `scripts/setup-test-env.sh` builds.
pub fn python() -> PathBuf {
    let venv = std::env::var_os("CORDON_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no test virtualenv at {}: run scripts/setup-test-env.sh (or scripts/test.sh) first",
        venv.display()
    );
    python
}

pub fn python_script(name: &str) -> PathBuf {
    project_dir().join("tests/python").join(name)
}

/// Settings for a test server: loopback ports chosen by the OS, a scratch data dir.
/// For a `cordon serve` process that takes the suites' fixed-date events: what
/// `test_config` sets, as an environment variable.
pub const FIXED_DATE_EVENT_AGE: (&str, &str) = ("CORDON_LIMITS__MAX_EVENT_AGE", "3650d");

pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config::default();
    config.otlp.grpc_listen = "127.0.0.1:0".parse().unwrap();
    config.otlp.http_listen = "127.0.0.1:0".parse().unwrap();
    config.storage.data_dir = data_dir.to_path_buf();
    config.api.listen = "127.0.0.1:0".parse().unwrap();
    // The suites send events of a fixed day (2026-01-15) so their assertions can name
    // times; received today, those are older than the default maximum event age: the
    // door would refuse them and the rules would not evaluate them. Ten years covers
    // them; `bad_input::event_times_outside_the_bounds_*` tests the defaults.
    config.limits.max_event_age = Duration::from_secs(3650 * 24 * 3600);
    config.detections.max_event_age = config.limits.max_event_age;
    // The suites count the events they stored; Cordon's own response outcomes would
    // add to them. `response_events` turns the feed on and tests it.
    config.responder.outcome_events = false;
    // A producer credential for the suites' senders (`producer_sender`): automatic
    // containment rests only on authenticated evidence. Senders without it are still
    // taken (stored with no producer), as `allow_unauthenticated_ingest` says.
    config.producers.allow_unauthenticated_ingest = true;
    config.producers.credentials = vec![cordon_ingest::auth::CredentialConfig {
        name: TEST_PRODUCER.into(),
        token: Some(TEST_PRODUCER_TOKEN.into()),
        hosts: vec!["*".into()],
        ..Default::default()
    }];
    config.api.tokens = cordon::api::Role::ALL
        .iter()
        .map(|role| cordon::api::TokenConfig {
            name: format!("test {}", role.as_str()),
            role: *role,
            token: Some(token_for(*role)),
            token_env: None,
        })
        .collect();
    config
}

/// The suites' producer credential: its name, and its token.
pub const TEST_PRODUCER: &str = "e2e-collector";
pub const TEST_PRODUCER_TOKEN: &str = "e2e-producer-token-0123456789abcdef";

/// An OTLP/gRPC sender presenting the suites' producer credential.
pub async fn producer_sender(grpc_url: &str) -> cordon::simulate::senders::Sender {
    cordon::simulate::senders::Sender::grpc(grpc_url)
        .await
        .unwrap()
        .with_token(Some(TEST_PRODUCER_TOKEN))
}

/// The test token of `role`.
pub fn token_for(role: cordon::api::Role) -> String {
    format!("test-token-for-the-{}-role", role.as_str())
}

pub struct TestServer {
    pub server: Server,
    /// Kept so the data directory lives as long as the server.
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_in(tempfile::tempdir().unwrap(), adjust).await
    }

    /// Starts on an existing data directory (a restart).
    pub async fn start_in(dir: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let server = Server::start(config).await.unwrap();
        TestServer { server, _dir: dir }
    }

    /// Stops the server and hands back its data directory.
    pub async fn stop(self) -> tempfile::TempDir {
        self.server.stop().await.unwrap();
        self._dir
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.server.grpc_addr)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}/v1/logs", self.server.http_addr)
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.server.api_addr)
    }

    /// `GET path` on the API with the token of `role`: status and JSON body.
    pub async fn api_get(&self, path: &str, role: Option<cordon::api::Role>) -> (u16, Value) {
        let mut request = reqwest::Client::new().get(format!("{}{path}", self.api_url()));
        if let Some(role) = role {
            request = request.bearer_auth(token_for(role));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: String = response.text().await.unwrap();
        (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
    }

    /// Every alert, through the API.
    pub async fn alerts(&self) -> Vec<Value> {
        let (status, body) = self
            .api_get("/api/v1/alerts?limit=1000", Some(cordon::api::Role::Analyst))
            .await;
        assert_eq!(status, 200, "{body}");
        body["alerts"].as_array().unwrap().clone()
    }

    /// Sends `events` over OTLP/gRPC, unauthenticated (the suites' config allows it on
    /// loopback), 500 a request; every one must be taken.
    pub async fn send_all(&self, events: &[FlatEvent]) {
        let mut sender = cordon::simulate::senders::Sender::grpc(&self.grpc_url()).await.unwrap();
        let mut report = cordon::simulate::senders::SendReport::default();
        for chunk in events.chunks(500) {
            sender.send(chunk, &mut report).await.unwrap();
        }
        assert_eq!(report.rejected, 0, "{:?}", report.last_message);
    }

    /// Waits until the rules have evaluated every acknowledged event and stored its
    /// alerts: storage queues a batch for them before it acknowledges it, and the
    /// queue counts a batch down only once its alerts are stored.
    pub async fn detections_idle(&self) {
        let queued = &self.server.detections.metrics.queued_events;
        eventually(Duration::from_secs(60), "detections to catch up", async || {
            (queued.get() == 0).then_some(())
        })
        .await
    }

    pub fn storage(&self) -> cordon_ingest::StorageConfig {
        self.server.store().config().clone()
    }
}

/// Deterministic simulated events starting at 2026-01-15T10:00:00Z.
pub fn simulated(seed: u64, events: usize, scenarios: &[Scenario]) -> Vec<FlatEvent> {
    let rate = 20.0;
    let mut simulator = Simulator::new(SimConfig {
        seed,
        hosts: 12,
        rate,
        duration: Duration::from_secs_f64(events as f64 / rate),
        start_unix_nano: 1_768_471_200_000_000_000,
        scenarios: scenarios.to_vec(),
        ..SimConfig::default()
    });
    simulator.events_until(i64::MAX)
}

pub fn write_jsonl(events: &[FlatEvent]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for event in events {
        use std::io::Write;
        writeln!(file, "{}", event.to_json(true)).unwrap();
    }
    file
}

/// Every stored event (Parquet and write-ahead log) as a JSON object, with `time_ns`.
pub async fn stored_rows(storage: &cordon_ingest::StorageConfig) -> Vec<serde_json::Map<String, Value>> {
    // What producers sent: not the signals and risk Cordon writes itself.
    let sql = "SELECT *, CAST(time AS BIGINT) AS time_ns FROM events WHERE transport <> 'detections' ORDER BY event_id";
    let batches = cordon::query::query(storage, sql, 512 << 20).await.unwrap();
    let text = cordon::query::render(&batches, cordon::query::OutputFormat::Json).unwrap();
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    rows.into_iter().map(|row| row.as_object().unwrap().clone()).collect()
}

pub async fn count(storage: &cordon_ingest::StorageConfig, sql: &str) -> i64 {
    let batches = cordon::query::query(storage, sql, 512 << 20).await.unwrap();
    use arrow::array::AsArray;
    batches[0]
        .column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0)
}

const FIXED: &[(&str, &str)] = &[
    ("host.id", "host_id"),
    ("host.name", "host_name"),
    ("service.name", "service_name"),
    ("event.id", "event_id"),
];

/// How many events the pipeline itself stored (signals, risk: transport `detections`).
pub async fn derived_events(test: &TestServer) -> u64 {
    let batches = cordon::query::live(
        test.server.ingestor.store(),
        "SELECT count(*) FROM events WHERE transport = 'detections'",
        64 << 20,
    )
    .await
    .unwrap();
    use arrow::array::AsArray;
    batches[0]
        .column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0) as u64
}

/// Asserts that every sent event is stored exactly once with every field as sent, and
/// that nothing else (no body, no unexpected attribute) was stored.
pub fn assert_rows_match(sent: &[FlatEvent], rows: &[serde_json::Map<String, Value>], allowed_extra: &[&str]) {
    assert_eq!(rows.len(), sent.len(), "stored rows");
    let mut by_id: BTreeMap<&str, &serde_json::Map<String, Value>> = BTreeMap::new();
    for row in rows {
        let id = row["event_id"].as_str().unwrap();
        assert!(by_id.insert(id, row).is_none(), "event {id} stored twice");
    }
    for event in sent {
        let id = event.text("event.id").unwrap();
        let row = by_id.get(id).unwrap_or_else(|| panic!("event {id} not stored"));
        let context = || {
            format!(
                "event {id}: sent {}, stored {}",
                event.to_json(true),
                Value::Object((*row).clone())
            )
        };
        assert_eq!(
            row["time_ns"].as_i64(),
            Some(event.time_unix_nano),
            "time of {}",
            context()
        );
        // An agent's own event is stored as its producer mapping rewrites it (tested
        // field by field in schemas/src/producers/ and tests/e2e/agents.rs): here, its
        // kind, host and id.
        let flat = event.to_json(true);
        let mapped = cordon_schemas::flat::flat_json_to_event(&flat).unwrap();
        if mapped.mapped_by.is_some() {
            let kind = cordon_schemas::EventKind::from_name(mapped.event_name.as_deref().unwrap());
            assert_eq!(row["event_name"].as_str(), Some(kind.as_str()), "{}", context());
            assert_eq!(row["host_id"].as_str(), event.text("host.id"), "{}", context());
            continue;
        }
        assert_eq!(row["event_name"].as_str(), event.text("event.name"), "{}", context());
        for (attr, column) in FIXED {
            assert_eq!(
                row.get(*column).and_then(Value::as_str),
                event.text(attr),
                "{attr} of {}",
                context()
            );
        }
        for field in ATTR_FIELDS {
            let expected = event.get(field.attr).map(|value| value.to_json());
            assert_eq!(
                row.get(field.column).cloned(),
                expected,
                "{} of {}",
                field.attr,
                context()
            );
        }
        let signed = event.get("signature.ed25519").is_some();
        assert_eq!(
            row["signature_status"],
            // No key registry in tests: a signature under an unknown key is bad.
            if signed { "bad" } else { "missing" },
            "{}",
            context()
        );
        let map = row["attributes"].as_object().unwrap();
        for key in map.keys() {
            assert!(
                allowed_extra.contains(&key.as_str()),
                "unexpected attribute {key} in {}",
                context()
            );
        }
    }
}

/// Runs the `cordon` CLI against the API at `api` with `token`: success, and stdout
/// and stderr together.
pub fn cli(args: &[&str], api: &str, token: &str) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(args)
        .args(["--api-url", api])
        .env("CORDON_TOKEN", token)
        .env("CORDON_LOG", "warn")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// `cordon rules backtest --format json` over the data dir `dir` (dropped after) for
/// event times in `[from, to)`: the alerts it lists.
pub async fn backtest(dir: tempfile::TempDir, from: i64, to: i64) -> Vec<Value> {
    let listed = backtest_json(dir.path(), from, to, &[], &[]).await;
    drop(dir);
    listed["alerts"].as_array().unwrap().clone()
}

/// `cordon rules backtest --format json` over a stopped server's data dir, with more
/// arguments (`--diff`) and settings (`CORDON_DETECTIONS__RULES_DIR`); its JSON.
pub async fn backtest_json(dir: &Path, from: i64, to: i64, args: &[&str], envs: &[(&str, &Path)]) -> Value {
    let (from, to) = (
        chrono::DateTime::from_timestamp_nanos(from).to_rfc3339(),
        chrono::DateTime::from_timestamp_nanos(to).to_rfc3339(),
    );
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cordon"));
    command
        .args(["rules", "backtest", "--from", &from, "--to", &to, "--format", "json"])
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("CORDON_LOG", "warn");
    for (name, value) in envs {
        command.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Sends an encoded OTLP logs request over gRPC as it is.
pub async fn grpc_raw(
    url: &str,
    body: bytes::Bytes,
) -> Result<opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse, tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(cordon_ingest::otlp::grpc::EXPORT_PATH);
    grpc.unary(tonic::Request::new(body), path, cordon::bench::ingest::PreEncoded)
        .await
        .map(tonic::Response::into_inner)
}

/// Every file under `dir`, read whole, as one byte string.
pub fn all_bytes(dir: &Path) -> Vec<u8> {
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
