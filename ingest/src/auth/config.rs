//! The `[producers]` settings: who may send events, and for which hosts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducersConfig {
    /// Take requests that present no credential (stored with no `producer`). Without
    /// credentials configured Cordon listens on loopback only unless this is set.
    pub allow_unauthenticated_ingest: bool,
    pub credentials: Vec<CredentialConfig>,
}

/// One producer credential: a bearer token, a client-certificate subject, or both,
/// and the host ids its events may name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// Who holds it: stored with each event it vouches for (`producer`), never the secret.
    pub name: String,
    /// The token itself (prefer `token_env`, `token_file` or `token_sha256`).
    #[serde(default)]
    pub token: Option<String>,
    /// An environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// A file holding the token (surrounding white space ignored).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The token's SHA-256 as hex, so the config file holds no secret.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// A client certificate's subject common name or a DNS/URI subject alternative
    /// name (a glob: `*.fleet.example`) that authenticates as this producer; needs
    /// `tls.client_ca` on the listener.
    #[serde(default)]
    pub client_subject: Option<String>,
    /// Host ids this producer may send events for: exact ids or globs (`eu-*`; `*` for
    /// a Collector that relays a whole fleet). A per-host credential lists its one host.
    pub hosts: Vec<String>,
}
