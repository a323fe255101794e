//! Producer authentication: which credential a request presents (a bearer token in
//! `Authorization`, what OpenTelemetry SDKs send from `OTEL_EXPORTER_OTLP_HEADERS`, or
//! a client certificate's subject), and so which producer it is and which host ids its
//! events may name. The answer is the request's `Provenance`.

mod config;

use std::collections::HashMap;
use std::sync::Arc;

use cordon_schemas::glob::Glob;
use cordon_schemas::{HostPatterns, HostScope, Provenance};
use sha2::{Digest, Sha256};

pub use config::{CredentialConfig, ProducersConfig};

/// What the listener knows of a connection: put in each request's extensions.
#[derive(Debug, Clone, Default)]
pub struct ConnectionInfo {
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The verified client certificate's common name and subject alternative names
    /// (empty without one).
    pub client_subjects: Arc<[String]>,
}

/// Why a request's credential was not accepted (401 / `UNAUTHENTICATED`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no producer credential: send `Authorization: Bearer <token>` (OTEL_EXPORTER_OTLP_HEADERS) or a client certificate"
    )]
    Missing,
    #[error("the Authorization header is not `Bearer <token>`")]
    Malformed,
    #[error("the bearer token matches no producer credential")]
    UnknownToken,
    #[error("the client certificate ({0}) matches no producer credential's client_subject")]
    UnknownSubject(String),
}

impl AuthError {
    /// The `reason` label of the refused-requests counter.
    pub fn label(&self) -> &'static str {
        match self {
            AuthError::Missing => "unauthenticated",
            AuthError::Malformed | AuthError::UnknownToken | AuthError::UnknownSubject(_) => "bad_credential",
        }
    }
}

/// A credential that cannot work as configured.
#[derive(Debug, thiserror::Error)]
#[error("producers.credentials {name:?}: {problem}")]
pub struct CredentialError {
    pub name: String,
    pub problem: String,
}

struct Producer {
    name: Arc<str>,
    hosts: Arc<HostPatterns>,
}

struct SubjectRule {
    pattern: Glob,
    producer: usize,
}

/// The configured credentials, ready to check requests against.
pub struct Authenticator {
    producers: Vec<Producer>,
    /// SHA-256 of each token: a lookup by digest compares no secret byte by byte.
    tokens: HashMap<[u8; 32], usize>,
    subjects: Vec<SubjectRule>,
    allow_unauthenticated: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Authenticator")
            .field("producers", &self.producers.len())
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .finish()
    }
}

impl Default for Authenticator {
    /// No credentials: every request is unauthenticated (loopback tests, benches).
    fn default() -> Self {
        Authenticator::new(&ProducersConfig::default()).expect("no credentials cannot be wrong")
    }
}

fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

fn credential_digest(credential: &CredentialConfig) -> Result<Option<[u8; 32]>, String> {
    let given = [
        credential.token.is_some(),
        credential.token_env.is_some(),
        credential.token_file.is_some(),
        credential.token_sha256.is_some(),
    ];
    if given.iter().filter(|given| **given).count() > 1 {
        return Err("give the token one way: token, token_env, token_file or token_sha256".into());
    }
    let token = if let Some(token) = &credential.token {
        token.clone()
    } else if let Some(variable) = &credential.token_env {
        std::env::var(variable).map_err(|_| format!("token_env: the environment variable {variable} is not set"))?
    } else if let Some(path) = &credential.token_file {
        std::fs::read_to_string(path).map_err(|error| format!("token_file {}: {error}", path.display()))?
    } else if let Some(hex_digest) = &credential.token_sha256 {
        let bytes = hex::decode(hex_digest.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or("token_sha256 must be 64 hex digits (sha256sum of the token)")?;
        return Ok(Some(bytes));
    } else {
        return Ok(None);
    };
    if token.trim().len() < 16 {
        return Err("the token is shorter than 16 characters: use a long random one (openssl rand -hex 32)".into());
    }
    Ok(Some(token_digest(&token)))
}

impl Authenticator {
    pub fn new(config: &ProducersConfig) -> Result<Authenticator, CredentialError> {
        let mut authenticator = Authenticator {
            producers: Vec::new(),
            tokens: HashMap::new(),
            subjects: Vec::new(),
            allow_unauthenticated: config.allow_unauthenticated_ingest || config.credentials.is_empty(),
        };
        for credential in &config.credentials {
            let fail = |problem: String| CredentialError {
                name: credential.name.clone(),
                problem,
            };
            if credential.name.trim().is_empty() {
                return Err(fail(
                    "name it: the name is stored with each event it vouches for".into(),
                ));
            }
            if credential.hosts.is_empty() {
                return Err(fail(
                    "hosts is empty: list the host ids it may send for (`[\"wks-0012\"]`, `[\"eu-*\"]`, `[\"*\"]`)"
                        .into(),
                ));
            }
            let index = authenticator.producers.len();
            let digest = credential_digest(credential).map_err(fail)?;
            if digest.is_none() && credential.client_subject.is_none() {
                return Err(fail(
                    "give it a token (token_env, token_file, token_sha256) or a client_subject".into(),
                ));
            }
            if let Some(digest) = digest
                && authenticator.tokens.insert(digest, index).is_some()
            {
                return Err(fail("its token is another credential's too: give each its own".into()));
            }
            if let Some(subject) = &credential.client_subject {
                authenticator.subjects.push(SubjectRule {
                    pattern: Glob::new(subject, false),
                    producer: index,
                });
            }
            authenticator.producers.push(Producer {
                name: credential.name.as_str().into(),
                hosts: Arc::new(HostPatterns::new(&credential.hosts)),
            });
        }
        Ok(authenticator)
    }

    /// Whether requests without a credential are taken.
    pub fn allows_unauthenticated(&self) -> bool {
        self.allow_unauthenticated
    }

    /// Whether any credential is configured.
    pub fn has_credentials(&self) -> bool {
        !self.producers.is_empty()
    }

    fn provenance_of(&self, index: usize, transport: &'static str, tls: bool) -> Provenance {
        let producer = &self.producers[index];
        Provenance {
            transport,
            producer: Some(producer.name.clone()),
            tls,
            hosts: HostScope::Only(producer.hosts.clone()),
        }
    }

    /// The provenance of a request with this `Authorization` header value (if any)
    /// over this connection. A credential that is presented must be right, even where
    /// unauthenticated requests are taken.
    pub fn authenticate(
        &self,
        transport: &'static str,
        authorization: Option<&[u8]>,
        connection: Option<&ConnectionInfo>,
    ) -> Result<Provenance, AuthError> {
        let tls = connection.is_some_and(|info| info.tls);
        if let Some(header) = authorization {
            let header = std::str::from_utf8(header).map_err(|_| AuthError::Malformed)?.trim();
            let (scheme, token) = header.split_once(' ').ok_or(AuthError::Malformed)?;
            if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
                return Err(AuthError::Malformed);
            }
            let index = self
                .tokens
                .get(&token_digest(token))
                .copied()
                .ok_or(AuthError::UnknownToken)?;
            return Ok(self.provenance_of(index, transport, tls));
        }
        let subjects = connection.map(|info| &info.client_subjects[..]).unwrap_or_default();
        if !subjects.is_empty() {
            let mut scratch = Vec::new();
            let found = self.subjects.iter().find(|rule| {
                subjects
                    .iter()
                    .any(|subject| rule.pattern.matches(subject, &mut scratch))
            });
            return match found {
                Some(rule) => Ok(self.provenance_of(rule.producer, transport, tls)),
                None if self.allow_unauthenticated => Ok(Provenance {
                    tls,
                    ..Provenance::unauthenticated(transport)
                }),
                None => Err(AuthError::UnknownSubject(subjects.join(", "))),
            };
        }
        if self.allow_unauthenticated {
            Ok(Provenance {
                tls,
                ..Provenance::unauthenticated(transport)
            })
        } else {
            Err(AuthError::Missing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef-collector";

    fn config(allow: bool) -> ProducersConfig {
        ProducersConfig {
            allow_unauthenticated_ingest: allow,
            credentials: vec![
                CredentialConfig {
                    name: "collector-eu".into(),
                    token: Some(TOKEN.into()),
                    hosts: vec!["eu-*".into()],
                    ..Default::default()
                },
                CredentialConfig {
                    name: "wks-0012".into(),
                    client_subject: Some("wks-0012.fleet.example".into()),
                    hosts: vec!["wks-0012".into()],
                    ..Default::default()
                },
            ],
        }
    }

    fn tls_peer(subject: &str) -> ConnectionInfo {
        ConnectionInfo {
            tls: true,
            client_subjects: vec![subject.to_string()].into(),
        }
    }

    #[test]
    fn a_token_or_a_certificate_names_the_producer_and_its_hosts() {
        let auth = Authenticator::new(&config(false)).unwrap();
        let header = format!("Bearer {TOKEN}");
        let by_token = auth.authenticate("otlp_http", Some(header.as_bytes()), None).unwrap();
        assert_eq!(by_token.producer.as_deref(), Some("collector-eu"));
        assert!(!by_token.tls);
        assert!(by_token.hosts.covers("eu-laptop-1") && !by_token.hosts.covers("ceo-laptop"));
        let lower = format!("bearer {TOKEN}");
        assert!(auth.authenticate("otlp_http", Some(lower.as_bytes()), None).is_ok());

        let by_cert = auth
            .authenticate("otlp_grpc", None, Some(&tls_peer("wks-0012.fleet.example")))
            .unwrap();
        assert_eq!(by_cert.producer.as_deref(), Some("wks-0012"));
        assert!(by_cert.tls);
        assert!(by_cert.hosts.covers("wks-0012") && !by_cert.hosts.covers("wks-0013"));
    }

    #[test]
    fn missing_wrong_and_malformed_credentials_are_refused() {
        let auth = Authenticator::new(&config(false)).unwrap();
        assert_eq!(
            auth.authenticate("otlp_http", None, None).unwrap_err(),
            AuthError::Missing
        );
        let wrong = "Bearer 0123456789abcdef-somebody";
        assert_eq!(
            auth.authenticate("otlp_http", Some(wrong.as_bytes()), None)
                .unwrap_err(),
            AuthError::UnknownToken
        );
        assert_eq!(
            auth.authenticate("otlp_http", Some(TOKEN.as_bytes()), None)
                .unwrap_err(),
            AuthError::Malformed
        );
        assert!(matches!(
            auth.authenticate("otlp_grpc", None, Some(&tls_peer("other.example"))),
            Err(AuthError::UnknownSubject(_))
        ));
    }

    #[test]
    fn unauthenticated_requests_only_where_allowed_and_a_wrong_token_never() {
        let allowing = Authenticator::new(&config(true)).unwrap();
        let anonymous = allowing.authenticate("otlp_http", None, None).unwrap();
        assert!(anonymous.producer.is_none() && anonymous.hosts.covers("ceo-laptop"));
        let wrong = "Bearer 0123456789abcdef-somebody";
        assert_eq!(
            allowing
                .authenticate("otlp_http", Some(wrong.as_bytes()), None)
                .unwrap_err(),
            AuthError::UnknownToken
        );
        let open = Authenticator::default();
        assert!(open.allows_unauthenticated() && !open.has_credentials());
        assert!(open.authenticate("otlp_http", None, None).is_ok());
    }

    #[test]
    fn credentials_that_cannot_work_are_refused_at_start() {
        let mut no_hosts = config(false);
        no_hosts.credentials[0].hosts.clear();
        let error = Authenticator::new(&no_hosts).unwrap_err().to_string();
        assert!(error.contains("collector-eu") && error.contains("hosts"), "{error}");
        let mut short = config(false);
        short.credentials[0].token = Some("secret".into());
        assert!(
            Authenticator::new(&short)
                .unwrap_err()
                .to_string()
                .contains("16 characters")
        );
        let mut hashed = config(false);
        hashed.credentials[0].token = None;
        hashed.credentials[0].token_sha256 = Some(hex::encode(token_digest(TOKEN)));
        let auth = Authenticator::new(&hashed).unwrap();
        let header = format!("Bearer {TOKEN}");
        assert!(auth.authenticate("otlp_http", Some(header.as_bytes()), None).is_ok());
        let mut twice = config(false);
        twice.credentials[1].token = Some(TOKEN.into());
        assert!(Authenticator::new(&twice).unwrap_err().to_string().contains("its own"));
    }
}
