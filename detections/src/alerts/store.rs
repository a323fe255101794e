//! The alert store (SQLite). Matches fold into alerts: at most one open alert per
//! (rule, entity) per suppression period. A match already folded (same evidence, or
//! evidence the alert already holds) changes nothing, so re-sent events and a replay
//! after a restart never raise an alert twice.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::model::{Alert, AlertNote, AlertStatus, CloseReason, Evidence, Triage, rfc3339, risk_score};
use crate::error::AlertStoreError;
use crate::matches::Match;
use crate::settings::{RuleSettings, Severity};

/// Evidence events kept per alert; the total is still counted past it.
pub const DEFAULT_EVIDENCE_CAP: usize = 200;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    entity TEXT NOT NULL,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    attack TEXT NOT NULL,
    status TEXT NOT NULL,
    host_id TEXT,
    user_name TEXT,
    agent_id TEXT,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    count INTEGER NOT NULL,
    risk REAL NOT NULL,
    fields TEXT NOT NULL,
    evidence_total INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_entity ON alerts (rule_id, entity_key, first_seen);
CREATE INDEX IF NOT EXISTS alerts_by_last_seen ON alerts (last_seen);
CREATE TABLE IF NOT EXISTS alert_evidence (
    alert_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    host_id TEXT,
    time INTEGER,
    kind TEXT,
    PRIMARY KEY (alert_id, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_notes (
    alert_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    author TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (alert_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_matches (
    alert_id TEXT NOT NULL,
    match_hash INTEGER NOT NULL,
    PRIMARY KEY (alert_id, match_hash)
) WITHOUT ROWID;
";

/// What the rule says about the alerts it raises.
#[derive(Debug, Clone)]
pub struct RuleMeta {
    pub title: String,
    pub severity: Severity,
    pub attack: Vec<String>,
    pub suppression: Duration,
}

impl From<&RuleSettings> for RuleMeta {
    fn from(settings: &RuleSettings) -> Self {
        RuleMeta {
            title: settings.title.clone(),
            severity: settings.severity,
            attack: settings.attack.clone(),
            suppression: settings.suppression,
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
    connection: Mutex<Connection>,
    evidence_cap: usize,
}

fn match_hash(found: &Match) -> i64 {
    let mut ids: Vec<&str> = found.evidence.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort_unstable();
    xxhash_rust::xxh3::xxh3_64(ids.join("\u{1f}").as_bytes()) as i64
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
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
        let connection = Connection::open(path).map_err(sqlite)?;
        // WAL with full sync: an alert written is an alert kept, even after a power cut.
        // (NORMAL measured no better in `bench detections`.)
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(sqlite)?;
        connection.execute_batch(SCHEMA).map_err(sqlite)?;
        // Columns added after the first release: stores from before get them here.
        for (column, kind) in [
            ("assignee", "TEXT"),
            ("close_reason", "TEXT"),
            ("detected_after", "INTEGER"),
        ] {
            let present: bool = connection
                .query_row(
                    "SELECT count(*) > 0 FROM pragma_table_info('alerts') WHERE name = ?1",
                    params![column],
                    |row| row.get(0),
                )
                .map_err(sqlite)?;
            if !present {
                connection
                    .execute_batch(&format!("ALTER TABLE alerts ADD COLUMN {column} {kind}"))
                    .map_err(sqlite)?;
            }
        }
        Ok(AlertStore {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
            evidence_cap,
        })
    }

    pub fn in_memory() -> AlertStore {
        AlertStore::open(Path::new(":memory:"), DEFAULT_EVIDENCE_CAP).expect("an in-memory database opens")
    }

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> AlertStoreError + '_ {
        move |source| AlertStoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Folds one match into the alerts of its rule and entity.
    pub fn fold(&self, found: &Match, meta: &RuleMeta) -> Result<Folded, AlertStoreError> {
        let mut connection = self.connection.lock().expect("alert store lock");
        let transaction = connection.transaction().map_err(self.sqlite())?;
        let outcome = self.fold_in(&transaction, found, meta).map_err(self.sqlite())?;
        transaction.commit().map_err(self.sqlite())?;
        Ok(match outcome {
            None => Folded::Unchanged,
            Some((id, created)) => {
                let alert = self
                    .get_in(&connection, &id)
                    .map_err(self.sqlite())?
                    .ok_or_else(|| AlertStoreError::Corrupt(format!("alert {id} vanished")))?;
                if created {
                    Folded::Created(alert)
                } else {
                    Folded::Updated(alert)
                }
            }
        })
    }

    fn fold_in(
        &self,
        tx: &Transaction<'_>,
        found: &Match,
        meta: &RuleMeta,
    ) -> Result<Option<(String, bool)>, rusqlite::Error> {
        let entity_key = found.entity_key();
        let hash = match_hash(found);
        let mut statement = tx.prepare_cached(
            "SELECT id, status, first_seen FROM alerts WHERE rule_id = ?1 AND entity_key = ?2
             ORDER BY first_seen DESC LIMIT 32",
        )?;
        let candidates: Vec<(String, String, i64)> = statement
            .query_map(params![found.rule_id, entity_key], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        for (id, _, _) in &candidates {
            let known: bool = tx
                .prepare_cached("SELECT 1 FROM alert_matches WHERE alert_id = ?1 AND match_hash = ?2")?
                .exists(params![id, hash])?;
            if known {
                return Ok(None);
            }
            let mut held = 0usize;
            let mut check = tx.prepare_cached("SELECT 1 FROM alert_evidence WHERE alert_id = ?1 AND event_id = ?2")?;
            for evidence in &found.evidence {
                if check.exists(params![id, evidence.event_id])? {
                    held += 1;
                }
            }
            if held == found.evidence.len() {
                tx.execute(
                    "INSERT OR IGNORE INTO alert_matches (alert_id, match_hash) VALUES (?1, ?2)",
                    params![id, hash],
                )?;
                return Ok(None);
            }
        }
        let suppression = meta.suppression.as_nanos() as i64;
        let target = candidates.iter().find(|(_, status, first_seen)| {
            status != AlertStatus::Closed.as_str() && found.first_seen < first_seen.saturating_add(suppression)
        });
        let now = now_nanos();
        let fields = serde_json::Value::Object(found.fields.clone()).to_string();
        let (id, created) = match target {
            Some((id, _, _)) => {
                tx.execute(
                    "UPDATE alerts SET count = count + 1, first_seen = min(first_seen, ?2),
                     last_seen = max(last_seen, ?3), fields = ?4, updated_at = ?5 WHERE id = ?1",
                    params![id, found.first_seen, found.last_seen, fields, now],
                )?;
                (id.clone(), false)
            }
            None => {
                let id = format!("alr-{}", uuid::Uuid::new_v4().simple());
                let entity = serde_json::to_string(&found.entity).expect("a map of strings serializes");
                let attack = serde_json::to_string(&meta.attack).expect("strings serialize");
                tx.execute(
                    "INSERT INTO alerts (id, rule_id, entity_key, entity, title, severity, attack, status,
                     host_id, user_name, agent_id, first_seen, last_seen, count, risk, fields, evidence_total,
                     created_at, updated_at, detected_after)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8, ?9, ?10, ?11, ?12, 1, 0, ?13, 0, ?14, ?14, ?15)",
                    params![
                        id,
                        found.rule_id,
                        entity_key,
                        entity,
                        meta.title,
                        meta.severity.as_str(),
                        attack,
                        found.value("host_id"),
                        found.value("user_name"),
                        found.value("gen_ai_agent_id"),
                        found.first_seen,
                        found.last_seen,
                        fields,
                        now,
                        found.detected_after
                    ],
                )?;
                (id, true)
            }
        };
        let held: i64 = tx.query_row(
            "SELECT count(*) FROM alert_evidence WHERE alert_id = ?1",
            params![id],
            |row| row.get(0),
        )?;
        let mut room = self.evidence_cap.saturating_sub(held as usize);
        let mut added_total = 0i64;
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO alert_evidence (alert_id, event_id, host_id, time, kind) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut exists = tx.prepare_cached("SELECT 1 FROM alert_evidence WHERE alert_id = ?1 AND event_id = ?2")?;
        for evidence in &found.evidence {
            if exists.exists(params![id, evidence.event_id])? {
                continue;
            }
            added_total += 1;
            if room > 0 {
                insert.execute(params![
                    id,
                    evidence.event_id,
                    evidence.host_id,
                    evidence.time,
                    evidence.kind
                ])?;
                room -= 1;
            }
        }
        tx.execute(
            "INSERT OR IGNORE INTO alert_matches (alert_id, match_hash) VALUES (?1, ?2)",
            params![id, hash],
        )?;
        let (count, evidence_total): (i64, i64) = tx.query_row(
            "UPDATE alerts SET evidence_total = evidence_total + ?2 WHERE id = ?1 RETURNING count, evidence_total",
            params![id, added_total],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        tx.execute(
            "UPDATE alerts SET risk = ?2 WHERE id = ?1",
            params![id, risk_score(meta.severity, count as u64, evidence_total as u64)],
        )?;
        Ok(Some((id, created)))
    }

    pub fn get(&self, id: &str) -> Result<Option<Alert>, AlertStoreError> {
        let connection = self.connection.lock().expect("alert store lock");
        self.get_in(&connection, id).map_err(self.sqlite())
    }

    fn get_in(&self, connection: &Connection, id: &str) -> Result<Option<Alert>, rusqlite::Error> {
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

    /// Applies a triage request by `who`: status, close reason, assignee, note. Each
    /// change is also written to the alert's notes. None when there is no such alert;
    /// an error message when the request does not fit (closing without a reason).
    pub fn triage(
        &self,
        id: &str,
        triage: &Triage,
        who: &str,
    ) -> Result<Result<Option<Alert>, String>, AlertStoreError> {
        let mut connection = self.connection.lock().expect("alert store lock");
        let transaction = connection.transaction().map_err(self.sqlite())?;
        let outcome = self.triage_in(&transaction, id, triage, who).map_err(self.sqlite())?;
        if matches!(outcome, Ok(Some(_))) {
            transaction.commit().map_err(self.sqlite())?;
        }
        Ok(outcome)
    }

    fn triage_in(
        &self,
        transaction: &Transaction<'_>,
        id: &str,
        triage: &Triage,
        who: &str,
    ) -> Result<Result<Option<Alert>, String>, rusqlite::Error> {
        let Some(alert) = self.get_in(transaction, id)? else {
            return Ok(Ok(None));
        };
        let status = triage.status.unwrap_or(alert.status);
        if status == AlertStatus::Closed && triage.close_reason.or(alert.close_reason).is_none() {
            let reasons: Vec<&str> = CloseReason::ALL.iter().map(|reason| reason.as_str()).collect();
            return Ok(Err(format!(
                "closing needs a close_reason: one of {}",
                reasons.join(", ")
            )));
        }
        if triage.close_reason.is_some() && status != AlertStatus::Closed {
            return Ok(Err("a close_reason goes with status closed".into()));
        }
        if let Some(note) = &triage.note
            && note.trim().is_empty()
        {
            return Ok(Err("a note needs text".into()));
        }
        let mut changes = Vec::new();
        if status != alert.status {
            changes.push(format!("status {} -> {}", alert.status.as_str(), status.as_str()));
        }
        let close_reason = match status {
            AlertStatus::Closed => triage.close_reason.or(alert.close_reason),
            _ => None,
        };
        if close_reason != alert.close_reason
            && let Some(reason) = close_reason
        {
            changes.push(format!("closed as {}", reason.as_str()));
        }
        let assignee = match triage.assignee.as_deref().map(str::trim) {
            None => alert.assignee.clone(),
            Some("") => None,
            Some(name) => Some(name.to_string()),
        };
        if assignee != alert.assignee {
            changes.push(match &assignee {
                Some(name) => format!("assigned to {name}"),
                None => "unassigned".to_string(),
            });
        }
        let now = now_nanos();
        transaction.execute(
            "UPDATE alerts SET status = ?2, close_reason = ?3, assignee = ?4, updated_at = ?5 WHERE id = ?1",
            params![
                id,
                status.as_str(),
                close_reason.map(CloseReason::as_str),
                assignee,
                now
            ],
        )?;
        let add = |kind: &str, text: &str| -> Result<(), rusqlite::Error> {
            transaction.execute(
                "INSERT INTO alert_notes (alert_id, seq, at, author, kind, text)
                 VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM alert_notes WHERE alert_id = ?1), ?2, ?3, ?4, ?5)",
                params![id, now, who, kind, text],
            )?;
            Ok(())
        };
        if !changes.is_empty() {
            add("change", &changes.join("; "))?;
        }
        if let Some(note) = &triage.note {
            add("note", note.trim())?;
        }
        Ok(Ok(self.get_in(transaction, id)?))
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
mod tests {
    use super::*;
    use crate::matches::EvidenceRef;
    use std::collections::BTreeMap;

    const MINUTE: i64 = 60_000_000_000;

    fn meta() -> RuleMeta {
        RuleMeta {
            title: "Repeated denies".into(),
            severity: Severity::Medium,
            attack: vec!["T1083".into()],
            suppression: Duration::from_secs(3600),
        }
    }

    fn found(user: &str, ids: &[&str], first: i64, last: i64) -> Match {
        let mut entity = BTreeMap::new();
        entity.insert("user_name".to_string(), Some(user.to_string()));
        Match {
            rule_id: "repeated-policy-denies".into(),
            entity,
            first_seen: first,
            last_seen: last,
            evidence: ids
                .iter()
                .enumerate()
                .map(|(index, id)| EvidenceRef {
                    event_id: id.to_string(),
                    time: Some(first + index as i64),
                    kind: Some("policy.decision".into()),
                    host_id: Some("wks-1".into()),
                })
                .collect(),
            fields: serde_json::Map::new(),
            detected_after: None,
        }
    }

    #[test]
    fn folds_repeats_and_ignores_what_it_has_seen() {
        let store = AlertStore::in_memory();
        let Folded::Created(alert) = store.fold(&found("alice", &["a", "b"], 0, MINUTE), &meta()).unwrap() else {
            panic!("first match creates");
        };
        assert_eq!(alert.count, 1);
        assert_eq!(alert.user_name.as_deref(), Some("alice"));
        assert_eq!(
            store.fold(&found("alice", &["a", "b"], 0, MINUTE), &meta()).unwrap(),
            Folded::Unchanged
        );
        assert_eq!(
            store.fold(&found("alice", &["b"], 0, MINUTE), &meta()).unwrap(),
            Folded::Unchanged,
            "evidence the alert holds is no new match"
        );
        let Folded::Updated(alert) = store
            .fold(&found("alice", &["a", "b", "c"], 0, 2 * MINUTE), &meta())
            .unwrap()
        else {
            panic!("a new match folds");
        };
        assert_eq!((alert.count, alert.evidence.len(), alert.evidence_total), (2, 3, 3));
        assert!(alert.risk > meta().severity.base_risk());
        assert!(matches!(
            store.fold(&found("bob", &["x"], 0, MINUTE), &meta()).unwrap(),
            Folded::Created(_)
        ));
        assert_eq!(store.list(&AlertFilter::default()).unwrap().len(), 2);
    }

    #[test]
    fn triage_changes_status_assignee_and_keeps_a_history() {
        let store = AlertStore::in_memory();
        let Folded::Created(alert) = store.fold(&found("alice", &["a"], 0, MINUTE), &meta()).unwrap() else {
            panic!("created");
        };
        let ack = Triage {
            status: Some(AlertStatus::Acknowledged),
            assignee: Some("carol".into()),
            ..Triage::default()
        };
        let acked = store.triage(&alert.id, &ack, "carol").unwrap().unwrap().unwrap();
        assert_eq!(
            (acked.status, acked.assignee.as_deref()),
            (AlertStatus::Acknowledged, Some("carol"))
        );
        let close = Triage {
            status: Some(AlertStatus::Closed),
            ..Triage::default()
        };
        assert!(
            store
                .triage(&alert.id, &close, "carol")
                .unwrap()
                .unwrap_err()
                .contains("close_reason")
        );
        let close = Triage {
            status: Some(AlertStatus::Closed),
            close_reason: Some(CloseReason::FalsePositive),
            note: Some("the build agent's allowed curl".into()),
            ..Triage::default()
        };
        let closed = store.triage(&alert.id, &close, "dave").unwrap().unwrap().unwrap();
        assert_eq!(closed.close_reason, Some(CloseReason::FalsePositive));
        let history: Vec<(String, String, String)> = closed
            .notes
            .iter()
            .map(|n| (n.author.clone(), n.kind.clone(), n.text.clone()))
            .collect();
        assert_eq!(
            history,
            [
                (
                    "carol".into(),
                    "change".into(),
                    "status open -> acknowledged; assigned to carol".into()
                ),
                (
                    "dave".into(),
                    "change".into(),
                    "status acknowledged -> closed; closed as false_positive".into()
                ),
                ("dave".into(), "note".into(), "the build agent's allowed curl".into()),
            ]
        );
        assert!(store.triage("alr-none", &close, "dave").unwrap().unwrap().is_none());
        // Reopening drops the close reason.
        let reopen = Triage {
            status: Some(AlertStatus::Open),
            ..Triage::default()
        };
        assert_eq!(
            store
                .triage(&alert.id, &reopen, "dave")
                .unwrap()
                .unwrap()
                .unwrap()
                .close_reason,
            None
        );
    }

    #[test]
    fn created_after_walks_alerts_in_creation_order_once() {
        let store = AlertStore::in_memory();
        store.fold(&found("alice", &["a"], 0, MINUTE), &meta()).unwrap();
        store.fold(&found("bob", &["b"], 0, MINUTE), &meta()).unwrap();
        let first = store.created_after(0, 10).unwrap();
        let users: Vec<_> = first.iter().map(|(_, a)| a.user_name.clone().unwrap()).collect();
        assert_eq!(users, ["alice", "bob"]);
        assert_eq!(first[0].1.evidence.len(), 1);
        // A fold into alice's alert is no new alert; carol's is.
        store
            .fold(&found("alice", &["a", "c"], 0, 2 * MINUTE), &meta())
            .unwrap();
        store.fold(&found("carol", &["d"], 0, MINUTE), &meta()).unwrap();
        let after = store.created_after(first[1].0, 10).unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].1.user_name.as_deref(), Some("carol"));
        assert_eq!(
            store.created_after(first[0].0, 1).unwrap()[0].1.user_name.as_deref(),
            Some("bob")
        );
    }

    #[test]
    fn a_new_alert_after_the_suppression_period_or_once_closed() {
        let store = AlertStore::in_memory();
        let Folded::Created(first) = store.fold(&found("alice", &["a"], 0, 0), &meta()).unwrap() else {
            panic!()
        };
        assert!(matches!(
            store
                .fold(&found("alice", &["b"], 61 * MINUTE, 61 * MINUTE), &meta())
                .unwrap(),
            Folded::Created(_)
        ));
        let close = Triage {
            status: Some(AlertStatus::Closed),
            close_reason: Some(CloseReason::Duplicate),
            ..Triage::default()
        };
        store.triage(&first.id, &close, "test").unwrap().unwrap().unwrap();
        let filter = AlertFilter {
            status: Some(AlertStatus::Closed),
            ..AlertFilter::default()
        };
        assert_eq!(store.list(&filter).unwrap().len(), 1);
    }

    #[test]
    fn evidence_is_capped_but_counted_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.db");
        let ids: Vec<String> = (0..10).map(|i| format!("e{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        {
            let store = AlertStore::open(&path, 4).unwrap();
            store.fold(&found("alice", &refs, 0, MINUTE), &meta()).unwrap();
        }
        let store = AlertStore::open(&path, 4).unwrap();
        let alerts = store.list(&AlertFilter::default()).unwrap();
        assert_eq!((alerts[0].evidence.len(), alerts[0].evidence_total), (4, 10));
        assert_eq!(
            store.fold(&found("alice", &refs, 0, MINUTE), &meta()).unwrap(),
            Folded::Unchanged,
            "the same match after a restart is not folded twice"
        );
    }
}
