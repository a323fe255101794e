//! The `[responder]` settings: where each action is sent, how deliveries are retried,
//! the guardrails, dry-run, and playbook overrides.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use cordon_schemas::{ActionKind, ResponseStep};
use serde::{Deserialize, Serialize};

use crate::error::ResponderError;
use crate::secret::{Secret, SecretSource};

/// Headers Cordon sets itself; a target's extra headers may not replace them.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "idempotency-key",
    "x-cordon-timestamp",
    "x-cordon-signature",
    "host",
    "content-length",
];

/// Where one action is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The URL that receives the POST.
    pub url: String,
    /// The environment variable holding the HMAC secret...
    #[serde(default)]
    pub secret_env: Option<String>,
    /// ...or a file holding it. The secret itself never goes in the settings.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// How long one try may take.
    #[serde(with = "humantime_serde", default = "default_timeout")]
    pub timeout: Duration,
    /// Extra headers sent on every try (not for secrets: they are shown by the API).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Record, do not send, this action's deliveries.
    #[serde(default)]
    pub dry_run: bool,
    /// Tries under way at once to this target; default `responder.max_in_flight`.
    /// Each target has its own, so a slow one cannot hold up another.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// Accept an `http://` URL: for a receiver on this machine in a test or demo only,
    /// since the body and its signature would cross the network in clear text.
    #[serde(default)]
    pub allow_http: bool,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl TargetConfig {
    pub fn secret_source(&self) -> SecretSource {
        SecretSource {
            secret_env: self.secret_env.clone(),
            secret_file: self.secret_file.clone(),
        }
    }
}

/// Retries of 429, 5xx, timeouts and connection failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// The delay before the second try; it doubles each try, with jitter.
    #[serde(with = "humantime_serde")]
    pub initial: Duration,
    /// The longest wait between tries: also the most a delivery lags behind a target
    /// that comes back.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// How long after its first try an action is still retried (an outage of the EDR
    /// or IdP can last hours); then it fails and a responder can retry it.
    #[serde(with = "humantime_serde")]
    pub horizon: Duration,
    /// Tries in all before the action fails, if fewer than the horizon allows.
    pub max_attempts: Option<u32>,
    /// The longest `Retry-After` honoured as given; longer ones are cut to this.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            horizon: Duration::from_secs(24 * 3600),
            max_attempts: None,
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

/// Limits on automatic containment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardrailConfig {
    /// Automatic isolations allowed per `isolation_window`; beyond it they wait for
    /// approval (a rule gone wrong must not isolate the fleet).
    pub isolation_cap: u32,
    #[serde(with = "humantime_serde")]
    pub isolation_window: Duration,
    /// Automatic isolations of one user's hosts allowed per `isolation_window`.
    pub isolation_cap_per_user: u32,
    /// Automatic token revocations allowed per `revocation_window`, fleet-wide and for
    /// one user: one forged event must not log the company out.
    pub revocation_cap: u32,
    pub revocation_cap_per_user: u32,
    #[serde(with = "humantime_serde")]
    pub revocation_window: Duration,
    /// Hosts (globs: `dc-*`, `srv-??`) never isolated automatically; a responder may
    /// still approve or request it.
    pub protected_hosts: Vec<String>,
}

impl Default for GuardrailConfig {
    fn default() -> Self {
        GuardrailConfig {
            isolation_cap: 5,
            isolation_window: Duration::from_secs(3600),
            isolation_cap_per_user: 2,
            revocation_cap: 10,
            revocation_cap_per_user: 3,
            revocation_window: Duration::from_secs(3600),
            protected_hosts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponderConfig {
    /// Record what would be sent and send nothing.
    pub dry_run: bool,
    /// The actions and audit database; default `<data_dir>/responder.db`.
    pub db: Option<PathBuf>,
    /// Per action name (`revoke_token`, `isolate_host`, `release_host`, `notify`).
    pub targets: BTreeMap<String, TargetConfig>,
    pub retry: RetryConfig,
    pub guardrails: GuardrailConfig,
    /// Per rule id, steps that replace the rule's own `[[response]]` playbook; an
    /// empty list turns its responses off.
    pub playbooks: BTreeMap<String, Vec<ResponseStep>>,
    /// Alerts older than this when the responder first sees them get no automatic
    /// response (say, after the responder was off for a day).
    #[serde(with = "humantime_serde")]
    pub max_alert_age: Duration,
    /// Deliveries under way at once per target (a target may set its own).
    pub max_in_flight: usize,
    /// How often the responder looks for due retries when nothing wakes it.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Store each response's outcome as a `cordon.response` event, so rules can use
    /// them (`activity-after-isolation`).
    pub outcome_events: bool,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        ResponderConfig {
            dry_run: false,
            db: None,
            targets: BTreeMap::new(),
            retry: RetryConfig::default(),
            guardrails: GuardrailConfig::default(),
            playbooks: BTreeMap::new(),
            max_alert_age: Duration::from_secs(3600),
            max_in_flight: 8,
            poll_interval: Duration::from_millis(500),
            outcome_events: true,
        }
    }
}

impl ResponderConfig {
    /// Checks everything that can be checked without the network, and reads each
    /// target's secret. Errors name the setting.
    pub fn validate(&self) -> Result<(), ResponderError> {
        for (name, target) in &self.targets {
            let setting = |field: &str| format!("targets.{name}.{field}");
            if let Err(unknown) = ActionKind::parse(name) {
                return Err(ResponderError::config(format!("targets.{name}"), unknown));
            }
            let url = reqwest::Url::parse(&target.url).map_err(|error| {
                ResponderError::config(setting("url"), format!("{:?} is not a URL: {error}", target.url))
            })?;
            match url.scheme() {
                "https" => {}
                "http" if target.allow_http => {}
                "http" => {
                    return Err(ResponderError::config(
                        setting("url"),
                        "http:// would send the action and its signature in clear text: use https://, or set allow_http = true for a local test receiver",
                    ));
                }
                _ => return Err(ResponderError::config(setting("url"), "use an https:// URL")),
            }
            if target.max_in_flight == Some(0) {
                return Err(ResponderError::config(setting("max_in_flight"), "at least 1"));
            }
            if target.timeout.is_zero() {
                return Err(ResponderError::config(
                    setting("timeout"),
                    "must be above 0 (e.g. \"10s\")",
                ));
            }
            for header in target.headers.keys() {
                if RESERVED_HEADERS.contains(&header.to_ascii_lowercase().as_str()) {
                    return Err(ResponderError::config(
                        setting("headers"),
                        format!("{header} is set by Cordon and cannot be replaced"),
                    ));
                }
                if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err(ResponderError::config(
                        setting("headers"),
                        format!("{header:?} is not a header name"),
                    ));
                }
            }
            target
                .secret_source()
                .resolve()
                .map_err(|message| ResponderError::config(setting("secret_env"), message))?;
        }
        if self.retry.max_attempts == Some(0) {
            return Err(ResponderError::config(
                "retry.max_attempts",
                "at least 1 (or leave it out: retry.horizon bounds the tries)",
            ));
        }
        if self.retry.horizon.is_zero() {
            return Err(ResponderError::config(
                "retry.horizon",
                "must be above 0 (e.g. \"24h\")",
            ));
        }
        if self.retry.initial.is_zero() || self.retry.initial > self.retry.max_delay {
            return Err(ResponderError::config(
                "retry.initial",
                "must be above 0 and at most retry.max_delay",
            ));
        }
        if self.max_in_flight == 0 {
            return Err(ResponderError::config("max_in_flight", "at least 1"));
        }
        if self.poll_interval.is_zero() {
            return Err(ResponderError::config(
                "poll_interval",
                "must be above 0 (e.g. \"500ms\")",
            ));
        }
        if self.guardrails.isolation_window.is_zero() {
            return Err(ResponderError::config(
                "guardrails.isolation_window",
                "must be above 0 (e.g. \"1h\")",
            ));
        }
        // Playbook actions are ActionKinds: an unknown one failed as the file was read.
        Ok(())
    }

    /// Each configured target with its secret read.
    pub fn resolved_targets(&self) -> Result<BTreeMap<String, ResolvedTarget>, ResponderError> {
        self.targets
            .iter()
            .map(|(name, target)| {
                let secret = target
                    .secret_source()
                    .resolve()
                    .map_err(|message| ResponderError::config(format!("targets.{name}.secret_env"), message))?;
                Ok((
                    name.clone(),
                    ResolvedTarget {
                        config: target.clone(),
                        secret,
                    },
                ))
            })
            .collect()
    }
}

/// A target ready to send to.
#[derive(Debug, Clone)]
pub struct ResolvedTarget {
    pub config: TargetConfig,
    pub secret: Secret,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> TargetConfig {
        TargetConfig {
            url: url.into(),
            secret_env: Some("CORDON_TEST_RESPONDER_SECRET".into()),
            secret_file: None,
            timeout: default_timeout(),
            headers: BTreeMap::new(),
            dry_run: false,
            max_in_flight: None,
            allow_http: false,
        }
    }

    #[test]
    fn plain_http_targets_need_the_local_testing_mark() {
        // SAFETY: tests in this module read only this variable, which nothing else sets.
        unsafe { std::env::set_var("CORDON_TEST_RESPONDER_SECRET", "0123456789abcdef0123") };
        let mut config = ResponderConfig::default();
        config
            .targets
            .insert("isolate_host".into(), target("https://edr.example/isolate"));
        assert!(config.validate().is_ok());
        config
            .targets
            .insert("notify".into(), target("http://chat.example/hook"));
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("targets.notify.url") && error.contains("allow_http"),
            "{error}"
        );
        let mut local = target("http://127.0.0.1:9400/notify");
        local.allow_http = true;
        config.targets.insert("notify".into(), local);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn errors_name_the_setting() {
        // SAFETY: tests in this module read only this variable, which nothing else sets.
        unsafe { std::env::set_var("CORDON_TEST_RESPONDER_SECRET", "0123456789abcdef0123") };
        let mut config = ResponderConfig::default();
        config
            .targets
            .insert("isolate_host".into(), target("https://edr.local/isolate"));
        assert!(config.validate().is_ok());

        config.targets.insert("wipe_disk".into(), target("https://x"));
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("responder.targets.wipe_disk") && error.contains("isolate_host"),
            "{error}"
        );
        config.targets.remove("wipe_disk");

        config.targets.insert("notify".into(), target("ftp://chat"));
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("targets.notify.url")
        );
        let mut bad = target("https://chat");
        bad.headers.insert("X-Cordon-Signature".into(), "v1=forged".into());
        config.targets.insert("notify".into(), bad);
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("cannot be replaced")
        );
        let mut unset = target("https://chat");
        unset.secret_env = Some("CORDON_TEST_SURELY_UNSET".into());
        config.targets.insert("notify".into(), unset);
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("targets.notify.secret_env") && error.contains("CORDON_TEST_SURELY_UNSET"),
            "{error}"
        );
        config.targets.remove("notify");

        // A playbook naming an unknown action does not even read.
        let unknown =
            serde_json::json!({"playbooks": {"repeated-policy-denies": [{"action": "reboot", "mode": "auto"}]}});
        let error = serde_json::from_value::<ResponderConfig>(unknown)
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown variant `reboot`"), "{error}");
    }
}
