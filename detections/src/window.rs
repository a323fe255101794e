//! A rule's kept rows, partitioned by its `partition_by` columns. New rows touch their
//! partitions; only touched partitions are evaluated, so the work of an evaluation
//! follows the new events and the windows of the keys they touch, not the whole
//! window. A row leaves once the watermark passes its `keep_until` (default: its time
//! plus the window). match.sql sees `is_new` on the rows of the current evaluation.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use arrow::compute::{SortOptions, concat_batches, filter_record_batch, sort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::compile::{KEEP_UNTIL, TIME};

/// The partition key of a row: its partition columns as text, joined.
pub type PartitionKey = String;

struct Partition {
    batches: Vec<RecordBatch>,
    /// Batches from this index on arrived in evaluation `tick`.
    new_from: usize,
    tick: u64,
    /// The earliest expiry of its rows (ns).
    earliest_expiry: i64,
    rows: usize,
}

/// At the start of an evaluation a partition merges its batches into one once it has
/// this many: many small batches cost more memory (buffers, headers) than their rows.
const MERGE_AFTER: usize = 1;

pub struct KeptRows {
    schema: SchemaRef,
    /// What match.sql reads: `schema` plus `is_new`.
    with_new: SchemaRef,
    key_columns: Vec<usize>,
    time_column: usize,
    keep_until_column: Option<usize>,
    /// Added to a row's time when it has no `keep_until`.
    retention_nanos: i64,
    max_rows: Option<usize>,
    partitions: HashMap<PartitionKey, Partition>,
    rows: usize,
    tick: u64,
    trimmed: u64,
    /// Partitions the incremental sweep has yet to visit in its current pass.
    sweep_queue: VecDeque<PartitionKey>,
}

/// Nanoseconds of a timestamp column (any unit) at `row`.
pub fn timestamp_nanos(column: &dyn Array, row: usize) -> Option<i64> {
    if column.is_null(row) {
        return None;
    }
    let value = match column.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => column
            .as_primitive::<arrow::datatypes::TimestampNanosecondType>()
            .value(row),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            column
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .value(row)
                * 1_000
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            column
                .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                .value(row)
                * 1_000_000
        }
        DataType::Timestamp(TimeUnit::Second, _) => {
            column
                .as_primitive::<arrow::datatypes::TimestampSecondType>()
                .value(row)
                * 1_000_000_000
        }
        _ => return None,
    };
    Some(value)
}

impl KeptRows {
    pub fn new(
        schema: SchemaRef,
        partition_by: &[String],
        retention: std::time::Duration,
        max_rows: Option<usize>,
    ) -> Result<KeptRows, ArrowError> {
        let key_columns = partition_by
            .iter()
            .map(|name| schema.index_of(name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeptRows {
            time_column: schema.index_of(TIME)?,
            keep_until_column: schema.index_of(KEEP_UNTIL).ok(),
            with_new: Arc::new(crate::compile::kept_schema(&schema)),
            schema,
            key_columns,
            retention_nanos: retention.as_nanos() as i64,
            max_rows,
            partitions: HashMap::new(),
            rows: 0,
            tick: 0,
            trimmed: 0,
            sweep_queue: VecDeque::new(),
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

    /// Rows dropped by `max_rows_per_partition` so far.
    pub fn trimmed(&self) -> u64 {
        self.trimmed
    }

    /// Starts an evaluation: rows inserted from now on are `is_new`.
    pub fn begin(&mut self) {
        self.tick += 1;
    }

    fn expiry(&self, batch: &RecordBatch, row: usize) -> i64 {
        match self.keep_until_column {
            Some(column) => timestamp_nanos(batch.column(column).as_ref(), row).unwrap_or(i64::MIN),
            None => timestamp_nanos(batch.column(self.time_column).as_ref(), row)
                .unwrap_or(i64::MIN)
                .saturating_add(self.retention_nanos),
        }
    }

    /// Adds the rows of `batch` (input.sql's output) and returns the partitions it touched.
    pub fn insert(&mut self, batch: &RecordBatch) -> Result<BTreeSet<PartitionKey>, ArrowError> {
        let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?;
        let options = FormatOptions::default().with_null("\u{2205}");
        let formatters = self
            .key_columns
            .iter()
            .map(|&index| ArrayFormatter::try_new(batch.column(index).as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rows_by_key: HashMap<PartitionKey, Vec<u32>> = HashMap::new();
        for row in 0..batch.num_rows() {
            let key = formatters
                .iter()
                .map(|formatter| formatter.value(row).to_string())
                .collect::<Vec<_>>()
                .join("\u{1f}");
            rows_by_key.entry(key).or_default().push(row as u32);
        }
        let mut touched = BTreeSet::new();
        for (key, rows) in rows_by_key {
            let earliest = rows
                .iter()
                .map(|&row| self.expiry(&batch, row as usize))
                .min()
                .unwrap_or(i64::MIN);
            let part = if rows.len() == batch.num_rows() {
                batch.clone()
            } else {
                take_record_batch(&batch, &UInt32Array::from(rows))?
            };
            let tick = self.tick;
            let partition = self.partitions.entry(key.clone()).or_insert(Partition {
                batches: Vec::new(),
                new_from: 0,
                tick,
                earliest_expiry: i64::MAX,
                rows: 0,
            });
            if partition.tick != tick {
                // The first rows of this evaluation: what is there now is old.
                if partition.batches.len() >= MERGE_AFTER {
                    partition.batches = vec![concat_batches(&self.schema, &partition.batches)?];
                }
                partition.new_from = partition.batches.len();
                partition.tick = tick;
            }
            partition.earliest_expiry = partition.earliest_expiry.min(earliest);
            partition.rows += part.num_rows();
            self.rows += part.num_rows();
            partition.batches.push(part);
            touched.insert(key);
        }
        if let Some(cap) = self.max_rows {
            for key in &touched {
                self.trim(key, cap)?;
            }
        }
        Ok(touched)
    }

    /// Keeps the newest `cap` rows (by time) of a partition.
    fn trim(&mut self, key: &PartitionKey, cap: usize) -> Result<(), ArrowError> {
        let Some(partition) = self.partitions.get_mut(key) else {
            return Ok(());
        };
        if partition.rows <= cap {
            return Ok(());
        }
        let all = concat_batches(&self.schema, &partition.batches)?;
        let new_rows: usize = partition.batches[partition.new_from..]
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        let is_new: BooleanArray = (0..all.num_rows())
            .map(|row| Some(row >= all.num_rows() - new_rows))
            .collect();
        let order = sort_to_indices(all.column(self.time_column), Some(SortOptions::default()), None)?;
        let newest = order.slice(order.len() - cap, cap);
        let mut indices: Vec<u32> = newest.values().to_vec();
        // Old rows first, then new, as the partition's batches are laid out.
        indices.sort_by_key(|&row| (is_new.value(row as usize), row));
        let split = indices
            .iter()
            .position(|&row| is_new.value(row as usize))
            .unwrap_or(indices.len());
        let old = take_record_batch(&all, &UInt32Array::from(indices[..split].to_vec()))?;
        let new = take_record_batch(&all, &UInt32Array::from(indices[split..].to_vec()))?;
        let dropped = partition.rows - cap;
        self.trimmed += dropped as u64;
        self.rows -= dropped;
        partition.rows = cap;
        partition.batches = vec![old];
        partition.new_from = 1;
        partition.batches.push(new);
        Ok(())
    }

    /// The kept rows of `keys`, each batch with `is_new` appended.
    pub fn rows_of<'a>(&self, keys: impl IntoIterator<Item = &'a PartitionKey>) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        for partition in keys.into_iter().filter_map(|key| self.partitions.get(key)) {
            for (index, batch) in partition.batches.iter().enumerate() {
                if batch.num_rows() == 0 {
                    continue;
                }
                let new = partition.tick == self.tick && index >= partition.new_from;
                let mut columns = batch.columns().to_vec();
                columns.push(Arc::new(BooleanArray::from(vec![new; batch.num_rows()])) as ArrayRef);
                out.push(RecordBatch::try_new(self.with_new.clone(), columns).expect("schema built from the batch's"));
            }
        }
        out
    }

    /// Drops the rows of `keys` whose expiry the watermark has passed; returns how many.
    /// Partitions left empty are removed.
    pub fn evict(&mut self, watermark: i64, keys: &BTreeSet<PartitionKey>) -> Result<usize, ArrowError> {
        let mut dropped = 0;
        for key in keys {
            dropped += self.evict_partition(key, watermark)?;
        }
        Ok(dropped)
    }

    /// Evicts expired rows from untouched partitions too, a slice at a time: each call
    /// rewrites at most about `budget_rows` rows, going round all partitions in turn.
    /// One sweep of every partition at once rewrote all kept rows in one evaluation
    /// and held alerts up for most of a second; slices keep each evaluation's share
    /// small while a full round still finishes within a few evaluations.
    pub fn sweep(&mut self, watermark: i64, budget_rows: usize) -> Result<usize, ArrowError> {
        let mut rewritten = 0;
        let mut dropped = 0;
        let mut refilled = false;
        while rewritten < budget_rows {
            let Some(key) = self.sweep_queue.pop_front() else {
                if refilled || self.partitions.is_empty() {
                    break;
                }
                self.sweep_queue.extend(self.partitions.keys().cloned());
                refilled = true;
                continue;
            };
            let Some(partition) = self.partitions.get(&key) else {
                continue;
            };
            if partition.earliest_expiry >= watermark {
                continue;
            }
            rewritten += partition.rows;
            dropped += self.evict_partition(&key, watermark)?;
        }
        Ok(dropped)
    }

    fn evict_partition(&mut self, key: &PartitionKey, watermark: i64) -> Result<usize, ArrowError> {
        let Some(partition) = self.partitions.get(key) else {
            return Ok(0);
        };
        if partition.earliest_expiry >= watermark {
            return Ok(0);
        }
        let mut dropped = 0;
        let mut kept = Vec::with_capacity(partition.batches.len());
        let mut earliest = i64::MAX;
        let mut new_from = partition.new_from;
        for (index, batch) in partition.batches.iter().enumerate() {
            let expiries: Vec<i64> = (0..batch.num_rows()).map(|row| self.expiry(batch, row)).collect();
            let keep: BooleanArray = expiries.iter().map(|&expiry| Some(expiry >= watermark)).collect();
            let remaining = filter_record_batch(batch, &keep)?;
            dropped += batch.num_rows() - remaining.num_rows();
            earliest = expiries
                .iter()
                .copied()
                .filter(|&expiry| expiry >= watermark)
                .fold(earliest, i64::min);
            if remaining.num_rows() > 0 {
                kept.push(remaining);
            } else if index < partition.new_from {
                new_from -= 1;
            }
        }
        if kept.is_empty() {
            self.partitions.remove(key);
        } else {
            let partition = self.partitions.get_mut(key).expect("present");
            partition.rows = kept.iter().map(RecordBatch::num_rows).sum();
            partition.batches = kept;
            partition.new_from = new_from;
            partition.earliest_expiry = earliest;
        }
        self.rows -= dropped;
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{StringArray, TimestampNanosecondArray};
    use arrow::datatypes::{Field, Schema};
    use std::time::Duration;

    fn batch(hosts: &[&str], times: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("host_id", DataType::Utf8, true),
            Field::new("time", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(hosts.to_vec())),
                Arc::new(TimestampNanosecondArray::from(times.to_vec())),
            ],
        )
        .unwrap()
    }

    fn new_flags(batches: &[RecordBatch]) -> Vec<bool> {
        batches
            .iter()
            .flat_map(|batch| {
                let flags = batch.column(2).as_boolean();
                (0..flags.len()).map(|row| flags.value(row)).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn partitions_touches_marks_new_and_evicts() {
        let first = batch(&["a", "b", "a"], &[10, 20, 30]);
        let mut kept = KeptRows::new(first.schema(), &["host_id".to_string()], Duration::from_nanos(5), None).unwrap();
        kept.begin();
        let touched = kept.insert(&first).unwrap();
        assert_eq!(touched.iter().map(String::as_str).collect::<Vec<_>>(), vec!["a", "b"]);
        kept.begin();
        let touched = kept.insert(&batch(&["a"], &[40])).unwrap();
        let rows = kept.rows_of(&touched);
        assert_eq!(
            new_flags(&rows),
            vec![false, false, true],
            "only partition a, its new row marked"
        );
        // Expiry is time + 5: the watermark 30 drops 10 and 20.
        assert_eq!(kept.sweep(30, usize::MAX).unwrap(), 2);
        assert_eq!(kept.rows(), 2);
        assert_eq!(kept.partitions(), 1, "b emptied and removed");
    }

    #[test]
    fn the_sweep_goes_round_the_partitions_a_slice_at_a_time() {
        let hosts: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
        let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let rows = batch(&names, &[10; 10]);
        let mut kept = KeptRows::new(rows.schema(), &["host_id".to_string()], Duration::from_nanos(5), None).unwrap();
        kept.begin();
        kept.insert(&rows).unwrap();
        // Each partition holds one expired row: a budget of 3 rewrites 3 of them.
        assert_eq!(kept.sweep(100, 3).unwrap(), 3);
        assert_eq!(kept.partitions(), 7);
        assert_eq!(kept.sweep(100, 3).unwrap(), 3);
        assert_eq!(kept.sweep(100, 3).unwrap(), 3);
        assert_eq!(kept.sweep(100, 3).unwrap(), 1, "the round ends with the last one");
        assert_eq!((kept.rows(), kept.partitions()), (0, 0));
        assert_eq!(kept.sweep(100, 3).unwrap(), 0, "nothing left: no endless loop");
    }

    #[test]
    fn a_cap_keeps_the_newest_rows() {
        let first = batch(&["a", "a", "a"], &[30, 10, 20]);
        let mut kept = KeptRows::new(
            first.schema(),
            &["host_id".to_string()],
            Duration::from_secs(60),
            Some(2),
        )
        .unwrap();
        kept.begin();
        kept.insert(&first).unwrap();
        kept.begin();
        let touched = kept.insert(&batch(&["a"], &[5])).unwrap();
        assert_eq!((kept.rows(), kept.trimmed()), (2, 2));
        let rows = kept.rows_of(&touched);
        let times: Vec<i64> = rows
            .iter()
            .flat_map(|batch| {
                let column = batch.column(1).clone();
                (0..batch.num_rows())
                    .map(move |row| timestamp_nanos(column.as_ref(), row).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(times, vec![30, 20]);
        assert_eq!(new_flags(&rows), vec![false, false]);
    }

    #[test]
    fn keep_until_overrides_the_window() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("host_id", DataType::Utf8, true),
            Field::new("time", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            Field::new("keep_until", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["a", "a"])),
                Arc::new(TimestampNanosecondArray::from(vec![10, 10])),
                Arc::new(TimestampNanosecondArray::from(vec![10, 1_000])),
            ],
        )
        .unwrap();
        let mut kept = KeptRows::new(schema, &["host_id".to_string()], Duration::from_secs(60), None).unwrap();
        kept.begin();
        kept.insert(&batch).unwrap();
        // The window alone would keep both rows well past 20; keep_until lets one go.
        assert_eq!(kept.sweep(20, usize::MAX).unwrap(), 1);
        assert_eq!(kept.rows(), 1);
    }
}
