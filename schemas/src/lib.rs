//! Cordon's event contract as code (see `CONTRACT.md` beside this crate): the field
//! names, the event kinds, the one Arrow schema all events are stored in, and the
//! conversions from OTLP LogRecords and flat JSON events into it; and the types that
//! cross stages (alerts, the alert feed, playbook steps and action kinds).

pub mod alert;
pub mod alert_feed;
pub mod batch;
pub mod content;
pub mod falco;
pub mod fields;
pub mod flat;
pub mod glob;
pub mod kind;
pub mod limits;
pub mod opa;
pub mod otlp;
pub mod otlp_json;
#[cfg(test)]
mod otlp_samples;
pub mod otlp_traces;
pub mod otlp_wire;
pub mod producers;
pub mod provenance;
pub mod record;
pub mod redact;
pub mod reject;
pub mod response;
pub mod retry;
pub mod schema;
pub mod signature;
pub mod spoofing;
pub mod stage_metrics;
pub mod time;
pub mod value;

pub use alert::{Alert, Severity};
pub use alert_feed::{AlertFeed, FeedError};
pub use batch::{EventBatchBuilder, SignatureStatus};
pub use flat::FlatEvent;
pub use kind::EventKind;
pub use limits::TimeBounds;
pub use otlp::{ConversionReport, Rejection};
pub use provenance::{HostPatterns, HostScope, Provenance, TrustLevel};
pub use record::EventRecord;
pub use reject::{Notice, RejectReason};
pub use response::{ActionKind, PlaybookSource, ResponseMode, ResponseStep, Target};
pub use schema::event_schema;
pub use value::AttrValue;
