//! Durable event storage: write-ahead log, in-memory recent events, Parquet files.

mod background;
pub mod compaction;
pub mod dedup;
mod inflight;
pub mod partition;
pub mod readers;
pub mod snapshot;
pub mod store;
pub mod wal;

pub use snapshot::Snapshot;
pub use store::{Appended, BatchListener, EventStore, read_snapshot};
