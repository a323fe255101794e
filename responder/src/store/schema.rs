//! The action database's schema as numbered migrations (rusqlite_migration keeps the
//! number in SQLite's `user_version`). A store from before the migrations is at 0 with
//! its tables present: the first migration only creates what is missing, the second
//! adds only the column it may lack, so it takes the same path as a new one.

use rusqlite::{Connection, Transaction};
use rusqlite_migration::{HookResult, M, Migrations};

/// Actions, the append-only audit log, and the audit followers' cursors.
const TABLES: &str = "
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

/// `first_attempt_at` came after the first release; a table made before lacks it.
fn add_first_attempt_at(transaction: &Transaction) -> HookResult {
    let present: bool = transaction.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('actions') WHERE name = 'first_attempt_at'",
        [],
        |row| row.get(0),
    )?;
    if !present {
        transaction.execute_batch("ALTER TABLE actions ADD COLUMN first_attempt_at INTEGER")?;
    }
    Ok(())
}

/// Every migration, oldest first. Append only: a released one never changes.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(TABLES), M::up_with_hook("", add_first_attempt_at)])
}

/// Brings `connection`'s database to the latest schema.
pub fn migrate(connection: &mut Connection) -> Result<(), rusqlite_migration::Error> {
    migrations().to_latest(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migrations_are_valid() {
        migrations().validate().unwrap();
    }
}
