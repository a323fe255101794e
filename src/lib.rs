//! The `cordon` binary's parts: configuration, server wiring, the query and simulate
//! commands, and benchmarks. The pipeline's stages live in the workspace's crates.

pub mod actions_cmd;
pub mod alert_publisher;
pub mod alerts_cmd;
pub mod allocator;
pub mod api;
pub mod api_client;
pub mod bench;
pub mod config;
pub mod content_policy;
pub mod ingest_stage;
pub mod query;
pub mod response_events;
pub mod rules_cmd;
pub mod server;
pub mod simulate;
pub mod token_lookup;
pub mod trust_boundary;
pub mod yield_points;

pub use config::Config;
pub use server::Server;
