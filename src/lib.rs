//! The `cordon` binary's parts: configuration, server wiring (the one place the
//! stages meet), the command line, the demo, and benchmarks. The pipeline's stages live in the workspace's crates.

pub mod alert_publisher;
pub mod allocator;
pub mod api;
pub mod api_client;
pub mod bench;
pub mod cli;
pub mod config;
pub mod content_policy;
pub mod demo;
pub mod ingest_stage;
pub mod query;
pub mod response_events;
pub mod server;
pub mod signal_events;
pub mod simulate;
pub mod token_lookup;
pub mod trust_boundary;
pub mod yield_points;

pub use config::Config;
pub use server::Server;
