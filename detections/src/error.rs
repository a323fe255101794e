//! Errors of the detection stage, each naming what the engineer has to fix.

use std::fmt;
use std::path::PathBuf;

/// A place in a rule file: 1-based line and column, when the error has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub file: PathBuf,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// Why a rule could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{at}: {message}")]
    Invalid { at: Position, message: String },
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RuleError {
    pub fn at(file: impl Into<PathBuf>, line: Option<u64>, column: Option<u64>, message: impl Into<String>) -> Self {
        RuleError::Invalid {
            at: Position {
                file: file.into(),
                line,
                column,
            },
            message: message.into(),
        }
    }

    pub fn in_file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        RuleError::at(file, None, None, message)
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuleError::Io {
            path: path.into(),
            source,
        }
    }

    /// Where the error is, if it is in a file.
    pub fn position(&self) -> Option<&Position> {
        match self {
            RuleError::Invalid { at, .. } => Some(at),
            RuleError::Io { .. } => None,
        }
    }
}

/// Why one evaluation of a rule failed. The rule keeps its state and runs again on the
/// next events; the other rules are not affected.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("rule {rule}: {stage}.sql failed: {source}")]
    Query {
        rule: String,
        stage: &'static str,
        #[source]
        source: datafusion::error::DataFusionError,
    },
    #[error(
        "rule {rule}: {stage}.sql took longer than {limit:?} and was stopped; narrow its joins or raise [detections] eval_timeout"
    )]
    Timeout {
        rule: String,
        stage: &'static str,
        limit: std::time::Duration,
    },
    #[error("rule {rule}: match.sql returned {message}")]
    Output { rule: String, message: String },
    #[error(
        "rule {rule}: {events} of {of} events were left out (event ids: {event_ids}) and the others evaluated without them ({tries} tries in parts); backtest those events once the rule handles them: {source}"
    )]
    LeftOut {
        rule: String,
        events: usize,
        of: usize,
        event_ids: String,
        tries: usize,
        #[source]
        source: Box<EvalError>,
    },
}

/// Why the detection service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot load the rules: {0}")]
    Rules(#[from] RuleError),
    #[error(transparent)]
    Alerts(#[from] AlertStoreError),
}

/// Errors of the alert store.
#[derive(Debug, thiserror::Error)]
pub enum AlertStoreError {
    #[error("alert database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("alert database {}: cannot create its folder: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("alert database {}: cannot bring its schema up to date: {source}", path.display())]
    Migration {
        path: PathBuf,
        #[source]
        source: rusqlite_migration::Error,
    },
    #[error("stored alert data is corrupt: {0}")]
    Corrupt(String),
}
