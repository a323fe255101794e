//! Triage: status, close reason, assignee and notes, each change written to the
//! alert's history in the same transaction.

use cordon_schemas::time::now_nanos;
use rusqlite::{Transaction, params};

use super::model::{Alert, AlertStatus, CloseReason, Triage};
use super::store::AlertStore;
use crate::error::AlertStoreError;

impl AlertStore {
    /// Applies a triage request by `who`: status, close reason, assignee, note. Each
    /// change is also written to the alert's notes. None when there is no such alert;
    /// an error message when the request does not fit (closing without a reason).
    pub fn triage(
        &self,
        id: &str,
        triage: &Triage,
        who: &str,
    ) -> Result<Result<Option<Alert>, String>, AlertStoreError> {
        let mut connection = self.connection.lock().expect("alert store lock");
        let transaction = connection.transaction().map_err(self.sqlite())?;
        let outcome = self.triage_in(&transaction, id, triage, who).map_err(self.sqlite())?;
        if matches!(outcome, Ok(Some(_))) {
            transaction.commit().map_err(self.sqlite())?;
        }
        Ok(outcome)
    }

    fn triage_in(
        &self,
        transaction: &Transaction<'_>,
        id: &str,
        triage: &Triage,
        who: &str,
    ) -> Result<Result<Option<Alert>, String>, rusqlite::Error> {
        let Some(alert) = self.get_in(transaction, id)? else {
            return Ok(Ok(None));
        };
        let status = triage.status.unwrap_or(alert.status);
        if status == AlertStatus::Closed && triage.close_reason.or(alert.close_reason).is_none() {
            let reasons: Vec<&str> = CloseReason::ALL.iter().map(|reason| reason.as_str()).collect();
            return Ok(Err(format!(
                "closing needs a close_reason: one of {}",
                reasons.join(", ")
            )));
        }
        if triage.close_reason.is_some() && status != AlertStatus::Closed {
            return Ok(Err("a close_reason goes with status closed".into()));
        }
        if let Some(note) = &triage.note
            && note.trim().is_empty()
        {
            return Ok(Err("a note needs text".into()));
        }
        let mut changes = Vec::new();
        if status != alert.status {
            changes.push(format!("status {} -> {}", alert.status.as_str(), status.as_str()));
        }
        let close_reason = match status {
            AlertStatus::Closed => triage.close_reason.or(alert.close_reason),
            _ => None,
        };
        if close_reason != alert.close_reason
            && let Some(reason) = close_reason
        {
            changes.push(format!("closed as {}", reason.as_str()));
        }
        let assignee = match triage.assignee.as_deref().map(str::trim) {
            None => alert.assignee.clone(),
            Some("") => None,
            Some(name) => Some(name.to_string()),
        };
        if assignee != alert.assignee {
            changes.push(match &assignee {
                Some(name) => format!("assigned to {name}"),
                None => "unassigned".to_string(),
            });
        }
        let now = now_nanos();
        transaction.execute(
            "UPDATE alerts SET status = ?2, close_reason = ?3, assignee = ?4, updated_at = ?5 WHERE id = ?1",
            params![
                id,
                status.as_str(),
                close_reason.map(CloseReason::as_str),
                assignee,
                now
            ],
        )?;
        let add = |kind: &str, text: &str| -> Result<(), rusqlite::Error> {
            transaction.execute(
                "INSERT INTO alert_notes (alert_id, seq, at, author, kind, text)
                 VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM alert_notes WHERE alert_id = ?1), ?2, ?3, ?4, ?5)",
                params![id, now, who, kind, text],
            )?;
            Ok(())
        };
        if !changes.is_empty() {
            add("change", &changes.join("; "))?;
        }
        if let Some(note) = &triage.note {
            add("note", note.trim())?;
        }
        Ok(Ok(self.get_in(transaction, id)?))
    }
}
