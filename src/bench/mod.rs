//! `cordon bench`: benchmarks that print figures (targets live here, not in tests).

pub mod detections;
pub mod hunt;
mod idle_keys;
pub mod ingest;
pub mod kafka;
pub mod peers;
