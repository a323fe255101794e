//! Signed events (contract section 5): `signature.ed25519` is an Ed25519 signature
//! over the RFC 8785 canonical JSON of the event's flat form, `time` as integer
//! nanoseconds, without the two `signature.*` attributes; `signature.key_id` names
//! the public key in the key registry.
//!
//! The flat form Cordon verifies is every attribute the event arrived with (log and
//! resource attributes alike), `host.id`, `event.name` and `time`. A signature that
//! names a key the registry does not hold cannot be valid, so it is `bad`: an
//! attacker cannot skip the check by inventing a key id.
//!
//! Keys are bound to hosts: a signature that verifies under a key registered for other
//! hosts is `bad` (a stolen laptop key cannot vouch for another host), and so is one
//! made outside the key's validity period or after it was revoked, judged on the
//! event's time. Several keys per host with overlapping periods make a rotation.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;

use crate::batch::SignatureStatus;
use crate::fields::{ATTR_FIELDS, attr};
use crate::provenance::HostPatterns;
use crate::record::EventRecord;

/// Public keys by key id.
#[derive(Debug, Default, Clone)]
pub struct KeyRegistry {
    keys: HashMap<String, RegisteredKey>,
}

/// One registered key: which hosts it may sign for, and when.
#[derive(Debug, Clone)]
struct RegisteredKey {
    key: VerifyingKey,
    /// None: any host (a key file written before keys were bound to hosts).
    hosts: Option<Arc<HostPatterns>>,
    /// Event times (ns) the key signs for: from `not_before`, until `not_after`.
    not_before: Option<i64>,
    not_after: Option<i64>,
    /// From this event time on, nothing it signs is valid.
    revoked_at: Option<i64>,
}

impl RegisteredKey {
    fn covers(&self, host_id: &str, event_time: i64) -> bool {
        self.hosts.as_ref().is_none_or(|hosts| hosts.covers(host_id))
            && self.not_before.is_none_or(|start| event_time >= start)
            && self.not_after.is_none_or(|end| event_time < end)
            && self.revoked_at.is_none_or(|revoked| event_time < revoked)
    }
}

/// Why the key registry file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyRegistryError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Line { path: String, line: usize, message: String },
}

impl KeyRegistry {
    pub fn new() -> Self {
        KeyRegistry::default()
    }

    /// A key for any host, at any time.
    pub fn insert(&mut self, key_id: impl Into<String>, key: VerifyingKey) {
        self.keys.insert(
            key_id.into(),
            RegisteredKey {
                key,
                hosts: None,
                not_before: None,
                not_after: None,
                revoked_at: None,
            },
        );
    }

    /// Keys not bound to any host (old key files): worth a warning.
    pub fn unbound(&self) -> usize {
        self.keys.values().filter(|key| key.hosts.is_none()).count()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Reads `key_id,public_key,hosts,not_before,not_after,revoked_at` lines: the key as
    /// base64 of its 32 bytes; `hosts` the host ids it may sign for, separated by
    /// spaces or `;` (globs allowed); the times RFC 3339, each may be empty. Lines of
    /// only `key_id,public_key` (older files) bind the key to no host. `#` starts a
    /// comment, and a line starting `key_id,` is a header.
    pub fn load(path: &Path) -> Result<KeyRegistry, KeyRegistryError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyRegistryError::Io {
            path: name.clone(),
            source,
        })?;
        let mut registry = KeyRegistry::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.replace(' ', "").starts_with("key_id,") {
                continue;
            }
            let bad = |message: &str| KeyRegistryError::Line {
                path: name.clone(),
                line: index + 1,
                message: message.to_string(),
            };
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [id, key, rest @ ..] = fields.as_slice() else {
                return Err(bad("expected key_id,public_key,hosts,not_before,not_after,revoked_at"));
            };
            if rest.len() > 4 {
                return Err(bad(
                    "too many fields: key_id,public_key,hosts,not_before,not_after,revoked_at",
                ));
            }
            let bytes = BASE64.decode(key).map_err(|_| bad("the public key is not base64"))?;
            let bytes: [u8; 32] = bytes.try_into().map_err(|_| bad("an Ed25519 public key is 32 bytes"))?;
            let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a valid Ed25519 public key"))?;
            let hosts: Vec<&str> = rest
                .first()
                .map(|hosts| hosts.split([' ', ';']).filter(|host| !host.is_empty()).collect())
                .unwrap_or_default();
            let time = |index: usize, name: &str| -> Result<Option<i64>, KeyRegistryError> {
                match rest.get(index).filter(|text| !text.is_empty()) {
                    None => Ok(None),
                    Some(text) => chrono::DateTime::parse_from_rfc3339(text)
                        .ok()
                        .and_then(|time| time.timestamp_nanos_opt())
                        .map(Some)
                        .ok_or_else(|| bad(&format!("{name} {text:?} is not an RFC 3339 time"))),
                }
            };
            registry.keys.insert(
                id.to_string(),
                RegisteredKey {
                    key,
                    hosts: (!hosts.is_empty()).then(|| Arc::new(HostPatterns::new(&hosts))),
                    not_before: time(1, "not_before")?,
                    not_after: time(2, "not_after")?,
                    revoked_at: time(3, "revoked_at")?,
                },
            );
        }
        Ok(registry)
    }

    /// The status of a record's signature.
    pub fn verify(&self, record: &EventRecord<'_>) -> SignatureStatus {
        let Some(signature) = record.signature.as_deref() else {
            return SignatureStatus::Missing;
        };
        let key_id = record.get(attr::SIGNATURE_KEY_ID).map(|value| value.to_text());
        let Some(registered) = key_id.and_then(|id| self.keys.get(id.as_ref())) else {
            return SignatureStatus::Bad;
        };
        let event_time = if record.time_unix_nano != 0 {
            record.time_unix_nano
        } else {
            record.observed_time_unix_nano
        };
        let host = record.host_id.as_deref().unwrap_or_default().trim();
        if !registered.covers(host, i64::try_from(event_time).unwrap_or(i64::MAX)) {
            return SignatureStatus::Bad;
        }
        let key = &registered.key;
        let Ok(bytes) = BASE64.decode(signature.trim()) else {
            return SignatureStatus::Bad;
        };
        let Ok(signature) = Signature::from_slice(&bytes) else {
            return SignatureStatus::Bad;
        };
        match key.verify_strict(canonical_json(record).as_bytes(), &signature) {
            Ok(()) => SignatureStatus::Valid,
            Err(_) => SignatureStatus::Bad,
        }
    }
}

/// The signed bytes: the flat form with sorted keys and no whitespace (RFC 8785 for
/// the values events carry: strings, integers, booleans).
pub fn canonical_json(record: &EventRecord<'_>) -> String {
    let mut object: BTreeMap<String, Value> = BTreeMap::new();
    let time = if record.time_unix_nano != 0 {
        record.time_unix_nano
    } else {
        record.observed_time_unix_nano
    };
    object.insert(attr::TIME.into(), Value::from(time));
    let slots = [
        (attr::HOST_ID, &record.host_id),
        (attr::HOST_NAME, &record.host_name),
        (attr::SERVICE_NAME, &record.service_name),
        (attr::EVENT_NAME, &record.event_name),
        (attr::EVENT_ID, &record.event_id),
    ];
    for (name, value) in slots {
        if let Some(value) = value {
            object.insert(name.into(), Value::from(value.as_ref()));
        }
    }
    for (position, value) in record.typed_values() {
        let name = ATTR_FIELDS[position].attr;
        if name != attr::SIGNATURE_KEY_ID {
            object.insert(name.into(), value.to_json());
        }
    }
    for (name, value) in &record.extra {
        object.insert(name.to_string(), value.to_json());
    }
    serde_json::to_string(&object).expect("JSON values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat::flat_json_to_event;
    use ed25519_dalek::{Signer, SigningKey};

    fn event() -> Value {
        serde_json::json!({
            "time": "2026-01-15T10:04:05.123Z", "host.id": "wks-0142", "event.name": "network.flow",
            "event.id": "b1f0", "user.name": "alice", "destination.address": "paste.example.net",
            "destination.port": 443, "network.io.bytes_sent": 48213311, "custom.flag": true,
            "signature.key_id": "wks-0142-k1"
        })
    }

    fn signed(key: &SigningKey, mut value: Value) -> Value {
        let record = flat_json_to_event(&value).unwrap();
        let signature = key.sign(canonical_json(&record).as_bytes());
        value["signature.ed25519"] = Value::from(BASE64.encode(signature.to_bytes()));
        value
    }

    #[test]
    fn canonical_form_is_sorted_compact_and_without_the_signature() {
        let mut value = event();
        value["signature.ed25519"] = Value::from("AAAA");
        let record = flat_json_to_event(&value).unwrap();
        assert_eq!(
            canonical_json(&record),
            r#"{"custom.flag":true,"destination.address":"paste.example.net","destination.port":443,"event.id":"b1f0","event.name":"network.flow","host.id":"wks-0142","network.io.bytes_sent":48213311,"time":1768471445123000000,"user.name":"alice"}"#
        );
    }

    #[test]
    fn valid_altered_unknown_key_and_missing() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let mut registry = KeyRegistry::new();
        registry.insert("wks-0142-k1", key.verifying_key());
        let good = signed(&key, event());
        let status = |value: &Value| registry.verify(&flat_json_to_event(value).unwrap());
        assert_eq!(status(&good), SignatureStatus::Valid);
        let mut altered = good.clone();
        altered["network.io.bytes_sent"] = Value::from(12);
        assert_eq!(status(&altered), SignatureStatus::Bad);
        let mut unknown = good.clone();
        unknown["signature.key_id"] = Value::from("someone-else");
        assert_eq!(status(&unknown), SignatureStatus::Bad);
        let mut garbage = good.clone();
        garbage["signature.ed25519"] = Value::from("not base64!");
        assert_eq!(status(&garbage), SignatureStatus::Bad);
        assert_eq!(status(&event()), SignatureStatus::Missing);
    }

    #[test]
    fn loads_a_key_file() {
        let key = SigningKey::from_bytes(&[2; 32]);
        let dir = std::env::temp_dir().join(format!("cordon-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.csv");
        std::fs::write(
            &path,
            format!(
                "# fleet keys\nkey_id,public_key\nwks-0142-k1,{}\n",
                BASE64.encode(key.verifying_key().to_bytes())
            ),
        )
        .unwrap();
        assert_eq!(KeyRegistry::load(&path).unwrap().len(), 1);
        std::fs::write(&path, "wks-1,short\n").unwrap();
        let error = KeyRegistry::load(&path).unwrap_err().to_string();
        assert!(error.contains(":1:"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
    #[test]
    fn a_key_signs_only_for_its_hosts_in_its_period_and_until_revoked() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let public = BASE64.encode(key.verifying_key().to_bytes());
        let dir = tempfile_dir("bound");
        let path = dir.join("keys.csv");
        // The event is at 2026-01-15T10:04:05Z.
        std::fs::write(
            &path,
            format!(
                "key_id,public_key,hosts,not_before,not_after,revoked_at\n\
                 wks-0142-k1,{public},wks-0142,2026-01-01T00:00:00Z,2026-02-01T00:00:00Z,\n\
                 other-k1,{public},wks-9;wks-8,,,\n\
                 old-k1,{public},wks-0142,2025-01-01T00:00:00Z,2026-01-01T00:00:00Z,\n\
                 revoked-k1,{public},wks-0142,,,2026-01-15T10:00:00Z\n\
                 later-revoked-k1,{public},wks-0142,,,2026-01-15T11:00:00Z\n"
            ),
        )
        .unwrap();
        let registry = KeyRegistry::load(&path).unwrap();
        assert_eq!(registry.unbound(), 0);
        let status = |key_id: &str| {
            let mut value = event();
            value["signature.key_id"] = Value::from(key_id);
            registry.verify(&flat_json_to_event(&signed(&key, value)).unwrap())
        };
        assert_eq!(status("wks-0142-k1"), SignatureStatus::Valid);
        assert_eq!(status("other-k1"), SignatureStatus::Bad, "a key of other hosts");
        assert_eq!(
            status("old-k1"),
            SignatureStatus::Bad,
            "outside its period (rotated out)"
        );
        assert_eq!(status("revoked-k1"), SignatureStatus::Bad, "revoked before the event");
        assert_eq!(
            status("later-revoked-k1"),
            SignatureStatus::Valid,
            "revoked after the event"
        );
        std::fs::write(&path, format!("k,{public},wks-1,yesterday,,\n")).unwrap();
        let error = KeyRegistry::load(&path).unwrap_err().to_string();
        assert!(error.contains(":1:") && error.contains("not_before"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cordon-keys-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
