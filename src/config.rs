//! The server's settings: compiled-in defaults, then a TOML file, then `CORDON_*`
//! environment variables (`CORDON_STORAGE__DATA_DIR=/var/lib/cordon`: section and
//! field joined by a double underscore).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cordon_detections::service::DetectionConfig;
use cordon_ingest::auth::ProducersConfig;
use cordon_ingest::kafka::KafkaConfig;
use cordon_ingest::listener::ListenerConfig;
use cordon_ingest::{LimitsConfig, OtlpConfig, StorageConfig};

use crate::api::ApiConfig;
use cordon_responder::ResponderConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub otlp: OtlpConfig,
    pub kafka: KafkaConfig,
    pub storage: StorageConfig,
    pub limits: LimitsConfig,
    pub detections: DetectionConfig,
    pub api: ApiConfig,
    /// Limits every HTTP and gRPC listener serves under (OTLP, OPA, the API).
    pub listeners: ListenerConfig,
    pub signatures: SignatureConfig,
    pub responder: ResponderConfig,
    /// Who may send events, and for which hosts (`[[producers.credentials]]`).
    pub producers: ProducersConfig,
    /// Which unnamed attributes are stored as sent; the rest hashed or dropped.
    pub content: cordon_ingest::ContentConfig,
}

/// The `[signatures]` settings (contract section 5).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignatureConfig {
    /// CSV of `key_id,public_key` (base64 Ed25519 keys). Without it, every signed
    /// event is `bad`: no signature can be checked against an unknown key.
    pub keys_file: Option<PathBuf>,
}

impl Config {
    /// Loads and checks the settings. `data_dir` (from `--data-dir`) wins over both the
    /// file and the environment.
    pub fn load(file: Option<&Path>, data_dir: Option<PathBuf>) -> anyhow::Result<Config> {
        let config = Config::load_unchecked(file, data_dir)?;
        config.validate()?;
        Ok(config)
    }

    /// Loads the settings without validating them.
    pub fn load_unchecked(file: Option<&Path>, data_dir: Option<PathBuf>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Settings always sit in a section, so a variable without `__` (CORDON_ADMIN_TOKEN,
        // the scripts' CORDON_CACHE) is not a setting.
        figment = figment.merge(
            Env::prefixed("CORDON_")
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        );
        let mut config: Config = figment.extract().map_err(|error| {
            let problems: Vec<String> = error.into_iter().map(describe).collect();
            anyhow::anyhow!("{}", problems.join("\n"))
        })?;
        if let Some(dir) = data_dir {
            config.storage.data_dir = dir;
        }
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.otlp.validate().context("invalid setting")?;
        self.storage.validate().context("invalid setting")?;
        self.limits.validate().context("invalid setting")?;
        self.kafka.validate().context("invalid setting")?;
        if let Some(problem) = self.listeners.problem() {
            anyhow::bail!("invalid setting: {problem}");
        }
        self.detections
            .validate()
            .map_err(|message| anyhow::anyhow!("invalid setting: {message}"))?;
        Ok(())
    }

    /// Where response actions and their audit log are kept.
    pub fn responder_db(&self) -> PathBuf {
        self.responder
            .db
            .clone()
            .unwrap_or_else(|| self.storage.data_dir.join("responder.db"))
    }

    /// Where alerts are kept.
    pub fn alerts_db(&self) -> PathBuf {
        self.detections
            .alerts_db
            .clone()
            .unwrap_or_else(|| self.storage.data_dir.join("alerts.db"))
    }
}

/// One settings error, naming the setting and where its value came from.
fn describe(error: figment::Error) -> String {
    let setting = error
        .path
        .iter()
        .map(|part| part.to_lowercase())
        .collect::<Vec<_>>()
        .join(".");
    let origin = match error.metadata.as_ref() {
        Some(metadata) if metadata.name.contains("environment") => {
            let variable = error
                .path
                .iter()
                .map(|part| part.to_uppercase())
                .collect::<Vec<_>>()
                .join("__");
            format!(" (from the environment variable CORDON_{variable})")
        }
        Some(metadata) => match &metadata.source {
            Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
            _ => String::new(),
        },
        None => String::new(),
    };
    if setting.is_empty() {
        format!("invalid setting{origin}: {}", error.kind)
    } else {
        format!("invalid setting {setting}{origin}: {}", error.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn a_file_overrides_defaults_and_the_flag_overrides_the_file() {
        let file = write("[storage]\nflush_interval = \"3s\"\ndata_dir = \"/from/file\"\n");
        let config = Config::load(Some(file.path()), None).unwrap();
        assert_eq!(config.storage.flush_interval, std::time::Duration::from_secs(3));
        assert_eq!(config.storage.data_dir, PathBuf::from("/from/file"));
        let config = Config::load(Some(file.path()), Some("/flag".into())).unwrap();
        assert_eq!(config.storage.data_dir, PathBuf::from("/flag"));
    }

    #[test]
    fn the_responder_example_parses() {
        let example = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"),
        )
        .join("responder/example.toml");
        let config = Config::load_unchecked(Some(&example), None).unwrap();
        assert_eq!(config.responder.guardrails.protected_hosts, ["dc-*", "srv-prod-*"]);
        assert_eq!(config.responder.targets.len(), 4);
        assert_eq!(
            config.responder.playbooks["repeated-policy-denies"][0].action,
            cordon_schemas::ActionKind::Notify
        );
    }

    #[test]
    fn a_misspelt_setting_names_itself_and_the_valid_ones() {
        let file = write("[storage]\nflush_intervl = \"3s\"\n");
        let message = format!("{:#}", Config::load(Some(file.path()), None).unwrap_err());
        assert!(message.contains("flush_intervl"), "{message}");
        assert!(message.contains("flush_interval"), "{message}");
    }

    #[test]
    fn a_wrong_type_names_the_setting() {
        let file = write("[otlp]\nmax_request_bytes = \"lots\"\n");
        let message = format!("{:#}", Config::load(Some(file.path()), None).unwrap_err());
        assert!(message.contains("max_request_bytes"), "{message}");
    }

    #[test]
    fn a_value_that_cannot_work_says_what_would() {
        let file = write("[storage]\ncompaction_min_files = 1\n");
        let message = format!("{:#}", Config::load(Some(file.path()), None).unwrap_err());
        assert!(
            message.contains("storage.compaction_min_files = 1: at least 2"),
            "{message}"
        );
    }

    #[test]
    fn grpc_windows_must_be_valid_http2_windows() {
        let small = write("[otlp]\ngrpc_stream_window_bytes = 1000\n");
        let message = format!("{:#}", Config::load(Some(small.path()), None).unwrap_err());
        assert!(
            message.contains("otlp.grpc_stream_window_bytes = 1000: from 65535"),
            "{message}"
        );
        let below_stream = write("[otlp]\ngrpc_connection_window_bytes = 1048576\n");
        let message = format!("{:#}", Config::load(Some(below_stream.path()), None).unwrap_err());
        assert!(
            message.contains("otlp.grpc_connection_window_bytes = 1048576: from otlp.grpc_stream_window_bytes"),
            "{message}"
        );
        let fine = write("[otlp]\ngrpc_connection_window_bytes = 8388608\ngrpc_stream_window_bytes = 2097152\n");
        let config = Config::load(Some(fine.path()), None).unwrap();
        assert_eq!(config.otlp.grpc_connection_window_bytes, 8 << 20);
    }
}
