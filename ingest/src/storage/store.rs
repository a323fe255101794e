//! The event store: durable on acknowledgement, queryable at once, compact on disk.
//!
//! `append` checks redelivery, hands the batch to the write-ahead log and returns once
//! it is fsynced; the batch is then in memory (for queries and detections) until a flush
//! writes it to Parquet and the WAL segments it was in are deleted.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use arrow::array::{AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;
use tokio::sync::watch;

use super::compaction::{compact_partition, recover_partition};
use super::dedup::{DedupIndex, batch_keys, event_key};
use super::inflight::{self, Admission, Seen};
use super::partition::{parquet_files, partition_dirs, read_parquet_columns, write_partitioned};
use super::readers::ReaderPins;
use super::snapshot::{self, Snapshot};
use super::wal::{self, Wal, WalFull};
use crate::config::StorageConfig;
use crate::error::{IngestError, StorageError};
use crate::metrics::IngestMetrics;
use cordon_schemas::fields::col;

/// Something that wants every durable batch, in order (detections, subscribers).
pub type BatchListener = Arc<dyn Fn(&RecordBatch) + Send + Sync>;

struct Buffered {
    segment: u64,
    batch: RecordBatch,
}

/// What `append` did with a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub stored: usize,
    pub duplicates: usize,
}

pub struct EventStore {
    /// Held while open: a second server on the same directory would lose flushes.
    _lock: std::fs::File,
    config: StorageConfig,
    wal: Wal,
    memory: Arc<RwLock<Vec<Buffered>>>,
    buffered_rows: Arc<AtomicUsize>,
    seen: Arc<Mutex<Seen>>,
    metrics: IngestMetrics,
    flush_lock: tokio::sync::Mutex<()>,
    retry_after: Duration,
    listeners: Arc<RwLock<Vec<BatchListener>>>,
    /// Readers of snapshots: a compaction's inputs stay until those before it are done.
    pins: Arc<ReaderPins>,
}

/// Locks `data_dir` for this process (released by the kernel however it ends).
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, StorageError> {
    let path = data_dir.join("cordon.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| StorageError::io("opening", &path, error))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::Corrupt(format!(
            "another Cordon server is using the data directory {}: stop it, or give this one its own --data-dir",
            data_dir.display()
        ))),
        Err(std::fs::TryLockError::Error(error)) => Err(StorageError::io("locking", &path, error)),
    }
}

fn remove_file_if_present(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(StorageError::io("removing", path, error)),
    }
}

impl EventStore {
    /// Opens the store: finishes interrupted compactions, replays the write-ahead log
    /// and remembers recently stored events so redeliveries are still dropped.
    pub fn open(
        config: StorageConfig,
        metrics: IngestMetrics,
        retry_after: Duration,
        listeners: Vec<BatchListener>,
    ) -> Result<Arc<EventStore>, StorageError> {
        let events_dir = config.events_dir();
        let wal_dir = config.wal_dir();
        for dir in [&events_dir, &wal_dir] {
            std::fs::create_dir_all(dir).map_err(|error| StorageError::io("creating", dir, error))?;
        }
        let lock = lock_data_dir(&config.data_dir)?;
        for partition in partition_dirs(&events_dir) {
            recover_partition(&partition)?;
        }
        let mut dedup = DedupIndex::new(
            config.dedup_window,
            config.dedup_max_keys,
            metrics.dedup_window_shortened.clone(),
        );
        let remembered = remember_recent_parquet(&events_dir, config.dedup_window, &mut dedup)?;

        let memory = Arc::new(RwLock::new(Vec::new()));
        let buffered_rows = Arc::new(AtomicUsize::new(0));
        let segments = wal::list_segments(&wal_dir)?;
        let mut replayed_rows = 0;
        for &segment in &segments {
            let (batches, skipped) = wal::read_segment(&wal::segment_path(&wal_dir, segment))?;
            if skipped > 0 {
                tracing::warn!(
                    segment,
                    skipped_bytes = skipped,
                    "write-ahead log segment ends in a torn record (a crash mid-write); its unacknowledged tail was skipped"
                );
            }
            for batch in batches {
                let keys = batch_keys(&batch);
                let keep: BooleanArray = keys.iter().map(|key| Some(dedup.insert(*key))).collect();
                let fresh = filter_record_batch(&batch, &keep)?;
                if fresh.num_rows() > 0 {
                    replayed_rows += fresh.num_rows();
                    for listener in &listeners {
                        listener(&fresh);
                    }
                    memory
                        .write()
                        .expect("memory lock")
                        .push(Buffered { segment, batch: fresh });
                }
            }
        }
        buffered_rows.store(replayed_rows, Ordering::SeqCst);
        metrics.buffered_events.set(replayed_rows as i64);
        tracing::info!(
            data_dir = %config.data_dir.display(),
            wal_segments = segments.len(),
            replayed_events = replayed_rows,
            remembered_event_ids = remembered,
            "storage opened"
        );

        let first_segment = segments.last().map_or(1, |last| last + 1);
        let listeners = Arc::new(RwLock::new(listeners));
        let on_durable = {
            let listeners = listeners.clone();
            let memory = memory.clone();
            let buffered_rows = buffered_rows.clone();
            let metrics = metrics.clone();
            Box::new(move |segment: u64, batches: &[RecordBatch]| {
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                let listeners = listeners.read().expect("listeners lock").clone();
                for batch in batches {
                    for listener in &listeners {
                        listener(batch);
                    }
                }
                let mut memory = memory.write().expect("memory lock");
                memory.extend(batches.iter().map(|batch| Buffered {
                    segment,
                    batch: batch.clone(),
                }));
                let total = buffered_rows.fetch_add(rows, Ordering::SeqCst) + rows;
                metrics.buffered_events.set(total as i64);
                metrics.events_out.inc_by(rows as u64);
            })
        };
        let wal = Wal::start(&wal_dir, first_segment, config.wal_queue, on_durable, metrics.clone())?;
        Ok(Arc::new(EventStore {
            _lock: lock,
            seen: Arc::new(Mutex::new(Seen::new(dedup))),
            config,
            wal,
            memory,
            buffered_rows,
            metrics,
            flush_lock: tokio::sync::Mutex::new(()),
            retry_after,
            listeners,
            pins: ReaderPins::new(Arc::new(|partition: &Path| {
                if let Err(error) = recover_partition(partition) {
                    tracing::error!(%error, partition = %partition.display(), "cannot remove the files a compaction replaced; they are left out of reads and removed at the next start");
                }
            })),
        }))
    }

    /// Adds a listener for batches made durable from now on (not those replayed at open).
    pub fn add_listener(&self, listener: BatchListener) {
        self.listeners.write().expect("listeners lock").push(listener);
    }

    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    /// Stores a batch of the event schema; returns once it is durable. Events already
    /// stored (same `host.id` and `event.id`) are dropped and counted.
    pub async fn append(&self, batch: RecordBatch) -> Result<Appended, IngestError> {
        if batch.num_rows() == 0 {
            return Ok(Appended::default());
        }
        if self.buffered_rows.load(Ordering::Relaxed) >= self.config.max_buffered_events {
            return Err(IngestError::Overloaded {
                what: "Parquet writes are behind",
                retry_after: self.retry_after,
            });
        }
        let keys = batch_keys(&batch);
        let (keep, fresh_keys, outcome) = loop {
            let admission = self.seen.lock().expect("dedup lock").admit(&keys);
            match admission {
                Admission::Admitted {
                    keep,
                    fresh_keys,
                    outcome,
                } => break (keep, fresh_keys, outcome),
                // Redelivered while the original is on its way: its outcome decides.
                Admission::Wait(outcomes) => inflight::wait_for_all(outcomes).await,
            }
        };
        let duplicates = keys.len() - fresh_keys.len();
        self.metrics.events_duplicate.inc_by(duplicates as u64);
        if fresh_keys.is_empty() {
            return Ok(Appended { stored: 0, duplicates });
        }
        let settle = {
            let seen = self.seen.clone();
            move |durable: bool| {
                seen.lock().expect("dedup lock").settle(&fresh_keys, durable);
                outcome.send_replace(Some(durable));
            }
        };
        let fresh = if duplicates == 0 {
            batch
        } else {
            match filter_record_batch(&batch, &keep) {
                Ok(fresh) => fresh,
                Err(error) => {
                    settle(false);
                    return Err(StorageError::from(error).into());
                }
            }
        };
        let stored = fresh.num_rows();
        let durable = match self.wal.try_append(fresh) {
            Ok(durable) => durable,
            Err(WalFull::Full) => {
                settle(false);
                return Err(IngestError::Overloaded {
                    what: "write-ahead log queue is full",
                    retry_after: self.retry_after,
                });
            }
            Err(WalFull::Stopped) => {
                settle(false);
                return Err(StorageError::WalStopped.into());
            }
        };
        // Settled on a task of its own, so a caller that leaves (a client that hung up)
        // cannot leave its events marked as on their way or as stored when they are not.
        let settled = tokio::spawn(async move {
            let result = durable.await;
            settle(matches!(result, Ok(Ok(()))));
            result
        });
        match settled.await {
            Ok(Ok(Ok(()))) => Ok(Appended { stored, duplicates }),
            Ok(Ok(Err(error))) => Err(error.into()),
            Ok(Err(_)) | Err(_) => Err(StorageError::WalStopped.into()),
        }
    }

    /// Everything stored, each event once, for a query.
    pub fn snapshot(&self) -> Result<Snapshot, StorageError> {
        // Pinned before the files are listed: none listed can go while it is held.
        let pin = self.pins.pin();
        let recent: Vec<(u64, RecordBatch)> = {
            let memory = self.memory.read().expect("memory lock");
            memory
                .iter()
                .map(|buffered| (buffered.segment, buffered.batch.clone()))
                .collect()
        };
        let mut snapshot = snapshot::take(&self.config.events_dir(), recent)?;
        snapshot.pin = Some(pin);
        Ok(snapshot)
    }

    /// Durable events not yet in Parquet.
    pub fn recent(&self) -> Vec<RecordBatch> {
        let memory = self.memory.read().expect("memory lock");
        memory.iter().map(|buffered| buffered.batch.clone()).collect()
    }

    pub fn buffered_events(&self) -> usize {
        self.buffered_rows.load(Ordering::Relaxed)
    }

    /// Writes every buffered event to Parquet and drops the WAL segments they were in.
    /// Returns how many events were written.
    pub async fn flush(&self) -> Result<usize, StorageError> {
        let _only_one = self.flush_lock.lock().await;
        let started = Instant::now();
        let boundary = self.wal.rotate().await?;
        let batches: Vec<RecordBatch> = {
            let memory = self.memory.read().expect("memory lock");
            memory
                .iter()
                .filter(|buffered| buffered.segment < boundary)
                .map(|buffered| buffered.batch.clone())
                .collect()
        };
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows > 0 {
            let events_dir = self.config.events_dir();
            let written = super::background::run_low_priority("flush", move || {
                write_partitioned(&events_dir, &batches, boundary)
            })
            .await?;
            self.metrics.parquet_files_written.inc_by(written.len() as u64);
            let mut memory = self.memory.write().expect("memory lock");
            memory.retain(|buffered| buffered.segment >= boundary);
            let total = self.buffered_rows.fetch_sub(rows, Ordering::SeqCst) - rows;
            self.metrics.buffered_events.set(total as i64);
        }
        let wal_dir = self.config.wal_dir();
        for segment in wal::list_segments(&wal_dir)? {
            if segment < boundary {
                remove_file_if_present(&wal::segment_path(&wal_dir, segment))?;
            }
        }
        self.metrics.flush_seconds.observe(started.elapsed().as_secs_f64());
        if rows > 0 {
            tracing::debug!(
                events = rows,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "flushed to parquet"
            );
        }
        Ok(rows)
    }

    /// Merges small Parquet files in every partition; returns how many were compacted.
    pub async fn compact(&self) -> Result<usize, StorageError> {
        let events_dir = self.config.events_dir();
        let min_files = self.config.compaction_min_files;
        let small = self.config.compaction_small_file_bytes;
        let metrics = self.metrics.clone();
        let pins = self.pins.clone();
        super::background::run_low_priority("compaction", move || {
            let mut compacted = 0;
            for partition in partition_dirs(&events_dir) {
                if let Some(done) = compact_partition(&partition, min_files, small)? {
                    pins.retire(partition.clone());
                    compacted += 1;
                    metrics.compactions.inc();
                    metrics.parquet_files_written.inc();
                    tracing::debug!(partition = %partition.display(), inputs = done.inputs, rows = done.rows, duplicates_removed = done.duplicates_removed, "compacted");
                }
            }
            Ok(compacted)
        })
        .await
    }

    /// Flushes on schedule or when enough is buffered, and compacts, until `shutdown`
    /// turns true; then flushes one last time and waits for a compaction under way.
    ///
    /// Compaction runs beside the flushes, not between them: merging a partition can
    /// take seconds at high rates, and a flush waiting behind it lets memory fill until
    /// appends are refused (measured with `cordon bench detections`). A flush adding a
    /// file while a compaction lists the partition is safe: files appear by rename, and a
    /// compaction replaces only the inputs its intent names.
    pub async fn run_background(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut last_flush = Instant::now();
        let mut last_compaction = Instant::now();
        let mut compaction: Option<tokio::task::JoinHandle<()>> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            // A dropped sender means nobody can ask any more: stop, as if asked.
            let closed = tokio::select! {
                _ = tick.tick() => false,
                changed = shutdown.changed() => changed.is_err(),
            };
            let stopping = closed || *shutdown.borrow();
            let due = last_flush.elapsed() >= self.config.flush_interval
                || self.buffered_events() >= self.config.flush_max_events;
            if due || stopping {
                match self.flush().await {
                    Ok(_) => last_flush = Instant::now(),
                    Err(error) => {
                        self.metrics.storage_errors.inc();
                        tracing::error!(%error, "flush to parquet failed; events stay in the write-ahead log and the flush is retried");
                    }
                }
            }
            if stopping {
                if let Some(running) = compaction.take() {
                    let _ = running.await;
                }
                return;
            }
            let idle = compaction.as_ref().is_none_or(|running| running.is_finished());
            if idle && last_compaction.elapsed() >= self.config.compaction_interval {
                last_compaction = Instant::now();
                let store = self.clone();
                compaction = Some(tokio::spawn(async move {
                    if let Err(error) = store.compact().await {
                        store.metrics.storage_errors.inc();
                        tracing::error!(%error, "compaction failed; it is retried at the next interval");
                    }
                }));
            }
        }
    }
}

/// Reads the ids of events in recently written Parquet files into the dedup index.
fn remember_recent_parquet(events_dir: &Path, window: Duration, dedup: &mut DedupIndex) -> Result<usize, StorageError> {
    let since = SystemTime::now().checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut recent: Vec<PathBuf> = Vec::new();
    for partition in partition_dirs(events_dir) {
        for (path, _) in parquet_files(&partition) {
            let modified = std::fs::metadata(&path).and_then(|meta| meta.modified());
            if modified.is_ok_and(|time| time >= since) {
                recent.push(path);
            }
        }
    }
    let mut count = 0;
    for path in recent {
        for batch in read_parquet_columns(&path, &[col::HOST_ID, col::EVENT_ID])? {
            let hosts = batch.column(0).as_string::<i32>();
            let ids = batch.column(1).as_string::<i32>();
            for row in 0..batch.num_rows() {
                dedup.insert(event_key(hosts.value(row), ids.value(row)));
                count += 1;
            }
        }
    }
    Ok(count)
}

/// Everything stored, each event once, read without opening the store: for a second
/// process such as `cordon query`, while the server runs or after it died.
pub fn read_snapshot(config: &StorageConfig) -> Result<Snapshot, StorageError> {
    let wal_dir = config.wal_dir();
    let mut batches = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for segment in wal::list_segments(&wal_dir)? {
        for batch in wal::read_segment(&wal::segment_path(&wal_dir, segment))?.0 {
            let keep: BooleanArray = batch_keys(&batch)
                .into_iter()
                .map(|key| Some(seen.insert(key)))
                .collect();
            batches.push((segment, filter_record_batch(&batch, &keep)?));
        }
    }
    snapshot::take(&config.events_dir(), batches)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
