//! Settings of the ingest stage. Every field has a default, so an empty config file
//! runs; unknown fields are refused so a typo is not silently ignored.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The OTLP receivers (contract section 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// OTLP/gRPC listen address.
    pub grpc_listen: SocketAddr,
    /// OTLP/HTTP listen address (`POST /v1/logs`).
    pub http_listen: SocketAddr,
    /// Largest request accepted, as sent (compressed).
    pub max_request_bytes: usize,
    /// Largest request accepted after gzip decompression.
    pub max_decompressed_bytes: usize,
    /// What `Retry-After` tells a producer under back-pressure.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// OTLP/gRPC: bytes one connection may have in flight before Cordon reads them
    /// (HTTP/2 connection window): bytes held unread. What requests hold once read,
    /// on every connection together, is bounded by `listeners.memory_budget_bytes`.
    pub grpc_connection_window_bytes: u32,
    /// OTLP/gRPC: the same for one request (HTTP/2 stream window).
    pub grpc_stream_window_bytes: u32,
    /// TLS for both OTLP listeners (and OPA's route): certificate, key, and a client
    /// CA for mutual TLS. Without it they speak plain text.
    pub tls: Option<crate::listener::TlsConfig>,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            // Loopback until producers have credentials (`[producers]`): Cordon does
            // not take unauthenticated events from the network by default.
            grpc_listen: "127.0.0.1:4317".parse().expect("valid address"),
            http_listen: "127.0.0.1:4318".parse().expect("valid address"),
            max_request_bytes: 8 << 20,
            max_decompressed_bytes: 64 << 20,
            retry_after: Duration::from_secs(1),
            // hyper's 1 MiB default let fewer than two requests of 1,000 records be on
            // the wire at once: a client with 8 in flight waited on window updates, not
            // on Cordon (bench ingest: about 380,000 events/s against 510,000).
            grpc_connection_window_bytes: 32 << 20,
            grpc_stream_window_bytes: 4 << 20,
            tls: None,
        }
    }
}

/// Durable storage: the write-ahead log, the in-memory buffer and Parquet files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Root of everything stored: `wal/`, `events/` (Parquet).
    pub data_dir: PathBuf,
    /// Buffered events are written to Parquet at least this often...
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// ...or as soon as this many are buffered.
    pub flush_max_events: usize,
    /// Past this many buffered events (Parquet writes falling behind), producers are
    /// told to back off.
    pub max_buffered_events: usize,
    /// Batches waiting for the write-ahead log before producers are told to back off.
    pub wal_queue: usize,
    /// How long a (`host.id`, `event.id`) is remembered to drop redeliveries.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    /// Memory bound of the redelivery index (about 40 bytes a key).
    pub dedup_max_keys: usize,
    /// How often partitions are checked for small files to merge.
    #[serde(with = "humantime_serde")]
    pub compaction_interval: Duration,
    /// A partition is compacted once it has this many small files.
    pub compaction_min_files: usize,
    /// Files below this size count as small.
    pub compaction_small_file_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("data"),
            flush_interval: Duration::from_secs(10),
            flush_max_events: 250_000,
            max_buffered_events: 2_000_000,
            wal_queue: 256,
            dedup_window: Duration::from_secs(30 * 60),
            dedup_max_keys: 8_000_000,
            compaction_interval: Duration::from_secs(60),
            compaction_min_files: 8,
            compaction_small_file_bytes: 32 << 20,
        }
    }
}

/// Bounds every record is checked against at the door (`[limits]`). A record outside
/// one is rejected with its own reason and counted; the rest of its request is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Oldest event time accepted, behind its arrival.
    #[serde(with = "humantime_serde")]
    pub max_event_age: Duration,
    /// Newest event time accepted, ahead of its arrival.
    #[serde(with = "humantime_serde")]
    pub max_event_ahead: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let bounds = cordon_schemas::TimeBounds::default();
        LimitsConfig {
            max_event_age: bounds.max_age,
            max_event_ahead: bounds.max_ahead,
        }
    }
}

impl LimitsConfig {
    pub fn time_bounds(&self) -> cordon_schemas::TimeBounds {
        cordon_schemas::TimeBounds {
            max_age: self.max_event_age,
            max_ahead: self.max_event_ahead,
        }
    }

    pub fn validate(&self) -> Result<(), InvalidSetting> {
        check(
            self.max_event_age >= Duration::from_secs(60),
            "limits.max_event_age",
            format!("{:?}", self.max_event_age),
            "at least 1m",
        )?;
        check(
            self.max_event_ahead >= Duration::from_secs(1),
            "limits.max_event_ahead",
            format!("{:?}", self.max_event_ahead),
            "at least 1s",
        )
    }
}

/// `[content]`: which of the producers' attributes that the contract does not name
/// are stored as sent (see `cordon_schemas::content`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContentConfig {
    /// Names stored as sent beside the contract's and the shipped list: exact names or
    /// patterns (`*` one dotted segment, `**` any number).
    pub allow: Vec<String>,
    /// What becomes of the rest: `hash` (a keyed HMAC-SHA256 and the length) or `drop`.
    pub unlisted: cordon_schemas::content::Unlisted,
    /// The HMAC key's file (hex); made with a random key when missing. Default:
    /// `content-hash.key` in the data directory. Keep it to compare hashes over time.
    pub hash_key_file: Option<PathBuf>,
}

/// A setting that is present but cannot work.
#[derive(Debug, thiserror::Error)]
#[error("{field} = {value}: {expected}")]
pub struct InvalidSetting {
    pub field: &'static str,
    pub value: String,
    pub expected: &'static str,
}

fn check(ok: bool, field: &'static str, value: impl ToString, expected: &'static str) -> Result<(), InvalidSetting> {
    if ok {
        Ok(())
    } else {
        Err(InvalidSetting {
            field,
            value: value.to_string(),
            expected,
        })
    }
}

impl OtlpConfig {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        check(
            self.max_request_bytes >= 1024,
            "otlp.max_request_bytes",
            self.max_request_bytes,
            "at least 1024",
        )?;
        check(
            self.max_decompressed_bytes >= self.max_request_bytes,
            "otlp.max_decompressed_bytes",
            self.max_decompressed_bytes,
            "at least otlp.max_request_bytes",
        )?;
        // HTTP/2 allows windows up to 2^31 - 1 bytes (RFC 9113, section 6.9.1).
        const WINDOW_MAX: u32 = (1 << 31) - 1;
        check(
            (65_535..=WINDOW_MAX).contains(&self.grpc_stream_window_bytes),
            "otlp.grpc_stream_window_bytes",
            self.grpc_stream_window_bytes,
            "from 65535 (the HTTP/2 default) to 2147483647",
        )?;
        check(
            (self.grpc_stream_window_bytes..=WINDOW_MAX).contains(&self.grpc_connection_window_bytes),
            "otlp.grpc_connection_window_bytes",
            self.grpc_connection_window_bytes,
            "from otlp.grpc_stream_window_bytes to 2147483647",
        )?;
        check(
            self.grpc_listen != self.http_listen || self.grpc_listen.port() == 0,
            "otlp.http_listen",
            self.http_listen,
            "a different address from otlp.grpc_listen",
        )
    }
}

impl StorageConfig {
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        check(
            !self.data_dir.as_os_str().is_empty(),
            "storage.data_dir",
            "\"\"",
            "a directory path",
        )?;
        check(
            self.flush_interval >= Duration::from_millis(100),
            "storage.flush_interval",
            format!("{:?}", self.flush_interval),
            "at least 100ms",
        )?;
        check(
            self.flush_max_events >= 1,
            "storage.flush_max_events",
            self.flush_max_events,
            "at least 1",
        )?;
        check(
            self.max_buffered_events > self.flush_max_events,
            "storage.max_buffered_events",
            self.max_buffered_events,
            "more than storage.flush_max_events",
        )?;
        check(self.wal_queue >= 1, "storage.wal_queue", self.wal_queue, "at least 1")?;
        check(
            self.dedup_max_keys >= 2,
            "storage.dedup_max_keys",
            self.dedup_max_keys,
            "at least 2",
        )?;
        check(
            self.compaction_min_files >= 2,
            "storage.compaction_min_files",
            self.compaction_min_files,
            "at least 2",
        )
    }

    pub fn wal_dir(&self) -> PathBuf {
        self.data_dir.join("wal")
    }

    pub fn events_dir(&self) -> PathBuf {
        self.data_dir.join("events")
    }
}
