//! Responses flow back as events: each outcome the responder records (requested, held
//! for approval, approved, denied, delivered, failed, dry run) is stored as a
//! `cordon.response` event on the target's host, so rules can use it
//! (`activity-after-isolation`: a host that keeps talking after its isolation was
//! delivered).
//!
//! The feed follows the responder's audit log with a cursor kept in the responder's
//! database and moved only once the events are durable; each event's id is fixed by
//! its audit entry, so an entry stored again after a crash between the two is dropped
//! as a duplicate by the store.

use std::sync::Arc;
use std::time::Duration;

use cordon_ingest::Ingestor;
use cordon_ingest::ingestor::Transport;
use cordon_responder::store::AuditFilter;
use cordon_responder::{Action, AuditEntry, Responder};
use serde_json::{Value, json};
use tokio::sync::watch;

/// The event kind (schemas/CONTRACT.md, section 4).
pub const KIND: &str = "cordon.response";
/// The responder's name for this reader's position in its audit log.
const CURSOR: &str = "response_events";
/// Host id of responses that name no host (a token revoked for a user alone).
pub const NO_HOST: &str = "cordon";
const PER_ROUND: usize = 500;

/// The outcome an audit entry records, in the contract's words; None for the
/// responder's internal steps (each attempt, a scheduled retry, a resume).
pub fn outcome(audit_event: &str) -> Option<&'static str> {
    Some(match audit_event {
        "requested" => "requested",
        "held" => "held",
        "approved" => "approved",
        "denied" => "denied",
        "succeeded" => "delivered",
        "failed" => "failed",
        "dry_run" => "dry_run",
        _ => return None,
    })
}

/// The flat event (contract section 3) of one audit entry of `action`.
pub fn event_of(entry: &AuditEntry, action: &Action) -> Option<Value> {
    let outcome = outcome(&entry.event)?;
    let mut event = json!({
        "time": entry.at,
        "event.name": KIND,
        "event.id": format!("cordon-response-{}-{}", entry.action_id, entry.seq),
        "service.name": "cordon.responder",
        "host.id": action.target.host_id.as_deref().unwrap_or(NO_HOST),
        "response.action": action.action,
        "response.outcome": outcome,
        "response.action_id": action.id,
        "response.actor": entry.actor,
    });
    let object = event.as_object_mut().expect("an object");
    for (key, value) in [
        ("user.name", action.target.user_name.as_deref()),
        ("credential.token_id", action.target.token_id.as_deref()),
        ("response.alert_id", action.alert_id.as_deref()),
        ("response.rule_id", action.rule_id.as_deref()),
    ] {
        if let Some(value) = value {
            object.insert(key.to_string(), Value::from(value));
        }
    }
    if let Some(code) = entry.status_code {
        object.insert("response.status_code".into(), Value::from(code));
    }
    Some(event)
}

/// Stores the outcomes recorded since the cursor; returns how many entries it read.
pub async fn store_new(responder: &Responder, ingestor: &Ingestor) -> anyhow::Result<usize> {
    let after = responder.cursor(CURSOR)?.unwrap_or(0);
    let entries = responder.audit(&AuditFilter {
        after_seq: Some(after),
        limit: PER_ROUND,
        ..AuditFilter::default()
    })?;
    let Some(last) = entries.last().map(|entry| entry.seq) else {
        return Ok(0);
    };
    let mut events = Vec::new();
    for entry in &entries {
        if outcome(&entry.event).is_none() {
            continue;
        }
        if let Some(action) = responder.get(&entry.action_id)?
            && let Some(event) = event_of(entry, &action)
        {
            events.push(event);
        }
    }
    if !events.is_empty() {
        let stored = ingestor.ingest_flat(Transport::Responder, &events).await?;
        if stored.rejected > 0 {
            tracing::error!(rejected = stored.rejected, message = %stored.message, "response events refused by the store");
        }
    }
    responder.set_cursor(CURSOR, last)?;
    Ok(entries.len())
}

/// Follows the responder's audit log until `stop`, storing each outcome as an event.
pub async fn run(responder: Arc<Responder>, ingestor: Arc<Ingestor>, mut stop: watch::Receiver<bool>) {
    loop {
        let read = match store_new(&responder, &ingestor).await {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(error = %error, "cannot store response events yet; will retry");
                0
            }
        };
        if read == PER_ROUND {
            continue;
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}
