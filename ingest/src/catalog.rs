//! The event tables as DataFusion sees them: `events` (Parquet files plus recent events
//! still in memory) and one view per event kind (`network_flow`, `policy_decision`, ...).

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::Result;
use datafusion::prelude::SessionContext;

use crate::storage::Snapshot;
use cordon_schemas::{EventKind, event_schema};

/// Table of events already written to Parquet.
pub const STORED_TABLE: &str = "events_stored";
/// Table of durable events not yet in Parquet.
pub const RECENT_TABLE: &str = "events_recent";
/// Everything stored.
pub const EVENTS_VIEW: &str = "events";

/// The given Parquet files of the event table. The file list is fixed (a snapshot), not
/// the directory, so a query sees what the snapshot saw.
pub fn stored_table(files: &[PathBuf]) -> Result<Arc<dyn TableProvider>> {
    if files.is_empty() {
        return Ok(Arc::new(MemTable::try_new(event_schema(), vec![vec![]])?));
    }
    let urls = files
        .iter()
        .map(|path| ListingTableUrl::parse(std::path::absolute(path)?.to_string_lossy()))
        .collect::<Result<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(event_schema());
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// Registers `events`, its two parts and the per-kind views on `context`.
pub async fn register_event_tables(context: &SessionContext, snapshot: Snapshot) -> Result<()> {
    context.register_table(STORED_TABLE, stored_table(&snapshot.files)?)?;
    context.register_table(
        RECENT_TABLE,
        Arc::new(MemTable::try_new(event_schema(), vec![snapshot.recent])?),
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
        let files = write_partitioned(dir.path(), &[batch_of("a", 0..10)], 1).unwrap();
        let context = SessionContext::new();
        let snapshot = Snapshot {
            files,
            recent: vec![batch_of("b", 0..5)],
            pin: None,
        };
        register_event_tables(&context, snapshot).await.unwrap();
        let count = |sql: &'static str| {
            let context = context.clone();
            async move {
                let batches = context.sql(sql).await.unwrap().collect().await.unwrap();
                batches[0].column(0).as_primitive::<Int64Type>().value(0)
            }
        };
        assert_eq!(count("SELECT count(*) FROM events").await, 15);
        assert_eq!(count("SELECT count(*) FROM file_access WHERE host_id = 'b'").await, 5);
        assert_eq!(count("SELECT count(*) FROM network_flow").await, 0);
    }
}
