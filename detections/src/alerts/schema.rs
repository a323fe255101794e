//! The alert database's schema as numbered migrations (rusqlite_migration keeps the
//! number in SQLite's `user_version`). A store from before the migrations is at 0 with
//! its tables present: the first migration only creates what is missing, the second
//! adds only the columns it lacks, so it takes the same path as a new one.

use rusqlite::{Connection, Transaction};
use rusqlite_migration::{HookResult, M, Migrations};

/// The tables of the first release.
const TABLES: &str = "
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

/// Triage and event-time columns, added after the first release.
const ADDED_COLUMNS: [(&str, &str); 3] = [
    ("assignee", "TEXT"),
    ("close_reason", "TEXT"),
    ("detected_after", "INTEGER"),
];

/// One durable cursor per reader of the alert feed (the responder, the Kafka publisher).
const FEED_CURSORS: &str = "
CREATE TABLE IF NOT EXISTS feed_cursors (
    consumer TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;
";

fn add_missing_columns(transaction: &Transaction) -> HookResult {
    for (column, kind) in ADDED_COLUMNS {
        let present: bool = transaction.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('alerts') WHERE name = ?1",
            [column],
            |row| row.get(0),
        )?;
        if !present {
            transaction.execute_batch(&format!("ALTER TABLE alerts ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

/// Every migration, oldest first. Append only: a released one never changes.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(TABLES),
        M::up_with_hook("", add_missing_columns),
        M::up(FEED_CURSORS),
    ])
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

    #[test]
    fn a_store_from_before_the_migrations_gets_what_it_lacks() {
        let mut connection = Connection::open_in_memory().unwrap();
        // A release with the first tables and one of the added columns, no user_version.
        connection.execute_batch(TABLES).unwrap();
        connection
            .execute_batch("ALTER TABLE alerts ADD COLUMN assignee TEXT")
            .unwrap();
        migrate(&mut connection).unwrap();
        let columns: Vec<String> = connection
            .prepare("SELECT name FROM pragma_table_info('alerts')")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (column, _) in ADDED_COLUMNS {
            assert!(columns.iter().any(|name| name == column), "{column} in {columns:?}");
        }
        let cursors: i64 = connection
            .query_row("SELECT count(*) FROM feed_cursors", [], |row| row.get(0))
            .unwrap();
        assert_eq!(cursors, 0);
        // Opening again changes nothing.
        migrate(&mut connection).unwrap();
    }
}
