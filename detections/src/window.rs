//! A rule's kept rows, partitioned by its `partition_by` columns. New rows touch their
//! partitions; only touched partitions are evaluated, so the work of an evaluation
//! follows the new events and the windows of the keys they touch, not the whole
//! window. Rows leave when they fall behind the watermark by more than the window.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, UInt32Array};
use arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// The partition key of a row: its partition columns as text, joined.
pub type PartitionKey = String;

struct Partition {
    batches: Vec<RecordBatch>,
    oldest: i64,
}

/// Partitions merge their small batches once they have this many.
const MERGE_AFTER: usize = 16;

pub struct KeptRows {
    schema: SchemaRef,
    key_columns: Vec<usize>,
    time_column: usize,
    partitions: HashMap<PartitionKey, Partition>,
    rows: usize,
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
    pub fn new(schema: SchemaRef, partition_by: &[String]) -> Result<KeptRows, ArrowError> {
        let key_columns = partition_by
            .iter()
            .map(|name| schema.index_of(name))
            .collect::<Result<Vec<_>, _>>()?;
        let time_column = schema.index_of(crate::compile::TIME)?;
        Ok(KeptRows {
            schema,
            key_columns,
            time_column,
            partitions: HashMap::new(),
            rows: 0,
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
        let time = batch.column(self.time_column).clone();
        let mut touched = BTreeSet::new();
        for (key, rows) in rows_by_key {
            let oldest = rows
                .iter()
                .filter_map(|&row| timestamp_nanos(time.as_ref(), row as usize))
                .min()
                .unwrap_or(i64::MIN);
            let part = if rows.len() == batch.num_rows() {
                batch.clone()
            } else {
                take_record_batch(&batch, &UInt32Array::from(rows))?
            };
            self.rows += part.num_rows();
            let partition = self.partitions.entry(key.clone()).or_insert(Partition {
                batches: Vec::new(),
                oldest: i64::MAX,
            });
            partition.oldest = partition.oldest.min(oldest);
            partition.batches.push(part);
            if partition.batches.len() > MERGE_AFTER {
                let merged = concat_batches(&self.schema, &partition.batches)?;
                partition.batches = vec![merged];
            }
            touched.insert(key);
        }
        Ok(touched)
    }

    /// The kept rows of `keys`.
    pub fn rows_of<'a>(&self, keys: impl IntoIterator<Item = &'a PartitionKey>) -> Vec<RecordBatch> {
        keys.into_iter()
            .filter_map(|key| self.partitions.get(key))
            .flat_map(|partition| partition.batches.iter().cloned())
            .collect()
    }

    /// Drops rows older than `before` (nanoseconds) from `keys`, or from every
    /// partition when `keys` is None. Partitions left empty are removed.
    pub fn evict(&mut self, before: i64, keys: Option<&BTreeSet<PartitionKey>>) -> Result<usize, ArrowError> {
        let candidates: Vec<PartitionKey> = match keys {
            Some(keys) => keys.iter().cloned().collect(),
            None => self.partitions.keys().cloned().collect(),
        };
        let mut dropped = 0;
        for key in candidates {
            let Some(partition) = self.partitions.get_mut(&key) else {
                continue;
            };
            if partition.oldest >= before {
                continue;
            }
            let mut kept = Vec::with_capacity(partition.batches.len());
            let mut oldest = i64::MAX;
            for batch in &partition.batches {
                let time = batch.column(self.time_column);
                let keep: BooleanArray = (0..batch.num_rows())
                    .map(|row| Some(timestamp_nanos(time.as_ref(), row).is_some_and(|t| t >= before)))
                    .collect();
                let remaining = filter_record_batch(batch, &keep)?;
                dropped += batch.num_rows() - remaining.num_rows();
                for row in 0..remaining.num_rows() {
                    if let Some(t) = timestamp_nanos(remaining.column(self.time_column).as_ref(), row) {
                        oldest = oldest.min(t);
                    }
                }
                if remaining.num_rows() > 0 {
                    kept.push(remaining);
                }
            }
            if kept.is_empty() {
                self.partitions.remove(&key);
            } else {
                partition.batches = kept;
                partition.oldest = oldest;
            }
        }
        self.rows -= dropped;
        Ok(dropped)
    }

    /// Forgets everything (a rule reloaded with another input).
    pub fn clear(&mut self) {
        self.partitions.clear();
        self.rows = 0;
    }
}

/// An empty schema, for rules whose input never ran.
pub fn empty_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{StringArray, TimestampNanosecondArray};
    use arrow::datatypes::Field;

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

    #[test]
    fn partitions_touches_and_evicts() {
        let first = batch(&["a", "b", "a"], &[10, 20, 30]);
        let mut kept = KeptRows::new(first.schema(), &["host_id".to_string()]).unwrap();
        let touched = kept.insert(&first).unwrap();
        assert_eq!(touched.into_iter().collect::<Vec<_>>(), vec!["a", "b"]);
        let touched = kept.insert(&batch(&["a"], &[40])).unwrap();
        assert_eq!(touched.len(), 1);
        let rows: usize = kept.rows_of(&touched).iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 3, "only partition a's rows are handed out");
        assert_eq!(kept.evict(25, None).unwrap(), 2);
        assert_eq!(kept.rows(), 2);
        assert_eq!(kept.partitions(), 1, "b emptied and removed");
    }
}
