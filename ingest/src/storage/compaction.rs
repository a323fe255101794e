//! Merges a partition's small Parquet files into one, dropping duplicate events.
//!
//! Crash safety: an intent file naming the output and its inputs is fsynced before the
//! output is renamed into place. At start, a leftover intent is finished: if the output
//! exists its inputs are deleted, otherwise the intent is dropped and the inputs stay.
//!
//! Readers: once the output is in place, listings leave the intent's inputs out
//! ([`replaced_inputs`]), and the inputs are deleted ([`recover_partition`]) only when
//! no reader that listed them before is still reading (`readers.rs`). A partition with
//! a replacement still pending is not compacted again until it is finished.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::dedup::batch_keys;
use super::partition::{
    event_times, in_time_order, parquet_files, read_parquet_file, sync_dir, write_parquet_batches,
    write_rows_in_time_order,
};
use super::snapshot::{boundary_of, boundary_tag};
use crate::error::StorageError;
use cordon_schemas::event_schema;

const INTENT_FILE: &str = "_compaction.json";

#[derive(Serialize, Deserialize)]
struct Intent {
    output: PathBuf,
    inputs: Vec<PathBuf>,
}

/// What one compaction did.
#[derive(Debug, PartialEq, Eq)]
pub struct Compacted {
    pub inputs: usize,
    pub rows: usize,
    pub duplicates_removed: usize,
}

/// The rows to keep, as (batch, row) in the order read: the first of every (`host_id`,
/// `event_id`); and how many duplicates were left out.
fn unique_rows(batches: &[&RecordBatch]) -> (Vec<(usize, usize)>, usize) {
    let total: usize = batches.iter().map(|batch| batch.num_rows()).sum();
    let mut seen = HashSet::with_capacity(total);
    let mut rows = Vec::with_capacity(total);
    for (index, batch) in batches.iter().enumerate() {
        for (row, key) in batch_keys(batch).into_iter().enumerate() {
            if seen.insert(key) {
                rows.push((index, row));
            }
        }
    }
    let duplicates = total - rows.len();
    (rows, duplicates)
}

/// Compacts the small files of partition `dir` when there are at least `min_files`.
pub fn compact_partition(
    dir: &Path,
    min_files: usize,
    small_file_bytes: u64,
) -> Result<Option<Compacted>, StorageError> {
    let small: Vec<PathBuf> = parquet_files(dir)
        .into_iter()
        .filter(|(_, size)| *size < small_file_bytes)
        .map(|(path, _)| path)
        .collect();
    if small.len() < min_files.max(2) || dir.join(INTENT_FILE).exists() {
        return Ok(None);
    }
    let mut batches = Vec::new();
    for path in &small {
        batches.extend(read_parquet_file(path)?);
    }
    let sources: Vec<&RecordBatch> = batches.iter().collect();
    let times = event_times(&sources);
    let (rows, duplicates_removed) = unique_rows(&sources);
    // The merged file covers what its inputs covered.
    let boundary = small.iter().map(|path| boundary_of(path)).max().unwrap_or(0);
    let output = dir.join(format!(
        "compacted-{}-{}.parquet",
        boundary_tag(boundary),
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    let intent = Intent {
        output: output.clone(),
        inputs: small.clone(),
    };
    let intent_path = dir.join(INTENT_FILE);
    let intent_text = serde_json::to_vec(&intent).expect("intent serializes");
    fs::write(&intent_path, intent_text).map_err(|error| StorageError::io("writing", &intent_path, error))?;
    sync_dir(dir)?;
    let kept = rows.len();
    if duplicates_removed == 0 && in_time_order(&rows, &times) {
        // Every row, in the order read, is in time order (flushes sort theirs, and files
        // that follow one another in time need nothing): written with no copy at all.
        let as_read = sources.iter().map(|batch| Ok((*batch).clone()));
        write_parquet_batches(&output, &event_schema(), as_read)?;
    } else {
        write_rows_in_time_order(&output, &event_schema(), &sources, &times, rows)?;
    }
    Ok(Some(Compacted {
        inputs: small.len(),
        rows: kept,
        duplicates_removed,
    }))
}

fn finish_intent(dir: &Path, intent: &Intent) -> Result<(), StorageError> {
    for input in &intent.inputs {
        match fs::remove_file(input) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(StorageError::io("removing", input, error)),
        }
    }
    let intent_path = dir.join(INTENT_FILE);
    fs::remove_file(&intent_path).map_err(|error| StorageError::io("removing", &intent_path, error))?;
    sync_dir(dir)
}

/// The files of `listed` that a finished compaction in `dir` replaced: its intent is
/// still there (the inputs wait for readers) and its output was listed.
pub fn replaced_inputs(dir: &Path, listed: &[PathBuf]) -> HashSet<PathBuf> {
    let Ok(text) = fs::read(dir.join(INTENT_FILE)) else {
        return HashSet::new();
    };
    match serde_json::from_slice::<Intent>(&text) {
        Ok(intent) if listed.contains(&intent.output) => intent.inputs.into_iter().collect(),
        _ => HashSet::new(),
    }
}

/// Finishes a compaction's replacement in partition `dir` (its output is in place: the
/// inputs go), or abandons one a crash interrupted before its output was (the inputs
/// stay). Nothing to do without an intent.
pub fn recover_partition(dir: &Path) -> Result<(), StorageError> {
    let intent_path = dir.join(INTENT_FILE);
    let Ok(text) = fs::read(&intent_path) else {
        return Ok(());
    };
    let Ok(intent) = serde_json::from_slice::<Intent>(&text) else {
        // A torn intent was written before the output was: nothing was replaced.
        return fs::remove_file(&intent_path).map_err(|error| StorageError::io("removing", &intent_path, error));
    };
    if intent.output.exists() {
        // Also the normal end of every compaction, once no reader holds its inputs: at
        // debug, or an operator reads "interrupted" every minute.
        tracing::debug!(partition = %dir.display(), "removing the files a compaction replaced");
        finish_intent(dir, &intent)
    } else {
        tracing::info!(partition = %dir.display(), "abandoning an interrupted compaction");
        let _ = fs::remove_file(intent.output.with_extension("parquet.tmp"));
        fs::remove_file(&intent_path).map_err(|error| StorageError::io("removing", &intent_path, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::partition::tests::{assert_each_once_in_time_order, stored_ids, stored_times};
    use crate::storage::partition::write_partitioned;
    use crate::storage::wal::tests::batch_of;

    /// Writes each flush as a file of its own, compacts them all, and returns what the
    /// compaction said and the compacted file (in a folder that lives as long as the
    /// returned guard).
    fn compact_flushes(flushes: &[Vec<RecordBatch>]) -> (Compacted, tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        for (boundary, flush) in (1..).zip(flushes) {
            write_partitioned(root.path(), flush, boundary).unwrap();
        }
        let dirs = crate::storage::partition::partition_dirs(root.path());
        let done = compact_partition(&dirs[0], flushes.len(), u64::MAX).unwrap().unwrap();
        recover_partition(&dirs[0]).unwrap();
        let files = parquet_files(&dirs[0]);
        assert_eq!(files.len(), 1);
        let file = files[0].0.clone();
        (done, root, file)
    }

    #[test]
    fn files_out_of_time_order_with_each_other_compact_into_time_order() {
        // Each flush is sorted; the first holds later events than the second.
        let (_, _folder, file) = compact_flushes(&[
            vec![batch_of("a", 6..10), batch_of("b", 0..3)],
            vec![batch_of("c", 3..6)],
        ]);
        let times = stored_times(&file);
        assert_eq!(times.len(), 10);
        assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
    }

    #[test]
    fn files_that_follow_one_another_in_time_compact_as_they_are() {
        let (_, _folder, file) = compact_flushes(&[
            vec![batch_of("a", 0..3)],
            vec![batch_of("b", 3..6)],
            vec![batch_of("a", 6..9)],
        ]);
        let expected: Vec<String> = (0..9).map(|id| format!("e-{id}")).collect();
        assert_eq!(stored_ids(&file), expected);
    }

    #[test]
    fn overlapping_files_merge_by_time_across_gather_chunks() {
        // Two hosts' events over overlapping times, more rows than one gathered chunk.
        let (done, _folder, file) =
            compact_flushes(&[vec![batch_of("a", 3_000..12_000)], vec![batch_of("b", 0..6_000)]]);
        assert_eq!(done.rows, 15_000);
        assert_each_once_in_time_order(&file, (3_000..12_000).chain(0..6_000));
    }

    #[test]
    fn small_files_merge_into_one_without_duplicates() {
        let root = tempfile::tempdir().unwrap();
        write_partitioned(root.path(), &[batch_of("a", 0..10)], 1).unwrap();
        write_partitioned(root.path(), &[batch_of("a", 5..15)], 2).unwrap();
        write_partitioned(root.path(), &[batch_of("b", 0..5)], 3).unwrap();
        let dirs = crate::storage::partition::partition_dirs(root.path());
        assert_eq!(dirs.len(), 1);
        assert_eq!(
            compact_partition(&dirs[0], 5, u64::MAX).unwrap(),
            None,
            "below min_files"
        );
        let done = compact_partition(&dirs[0], 3, u64::MAX).unwrap().unwrap();
        assert_eq!(
            done,
            Compacted {
                inputs: 3,
                rows: 20,
                duplicates_removed: 5
            }
        );
        // Until the readers that may have listed them are done, the inputs stay on
        // disk, and listings leave them out.
        assert_eq!(parquet_files(&dirs[0]).len(), 4);
        assert_eq!(crate::storage::snapshot::all_files(root.path()).len(), 1);
        assert_eq!(
            compact_partition(&dirs[0], 1, u64::MAX).unwrap(),
            None,
            "not again while a replacement is pending"
        );
        recover_partition(&dirs[0]).unwrap();
        let files = parquet_files(&dirs[0]);
        assert_eq!(files.len(), 1);
        assert_eq!(
            boundary_of(&files[0].0),
            3,
            "the merged file keeps the highest boundary"
        );
        let rows: usize = read_parquet_file(&files[0].0)
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, 20);
    }

    #[test]
    fn an_interrupted_compaction_is_finished_or_abandoned() {
        let root = tempfile::tempdir().unwrap();
        let first = write_partitioned(root.path(), &[batch_of("a", 0..3)], 1).unwrap();
        let dir = first[0].parent().unwrap().to_path_buf();
        // Crash after the intent, before the output: inputs stay.
        let output = dir.join("compacted-x.parquet");
        let intent = Intent {
            output: output.clone(),
            inputs: first.clone(),
        };
        fs::write(dir.join(INTENT_FILE), serde_json::to_vec(&intent).unwrap()).unwrap();
        recover_partition(&dir).unwrap();
        assert!(first[0].exists());
        assert!(!dir.join(INTENT_FILE).exists());
        // Crash after the output was renamed: inputs go.
        fs::copy(&first[0], &output).unwrap();
        fs::write(dir.join(INTENT_FILE), serde_json::to_vec(&intent).unwrap()).unwrap();
        recover_partition(&dir).unwrap();
        assert!(!first[0].exists());
        assert!(output.exists());
    }
}
