//! The action store (SQLite, WAL, synchronous=FULL): actions and their append-only
//! audit log. Every state change and its audit line commit together, so the log never
//! disagrees with the actions. Opening and reading here; new actions and their tries
//! in `claims.rs`, a responder's decisions in `decisions.rs`, the audit log and its
//! followers' cursors in `audit.rs`, the schema in `schema.rs`.

mod audit;
mod claims;
mod decisions;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::ResponderError;
use crate::model::{Action, ActionState, Target, WebhookBody, rfc3339};

/// A new action, before the store has it.
#[derive(Debug, Clone)]
pub struct NewAction {
    pub body: WebhookBody,
    pub automatic: bool,
    /// Pending (send), AwaitingApproval (hold) or Failed (cannot be sent as asked).
    pub state: ActionState,
    /// Why it is held, or why it failed at once.
    pub note: Option<String>,
}

/// One line for the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditLine {
    pub event: &'static str,
    pub actor: String,
    pub attempt: Option<u32>,
    pub status_code: Option<u16>,
    pub latency_ms: Option<u64>,
    pub error: Option<String>,
    pub detail: Option<String>,
}

impl AuditLine {
    pub fn new(event: &'static str, actor: impl Into<String>) -> AuditLine {
        AuditLine {
            event,
            actor: actor.into(),
            ..AuditLine::default()
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> AuditLine {
        self.detail = Some(detail.into());
        self
    }
}

/// An action taken for a try: its body, and which try this is.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub action: Action,
    pub body: String,
    pub attempt: u32,
    /// When the first try of this round was made (ns): retries stop at the horizon
    /// from it. A responder's retry by hand starts a new round.
    pub trying_since: i64,
}

/// What a finished try leads to.
#[derive(Debug, Clone)]
pub enum After {
    Succeeded,
    /// Try again at this time (ns).
    RetryAt(i64),
    Failed(String),
    DryRun(String),
}

#[derive(Debug, Clone, Default)]
pub struct ActionFilter {
    pub state: Option<ActionState>,
    pub action: Option<String>,
    pub alert_id: Option<String>,
    pub host_id: Option<String>,
    pub limit: usize,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action_id: Option<String>,
    /// Entries at or after this time (ns).
    pub since: Option<i64>,
    /// Only entries after this sequence number, the oldest `limit` of them (a reader
    /// that follows the log with a cursor).
    pub after_seq: Option<i64>,
    /// The newest this many (returned oldest first).
    pub limit: usize,
}

pub struct ActionStore {
    path: PathBuf,
    pub(super) connection: Mutex<Connection>,
}

const SELECT_ACTION: &str = "SELECT id, action, alert_id, rule_id, host_id, user_name, token_id, reason, requested_by,
    requested_at, state, approval_reason, decided_by, decision_note, attempts, next_attempt_at, last_status,
    last_error, completed_at, updated_at FROM actions";

fn action_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Action> {
    let state: String = row.get(10)?;
    Ok(Action {
        id: row.get(0)?,
        action: row.get(1)?,
        alert_id: row.get(2)?,
        rule_id: row.get(3)?,
        target: Target {
            host_id: row.get(4)?,
            user_name: row.get(5)?,
            token_id: row.get(6)?,
        },
        reason: row.get(7)?,
        requested_by: row.get(8)?,
        requested_at: rfc3339(row.get(9)?),
        state: ActionState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(10, rusqlite::types::Type::Text, format!("state {state}").into())
        })?,
        approval_reason: row.get(11)?,
        decided_by: row.get(12)?,
        decision_note: row.get(13)?,
        attempts: row.get(14)?,
        next_attempt_at: row.get::<_, Option<i64>>(15)?.map(rfc3339),
        last_status: row.get(16)?,
        last_error: row.get(17)?,
        completed_at: row.get::<_, Option<i64>>(18)?.map(rfc3339),
        updated_at: rfc3339(row.get(19)?),
    })
}

pub(super) fn get_in(connection: &Connection, id: &str) -> rusqlite::Result<Option<Action>> {
    connection
        .query_row(&format!("{SELECT_ACTION} WHERE id = ?1"), params![id], action_from_row)
        .optional()
}

impl ActionStore {
    pub fn open(path: &Path) -> Result<ActionStore, ResponderError> {
        let sqlite = |source| ResponderError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| ResponderError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let mut connection = Connection::open(path).map_err(sqlite)?;
        // An action recorded as sent must stay recorded after a power cut, or it
        // would be sent again.
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(sqlite)?;
        schema::migrate(&mut connection).map_err(|source| ResponderError::Migration {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(ActionStore {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        })
    }

    pub(super) fn sqlite(&self) -> impl Fn(rusqlite::Error) -> ResponderError + '_ {
        move |source| ResponderError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `work` in one transaction.
    pub(super) fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, ResponderError>,
    ) -> Result<T, ResponderError> {
        let mut connection = self.connection.lock().expect("action store lock");
        let transaction = connection.transaction().map_err(self.sqlite())?;
        let out = work(&transaction)?;
        transaction.commit().map_err(self.sqlite())?;
        Ok(out)
    }
    pub fn get(&self, id: &str) -> Result<Option<Action>, ResponderError> {
        let connection = self.connection.lock().expect("action store lock");
        get_in(&connection, id).map_err(self.sqlite())
    }

    /// The exact body sent on every try.
    pub fn body(&self, id: &str) -> Result<Option<String>, ResponderError> {
        let connection = self.connection.lock().expect("action store lock");
        connection
            .query_row("SELECT body FROM actions WHERE id = ?1", params![id], |row| row.get(0))
            .optional()
            .map_err(self.sqlite())
    }

    /// Actions matching `filter`, newest first.
    pub fn list(&self, filter: &ActionFilter) -> Result<Vec<Action>, ResponderError> {
        let connection = self.connection.lock().expect("action store lock");
        let mut sql = format!("{SELECT_ACTION} WHERE 1 = 1");
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        let mut add = |clause: &str, value: String| {
            values.push(value.into());
            sql.push_str(&format!(" AND {clause} = ?{}", values.len()));
        };
        if let Some(state) = filter.state {
            add("state", state.as_str().into());
        }
        if let Some(action) = &filter.action {
            add("action", action.clone());
        }
        if let Some(alert) = &filter.alert_id {
            add("alert_id", alert.clone());
        }
        if let Some(host) = &filter.host_id {
            add("host_id", host.clone());
        }
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        sql.push_str(&format!(" ORDER BY requested_at DESC, id LIMIT {limit}"));
        let run = || -> rusqlite::Result<Vec<Action>> {
            let mut statement = connection.prepare(&sql)?;
            statement
                .query_map(rusqlite::params_from_iter(values.iter()), action_from_row)?
                .collect()
        };
        run().map_err(self.sqlite())
    }

    /// When the next pending action is due (ns), if any is.
    pub fn next_due(&self) -> Result<Option<i64>, ResponderError> {
        let connection = self.connection.lock().expect("action store lock");
        connection
            .query_row(
                "SELECT min(next_attempt_at) FROM actions WHERE state = 'pending'",
                [],
                |row| row.get(0),
            )
            .map_err(self.sqlite())
    }

    /// Runs raw SQL against the audit table; for the test that it refuses changes.
    #[cfg(test)]
    fn execute(&self, sql: &str) -> rusqlite::Result<usize> {
        self.connection.lock().unwrap().execute(sql, [])
    }
}

#[cfg(test)]
mod tests;
