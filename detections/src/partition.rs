//! One partition of a rule's kept rows (see `window.rs`): its rows, as arrays while
//! its key is heard from and packed (`cold_rows.rs`) once it has been silent for a
//! whole sweep round, with what the window needs to know of them without reading them.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::row::Rows;

use crate::cold_rows::ColdRows;

/// A partition holds at most this many batches of old rows.
const MAX_BATCHES: usize = 8;

#[derive(Clone)]
pub(crate) struct Partition {
    /// Empty while the rows are packed.
    pub batches: Vec<RecordBatch>,
    /// Shared: an evaluation keeps each partition it changes as it was (to undo a
    /// failure), and a deep copy of a packed buffer for that cost more than its rows.
    packed: Option<Arc<Rows>>,
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
    /// How many of its rows are anchors (`anchor.rs`; 0 without an anchor).
    pub anchor_rows: usize,
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
            anchor_rows: 0,
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
        self.packed = Some(Arc::new(cold.pack(&self.batches)?));
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

    /// Merges the last batches while one holds no more than twice the rows of the
    /// next (and while there are more than `MAX_BATCHES`). A key heard from at every
    /// evaluation adds a small batch each time; merging them all into one each time
    /// copied the partition's whole window at every evaluation (at 200,000 events/s,
    /// most of a rule's state at every burst). Merged like a binary counter, a row is
    /// copied about log2(rows) times while kept, and a partition holds a few batches.
    pub fn merge_small_batches(&mut self, schema: &SchemaRef) -> Result<(), ArrowError> {
        while let [.., before, last] = self.batches.as_slice() {
            if before.num_rows() > 2 * last.num_rows() && self.batches.len() <= MAX_BATCHES {
                break;
            }
            let merged = concat_batches(schema, [before, last])?;
            self.batches.truncate(self.batches.len() - 2);
            self.batches.push(merged);
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

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn rows(count: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1; count]))]).unwrap()
    }

    fn sizes(partition: &Partition) -> Vec<usize> {
        partition.batches.iter().map(RecordBatch::num_rows).collect()
    }

    #[test]
    fn small_batches_merge_like_a_binary_counter_and_rows_are_copied_rarely() {
        let schema = rows(0).schema();
        let mut partition = Partition::new(0);
        let mut copied = 0;
        for _ in 0..1000 {
            let before = sizes(&partition);
            partition.merge_small_batches(&schema).unwrap();
            if sizes(&partition) != before {
                copied += partition.batches.last().unwrap().num_rows();
            }
            partition.batches.push(rows(3));
        }
        partition.merge_small_batches(&schema).unwrap();
        let held = sizes(&partition);
        assert_eq!(held.iter().sum::<usize>(), 3000, "no row lost or doubled");
        assert!(held.len() <= MAX_BATCHES, "{held:?}");
        assert!(held.windows(2).all(|pair| pair[0] > 2 * pair[1]), "{held:?}");
        // One copy of the whole partition per evaluation would be about 1.5 million.
        assert!(copied < 3000 * 12, "rows copied {copied}");
    }

    #[test]
    fn more_batches_than_the_cap_merge_even_when_sizes_fall_off() {
        let schema = rows(0).schema();
        let mut partition = Partition::new(0);
        // Each three times the next: only the cap makes them merge.
        partition.batches = (1..=11).rev().map(|power| rows(3usize.pow(power))).collect();
        partition.merge_small_batches(&schema).unwrap();
        assert_eq!(partition.batches.len(), MAX_BATCHES);
        let total: usize = (1..=11).map(|power| 3usize.pow(power)).sum();
        assert_eq!(sizes(&partition).iter().sum::<usize>(), total);
    }
}
