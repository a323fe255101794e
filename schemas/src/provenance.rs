//! How an event arrived: the transport, the producer credential that vouched for it
//! (none when the request was not authenticated), whether TLS carried it, and the host
//! ids that credential may speak for. Stored with every event (columns `transport`,
//! `producer`, `tls`) so rules, hunts, alerts and the responder can weigh the evidence.

use std::sync::Arc;

use crate::glob::Glob;

/// Where and how one request's events came in.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// The transport's label (`otlp_grpc`, `otlp_http`, `opa_logs`, `kafka`, ...).
    pub transport: &'static str,
    /// The authenticated producer's configured name; `None`: nobody vouched for it.
    pub producer: Option<Arc<str>>,
    /// Whether the request came over TLS.
    pub tls: bool,
    /// The host ids the producer may send events for.
    pub hosts: HostScope,
}

impl Provenance {
    /// A request nobody authenticated: any host id, no producer.
    pub fn unauthenticated(transport: &'static str) -> Provenance {
        Provenance {
            transport,
            producer: None,
            tls: false,
            hosts: HostScope::Any,
        }
    }
}

/// What evidence a response step needs to run without a person (`trust` of a
/// playbook step): the weakest event it rests on decides.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize, strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum TrustLevel {
    /// Any event, however it arrived.
    Any,
    /// Every event came with a producer credential (`producer` set).
    Authenticated,
    /// Every event came with a producer credential and a valid signature.
    Signed,
}

impl TrustLevel {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The host ids a producer may speak for.
#[derive(Debug, Clone)]
pub enum HostScope {
    /// Any host id (unauthenticated requests, where allowed, and trusted internal writers).
    Any,
    /// Only ids matching one of these patterns.
    Only(Arc<HostPatterns>),
}

impl HostScope {
    pub fn covers(&self, host_id: &str) -> bool {
        match self {
            HostScope::Any => true,
            HostScope::Only(patterns) => patterns.covers(host_id),
        }
    }

    /// The one host a credential speaks for, when it names exactly one (no pattern):
    /// the host of its events that name none (agents send no `host.id` of their own).
    pub fn single_host(&self) -> Option<&str> {
        match self {
            HostScope::Only(patterns) => match patterns.texts.as_slice() {
                [only] if !only.contains(['*', '?', '[']) => Some(only.as_str()),
                _ => None,
            },
            HostScope::Any => None,
        }
    }
}

/// Host-id patterns: exact ids, or globs (`*` any run of characters, `?` one; ASCII
/// case is ignored, as host names ignore it).
pub struct HostPatterns {
    texts: Vec<String>,
    globs: Vec<Glob>,
}

impl std::fmt::Debug for HostPatterns {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_list().entries(&self.texts).finish()
    }
}

impl HostPatterns {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> HostPatterns {
        HostPatterns {
            texts: patterns.iter().map(|pattern| pattern.as_ref().to_string()).collect(),
            globs: patterns
                .iter()
                .map(|pattern| Glob::new(pattern.as_ref(), false))
                .collect(),
        }
    }

    pub fn covers(&self, host_id: &str) -> bool {
        let mut scratch = Vec::new();
        self.globs.iter().any(|glob| glob.matches(host_id, &mut scratch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_cover_exact_ids_and_globs_only() {
        let scope = HostScope::Only(Arc::new(HostPatterns::new(&["wks-0012", "eu-*"])));
        assert!(scope.covers("wks-0012"));
        assert!(scope.covers("WKS-0012"), "host names ignore ASCII case");
        assert!(scope.covers("eu-laptop-7"));
        assert!(!scope.covers("wks-00120"));
        assert!(!scope.covers("ceo-laptop"));
        assert!(!scope.covers("us-eu-1"));
        assert!(HostScope::Any.covers("ceo-laptop"));
        let none = HostScope::Only(Arc::new(HostPatterns::new::<&str>(&[])));
        assert!(!none.covers("wks-0012"));
    }
}
