//! OTLP/HTTP: `POST /v1/logs` with protobuf or JSON bodies, optionally gzip-compressed;
//! `POST /v1/traces` the same way, one event per span (`traces.rs`); `POST /v1/metrics`
//! the same way, counted and not stored (`metrics.rs`).
//! Answers in the encoding it was sent (OTLP/HTTP specification).

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::future::BoxFuture;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::RpcStatus;
use super::grpc::response_for;
use crate::auth::ConnectionInfo;
use crate::error::IngestError;
use crate::ingestor::{Ingestor, Transport, retry_after};
use crate::listener::{BodyLimitError, Http2Windows, Listeners, OVER_BUDGET_RETRY, ReloadingTls, RequestCharge};
use cordon_schemas::Provenance;

pub const LOGS_PATH: &str = "/v1/logs";

/// How a request body is encoded; the response uses the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn from_headers(headers: &HeaderMap) -> Result<Encoding, IngestError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            _ => Err(IngestError::UnsupportedMediaType(content_type.to_string())),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_request_bytes: usize,
    pub max_decompressed_bytes: usize,
}

#[derive(Clone)]
struct HttpState {
    ingestor: Arc<Ingestor>,
    limits: HttpLimits,
}

/// Decompresses a body if its `Content-Encoding` says so, within `limit` bytes. What it
/// decompresses to is charged to the request's share of the memory budget as it grows.
pub fn decompress(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
    charge: Option<&RequestCharge>,
) -> Result<Bytes, IngestError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut decoder = flate2::read::MultiGzDecoder::new(body.as_ref()).take(limit as u64 + 1);
            let mut decoded = Vec::with_capacity(body.len().saturating_mul(4).min(limit + 1));
            loop {
                let before = decoded.len();
                let read = (&mut decoder)
                    .take(DECOMPRESS_STEP as u64)
                    .read_to_end(&mut decoded)
                    .map_err(|error| IngestError::Undecodable(format!("body is not valid gzip: {error}")))?;
                if read == 0 {
                    break;
                }
                if let Some(charge) = charge {
                    charge.take(decoded.len() - before).map_err(|_| over_budget())?;
                }
            }
            if decoded.len() > limit {
                return Err(IngestError::TooLarge {
                    size: decoded.len(),
                    limit,
                });
            }
            Ok(Bytes::from(decoded))
        }
        other => Err(IngestError::UnsupportedMediaType(format!("Content-Encoding: {other}"))),
    }
}

/// Decompressed bytes charged at a time.
const DECOMPRESS_STEP: usize = 256 << 10;

fn over_budget() -> IngestError {
    IngestError::Overloaded {
        what: "request memory budget, listeners.memory_budget_bytes",
        retry_after: OVER_BUDGET_RETRY,
    }
}

fn encoded<T: Message + serde::Serialize>(encoding: Encoding, status: StatusCode, message: &T) -> Response {
    let body = match encoding {
        Encoding::Protobuf => message.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(message).expect("responses serialize"),
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(encoding.content_type()));
    response
}

/// The HTTP answer for a request refused as a whole.
pub fn error_response(encoding: Encoding, error: &IngestError) -> Response {
    let (status, code) = match error {
        IngestError::Overloaded { .. } => (StatusCode::TOO_MANY_REQUESTS, tonic::Code::ResourceExhausted),
        IngestError::Storage(_) => (StatusCode::SERVICE_UNAVAILABLE, tonic::Code::Unavailable),
        IngestError::Undecodable(_) => (StatusCode::BAD_REQUEST, tonic::Code::InvalidArgument),
        IngestError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, tonic::Code::OutOfRange),
        IngestError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, tonic::Code::InvalidArgument),
        IngestError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, tonic::Code::DeadlineExceeded),
        IngestError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, tonic::Code::Unauthenticated),
    };
    let mut response = encoded(encoding, status, &RpcStatus::new(code, error.to_string()));
    if matches!(error, IngestError::Unauthenticated(_)) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(delay) = retry_after(error) {
        let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}

/// Reads a whole body within `limits`, the listener's body timeout and the memory
/// budget (`charge`, which the listener puts in each request's extensions).
pub(crate) async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limits: HttpLimits,
    charge: Option<&RequestCharge>,
) -> Result<Bytes, IngestError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if let Some(size) = declared.filter(|size| *size > limits.max_request_bytes) {
        return Err(IngestError::TooLarge {
            size,
            limit: limits.max_request_bytes,
        });
    }
    let raw =
        axum::body::to_bytes(body, limits.max_request_bytes)
            .await
            .map_err(|error| match BodyLimitError::find(&error) {
                Some(BodyLimitError::Timeout { .. }) => IngestError::BodyTimeout(error.to_string()),
                Some(BodyLimitError::OverBudget { .. }) => over_budget(),
                Some(BodyLimitError::Read(_)) => {
                    IngestError::Undecodable(format!("the request body broke off: {error}"))
                }
                None => IngestError::TooLarge {
                    size: declared.unwrap_or(limits.max_request_bytes + 1),
                    limit: limits.max_request_bytes,
                },
            })?;
    decompress(headers, raw, limits.max_decompressed_bytes, charge)
}

/// Who sent an HTTP request (`Authorization`, the connection's client certificate);
/// refused (and counted) before its body is read.
pub(crate) fn authenticate(
    ingestor: &Ingestor,
    transport: Transport,
    headers: &HeaderMap,
    connection: Option<&ConnectionInfo>,
) -> Result<Provenance, IngestError> {
    ingestor.authenticate(
        transport,
        headers.get(header::AUTHORIZATION).map(|value| value.as_bytes()),
        connection,
    )
}

/// What every OTLP/HTTP export does first: its encoding, who sent it (before the body
/// is read), the body within the limits. `Err` is the answer to send, already counted.
async fn read_export(
    state: &HttpState,
    charge: Option<Extension<RequestCharge>>,
    connection: Option<Extension<ConnectionInfo>>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Encoding, Provenance, Bytes), Response> {
    let encoding = Encoding::from_headers(headers).map_err(|error| {
        state.ingestor.refused(Transport::OtlpHttp, &error);
        error_response(Encoding::Json, &error)
    })?;
    let provenance = authenticate(&state.ingestor, Transport::OtlpHttp, headers, connection.as_deref())
        .map_err(|error| error_response(encoding, &error))?;
    let bytes = read_limited(headers, body, state.limits, charge.as_deref())
        .await
        .map_err(|error| {
            state.ingestor.refused(Transport::OtlpHttp, &error);
            error_response(encoding, &error)
        })?;
    Ok((encoding, provenance, bytes))
}

async fn export_logs(
    State(state): State<HttpState>,
    charge: Option<Extension<RequestCharge>>,
    connection: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (encoding, provenance, bytes) = match read_export(&state, charge, connection, &headers, body).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let result = match encoding {
        Encoding::Protobuf => state.ingestor.ingest_encoded_otlp(provenance, bytes).await,
        Encoding::Json => state.ingestor.ingest_otlp_json(provenance, bytes).await,
    };
    match result {
        Ok(outcome) => encoded(encoding, StatusCode::OK, &response_for(&outcome)),
        Err(error) => {
            state.ingestor.refused(Transport::OtlpHttp, &error);
            error_response(encoding, &error)
        }
    }
}

/// `POST /v1/metrics`: counted, not stored (`metrics.rs`).
async fn export_metrics(
    State(state): State<HttpState>,
    charge: Option<Extension<RequestCharge>>,
    connection: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (encoding, _, bytes) = match read_export(&state, charge, connection, &headers, body).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let request = match encoding {
        Encoding::Protobuf => super::metrics::decode_protobuf(&bytes),
        Encoding::Json => super::metrics::decode_json(&bytes),
    };
    match super::metrics::accept(&state.ingestor, Transport::OtlpHttp, request) {
        Ok(response) => encoded(encoding, StatusCode::OK, &response),
        Err(error) => {
            state.ingestor.refused(Transport::OtlpHttp, &error);
            error_response(encoding, &error)
        }
    }
}

/// `POST /v1/traces`: one event per span (`traces.rs`).
async fn export_traces(
    State(state): State<HttpState>,
    charge: Option<Extension<RequestCharge>>,
    connection: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (encoding, provenance, bytes) = match read_export(&state, charge, connection, &headers, body).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let decode = match encoding {
        Encoding::Protobuf => super::traces::decode_protobuf,
        Encoding::Json => super::traces::decode_json,
    };
    match state.ingestor.ingest_traces(provenance, bytes, decode).await {
        Ok(outcome) => encoded(encoding, StatusCode::OK, &super::traces::response_for(&outcome)),
        Err(error) => {
            state.ingestor.refused(Transport::OtlpHttp, &error);
            error_response(encoding, &error)
        }
    }
}

/// The OTLP/HTTP routes. Other HTTP sources (OPA decision logs) merge theirs into it.
pub fn router(ingestor: Arc<Ingestor>, limits: HttpLimits) -> Router {
    Router::new()
        .route(LOGS_PATH, post(export_logs))
        .route(super::traces::TRACES_PATH, post(export_traces))
        .route(super::metrics::METRICS_PATH, post(export_metrics))
        // The handler enforces the limit itself, to answer in OTLP's format and count it.
        .layer(DefaultBodyLimit::disable())
        .with_state(HttpState { ingestor, limits })
}

/// Binds the HTTP listener; the returned future serves `router` under the listener
/// limits until `shutdown`.
pub async fn bind(
    listen: SocketAddr,
    router: Router,
    listeners: &Listeners,
    tls: Option<Arc<ReloadingTls>>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, BoxFuture<'static, std::io::Result<()>>)> {
    let listener = TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    let windows: Option<Http2Windows> = None;
    Ok((
        local,
        listeners.serve("otlp_http", listener, router, windows, tls, shutdown),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_matched_on_their_essence() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(Encoding::from_headers(&headers).unwrap(), Encoding::Json);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(matches!(
            Encoding::from_headers(&headers),
            Err(IngestError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn gzip_bombs_stop_at_the_limit() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0u8; 1 << 20]).unwrap();
        let compressed = Bytes::from(encoder.finish().unwrap());
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(matches!(
            decompress(&headers, compressed.clone(), 1000, None),
            Err(IngestError::TooLarge { .. })
        ));
        assert_eq!(decompress(&headers, compressed, 2 << 20, None).unwrap().len(), 1 << 20);
        assert!(matches!(
            decompress(&headers, Bytes::from_static(b"not gzip"), 1000, None),
            Err(IngestError::Undecodable(_))
        ));
    }
}
