//! Writing events to Parquet in a Hive layout, `date=YYYY-MM-DD/hour=HH/`, by event time.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use arrow::compute::interleave_record_batch;
use arrow::datatypes::{SchemaRef, TimestampNanosecondType};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::StorageError;
use cordon_schemas::event_schema;
use cordon_schemas::fields::col;

/// Rows per Parquet row group: small enough for time-range pruning to skip most of a file.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// A Hive partition of the event table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Partition {
    pub date: String,
    pub hour: String,
}

impl Partition {
    pub fn of(time_unix_nano: i64) -> Partition {
        let time = DateTime::<Utc>::from_timestamp_nanos(time_unix_nano);
        Partition {
            date: time.format("%Y-%m-%d").to_string(),
            hour: time.format("%H").to_string(),
        }
    }

    pub fn dir(&self, root: &Path) -> PathBuf {
        root.join(format!("date={}", self.date))
            .join(format!("hour={}", self.hour))
    }
}

/// Columns whose values are (nearly) unique per event. A dictionary never pays for
/// itself on them: the writer hashes every value, then either keeps a dictionary as
/// large as the data (a row group of timestamps fits under the 1 MiB limit) or falls
/// back to plain halfway through the chunk.
const UNIQUE_COLUMNS: &[&str] = &[
    col::TIME,
    col::OBSERVED_TIME,
    col::RECEIVED_TIME,
    col::EVENT_ID,
    "event_sequence",
    "policy_decision_id",
];

pub fn writer_properties() -> WriterProperties {
    UNIQUE_COLUMNS
        .iter()
        .fold(WriterProperties::builder(), |builder, column| {
            builder.set_column_dictionary_enabled(ColumnPath::from(*column), false)
        })
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level 1 is valid")))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .build()
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| StorageError::io("syncing directory", dir, error))
}

/// Writes `batches` to `path` as one file, atomically. They are taken one at a time, so a
/// caller that builds them lazily holds one in memory, not the whole file.
pub(crate) fn write_parquet_batches(
    path: &Path,
    schema: &SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch, StorageError>>,
) -> Result<(), StorageError> {
    let dir = path.parent().expect("partition files live in a directory");
    fs::create_dir_all(dir).map_err(|error| StorageError::io("creating", dir, error))?;
    let temporary = path.with_extension("parquet.tmp");
    let file = File::create(&temporary).map_err(|error| StorageError::io("creating", &temporary, error))?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties()))?;
    for batch in batches {
        writer.write(&batch?)?;
    }
    let file = writer.into_inner()?;
    file.sync_all()
        .map_err(|error| StorageError::io("syncing", &temporary, error))?;
    fs::rename(&temporary, path).map_err(|error| StorageError::io("renaming", &temporary, error))?;
    sync_dir(dir)
}

/// Rows gathered per output batch when a flush or compaction must reorder: a few MiB at
/// a time, which the allocator reuses, instead of one copy of the whole.
const GATHER_ROWS: usize = 8 * 1024;

/// An order of the batches in which every row is in time order, if there is one: each
/// batch sorted within itself, and their time ranges not overlapping. Requests that
/// arrive a little out of order (several in flight) are the common case this catches.
fn ordered_without_copy(times: &[&[i64]]) -> Option<Vec<usize>> {
    if times
        .iter()
        .any(|batch| !batch.windows(2).all(|pair| pair[0] <= pair[1]))
    {
        return None;
    }
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|&index| times[index][0]);
    let ranges_apart = order
        .windows(2)
        .all(|pair| times[pair[0]][times[pair[0]].len() - 1] <= times[pair[1]][0]);
    ranges_apart.then_some(order)
}

/// Writes `batches` into one new file per partition they touch, each sorted by event
/// time; returns the files. `boundary` is the WAL segment below which every batch was
/// written (see `snapshot`).
///
/// When the batches fall in one hour and some order of them is already in time order
/// (the common case), they are written as they are, with no copy. Otherwise rows are
/// gathered straight from them in time order, a chunk at a time: no concatenated copy
/// of the whole flush.
pub fn write_partitioned(root: &Path, batches: &[RecordBatch], boundary: u64) -> Result<Vec<PathBuf>, StorageError> {
    let batches: Vec<&RecordBatch> = batches.iter().filter(|batch| batch.num_rows() > 0).collect();
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    let times = event_times(&batches);
    const HOUR: i64 = 3_600_000_000_000;
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3f");
    let schema = event_schema();
    let new_path = |hour: i64| {
        let name = format!(
            "part-{}-{stamp}-{}.parquet",
            super::snapshot::boundary_tag(boundary),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        // Saturating: the hours of extreme times (replayed from before the door checked
        // them) still name a partition.
        Partition::of(hour.saturating_mul(HOUR)).dir(root).join(name)
    };
    let all_times = times.iter().flat_map(|batch| batch.iter().copied());
    let (first, last) = all_times.fold((i64::MAX, i64::MIN), |(low, high), time| {
        (low.min(time), high.max(time))
    });
    let one_hour = first.div_euclid(HOUR) == last.div_euclid(HOUR);
    if one_hour && let Some(order) = ordered_without_copy(&times) {
        let path = new_path(first.div_euclid(HOUR));
        write_parquet_batches(
            &path,
            &schema,
            order.into_iter().map(|index| Ok(batches[index].clone())),
        )?;
        return Ok(vec![path]);
    }
    // Bucket by whole hours first: formatting a date per row cost more than the rest.
    let mut rows_by_hour: BTreeMap<i64, Vec<(usize, usize)>> = BTreeMap::new();
    for (index, batch_times) in times.iter().enumerate() {
        for (row, time) in batch_times.iter().enumerate() {
            let hour = if one_hour { first } else { *time }.div_euclid(HOUR);
            rows_by_hour.entry(hour).or_default().push((index, row));
        }
    }
    let mut written = Vec::new();
    for (hour, rows) in rows_by_hour {
        let path = new_path(hour);
        write_rows_in_time_order(&path, &schema, &batches, &times, rows)?;
        written.push(path);
    }
    Ok(written)
}

/// The event times of each batch.
pub(crate) fn event_times<'a>(batches: &[&'a RecordBatch]) -> Vec<&'a [i64]> {
    batches
        .iter()
        .map(|batch| {
            let time = batch.column_by_name(col::TIME).expect("events have a time column");
            &time.as_primitive::<TimestampNanosecondType>().values()[..]
        })
        .collect()
}

/// Whether `rows` (batch, row) are in time order.
pub(crate) fn in_time_order(rows: &[(usize, usize)], times: &[&[i64]]) -> bool {
    rows.windows(2)
        .all(|pair| times[pair[0].0][pair[0].1] <= times[pair[1].0][pair[1].1])
}

/// Writes `rows` (batch, row) of `batches` to `path` as one file in time order (ties as
/// given), gathered `GATHER_ROWS` at a time.
pub(crate) fn write_rows_in_time_order(
    path: &Path,
    schema: &SchemaRef,
    batches: &[&RecordBatch],
    times: &[&[i64]],
    mut rows: Vec<(usize, usize)>,
) -> Result<(), StorageError> {
    if !in_time_order(&rows, times) {
        // Stable, and quick on the long ascending runs each request brings.
        rows.sort_by_key(|&(index, row)| times[index][row]);
    }
    let chunks = rows
        .chunks(GATHER_ROWS)
        .map(|chunk| Ok(interleave_record_batch(batches, chunk)?));
    write_parquet_batches(path, schema, chunks)
}

/// Every partition directory under `root` that holds Parquet files.
pub fn partition_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let Ok(dates) = fs::read_dir(root) else {
        return dirs;
    };
    for date in dates.filter_map(Result::ok) {
        let Ok(hours) = fs::read_dir(date.path()) else {
            continue;
        };
        dirs.extend(
            hours
                .filter_map(Result::ok)
                .map(|hour| hour.path())
                .filter(|path| path.is_dir()),
        );
    }
    dirs.sort();
    dirs
}

/// The Parquet files of one partition, with their sizes.
pub fn parquet_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, u64)> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "parquet"))
        .filter_map(|entry| Some((entry.path(), entry.metadata().ok()?.len())))
        .collect();
    files.sort();
    files
}

/// Reads a whole Parquet file of events.
pub fn read_parquet_file(path: &Path) -> Result<Vec<RecordBatch>, StorageError> {
    let file = File::open(path).map_err(|error| StorageError::io("opening", path, error))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(64 * 1024)
        .build()?;
    let mut batches = Vec::new();
    for batch in reader {
        // Files written by an older Cordon lack the newer columns.
        batches.push(cordon_schemas::schema::conform(batch?)?);
    }
    Ok(batches)
}

/// Reads only the named columns of a Parquet file.
pub fn read_parquet_columns(path: &Path, columns: &[&str]) -> Result<Vec<RecordBatch>, StorageError> {
    let file = File::open(path).map_err(|error| StorageError::io("opening", path, error))?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?;
    let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
    let reader = builder.with_projection(mask).with_batch_size(64 * 1024).build()?;
    let mut batches = Vec::new();
    for batch in reader {
        batches.push(batch?);
    }
    Ok(batches)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_flush_spanning_hours_writes_each_hour_sorted() {
        use crate::storage::wal::tests::batch_of;
        let root = tempfile::tempdir().unwrap();
        let late = batch_of("a", 0..3); // 2026-01-15T10:04:05Z
        let mut earlier = cordon_schemas::EventBatchBuilder::with_capacity(2);
        for (id, time) in [
            ("x", 1_768_474_800_000_000_001_u64),
            ("y", 1_768_471_445_000_000_000 - 1),
        ] {
            let mut record = cordon_schemas::EventRecord::new();
            record.time_unix_nano = time;
            record.set("host.id".into(), cordon_schemas::AttrValue::Str("b".into()));
            record.set(
                "event.name".into(),
                cordon_schemas::AttrValue::Str("file.access".into()),
            );
            record.set("event.id".into(), cordon_schemas::AttrValue::Str(id.into()));
            earlier.append(&record, 1).unwrap();
        }
        let files = write_partitioned(root.path(), &[late, earlier.finish()], 1).unwrap();
        assert_eq!(files.len(), 2, "10:xx and 11:00");
        let times = stored_times(&files[0]);
        assert_eq!(times.len(), 4);
        assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
        assert!(files[1].to_string_lossy().contains("hour=11"));
    }

    /// The event ids of a Parquet file of events, in file order.
    pub(crate) fn stored_ids(file: &Path) -> Vec<String> {
        read_parquet_file(file)
            .unwrap()
            .iter()
            .flat_map(|batch| {
                let ids = batch.column_by_name(col::EVENT_ID).unwrap().as_string::<i32>();
                ids.iter().map(|id| id.unwrap().to_string()).collect::<Vec<_>>()
            })
            .collect()
    }

    /// The event times of a Parquet file of events, in file order.
    pub(crate) fn stored_times(file: &Path) -> Vec<i64> {
        read_parquet_file(file)
            .unwrap()
            .iter()
            .flat_map(|batch| {
                let times = batch.column_by_name(col::TIME).unwrap();
                times.as_primitive::<TimestampNanosecondType>().values().to_vec()
            })
            .collect()
    }

    /// `file` holds the events with ids `e-<n>` for every `n` of `expected`, each once,
    /// in time order.
    pub(crate) fn assert_each_once_in_time_order(file: &Path, expected: impl Iterator<Item = u32>) {
        let times = stored_times(file);
        assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "not in time order");
        let mut ids = stored_ids(file);
        ids.sort();
        let mut expected: Vec<String> = expected.map(|id| format!("e-{id}")).collect();
        expected.sort();
        assert_eq!(ids, expected, "every row once");
    }

    #[test]
    fn extreme_event_times_are_written_without_overflow() {
        use crate::storage::wal::tests::batch_of;
        use arrow::array::{ArrayRef, TimestampNanosecondArray};
        let root = tempfile::tempdir().unwrap();
        // Times no producer can send past the door, but a write-ahead log from before
        // the door checked them may replay: they must not stop storage.
        let batch = batch_of("a", 0..3);
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns[0] = std::sync::Arc::new(
            TimestampNanosecondArray::from(vec![i64::MIN, 1_768_471_445_000_000_000, i64::MAX]).with_timezone("UTC"),
        );
        let extreme = RecordBatch::try_new(batch.schema(), columns).unwrap();
        let files = write_partitioned(root.path(), &[extreme], 1).unwrap();
        assert_eq!(files.len(), 3, "one file an hour: {files:?}");
    }

    #[test]
    fn overlapping_batches_are_merged_by_time_across_gather_chunks() {
        use crate::storage::wal::tests::batch_of;
        let root = tempfile::tempdir().unwrap();
        // Two hosts' requests covering overlapping times, more rows than one chunk.
        let files =
            write_partitioned(root.path(), &[batch_of("a", 3_000..12_000), batch_of("b", 0..6_000)], 1).unwrap();
        assert_eq!(files.len(), 1);
        assert_each_once_in_time_order(&files[0], (3_000..12_000).chain(0..6_000));
    }

    #[test]
    fn batches_are_written_without_a_copy_only_when_some_order_of_them_is_in_time_order() {
        assert_eq!(ordered_without_copy(&[&[5, 6], &[1, 2], &[3, 5]]), Some(vec![1, 2, 0]));
        assert_eq!(ordered_without_copy(&[&[1, 4], &[3, 5]]), None, "ranges overlap");
        assert_eq!(
            ordered_without_copy(&[&[2, 1], &[3, 5]]),
            None,
            "a batch out of order within"
        );
    }

    #[test]
    fn requests_that_arrived_out_of_order_are_written_in_time_order() {
        use crate::storage::wal::tests::batch_of;
        let root = tempfile::tempdir().unwrap();
        // Two requests that arrived in the wrong order, and an empty one.
        let later = batch_of("a", 6_000..12_000);
        let earlier = batch_of("b", 0..6_000);
        let empty = batch_of("c", 0..0);
        let files = write_partitioned(root.path(), &[later, empty, earlier], 1).unwrap();
        assert_eq!(files.len(), 1);
        let ids = stored_ids(&files[0]);
        let expected: Vec<String> = (0..12_000).map(|id| format!("e-{id}")).collect();
        assert_eq!(ids, expected, "every row once, in time order");
    }

    #[test]
    fn batches_already_in_order_are_written_as_they_are() {
        use crate::storage::wal::tests::batch_of;
        let root = tempfile::tempdir().unwrap();
        let files = write_partitioned(root.path(), &[batch_of("a", 0..5), batch_of("a", 5..9)], 1).unwrap();
        let expected: Vec<String> = (0..9).map(|id| format!("e-{id}")).collect();
        assert_eq!(stored_ids(&files[0]), expected);
    }

    #[test]
    fn unique_columns_are_written_without_a_dictionary_and_the_rest_with_one() {
        use crate::storage::wal::tests::batch_of;
        use parquet::basic::Encoding;
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let root = tempfile::tempdir().unwrap();
        let files = write_partitioned(root.path(), &[batch_of("a", 0..2_000)], 1).unwrap();
        let reader = SerializedFileReader::new(File::open(&files[0]).unwrap()).unwrap();
        let row_group = reader.metadata().row_group(0);
        let encodings = |name: &str| {
            let column = (0..row_group.num_columns())
                .map(|index| row_group.column(index))
                .find(|column| column.column_path().string() == name)
                .unwrap_or_else(|| panic!("no column {name}"));
            column.encodings().collect::<Vec<_>>()
        };
        for unique in UNIQUE_COLUMNS {
            assert!(
                !encodings(unique).contains(&Encoding::RLE_DICTIONARY),
                "{unique}: {:?}",
                encodings(unique)
            );
        }
        assert!(encodings(col::HOST_ID).contains(&Encoding::RLE_DICTIONARY));
        // Every name listed is a column, so a renamed one cannot slip through unnoticed.
        let schema = event_schema();
        for unique in UNIQUE_COLUMNS {
            assert!(schema.field_with_name(unique).is_ok(), "{unique} is not a column");
        }
    }

    #[test]
    fn partitions_follow_utc_date_and_hour() {
        let partition = Partition::of(1_768_471_445_123_000_000); // 2026-01-15T10:04:05Z
        assert_eq!(
            partition,
            Partition {
                date: "2026-01-15".into(),
                hour: "10".into()
            }
        );
        assert!(partition.dir(Path::new("/d")).ends_with("date=2026-01-15/hour=10"));
    }
}
