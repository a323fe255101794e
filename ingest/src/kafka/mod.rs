//! The Kafka source (contract section 1): a consumer-group member that stores each
//! topic's messages in its configured format, at least once, and dead-letters what it
//! cannot read.

pub mod client;
pub mod config;
pub mod consumer;
pub mod dead_letter;
pub mod group;
pub mod metrics;

pub use config::{KafkaConfig, MessageFormat, TopicConfig};
pub use consumer::{KafkaSource, KafkaSourceError};
pub use metrics::KafkaMetrics;
