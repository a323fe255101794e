//! What a rule asks the responder to do (contract section 7): the action kinds, a
//! playbook step, the target an action is aimed at. Rules name them in `rule.toml`;
//! the responder carries them out. Both read them from here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::TrustLevel;

/// Every action of contract section 7. A rule naming any other fails to load, with the
/// file, line and column of the name. Adding an action is a variant here and one file
/// in the responder's `actions/`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ActionKind {
    RevokeToken,
    IsolateHost,
    ReleaseHost,
    Notify,
}

impl ActionKind {
    pub const ALL: &[ActionKind] = <ActionKind as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The kind called `name`, or an error naming the known ones.
    pub fn parse(name: &str) -> Result<ActionKind, String> {
        name.parse().map_err(|_| {
            let known: Vec<&str> = <ActionKind as strum::VariantArray>::VARIANTS
                .iter()
                .map(|kind| kind.as_str())
                .collect();
            format!("unknown action `{name}`; known: {}", known.join(", "))
        })
    }
}

/// Whether a response runs at once or waits for a responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ResponseMode {
    Auto,
    Approval,
}

/// One step of a playbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseStep {
    pub action: ActionKind,
    pub mode: ResponseMode,
    /// An alert detected more than this after its last event (a laptop's buffered
    /// upload, an attack that ended hours ago) takes `late_mode` instead of `mode`.
    #[serde(with = "humantime_serde", default, skip_serializing_if = "Option::is_none")]
    pub late_after: Option<Duration>,
    /// The mode for late alerts; `approval` when `late_after` is set without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_mode: Option<ResponseMode>,
    /// The evidence the step needs to run without a person: `any`, `authenticated`
    /// (every event from a credentialed producer) or `signed` (and validly signed).
    /// Unset: `authenticated` for containment (`isolate_host`, `revoke_token`), `any`
    /// otherwise. Evidence that falls short holds the action for approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustLevel>,
}

impl ResponseStep {
    pub fn new(action: ActionKind, mode: ResponseMode) -> ResponseStep {
        ResponseStep {
            action,
            mode,
            late_after: None,
            late_mode: None,
            trust: None,
        }
    }

    /// The mode for an alert detected `detected_after` after its last event (None: not
    /// known, as for alerts from before the field existed: the normal mode).
    pub fn mode_for(&self, detected_after: Option<Duration>) -> ResponseMode {
        match (self.late_after, detected_after) {
            (Some(bound), Some(delay)) if delay > bound => self.late_mode.unwrap_or(ResponseMode::Approval),
            _ => self.mode,
        }
    }
}

/// Who or what an action is aimed at (the webhook's `target`). Fields a rule could
/// not name are null.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub host_id: Option<String>,
    pub user_name: Option<String>,
    pub token_id: Option<String>,
}

/// Where the rules' own playbooks come from (the running detection service, or a
/// fixed map in tools and tests).
pub trait PlaybookSource: Send + Sync {
    /// The rule's `[[response]]` steps; None when no such rule is loaded.
    fn steps(&self, rule_id: &str) -> Option<Vec<ResponseStep>>;
}

impl PlaybookSource for std::collections::BTreeMap<String, Vec<ResponseStep>> {
    fn steps(&self, rule_id: &str) -> Option<Vec<ResponseStep>> {
        self.get(rule_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use strum::VariantArray;

    use super::*;

    #[test]
    fn action_names_are_the_contracts_and_unknown_ones_are_named() {
        let names: Vec<&str> = ActionKind::VARIANTS.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(names, ["revoke_token", "isolate_host", "release_host", "notify"]);
        for kind in ActionKind::VARIANTS {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(ActionKind::parse(kind.as_str()), Ok(*kind));
        }
        let error = ActionKind::parse("isolate_hots").unwrap_err();
        assert!(
            error.contains("`isolate_hots`") && error.contains("isolate_host"),
            "{error}"
        );
    }

    #[test]
    fn a_late_alert_takes_the_late_mode() {
        let mut step = ResponseStep::new(ActionKind::IsolateHost, ResponseMode::Auto);
        step.late_after = Some(Duration::from_secs(3600));
        assert_eq!(step.mode_for(Some(Duration::from_secs(60))), ResponseMode::Auto);
        assert_eq!(step.mode_for(None), ResponseMode::Auto);
        assert_eq!(step.mode_for(Some(Duration::from_secs(7200))), ResponseMode::Approval);
        step.late_mode = Some(ResponseMode::Auto);
        assert_eq!(step.mode_for(Some(Duration::from_secs(7200))), ResponseMode::Auto);
    }
}
