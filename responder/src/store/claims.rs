//! New actions and their tries: stored once, claimed by one worker at a time, each
//! try's outcome recorded with its audit line; tries a crash interrupted resumed.

use rusqlite::params;

use super::audit::audit_in;
use super::{ActionStore, After, AuditLine, Claimed, NewAction, get_in};
use crate::error::ResponderError;
use crate::model::{Action, ActionState, now_nanos, rfc3339};

impl ActionStore {
    /// Stores a new action with its `requested` audit line. An action whose id is
    /// already stored is left as it is (None): playbook ids derive from the alert,
    /// so handling an alert twice creates nothing twice.
    pub fn insert(&self, new: &NewAction) -> Result<Option<Action>, ResponderError> {
        let sqlite = self.sqlite();
        self.write(|transaction| {
            let body = &new.body;
            let now = now_nanos();
            let requested_at = chrono::DateTime::parse_from_rfc3339(&body.requested_at)
                .ok()
                .and_then(|time| time.timestamp_nanos_opt())
                .unwrap_or(now);
            let json = serde_json::to_string(body).expect("a webhook body serializes");
            let (approval_reason, last_error, next, completed) = match new.state {
                ActionState::AwaitingApproval => (new.note.clone(), None, None, None),
                ActionState::Failed => (None, new.note.clone(), None, Some(now)),
                _ => (None, None, Some(now), None),
            };
            let inserted = transaction
                .execute(
                    "INSERT OR IGNORE INTO actions (id, action, alert_id, rule_id, host_id, user_name, token_id, reason,
                        requested_by, requested_at, automatic, body, state, approval_reason, last_error,
                        next_attempt_at, completed_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                    params![
                        body.action_id,
                        body.action,
                        body.alert_id,
                        body.rule_id,
                        body.target.host_id,
                        body.target.user_name,
                        body.target.token_id,
                        body.reason,
                        body.requested_by,
                        requested_at,
                        new.automatic,
                        json,
                        new.state.as_str(),
                        approval_reason,
                        last_error,
                        next,
                        completed,
                        now
                    ],
                )
                .map_err(&sqlite)?;
            if inserted == 0 {
                return Ok(None);
            }
            let mut requested = AuditLine::new("requested", body.requested_by.clone()).detail(body.reason.clone());
            if let Some(alert) = &body.alert_id {
                requested.detail = Some(format!("{} (alert {alert})", body.reason));
            }
            audit_in(transaction, &body.action_id, &body.action, &requested).map_err(&sqlite)?;
            match new.state {
                ActionState::AwaitingApproval => {
                    let line = AuditLine::new("held", "responder").detail(new.note.clone().unwrap_or_default());
                    audit_in(transaction, &body.action_id, &body.action, &line).map_err(&sqlite)?;
                }
                ActionState::Failed => {
                    let mut line = AuditLine::new("failed", "responder");
                    line.error = new.note.clone();
                    audit_in(transaction, &body.action_id, &body.action, &line).map_err(&sqlite)?;
                }
                _ => {}
            }
            get_in(transaction, &body.action_id).map_err(&sqlite)
        })
    }

    /// Takes up to `limit` pending actions that are due, marking them in flight and
    /// counting the try, so no other worker takes them.
    pub fn claim_due(&self, action: &str, now: i64, limit: usize) -> Result<Vec<Claimed>, ResponderError> {
        let sqlite = self.sqlite();
        self.write(|transaction| {
            let ids: Vec<(String, String)> = {
                let mut statement = transaction
                    .prepare_cached(
                        "SELECT id, body FROM actions WHERE state = 'pending' AND action = ?3 AND next_attempt_at <= ?1
                         ORDER BY next_attempt_at, id LIMIT ?2",
                    )
                    .map_err(&sqlite)?;
                statement
                    .query_map(params![now, limit as i64, action], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map_err(&sqlite)?
                    .collect::<Result<_, _>>()
                    .map_err(&sqlite)?
            };
            let mut claimed = Vec::with_capacity(ids.len());
            for (id, body) in ids {
                let trying_since: i64 = transaction
                    .query_row(
                        "UPDATE actions SET state = 'in_flight', attempts = attempts + 1, updated_at = ?2,
                            first_attempt_at = CASE WHEN attempts = 0 OR first_attempt_at IS NULL THEN ?2
                                                    ELSE first_attempt_at END
                         WHERE id = ?1 RETURNING first_attempt_at",
                        params![id, now],
                        |row| row.get(0),
                    )
                    .map_err(&sqlite)?;
                let action = get_in(transaction, &id)
                    .map_err(&sqlite)?
                    .expect("the action just updated exists");
                claimed.push(Claimed {
                    attempt: action.attempts,
                    action,
                    body,
                    trying_since,
                });
            }
            Ok(claimed)
        })
    }

    /// Records a finished try and what follows from it.
    pub fn finish_attempt(
        &self,
        claimed: &Claimed,
        try_line: Option<AuditLine>,
        after: &After,
    ) -> Result<Action, ResponderError> {
        let sqlite = self.sqlite();
        let id = &claimed.action.id;
        let name = &claimed.action.action;
        self.write(|transaction| {
            let now = now_nanos();
            let (status, error) = try_line
                .as_ref()
                .map_or((None, None), |line| (line.status_code, line.error.clone()));
            if let Some(line) = &try_line {
                audit_in(transaction, id, name, line).map_err(&sqlite)?;
            }
            let (state, next, completed, error, outcome) = match after {
                After::Succeeded => (ActionState::Succeeded, None, Some(now), None, AuditLine::new("succeeded", "responder")),
                After::RetryAt(at) => (
                    ActionState::Pending,
                    Some(*at),
                    None,
                    error,
                    AuditLine::new("retry_scheduled", "responder").detail(format!("next try at {}", rfc3339(*at))),
                ),
                After::Failed(why) => {
                    let mut line = AuditLine::new("failed", "responder");
                    line.error = Some(why.clone());
                    (ActionState::Failed, None, Some(now), Some(why.clone()), line)
                }
                After::DryRun(what) => (
                    ActionState::DryRun,
                    None,
                    Some(now),
                    None,
                    AuditLine::new("dry_run", "responder").detail(what.clone()),
                ),
            };
            let mut outcome = outcome;
            outcome.attempt = Some(claimed.attempt);
            audit_in(transaction, id, name, &outcome).map_err(&sqlite)?;
            transaction
                .execute(
                    "UPDATE actions SET state = ?2, next_attempt_at = ?3, completed_at = ?4, last_status = coalesce(?5, last_status),
                        last_error = ?6, updated_at = ?7 WHERE id = ?1",
                    params![id, state.as_str(), next, completed, status, error, now],
                )
                .map_err(&sqlite)?;
            Ok(get_in(transaction, id).map_err(&sqlite)?.expect("the action exists"))
        })
    }

    /// At start-up: tries that were under way when the process stopped are sent
    /// again (same id and Idempotency-Key, so the receiver can tell).
    pub fn resume_interrupted(&self) -> Result<usize, ResponderError> {
        let sqlite = self.sqlite();
        self.write(|transaction| {
            let ids: Vec<(String, String)> = {
                let mut statement = transaction
                    .prepare("SELECT id, action FROM actions WHERE state = 'in_flight'")
                    .map_err(&sqlite)?;
                statement
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map_err(&sqlite)?
                    .collect::<Result<_, _>>()
                    .map_err(&sqlite)?
            };
            let now = now_nanos();
            for (id, action) in &ids {
                transaction
                    .execute(
                        "UPDATE actions SET state = 'pending', next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1",
                        params![id, now],
                    )
                    .map_err(&sqlite)?;
                let line = AuditLine::new("resumed", "responder")
                    .detail("a try was under way when Cordon stopped; sending again under the same action_id");
                audit_in(transaction, id, action, &line).map_err(&sqlite)?;
            }
            Ok(ids.len())
        })
    }

    /// Automatic actions named in `actions` requested since `since` (ns) that were
    /// let through (not held, not denied): what the isolation cap counts.
    pub fn count_automatic_since(
        &self,
        actions: &[&str],
        since: i64,
        user: Option<&str>,
    ) -> Result<u32, ResponderError> {
        if actions.is_empty() {
            return Ok(0);
        }
        let connection = self.connection.lock().expect("action store lock");
        let placeholders = (0..actions.len())
            .map(|i| format!("?{}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        // ?2 NULL counts every user's.
        let sql = format!(
            "SELECT count(*) FROM actions WHERE automatic = 1 AND requested_at >= ?1 AND action IN ({placeholders})
             AND (?2 IS NULL OR user_name = ?2)
             AND state NOT IN ('awaiting_approval', 'denied') AND approval_reason IS NULL"
        );
        let user: rusqlite::types::Value = user.map_or(rusqlite::types::Value::Null, |user| user.to_string().into());
        let mut values: Vec<rusqlite::types::Value> = vec![since.into(), user];
        values.extend(
            actions
                .iter()
                .map(|name| rusqlite::types::Value::from(name.to_string())),
        );
        connection
            .query_row(&sql, rusqlite::params_from_iter(values.iter()), |row| {
                row.get::<_, u32>(0)
            })
            .map_err(self.sqlite())
    }
}
