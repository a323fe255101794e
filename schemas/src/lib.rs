//! Cordon's event contract as code (see `CONTRACT.md` beside this crate): the field
//! names, the event kinds, the one Arrow schema all events are stored in, and the
//! conversions from OTLP LogRecords and flat JSON events into it.

pub mod batch;
pub mod content;
pub mod fields;
pub mod flat;
pub mod glob;
pub mod kind;
pub mod limits;
pub mod opa;
pub mod otlp;
pub mod otlp_wire;
pub mod provenance;
pub mod record;
pub mod reject;
pub mod schema;
pub mod signature;
pub mod spoofing;
pub mod stage_metrics;
pub mod value;

pub use batch::{EventBatchBuilder, SignatureStatus};
pub use flat::FlatEvent;
pub use kind::EventKind;
pub use limits::TimeBounds;
pub use otlp::{ConversionReport, Rejection};
pub use provenance::{HostPatterns, HostScope, Provenance, TrustLevel};
pub use record::EventRecord;
pub use reject::{Notice, RejectReason};
pub use schema::event_schema;
pub use value::AttrValue;
