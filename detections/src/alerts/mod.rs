//! Alerts: what analysts triage, stored durably.

pub mod model;
pub mod store;

pub use model::{Alert, AlertStatus, Evidence, risk_score};
pub use store::{AlertFilter, AlertStore, Folded, RuleMeta};
