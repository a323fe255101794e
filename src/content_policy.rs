//! The content policy at start: the allow-list and the HMAC key unlisted attributes
//! are hashed with, kept in a file so hashes stay comparable across restarts.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use cordon_schemas::content::{ContentPolicy, Unlisted};

use crate::config::Config;

/// The policy `config` asks for; reads (or makes) the hash key when hashing.
pub fn content_policy(config: &Config) -> anyhow::Result<Arc<ContentPolicy>> {
    let content = &config.content;
    let key = match content.unlisted {
        Unlisted::Drop => None,
        Unlisted::Hash => {
            let path = content
                .hash_key_file
                .clone()
                .unwrap_or_else(|| config.storage.data_dir.join("content-hash.key"));
            Some(read_or_make_key(&path).with_context(|| format!("content.hash_key_file {}", path.display()))?)
        }
    };
    Ok(Arc::new(ContentPolicy::new(&content.allow, content.unlisted, key)))
}

fn read_or_make_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let key = hex::decode(text.trim()).context("the key file is not hex")?;
        anyhow::ensure!(key.len() >= 16, "the key is shorter than 16 bytes");
        return Ok(key);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Two version-4 UUIDs: 244 bits from the operating system's random source.
    let key: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
        .iter()
        .flat_map(|id| *id.as_bytes())
        .collect();
    let text = hex::encode(&key);
    std::fs::write(path, format!("{text}\n"))?;
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    tracing::info!(path = %path.display(), "made the key unlisted attributes are hashed with");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        let first = content_policy(&config).unwrap();
        let second = content_policy(&config).unwrap();
        assert_eq!(
            first.judge("message", "hi"),
            second.judge("message", "hi"),
            "the same key after a restart"
        );
        std::fs::write(dir.path().join("content-hash.key"), "not hex").unwrap();
        assert!(content_policy(&config).is_err());
    }
}
