//! A rule's `rule.toml`: what analysts see on its alerts, how its events are keyed and
//! windowed, the named thresholds and lists its SQL uses, and its response playbook.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::anchor::Anchor;
use crate::error::RuleError;

pub use cordon_schemas::alert::Severity;
pub use cordon_schemas::response::{ActionKind, ResponseMode, ResponseStep};

/// A named value the SQL refers to as `${name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Param {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    /// A duration, written `{ duration = "30m" }`; it becomes an SQL interval.
    Duration {
        #[serde(with = "humantime_serde")]
        duration: Duration,
    },
    List(Vec<ListItem>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ListItem {
    Int(i64),
    Text(String),
}

fn yes() -> bool {
    true
}

/// What a missing `suppress_by` field means for suppression (Elastic's choice).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingField {
    /// Matches without the field fold together, as if it were one value.
    #[default]
    Group,
    /// A match without the field is never suppressed: each raises its own alert.
    Never,
}

/// The contents of `rule.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    pub title: String,
    pub description: String,
    pub severity: Severity,
    /// MITRE ATT&CK technique ids, e.g. `T1048`.
    #[serde(default)]
    pub attack: Vec<String>,
    /// MITRE ATLAS technique ids (attacks on AI systems), e.g. `AML.T0053`.
    #[serde(default)]
    pub atlas: Vec<String>,
    /// How far apart in event time the events of one match may be. Kept rows live
    /// this long past the watermark. `${window}` in the SQL.
    #[serde(with = "humantime_serde", default)]
    pub window: Duration,
    /// The columns kept rows are partitioned by: only partitions that receive new rows
    /// are evaluated, and match.sql sees one partition's rows together.
    pub partition_by: Vec<String>,
    /// The columns that name the alert's entity: one open alert per entity and
    /// suppression period. Defaults to `partition_by`.
    #[serde(default)]
    pub entity: Vec<String>,
    /// How long after an alert's first event later matches fold into it.
    #[serde(with = "humantime_serde")]
    pub suppression: Duration,
    /// Output columns that, besides the entity, keep alerts apart: matches fold into
    /// one alert only when these are equal too (one alert per destination, say).
    #[serde(default)]
    pub suppress_by: Vec<String>,
    /// What a match without one of the `suppress_by` fields does: fold with the
    /// others that lack it (`group`, the default) or always raise its own alert (`never`).
    #[serde(default)]
    pub suppress_missing: MissingField,
    /// Keeps at most this many rows per partition (the newest by time), so one noisy
    /// key cannot take the memory of all; rows dropped this way are counted.
    #[serde(default)]
    pub max_rows_per_partition: Option<usize>,
    /// Holds the rule's events and evaluates each key's once per this much arrival
    /// time, the keys spread over beats (`held.rs`): one evaluation of a key per
    /// interval costs a fraction of one per burst, and its alerts come at most this
    /// much later. For rules whose alerts wait out the lateness anyway (`due_at`) and
    /// that keep state for every host; the alerts are the same (the batching invariant).
    #[serde(with = "humantime_serde", default)]
    pub evaluate_every: Option<Duration>,
    /// The rule's word that every match holds a kept row with one of these values in
    /// this column (`anchor.rs`): partitions keeping none are not matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Anchor>,
    #[serde(default)]
    pub params: BTreeMap<String, Param>,
    #[serde(default)]
    pub response: Vec<ResponseStep>,
    /// Switches the rule off without deleting it.
    #[serde(default)]
    pub disabled: bool,
    /// False makes the rule a building block: its matches are not alerts but
    /// `cordon.signal` events, which other rules read as the `signals` table and
    /// analysts see on the entity view.
    #[serde(default = "yes")]
    pub alert: bool,
    /// Where a rule imported from Sigma came from (`cordon rules import-sigma`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<SigmaOrigin>,
}

/// The Sigma rule an imported rule was converted from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigmaOrigin {
    pub id: Option<String>,
    pub level: Option<String>,
    pub status: Option<String>,
    pub author: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The Sigma file it came from.
    pub source: String,
    #[serde(default)]
    pub references: Vec<String>,
}

impl RuleSettings {
    pub fn load(path: &Path) -> Result<RuleSettings, RuleError> {
        let text = std::fs::read_to_string(path).map_err(|error| RuleError::io(path, error))?;
        RuleSettings::parse(&text, path)
    }

    /// Parses and checks a `rule.toml`'s text; `path` is named in errors.
    pub fn parse(text: &str, path: &Path) -> Result<RuleSettings, RuleError> {
        let mut settings: RuleSettings = toml::from_str(text).map_err(|error| {
            let (line, column) = error
                .span()
                .map(|span| line_column(text, span.start))
                .map_or((None, None), |(line, column)| (Some(line), Some(column)));
            RuleError::at(path, line, column, error.message().to_string())
        })?;
        if settings.entity.is_empty() {
            settings.entity = settings.partition_by.clone();
        }
        settings.check(path)?;
        Ok(settings)
    }

    fn check(&self, path: &Path) -> Result<(), RuleError> {
        if self.partition_by.is_empty() {
            return Err(RuleError::in_file(
                path,
                "partition_by must name at least one column (e.g. [\"host_id\"])",
            ));
        }
        // Action names were checked as they were read: `action` is an ActionKind.
        for step in &self.response {
            if step.late_mode.is_some() && step.late_after.is_none() {
                return Err(RuleError::in_file(
                    path,
                    format!(
                        "the [[response]] step `{}` has late_mode but no late_after: say how late an alert must be (e.g. late_after = \"1h\")",
                        step.action
                    ),
                ));
            }
        }
        if let Some(every) = self.evaluate_every
            && (every.is_zero() || every > MAX_EVALUATE_EVERY)
        {
            return Err(RuleError::in_file(
                path,
                format!(
                    "evaluate_every = {every:?} is out of range: give between 1ms and {MAX_EVALUATE_EVERY:?} (or leave it out to evaluate every burst)"
                ),
            ));
        }
        if let Some(anchor) = &self.anchor {
            anchor.check(path)?;
        }
        for id in &self.attack {
            if !is_technique_id(id, "T") {
                return Err(RuleError::in_file(
                    path,
                    format!("attack id `{id}` is not an ATT&CK technique id (T1059, T1059.004)"),
                ));
            }
        }
        for id in &self.atlas {
            if !is_technique_id(id, "AML.T") {
                return Err(RuleError::in_file(
                    path,
                    format!("atlas id `{id}` is not a MITRE ATLAS technique id (AML.T0053, AML.T0010.005)"),
                ));
            }
        }
        for field in &self.suppress_by {
            if self.entity.contains(field) {
                return Err(RuleError::in_file(
                    path,
                    format!("suppress_by `{field}` is already part of the entity; list only other output columns"),
                ));
            }
        }
        for name in self.params.keys() {
            if matches!(name.as_str(), "window" | "lateness") {
                return Err(RuleError::in_file(
                    path,
                    format!("param `{name}` is built in (the rule's {name}); choose another name"),
                ));
            }
        }
        Ok(())
    }
}

/// The longest `evaluate_every`: a rule's alerts may wait this long for it, and its
/// held events are bounded anyway (`held.rs`).
pub const MAX_EVALUATE_EVERY: Duration = Duration::from_secs(60);

/// `T1059`, `T1059.004` (prefix `T`); `AML.T0053` (prefix `AML.T`).
fn is_technique_id(id: &str, prefix: &str) -> bool {
    let Some(number) = id.strip_prefix(prefix) else {
        return false;
    };
    let (technique, sub) = number.split_once('.').map_or((number, None), |(t, s)| (t, Some(s)));
    let digits = |text: &str, len: usize| text.len() == len && text.bytes().all(|byte| byte.is_ascii_digit());
    digits(technique, 4) && sub.is_none_or(|sub| digits(sub, 3))
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (u64, u64) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().map_or(0, |tail| tail.chars().count()) as u64 + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn technique_ids_are_checked() {
        assert!(is_technique_id("T1059", "T") && is_technique_id("T1059.004", "T"));
        assert!(is_technique_id("AML.T0053", "AML.T") && is_technique_id("AML.T0010.005", "AML.T"));
        for (id, prefix) in [
            ("T105", "T"),
            ("t1059", "T"),
            ("AML.T53", "AML.T"),
            ("T0053", "AML.T"),
            ("T1059.4", "T"),
        ] {
            assert!(!is_technique_id(id, prefix), "{id}");
        }
    }

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rule.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const GOOD: &str = r#"
title = "t"
description = "d"
severity = "high"
attack = ["T1048"]
window = "10m"
partition_by = ["host_id"]
suppression = "1h"
[params]
min_files = 20
classes = ["confidential", "restricted"]
within = { duration = "30m" }
[[response]]
action = "isolate_host"
mode = "approval"
"#;

    #[test]
    fn reads_settings_and_defaults_entity_to_partition() {
        let (_dir, path) = write(GOOD);
        let settings = RuleSettings::load(&path).unwrap();
        assert_eq!(settings.window, Duration::from_secs(600));
        assert_eq!(settings.entity, vec!["host_id".to_string()]);
        assert_eq!(settings.params["min_files"], Param::Int(20));
        assert_eq!(
            settings.params["within"],
            Param::Duration {
                duration: Duration::from_secs(1800)
            }
        );
        assert_eq!(settings.response[0].mode, ResponseMode::Approval);
    }

    #[test]
    fn evaluate_every_is_read_and_bounded() {
        let with = |every: &str| {
            GOOD.replace(
                "suppression = \"1h\"",
                &format!("suppression = \"1h\"\nevaluate_every = \"{every}\""),
            )
        };
        let (_dir, path) = write(&with("2s"));
        assert_eq!(
            RuleSettings::load(&path).unwrap().evaluate_every,
            Some(Duration::from_secs(2))
        );
        let (_dir, path) = write(GOOD);
        assert_eq!(
            RuleSettings::load(&path).unwrap().evaluate_every,
            None,
            "every burst by default"
        );
        for every in ["0s", "61s"] {
            let (_dir, path) = write(&with(every));
            let error = RuleSettings::load(&path).unwrap_err().to_string();
            assert!(
                error.contains("evaluate_every") && error.contains("out of range"),
                "{every}: {error}"
            );
        }
    }

    #[test]
    fn a_typo_is_reported_with_its_line() {
        let (_dir, path) = write(&GOOD.replace("severity = \"high\"", "severity = \"hgih\""));
        let error = RuleSettings::load(&path).unwrap_err().to_string();
        assert!(error.contains("rule.toml:4:"), "{error}");
        assert!(error.contains("unknown variant"), "{error}");
    }

    #[test]
    fn an_unknown_action_fails_the_load_at_its_line_and_column() {
        let (_dir, path) = write(&GOOD.replace("action = \"isolate_host\"", "action = \"isolate_hots\""));
        let error = RuleSettings::load(&path).unwrap_err().to_string();
        assert!(error.contains("rule.toml:14:10"), "{error}");
        assert!(
            error.contains("isolate_hots") && error.contains("revoke_token"),
            "{error}"
        );
    }

    #[test]
    fn a_late_alert_takes_the_late_mode() {
        let late = GOOD.replace("mode = \"approval\"", "mode = \"auto\"\nlate_after = \"1h\"");
        let (_dir, path) = write(&late);
        let step = &RuleSettings::load(&path).unwrap().response[0];
        assert_eq!(step.mode_for(Some(Duration::from_secs(60))), ResponseMode::Auto);
        assert_eq!(step.mode_for(None), ResponseMode::Auto);
        assert_eq!(
            step.mode_for(Some(Duration::from_secs(6 * 3600))),
            ResponseMode::Approval
        );
        let (_dir, path) = write(&GOOD.replace("mode = \"approval\"", "mode = \"auto\"\nlate_mode = \"auto\""));
        let error = RuleSettings::load(&path).unwrap_err().to_string();
        assert!(error.contains("late_after"), "{error}");
    }
}
