//! Cordon's ingest stage: receives agent telemetry, checks it against the contract and
//! stores it durably before acknowledging it.

pub mod auth;
pub mod catalog;
pub mod config;
pub mod error;
pub mod falco;
pub mod json_upload;
pub mod kafka;
pub mod listener;
pub mod metrics;
pub mod opa;
pub mod storage;

pub use config::{ContentConfig, LimitsConfig, OtlpConfig, StorageConfig};
pub use error::{IngestError, StorageError};
pub use metrics::IngestMetrics;
pub mod ingestor;
pub mod otlp;
pub mod sources;

pub use ingestor::{IngestBatch, IngestOutcome, Ingestor, MessageReport, Transport};
