//! The action store (SQLite, WAL, synchronous=FULL): actions, their append-only audit
//! log, and the responder's position in the alert stream. Every state change and its
//! audit line commit together, so the log never disagrees with the actions.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::ResponderError;
use crate::model::{Action, ActionState, AuditEntry, Target, WebhookBody, now_nanos, rfc3339};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    alert_id TEXT,
    rule_id TEXT,
    host_id TEXT,
    user_name TEXT,
    token_id TEXT,
    reason TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    automatic INTEGER NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    approval_reason TEXT,
    decided_by TEXT,
    decision_note TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    completed_at INTEGER,
    updated_at INTEGER NOT NULL,
    first_attempt_at INTEGER
);
CREATE INDEX IF NOT EXISTS actions_due ON actions (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS actions_by_alert ON actions (alert_id);
CREATE INDEX IF NOT EXISTS actions_by_time ON actions (requested_at);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    action_id TEXT NOT NULL,
    action TEXT NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    attempt INTEGER,
    status_code INTEGER,
    latency_ms INTEGER,
    error TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_by_action ON audit (action_id, seq);
CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS cursors (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
";

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
    connection: Mutex<Connection>,
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

/// Columns added since the first release, added to a database made before them.
fn add_missing_columns(connection: &Connection) -> rusqlite::Result<()> {
    let has_first_attempt: bool = connection.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('actions') WHERE name = 'first_attempt_at'",
        [],
        |row| row.get(0),
    )?;
    if !has_first_attempt {
        connection.execute_batch("ALTER TABLE actions ADD COLUMN first_attempt_at INTEGER")?;
    }
    Ok(())
}

fn audit_in(transaction: &Transaction<'_>, action_id: &str, action: &str, line: &AuditLine) -> rusqlite::Result<()> {
    transaction.execute(
        "INSERT INTO audit (at, action_id, action, event, actor, attempt, status_code, latency_ms, error, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            now_nanos(),
            action_id,
            action,
            line.event,
            line.actor,
            line.attempt,
            line.status_code,
            line.latency_ms.map(|ms| ms as i64),
            line.error,
            line.detail
        ],
    )?;
    Ok(())
}

fn get_in(connection: &Connection, id: &str) -> rusqlite::Result<Option<Action>> {
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
        let connection = Connection::open(path).map_err(sqlite)?;
        // An action recorded as sent must stay recorded after a power cut, or it
        // would be sent again.
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;")
            .map_err(sqlite)?;
        connection.execute_batch(SCHEMA).map_err(sqlite)?;
        add_missing_columns(&connection).map_err(sqlite)?;
        Ok(ActionStore {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        })
    }

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> ResponderError + '_ {
        move |source| ResponderError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `work` in one transaction.
    fn write<T>(&self, work: impl FnOnce(&Transaction<'_>) -> Result<T, ResponderError>) -> Result<T, ResponderError> {
        let mut connection = self.connection.lock().expect("action store lock");
        let transaction = connection.transaction().map_err(self.sqlite())?;
        let out = work(&transaction)?;
        transaction.commit().map_err(self.sqlite())?;
        Ok(out)
    }

    /// Stores a new action with its `requested` audit line. An action whose id is
    /// already stored is left as it is (None): playbook ids derive from the alert,
    /// so handling an alert twice creates nothing twice.
    pub fn insert(&self, new: &NewAction) -> Result<Option<Action>, ResponderError> {
        let sqlite = self.sqlite();
        self.write(|transaction| {
            let body = &new.body;
            let now = now_nanos();
            let requested_at = chrono::DateTime::parse_from_rfc3339(&body.requested_at)
                .ok()
                .and_then(|time| time.timestamp_nanos_opt())
                .unwrap_or(now);
            let json = serde_json::to_string(body).expect("a webhook body serializes");
            let (approval_reason, last_error, next, completed) = match new.state {
                ActionState::AwaitingApproval => (new.note.clone(), None, None, None),
                ActionState::Failed => (None, new.note.clone(), None, Some(now)),
                _ => (None, None, Some(now), None),
            };
            let inserted = transaction
                .execute(
                    "INSERT OR IGNORE INTO actions (id, action, alert_id, rule_id, host_id, user_name, token_id, reason,
                        requested_by, requested_at, automatic, body, state, approval_reason, last_error,
                        next_attempt_at, completed_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                    params![
                        body.action_id,
                        body.action,
                        body.alert_id,
                        body.rule_id,
                        body.target.host_id,
                        body.target.user_name,
                        body.target.token_id,
                        body.reason,
                        body.requested_by,
                        requested_at,
                        new.automatic,
                        json,
                        new.state.as_str(),
                        approval_reason,
                        last_error,
                        next,
                        completed,
                        now
                    ],
                )
                .map_err(&sqlite)?;
            if inserted == 0 {
                return Ok(None);
            }
            let mut requested = AuditLine::new("requested", body.requested_by.clone()).detail(body.reason.clone());
            if let Some(alert) = &body.alert_id {
                requested.detail = Some(format!("{} (alert {alert})", body.reason));
            }
            audit_in(transaction, &body.action_id, &body.action, &requested).map_err(&sqlite)?;
            match new.state {
                ActionState::AwaitingApproval => {
                    let line = AuditLine::new("held", "responder").detail(new.note.clone().unwrap_or_default());
                    audit_in(transaction, &body.action_id, &body.action, &line).map_err(&sqlite)?;
                }
                ActionState::Failed => {
                    let mut line = AuditLine::new("failed", "responder");
                    line.error = new.note.clone();
                    audit_in(transaction, &body.action_id, &body.action, &line).map_err(&sqlite)?;
                }
                _ => {}
            }
            get_in(transaction, &body.action_id).map_err(&sqlite)
        })
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

    /// Takes up to `limit` pending actions that are due, marking them in flight and
    /// counting the try, so no other worker takes them.
    pub fn claim_due(&self, action: &str, now: i64, limit: usize) -> Result<Vec<Claimed>, ResponderError> {
        let sqlite = self.sqlite();
        self.write(|transaction| {
            let ids: Vec<(String, String)> = {
                let mut statement = transaction
                    .prepare_cached(
                        "SELECT id, body FROM actions WHERE state = 'pending' AND action = ?3 AND next_attempt_at <= ?1
                         ORDER BY next_attempt_at, id LIMIT ?2",
                    )
                    .map_err(&sqlite)?;
                statement
                    .query_map(params![now, limit as i64, action], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map_err(&sqlite)?
                    .collect::<Result<_, _>>()
                    .map_err(&sqlite)?
            };
            let mut claimed = Vec::with_capacity(ids.len());
            for (id, body) in ids {
                let trying_since: i64 = transaction
                    .query_row(
                        "UPDATE actions SET state = 'in_flight', attempts = attempts + 1, updated_at = ?2,
                            first_attempt_at = CASE WHEN attempts = 0 OR first_attempt_at IS NULL THEN ?2
                                                    ELSE first_attempt_at END
                         WHERE id = ?1 RETURNING first_attempt_at",
                        params![id, now],
                        |row| row.get(0),
                    )
                    .map_err(&sqlite)?;
                let action = get_in(transaction, &id)
                    .map_err(&sqlite)?
                    .expect("the action just updated exists");
                claimed.push(Claimed {
                    attempt: action.attempts,
                    action,
                    body,
                    trying_since,
                });
            }
            Ok(claimed)
        })
    }

    /// Records a finished try and what follows from it.
    pub fn finish_attempt(
        &self,
        claimed: &Claimed,
        try_line: Option<AuditLine>,
        after: &After,
    ) -> Result<Action, ResponderError> {
        let sqlite = self.sqlite();
        let id = &claimed.action.id;
        let name = &claimed.action.action;
        self.write(|transaction| {
            let now = now_nanos();
            let (status, error) = try_line
                .as_ref()
                .map_or((None, None), |line| (line.status_code, line.error.clone()));
            if let Some(line) = &try_line {
                audit_in(transaction, id, name, line).map_err(&sqlite)?;
            }
            let (state, next, completed, error, outcome) = match after {
                After::Succeeded => (ActionState::Succeeded, None, Some(now), None, AuditLine::new("succeeded", "responder")),
                After::RetryAt(at) => (
                    ActionState::Pending,
                    Some(*at),
                    None,
                    error,
                    AuditLine::new("retry_scheduled", "responder").detail(format!("next try at {}", rfc3339(*at))),
                ),
                After::Failed(why) => {
                    let mut line = AuditLine::new("failed", "responder");
                    line.error = Some(why.clone());
                    (ActionState::Failed, None, Some(now), Some(why.clone()), line)
                }
                After::DryRun(what) => (
                    ActionState::DryRun,
                    None,
                    Some(now),
                    None,
                    AuditLine::new("dry_run", "responder").detail(what.clone()),
                ),
            };
            let mut outcome = outcome;
            outcome.attempt = Some(claimed.attempt);
            audit_in(transaction, id, name, &outcome).map_err(&sqlite)?;
            transaction
                .execute(
                    "UPDATE actions SET state = ?2, next_attempt_at = ?3, completed_at = ?4, last_status = coalesce(?5, last_status),
                        last_error = ?6, updated_at = ?7 WHERE id = ?1",
                    params![id, state.as_str(), next, completed, status, error, now],
                )
                .map_err(&sqlite)?;
            Ok(get_in(transaction, id).map_err(&sqlite)?.expect("the action exists"))
        })
    }

    /// Moves an action from `from` to pending (due now), or to `to`, recording who did it.
    fn decide(
        &self,
        id: &str,
        allowed: &[ActionState],
        to: ActionState,
        line: AuditLine,
        reset_attempts: bool,
    ) -> Result<Action, ResponderError> {
        let sqlite = self.sqlite();
        self.write(|transaction| {
            let action = get_in(transaction, id)
                .map_err(&sqlite)?
                .ok_or_else(|| ResponderError::NotFound(id.to_string()))?;
            if !allowed.contains(&action.state) {
                return Err(ResponderError::Conflict(format!(
                    "action {id} is {}; this needs it to be {}",
                    action.state.as_str(),
                    allowed
                        .iter()
                        .map(|state| state.as_str())
                        .collect::<Vec<_>>()
                        .join(" or ")
                )));
            }
            let now = now_nanos();
            let (next, completed) = match to {
                ActionState::Pending => (Some(now), None),
                _ => (None, Some(now)),
            };
            let decided = matches!(line.event, "approved" | "denied");
            transaction
                .execute(
                    "UPDATE actions SET state = ?2, next_attempt_at = ?3, completed_at = ?4, updated_at = ?5,
                        decided_by = CASE WHEN ?6 THEN ?7 ELSE decided_by END,
                        decision_note = CASE WHEN ?6 THEN ?8 ELSE decision_note END,
                        attempts = CASE WHEN ?9 THEN 0 ELSE attempts END,
                        last_error = CASE WHEN ?9 THEN NULL ELSE last_error END
                     WHERE id = ?1",
                    params![
                        id,
                        to.as_str(),
                        next,
                        completed,
                        now,
                        decided,
                        line.actor,
                        line.detail,
                        reset_attempts
                    ],
                )
                .map_err(&sqlite)?;
            audit_in(transaction, id, &action.action, &line).map_err(&sqlite)?;
            Ok(get_in(transaction, id).map_err(&sqlite)?.expect("the action exists"))
        })
    }

    pub fn approve(&self, id: &str, who: &str, note: Option<String>) -> Result<Action, ResponderError> {
        let mut line = AuditLine::new("approved", who);
        line.detail = note;
        self.decide(id, &[ActionState::AwaitingApproval], ActionState::Pending, line, false)
    }

    pub fn deny(&self, id: &str, who: &str, note: Option<String>) -> Result<Action, ResponderError> {
        let mut line = AuditLine::new("denied", who);
        line.detail = note;
        self.decide(id, &[ActionState::AwaitingApproval], ActionState::Denied, line, false)
    }

    /// Sends a failed action again with a fresh budget of tries, under the same id.
    pub fn retry(&self, id: &str, who: &str, note: Option<String>) -> Result<Action, ResponderError> {
        let mut line = AuditLine::new("retried", who);
        line.detail = note;
        self.decide(id, &[ActionState::Failed], ActionState::Pending, line, true)
    }

    /// At start-up: tries that were under way when the process stopped are sent
    /// again (same id and Idempotency-Key, so the receiver can tell).
    pub fn resume_interrupted(&self) -> Result<usize, ResponderError> {
        let sqlite = self.sqlite();
        self.write(|transaction| {
            let ids: Vec<(String, String)> = {
                let mut statement = transaction
                    .prepare("SELECT id, action FROM actions WHERE state = 'in_flight'")
                    .map_err(&sqlite)?;
                statement
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map_err(&sqlite)?
                    .collect::<Result<_, _>>()
                    .map_err(&sqlite)?
            };
            let now = now_nanos();
            for (id, action) in &ids {
                transaction
                    .execute(
                        "UPDATE actions SET state = 'pending', next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1",
                        params![id, now],
                    )
                    .map_err(&sqlite)?;
                let line = AuditLine::new("resumed", "responder")
                    .detail("a try was under way when Cordon stopped; sending again under the same action_id");
                audit_in(transaction, id, action, &line).map_err(&sqlite)?;
            }
            Ok(ids.len())
        })
    }

    /// Automatic actions named in `actions` requested since `since` (ns) that were
    /// let through (not held, not denied): what the isolation cap counts.
    pub fn count_automatic_since(
        &self,
        actions: &[&str],
        since: i64,
        user: Option<&str>,
    ) -> Result<u32, ResponderError> {
        if actions.is_empty() {
            return Ok(0);
        }
        let connection = self.connection.lock().expect("action store lock");
        let placeholders = (0..actions.len())
            .map(|i| format!("?{}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        // ?2 NULL counts every user's.
        let sql = format!(
            "SELECT count(*) FROM actions WHERE automatic = 1 AND requested_at >= ?1 AND action IN ({placeholders})
             AND (?2 IS NULL OR user_name = ?2)
             AND state NOT IN ('awaiting_approval', 'denied') AND approval_reason IS NULL"
        );
        let user: rusqlite::types::Value = user.map_or(rusqlite::types::Value::Null, |user| user.to_string().into());
        let mut values: Vec<rusqlite::types::Value> = vec![since.into(), user];
        values.extend(
            actions
                .iter()
                .map(|name| rusqlite::types::Value::from(name.to_string())),
        );
        connection
            .query_row(&sql, rusqlite::params_from_iter(values.iter()), |row| {
                row.get::<_, u32>(0)
            })
            .map_err(self.sqlite())
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

    pub fn cursor(&self, name: &str) -> Result<Option<i64>, ResponderError> {
        let connection = self.connection.lock().expect("action store lock");
        connection
            .query_row("SELECT position FROM cursors WHERE name = ?1", params![name], |row| {
                row.get(0)
            })
            .optional()
            .map_err(self.sqlite())
    }

    pub fn set_cursor(&self, name: &str, position: i64) -> Result<(), ResponderError> {
        let connection = self.connection.lock().expect("action store lock");
        connection
            .execute(
                "INSERT INTO cursors (name, position) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                params![name, position],
            )
            .map_err(self.sqlite())?;
        Ok(())
    }

    /// Audit entries, oldest first: the newest `limit` that match.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, ResponderError> {
        let connection = self.connection.lock().expect("action store lock");
        let limit = if filter.limit == 0 { 200 } else { filter.limit };
        // Following a cursor takes the oldest after it; otherwise the newest.
        let newest_first = if filter.after_seq.is_some() { "" } else { "DESC" };
        let sql = format!(
            "SELECT * FROM (SELECT seq, at, action_id, action, event, actor, attempt, status_code, latency_ms, error, detail
             FROM audit WHERE (?1 IS NULL OR action_id = ?1) AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR seq > ?3)
             ORDER BY seq {newest_first} LIMIT {limit}) ORDER BY seq"
        );
        let run = || -> rusqlite::Result<Vec<AuditEntry>> {
            let mut statement = connection.prepare(&sql)?;
            statement
                .query_map(params![filter.action_id, filter.since, filter.after_seq], |row| {
                    Ok(AuditEntry {
                        seq: row.get(0)?,
                        at: rfc3339(row.get(1)?),
                        action_id: row.get(2)?,
                        action: row.get(3)?,
                        event: row.get(4)?,
                        actor: row.get(5)?,
                        attempt: row.get(6)?,
                        status_code: row.get(7)?,
                        latency_ms: row.get::<_, Option<i64>>(8)?.map(|ms| ms as u64),
                        error: row.get(9)?,
                        detail: row.get(10)?,
                    })
                })?
                .collect()
        };
        run().map_err(self.sqlite())
    }

    /// Runs raw SQL against the audit table; for the test that it refuses changes.
    #[cfg(test)]
    fn execute(&self, sql: &str) -> rusqlite::Result<usize> {
        self.connection.lock().unwrap().execute(sql, [])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(id: &str, action: &str) -> WebhookBody {
        WebhookBody {
            action_id: id.into(),
            action: action.into(),
            alert_id: Some("alr-1".into()),
            rule_id: Some("exfil-attempt-chain".into()),
            target: Target {
                host_id: Some("wks-1".into()),
                user_name: Some("alice".into()),
                token_id: None,
            },
            reason: "test".into(),
            requested_by: "auto".into(),
            requested_at: rfc3339(now_nanos()),
        }
    }

    fn new(id: &str, action: &str, state: ActionState) -> NewAction {
        NewAction {
            body: body(id, action),
            automatic: true,
            state,
            note: (state == ActionState::AwaitingApproval).then(|| "playbook asks for approval".to_string()),
        }
    }

    #[test]
    fn an_action_is_stored_once_and_claimed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ActionStore::open(&dir.path().join("r.db")).unwrap();
        assert!(
            store
                .insert(&new("act-1", "isolate_host", ActionState::Pending))
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .insert(&new("act-1", "isolate_host", ActionState::Pending))
                .unwrap()
                .is_none()
        );
        assert!(
            store.claim_due("notify", now_nanos(), 10).unwrap().is_empty(),
            "claims are per action"
        );
        let claimed = store.claim_due("isolate_host", now_nanos(), 10).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].attempt, 1);
        assert!(
            store.claim_due("isolate_host", now_nanos(), 10).unwrap().is_empty(),
            "in flight is not due"
        );
        let action = store.finish_attempt(&claimed[0], None, &After::Succeeded).unwrap();
        assert_eq!(action.state, ActionState::Succeeded);
        let events: Vec<_> = store
            .audit(&AuditFilter::default())
            .unwrap()
            .into_iter()
            .map(|entry| entry.event)
            .collect();
        assert_eq!(events, ["requested", "succeeded"]);
    }

    #[test]
    fn interrupted_tries_resume_and_decisions_need_the_right_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let first_try;
        {
            let store = ActionStore::open(&path).unwrap();
            store
                .insert(&new("act-1", "revoke_token", ActionState::Pending))
                .unwrap();
            store
                .insert(&new("act-2", "isolate_host", ActionState::AwaitingApproval))
                .unwrap();
            let first = store.claim_due("revoke_token", now_nanos(), 10).unwrap();
            assert_eq!(first.len(), 1);
            first_try = first[0].trying_since;
        }
        let store = ActionStore::open(&path).unwrap();
        assert_eq!(store.resume_interrupted().unwrap(), 1);
        let again = store.claim_due("revoke_token", now_nanos(), 10).unwrap();
        assert_eq!((again[0].action.id.as_str(), again[0].attempt), ("act-1", 2));
        assert_eq!(again[0].trying_since, first_try, "a second try keeps the round's start");

        assert!(matches!(
            store.retry("act-2", "bob", None),
            Err(ResponderError::Conflict(_))
        ));
        let approved = store
            .approve("act-2", "bob", Some("confirmed with the user".into()))
            .unwrap();
        assert_eq!(approved.state, ActionState::Pending);
        assert_eq!(approved.decided_by.as_deref(), Some("bob"));
        assert!(matches!(
            store.deny("act-2", "carol", None),
            Err(ResponderError::Conflict(_))
        ));
        assert!(matches!(
            store.approve("act-9", "bob", None),
            Err(ResponderError::NotFound(_))
        ));
    }

    #[test]
    fn a_database_made_before_first_attempt_at_opens_and_claims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        {
            let store = ActionStore::open(&path).unwrap();
            store.insert(&new("act-1", "notify", ActionState::Pending)).unwrap();
            store
                .execute("ALTER TABLE actions DROP COLUMN first_attempt_at")
                .unwrap();
        }
        let store = ActionStore::open(&path).unwrap();
        let before = now_nanos();
        let claimed = store.claim_due("notify", now_nanos(), 10).unwrap();
        assert!(claimed[0].trying_since >= before);
    }

    #[test]
    fn a_retry_by_hand_starts_a_new_round() {
        let dir = tempfile::tempdir().unwrap();
        let store = ActionStore::open(&dir.path().join("r.db")).unwrap();
        store.insert(&new("act-1", "notify", ActionState::Pending)).unwrap();
        let first = store.claim_due("notify", now_nanos(), 10).unwrap().remove(0);
        store
            .finish_attempt(&first, None, &After::Failed("gave up".into()))
            .unwrap();
        store.retry("act-1", "bob", None).unwrap();
        let later = now_nanos() + 1_000_000_000;
        let again = store.claim_due("notify", later, 10).unwrap().remove(0);
        assert_eq!((again.attempt, again.trying_since), (1, later));
    }

    #[test]
    fn the_audit_log_refuses_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = ActionStore::open(&dir.path().join("r.db")).unwrap();
        store.insert(&new("act-1", "notify", ActionState::Pending)).unwrap();
        let update = store.execute("UPDATE audit SET actor = 'mallory'").unwrap_err();
        assert!(update.to_string().contains("append-only"), "{update}");
        assert!(store.execute("DELETE FROM audit").is_err());
        assert_eq!(store.audit(&AuditFilter::default()).unwrap()[0].actor, "auto");
    }

    #[test]
    fn the_cap_counts_automatic_isolations_let_through() {
        let dir = tempfile::tempdir().unwrap();
        let store = ActionStore::open(&dir.path().join("r.db")).unwrap();
        store
            .insert(&new("act-1", "isolate_host", ActionState::Pending))
            .unwrap();
        store
            .insert(&new("act-2", "isolate_host", ActionState::AwaitingApproval))
            .unwrap();
        store
            .insert(&new("act-3", "revoke_token", ActionState::Pending))
            .unwrap();
        let since = now_nanos() - 60_000_000_000;
        assert_eq!(store.count_automatic_since(&["isolate_host"], since, None).unwrap(), 1);
        let for_alice = store.count_automatic_since(&["isolate_host"], since, Some("alice"));
        assert_eq!(for_alice.unwrap(), 1, "the test actions are alice's");
        let for_bob = store.count_automatic_since(&["isolate_host", "revoke_token"], since, Some("bob"));
        assert_eq!(for_bob.unwrap(), 0);
        assert_eq!(
            store
                .count_automatic_since(&["isolate_host"], now_nanos() + 1, None)
                .unwrap(),
            0
        );
    }
}
