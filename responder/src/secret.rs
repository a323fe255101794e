//! Webhook secrets. They come from an environment variable or a file, never from
//! the settings file itself, and print as `[redacted]` wherever they are formatted.

use std::fmt;
use std::path::PathBuf;

/// Where a target's secret is read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretSource {
    /// The name of an environment variable holding the secret.
    pub secret_env: Option<String>,
    /// A file holding the secret (surrounding whitespace is ignored).
    pub secret_file: Option<PathBuf>,
}

/// Secret bytes; Debug and Display never show them.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The shortest secret accepted: an HMAC key is only as strong as it is long.
pub const MIN_SECRET_BYTES: usize = 16;

impl SecretSource {
    pub fn is_set(&self) -> bool {
        self.secret_env.is_some() || self.secret_file.is_some()
    }

    /// Reads the secret. Errors name the variable or file, never the value.
    pub fn resolve(&self) -> Result<Secret, String> {
        let value = match (&self.secret_env, &self.secret_file) {
            (Some(variable), None) => std::env::var(variable)
                .map_err(|_| format!("the environment variable {variable} (secret_env) is not set"))?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read secret_file {}: {error}", path.display()))?,
            (None, None) => return Err("set secret_env or secret_file".into()),
            (Some(_), Some(_)) => return Err("set only one of secret_env and secret_file".into()),
        };
        let value = value.trim();
        if value.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the secret is shorter than {MIN_SECRET_BYTES} bytes; generate a random one (e.g. openssl rand -hex 32)"
            ));
        }
        Ok(Secret::new(value.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_secret() {
        let secret = Secret::new("hunter2-hunter2-hunter2");
        assert!(!format!("{secret:?} {secret}").contains("hunter2"));
    }

    #[test]
    fn reads_a_file_and_refuses_short_or_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        let source = SecretSource {
            secret_file: Some(path.clone()),
            ..SecretSource::default()
        };
        assert_eq!(source.resolve().unwrap().expose(), b"0123456789abcdef0123");
        std::fs::write(&path, "short-but-secret").unwrap();
        assert!(source.resolve().is_ok(), "16 bytes is enough");
        std::fs::write(&path, "tiny").unwrap();
        let error = source.resolve().unwrap_err();
        assert!(error.contains("shorter") && !error.contains("tiny"), "{error}");
        let missing = SecretSource {
            secret_env: Some("CORDON_TEST_SURELY_UNSET_SECRET".into()),
            ..SecretSource::default()
        };
        assert!(
            missing
                .resolve()
                .unwrap_err()
                .contains("CORDON_TEST_SURELY_UNSET_SECRET")
        );
    }
}
