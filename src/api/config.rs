//! The `[api]` settings.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::auth::Role;

/// One API token. Give the secret itself in `token` or, better, the name of an
/// environment variable holding it in `token_env`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds the token (shown in logs and the audit trail, never the token).
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_env: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    pub tokens: Vec<TokenConfig>,
    pub hunt: HuntConfig,
    /// TLS for the API and console (certificate and key; a client CA is allowed but
    /// API callers authenticate by token).
    pub tls: Option<cordon_ingest::listener::TlsConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            tokens: Vec::new(),
            hunt: HuntConfig::default(),
            tls: None,
        }
    }
}

/// `[api.hunt]`: how hunts, timelines and evidence queries run (apart from ingest).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HuntConfig {
    /// Threads of the hunt runtime: the CPU hunts can take at most (default: half the cores).
    pub threads: usize,
    /// Hunts running at once; more wait up to `queue_wait`, then get 429.
    pub concurrency: usize,
    #[serde(with = "humantime_serde")]
    pub queue_wait: Duration,
    /// A hunt still running after this is stopped.
    #[serde(with = "humantime_serde")]
    pub time_limit: Duration,
}

impl Default for HuntConfig {
    fn default() -> Self {
        HuntConfig {
            // Half the machine at most: ingest and detections keep the rest.
            threads: std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1)),
            concurrency: 2,
            queue_wait: Duration::from_secs(2),
            time_limit: Duration::from_secs(30),
        }
    }
}
