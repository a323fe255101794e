//! The responder's token lookup: the newest `credential.token` issued or refreshed on
//! a host for a user, from the stored events (memory and Parquet).

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use cordon_ingest::storage::EventStore;
use cordon_responder::enrich::TargetEnricher;
use datafusion::prelude::{SessionContext, col, lit};
use datafusion::scalar::ScalarValue;

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
        let context = SessionContext::new();
        cordon_ingest::catalog::register_event_tables(&context, self.store.snapshot()?).await?;
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

impl TargetEnricher for StoredTokens {
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
