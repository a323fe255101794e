//! Alerts: what analysts triage, stored durably.

mod feed;
mod fold;
pub mod model;
mod schema;
pub mod store;
mod triage;

pub use model::{Alert, AlertNote, AlertStatus, CloseReason, Evidence, Triage, risk_score};
pub use store::{AlertFilter, AlertStore, Folded, RuleMeta};
