//! The event tables as DataFusion sees them: `events` (Parquet files plus recent events
//! still in memory) and one view per event kind (`network_flow`, `policy_decision`, ...).

use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result;
use datafusion::prelude::SessionContext;

use cordon_schemas::{EventKind, event_schema};

/// Table of events already written to Parquet.
pub const STORED_TABLE: &str = "events_stored";
/// Table of durable events not yet in Parquet.
pub const RECENT_TABLE: &str = "events_recent";
/// Everything stored.
pub const EVENTS_VIEW: &str = "events";

/// The Parquet files under `events_dir`, partitioned by `date` and `hour`.
pub fn stored_table(events_dir: &Path) -> Result<ListingTable> {
    std::fs::create_dir_all(events_dir)?;
    let absolute = std::fs::canonicalize(events_dir)?;
    let url = ListingTableUrl::parse(format!("{}/", absolute.display()))?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(vec![
            ("date".into(), DataType::Utf8),
            ("hour".into(), DataType::Utf8),
        ]);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(event_schema());
    ListingTable::try_new(config)
}

/// Registers `events`, its two parts and the per-kind views on `context`.
pub async fn register_event_tables(
    context: &SessionContext,
    events_dir: &Path,
    recent: Vec<RecordBatch>,
) -> Result<()> {
    context.register_table(STORED_TABLE, Arc::new(stored_table(events_dir)?))?;
    context.register_table(
        RECENT_TABLE,
        Arc::new(MemTable::try_new(event_schema(), vec![recent])?),
    )?;
    let columns: Vec<String> = event_schema()
        .fields()
        .iter()
        .map(|field| format!("\"{}\"", field.name()))
        .collect();
    let columns = columns.join(", ");
    context
        .sql(&format!(
            "CREATE VIEW {EVENTS_VIEW} AS SELECT {columns} FROM {STORED_TABLE} UNION ALL SELECT {columns} FROM {RECENT_TABLE}"
        ))
        .await?;
    for kind in EventKind::ALL {
        context
            .sql(&format!(
                "CREATE VIEW {} AS SELECT * FROM {EVENTS_VIEW} WHERE event_name = '{}'",
                kind.table_name(),
                kind.as_str()
            ))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::partition::write_partitioned;
    use crate::storage::wal::tests::batch_of;
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;

    #[tokio::test]
    async fn events_unites_parquet_and_memory_and_kind_views_filter() {
        let dir = tempfile::tempdir().unwrap();
        write_partitioned(dir.path(), &[batch_of("a", 0..10)]).unwrap();
        let context = SessionContext::new();
        register_event_tables(&context, dir.path(), vec![batch_of("b", 0..5)])
            .await
            .unwrap();
        let count = |sql: &'static str| {
            let context = context.clone();
            async move {
                let batches = context.sql(sql).await.unwrap().collect().await.unwrap();
                batches[0].column(0).as_primitive::<Int64Type>().value(0)
            }
        };
        assert_eq!(count("SELECT count(*) FROM events").await, 15);
        assert_eq!(
            count("SELECT count(*) FROM file_access WHERE host_id = 'b'").await,
            5
        );
        assert_eq!(count("SELECT count(*) FROM network_flow").await, 0);
    }
}
