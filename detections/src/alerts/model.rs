//! The alert model lives in the leaf crate (`cordon_schemas::alert`): the responder,
//! the API and the alert publisher read it without importing this stage.

pub use cordon_schemas::alert::{
    Alert, AlertNote, AlertStatus, CloseReason, Evidence, Severity, Triage, rfc3339, risk_score,
};
