//! The alert store (SQLite): opening it, and reading alerts back. Matches fold into
//! it in `fold.rs`, analysts triage in `triage.rs`, later stages read it as the alert
//! feed in `feed.rs`; its schema is in `schema.rs`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::model::{Alert, AlertNote, AlertStatus, CloseReason, Evidence, rfc3339};
use crate::error::AlertStoreError;
use crate::settings::{RuleSettings, Severity};

/// Evidence events kept per alert; the total is still counted past it.
pub const DEFAULT_EVIDENCE_CAP: usize = 200;

/// What the rule says about the alerts it raises.
#[derive(Debug, Clone)]
pub struct RuleMeta {
    pub title: String,
    pub severity: Severity,
    pub attack: Vec<String>,
    pub suppression: Duration,
    /// Output fields that keep alerts of one entity apart (`suppress_by`).
    pub suppress_by: Vec<String>,
    pub suppress_missing: crate::settings::MissingField,
}

impl From<&RuleSettings> for RuleMeta {
    fn from(settings: &RuleSettings) -> Self {
        RuleMeta {
            title: settings.title.clone(),
            severity: settings.severity,
            // An alert lists both: ATT&CK's ids and ATLAS's (`AML.T...`) tell apart.
            attack: settings.attack.iter().chain(&settings.atlas).cloned().collect(),
            suppression: settings.suppression,
            suppress_by: settings.suppress_by.clone(),
            suppress_missing: settings.suppress_missing,
        }
    }
}

/// What folding a match did.
#[derive(Debug, Clone, PartialEq)]
pub enum Folded {
    Created(Alert),
    Updated(Alert),
    /// Already folded before (a re-sent event, a replay).
    Unchanged,
}

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub status: Option<AlertStatus>,
    pub rule_id: Option<String>,
    pub host_id: Option<String>,
    pub user_name: Option<String>,
    /// Alerts whose last event is at or after this time (ns).
    pub since: Option<i64>,
    pub limit: usize,
    pub offset: usize,
}

pub struct AlertStore {
    path: PathBuf,
    pub(super) connection: Mutex<Connection>,
    pub(super) evidence_cap: usize,
}

impl AlertStore {
    /// Opens (or creates) the database at `path`; `:memory:` for a throwaway store.
    pub fn open(path: &Path, evidence_cap: usize) -> Result<AlertStore, AlertStoreError> {
        let sqlite = |source| AlertStoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| AlertStoreError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let mut connection = Connection::open(path).map_err(sqlite)?;
        // WAL with full sync: an alert written is an alert kept, even after a power cut.
        // (NORMAL measured no better in `bench detections`.)
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(sqlite)?;
        super::schema::migrate(&mut connection).map_err(|source| AlertStoreError::Migration {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(AlertStore {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
            evidence_cap,
        })
    }

    pub fn in_memory() -> AlertStore {
        AlertStore::open(Path::new(":memory:"), DEFAULT_EVIDENCE_CAP).expect("an in-memory database opens")
    }

    pub(super) fn sqlite(&self) -> impl Fn(rusqlite::Error) -> AlertStoreError + '_ {
        move |source| AlertStoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub fn get(&self, id: &str) -> Result<Option<Alert>, AlertStoreError> {
        let connection = self.connection.lock().expect("alert store lock");
        self.get_in(&connection, id).map_err(self.sqlite())
    }

    pub(super) fn get_in(&self, connection: &Connection, id: &str) -> Result<Option<Alert>, rusqlite::Error> {
        let alert = connection
            .query_row(&format!("{SELECT_ALERT} WHERE id = ?1"), params![id], alert_from_row)
            .optional()?;
        let Some(mut alert) = alert else {
            return Ok(None);
        };
        alert.evidence = evidence_of(connection, &alert.id)?;
        alert.notes = notes_of(connection, &alert.id)?;
        Ok(Some(alert))
    }

    /// Alerts matching `filter`, newest activity first.
    pub fn list(&self, filter: &AlertFilter) -> Result<Vec<Alert>, AlertStoreError> {
        let connection = self.connection.lock().expect("alert store lock");
        let mut sql = format!("{SELECT_ALERT} WHERE 1 = 1");
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        let mut add = |clause: &str, value: rusqlite::types::Value| {
            values.push(value);
            sql.push_str(&format!(" AND {clause} ?{}", values.len()));
        };
        if let Some(status) = filter.status {
            add("status =", status.as_str().to_string().into());
        }
        if let Some(rule) = &filter.rule_id {
            add("rule_id =", rule.clone().into());
        }
        if let Some(host) = &filter.host_id {
            add("host_id =", host.clone().into());
        }
        if let Some(user) = &filter.user_name {
            add("user_name =", user.clone().into());
        }
        if let Some(since) = filter.since {
            add("last_seen >=", since.into());
        }
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        // SQLite's integers are signed: past i64::MAX there is nothing anyway.
        sql.push_str(&format!(
            " ORDER BY last_seen DESC, id LIMIT {} OFFSET {}",
            limit.min(i64::MAX as usize),
            filter.offset.min(i64::MAX as usize)
        ));
        let run = || -> Result<Vec<Alert>, rusqlite::Error> {
            let mut statement = connection.prepare(&sql)?;
            let mut alerts: Vec<Alert> = statement
                .query_map(rusqlite::params_from_iter(values.iter()), alert_from_row)?
                .collect::<Result<_, _>>()?;
            for alert in &mut alerts {
                alert.evidence = evidence_of(&connection, &alert.id)?;
            }
            Ok(alerts)
        };
        run().map_err(self.sqlite())
    }

    /// Alerts created after position `after` in creation order, oldest first, with
    /// their positions: a consumer that keeps the last position it handled (the
    /// responder) sees every alert once, across restarts. Positions are SQLite rowids,
    /// which only grow because alerts are never deleted.
    pub fn created_after(&self, after: i64, limit: usize) -> Result<Vec<(i64, Alert)>, AlertStoreError> {
        let connection = self.connection.lock().expect("alert store lock");
        let run = || -> Result<Vec<(i64, Alert)>, rusqlite::Error> {
            let sql = format!(
                "SELECT rowid, {} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                SELECT_ALERT.trim_start_matches("SELECT ")
            );
            let mut statement = connection.prepare(&sql)?;
            let rows: Vec<(i64, Alert)> = statement
                .query_map(params![after, limit as i64], |row| {
                    let position: i64 = row.get(0)?;
                    Ok((position, alert_from_row_at(row, 1)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(rows.len());
            for (position, mut alert) in rows {
                alert.evidence = evidence_of(&connection, &alert.id)?;
                out.push((position, alert));
            }
            Ok(out)
        };
        run().map_err(self.sqlite())
    }
}

const SELECT_ALERT: &str = "SELECT id, rule_id, title, severity, status, host_id, user_name, agent_id, entity,
    first_seen, last_seen, count, risk, attack, fields, evidence_total, created_at, updated_at, assignee,
    close_reason, detected_after FROM alerts";

fn json_column<T: serde::de::DeserializeOwned>(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text)
        .map_err(|error| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(error)))
}

fn alert_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    alert_from_row_at(row, 0)
}

/// An alert from the columns of SELECT_ALERT starting at column `at`.
fn alert_from_row_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Alert> {
    let severity: String = row.get(at + 3)?;
    let status: String = row.get(at + 4)?;
    let bad = |index: usize, what: String| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, what.into())
    };
    Ok(Alert {
        id: row.get(at)?,
        rule_id: row.get(at + 1)?,
        title: row.get(at + 2)?,
        severity: Severity::parse(&severity).ok_or_else(|| bad(at + 3, format!("severity {severity}")))?,
        status: AlertStatus::parse(&status).ok_or_else(|| bad(at + 4, format!("status {status}")))?,
        host_id: row.get(at + 5)?,
        user_name: row.get(at + 6)?,
        agent_id: row.get(at + 7)?,
        entity: json_column(row, at + 8)?,
        first_seen: rfc3339(row.get(at + 9)?),
        last_seen: rfc3339(row.get(at + 10)?),
        count: row.get::<_, i64>(at + 11)? as u64,
        risk: row.get(at + 12)?,
        attack: json_column(row, at + 13)?,
        fields: json_column(row, at + 14)?,
        evidence: Vec::new(),
        evidence_total: row.get::<_, i64>(at + 15)? as u64,
        created_at: rfc3339(row.get(at + 16)?),
        updated_at: rfc3339(row.get(at + 17)?),
        assignee: row.get(at + 18)?,
        close_reason: row
            .get::<_, Option<String>>(at + 19)?
            .and_then(|reason| CloseReason::parse(&reason)),
        detected_after: row
            .get::<_, Option<i64>>(at + 20)?
            .map(|nanos| nanos.max(0) as f64 / 1e9),
        notes: Vec::new(),
    })
}

fn notes_of(connection: &Connection, alert_id: &str) -> rusqlite::Result<Vec<AlertNote>> {
    let mut statement =
        connection.prepare_cached("SELECT at, author, kind, text FROM alert_notes WHERE alert_id = ?1 ORDER BY seq")?;
    statement
        .query_map(params![alert_id], |row| {
            Ok(AlertNote {
                at: rfc3339(row.get(0)?),
                author: row.get(1)?,
                kind: row.get(2)?,
                text: row.get(3)?,
            })
        })?
        .collect()
}

fn evidence_of(connection: &Connection, alert_id: &str) -> rusqlite::Result<Vec<Evidence>> {
    let mut statement = connection.prepare_cached(
        "SELECT event_id, time, kind, host_id FROM alert_evidence WHERE alert_id = ?1 ORDER BY time, event_id",
    )?;
    statement
        .query_map(params![alert_id], |row| {
            Ok(Evidence {
                event_id: row.get(0)?,
                time: row.get::<_, Option<i64>>(1)?.map(rfc3339),
                kind: row.get(2)?,
                host_id: row.get(3)?,
            })
        })?
        .collect()
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
