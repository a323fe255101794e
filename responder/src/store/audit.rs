//! The append-only audit log (triggers refuse changes), and the cursors of those who
//! follow it (the `cordon.response` events).

use rusqlite::{OptionalExtension, Transaction, params};

use super::{ActionStore, AuditFilter, AuditLine};
use crate::error::ResponderError;
use crate::model::{AuditEntry, now_nanos, rfc3339};

pub(super) fn audit_in(
    transaction: &Transaction<'_>,
    action_id: &str,
    action: &str,
    line: &AuditLine,
) -> rusqlite::Result<()> {
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

impl ActionStore {
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
}
