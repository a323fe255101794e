//! One partition of a rule's kept rows (see `window.rs`): its rows, as arrays while
//! its key is heard from and packed (`cold_rows.rs`) once it has been silent for a
//! whole sweep round, with what the window needs to know of them without reading them.

use std::borrow::Cow;

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::row::Rows;

use crate::cold_rows::ColdRows;

#[derive(Clone)]
pub(crate) struct Partition {
    /// Empty while the rows are packed.
    pub batches: Vec<RecordBatch>,
    /// Boxed: most partitions are not packed, and each is a map entry.
    packed: Option<Box<Rows>>,
    /// Batches from this index on arrived in evaluation `tick`.
    pub new_from: usize,
    pub tick: u64,
    /// The evaluation that created it.
    pub born: u64,
    /// The earliest expiry of its rows (ns).
    pub earliest_expiry: i64,
    /// The newest row time (ns): the partition's clock when its key has none.
    pub newest: i64,
    /// The watermark of its last evaluation: rows due at or after it have not fired.
    pub due_watermark: i64,
    /// The earliest `due_at` not yet fired (i64::MAX: none).
    pub earliest_due: i64,
    pub rows: usize,
}

impl Partition {
    pub fn new(tick: u64) -> Partition {
        Partition {
            batches: Vec::new(),
            packed: None,
            new_from: 0,
            tick,
            born: tick,
            earliest_expiry: i64::MAX,
            newest: i64::MIN,
            due_watermark: i64::MIN,
            earliest_due: i64::MAX,
            rows: 0,
        }
    }

    #[cfg(test)]
    pub fn is_packed(&self) -> bool {
        self.packed.is_some()
    }

    /// Packs the rows into one buffer; all of them old.
    pub fn pack(&mut self, cold: &ColdRows) -> Result<(), ArrowError> {
        if self.packed.is_some() || self.batches.is_empty() {
            return Ok(());
        }
        self.packed = Some(Box::new(cold.pack(&self.batches)?));
        self.batches = Vec::new();
        self.new_from = 0;
        Ok(())
    }

    /// Unpacks the rows (if packed) so that they can be changed.
    pub fn unpack(&mut self, cold: Option<&ColdRows>) -> Result<(), ArrowError> {
        if let (Some(packed), Some(cold)) = (&self.packed, cold) {
            self.batches = vec![cold.unpack(packed)?];
            self.new_from = 1;
            self.packed = None;
        }
        Ok(())
    }

    /// Replaces the rows; all old.
    pub fn set_batches(&mut self, batches: Vec<RecordBatch>) {
        self.packed = None;
        self.new_from = batches.len();
        self.batches = batches;
    }

    /// The rows as batches, unpacked for the reader if packed.
    pub fn batches(&self, cold: Option<&ColdRows>) -> Result<Cow<'_, [RecordBatch]>, ArrowError> {
        match (&self.packed, cold) {
            (Some(packed), Some(cold)) => Ok(Cow::Owned(vec![cold.unpack(packed)?])),
            _ => Ok(Cow::Borrowed(&self.batches)),
        }
    }
}
