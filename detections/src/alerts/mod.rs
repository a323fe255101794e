//! Alerts: what analysts triage, stored durably.

pub mod model;
pub mod store;

pub use model::{Alert, AlertNote, AlertStatus, CloseReason, Evidence, Triage, risk_score};
pub use store::{AlertFilter, AlertStore, Folded, RuleMeta};
