//! `cordon bench`: benchmarks that print figures (targets live here, not in tests).

pub mod detections;
pub mod hunt;
mod idle_keys;
pub mod ingest;
pub mod kafka;
mod latency;
mod otlp_http;
pub mod peers;
mod rule_time;
