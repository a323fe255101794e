//! `cordon query`: read-only DataFusion SQL over everything stored.

use std::sync::Arc;

use anyhow::Context;
use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use cordon_ingest::StorageConfig;
use cordon_ingest::catalog::register_event_tables;
use cordon_ingest::storage::{Snapshot, read_snapshot};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

/// A session with the event tables registered, reading Parquet plus what is still in
/// the write-ahead log, with a memory limit so a careless query cannot take the host.
pub async fn session(storage: &StorageConfig, memory_limit_bytes: usize) -> anyhow::Result<SessionContext> {
    let storage_config = storage.clone();
    let snapshot = tokio::task::spawn_blocking(move || read_snapshot(&storage_config)).await??;
    session_over(snapshot, memory_limit_bytes)
        .await
        .with_context(|| format!("cannot open the event tables in {}", storage.data_dir.display()))
}

/// A session over `snapshot` (the running server's store: no reading of the WAL).
pub async fn session_over(snapshot: Snapshot, memory_limit_bytes: usize) -> anyhow::Result<SessionContext> {
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
    register_event_tables(&context, snapshot).await?;
    Ok(context)
}

/// Opens a session and runs `sql`, once more if a compaction removed a file under it.
pub async fn query(storage: &StorageConfig, sql: &str, memory_limit_bytes: usize) -> anyhow::Result<Vec<RecordBatch>> {
    let mut attempt = 0;
    loop {
        let context = session(storage, memory_limit_bytes).await?;
        match run(&context, sql).await {
            Err(error) if attempt < 2 && format!("{error:#}").contains("No such file") => attempt += 1,
            result => return result,
        }
    }
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
