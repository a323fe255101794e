//! End-to-end tests of the pipeline, in one test binary (each binary that links
//! DataFusion costs seconds to link).

mod agent_content;
mod agents;
mod api_fuzz;
mod architecture;
mod bad_input;
mod bench_peers;
mod cli;
mod common;
mod console;
mod content_policy;
mod crash;
mod detections;
mod disk_full;
mod duckdb;
mod entity_risk;
mod falco;
mod hostile_input;
mod hunt;
mod hunt_limits;
mod kafka;
mod kafka_broker;
mod kafka_failover;
mod late_data;
mod listeners;
mod metrics;
mod opa;
mod otel_sdk;
mod pki;
mod producer_auth;
mod responder;
mod response_events;
mod response_trust;
mod routes;
mod rule_tooling;
mod triage;
