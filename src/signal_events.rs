//! Signals flow back as events: each match of a rule with `alert = false` is stored as
//! a `cordon.signal` event (cordon_detections::signals), so other rules read it as the
//! `signals` table, hunts find it, and the entity view shows it. Its id is fixed by the
//! rule and the match's evidence: a signal found again after a restart (the replay
//! of recent events) is dropped by the store as a duplicate.

use std::sync::Arc;

use cordon_ingest::Ingestor;
use cordon_ingest::ingestor::Transport;
use prometheus_client::metrics::gauge::Gauge;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

/// Signals stored in one request at most.
const PER_ROUND: usize = 500;

/// Stores signals as the detections send them, until the detections stop. `queued` is
/// the detections' queued-events gauge, which counted each signal when it was sent:
/// counted down once it is stored (and so queued for the rules in turn) or refused.
pub async fn run(mut signals: UnboundedReceiver<Value>, ingestor: Arc<Ingestor>, queued: Gauge) {
    while let Some(first) = signals.recv().await {
        let mut events = vec![first];
        while events.len() < PER_ROUND {
            match signals.try_recv() {
                Ok(more) => events.push(more),
                Err(_) => break,
            }
        }
        match ingestor.ingest_flat(Transport::Detections, &events).await {
            Ok(stored) if stored.rejected > 0 => {
                tracing::error!(rejected = stored.rejected, message = %stored.message, "signals refused by the store");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, signals = events.len(), "cannot store signals; they are found again when recent events are replayed");
            }
        }
        queued.dec_by(events.len() as i64);
    }
}
