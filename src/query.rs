//! Read-only DataFusion SQL over the stored events, through one session builder
//! ([`session_over`]): the running server's readers (hunts, timelines, the responder's
//! look-ups, the demo) query the live store's snapshot ([`live`]); `cordon query` and
//! the offline commands read the files ([`session`], [`query`]).

use std::sync::Arc;

use anyhow::Context;
use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use cordon_ingest::StorageConfig;
use cordon_ingest::catalog::register_event_tables;
use cordon_ingest::storage::readers::ReadPin;
use cordon_ingest::storage::{EventStore, Snapshot, read_snapshot};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::StreamExt;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

/// A session over the event tables, and what keeps its files on disk while it reads.
pub struct EventSession {
    pub context: SessionContext,
    /// A live snapshot's pin: a compaction's replaced files wait until it is dropped.
    pin: Option<Arc<ReadPin>>,
}

impl EventSession {
    /// The pin, for a reader that hands the context on and must keep the files.
    pub fn pin(&self) -> Option<Arc<ReadPin>> {
        self.pin.clone()
    }
}

/// A session over the files in the data directory (Parquet plus what is still in the
/// write-ahead log), for `cordon query` and offline commands: the server need not run.
pub async fn session(storage: &StorageConfig, memory_limit_bytes: usize) -> anyhow::Result<EventSession> {
    let storage_config = storage.clone();
    let snapshot = tokio::task::spawn_blocking(move || read_snapshot(&storage_config)).await??;
    session_over(snapshot, memory_limit_bytes)
        .await
        .with_context(|| format!("cannot open the event tables in {}", storage.data_dir.display()))
}

/// A session over the running server's store (its memory and its Parquet files).
pub async fn live_session(store: &EventStore, memory_limit_bytes: usize) -> anyhow::Result<EventSession> {
    session_over(store.snapshot()?, memory_limit_bytes).await
}

/// Runs `sql` over the running server's store.
pub async fn live(store: &EventStore, sql: &str, memory_limit_bytes: usize) -> anyhow::Result<Vec<RecordBatch>> {
    let session = live_session(store, memory_limit_bytes).await?;
    run(&session.context, sql).await
}

/// The one session builder: the event tables over `snapshot`, the rules' functions, a
/// memory limit so a careless query cannot take the host.
pub async fn session_over(snapshot: Snapshot, memory_limit_bytes: usize) -> anyhow::Result<EventSession> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(memory_limit_bytes, 1.0)
        .build_arc()?;
    let state = SessionStateBuilder::new()
        .with_config(SessionConfig::new().with_information_schema(true))
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rules(crate::yield_points::rules())
        .build();
    let context = SessionContext::new_with_state(state);
    // Hunts call the functions rules do, under the same bound on what one call makes.
    cordon_detections::udf::register(&context);
    cordon_detections::bounded_functions::register(&context, memory_limit_bytes / 4);
    let pin = snapshot.pin.clone();
    register_event_tables(&context, snapshot).await?;
    Ok(EventSession { context, pin })
}

/// Opens a session over the files and runs `sql`. From another process than the
/// server's, a compaction may remove a replaced file between the listing and the read
/// (the server's own readers hold pins instead): then it lists again, up to twice.
pub async fn query(storage: &StorageConfig, sql: &str, memory_limit_bytes: usize) -> anyhow::Result<Vec<RecordBatch>> {
    let mut attempt = 0;
    loop {
        let session = session(storage, memory_limit_bytes).await?;
        match run(&session.context, sql).await {
            Err(error) if attempt < 2 && is_missing_file(&error) => attempt += 1,
            result => return result,
        }
    }
}

/// Whether `error` comes from a file that was listed and is gone.
fn is_missing_file(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
            || matches!(
                cause.downcast_ref::<datafusion::object_store::Error>(),
                Some(datafusion::object_store::Error::NotFound { .. })
            )
    })
}

/// Runs one read-only statement.
pub async fn run(context: &SessionContext, sql: &str) -> anyhow::Result<Vec<RecordBatch>> {
    // Size and nesting first: planning a deeply nested expression overflows the stack.
    cordon_detections::guard::single_query(sql).map_err(|refusal| anyhow::anyhow!(refusal.message))?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let frame = context.sql_with_options(sql, options).await?;
    Ok(frame.collect().await?)
}

/// Every column as text, for formats that only take text (CSV).
fn stringify(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    let options = FormatOptions::default().with_null("");
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
        let values: StringArray = (0..column.len())
            .map(|row| (!column.is_null(row)).then(|| formatter.value(row).to_string()))
            .collect();
        fields.push(Field::new(field.name(), DataType::Utf8, true));
        columns.push(Arc::new(values));
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// Renders results in `format`.
pub fn render(batches: &[RecordBatch], format: OutputFormat) -> anyhow::Result<String> {
    match format {
        OutputFormat::Table => Ok(arrow::util::pretty::pretty_format_batches(batches)?.to_string()),
        OutputFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(Vec::new());
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            let mut text = String::from_utf8(writer.into_inner())?;
            if text.is_empty() {
                text.push_str("[]");
            }
            Ok(text)
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(Vec::new());
            for batch in batches {
                writer.write(&stringify(batch)?)?;
            }
            Ok(String::from_utf8(writer.into_inner())?)
        }
    }
}

/// A stored stream (a backtest) as bursts of up to `max_events` events, as the server
/// evaluates under load, read ahead by a task of its own: the next burst is read while
/// the rules work on this one.
pub fn bursts(
    mut stream: datafusion::execution::SendableRecordBatchStream,
    max_events: usize,
) -> tokio::sync::mpsc::Receiver<datafusion::error::Result<RecordBatch>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            let burst = next_burst(&mut stream, max_events).await.transpose();
            let Some(burst) = burst else { break };
            let failed = burst.is_err();
            if sender.send(burst).await.is_err() || failed {
                break;
            }
        }
    });
    receiver
}

/// The next burst of `stream`: its batches up to `max_events` events, concatenated.
async fn next_burst(
    stream: &mut datafusion::execution::SendableRecordBatchStream,
    max_events: usize,
) -> datafusion::error::Result<Option<RecordBatch>> {
    let mut batches = Vec::new();
    let mut total = 0;
    while total < max_events {
        let Some(batch) = stream.next().await else { break };
        let batch = batch?;
        total += batch.num_rows();
        batches.push(batch);
    }
    match batches.first() {
        None => Ok(None),
        Some(first) => Ok(Some(arrow::compute::concat_batches(&first.schema(), &batches)?)),
    }
}

#[cfg(test)]
mod tests {
    use datafusion::object_store::ObjectStoreExt;
    use datafusion::object_store::local::LocalFileSystem;

    use super::*;

    #[tokio::test]
    async fn a_file_gone_after_the_listing_is_told_apart_from_other_errors() {
        let dir = tempfile::tempdir().unwrap();
        // As the libraries report it: the object store DataFusion reads through, and std.
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let gone = store.head(&"part-gone.parquet".into()).await.unwrap_err();
        let error = anyhow::Error::from(datafusion::error::DataFusionError::ObjectStore(Box::new(gone)));
        assert!(is_missing_file(&error.context("reading the events")), "through context");
        let io = std::fs::read(dir.path().join("part-gone.parquet")).unwrap_err();
        assert!(is_missing_file(&anyhow::Error::from(io)));
        let session = session_over(Snapshot::default(), 64 << 20).await.unwrap();
        let error = run(&session.context, "SELECT nope FROM events").await.unwrap_err();
        assert!(!is_missing_file(&error), "{error:#}");
    }
}
