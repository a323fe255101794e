//! OTLP/gRPC: `opentelemetry.proto.collector.logs.v1.LogsService/Export`,
//! `TraceService/Export` (one event per span: `traces.rs`) and `MetricsService/Export`
//! (counted, not stored: `metrics.rs`).
//!
//! The service is declared by hand over tonic's `Grpc` with a codec that hands over the
//! raw request bytes: decoding them here lets an undecodable request answer
//! `INVALID_ARGUMENT` (as OTLP asks; tonic's own codec says `INTERNAL`) and be counted.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Status};

use super::metrics::METRICS_EXPORT_PATH;
use super::retry_info_details;
use super::traces::TRACES_EXPORT_PATH;
use crate::auth::ConnectionInfo;
use crate::config::OtlpConfig;
use crate::error::IngestError;
use crate::ingestor::{IngestOutcome, Ingestor, Transport, retry_after};
use crate::listener::{Http2Windows, Listeners, OVER_BUDGET_RETRY, ReloadingTls, RequestCharge};
use cordon_schemas::Provenance;

pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// Decodes nothing: the handler gets the message bytes; encodes the response `R`.
struct RawCodec<R>(std::marker::PhantomData<R>);

impl<R> RawCodec<R> {
    fn new() -> Self {
        RawCodec(std::marker::PhantomData)
    }
}

struct ResponseEncoder<R>(std::marker::PhantomData<R>);
struct RawDecoder;

impl<R: Message + Send + 'static> Codec for RawCodec<R> {
    type Encode = R;
    type Decode = Bytes;
    type Encoder = ResponseEncoder<R>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder(std::marker::PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

impl<R: Message> Encoder for ResponseEncoder<R> {
    type Item = R;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|error| Status::internal(error.to_string()))
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The OTLP logs service.
#[derive(Clone)]
pub struct LogsGrpcService {
    ingestor: Arc<Ingestor>,
    max_message_bytes: usize,
}

impl NamedService for LogsGrpcService {
    const NAME: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
}

struct Export(Arc<Ingestor>);

/// The gRPC answer for a request's outcome (OTLP partial success).
pub fn response_for(outcome: &IngestOutcome) -> ExportLogsServiceResponse {
    let partial_success = (outcome.rejected > 0 || !outcome.message.is_empty()).then(|| ExportLogsPartialSuccess {
        rejected_log_records: outcome.rejected as i64,
        error_message: outcome.message.clone(),
    });
    ExportLogsServiceResponse { partial_success }
}

/// The gRPC status for a request refused as a whole.
pub fn status_for(error: &IngestError) -> Status {
    let message = error.to_string();
    match error {
        IngestError::Overloaded { .. } | IngestError::Storage(_) => {
            let code = if matches!(error, IngestError::Overloaded { .. }) {
                Code::ResourceExhausted
            } else {
                Code::Unavailable
            };
            let delay = retry_after(error).unwrap_or_default();
            Status::with_details(code, message.clone(), retry_info_details(code, &message, delay))
        }
        IngestError::Undecodable(_) | IngestError::UnsupportedMediaType(_) => Status::invalid_argument(message),
        IngestError::TooLarge { .. } => Status::out_of_range(message),
        IngestError::BodyTimeout(_) => Status::deadline_exceeded(message),
        IngestError::Unauthenticated(_) => Status::unauthenticated(message),
    }
}

/// Charges what tonic decompressed against the memory budget: the wire bytes the
/// listener charged did not account for it.
fn charge_decompressed(request: &tonic::Request<Bytes>) -> Result<(), IngestError> {
    let compressed = request
        .metadata()
        .get("grpc-encoding")
        .is_some_and(|encoding| encoding != "identity");
    match request.extensions().get::<RequestCharge>() {
        Some(charge) if compressed && charge.take(request.get_ref().len()).is_err() => Err(IngestError::Overloaded {
            what: "request memory budget, listeners.memory_budget_bytes",
            retry_after: OVER_BUDGET_RETRY,
        }),
        _ => Ok(()),
    }
}

impl UnaryService<Bytes> for Export {
    type Response = ExportLogsServiceResponse;
    type Future = BoxFuture<'static, Result<tonic::Response<Self::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let ingestor = self.0.clone();
        Box::pin(async move {
            if let Err(error) = charge_decompressed(&request) {
                ingestor.refused(Transport::OtlpGrpc, &error);
                return Err(status_for(&error));
            }
            let provenance = request
                .extensions()
                .get::<Provenance>()
                .cloned()
                .expect("the service authenticates every request before it gets here");
            let bytes = request.into_inner();
            let result = ingestor.ingest_encoded_otlp(provenance, bytes).await;
            match result {
                Ok(outcome) => Ok(tonic::Response::new(response_for(&outcome))),
                Err(error) => {
                    ingestor.refused(Transport::OtlpGrpc, &error);
                    Err(status_for(&error))
                }
            }
        })
    }
}

/// `TraceService/Export`: one event per span (`traces.rs`).
struct ExportTraces(Arc<Ingestor>);

impl UnaryService<Bytes> for ExportTraces {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<'static, Result<tonic::Response<Self::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let ingestor = self.0.clone();
        Box::pin(async move {
            if let Err(error) = charge_decompressed(&request) {
                ingestor.refused(Transport::OtlpGrpc, &error);
                return Err(status_for(&error));
            }
            let provenance = request
                .extensions()
                .get::<Provenance>()
                .cloned()
                .expect("the service authenticates every request before it gets here");
            let bytes = request.into_inner();
            match ingestor
                .ingest_traces(provenance, bytes, super::traces::decode_protobuf)
                .await
            {
                Ok(outcome) => Ok(tonic::Response::new(super::traces::response_for(&outcome))),
                Err(error) => {
                    ingestor.refused(Transport::OtlpGrpc, &error);
                    Err(status_for(&error))
                }
            }
        })
    }
}

/// `MetricsService/Export`: counted, not stored (`metrics.rs`).
struct ExportMetrics(Arc<Ingestor>);

impl UnaryService<Bytes> for ExportMetrics {
    type Response = ExportMetricsServiceResponse;
    type Future = BoxFuture<'static, Result<tonic::Response<Self::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let ingestor = self.0.clone();
        Box::pin(async move {
            if let Err(error) = charge_decompressed(&request) {
                ingestor.refused(Transport::OtlpGrpc, &error);
                return Err(status_for(&error));
            }
            let request = super::metrics::decode_protobuf(&request.into_inner());
            match super::metrics::accept(&ingestor, Transport::OtlpGrpc, request) {
                Ok(response) => Ok(tonic::Response::new(response)),
                Err(error) => {
                    ingestor.refused(Transport::OtlpGrpc, &error);
                    Err(status_for(&error))
                }
            }
        })
    }
}

impl<B> tower::Service<http::Request<B>> for LogsGrpcService
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move {
            // Before the body is read: a request without a right credential costs nothing.
            let authenticated = service.ingestor.authenticate(
                Transport::OtlpGrpc,
                request
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .map(|value| value.as_bytes()),
                request.extensions().get::<ConnectionInfo>(),
            );
            match authenticated {
                Ok(provenance) => {
                    request.extensions_mut().insert(provenance);
                }
                Err(error) => return Ok(status_for(&error).into_http()),
            }
            let path = request.uri().path().to_string();
            if path != EXPORT_PATH && path != METRICS_EXPORT_PATH && path != TRACES_EXPORT_PATH {
                let mut response = http::Response::new(tonic::body::Body::default());
                let headers = response.headers_mut();
                headers.insert("grpc-status", (Code::Unimplemented as i32).into());
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/grpc"),
                );
                return Ok(response);
            }
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            if path == METRICS_EXPORT_PATH {
                let mut grpc = Grpc::new(RawCodec::<ExportMetricsServiceResponse>::new())
                    .apply_compression_config(accept, EnabledCompressionEncodings::default())
                    .apply_max_message_size_config(Some(service.max_message_bytes), None);
                return Ok(grpc.unary(ExportMetrics(service.ingestor.clone()), request).await);
            }
            let response = if path == TRACES_EXPORT_PATH {
                let mut grpc = Grpc::new(RawCodec::<ExportTraceServiceResponse>::new())
                    .apply_compression_config(accept, EnabledCompressionEncodings::default())
                    .apply_max_message_size_config(Some(service.max_message_bytes), None);
                grpc.unary(ExportTraces(service.ingestor.clone()), request).await
            } else {
                let mut grpc = Grpc::new(RawCodec::<ExportLogsServiceResponse>::new())
                    .apply_compression_config(accept, EnabledCompressionEncodings::default())
                    .apply_max_message_size_config(Some(service.max_message_bytes), None);
                grpc.unary(Export(service.ingestor.clone()), request).await
            };
            // Oversize messages are refused by tonic before the handler: count them here.
            if response
                .headers()
                .get("grpc-status")
                .is_some_and(|status| status == "11")
            {
                service
                    .ingestor
                    .metrics()
                    .request_rejected(Transport::OtlpGrpc.label(), "too_large");
            }
            Ok(response)
        })
    }
}

/// Binds the gRPC listener; the returned future serves under the listener limits until
/// `shutdown` turns true.
pub async fn bind(
    config: &OtlpConfig,
    ingestor: Arc<Ingestor>,
    listeners: &Listeners,
    tls: Option<Arc<ReloadingTls>>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, BoxFuture<'static, std::io::Result<()>>)> {
    let listener = TcpListener::bind(config.grpc_listen).await?;
    let local = listener.local_addr()?;
    let service = LogsGrpcService {
        ingestor,
        max_message_bytes: config.max_request_bytes,
    };
    let windows = Http2Windows {
        stream: config.grpc_stream_window_bytes,
        connection: config.grpc_connection_window_bytes,
    };
    let router = axum::Router::new().fallback_service(service);
    Ok((
        local,
        listeners.serve("otlp_grpc", listener, router, Some(windows), tls, shutdown),
    ))
}
