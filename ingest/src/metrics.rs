//! The ingest stage's metrics. Names follow one scheme across stages
//! (`cordon_events_in_total{stage=...}`, `..._out_total`, `..._rejected_total{reason}`)
//! so one dashboard panel can show the whole pipeline.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use cordon_schemas::stage_metrics::StageMetrics;

type Labels = Vec<(&'static str, &'static str)>;

/// Counters and histograms of ingest and storage. Cheap to clone: clones share values.
#[derive(Clone)]
pub struct IngestMetrics {
    /// The pipeline-wide `cordon_events_in/out/rejected` families: records received
    /// (by transport, before any check), made durable, and rejected (by reason), all
    /// under `stage="ingest"`.
    pub stages: StageMetrics,
    /// Records made durable (a handle into `stages.events_out`).
    pub events_out: Counter,
    /// Records already stored under the same (`host.id`, `event.id`).
    pub events_duplicate: Counter,
    /// OTLP metric data points received, by transport: counted, not stored.
    pub metric_points: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Records a producer mapping rewrote into contract kinds, by producer.
    pub events_mapped: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Records stored, but not as sent (unknown kind, estimated time, content dropped).
    pub event_notices: Family<Labels, Counter>,
    /// Whole requests refused, by transport and reason.
    pub requests_rejected: Family<Labels, Counter>,
    pub wal_commit_seconds: Histogram,
    pub wal_bytes: Counter,
    pub wal_commits: Counter,
    pub buffered_events: Gauge,
    pub flush_seconds: Histogram,
    pub parquet_files_written: Counter,
    pub compactions: Counter,
    pub storage_errors: Counter,
    /// Times the redelivery index hit `storage.dedup_max_keys` and forgot keys early.
    pub dedup_window_shortened: Counter,
    /// Time requests spent per ingest stage: `convert` (protobuf decoding included) and
    /// `store` (deduplication and waiting for the fsync).
    pub stage_seconds: Family<Labels, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// The Kafka source's own metrics (lag, messages, commits, dead letters).
    pub kafka: crate::kafka::KafkaMetrics,
    /// What the listener limits did (every HTTP and gRPC listener, the API's included).
    pub listeners: crate::listener::ListenerMetrics,
    /// 1 while requests without a producer credential are taken.
    pub unauthenticated_allowed: Gauge,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        IngestMetrics::with_stages(&StageMetrics::default())
    }
}

impl IngestMetrics {
    /// Ingest's metrics, counting events in, out and rejected into `stages`.
    pub fn with_stages(stages: &StageMetrics) -> Self {
        IngestMetrics {
            stages: stages.clone(),
            events_out: StageMetrics::counter(&stages.events_out, vec![("stage", "ingest")]),
            events_duplicate: Counter::default(),
            metric_points: Family::default(),
            events_mapped: Family::default(),
            event_notices: Family::default(),
            requests_rejected: Family::default(),
            wal_commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            wal_bytes: Counter::default(),
            wal_commits: Counter::default(),
            buffered_events: Gauge::default(),
            flush_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            parquet_files_written: Counter::default(),
            compactions: Counter::default(),
            storage_errors: Counter::default(),
            dedup_window_shortened: Counter::default(),
            stage_seconds: Family::default(),
            kafka: crate::kafka::KafkaMetrics::default(),
            listeners: crate::listener::ListenerMetrics::default(),
            unauthenticated_allowed: Gauge::default(),
        }
    }

    /// Adds ingest's own metrics to `registry`; the stage families are registered
    /// once, by whoever owns them (`StageMetrics::register`).
    pub fn register(&self, registry: &mut Registry) {
        self.kafka.register(registry);
        self.listeners.register(registry);
        registry.register(
            "cordon_otlp_metric_points",
            "OTLP metric data points received (agents send metrics beside their logs): counted, not stored",
            self.metric_points.clone(),
        );
        registry.register(
            "cordon_events_mapped",
            "Records a producer mapping (Claude Code, Codex, Falco, MCP, GenAI) rewrote into contract kinds, by producer",
            self.events_mapped.clone(),
        );
        registry.register(
            "cordon_events_duplicate",
            "Records already stored under the same host.id and event.id",
            self.events_duplicate.clone(),
        );
        registry.register(
            "cordon_event_notices",
            "Records stored but changed on the way in, by kind",
            self.event_notices.clone(),
        );
        registry.register(
            "cordon_requests_rejected",
            "Whole requests refused, by transport and reason",
            self.requests_rejected.clone(),
        );
        registry.register(
            "cordon_ingest_step_seconds",
            "Time requests spent converting (decoding included) and storing, by step",
            self.stage_seconds.clone(),
        );
        registry.register(
            "cordon_wal_commit_seconds",
            "Time to write and fsync one group commit",
            self.wal_commit_seconds.clone(),
        );
        registry.register(
            "cordon_wal_bytes",
            "Bytes written to the write-ahead log",
            self.wal_bytes.clone(),
        );
        registry.register(
            "cordon_storage_buffered_events",
            "Durable events in memory, not yet in Parquet",
            self.buffered_events.clone(),
        );
        registry.register(
            "cordon_storage_flush_seconds",
            "Time to write buffered events to Parquet",
            self.flush_seconds.clone(),
        );
        registry.register(
            "cordon_parquet_files_written",
            "Parquet files written by flushes and compactions",
            self.parquet_files_written.clone(),
        );
        registry.register(
            "cordon_dedup_window_shortened",
            "Times the redelivery index reached storage.dedup_max_keys and forgot keys before storage.dedup_window",
            self.dedup_window_shortened.clone(),
        );
        registry.register("cordon_compactions", "Partitions compacted", self.compactions.clone());
        registry.register(
            "cordon_ingest_unauthenticated_allowed",
            "1 while events are taken from producers that present no credential (no [[producers.credentials]], or producers.allow_unauthenticated_ingest)",
            self.unauthenticated_allowed.clone(),
        );
        registry.register(
            "cordon_storage_errors",
            "Flush or compaction failures (retried)",
            self.storage_errors.clone(),
        );
    }

    /// Adds the time one request spent in an ingest stage.
    pub fn stage_time(&self, stage: &'static str, elapsed: std::time::Duration) {
        self.stage_seconds
            .get_or_create(&vec![("step", stage)])
            .inc_by(elapsed.as_secs_f64());
    }

    /// Seconds spent in a stage so far.
    pub fn stage_total(&self, stage: &'static str) -> f64 {
        self.stage_seconds.get_or_create(&vec![("step", stage)]).get()
    }

    pub fn received(&self, transport: &'static str, count: usize) {
        self.stages
            .events_in
            .get_or_create(&vec![("stage", "ingest"), ("transport", transport)])
            .inc_by(count as u64);
    }

    pub fn rejected(&self, reason: &'static str) {
        self.stages
            .events_rejected
            .get_or_create(&vec![("stage", "ingest"), ("reason", reason)])
            .inc();
    }

    pub fn request_rejected(&self, transport: &'static str, reason: &'static str) {
        self.requests_rejected
            .get_or_create(&vec![("transport", transport), ("reason", reason)])
            .inc();
    }

    pub fn noticed(&self, kind: &'static str) {
        self.event_notices.get_or_create(&vec![("kind", kind)]).inc();
    }

    /// Current value of the rejected-records counter for a reason (tests, CLI).
    pub fn rejected_count(&self, reason: &'static str) -> u64 {
        self.stages
            .events_rejected
            .get_or_create(&vec![("stage", "ingest"), ("reason", reason)])
            .get()
    }

    /// Current value of the rejected-requests counter.
    pub fn requests_rejected_count(&self, transport: &'static str, reason: &'static str) -> u64 {
        self.requests_rejected
            .get_or_create(&vec![("transport", transport), ("reason", reason)])
            .get()
    }

    pub fn notice_count(&self, kind: &'static str) -> u64 {
        self.event_notices.get_or_create(&vec![("kind", kind)]).get()
    }
}

/// The metrics of a registry in the Prometheus text format.
pub fn encode_text(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("writing to a String cannot fail");
    text
}
