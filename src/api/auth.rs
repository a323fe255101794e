//! Bearer tokens and roles. Tokens are compared in constant time and never logged;
//! a handler states the roles it admits by taking `Caller` and calling `require`.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::ApiState;
use super::config::TokenConfig;
use super::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Analyst,
    Engineer,
    Responder,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Analyst, Role::Engineer, Role::Responder, Role::Admin];

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The environment variable that can carry an admin token.
pub const ADMIN_TOKEN_ENV: &str = "CORDON_ADMIN_TOKEN";

struct Known {
    name: String,
    role: Role,
    secret: Vec<u8>,
}

/// The tokens the server accepts.
pub struct Tokens {
    known: Vec<Known>,
}

impl Tokens {
    /// From the config, resolving `token_env`, plus `CORDON_ADMIN_TOKEN` if set.
    pub fn load(configured: &[TokenConfig]) -> anyhow::Result<Tokens> {
        let mut known = Vec::new();
        for token in configured {
            let secret = match (&token.token, &token.token_env) {
                (Some(secret), None) => secret.clone(),
                (None, Some(variable)) => std::env::var(variable).map_err(|_| {
                    anyhow::anyhow!(
                        "api token `{}`: the environment variable {variable} is not set",
                        token.name
                    )
                })?,
                _ => anyhow::bail!("api token `{}`: give exactly one of token or token_env", token.name),
            };
            if secret.len() < 16 {
                anyhow::bail!(
                    "api token `{}` is shorter than 16 characters; use a random one",
                    token.name
                );
            }
            known.push(Known {
                name: token.name.clone(),
                role: token.role,
                secret: secret.into_bytes(),
            });
        }
        if let Ok(secret) = std::env::var(ADMIN_TOKEN_ENV)
            && !secret.is_empty()
        {
            known.push(Known {
                name: "admin (CORDON_ADMIN_TOKEN)".into(),
                role: Role::Admin,
                secret: secret.into_bytes(),
            });
        }
        Ok(Tokens { known })
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// The holder of `presented`, checking every token so timing tells nothing.
    fn find(&self, presented: &[u8]) -> Option<(&str, Role)> {
        let mut found = None;
        for known in &self.known {
            if bool::from(known.secret.as_slice().ct_eq(presented)) {
                found = Some((known.name.as_str(), known.role));
            }
        }
        found
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// 403 unless the caller holds one of `roles` (admin always may).
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.role == Role::Admin || roles.contains(&self.role) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this needs the role {}; your token has {}",
                roles.iter().map(|role| role.as_str()).collect::<Vec<_>>().join(" or "),
                self.role.as_str()
            ),
        ))
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "send Authorization: Bearer <token> with a token from the server's [api] settings",
            )
        };
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(unauthorized)?;
        let presented = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(unauthorized)?
            .trim();
        let (name, role) = state.tokens.find(presented.as_bytes()).ok_or_else(unauthorized)?;
        Ok(Caller {
            name: name.to_string(),
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_holder_and_refuses_the_rest() {
        let tokens = Tokens::load(&[TokenConfig {
            name: "soc".into(),
            role: Role::Analyst,
            token: Some("0123456789abcdef-analyst".into()),
            token_env: None,
        }])
        .unwrap();
        assert_eq!(
            tokens.find(b"0123456789abcdef-analyst").map(|f| f.1),
            Some(Role::Analyst)
        );
        assert!(tokens.find(b"0123456789abcdef-analys").is_none());
        assert!(tokens.find(b"").is_none());
    }

    #[test]
    fn short_tokens_are_refused() {
        let error = Tokens::load(&[TokenConfig {
            name: "weak".into(),
            role: Role::Admin,
            token: Some("secret".into()),
            token_env: None,
        }]);
        assert!(error.is_err());
    }
}
