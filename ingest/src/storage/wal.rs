//! The write-ahead log: an event is acknowledged only after its batch is here and fsynced.
//!
//! Segments are files `NNNNNNNNNNNNNNNNNNNN.wal` of framed records: `u32` length, `u32`
//! CRC-32 of the payload, payload (an Arrow IPC stream of one batch). One writer thread
//! takes every batch queued since its last sync, writes them, and syncs once (group
//! commit), so one fsync covers many concurrent requests.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use tokio::sync::{mpsc, oneshot};

use crate::error::StorageError;

const HEADER_BYTES: usize = 8;
/// How much one group commit gathers at most before it syncs.
const GROUP_COMMIT_BYTES: usize = 64 << 20;

/// Called on the writer thread with every batch once it is durable, before the
/// producers that sent it are answered.
pub type OnDurable = Box<dyn Fn(u64, &[RecordBatch]) + Send>;

enum Command {
    Append {
        batch: RecordBatch,
        done: oneshot::Sender<Result<(), StorageError>>,
    },
    Rotate {
        done: oneshot::Sender<Result<u64, StorageError>>,
    },
}

/// Handle to the writer thread.
#[derive(Clone)]
pub struct Wal {
    commands: mpsc::Sender<Command>,
}

pub fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.wal"))
}

/// Segment ids present in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StorageError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(StorageError::io("listing", dir, error)),
    };
    let mut segments: Vec<u64> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name();
            name.to_str()?.strip_suffix(".wal")?.parse().ok()
        })
        .collect();
    segments.sort_unstable();
    Ok(segments)
}

/// Encodes one batch as a framed WAL record.
pub fn encode_record(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), StorageError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    {
        let mut writer = StreamWriter::try_new(&mut *out, batch.schema_ref())?;
        writer.write(batch)?;
        writer.finish()?;
    }
    let payload_len = out.len() - start - HEADER_BYTES;
    let crc = crc32fast::hash(&out[start + HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Reads every intact record of one segment. A torn or corrupt tail (a crash mid-write)
/// ends the segment; what came before it is returned, and the number of bytes skipped.
pub fn read_segment(path: &Path) -> Result<(Vec<RecordBatch>, usize), StorageError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        // Deleted after a flush while a reader was listing: nothing left to read.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(error) => return Err(StorageError::io("reading", path, error)),
    };
    let mut batches = Vec::new();
    let mut offset = 0;
    while offset + HEADER_BYTES <= bytes.len() {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[offset + 4..offset + 8].try_into().unwrap());
        let body_start = offset + HEADER_BYTES;
        let Some(payload) = bytes.get(body_start..body_start + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let reader = StreamReader::try_new(payload, None)?;
        for batch in reader {
            // Logs written by an older Cordon lack the newer columns.
            batches.push(cordon_schemas::schema::conform(batch?)?);
        }
        offset = body_start + len;
    }
    Ok((batches, bytes.len() - offset))
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| StorageError::io("syncing directory", dir, error))
}

struct Writer {
    dir: PathBuf,
    segment: u64,
    file: File,
    /// Bytes of whole, synced records in the segment.
    len: u64,
    /// A write or sync failed: the file may end in a torn record past `len`.
    torn: bool,
}

impl Writer {
    fn open(dir: &Path, segment: u64) -> Result<Writer, StorageError> {
        let path = segment_path(dir, segment);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|error| StorageError::io("creating", &path, error))?;
        sync_dir(dir)?;
        Ok(Writer {
            dir: dir.to_path_buf(),
            segment,
            file,
            len: 0,
            torn: false,
        })
    }

    /// Appends and syncs one group. After a failure (a full disk, an I/O error) the
    /// next group first cuts the segment back to its last whole record, or moves to a
    /// new segment if it cannot: replay stops at a torn record, so nothing may be
    /// acknowledged behind one.
    fn write_group(&mut self, buffer: &[u8]) -> Result<(), StorageError> {
        self.repair()?;
        let path = segment_path(&self.dir, self.segment);
        let written = self
            .file
            .write_all(buffer)
            .map_err(|error| StorageError::io("writing", &path, error))
            .and_then(|()| {
                self.file
                    .sync_data()
                    .map_err(|error| StorageError::io("syncing", &path, error))
            });
        match written {
            Ok(()) => {
                self.len += buffer.len() as u64;
                Ok(())
            }
            Err(error) => {
                self.torn = true;
                // Repaired now if the disk allows; else before the next write.
                let _ = self.repair();
                Err(error)
            }
        }
    }

    fn repair(&mut self) -> Result<(), StorageError> {
        if !self.torn {
            return Ok(());
        }
        let path = segment_path(&self.dir, self.segment);
        let cut = self.file.set_len(self.len).and_then(|()| self.file.sync_all());
        match cut {
            Ok(()) => {
                tracing::warn!(
                    segment = self.segment,
                    bytes = self.len,
                    "write-ahead log cut back to its last whole record after a failed write"
                );
                self.torn = false;
                Ok(())
            }
            Err(cut_error) => {
                // The torn tail stays (replay skips it); later records go to a new segment.
                self.rotate().map_err(|error| {
                    tracing::error!(%error, cut_error = %cut_error, path = %path.display(), "write-ahead log can neither cut its torn tail nor start a new segment");
                    error
                })?;
                Ok(())
            }
        }
    }

    fn rotate(&mut self) -> Result<u64, StorageError> {
        let next = Writer::open(&self.dir, self.segment + 1)?;
        *self = next;
        Ok(self.segment)
    }
}

impl Wal {
    /// Starts the writer thread on a new segment `first_segment` in `dir`.
    pub fn start(
        dir: &Path,
        first_segment: u64,
        queue: usize,
        on_durable: OnDurable,
        metrics: crate::metrics::IngestMetrics,
    ) -> Result<Wal, StorageError> {
        fs::create_dir_all(dir).map_err(|error| StorageError::io("creating", dir, error))?;
        let writer = Writer::open(dir, first_segment)?;
        let (commands, receiver) = mpsc::channel(queue.max(1));
        std::thread::Builder::new()
            .name("cordon-wal".into())
            .spawn(move || run_writer(writer, receiver, on_durable, metrics))
            .map_err(|error| StorageError::io("starting WAL thread for", dir, error))?;
        Ok(Wal { commands })
    }

    /// Queues a batch; resolves once it is durable. Fails at once when the queue is full.
    pub fn try_append(&self, batch: RecordBatch) -> Result<oneshot::Receiver<Result<(), StorageError>>, WalFull> {
        let (done, receiver) = oneshot::channel();
        match self.commands.try_send(Command::Append { batch, done }) {
            Ok(()) => Ok(receiver),
            Err(mpsc::error::TrySendError::Full(_)) => Err(WalFull::Full),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(WalFull::Stopped),
        }
    }

    /// Queues a batch, waiting for room. For sources that pace themselves (Kafka).
    pub async fn append(&self, batch: RecordBatch) -> Result<(), StorageError> {
        let (done, receiver) = oneshot::channel();
        self.commands
            .send(Command::Append { batch, done })
            .await
            .map_err(|_| StorageError::WalStopped)?;
        receiver.await.map_err(|_| StorageError::WalStopped)?
    }

    /// Starts a new segment; returns its id. Every batch acknowledged before the call is
    /// in an older segment.
    pub async fn rotate(&self) -> Result<u64, StorageError> {
        let (done, receiver) = oneshot::channel();
        self.commands
            .send(Command::Rotate { done })
            .await
            .map_err(|_| StorageError::WalStopped)?;
        receiver.await.map_err(|_| StorageError::WalStopped)?
    }
}

/// Why a batch could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub enum WalFull {
    Full,
    Stopped,
}

fn run_writer(
    mut writer: Writer,
    mut receiver: mpsc::Receiver<Command>,
    on_durable: OnDurable,
    metrics: crate::metrics::IngestMetrics,
) {
    let mut buffer = Vec::with_capacity(1 << 20);
    let mut group: Vec<(RecordBatch, oneshot::Sender<Result<(), StorageError>>)> = Vec::new();
    while let Some(first) = receiver.blocking_recv() {
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Append { batch, done } => {
                    let encoded = encode_record(&batch, &mut buffer);
                    match encoded {
                        Ok(()) => group.push((batch, done)),
                        Err(error) => {
                            let _ = done.send(Err(error));
                        }
                    }
                }
                Command::Rotate { done } => {
                    // Everything gathered so far belongs to the old segment.
                    commit(&mut writer, &mut buffer, &mut group, &on_durable, &metrics);
                    let _ = done.send(writer.rotate());
                }
            }
            if buffer.len() < GROUP_COMMIT_BYTES {
                next = receiver.try_recv().ok();
            }
        }
        commit(&mut writer, &mut buffer, &mut group, &on_durable, &metrics);
    }
}

fn commit(
    writer: &mut Writer,
    buffer: &mut Vec<u8>,
    group: &mut Vec<(RecordBatch, oneshot::Sender<Result<(), StorageError>>)>,
    on_durable: &OnDurable,
    metrics: &crate::metrics::IngestMetrics,
) {
    if group.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    let result = writer.write_group(buffer);
    metrics.wal_commit_seconds.observe(started.elapsed().as_secs_f64());
    metrics.wal_bytes.inc_by(buffer.len() as u64);
    metrics.wal_commits.inc();
    buffer.clear();
    match result {
        Ok(()) => {
            let batches: Vec<RecordBatch> = group.iter().map(|(batch, _)| batch.clone()).collect();
            on_durable(writer.segment, &batches);
            for (_, done) in group.drain(..) {
                let _ = done.send(Ok(()));
            }
        }
        Err(error) => {
            tracing::error!(%error, "write-ahead log write failed; requests are refused until it succeeds");
            let message = error.to_string();
            for (_, done) in group.drain(..) {
                let _ = done.send(Err(StorageError::Corrupt(message.clone())));
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cordon_schemas::{AttrValue, EventBatchBuilder, EventRecord};

    pub(crate) fn batch_of(host: &str, ids: std::ops::Range<u32>) -> RecordBatch {
        let mut builder = EventBatchBuilder::with_capacity(ids.len());
        for id in ids {
            let mut record = EventRecord::new();
            record.time_unix_nano = 1_768_471_445_000_000_000 + u64::from(id);
            record.set("host.id".into(), AttrValue::Str(host.to_string().into()));
            record.set("event.name".into(), AttrValue::Str("file.access".into()));
            record.set("event.id".into(), AttrValue::Str(format!("e-{id}").into()));
            builder.append(&record, 1).unwrap();
        }
        builder.finish()
    }

    #[test]
    fn a_torn_tail_is_skipped_and_earlier_records_survive() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        encode_record(&batch_of("a", 0..3), &mut bytes).unwrap();
        encode_record(&batch_of("a", 3..5), &mut bytes).unwrap();
        let whole = bytes.len();
        bytes.truncate(whole - 10);
        let path = dir.path().join("00000000000000000001.wal");
        fs::write(&path, &bytes).unwrap();
        let (batches, skipped) = read_segment(&path).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].num_rows(), 3);
        assert!(skipped > 0);
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        encode_record(&batch_of("a", 0..3), &mut bytes).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        let path = dir.path().join("00000000000000000001.wal");
        fs::write(&path, &bytes).unwrap();
        assert_eq!(read_segment(&path).unwrap().0.len(), 0);
    }

    #[test]
    fn after_a_failed_write_the_segment_is_cut_back_and_later_records_replay() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Writer::open(dir.path(), 1).unwrap();
        let record = |ids| {
            let mut bytes = Vec::new();
            encode_record(&batch_of("a", ids), &mut bytes).unwrap();
            bytes
        };
        writer.write_group(&record(0..3)).unwrap();
        // What a write cut short by a full disk leaves: half a record.
        let half = record(3..6);
        writer.file.write_all(&half[..half.len() / 2]).unwrap();
        writer.torn = true;
        writer.write_group(&record(6..9)).unwrap();
        let (batches, skipped) = read_segment(&segment_path(dir.path(), 1)).unwrap();
        assert_eq!(
            batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            6,
            "both whole groups replay"
        );
        assert_eq!(skipped, 0);
    }

    #[test]
    fn a_segment_that_cannot_be_cut_is_left_for_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Writer::open(dir.path(), 1).unwrap();
        let mut bytes = Vec::new();
        encode_record(&batch_of("a", 0..3), &mut bytes).unwrap();
        writer.write_group(&bytes).unwrap();
        // A handle that cannot be truncated stands for a cut that fails.
        writer.file = File::open(segment_path(dir.path(), 1)).unwrap();
        writer.torn = true;
        writer.write_group(&bytes).unwrap();
        assert_eq!(writer.segment, 2);
        assert_eq!(list_segments(dir.path()).unwrap(), vec![1, 2]);
        assert_eq!(read_segment(&segment_path(dir.path(), 2)).unwrap().0.len(), 1);
    }

    #[tokio::test]
    async fn appended_batches_are_on_disk_when_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(0usize));
        let counter = seen.clone();
        let wal = Wal::start(
            dir.path(),
            7,
            16,
            Box::new(move |segment, batches| {
                assert_eq!(segment, 7);
                *counter.lock().unwrap() += batches.len();
            }),
            crate::metrics::IngestMetrics::default(),
        )
        .unwrap();
        wal.append(batch_of("a", 0..10)).await.unwrap();
        wal.try_append(batch_of("a", 10..12)).unwrap().await.unwrap().unwrap();
        assert_eq!(*seen.lock().unwrap(), 2);
        let (batches, skipped) = read_segment(&segment_path(dir.path(), 7)).unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 12);
        assert_eq!(skipped, 0);
        assert_eq!(wal.rotate().await.unwrap(), 8);
        assert_eq!(list_segments(dir.path()).unwrap(), vec![7, 8]);
    }
}
