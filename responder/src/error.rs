//! The responder's errors. Messages say what to do; none carries a secret.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ResponderError {
    #[error("responder store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("responder store {path}: cannot bring its schema up to date: {source}")]
    Migration {
        path: PathBuf,
        #[source]
        source: rusqlite_migration::Error,
    },
    #[error("cannot create {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid setting responder.{setting}: {message}")]
    Config { setting: String, message: String },
    #[error("no action {0}")]
    NotFound(String),
    /// The request cannot apply to the action as it stands (e.g. approving a sent one).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong (unknown action, missing target).
    #[error("{0}")]
    Invalid(String),
}

impl ResponderError {
    pub fn config(setting: impl Into<String>, message: impl Into<String>) -> Self {
        ResponderError::Config {
            setting: setting.into(),
            message: message.into(),
        }
    }
}
