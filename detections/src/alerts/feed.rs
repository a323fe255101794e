//! The alert store as the alert feed later stages read: creation order, one durable
//! cursor per consumer, kept in the same database as the alerts.

use cordon_schemas::alert::{Alert, Triage};
use cordon_schemas::alert_feed::{AlertFeed, FeedError};
use rusqlite::{OptionalExtension, params};

use super::store::AlertStore;

fn feed_error(error: impl std::fmt::Display) -> FeedError {
    FeedError(error.to_string())
}

impl AlertFeed for AlertStore {
    fn created_after(&self, position: i64, limit: usize) -> Result<Vec<(i64, Alert)>, FeedError> {
        AlertStore::created_after(self, position, limit).map_err(feed_error)
    }

    fn get(&self, alert_id: &str) -> Result<Option<Alert>, FeedError> {
        AlertStore::get(self, alert_id).map_err(feed_error)
    }

    fn cursor(&self, consumer: &str) -> Result<Option<i64>, FeedError> {
        let connection = self.connection.lock().expect("alert store lock");
        connection
            .query_row(
                "SELECT position FROM feed_cursors WHERE consumer = ?1",
                params![consumer],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.sqlite())
            .map_err(feed_error)
    }

    fn set_cursor(&self, consumer: &str, position: i64) -> Result<(), FeedError> {
        let connection = self.connection.lock().expect("alert store lock");
        connection
            .execute(
                "INSERT INTO feed_cursors (consumer, position) VALUES (?1, ?2)
                 ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
                params![consumer, position],
            )
            .map(|_| ())
            .map_err(self.sqlite())
            .map_err(feed_error)
    }

    fn add_note(&self, alert_id: &str, author: &str, text: &str) -> Result<(), FeedError> {
        let note = Triage {
            note: Some(text.to_string()),
            ..Triage::default()
        };
        match self.triage(alert_id, &note, author).map_err(feed_error)? {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(FeedError(format!("no alert {alert_id}"))),
            Err(refused) => Err(FeedError(refused)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_consumer_keeps_its_own_cursor_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.db");
        {
            let store = AlertStore::open(&path, 10).unwrap();
            let feed: &dyn AlertFeed = &store;
            assert_eq!(feed.cursor("responder").unwrap(), None);
            feed.set_cursor("responder", 7).unwrap();
            feed.set_cursor("kafka-alerts", 3).unwrap();
            feed.set_cursor("responder", 9).unwrap();
        }
        let store = AlertStore::open(&path, 10).unwrap();
        let feed: &dyn AlertFeed = &store;
        assert_eq!(feed.cursor("responder").unwrap(), Some(9));
        assert_eq!(feed.cursor("kafka-alerts").unwrap(), Some(3));
        assert!(feed.add_note("no-such-alert", "responder", "held").is_err());
    }
}
