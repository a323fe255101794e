//! Folding matches into alerts: at most one open alert per (rule, entity) per
//! suppression period. A match already folded (same evidence, or evidence the alert
//! already holds) changes nothing, so re-sent events and a replay after a restart never
//! raise an alert twice.

use cordon_schemas::time::now_nanos;
use rusqlite::{Transaction, params};

use super::model::{AlertStatus, risk_score};
use super::store::{AlertStore, Folded, RuleMeta};
use crate::error::AlertStoreError;
use crate::matches::Match;
use crate::settings::MissingField;

fn match_hash(found: &Match) -> i64 {
    found.evidence_hash() as i64
}

/// The key matches fold under: the entity, and the rule's `suppress_by` fields (from
/// the match's output, else its entity). False when a field is missing and the rule
/// says a missing field is never suppressed.
fn suppression_key(found: &Match, meta: &RuleMeta) -> (String, bool) {
    let mut key = found.entity_key();
    let mut suppressible = true;
    for field in &meta.suppress_by {
        let value = found
            .fields
            .get(field)
            .filter(|value| !value.is_null())
            .map(|value| match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            });
        if value.is_none() && meta.suppress_missing == MissingField::Never {
            suppressible = false;
        }
        key.push_str(&format!(" | {field}={}", value.unwrap_or_default()));
    }
    (key, suppressible)
}

impl AlertStore {
    /// Folds one match into the alerts of its rule and entity.
    pub fn fold(&self, found: &Match, meta: &RuleMeta) -> Result<Folded, AlertStoreError> {
        let mut connection = self.connection.lock().expect("alert store lock");
        let transaction = connection.transaction().map_err(self.sqlite())?;
        let outcome = self.fold_in(&transaction, found, meta).map_err(self.sqlite())?;
        transaction.commit().map_err(self.sqlite())?;
        Ok(match outcome {
            None => Folded::Unchanged,
            Some((id, created)) => {
                let alert = self
                    .get_in(&connection, &id)
                    .map_err(self.sqlite())?
                    .ok_or_else(|| AlertStoreError::Corrupt(format!("alert {id} vanished")))?;
                if created {
                    Folded::Created(alert)
                } else {
                    Folded::Updated(alert)
                }
            }
        })
    }

    fn fold_in(
        &self,
        tx: &Transaction<'_>,
        found: &Match,
        meta: &RuleMeta,
    ) -> Result<Option<(String, bool)>, rusqlite::Error> {
        let (entity_key, suppressible) = suppression_key(found, meta);
        let hash = match_hash(found);
        let mut statement = tx.prepare_cached(
            "SELECT id, status, first_seen FROM alerts WHERE rule_id = ?1 AND entity_key = ?2
             ORDER BY first_seen DESC LIMIT 32",
        )?;
        let candidates: Vec<(String, String, i64)> = statement
            .query_map(params![found.rule_id, entity_key], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        for (id, _, _) in &candidates {
            let known: bool = tx
                .prepare_cached("SELECT 1 FROM alert_matches WHERE alert_id = ?1 AND match_hash = ?2")?
                .exists(params![id, hash])?;
            if known {
                return Ok(None);
            }
            let mut held = 0usize;
            let mut check = tx.prepare_cached("SELECT 1 FROM alert_evidence WHERE alert_id = ?1 AND event_id = ?2")?;
            for evidence in &found.evidence {
                if check.exists(params![id, evidence.event_id])? {
                    held += 1;
                }
            }
            if held == found.evidence.len() {
                tx.execute(
                    "INSERT OR IGNORE INTO alert_matches (alert_id, match_hash) VALUES (?1, ?2)",
                    params![id, hash],
                )?;
                return Ok(None);
            }
        }
        let suppression = meta.suppression.as_nanos() as i64;
        let target = candidates
            .iter()
            .filter(|_| suppressible)
            .find(|(_, status, first_seen)| {
                status != AlertStatus::Closed.as_str() && found.first_seen < first_seen.saturating_add(suppression)
            });
        let now = now_nanos();
        let fields = serde_json::Value::Object(found.fields.clone()).to_string();
        let (id, created) = match target {
            Some((id, _, _)) => {
                tx.execute(
                    "UPDATE alerts SET count = count + 1, first_seen = min(first_seen, ?2),
                     last_seen = max(last_seen, ?3), fields = ?4, updated_at = ?5 WHERE id = ?1",
                    params![id, found.first_seen, found.last_seen, fields, now],
                )?;
                (id.clone(), false)
            }
            None => {
                let id = format!("alr-{}", uuid::Uuid::new_v4().simple());
                let entity = serde_json::to_string(&found.entity).expect("a map of strings serializes");
                let attack = serde_json::to_string(&meta.attack).expect("strings serialize");
                tx.execute(
                    "INSERT INTO alerts (id, rule_id, entity_key, entity, title, severity, attack, status,
                     host_id, user_name, agent_id, first_seen, last_seen, count, risk, fields, evidence_total,
                     created_at, updated_at, detected_after)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8, ?9, ?10, ?11, ?12, 1, 0, ?13, 0, ?14, ?14, ?15)",
                    params![
                        id,
                        found.rule_id,
                        entity_key,
                        entity,
                        meta.title,
                        meta.severity.as_str(),
                        attack,
                        found.value("host_id"),
                        found.value("user_name"),
                        found.value("gen_ai_agent_id"),
                        found.first_seen,
                        found.last_seen,
                        fields,
                        now,
                        found.detected_after
                    ],
                )?;
                (id, true)
            }
        };
        let held: i64 = tx.query_row(
            "SELECT count(*) FROM alert_evidence WHERE alert_id = ?1",
            params![id],
            |row| row.get(0),
        )?;
        let mut room = self.evidence_cap.saturating_sub(held as usize);
        let mut added_total = 0i64;
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO alert_evidence (alert_id, event_id, host_id, time, kind) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut exists = tx.prepare_cached("SELECT 1 FROM alert_evidence WHERE alert_id = ?1 AND event_id = ?2")?;
        for evidence in &found.evidence {
            if exists.exists(params![id, evidence.event_id])? {
                continue;
            }
            added_total += 1;
            if room > 0 {
                insert.execute(params![
                    id,
                    evidence.event_id,
                    evidence.host_id,
                    evidence.time,
                    evidence.kind
                ])?;
                room -= 1;
            }
        }
        tx.execute(
            "INSERT OR IGNORE INTO alert_matches (alert_id, match_hash) VALUES (?1, ?2)",
            params![id, hash],
        )?;
        let (count, evidence_total): (i64, i64) = tx.query_row(
            "UPDATE alerts SET evidence_total = evidence_total + ?2 WHERE id = ?1 RETURNING count, evidence_total",
            params![id, added_total],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        tx.execute(
            "UPDATE alerts SET risk = ?2 WHERE id = ?1",
            params![id, risk_score(meta.severity, count as u64, evidence_total as u64)],
        )?;
        Ok(Some((id, created)))
    }
}
