//! The `[listeners]` settings: what every HTTP and gRPC listener (OTLP, OPA, API)
//! allows a client, so idle, slow or greedy clients cannot hold Cordon's sockets or
//! memory.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerConfig {
    /// Open connections per listener; past it a new connection is closed at once
    /// (counted), so a flood on one port leaves the others their sockets.
    pub max_connections: usize,
    /// A request's headers must arrive within this (HTTP/1 slowloris).
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A request's body must arrive within this from its first byte (a stalled upload
    /// gets 408 and its memory back).
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// A connection with no request under way and no bytes moving for this long is
    /// closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// HTTP/2 (OTLP/gRPC): requests under way at once on one connection.
    pub http2_max_streams: u32,
    /// Bytes of request bodies held at once across all listeners, decompressed bytes
    /// included. Past it a request gets back-pressure (429 / RESOURCE_EXHAUSTED).
    pub memory_budget_bytes: usize,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            max_connections: 1000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(120),
            http2_max_streams: 32,
            memory_budget_bytes: 512 << 20,
        }
    }
}

impl ListenerConfig {
    /// The first setting that cannot work, named, with what to set instead.
    pub fn problem(&self) -> Option<String> {
        if self.max_connections == 0 {
            return Some("listeners.max_connections must be at least 1".into());
        }
        for (name, value) in [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                return Some(format!("listeners.{name} must be above 0 (e.g. \"10s\")"));
            }
        }
        if self.http2_max_streams == 0 {
            return Some("listeners.http2_max_streams must be at least 1".into());
        }
        if self.memory_budget_bytes < 1 << 20 {
            return Some("listeners.memory_budget_bytes must be at least 1 MiB (1048576)".into());
        }
        None
    }
}
