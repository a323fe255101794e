//! What every source calls: convert, check, deduplicate, store durably, report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use serde::Serialize;

use bytes::Bytes;

use crate::error::IngestError;
use crate::metrics::IngestMetrics;
use crate::storage::EventStore;
use cordon_schemas::otlp::{convert_request, count_records};
use cordon_schemas::otlp_json::convert_json_request;
use cordon_schemas::otlp_traces::{convert_traces, count_spans};
use cordon_schemas::otlp_wire::convert_encoded_request;
use cordon_schemas::signature::KeyRegistry;
use cordon_schemas::{ConversionReport, EventBatchBuilder, Provenance, flat};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::auth::{Authenticator, ConnectionInfo};

/// The transports events arrive by; each is a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    OtlpGrpc,
    OtlpHttp,
    Kafka,
    OpaLogs,
    /// Falco's alerts (`falco.rs`).
    Falco,
    /// Cordon's own responses, stored back as `cordon.response` events.
    Responder,
    /// Cordon's own signals (matches of `alert = false` rules), as `cordon.signal` events.
    Detections,
}

impl Transport {
    pub fn label(self) -> &'static str {
        self.into()
    }
}

/// A transport's requests with nobody vouching for them: any host id, no producer.
/// Authenticated sources get theirs from `Ingestor::authenticate`.
impl From<Transport> for Provenance {
    fn from(transport: Transport) -> Provenance {
        Provenance::unauthenticated(transport.label())
    }
}

/// What happened to the records of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
    max_clock_skew: Option<Duration>,
    time_bounds: Option<cordon_schemas::TimeBounds>,
    auth: Arc<Authenticator>,
    content: Arc<cordon_schemas::content::ContentPolicy>,
}

/// Requests from this size on are converted on the blocking pool (smaller ones take
/// well under a millisecond, less than the hand-off).
const OFF_RUNTIME_BYTES: usize = 64 << 10;

fn undecodable_json(error: serde_json::Error) -> IngestError {
    IngestError::Undecodable(format!("body is not an OTLP ExportLogsServiceRequest (JSON): {error}"))
}

fn undecodable_protobuf(error: cordon_schemas::otlp_wire::WireError) -> IngestError {
    IngestError::Undecodable(format!("not an OTLP ExportLogsServiceRequest (protobuf): {error}"))
}

impl Ingestor {
    pub fn new(store: Arc<EventStore>, metrics: IngestMetrics) -> Self {
        Ingestor {
            store,
            metrics,
            keys: Arc::new(KeyRegistry::new()),
            max_clock_skew: None,
            time_bounds: None,
            auth: Arc::new(Authenticator::default()),
            content: cordon_schemas::content::ContentPolicy::shared_default(),
        }
    }

    /// Stores producers' unnamed attributes as `policy` says (default: the shipped
    /// allow-list, the rest dropped).
    pub fn with_content_policy(mut self, policy: Arc<cordon_schemas::content::ContentPolicy>) -> Self {
        self.content = policy;
        self
    }

    /// Checks producers' credentials with `auth` (without: every request is taken,
    /// unauthenticated).
    pub fn with_authenticator(mut self, auth: Arc<Authenticator>) -> Self {
        self.auth = auth;
        self
    }

    /// Who sent a request: its provenance, or 401 / `UNAUTHENTICATED` (counted).
    pub fn authenticate(
        &self,
        transport: Transport,
        authorization: Option<&[u8]>,
        connection: Option<&ConnectionInfo>,
    ) -> Result<Provenance, IngestError> {
        self.auth
            .authenticate(transport.label(), authorization, connection)
            .map_err(|error| {
                let error = IngestError::from(error);
                self.refused(transport, &error);
                error
            })
    }

    /// Rejects records whose event time is outside `bounds` around their arrival.
    pub fn with_time_bounds(mut self, bounds: cordon_schemas::TimeBounds) -> Self {
        self.time_bounds = Some(bounds);
        self
    }

    /// Flags events whose time is ahead of their arrival by more than `skew`
    /// (`cordon.clock_ahead_seconds`, notice `clock_ahead`).
    pub fn with_max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = Some(skew);
        self
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

    /// Starts a batch that gathers records from many messages (Kafka, OPA uploads) and
    /// makes them durable with one append.
    pub fn batch(&self, provenance: impl Into<Provenance>) -> IngestBatch<'_> {
        let provenance = provenance.into();
        let transport = provenance.transport;
        IngestBatch {
            ingestor: self,
            transport,
            builder: {
                let mut builder = EventBatchBuilder::with_capacity(1024)
                    .with_keys(self.keys.clone())
                    .with_provenance(provenance)
                    .with_content_policy(self.content.clone());
                if let Some(skew) = self.max_clock_skew {
                    builder = builder.with_max_clock_skew(skew);
                }
                if let Some(bounds) = self.time_bounds {
                    builder = builder.with_time_bounds(bounds);
                }
                if transport == Transport::Responder.label() || transport == Transport::Detections.label() {
                    builder.allowing_own_kinds()
                } else {
                    builder
                }
            },
            report: ConversionReport::default(),
            records: 0,
            received: cordon_schemas::time::now_nanos(),
        }
    }

    /// Stores an OTLP logs request; returns once every accepted record is durable.
    pub async fn ingest_otlp(
        &self,
        provenance: impl Into<Provenance>,
        request: &ExportLogsServiceRequest,
    ) -> Result<IngestOutcome, IngestError> {
        let mut batch = self.batch(provenance);
        batch.add_otlp(request);
        batch.commit().await
    }

    /// Stores an encoded OTLP logs request (protobuf), converting it without materialising
    /// prost structs; returns once every accepted record is durable.
    pub async fn ingest_encoded_otlp(
        &self,
        provenance: impl Into<Provenance>,
        bytes: Bytes,
    ) -> Result<IngestOutcome, IngestError> {
        let mut batch = self.batch(provenance);
        if bytes.len() < OFF_RUNTIME_BYTES {
            batch.add_otlp_proto(&bytes)?;
        } else {
            batch
                .convert_off_runtime(move |builder, received| {
                    convert_encoded_request(&bytes, received, builder).map_err(undecodable_protobuf)
                })
                .await?;
        }
        batch.commit().await
    }

    /// Stores an OTLP/JSON logs request, read borrowing its strings
    /// (`cordon_schemas::otlp_json`); returns once every accepted record is durable.
    pub async fn ingest_otlp_json(
        &self,
        provenance: impl Into<Provenance>,
        bytes: Bytes,
    ) -> Result<IngestOutcome, IngestError> {
        let mut batch = self.batch(provenance);
        if bytes.len() < OFF_RUNTIME_BYTES {
            batch.add_otlp_json(&bytes)?;
        } else {
            batch
                .convert_off_runtime(move |builder, received| {
                    convert_json_request(&bytes, received, builder).map_err(undecodable_json)
                })
                .await?;
        }
        batch.commit().await
    }

    /// Stores an OTLP traces request (protobuf or JSON, as `decode` reads it): one event
    /// per span; returns once every accepted span is durable.
    pub async fn ingest_traces(
        &self,
        provenance: impl Into<Provenance>,
        bytes: Bytes,
        decode: fn(&[u8]) -> Result<ExportTraceServiceRequest, IngestError>,
    ) -> Result<IngestOutcome, IngestError> {
        let mut batch = self.batch(provenance);
        if bytes.len() < OFF_RUNTIME_BYTES {
            batch.add_traces(&decode(&bytes)?);
        } else {
            batch
                .convert_off_runtime(move |builder, received| {
                    let request = decode(&bytes)?;
                    Ok((convert_traces(&request, received, builder), count_spans(&request)))
                })
                .await?;
        }
        batch.commit().await
    }

    /// Stores flat JSON events (contract section 3).
    pub async fn ingest_flat(
        &self,
        provenance: impl Into<Provenance>,
        events: &[serde_json::Value],
    ) -> Result<IngestOutcome, IngestError> {
        let mut batch = self.batch(provenance);
        for event in events {
            batch.add_flat(event);
        }
        batch.commit().await
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

/// Records gathered from one or more messages, stored by one durable append.
///
/// A message that fails to decode (`Err` from an `add_*`) may have left part of its
/// records in the batch: drop the batch and add the other messages to a new one.
pub struct IngestBatch<'a> {
    ingestor: &'a Ingestor,
    /// The transport's label.
    transport: &'static str,
    builder: EventBatchBuilder,
    report: ConversionReport,
    records: usize,
    received: i64,
}

/// What one message added to a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageReport {
    pub records: usize,
    pub rejected: usize,
    /// What was wrong with its records; empty if nothing was.
    pub message: String,
}

impl IngestBatch<'_> {
    /// Records added so far, rejected ones included.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Adds a decoded OTLP logs request.
    pub fn add_otlp(&mut self, request: &ExportLogsServiceRequest) -> MessageReport {
        let started = Instant::now();
        let records = count_records(request);
        let report = convert_request(request, self.received, &mut self.builder);
        self.ingestor.metrics.stage_time("convert", started.elapsed());
        self.absorb(records, report)
    }

    /// Adds a decoded OTLP traces request: one record per span.
    pub fn add_traces(&mut self, request: &ExportTraceServiceRequest) -> MessageReport {
        let started = Instant::now();
        let records = count_spans(request);
        let report = convert_traces(request, self.received, &mut self.builder);
        self.ingestor.metrics.stage_time("convert", started.elapsed());
        self.absorb(records, report)
    }

    /// Adds an OTLP logs request in protobuf, converted without materialising prost
    /// structs.
    pub fn add_otlp_proto(&mut self, bytes: &[u8]) -> Result<MessageReport, IngestError> {
        let started = Instant::now();
        let (report, records) =
            convert_encoded_request(bytes, self.received, &mut self.builder).map_err(undecodable_protobuf)?;
        self.ingestor.metrics.stage_time("convert", started.elapsed());
        Ok(self.absorb(records, report))
    }

    /// Runs `convert` (decoding and converting one request into the batch's builder) on
    /// the blocking pool: a large request takes up to a second of CPU, and on the
    /// runtime it would hold up everything else its worker runs (the API, other
    /// exports, the listeners' timeouts).
    async fn convert_off_runtime<F>(&mut self, convert: F) -> Result<MessageReport, IngestError>
    where
        F: FnOnce(&mut EventBatchBuilder, i64) -> Result<(ConversionReport, usize), IngestError> + Send + 'static,
    {
        let started = Instant::now();
        let received = self.received;
        let mut builder = std::mem::replace(&mut self.builder, EventBatchBuilder::with_capacity(0));
        let (builder, converted) = tokio::task::spawn_blocking(move || {
            let converted = convert(&mut builder, received);
            (builder, converted)
        })
        .await
        .map_err(|error| IngestError::Undecodable(format!("the conversion of the request stopped: {error}")))?;
        self.builder = builder;
        let (report, records) = converted?;
        self.ingestor.metrics.stage_time("convert", started.elapsed());
        Ok(self.absorb(records, report))
    }

    /// Adds an OTLP logs request in OTLP JSON, read borrowing its strings.
    pub fn add_otlp_json(&mut self, bytes: &[u8]) -> Result<MessageReport, IngestError> {
        let started = Instant::now();
        let (report, records) =
            convert_json_request(bytes, self.received, &mut self.builder).map_err(undecodable_json)?;
        self.ingestor.metrics.stage_time("convert", started.elapsed());
        Ok(self.absorb(records, report))
    }

    /// Adds one flat JSON event given as text.
    pub fn add_flat_json(&mut self, bytes: &[u8]) -> Result<MessageReport, IngestError> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|error| IngestError::Undecodable(format!("not a flat JSON event: {error}")))?;
        Ok(self.add_flat(&value))
    }

    /// Adds one flat JSON event (contract section 3).
    pub fn add_flat(&mut self, event: &serde_json::Value) -> MessageReport {
        let mut report = ConversionReport::default();
        match flat::flat_json_to_event(event) {
            Ok(record) => {
                let outcome = self.builder.append(&record, self.received);
                report.record_mapped(0, outcome, record.mapped_by);
            }
            Err(reason) => report.record(0, Err(reason)),
        }
        self.absorb(1, report)
    }

    fn absorb(&mut self, records: usize, report: ConversionReport) -> MessageReport {
        let summary = MessageReport {
            records,
            rejected: report.rejected.len(),
            message: if report.rejected.is_empty() {
                String::new()
            } else {
                report.message()
            },
        };
        let offset = self.records;
        self.records += records;
        self.report.merge(report, offset);
        summary
    }

    /// Stores every accepted record; returns once they are durable. Counters move here,
    /// so a dropped batch counts nothing.
    pub async fn commit(self) -> Result<IngestOutcome, IngestError> {
        let IngestBatch {
            ingestor,
            transport,
            mut builder,
            report,
            records,
            received,
        } = self;
        // Records refused for a host their credential does not cover become one
        // `cordon.spoofing` finding per host, stored with the rest.
        let findings = builder.append_spoofing_findings(received);
        if findings > 0 {
            tracing::warn!(
                transport,
                findings,
                "a producer sent events for hosts its credential does not cover"
            );
        }
        ingestor.metrics.received(transport, records);
        for rejection in &report.rejected {
            ingestor.metrics.rejected(rejection.reason.label());
        }
        for notice in &report.notices {
            ingestor.metrics.noticed(notice.label());
        }
        for (mapping, count) in &report.mapped {
            ingestor
                .metrics
                .events_mapped
                .get_or_create(&vec![("producer", *mapping)])
                .inc_by(*count as u64);
        }
        if !report.rejected.is_empty() {
            tracing::debug!(rejected = report.rejected.len(), first = %report.rejected[0].reason, "records rejected");
        }
        let started = Instant::now();
        let batch = builder.finish();
        let appended = ingestor.store.append(batch).await;
        ingestor.metrics.stage_time("store", started.elapsed());
        let appended = appended?;
        Ok(IngestOutcome {
            stored: appended.stored,
            duplicates: appended.duplicates,
            rejected: report.rejected.len(),
            message: report.message(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_schemas::FlatEvent;
    use cordon_schemas::otlp::{events_to_request, key_value};
    use prost::Message;

    /// A request that takes a while to convert: 1,000 resource attributes over 4,000
    /// records (each record stores them all).
    fn heavy_request() -> Bytes {
        let events: Vec<FlatEvent> = (0..4_000)
            .map(|n| FlatEvent::new(1_000 + n, "network.flow", "wks-1"))
            .collect();
        let mut request = events_to_request(&events);
        let value = cordon_schemas::AttrValue::Str("v".into());
        let resource = request.resource_logs[0].resource.as_mut().unwrap();
        resource
            .attributes
            .extend((0..1_000).map(|n| key_value(&format!("custom.r{n}"), &value)));
        Bytes::from(request.encode_to_vec())
    }

    #[tokio::test]
    async fn a_large_request_is_converted_off_the_runtime() {
        let bytes = heavy_request();
        let started = Instant::now();
        let mut builder = EventBatchBuilder::with_capacity(16);
        convert_encoded_request(&bytes, cordon_schemas::time::now_nanos(), &mut builder).unwrap();
        let conversion = started.elapsed();
        assert!(
            conversion > Duration::from_millis(100),
            "not heavy enough: {conversion:?}"
        );

        let dir = tempfile::tempdir().unwrap();
        let config = crate::StorageConfig {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let store = EventStore::open(config, IngestMetrics::default(), Duration::from_secs(1), vec![]).unwrap();
        let ingestor = Ingestor::new(store, IngestMetrics::default());
        // On this single-threaded runtime a ticker stands for everything else the
        // runtime serves: it is held up for the whole conversion if that runs here.
        let ticking = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let ticker = tokio::spawn({
            let ticking = ticking.clone();
            async move {
                let mut longest = Duration::ZERO;
                let mut last = Instant::now();
                while ticking.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    longest = longest.max(last.elapsed());
                    last = Instant::now();
                }
                longest
            }
        });
        tokio::task::yield_now().await;
        let outcome = ingestor.ingest_encoded_otlp(Transport::OtlpGrpc, bytes).await.unwrap();
        ticking.store(false, std::sync::atomic::Ordering::Relaxed);
        let longest = ticker.await.unwrap();
        assert_eq!(outcome.stored, 4_000);
        assert!(
            longest < conversion / 3,
            "the runtime stalled for {longest:?} of a {conversion:?} conversion"
        );
    }
}
