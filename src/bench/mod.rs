//! `cordon bench`: benchmarks that print figures (targets live here, not in tests).

pub mod detections;
mod idle_keys;
pub mod ingest;
pub mod kafka;
