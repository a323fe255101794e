//! The responder's look-ups in the stored events (memory and Parquet): the newest
//! `credential.token` issued or refreshed on a host for a user, and how an alert's
//! evidence events arrived (their provenance, for the playbook steps' `trust`).

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use cordon_ingest::storage::EventStore;
use cordon_responder::enrich::{EvidenceProvenance, TargetEnricher};
use cordon_schemas::alert::Evidence;
use datafusion::prelude::{col, lit};
use datafusion::scalar::ScalarValue;

/// Memory one look-up may use.
const MEMORY_LIMIT: usize = 256 << 20;

/// How far back a token is looked for: tokens are short-lived.
const LOOKBACK: Duration = Duration::from_secs(24 * 3600);

pub struct StoredTokens {
    store: Arc<EventStore>,
    runtime: tokio::runtime::Handle,
}

impl StoredTokens {
    pub fn new(store: Arc<EventStore>, runtime: tokio::runtime::Handle) -> StoredTokens {
        StoredTokens { store, runtime }
    }

    async fn query(&self, host_id: &str, user_name: Option<&str>) -> anyhow::Result<Option<String>> {
        let session = crate::query::live_session(&self.store, MEMORY_LIMIT).await?;
        let context = &session.context;
        let since = chrono::Utc::now() - chrono::Duration::from_std(LOOKBACK)?;
        let since = ScalarValue::TimestampNanosecond(since.timestamp_nanos_opt(), Some("UTC".into()));
        // Values go in as literals, never spliced into SQL text.
        let mut frame = context
            .table("credential_token")
            .await?
            .filter(col("host_id").eq(lit(host_id)))?
            .filter(col("credential_action").in_list(vec![lit("issue"), lit("refresh")], false))?
            .filter(col("credential_token_id").is_not_null())?
            .filter(col("time").gt_eq(lit(since)))?;
        if let Some(user) = user_name {
            frame = frame.filter(col("user_name").eq(lit(user)))?;
        }
        let batches = frame
            .sort(vec![col("time").sort(false, false)])?
            .limit(0, Some(1))?
            .select_columns(&["credential_token_id"])?
            .collect()
            .await?;
        let Some(batch) = batches.iter().find(|batch| batch.num_rows() > 0) else {
            return Ok(None);
        };
        let column = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
        let text = column.as_string::<i32>();
        Ok((!text.is_null(0)).then(|| text.value(0).to_string()))
    }
}

/// At most this many evidence events are looked up per alert (the alert store keeps
/// 200 by default).
const MAX_EVIDENCE_LOOKUP: usize = 1_000;

impl StoredTokens {
    async fn provenance(&self, evidence: &[Evidence]) -> anyhow::Result<Vec<EvidenceProvenance>> {
        let session = crate::query::live_session(&self.store, MEMORY_LIMIT).await?;
        let context = &session.context;
        let evidence = &evidence[..evidence.len().min(MAX_EVIDENCE_LOOKUP)];
        let ids: Vec<_> = evidence.iter().map(|event| lit(event.event_id.as_str())).collect();
        let mut hosts: Vec<&str> = evidence.iter().filter_map(|event| event.host_id.as_deref()).collect();
        hosts.sort_unstable();
        hosts.dedup();
        let mut frame = context
            .table(cordon_ingest::catalog::EVENTS_VIEW)
            .await?
            .filter(col("event_id").in_list(ids, false))?;
        // The host narrows the scan when every event names one (it always should).
        if !hosts.is_empty() && evidence.iter().all(|event| event.host_id.is_some()) {
            frame = frame.filter(col("host_id").in_list(hosts.into_iter().map(lit).collect(), false))?;
        }
        let batches = frame
            .select_columns(&["event_id", "producer", "signature_status"])?
            .collect()
            .await?;
        let mut found = Vec::new();
        for batch in &batches {
            let text = |index: usize| arrow::compute::cast(batch.column(index), &arrow::datatypes::DataType::Utf8);
            let (ids, producers, signatures) = (text(0)?, text(1)?, text(2)?);
            let (ids, producers, signatures) = (
                ids.as_string::<i32>(),
                producers.as_string::<i32>(),
                signatures.as_string::<i32>(),
            );
            for row in 0..batch.num_rows() {
                found.push(EvidenceProvenance {
                    event_id: ids.value(row).to_string(),
                    producer: (!producers.is_null(row)).then(|| producers.value(row).to_string()),
                    signature_status: signatures.value(row).to_string(),
                });
            }
        }
        Ok(found)
    }
}

impl TargetEnricher for StoredTokens {
    fn evidence_provenance(&self, evidence: &[Evidence]) -> Option<Vec<EvidenceProvenance>> {
        match self.runtime.block_on(self.provenance(evidence)) {
            Ok(found) => Some(found),
            Err(error) => {
                tracing::warn!(%error, "cannot read how the evidence arrived; responses that need trusted evidence wait for approval");
                None
            }
        }
    }

    /// Called from the responder's blocking thread, so waiting on the query is fine.
    fn latest_token(&self, host_id: &str, user_name: Option<&str>) -> Option<String> {
        match self.runtime.block_on(self.query(host_id, user_name)) {
            Ok(token) => token,
            Err(error) => {
                tracing::warn!(host = host_id, %error, "cannot look up the agent's token; revoking without a token id");
                None
            }
        }
    }
}
