//! The response actions of contract section 7. Each is one file; adding an action is
//! a new file and one line in [`REGISTRY`].

mod isolate_host;
mod notify;
mod release_host;
mod revoke_token;

use cordon_detections::alerts::Alert;

use crate::model::Target;

/// What Cordon knows about one kind of action. Delivery is the same for all (one
/// signed POST); what differs is what the target must name and which guardrails apply.
pub trait ResponseAction: Send + Sync {
    /// The contract's name, e.g. `isolate_host`.
    fn name(&self) -> &'static str;

    /// One line for help texts and the API.
    fn summary(&self) -> &'static str;

    /// Why `target` is not enough for this action, if it is not.
    fn check_target(&self, target: &Target) -> Result<(), String>;

    /// Whether the action works best with the agent's token id, looked up in the stored
    /// events when the alert does not name it.
    fn wants_token_id(&self) -> bool {
        false
    }

    /// Whether the isolation guardrails (the caps per window, protected hosts) apply.
    fn isolates(&self) -> bool {
        false
    }

    /// Whether the revocation caps per window apply.
    fn revokes(&self) -> bool {
        false
    }

    /// The evidence it needs to run without a person when its playbook step does not
    /// say: containment rests on authenticated events only.
    fn default_trust(&self) -> cordon_schemas::TrustLevel {
        if self.isolates() || self.revokes() {
            cordon_schemas::TrustLevel::Authenticated
        } else {
            cordon_schemas::TrustLevel::Any
        }
    }

    /// The target an alert names: its host and user, and the token when the rule's
    /// output carries one (a `token_id` column).
    fn target_from_alert(&self, alert: &Alert) -> Target {
        let token_id = ["token_id", "credential_token_id"]
            .iter()
            .find_map(|name| alert.fields.get(*name).and_then(|value| value.as_str()))
            .map(str::to_string);
        Target {
            host_id: alert.host_id.clone(),
            user_name: alert.user_name.clone(),
            token_id,
        }
    }
}

/// Every action Cordon can take.
pub static REGISTRY: &[&dyn ResponseAction] = &[
    &revoke_token::RevokeToken,
    &isolate_host::IsolateHost,
    &release_host::ReleaseHost,
    &notify::Notify,
];

/// The action called `name`.
pub fn find(name: &str) -> Option<&'static dyn ResponseAction> {
    REGISTRY.iter().copied().find(|action| action.name() == name)
}

/// The registered names, for error messages.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|action| action.name()).collect()
}

/// An error naming the unknown action and the known ones.
pub fn unknown(name: &str) -> String {
    format!("unknown action `{name}`; known: {}", names().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_actions_are_registered_once() {
        let mut names = names();
        names.sort();
        assert_eq!(names, ["isolate_host", "notify", "release_host", "revoke_token"]);
    }

    #[test]
    fn every_builtin_playbook_names_a_registered_action() {
        let rules = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"),
        )
        .join("../detections/rules");
        let mut steps = 0;
        for dir in cordon_detections::rule::rule_dirs(&rules).unwrap() {
            let file = dir.join(cordon_detections::rule::SETTINGS_FILE);
            let settings = cordon_detections::settings::RuleSettings::load(&file).unwrap();
            for step in settings.response {
                assert!(
                    find(&step.action).is_some(),
                    "{}: {}",
                    file.display(),
                    unknown(&step.action)
                );
                steps += 1;
            }
        }
        assert!(steps >= 7, "the built-in rules have playbooks");
    }

    #[test]
    fn targets_are_checked_per_action() {
        let host = Target {
            host_id: Some("wks-1".into()),
            ..Target::default()
        };
        let user = Target {
            user_name: Some("alice".into()),
            ..Target::default()
        };
        assert!(find("isolate_host").unwrap().check_target(&host).is_ok());
        assert!(find("isolate_host").unwrap().check_target(&user).is_err());
        assert!(find("release_host").unwrap().check_target(&user).is_err());
        assert!(find("revoke_token").unwrap().check_target(&user).is_ok());
        assert!(find("revoke_token").unwrap().check_target(&host).is_err());
        assert!(find("notify").unwrap().check_target(&Target::default()).is_ok());
        assert!(find("isolate_host").unwrap().isolates());
        assert!(!find("release_host").unwrap().isolates());
        assert!(unknown("wipe_disk").contains("revoke_token"));
    }
}
