//! What every source calls: convert, check, deduplicate, store durably, report.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use serde::Serialize;

use crate::error::IngestError;
use crate::metrics::IngestMetrics;
use crate::storage::EventStore;
use cordon_schemas::otlp::{convert_request, count_records};
use cordon_schemas::otlp_wire::convert_encoded_request;
use cordon_schemas::signature::KeyRegistry;
use cordon_schemas::{ConversionReport, EventBatchBuilder, flat};

/// The transports events arrive by; each is a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    OtlpGrpc,
    OtlpHttp,
    Kafka,
    OpaLogs,
}

impl Transport {
    pub fn label(self) -> &'static str {
        match self {
            Transport::OtlpGrpc => "otlp_grpc",
            Transport::OtlpHttp => "otlp_http",
            Transport::Kafka => "kafka",
            Transport::OpaLogs => "opa_logs",
        }
    }
}

/// What happened to the records of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Records that are now durable.
    pub stored: usize,
    /// Records already stored before (redelivered): acknowledged, not stored again.
    pub duplicates: usize,
    pub rejected: usize,
    /// What was wrong or changed, for the producer; empty if nothing was.
    pub message: String,
}

pub struct Ingestor {
    store: Arc<EventStore>,
    metrics: IngestMetrics,
    keys: Arc<KeyRegistry>,
}

/// Wall-clock now, in nanoseconds since the epoch.
pub fn now_unix_nano() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as i64)
        .unwrap_or_default()
}

impl Ingestor {
    pub fn new(store: Arc<EventStore>, metrics: IngestMetrics) -> Self {
        Ingestor {
            store,
            metrics,
            keys: Arc::new(KeyRegistry::new()),
        }
    }

    /// Checks event signatures against `keys` (contract section 5).
    pub fn with_keys(mut self, keys: Arc<KeyRegistry>) -> Self {
        self.keys = keys;
        self
    }

    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    pub fn store(&self) -> &Arc<EventStore> {
        &self.store
    }

    /// Stores an OTLP logs request; returns once every accepted record is durable.
    pub async fn ingest_otlp(
        &self,
        transport: Transport,
        request: &ExportLogsServiceRequest,
    ) -> Result<IngestOutcome, IngestError> {
        let records = count_records(request);
        self.metrics.received(transport.label(), records);
        let started = Instant::now();
        let mut builder = EventBatchBuilder::with_capacity(records).with_keys(self.keys.clone());
        let report = convert_request(request, now_unix_nano(), &mut builder);
        self.metrics.stage_time("convert", started.elapsed());
        self.finish(builder, report).await
    }

    /// Stores an encoded OTLP logs request (protobuf), converting it without materialising
    /// prost structs; returns once every accepted record is durable.
    pub async fn ingest_encoded_otlp(&self, transport: Transport, bytes: &[u8]) -> Result<IngestOutcome, IngestError> {
        let started = Instant::now();
        let mut builder = EventBatchBuilder::with_capacity(bytes.len() / 256 + 1).with_keys(self.keys.clone());
        let (report, records) = convert_encoded_request(bytes, now_unix_nano(), &mut builder).map_err(|error| {
            IngestError::Undecodable(format!(
                "request is not an OTLP ExportLogsServiceRequest (protobuf): {error}"
            ))
        })?;
        self.metrics.stage_time("convert", started.elapsed());
        self.metrics.received(transport.label(), records);
        self.finish(builder, report).await
    }

    /// Stores flat JSON events (contract section 3).
    pub async fn ingest_flat(
        &self,
        transport: Transport,
        events: &[serde_json::Value],
    ) -> Result<IngestOutcome, IngestError> {
        self.metrics.received(transport.label(), events.len());
        let received = now_unix_nano();
        let mut builder = EventBatchBuilder::with_capacity(events.len()).with_keys(self.keys.clone());
        let mut report = ConversionReport::default();
        for (index, value) in events.iter().enumerate() {
            let outcome = flat::flat_json_to_event(value).and_then(|record| builder.append(&record, received));
            report.record(index, outcome);
        }
        self.finish(builder, report).await
    }

    async fn finish(
        &self,
        mut builder: EventBatchBuilder,
        report: ConversionReport,
    ) -> Result<IngestOutcome, IngestError> {
        for rejection in &report.rejected {
            self.metrics.rejected(rejection.reason.label());
        }
        for notice in &report.notices {
            self.metrics.noticed(notice.label());
        }
        if !report.rejected.is_empty() {
            tracing::debug!(rejected = report.rejected.len(), first = %report.rejected[0].reason, "records rejected");
        }
        let started = Instant::now();
        let batch = builder.finish();
        let appended = self.store.append(batch).await;
        self.metrics.stage_time("store", started.elapsed());
        let appended = appended?;
        Ok(IngestOutcome {
            stored: appended.stored,
            duplicates: appended.duplicates,
            rejected: report.rejected.len(),
            message: report.message(),
        })
    }

    /// Counts a request refused as a whole.
    pub fn refused(&self, transport: Transport, error: &IngestError) {
        self.metrics.request_rejected(transport.label(), error.label());
        match error {
            IngestError::Storage(storage) => tracing::error!(error = %storage, "storage failed"),
            other => {
                tracing::debug!(transport = transport.label(), error = %other, "request refused")
            }
        }
    }
}

/// The retry delay to advertise when overloaded, if that is the error.
pub fn retry_after(error: &IngestError) -> Option<Duration> {
    match error {
        IngestError::Overloaded { retry_after, .. } => Some(*retry_after),
        IngestError::Storage(_) => Some(Duration::from_secs(5)),
        _ => None,
    }
}
