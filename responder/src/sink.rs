//! A webhook receiver for demos and tests (`cordon sink`): it checks each delivery's
//! signature and timestamp, tells first deliveries from repeats by Idempotency-Key,
//! and reports what it received. It stands in for the IdP, EDR or chat channel.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::signing::{IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};

/// One delivery as the sink saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Received {
    pub received_at: String,
    pub path: String,
    pub action_id: Option<String>,
    pub action: Option<String>,
    pub host_id: Option<String>,
    pub user_name: Option<String>,
    /// `valid`, or why the delivery was refused.
    pub signature: String,
    /// A repeat of an action id already received (answered 200, not acted on).
    pub duplicate: bool,
    pub body: Option<serde_json::Value>,
}

/// The sink's state; `on_receive` is called for every delivery (the CLI prints it).
pub struct Sink {
    secret: Secret,
    tolerance_s: i64,
    seen: Mutex<HashSet<String>>,
    received: Mutex<Vec<Received>>,
    on_receive: Box<dyn Fn(&Received) + Send + Sync>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ReceivedList {
    pub deliveries: Vec<Received>,
}

impl Sink {
    pub fn new(secret: Secret, tolerance_s: i64, on_receive: Box<dyn Fn(&Received) + Send + Sync>) -> Arc<Sink> {
        Arc::new(Sink {
            secret,
            tolerance_s,
            seen: Mutex::new(HashSet::new()),
            received: Mutex::new(Vec::new()),
            on_receive,
        })
    }

    /// `POST /<anything>` receives; `GET /received` lists what was received.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/received", get(list))
            .route("/", post(receive))
            .route("/{*path}", post(receive))
            .with_state(self.clone())
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("sink lock").clone()
    }

    fn check(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let timestamp: i64 = header(TIMESTAMP_HEADER)
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| format!("no {TIMESTAMP_HEADER} header with unix seconds"))?;
        let signature = header(SIGNATURE_HEADER).ok_or_else(|| format!("no {SIGNATURE_HEADER} header"))?;
        verify(
            &self.secret,
            timestamp,
            body,
            signature,
            chrono::Utc::now().timestamp(),
            self.tolerance_s,
        )
        .map_err(|error| error.to_string())
    }
}

async fn list(State(sink): State<Arc<Sink>>) -> axum::Json<ReceivedList> {
    axum::Json(ReceivedList {
        deliveries: sink.received(),
    })
}

async fn receive(State(sink): State<Arc<Sink>>, uri: axum::http::Uri, headers: HeaderMap, body: Bytes) -> Response {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|value| value.get(name))
            .and_then(|value| value.as_str())
            .map(str::to_string)
    };
    let target = |name: &str| {
        parsed
            .as_ref()
            .and_then(|value| value.get("target"))
            .and_then(|target| target.get(name))
            .and_then(|value| value.as_str())
            .map(str::to_string)
    };
    let key = headers
        .get(IDEMPOTENCY_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let checked = sink.check(&headers, &body);
    let mut record = Received {
        received_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        path: uri.path().to_string(),
        action_id: field("action_id"),
        action: field("action"),
        host_id: target("host_id"),
        user_name: target("user_name"),
        signature: match &checked {
            Ok(()) => "valid".into(),
            Err(why) => why.clone(),
        },
        duplicate: false,
        body: parsed.clone(),
    };
    let (status, answer) = match (&checked, &parsed, &key) {
        (Err(why), _, _) => (StatusCode::UNAUTHORIZED, why.clone()),
        (Ok(()), None, _) => (StatusCode::BAD_REQUEST, "the body is not JSON".to_string()),
        (Ok(()), Some(_), None) => (StatusCode::BAD_REQUEST, format!("no {IDEMPOTENCY_HEADER} header")),
        (Ok(()), Some(_), Some(key)) if record.action_id.as_deref() != Some(key.as_str()) => (
            StatusCode::BAD_REQUEST,
            format!("{IDEMPOTENCY_HEADER} does not match the body's action_id"),
        ),
        (Ok(()), Some(_), Some(key)) => {
            let first = sink.seen.lock().expect("sink lock").insert(key.clone());
            record.duplicate = !first;
            (
                StatusCode::OK,
                if first {
                    "received"
                } else {
                    "duplicate: already received"
                }
                .to_string(),
            )
        }
    };
    (sink.on_receive)(&record);
    sink.received.lock().expect("sink lock").push(record);
    (status, axum::Json(serde_json::json!({ "status": answer }))).into_response()
}
