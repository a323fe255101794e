//! Kept rows handed to a rule's stages (match.sql with its flags, compact.sql as
//! stored), gathered into batches of about `TARGET_ROWS`. Not one batch per
//! partition: match.sql over thousands of few-row batches paid per batch in every
//! operator, and its memory accounting charged each small array its whole
//! 64-byte-rounded buffers (a 250,000-event burst's join was refused at 356 MB of a
//! 256 MB pool). Nor all in one: at 200,000 events/s copying every evaluated row copied
//! most of a rule's state each burst. A batch already that big goes as it is, never
//! copied: arrow's `BatchCoalescer` bypasses big batches only when little is buffered,
//! and otherwise copies them into the buffer.

use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

/// Rows per gathered batch, at least (DataFusion's own batch size).
pub(crate) const TARGET_ROWS: usize = 8192;

pub(crate) struct BatchGather {
    schema: SchemaRef,
    done: Vec<RecordBatch>,
    parts: Vec<RecordBatch>,
    rows: usize,
}

impl BatchGather {
    pub fn new(schema: SchemaRef) -> BatchGather {
        BatchGather {
            schema,
            done: Vec::new(),
            parts: Vec::new(),
            rows: 0,
        }
    }

    pub fn push(&mut self, batch: RecordBatch) -> Result<(), ArrowError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if batch.num_rows() >= TARGET_ROWS {
            self.flush()?;
            self.done.push(batch);
            return Ok(());
        }
        self.rows += batch.num_rows();
        self.parts.push(batch);
        if self.rows >= TARGET_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Vec<RecordBatch>, ArrowError> {
        self.flush()?;
        Ok(self.done)
    }

    fn flush(&mut self) -> Result<(), ArrowError> {
        let parts = std::mem::take(&mut self.parts);
        self.rows = 0;
        match parts.as_slice() {
            [] => {}
            [one] => self.done.push(one.clone()),
            _ => self.done.push(concat_batches(&self.schema, &parts)?),
        }
        Ok(())
    }
}
