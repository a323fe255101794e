//! Responses by hand (`cordon respond`, the console): sent at once, the person asking
//! being the approval; and a responder's decisions on held or failed actions.

use cordon_schemas::ActionKind;

use super::Responder;
use crate::actions;
use crate::error::ResponderError;
use crate::model::{Action, ActionState, Target, WebhookBody, now_nanos, rfc3339};
use crate::store::NewAction;

/// A responder's request for an action by hand (`cordon respond`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualRequest {
    pub action: ActionKind,
    #[serde(default)]
    pub host_id: Option<String>,
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub token_id: Option<String>,
    /// Why; required, it goes to the receiver and the audit log.
    pub reason: String,
    /// The alert this answers, if any.
    #[serde(default)]
    pub alert_id: Option<String>,
}

impl Responder {
    /// A response asked for by hand. It is sent at once: the person asking is the approval.
    pub fn request(&self, request: ManualRequest, who: &str) -> Result<Action, ResponderError> {
        let action = actions::for_kind(request.action);
        if request.reason.trim().is_empty() {
            return Err(ResponderError::Invalid(
                "give a reason: it goes to the receiver and the audit log".into(),
            ));
        }
        let mut target = Target {
            host_id: request.host_id,
            user_name: request.user_name,
            token_id: request.token_id,
        };
        let mut rule_id = None;
        if let Some(alert_id) = &request.alert_id {
            let alert = self
                .alerts
                .get(alert_id)
                .map_err(|error| ResponderError::Invalid(format!("cannot read alert {alert_id}: {error}")))?
                .ok_or_else(|| ResponderError::Invalid(format!("no alert {alert_id}")))?;
            let from_alert = action.target_from_alert(&alert);
            target.host_id = target.host_id.or(from_alert.host_id);
            target.user_name = target.user_name.or(from_alert.user_name);
            target.token_id = target.token_id.or(from_alert.token_id);
            rule_id = Some(alert.rule_id);
        }
        action.check_target(&target).map_err(ResponderError::Invalid)?;
        let body = WebhookBody {
            action_id: format!("act-{}", uuid::Uuid::new_v4().simple()),
            action: action.name().to_string(),
            alert_id: request.alert_id,
            rule_id,
            target,
            reason: request.reason.trim().to_string(),
            requested_by: who.to_string(),
            requested_at: rfc3339(now_nanos()),
        };
        let stored = self
            .store
            .insert(&NewAction {
                body,
                automatic: false,
                state: ActionState::Pending,
                note: None,
            })?
            .ok_or_else(|| ResponderError::Conflict("an action with this id exists".into()))?;
        self.announce(&stored);
        self.wake();
        Ok(stored)
    }

    pub fn approve(&self, id: &str, who: &str, note: Option<String>) -> Result<Action, ResponderError> {
        let action = self.store.approve(id, who, note)?;
        tracing::info!(action_id = %id, by = %who, "response approved");
        self.wake();
        Ok(action)
    }

    pub fn deny(&self, id: &str, who: &str, note: Option<String>) -> Result<Action, ResponderError> {
        let action = self.store.deny(id, who, note)?;
        self.metrics.action(&action.action, "denied");
        tracing::info!(action_id = %id, by = %who, "response denied");
        Ok(action)
    }

    pub fn retry(&self, id: &str, who: &str, note: Option<String>) -> Result<Action, ResponderError> {
        let action = self.store.retry(id, who, note)?;
        tracing::info!(action_id = %id, by = %who, "response retried by hand");
        self.wake();
        Ok(action)
    }
}
