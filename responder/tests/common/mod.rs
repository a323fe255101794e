//! A scripted webhook receiver (a real HTTP server on loopback) and helpers to run a
//! responder against it.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cordon_responder::config::{RetryConfig, TargetConfig};
use cordon_responder::enrich::{EvidenceProvenance, TargetEnricher};
use cordon_responder::playbook::PlaybookSource;
use cordon_responder::store::ActionFilter;
use cordon_responder::{ActionState, Responder, ResponderConfig, ResponderMetrics};
use cordon_schemas::alert::{Alert, AlertNote, AlertStatus, Evidence, Severity, rfc3339};
pub use cordon_schemas::{ActionKind, AlertFeed};
use cordon_schemas::{FeedError, ResponseMode, ResponseStep};
use tokio::sync::watch;

pub const SECRET: &str = "test-secret-0123456789abcdef-never-logged";

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub retry_after: Option<String>,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            delay: Duration::ZERO,
            retry_after: None,
        }
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    pub fn retry_after(mut self, value: &str) -> Reply {
        self.retry_after = Some(value.into());
        self
    }
}

/// A request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What the receiver answered.
    pub status: u16,
}

impl Seen {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|value| value.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
    script: Mutex<VecDeque<Reply>>,
    otherwise: Reply,
    seen: Mutex<Vec<Seen>>,
    /// Until then every request gets a 503, as from a load balancer before a target
    /// that is down.
    down_until: Mutex<Option<Instant>>,
}

impl Receiver {
    /// Answers with `script` in order, then with `otherwise`.
    pub async fn start(script: Vec<Reply>, otherwise: Reply) -> Arc<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Arc::new(Receiver {
            addr: listener.local_addr().unwrap(),
            script: Mutex::new(script.into()),
            otherwise,
            seen: Mutex::new(Vec::new()),
            down_until: Mutex::new(None),
        });
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(answer))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// An outage from now: 503 to everything for `outage`.
    pub fn down_for(&self, outage: Duration) {
        *self.down_until.lock().unwrap() = Some(Instant::now() + outage);
    }
}

async fn answer(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let down = receiver
        .down_until
        .lock()
        .unwrap()
        .is_some_and(|until| Instant::now() < until);
    let reply = if down {
        Reply::status(503)
    } else {
        receiver
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| receiver.otherwise.clone())
    };
    receiver.seen.lock().unwrap().push(Seen {
        at: Instant::now(),
        headers,
        body,
        status: reply.status,
    });
    tokio::time::sleep(reply.delay).await;
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        format!("scripted {}", reply.status),
    )
        .into_response();
    if let Some(value) = reply.retry_after {
        response.headers_mut().insert("retry-after", value.parse().unwrap());
    }
    response
}

/// Writes the shared test secret to a file in `dir`.
pub fn secret_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("webhook-secret");
    std::fs::write(&path, SECRET).unwrap();
    path
}

pub fn target(url: String, secret: &Path) -> TargetConfig {
    TargetConfig {
        url,
        secret_env: None,
        secret_file: Some(secret.to_path_buf()),
        timeout: Duration::from_secs(5),
        headers: BTreeMap::new(),
        dry_run: false,
        max_in_flight: None,
        // The test receiver runs on this machine.
        allow_http: true,
    }
}

/// Settings with fast retries, every action sent to `receiver`.
pub fn config(receiver: &Receiver, secret: &Path) -> ResponderConfig {
    let mut config = ResponderConfig {
        retry: RetryConfig {
            initial: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            horizon: Duration::from_secs(3600),
            max_attempts: Some(4),
            max_retry_after: Duration::from_secs(30),
        },
        poll_interval: Duration::from_millis(50),
        ..ResponderConfig::default()
    };
    for action in ["revoke_token", "isolate_host", "release_host", "notify"] {
        config
            .targets
            .insert(action.into(), target(receiver.url(action), secret));
    }
    config
}

pub fn step(action: &str, mode: ResponseMode) -> ResponseStep {
    ResponseStep::new(ActionKind::parse(action).unwrap(), mode)
}

/// Playbooks for the rule ids the tests raise alerts for.
pub fn playbooks(steps: Vec<ResponseStep>) -> Arc<dyn PlaybookSource> {
    let map: BTreeMap<String, Vec<ResponseStep>> = [("test-rule".to_string(), steps)].into();
    Arc::new(map)
}

/// The alert feed as the responder sees it, kept in memory: these tests are about the
/// responder; the detections stage's store behind the feed is tested with it in
/// tests/e2e (and its cursors in detections' own tests).
#[derive(Default)]
pub struct MemoryFeed {
    alerts: Mutex<Vec<Alert>>,
    cursors: Mutex<BTreeMap<String, i64>>,
}

impl MemoryFeed {
    pub fn in_memory() -> MemoryFeed {
        MemoryFeed::default()
    }
}

impl AlertFeed for MemoryFeed {
    fn created_after(&self, position: i64, limit: usize) -> Result<Vec<(i64, Alert)>, FeedError> {
        let alerts = self.alerts.lock().unwrap();
        Ok(alerts
            .iter()
            .enumerate()
            .map(|(index, alert)| (index as i64 + 1, alert.clone()))
            .filter(|(at, _)| *at > position)
            .take(limit)
            .collect())
    }

    fn get(&self, alert_id: &str) -> Result<Option<Alert>, FeedError> {
        Ok(self
            .alerts
            .lock()
            .unwrap()
            .iter()
            .find(|alert| alert.id == alert_id)
            .cloned())
    }

    fn cursor(&self, consumer: &str) -> Result<Option<i64>, FeedError> {
        Ok(self.cursors.lock().unwrap().get(consumer).copied())
    }

    fn set_cursor(&self, consumer: &str, position: i64) -> Result<(), FeedError> {
        self.cursors.lock().unwrap().insert(consumer.to_string(), position);
        Ok(())
    }

    fn add_note(&self, alert_id: &str, author: &str, text: &str) -> Result<(), FeedError> {
        let mut alerts = self.alerts.lock().unwrap();
        let alert = alerts
            .iter_mut()
            .find(|alert| alert.id == alert_id)
            .ok_or_else(|| FeedError(format!("no alert {alert_id}")))?;
        alert.notes.push(AlertNote {
            at: rfc3339(chrono::Utc::now().timestamp_nanos_opt().unwrap()),
            author: author.into(),
            kind: "note".into(),
            text: text.into(),
        });
        Ok(())
    }
}

/// Raises a new alert of `test-rule` for `host` and `user`, detected as it happened.
pub fn raise(alerts: &MemoryFeed, host: &str, user: &str) -> Alert {
    raise_detected_after(alerts, host, user, Duration::ZERO)
}

/// Raises a new alert of `test-rule` whose last event happened `delay` before it was
/// detected (a buffered upload).
pub fn raise_detected_after(alerts: &MemoryFeed, host: &str, user: &str, delay: Duration) -> Alert {
    let detected = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let last = rfc3339(detected - delay.as_nanos() as i64);
    let entity: BTreeMap<String, Option<String>> = [
        ("host_id".to_string(), Some(host.to_string())),
        ("user_name".to_string(), Some(user.to_string())),
    ]
    .into();
    let alert = Alert {
        id: format!("alr-{}", uuid::Uuid::new_v4().simple()),
        rule_id: "test-rule".into(),
        title: "sensitive reads, denied upload, clipboard copy".into(),
        severity: Severity::Critical,
        status: AlertStatus::Open,
        host_id: Some(host.into()),
        user_name: Some(user.into()),
        agent_id: None,
        entity,
        first_seen: last.clone(),
        last_seen: last.clone(),
        count: 1,
        risk: 85.0,
        attack: vec![],
        fields: serde_json::Map::new(),
        evidence: vec![Evidence {
            event_id: format!("ev-{}", uuid::Uuid::new_v4()),
            time: Some(last),
            kind: Some("network.flow".into()),
            host_id: Some(host.into()),
        }],
        evidence_total: 1,
        created_at: rfc3339(detected),
        updated_at: rfc3339(detected),
        assignee: None,
        close_reason: None,
        detected_after: Some(delay.as_secs_f64()),
        notes: vec![],
    };
    alerts.alerts.lock().unwrap().push(alert.clone());
    alert
}

/// Evidence as an authenticated, signing producer sends it: these tests are about
/// delivery, the stored events behind an alert are the binary's (tests/e2e).
pub struct AuthenticatedEvidence;

impl TargetEnricher for AuthenticatedEvidence {
    fn latest_token(&self, _host_id: &str, _user_name: Option<&str>) -> Option<String> {
        None
    }

    fn evidence_provenance(&self, evidence: &[Evidence]) -> Option<Vec<EvidenceProvenance>> {
        Some(
            evidence
                .iter()
                .map(|event| EvidenceProvenance {
                    event_id: event.event_id.clone(),
                    producer: Some("test-producer".into()),
                    signature_status: "valid".into(),
                })
                .collect(),
        )
    }
}

/// A responder running on `db`, and the means to stop it.
pub struct Running {
    pub responder: Arc<Responder>,
    pub task: tokio::task::JoinHandle<()>,
    feed: Arc<MemoryFeed>,
    stop: watch::Sender<bool>,
}

impl Running {
    pub fn start(
        config: ResponderConfig,
        db: &Path,
        alerts: Arc<MemoryFeed>,
        playbooks: Arc<dyn PlaybookSource>,
    ) -> Running {
        Running::start_with_evidence(config, db, alerts, playbooks, Some(Arc::new(AuthenticatedEvidence)))
    }

    /// With `evidence` telling how alerts' evidence arrived (None: nothing can tell).
    pub fn start_with_evidence(
        config: ResponderConfig,
        db: &Path,
        alerts: Arc<MemoryFeed>,
        playbooks: Arc<dyn PlaybookSource>,
        evidence: Option<Arc<dyn TargetEnricher>>,
    ) -> Running {
        let responder = Responder::open(config, db, alerts.clone(), ResponderMetrics::default()).unwrap();
        if let Some(evidence) = evidence {
            responder.set_enricher(evidence);
        }
        let (stop, stopped) = watch::channel(false);
        let task = responder.start(playbooks, stopped);
        Running {
            responder,
            task,
            feed: alerts,
            stop,
        }
    }

    /// Waits until the responder can send nothing more by itself: it has taken every
    /// alert (its cursor is at the feed's end) and no action is pending or in flight.
    /// Then what the receiver saw is all it will see, until someone approves or retries.
    pub async fn settled(&self) {
        eventually(Duration::from_secs(10), "the responder to settle", || {
            let alerts = self.feed.alerts.lock().unwrap().len() as i64;
            let taken =
                alerts == 0 || self.feed.cursor(cordon_responder::service::FEED_CONSUMER).unwrap() == Some(alerts);
            let busy = self
                .responder
                .list(&ActionFilter::default())
                .unwrap()
                .iter()
                .any(|action| matches!(action.state, ActionState::Pending | ActionState::InFlight));
            taken && !busy
        })
        .await
    }

    /// A crash: the task is dropped wherever it is, nothing is finished.
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
        drop(self.stop);
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap();
    }
}

/// Waits until `check` holds, or panics after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn auto() -> ResponseMode {
    ResponseMode::Auto
}
