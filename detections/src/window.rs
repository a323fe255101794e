//! A rule's kept rows, partitioned by its `partition_by` columns. New rows touch their
//! partitions; only touched partitions (and those with rows falling due) are
//! evaluated, so the work of an evaluation follows the new events and the windows of
//! the keys they touch, not the whole window.
//!
//! Each partition runs on its key's own watermark (the key's clock minus the
//! lateness, see `clock.rs`). An evaluation first inserts the new rows, then match.sql
//! runs, and only then are rows evicted and trimmed: a row always meets match.sql at
//! least once, whatever else its batch held. A row leaves once its partition's
//! watermark passes its `keep_until` (default: its time plus the window). A row with a
//! `due_at` is `is_due` in the one evaluation in which the watermark first passes it:
//! the moment nothing that can still arrive on time can come before it ("A not
//! followed by B": fire when the window has closed, not before).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, BooleanBufferBuilder, UInt32Array};
use arrow::compute::{SortOptions, concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::anchor::AnchorRows;
use crate::batch_gather::BatchGather;
use crate::cold_rows::ColdRows;
use crate::compile::{DUE_AT, KEEP_UNTIL, TIME};
use crate::key_groups::group_rows;
use crate::partition::Partition;
use crate::row_times::nanos_of;
pub use crate::row_times::timestamp_nanos;
use crate::sweep_pace::RecentKeys;

/// The partition key of a row: its partition columns as text, joined.
pub type PartitionKey = String;

/// A partition's watermark from its key and its newest row's time.
pub type WatermarkOf<'a> = &'a dyn Fn(&str, i64) -> i64;

pub struct KeptRows {
    schema: SchemaRef,
    /// What match.sql reads: `schema` plus `is_new` and `is_due`.
    with_flags: SchemaRef,
    key_columns: Vec<String>,
    time_column: usize,
    keep_until_column: Option<usize>,
    due_column: Option<usize>,
    /// Added to a row's time when it has no `keep_until`.
    retention_nanos: i64,
    max_rows: Option<usize>,
    partitions: HashMap<PartitionKey, Partition>,
    rows: usize,
    tick: u64,
    trimmed: u64,
    /// Partitions the incremental sweep has yet to visit in its current pass.
    sweep_queue: VecDeque<PartitionKey>,
    /// The evaluations at which the last two sweep rounds began: a partition not
    /// touched since the earlier one has been silent a whole round, and is packed.
    round_ticks: (u64, u64),
    /// Keys recent evaluations touched: packed once quiet (`sweep_pace.rs`).
    recent: RecentKeys,
    /// How silent partitions are packed (None: a column type the row format lacks).
    cold: Option<ColdRows>,
    /// Each partition `insert` touched since `begin`, as it was before (None: new),
    /// so `rollback` can put back what an evaluation that failed added.
    undo: Vec<(PartitionKey, Option<Partition>)>,
    rows_at_begin: usize,
    /// The rule's anchor (None: every evaluated partition is matched).
    anchor: Option<AnchorRows>,
}

impl KeptRows {
    pub fn new(
        schema: SchemaRef,
        partition_by: &[String],
        retention: std::time::Duration,
        max_rows: Option<usize>,
    ) -> Result<KeptRows, ArrowError> {
        for name in partition_by {
            schema.index_of(name)?;
        }
        let cold = ColdRows::new(&schema);
        Ok(KeptRows {
            time_column: schema.index_of(TIME)?,
            keep_until_column: schema.index_of(KEEP_UNTIL).ok(),
            due_column: schema.index_of(DUE_AT).ok(),
            with_flags: Arc::new(crate::compile::kept_schema(&schema)),
            schema,
            key_columns: partition_by.to_vec(),
            retention_nanos: i64::try_from(retention.as_nanos()).unwrap_or(i64::MAX),
            max_rows,
            partitions: HashMap::new(),
            rows: 0,
            tick: 0,
            trimmed: 0,
            sweep_queue: VecDeque::new(),
            round_ticks: (0, 0),
            recent: RecentKeys::default(),
            cold,
            undo: Vec::new(),
            rows_at_begin: 0,
            anchor: None,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn partitions(&self) -> usize {
        self.partitions.len()
    }

    /// Partitions whose rows are packed (silent a whole sweep round).
    #[cfg(test)]
    fn packed_partitions(&self) -> usize {
        self.partitions
            .values()
            .filter(|partition| partition.is_packed())
            .count()
    }

    #[cfg(test)]
    fn sweep_pending(&self) -> usize {
        self.sweep_queue.len()
    }

    /// Rows dropped by `max_rows_per_partition` so far.
    pub fn trimmed(&self) -> u64 {
        self.trimmed
    }

    /// Starts an evaluation: rows inserted from now on are `is_new`.
    pub fn begin(&mut self) {
        self.tick += 1;
        self.undo.clear();
        self.rows_at_begin = self.rows;
    }

    /// Takes back every row inserted since `begin` (before `settle`): the evaluation
    /// failed, and its events are to be tried again in parts.
    pub fn rollback(&mut self) {
        for (key, before) in self.undo.drain(..).rev() {
            match before {
                Some(partition) => self.partitions.insert(key, partition),
                None => self.partitions.remove(&key),
            };
        }
        self.rows = self.rows_at_begin;
    }

    /// Each row's expiry (ns): its `keep_until`, or its time plus the retention.
    fn expiries(&self, batch: &RecordBatch) -> Vec<i64> {
        match self.keep_until_column {
            Some(column) => nanos_of(batch.column(column).as_ref())
                .into_iter()
                .map(|expiry| expiry.unwrap_or(i64::MIN))
                .collect(),
            None => nanos_of(batch.column(self.time_column).as_ref())
                .into_iter()
                .map(|time| time.unwrap_or(i64::MIN).saturating_add(self.retention_nanos))
                .collect(),
        }
    }

    /// Each row's `due_at` (ns), when input.sql returns one.
    fn dues(&self, batch: &RecordBatch) -> Option<Vec<Option<i64>>> {
        self.due_column.map(|column| nanos_of(batch.column(column).as_ref()))
    }

    /// Adds the rows of `batch` (input.sql's output) and returns the partitions it touched.
    pub fn insert(&mut self, batch: &RecordBatch) -> Result<BTreeSet<PartitionKey>, ArrowError> {
        let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?;
        let groups = group_rows(&batch, &self.key_columns)
            .ok_or_else(|| ArrowError::InvalidArgumentError("partition columns cannot be shown as text".into()))?;
        // Each key's rows are one run of the batch in key order: a slice per key.
        let batch = if groups.in_order() {
            batch
        } else {
            take_record_batch(&batch, &UInt32Array::from(groups.order))?
        };
        let expiries = self.expiries(&batch);
        let times = nanos_of(batch.column(self.time_column).as_ref());
        let all_dues = self.dues(&batch);
        let anchors = self.anchor.as_ref().map(|anchor| anchor.mask(&batch)).transpose()?;
        let mut touched = BTreeSet::new();
        for (key, run) in groups.runs {
            let earliest = expiries[run.clone()].iter().copied().min().unwrap_or(i64::MIN);
            let newest = times[run.clone()].iter().flatten().copied().max().unwrap_or(i64::MIN);
            let part = if run.len() == batch.num_rows() {
                batch.clone()
            } else {
                batch.slice(run.start, run.len())
            };
            let tick = self.tick;
            let before = self.partitions.get(&key);
            if before.is_none_or(|partition| partition.tick != tick) {
                self.undo.push((key.clone(), before.cloned()));
            }
            let partition = self
                .partitions
                .entry(key.clone())
                .or_insert_with(|| Partition::new(tick));
            partition.unpack(self.cold.as_ref())?;
            if partition.tick != tick {
                // The first rows of this evaluation: what is there now is old.
                partition.merge_small_batches(&self.schema)?;
                partition.new_from = partition.batches.len();
                partition.tick = tick;
            }
            partition.earliest_expiry = partition.earliest_expiry.min(earliest);
            partition.newest = partition.newest.max(newest);
            if let Some(anchors) = &anchors {
                partition.anchor_rows += anchors[run.clone()].iter().filter(|anchor| **anchor).count();
            }
            if let Some(dues) = &all_dues {
                for due in dues[run.clone()].iter().flatten() {
                    if *due >= partition.due_watermark {
                        partition.earliest_due = partition.earliest_due.min(*due);
                    }
                }
            }
            partition.rows += part.num_rows();
            self.rows += part.num_rows();
            partition.batches.push(part);
            touched.insert(key);
        }
        Ok(touched)
    }

    /// Whether input.sql returns `due_at`.
    pub fn has_due_column(&self) -> bool {
        self.due_column.is_some()
    }

    /// Whether `key` holds a row that falls due at `watermark` (a reason to evaluate
    /// it although no row of it is new).
    pub fn has_due(&self, key: &str, watermark_of: WatermarkOf<'_>) -> bool {
        self.partitions
            .get(key)
            .is_some_and(|partition| partition.earliest_due < watermark_of(key, partition.newest))
    }

    /// The newest row time of `key`'s partition.
    pub fn newest(&self, key: &str) -> Option<i64> {
        self.partitions.get(key).map(|partition| partition.newest)
    }

    /// The kept rows of `keys`, with `is_new` and `is_due` appended, in batches of
    /// about 8,192 rows (`batch_gather.rs`).
    pub fn rows_of<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a PartitionKey>,
        watermark_of: WatermarkOf<'_>,
    ) -> Result<Vec<RecordBatch>, ArrowError> {
        // The rows are gathered as stored and the flags built beside them, then joined
        // per gathered batch: per partition, a batch of its own with two flag arrays
        // (and the schema checked again) cost more than its few rows.
        let mut out = BatchGather::new(self.schema.clone());
        let mut new_flags = BooleanBufferBuilder::new(0);
        let mut due_flags = BooleanBufferBuilder::new(0);
        for (key, partition) in keys
            .into_iter()
            .filter_map(|key| self.partitions.get(key).map(|partition| (key, partition)))
        {
            let watermark = watermark_of(key, partition.newest);
            let batches = partition.batches(self.cold.as_ref())?;
            for (index, batch) in batches.iter().enumerate() {
                if batch.num_rows() == 0 {
                    continue;
                }
                let new = partition.tick == self.tick && index >= partition.new_from;
                new_flags.append_n(batch.num_rows(), new);
                match self.dues(batch) {
                    Some(dues) => {
                        for due in dues {
                            due_flags.append(due.is_some_and(|due| due >= partition.due_watermark && due < watermark));
                        }
                    }
                    None => due_flags.append_n(batch.num_rows(), false),
                }
                out.push(batch.clone())?;
            }
        }
        let (new_flags, due_flags) = (new_flags.finish(), due_flags.finish());
        let mut offset = 0;
        out.finish()?
            .into_iter()
            .map(|batch| {
                let rows = batch.num_rows();
                let mut columns = batch.columns().to_vec();
                columns.push(Arc::new(BooleanArray::new(new_flags.slice(offset, rows), None)) as ArrayRef);
                columns.push(Arc::new(BooleanArray::new(due_flags.slice(offset, rows), None)) as ArrayRef);
                offset += rows;
                RecordBatch::try_new(self.with_flags.clone(), columns)
            })
            .collect()
    }

    /// The kept rows of `keys` as stored (for compact.sql), gathered as `rows_of`'s.
    pub fn stored_rows_of<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a PartitionKey>,
    ) -> Result<Vec<RecordBatch>, ArrowError> {
        let mut out = BatchGather::new(self.schema.clone());
        for partition in keys.into_iter().filter_map(|key| self.partitions.get(key)) {
            for batch in partition.batches(self.cold.as_ref())?.iter() {
                out.push(batch.clone())?;
            }
        }
        out.finish()
    }

    /// Replaces the rows of `key` with `rows` (compact.sql's rewrite of them); all old.
    pub fn replace(&mut self, key: &str, rows: &[RecordBatch]) -> Result<(), ArrowError> {
        let Some(partition) = self.partitions.get(key) else {
            return Ok(());
        };
        let (due_watermark, before) = (partition.due_watermark, partition.rows);
        let rows: Vec<RecordBatch> = rows
            .iter()
            .map(|batch| RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec()))
            .collect::<Result<_, _>>()?;
        let merged = concat_batches(&self.schema, &rows)?;
        let count = merged.num_rows();
        let earliest_expiry = self.expiries(&merged).into_iter().min().unwrap_or(i64::MAX);
        let anchor_rows = self.anchor_rows(&merged)?;
        let earliest_due = self
            .dues(&merged)
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .filter(|due| *due >= due_watermark)
            .min()
            .unwrap_or(i64::MAX);
        self.rows = self.rows - before + count;
        let partition = self.partitions.get_mut(key).expect("present");
        partition.rows = count;
        partition.set_batches(vec![merged]);
        partition.earliest_expiry = earliest_expiry;
        partition.earliest_due = earliest_due;
        partition.anchor_rows = anchor_rows;
        Ok(())
    }

    /// Ends the evaluation of `keys`: rows due by now have fired, expired rows leave,
    /// and partitions over their cap keep their newest rows. Returns rows dropped.
    pub fn settle<'a>(
        &mut self,
        keys: impl IntoIterator<Item = &'a PartitionKey>,
        watermark_of: WatermarkOf<'_>,
    ) -> Result<usize, ArrowError> {
        let mut dropped = 0;
        for key in keys {
            let Some(partition) = self.partitions.get_mut(key) else {
                continue;
            };
            partition.unpack(self.cold.as_ref())?;
            let watermark = watermark_of(key, partition.newest);
            if self.due_column.is_some() {
                self.advance_due(key, watermark);
            }
            let due_floor = self
                .partitions
                .get(key)
                .map_or(i64::MAX, |partition| partition.earliest_due);
            dropped += self.evict_partition_keeping(key, watermark, due_floor)?;
            if let Some(cap) = self.max_rows {
                dropped += self.trim(key, cap)?;
            }
        }
        Ok(dropped)
    }

    fn advance_due(&mut self, key: &str, watermark: i64) {
        let Some(partition) = self.partitions.get(key) else {
            return;
        };
        let due_watermark = partition.due_watermark.max(watermark);
        let mut earliest = i64::MAX;
        for batch in &partition.batches {
            for due in self.dues(batch).unwrap_or_default().into_iter().flatten() {
                if due >= due_watermark {
                    earliest = earliest.min(due);
                }
            }
        }
        let partition = self.partitions.get_mut(key).expect("present");
        partition.due_watermark = due_watermark;
        partition.earliest_due = earliest;
    }

    /// Keeps the newest `cap` rows (by time) of a partition; returns how many it dropped.
    fn trim(&mut self, key: &str, cap: usize) -> Result<usize, ArrowError> {
        let Some(partition) = self.partitions.get(key) else {
            return Ok(0);
        };
        if partition.rows <= cap {
            return Ok(0);
        }
        let all = concat_batches(&self.schema, &partition.batches)?;
        let order = sort_to_indices(all.column(self.time_column), Some(SortOptions::default()), None)?;
        let mut newest: Vec<u32> = order.slice(order.len() - cap, cap).values().to_vec();
        newest.sort_unstable();
        let remaining = take_record_batch(&all, &UInt32Array::from(newest))?;
        let earliest = self.expiries(&remaining).into_iter().min().unwrap_or(i64::MAX);
        let anchor_rows = self.anchor_rows(&remaining)?;
        let dropped = partition.rows - cap;
        self.trimmed += dropped as u64;
        self.rows -= dropped;
        let partition = self.partitions.get_mut(key).expect("present");
        partition.rows = cap;
        // Trimming happens after the evaluation: every row left is old from now on.
        partition.batches = vec![remaining];
        partition.new_from = 1;
        partition.earliest_expiry = earliest;
        partition.anchor_rows = anchor_rows;
        Ok(dropped)
    }
}

mod anchored;
mod sweep;

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
