//! How later stages read the alert stream: in the order alerts were created, each
//! consumer (the responder, the Kafka alert publisher) from its own durable cursor.
//! The detections stage implements it over its alert store; the binary hands it on.

use crate::alert::Alert;

/// Why the feed could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("alert feed: {0}")]
pub struct FeedError(pub String);

pub trait AlertFeed: Send + Sync {
    /// Up to `limit` alerts created after `position`, oldest first, each with its
    /// position in the feed.
    fn created_after(&self, position: i64, limit: usize) -> Result<Vec<(i64, Alert)>, FeedError>;

    /// One alert by id, with its evidence and notes.
    fn get(&self, alert_id: &str) -> Result<Option<Alert>, FeedError>;

    /// Where `consumer` got to; None before its first [`AlertFeed::set_cursor`].
    fn cursor(&self, consumer: &str) -> Result<Option<i64>, FeedError>;

    /// Records durably that `consumer` has handled every alert up to `position`.
    fn set_cursor(&self, consumer: &str, position: i64) -> Result<(), FeedError>;

    /// Adds a note to an alert's history, as `author` (e.g. why an action was held).
    fn add_note(&self, alert_id: &str, author: &str, text: &str) -> Result<(), FeedError>;
}
