//! A responder's decisions on held or failed actions: approve, deny, retry.

use rusqlite::params;

use super::audit::audit_in;
use super::{ActionStore, AuditLine, get_in};
use crate::error::ResponderError;
use crate::model::{Action, ActionState, now_nanos};

impl ActionStore {
    /// Moves an action from `from` to pending (due now), or to `to`, recording who did it.
    fn decide(
        &self,
        id: &str,
        allowed: &[ActionState],
        to: ActionState,
        line: AuditLine,
        reset_attempts: bool,
    ) -> Result<Action, ResponderError> {
        let sqlite = self.sqlite();
        self.write(|transaction| {
            let action = get_in(transaction, id)
                .map_err(&sqlite)?
                .ok_or_else(|| ResponderError::NotFound(id.to_string()))?;
            if !allowed.contains(&action.state) {
                return Err(ResponderError::Conflict(format!(
                    "action {id} is {}; this needs it to be {}",
                    action.state.as_str(),
                    allowed
                        .iter()
                        .map(|state| state.as_str())
                        .collect::<Vec<_>>()
                        .join(" or ")
                )));
            }
            let now = now_nanos();
            let (next, completed) = match to {
                ActionState::Pending => (Some(now), None),
                _ => (None, Some(now)),
            };
            let decided = matches!(line.event, "approved" | "denied");
            transaction
                .execute(
                    "UPDATE actions SET state = ?2, next_attempt_at = ?3, completed_at = ?4, updated_at = ?5,
                        decided_by = CASE WHEN ?6 THEN ?7 ELSE decided_by END,
                        decision_note = CASE WHEN ?6 THEN ?8 ELSE decision_note END,
                        attempts = CASE WHEN ?9 THEN 0 ELSE attempts END,
                        last_error = CASE WHEN ?9 THEN NULL ELSE last_error END
                     WHERE id = ?1",
                    params![
                        id,
                        to.as_str(),
                        next,
                        completed,
                        now,
                        decided,
                        line.actor,
                        line.detail,
                        reset_attempts
                    ],
                )
                .map_err(&sqlite)?;
            audit_in(transaction, id, &action.action, &line).map_err(&sqlite)?;
            Ok(get_in(transaction, id).map_err(&sqlite)?.expect("the action exists"))
        })
    }

    pub fn approve(&self, id: &str, who: &str, note: Option<String>) -> Result<Action, ResponderError> {
        let mut line = AuditLine::new("approved", who);
        line.detail = note;
        self.decide(id, &[ActionState::AwaitingApproval], ActionState::Pending, line, false)
    }

    pub fn deny(&self, id: &str, who: &str, note: Option<String>) -> Result<Action, ResponderError> {
        let mut line = AuditLine::new("denied", who);
        line.detail = note;
        self.decide(id, &[ActionState::AwaitingApproval], ActionState::Denied, line, false)
    }

    /// Sends a failed action again with a fresh budget of tries, under the same id.
    pub fn retry(&self, id: &str, who: &str, note: Option<String>) -> Result<Action, ResponderError> {
        let mut line = AuditLine::new("retried", who);
        line.detail = note;
        self.decide(id, &[ActionState::Failed], ActionState::Pending, line, true)
    }
}
