//! Errors of the ingest stage, each saying whose move it is.

use std::path::PathBuf;
use std::time::Duration;

/// Storage failures. All are the operator's to fix (disk, permissions), never the
/// producer's, so producers are told to retry.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("the write-ahead log has stopped; check the server log for the disk error")]
    WalStopped,
    #[error("{0}")]
    Corrupt(String),
}

impl StorageError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Why a whole request was not taken. Each maps to a transport status.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Back-pressure: the producer should retry after the given delay.
    #[error("ingest is overloaded ({what}); retry after {retry_after:?}")]
    Overloaded { what: &'static str, retry_after: Duration },
    /// Nothing in the request could be read.
    #[error("{0}")]
    Undecodable(String),
    #[error("request is {size} bytes, over the limit of {limit} bytes; send smaller batches")]
    TooLarge { size: usize, limit: usize },
    #[error("unsupported content type {0:?}; send application/x-protobuf or application/json")]
    UnsupportedMediaType(String),
    /// The body did not arrive within `listeners.body_timeout`.
    #[error("{0}")]
    BodyTimeout(String),
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
    /// No credential, or one that is not right (401 / `UNAUTHENTICATED`).
    #[error("{0}")]
    Unauthenticated(#[from] crate::auth::AuthError),
}

impl IngestError {
    /// The `reason` label of the rejected-requests counter.
    pub fn label(&self) -> &'static str {
        match self {
            IngestError::Overloaded { .. } => "overloaded",
            IngestError::Undecodable(_) => "undecodable",
            IngestError::TooLarge { .. } => "too_large",
            IngestError::UnsupportedMediaType(_) => "unsupported_media_type",
            IngestError::BodyTimeout(_) => "body_timeout",
            IngestError::Storage(_) => "storage",
            IngestError::Unauthenticated(error) => error.label(),
        }
    }
}
