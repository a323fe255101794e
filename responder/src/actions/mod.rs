//! The response actions of contract section 7. Each is one file; adding an action is
//! a new file and one line in [`REGISTRY`].

mod isolate_host;
mod notify;
mod release_host;
mod revoke_token;

use cordon_schemas::ActionKind;
use cordon_schemas::alert::Alert;

use crate::model::Target;

/// What Cordon knows about one kind of action. Delivery is the same for all (one
/// signed POST); what differs is what the target must name and which guardrails apply.
pub trait ResponseAction: Send + Sync {
    /// The kind it carries out.
    fn kind(&self) -> ActionKind;

    /// The contract's name, e.g. `isolate_host`.
    fn name(&self) -> &'static str {
        self.kind().as_str()
    }

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

/// The action that carries out `kind` (each kind is registered: a test checks it).
pub fn for_kind(kind: ActionKind) -> &'static dyn ResponseAction {
    REGISTRY
        .iter()
        .copied()
        .find(|action| action.kind() == kind)
        .expect("every ActionKind is in REGISTRY")
}

/// The registered names, for error messages.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|action| action.name()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_kind_is_registered_once() {
        for kind in ActionKind::ALL {
            let registered = REGISTRY.iter().filter(|action| action.kind() == *kind).count();
            assert_eq!(registered, 1, "{kind} is registered {registered} times");
            assert_eq!(for_kind(*kind).name(), kind.as_str());
        }
        assert_eq!(REGISTRY.len(), ActionKind::ALL.len());
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
        assert!(for_kind(ActionKind::IsolateHost).check_target(&host).is_ok());
        assert!(for_kind(ActionKind::IsolateHost).check_target(&user).is_err());
        assert!(for_kind(ActionKind::ReleaseHost).check_target(&user).is_err());
        assert!(for_kind(ActionKind::RevokeToken).check_target(&user).is_ok());
        assert!(for_kind(ActionKind::RevokeToken).check_target(&host).is_err());
        assert!(for_kind(ActionKind::Notify).check_target(&Target::default()).is_ok());
        assert!(for_kind(ActionKind::IsolateHost).isolates());
        assert!(!for_kind(ActionKind::ReleaseHost).isolates());
    }
}
