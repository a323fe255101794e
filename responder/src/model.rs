//! Actions and audit entries as the store keeps them and the API shows them.

use serde::{Deserialize, Serialize};

/// Where an action stands. `succeeded`, `failed`, `denied` and `dry_run` are final
/// (a responder may retry a failed one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Waiting for its next try.
    Pending,
    /// Held until a responder approves or denies it.
    AwaitingApproval,
    /// A try is under way. Found at start-up, it was interrupted: it is sent again
    /// under the same id.
    InFlight,
    Succeeded,
    Failed,
    Denied,
    /// Recorded, not sent: the responder or its target is in dry-run mode.
    DryRun,
}

impl ActionState {
    pub const ALL: [ActionState; 7] = [
        ActionState::Pending,
        ActionState::AwaitingApproval,
        ActionState::InFlight,
        ActionState::Succeeded,
        ActionState::Failed,
        ActionState::Denied,
        ActionState::DryRun,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(text: &str) -> Option<ActionState> {
        text.parse().ok()
    }
}

pub use cordon_schemas::response::Target;

/// The webhook body of contract section 7, exactly; stored once so every try sends
/// the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookBody {
    pub action_id: String,
    pub action: String,
    pub alert_id: Option<String>,
    pub rule_id: Option<String>,
    pub target: Target,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: String,
}

/// One response action and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub id: String,
    pub action: String,
    pub alert_id: Option<String>,
    pub rule_id: Option<String>,
    pub target: Target,
    pub reason: String,
    /// `auto` for a playbook, else the name of the token that asked.
    pub requested_by: String,
    pub requested_at: String,
    pub state: ActionState,
    /// Why it waits for approval, when it does.
    pub approval_reason: Option<String>,
    /// Who approved or denied it, and why.
    pub decided_by: Option<String>,
    pub decision_note: Option<String>,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub completed_at: Option<String>,
    pub updated_at: String,
}

/// One line of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub action_id: String,
    pub action: String,
    /// requested, held, approved, denied, attempt, succeeded, retry_scheduled, failed,
    /// retried, resumed, dry_run.
    pub event: String,
    /// `auto`, `responder` (the delivery worker) or a token's name.
    pub actor: String,
    pub attempt: Option<u32>,
    pub status_code: Option<u16>,
    pub latency_ms: Option<u64>,
    pub error: Option<String>,
    pub detail: Option<String>,
}

pub use cordon_schemas::time::{now_nanos, rfc3339};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_are_their_serde_names_and_parse_back() {
        for state in ActionState::ALL {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
            assert_eq!(ActionState::parse(state.as_str()), Some(state));
        }
        assert_eq!(ActionState::parse("AwaitingApproval"), None);
    }
}
