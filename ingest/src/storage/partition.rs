//! Writing events to Parquet in a Hive layout, `date=YYYY-MM-DD/hour=HH/`, by event time.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow::array::{AsArray, UInt32Array};
use arrow::compute::{SortOptions, concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::TimestampNanosecondType;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

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

pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
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

/// Writes `batch` to `path` atomically: a temporary file, fsynced, then renamed.
pub fn write_parquet_file(path: &Path, batch: &RecordBatch) -> Result<(), StorageError> {
    let dir = path.parent().expect("partition files live in a directory");
    fs::create_dir_all(dir).map_err(|error| StorageError::io("creating", dir, error))?;
    let temporary = path.with_extension("parquet.tmp");
    let file = File::create(&temporary).map_err(|error| StorageError::io("creating", &temporary, error))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(writer_properties()))?;
    writer.write(batch)?;
    let file = writer.into_inner()?;
    file.sync_all()
        .map_err(|error| StorageError::io("syncing", &temporary, error))?;
    fs::rename(&temporary, path).map_err(|error| StorageError::io("renaming", &temporary, error))?;
    sync_dir(dir)
}

/// Sorts a batch by event time, so row-group statistics prune well.
/// Events mostly arrive in time order, so check before paying for a copy.
pub fn sort_by_time(batch: &RecordBatch) -> Result<RecordBatch, StorageError> {
    let time = batch.column_by_name(col::TIME).expect("events have a time column");
    let times = time.as_primitive::<TimestampNanosecondType>().values();
    if times.windows(2).all(|pair| pair[0] <= pair[1]) {
        return Ok(batch.clone());
    }
    let order = sort_to_indices(time, Some(SortOptions::default()), None)?;
    Ok(take_record_batch(batch, &order)?)
}

/// Writes `batches` into one new file per partition they touch; returns the files.
/// `boundary` is the WAL segment below which every batch was written (see `snapshot`).
pub fn write_partitioned(root: &Path, batches: &[RecordBatch], boundary: u64) -> Result<Vec<PathBuf>, StorageError> {
    if batches.iter().all(|batch| batch.num_rows() == 0) {
        return Ok(Vec::new());
    }
    let all = concat_batches(&event_schema(), batches)?;
    let times = all
        .column_by_name(col::TIME)
        .expect("events have a time column")
        .as_primitive::<TimestampNanosecondType>();
    // Bucket by whole hours first: formatting a date per row cost more than the rest.
    const HOUR: i64 = 3_600_000_000_000;
    let mut rows_by_hour: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (row, time) in times.values().iter().enumerate() {
        rows_by_hour.entry(time.div_euclid(HOUR)).or_default().push(row as u32);
    }
    let rows_by_partition: Vec<(Partition, Vec<u32>)> = rows_by_hour
        .into_iter()
        .map(|(hour, rows)| (Partition::of(hour * HOUR), rows))
        .collect();
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3f");
    let mut written = Vec::new();
    let single_partition = rows_by_partition.len() == 1;
    for (partition, rows) in rows_by_partition {
        let part = if single_partition {
            all.clone()
        } else {
            take_record_batch(&all, &UInt32Array::from(rows))?
        };
        let sorted = sort_by_time(&part)?;
        let name = format!(
            "part-{}-{stamp}-{}.parquet",
            super::snapshot::boundary_tag(boundary),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let path = partition.dir(root).join(name);
        write_parquet_file(&path, &sorted)?;
        written.push(path);
    }
    Ok(written)
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
        batches.push(batch?);
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
mod tests {
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
        let ten = read_parquet_file(&files[0]).unwrap();
        let times = ten[0]
            .column(0)
            .as_primitive::<TimestampNanosecondType>()
            .values()
            .to_vec();
        assert_eq!(times.len(), 4);
        assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
        assert!(files[1].to_string_lossy().contains("hour=11"));
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
