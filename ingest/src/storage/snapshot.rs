//! A consistent view of stored events for readers: Parquet files plus recent events
//! (in memory or in the write-ahead log) with nothing counted twice.
//!
//! A flush writes the events of WAL segments below its boundary `W` to files named
//! `...-w<W>-...parquet`, then forgets those segments. A reader that took recent events
//! before the flush finished may also list its files. So recent events are checked
//! against the files whose boundary is above the oldest recent segment, the only files
//! that can hold them (usually the last flush's), and those already there are dropped.
//! No lock is shared with the writer, so this works from another process too.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use arrow::array::{AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;

use super::dedup::{batch_keys, event_key};
use super::partition::{parquet_files, partition_dirs, read_parquet_columns};
use crate::error::StorageError;
use cordon_schemas::fields::col;

/// What a reader sees.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub files: Vec<PathBuf>,
    pub recent: Vec<RecordBatch>,
    /// For a snapshot of the live store: keeps `files` on disk while it is held (a
    /// compaction's replaced inputs wait for it). Hold it until the reading is done.
    pub pin: Option<std::sync::Arc<super::readers::ReadPin>>,
}

/// The part of a Parquet file name that records the flush boundary: `-w<20 digits>-`.
pub fn boundary_tag(boundary: u64) -> String {
    format!("w{boundary:020}")
}

/// The flush boundary recorded in a file name; 0 when there is none.
pub fn boundary_of(path: &Path) -> u64 {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return 0;
    };
    name.split('-')
        .find_map(|part| part.strip_prefix('w').filter(|digits| digits.len() == 20)?.parse().ok())
        .unwrap_or(0)
}

/// Every Parquet file of the event table, without those a finished compaction
/// replaced (still on disk for the readers that listed them before).
pub fn all_files(events_dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in partition_dirs(events_dir) {
        let listed: Vec<PathBuf> = parquet_files(&dir).into_iter().map(|(path, _)| path).collect();
        let replaced = super::compaction::replaced_inputs(&dir, &listed);
        files.extend(listed.into_iter().filter(|path| !replaced.contains(path)));
    }
    files
}

/// Takes a snapshot: `recent` holds batches with the WAL segment each was written to,
/// and must be taken before this call lists the files.
pub fn take(events_dir: &Path, recent: Vec<(u64, RecordBatch)>) -> Result<Snapshot, StorageError> {
    let files = all_files(events_dir);
    let Some(oldest) = recent.iter().map(|(segment, _)| *segment).min() else {
        return Ok(Snapshot {
            files,
            ..Snapshot::default()
        });
    };
    let overlapping: Vec<&PathBuf> = files.iter().filter(|path| boundary_of(path) > oldest).collect();
    if overlapping.is_empty() {
        return Ok(Snapshot {
            files,
            recent: recent.into_iter().map(|(_, batch)| batch).collect(),
            pin: None,
        });
    }
    let mut flushed = HashSet::new();
    for path in overlapping {
        match read_parquet_columns(path, &[col::HOST_ID, col::EVENT_ID]) {
            Ok(batches) => {
                for batch in batches {
                    let hosts = batch.column(0).as_string::<i32>();
                    let ids = batch.column(1).as_string::<i32>();
                    flushed.extend((0..batch.num_rows()).map(|row| event_key(hosts.value(row), ids.value(row))));
                }
            }
            // Merged away by a compaction since the listing: its rows are in the output,
            // which has the same or a later boundary and was listed too, or will be
            // found by a retry of the query.
            Err(StorageError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    let mut kept = Vec::with_capacity(recent.len());
    for (segment, batch) in recent {
        let keep: BooleanArray = batch_keys(&batch)
            .iter()
            .map(|key| Some(segment >= oldest && !flushed.contains(key)))
            .collect();
        kept.push(filter_record_batch(&batch, &keep)?);
    }
    Ok(Snapshot {
        files,
        recent: kept,
        pin: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::partition::write_partitioned;
    use crate::storage::wal::tests::batch_of;

    #[test]
    fn boundaries_round_trip_through_file_names() {
        let name = format!("part-{}-20260115T100000.000-abc.parquet", boundary_tag(42));
        assert_eq!(boundary_of(Path::new(&name)), 42);
        assert_eq!(boundary_of(Path::new("part-20260115-abc.parquet")), 0);
    }

    #[test]
    fn recent_events_already_flushed_are_not_seen_twice() {
        let dir = tempfile::tempdir().unwrap();
        // Segments 1 and 2 flushed with boundary 3; the reader still holds them.
        write_partitioned(dir.path(), &[batch_of("a", 0..10)], 3).unwrap();
        let recent = vec![(2, batch_of("a", 0..10)), (3, batch_of("a", 10..15))];
        let snapshot = take(dir.path(), recent).unwrap();
        assert_eq!(snapshot.files.len(), 1);
        assert_eq!(snapshot.recent.iter().map(RecordBatch::num_rows).sum::<usize>(), 5);
    }

    #[test]
    fn older_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        write_partitioned(dir.path(), &[batch_of("a", 0..10)], 3).unwrap();
        // Recent events from segment 3 on cannot be in a file with boundary 3.
        let recent = vec![(3, batch_of("a", 0..10))];
        let snapshot = take(dir.path(), recent).unwrap();
        assert_eq!(snapshot.recent[0].num_rows(), 10);
    }
}
