//! The batches match.sql reads: the evaluated partitions' kept rows with their
//! `is_new` and `is_due` flags, gathered into batches of about `TARGET_ROWS`. Not one
//! batch per partition: match.sql over thousands of few-row batches paid per batch in
//! every operator, and its memory accounting charged each small array its whole
//! 64-byte-rounded buffers (a 250,000-event burst's join was refused at 356 MB of a
//! 256 MB pool). Nor all in one: at 200,000 events/s copying every evaluated row
//! copied most of a rule's state each burst. A batch already that big goes as it is.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray};
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

/// Rows per batch match.sql reads, at least (DataFusion's own batch size).
pub(crate) const TARGET_ROWS: usize = 8192;

pub(crate) struct MatchBatches {
    /// The kept rows' schema, and the same with the two flags.
    schema: SchemaRef,
    with_flags: SchemaRef,
    done: Vec<RecordBatch>,
    parts: Vec<RecordBatch>,
    new: Vec<bool>,
    due: Vec<bool>,
}

impl MatchBatches {
    pub fn new(schema: SchemaRef, with_flags: SchemaRef) -> MatchBatches {
        MatchBatches {
            schema,
            with_flags,
            done: Vec::new(),
            parts: Vec::new(),
            new: Vec::new(),
            due: Vec::new(),
        }
    }

    /// Adds `batch`, all of it new or all old, and whether each row falls due.
    pub fn push(&mut self, batch: &RecordBatch, new: bool, due: impl Iterator<Item = bool>) -> Result<(), ArrowError> {
        let big = batch.num_rows() >= TARGET_ROWS;
        if big {
            self.flush()?;
        }
        self.new.extend(std::iter::repeat_n(new, batch.num_rows()));
        self.due.extend(due);
        self.parts.push(batch.clone());
        if big || self.new.len() >= TARGET_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Vec<RecordBatch>, ArrowError> {
        self.flush()?;
        Ok(self.done)
    }

    /// The rows gathered so far as one batch with its flags.
    fn flush(&mut self) -> Result<(), ArrowError> {
        let parts = std::mem::take(&mut self.parts);
        let mut columns = match parts.as_slice() {
            [] => return Ok(()),
            [one] => one.columns().to_vec(),
            _ => concat_batches(&self.schema, &parts)?.columns().to_vec(),
        };
        columns.push(Arc::new(BooleanArray::from(std::mem::take(&mut self.new))) as ArrayRef);
        columns.push(Arc::new(BooleanArray::from(std::mem::take(&mut self.due))) as ArrayRef);
        self.done.push(RecordBatch::try_new(self.with_flags.clone(), columns)?);
        Ok(())
    }
}
