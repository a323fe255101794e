//! Cordon's response stage. When a rule fires, its playbook (the rule's `[[response]]`
//! steps, or the responder's override) becomes actions: signed webhooks (contract
//! section 7) to the tools that revoke tokens and isolate hosts. Actions are durable,
//! retried under one id, held for approval where a playbook or a guardrail says so,
//! and every step is written to an append-only audit log. See `responder/README.md`.

pub mod actions;
pub mod backoff;
pub mod config;
pub mod delivery;
pub mod enrich;
pub mod error;
pub mod guardrails;
pub mod metrics;
pub mod model;
pub mod playbook;
pub mod secret;
pub mod service;
pub mod shown_url;
pub mod signing;
pub mod sink;
pub mod store;
pub mod trust;

pub use config::ResponderConfig;
pub use error::ResponderError;
pub use metrics::ResponderMetrics;
pub use model::{Action, ActionState, AuditEntry, Target};
pub use service::Responder;
