//! The `[api]` settings.

use std::net::SocketAddr;

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
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            tokens: Vec::new(),
        }
    }
}
