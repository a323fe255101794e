//! The kept rows' housekeeping between evaluations: the incremental sweep that evicts
//! expired rows of partitions no evaluation touches, and the packing of partitions
//! gone silent (`cold_rows.rs`): after a whole sweep round, or `QUIET` after a new key.

use std::collections::BTreeSet;

use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::{KeptRows, PartitionKey, WatermarkOf};

impl KeptRows {
    /// Packs the partitions `keys` created in an evaluation at least `QUIET` (of the
    /// quiet clock) ago and given no rows since, and remembers those of `keys` that this
    /// evaluation created. Only new partitions: a key heard from again has shown it
    /// comes back, and packing it at every pause would cost an unpack at every event;
    /// the sweep packs it once silent a whole round.
    pub(crate) fn pack_quiet(&mut self, mut keys: BTreeSet<PartitionKey>, clock: i64) -> Result<(), ArrowError> {
        let Some(cold) = &self.cold else {
            return Ok(());
        };
        for (tick, quiet) in self.recent.quiet_by(clock) {
            for key in quiet {
                if let Some(partition) = self.partitions.get_mut(&key)
                    && partition.tick <= tick
                {
                    partition.pack(cold)?;
                }
            }
        }
        keys.retain(|key| {
            self.partitions
                .get(key)
                .is_some_and(|partition| partition.born == self.tick)
        });
        self.recent.push(clock, self.tick, keys);
        Ok(())
    }

    /// Evicts expired rows from untouched partitions too, a slice at a time: each call
    /// visits partitions holding about `budget_rows` rows, going round all partitions
    /// in turn. One sweep of every partition at once rewrote all kept rows in one
    /// evaluation and held alerts up for most of a second; slices keep each
    /// evaluation's share small while a full round still finishes within a few
    /// evaluations. Rows still to fall due stay until their partition is evaluated.
    /// A partition untouched for a whole round is packed (`cold_rows.rs`).
    pub fn sweep(&mut self, budget_rows: usize, watermark_of: WatermarkOf<'_>) -> Result<usize, ArrowError> {
        let mut visited = 0;
        let mut dropped = 0;
        let mut refilled = false;
        while visited < budget_rows {
            let Some(key) = self.sweep_queue.pop_front() else {
                if refilled || self.partitions.is_empty() {
                    break;
                }
                self.sweep_queue.extend(self.partitions.keys().cloned());
                self.round_ticks = (self.round_ticks.1, self.tick);
                refilled = true;
                continue;
            };
            let Some(partition) = self.partitions.get(&key) else {
                continue;
            };
            // Visits count, not only rewrites: silent partitions with nothing to
            // evict would otherwise be walked, all of them, every evaluation.
            visited += partition.rows.max(1);
            let watermark = watermark_of(&key, partition.newest);
            if partition.earliest_expiry < watermark {
                let floor = partition.earliest_due;
                dropped += self.evict_partition_keeping(&key, watermark, floor)?;
            }
            if let (Some(partition), Some(cold)) = (self.partitions.get_mut(&key), &self.cold)
                && partition.tick < self.round_ticks.0
            {
                partition.pack(cold)?;
            }
        }
        Ok(dropped)
    }

    /// Drops the rows of `key` whose expiry the watermark has passed, except rows
    /// due at or after `due_floor` (not fired yet). A partition left empty is removed.
    pub(super) fn evict_partition_keeping(
        &mut self,
        key: &str,
        watermark: i64,
        due_floor: i64,
    ) -> Result<usize, ArrowError> {
        let Some(partition) = self.partitions.get_mut(key) else {
            return Ok(0);
        };
        if partition.earliest_expiry >= watermark {
            return Ok(0);
        }
        partition.unpack(self.cold.as_ref())?;
        let partition = &self.partitions[key];
        let mut dropped = 0;
        let mut kept = Vec::with_capacity(partition.batches.len());
        let mut earliest = i64::MAX;
        let mut new_from = partition.new_from;
        let mut anchor_rows = 0;
        for (index, batch) in partition.batches.iter().enumerate() {
            let expiries = self.expiries(batch);
            let dues = self.dues(batch);
            let keep: Vec<bool> = expiries
                .iter()
                .enumerate()
                .map(|(row, &expiry)| {
                    expiry >= watermark
                        || dues
                            .as_ref()
                            .is_some_and(|dues| dues[row].is_some_and(|due| due >= due_floor))
                })
                .collect();
            let remaining = keep_rows(batch, &keep)?;
            anchor_rows += self.anchor_rows(&remaining)?;
            dropped += batch.num_rows() - remaining.num_rows();
            earliest = expiries
                .iter()
                .zip(&keep)
                .filter(|(_, keep)| **keep)
                .map(|(&expiry, _)| expiry)
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
            partition.anchor_rows = anchor_rows;
        }
        self.rows -= dropped;
        Ok(dropped)
    }
}

/// The rows of `batch` that `keep` marks. Rows mostly leave in the order they came
/// (oldest first), so what stays is usually the whole batch or a run of it: those are
/// slices of the same buffers, not copies; the batches are copied into fresh ones
/// when the partition's batches are next merged (`partition.rs`).
fn keep_rows(batch: &RecordBatch, keep: &[bool]) -> Result<RecordBatch, ArrowError> {
    let (Some(first), Some(last)) = (keep.iter().position(|k| *k), keep.iter().rposition(|k| *k)) else {
        return Ok(batch.slice(0, 0));
    };
    if keep[first..=last].iter().all(|k| *k) {
        return Ok(batch.slice(first, last - first + 1));
    }
    filter_record_batch(batch, &BooleanArray::from(keep.to_vec()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    fn numbers(count: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..count))]).unwrap()
    }

    fn kept(batch: &RecordBatch, keep: &[bool]) -> Vec<i64> {
        let rows = keep_rows(batch, keep).unwrap();
        rows.column(0).as_primitive::<Int64Type>().values().to_vec()
    }

    #[test]
    fn kept_rows_are_the_marked_ones_whatever_their_shape() {
        let batch = numbers(5);
        assert_eq!(kept(&batch, &[true; 5]), vec![0, 1, 2, 3, 4]);
        assert_eq!(kept(&batch, &[false; 5]), Vec::<i64>::new());
        assert_eq!(kept(&batch, &[false, false, true, true, true]), vec![2, 3, 4]);
        assert_eq!(kept(&batch, &[false, true, true, false, false]), vec![1, 2]);
        assert_eq!(kept(&batch, &[true, false, true, false, true]), vec![0, 2, 4]);
    }

    #[test]
    fn a_run_of_rows_is_kept_without_a_copy() {
        let batch = numbers(1000);
        let mut keep = vec![true; 1000];
        keep[..400].fill(false);
        let rows = keep_rows(&batch, &keep).unwrap();
        let (before, after) = (batch.column(0).to_data(), rows.column(0).to_data());
        let base = before.buffers()[0].as_ptr() as usize;
        let sliced = after.buffers()[0].as_ptr() as usize;
        assert!((base..base + 8000).contains(&sliced), "the same buffer, sliced");
        keep[500] = false;
        let copied = keep_rows(&batch, &keep).unwrap();
        assert_eq!(copied.num_rows(), 599);
    }
}
