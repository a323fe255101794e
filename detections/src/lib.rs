//! Cordon's detection stage. Detection engineers write rules as folders of SQL and
//! settings under `detections/rules/`; this crate loads and checks them, runs them
//! over event-time windows of newly stored events, and folds their matches into
//! alerts. See `detections/README.md` for how to write a rule.

pub mod alerts;
pub mod anchor;
mod batch_gather;
pub mod bounded_functions;
pub mod clock;
mod cold_rows;
pub mod compile;
pub mod coverage;
pub mod destination;
pub mod engine;
pub mod error;
mod evaluate;
mod fan_out;
pub mod fixtures;
pub mod guard;
pub mod health;
mod held;
mod isolate;
mod key_groups;
mod key_ids;
pub mod lint;
mod live_rule;
pub mod matches;
pub mod metrics;
pub mod params;
mod partition;
pub mod pattern_set;
pub mod process;
pub mod program;
pub mod queue;
pub mod reference;
pub mod reference_match;
pub mod risk;
mod row_times;
pub mod rule;
pub mod rule_done;
pub mod service;
pub mod settings;
pub mod sigma;
pub mod signals;
pub mod slot;
mod sweep_pace;
pub mod udf;
pub mod window;

pub use engine::{Engine, EngineConfig, Processed, RuleStatus};
pub use error::{EvalError, RuleError};
pub use matches::Match;
pub use metrics::DetectionMetrics;
