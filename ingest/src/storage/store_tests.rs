use super::*;
use crate::storage::wal::tests::batch_of;

fn config(dir: &Path) -> StorageConfig {
    StorageConfig {
        data_dir: dir.to_path_buf(),
        ..StorageConfig::default()
    }
}

fn open(dir: &Path) -> Arc<EventStore> {
    EventStore::open(config(dir), IngestMetrics::default(), Duration::from_secs(1), vec![]).unwrap()
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

#[tokio::test]
async fn redelivered_events_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(
        store.append(batch_of("a", 0..10)).await.unwrap(),
        Appended {
            stored: 10,
            duplicates: 0
        }
    );
    assert_eq!(
        store.append(batch_of("a", 5..15)).await.unwrap(),
        Appended {
            stored: 5,
            duplicates: 5
        }
    );
    assert_eq!(rows(&store.recent()), 15);
}

#[tokio::test]
async fn a_second_store_on_the_same_directory_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let refused = EventStore::open(
        config(dir.path()),
        IngestMetrics::default(),
        Duration::from_secs(1),
        vec![],
    );
    let message = refused.err().expect("a second store is refused").to_string();
    assert!(message.contains("another Cordon server"), "{message}");
    drop(first);
    open(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_is_answered_only_once_its_original_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    // A listener that holds the first batch stands for an original still on its way.
    let (entered, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let hold: BatchListener = Arc::new(move |_| {
        let _ = entered.send(());
        let _ = release_rx.lock().unwrap().recv();
    });
    let store = EventStore::open(
        config(dir.path()),
        IngestMetrics::default(),
        Duration::from_secs(1),
        vec![],
    )
    .unwrap();
    store.add_listener(hold);
    let original = tokio::spawn({
        let store = store.clone();
        async move { store.append(batch_of("a", 0..10)).await }
    });
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    let retry = tokio::spawn({
        let store = store.clone();
        async move { store.append(batch_of("a", 0..10)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!retry.is_finished(), "the retry was answered before its original");
    release.send(()).unwrap();
    release.send(()).unwrap();
    assert_eq!(original.await.unwrap().unwrap().stored, 10);
    assert_eq!(
        retry.await.unwrap().unwrap(),
        Appended {
            stored: 0,
            duplicates: 10
        }
    );
}

#[tokio::test]
async fn acknowledged_events_survive_a_restart_without_flush() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.append(batch_of("a", 0..10)).await.unwrap();
        // Dropped without flushing: as after a crash.
    }
    let store = open(dir.path());
    assert_eq!(rows(&store.recent()), 10);
    assert_eq!(
        store.append(batch_of("a", 0..10)).await.unwrap().duplicates,
        10,
        "still remembered"
    );
}

#[tokio::test]
async fn a_flush_moves_events_to_parquet_and_drops_wal_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.append(batch_of("a", 0..10)).await.unwrap();
    assert_eq!(store.flush().await.unwrap(), 10);
    assert!(store.recent().is_empty());
    let segments = wal::list_segments(&store.config().wal_dir()).unwrap();
    assert_eq!(segments.len(), 1, "only the open segment is left: {segments:?}");
    let files: Vec<_> = partition_dirs(&store.config().events_dir())
        .iter()
        .flat_map(|dir| parquet_files(dir))
        .collect();
    assert_eq!(files.len(), 1);
    drop(store);
    // After a restart, ids in Parquet are still known.
    let store = open(dir.path());
    assert_eq!(
        store.append(batch_of("a", 0..12)).await.unwrap(),
        Appended {
            stored: 2,
            duplicates: 10
        }
    );
}

#[tokio::test]
async fn a_crash_between_parquet_write_and_wal_delete_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.append(batch_of("a", 0..10)).await.unwrap();
    let wal_dir = store.config().wal_dir();
    let kept: Vec<(PathBuf, Vec<u8>)> = wal::list_segments(&wal_dir)
        .unwrap()
        .into_iter()
        .map(|segment| {
            let path = wal::segment_path(&wal_dir, segment);
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    store.flush().await.unwrap();
    drop(store);
    for (path, bytes) in kept {
        std::fs::write(path, bytes).unwrap(); // as if the deletes never happened
    }
    let store = open(dir.path());
    assert!(
        store.recent().is_empty(),
        "replayed events already in parquet are skipped"
    );
}

#[tokio::test]
async fn back_pressure_when_parquet_falls_behind() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        max_buffered_events: 10,
        flush_max_events: 5,
        ..config(dir.path())
    };
    let store = EventStore::open(config, IngestMetrics::default(), Duration::from_secs(2), vec![]).unwrap();
    store.append(batch_of("a", 0..10)).await.unwrap();
    match store.append(batch_of("a", 10..11)).await {
        Err(IngestError::Overloaded { retry_after, .. }) => {
            assert_eq!(retry_after, Duration::from_secs(2))
        }
        other => panic!("expected back-pressure, got {other:?}"),
    }
    store.flush().await.unwrap();
    assert_eq!(
        store.append(batch_of("a", 10..11)).await.unwrap().stored,
        1,
        "the refused event was not remembered"
    );
}

#[tokio::test]
async fn files_a_compaction_replaced_stay_while_a_reader_holds_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = config(dir.path());
    settings.compaction_min_files = 2;
    let store = EventStore::open(settings, IngestMetrics::default(), Duration::from_secs(1), vec![]).unwrap();
    for first in [0, 10, 20] {
        store.append(batch_of("a", first..first + 10)).await.unwrap();
        store.flush().await.unwrap();
    }
    let reading = store.snapshot().unwrap();
    assert_eq!(reading.files.len(), 3);
    assert_eq!(store.compact().await.unwrap(), 1);
    // The reader's files are all still there; a new snapshot sees only the merged one.
    assert!(reading.files.iter().all(|file| file.exists()));
    let after = store.snapshot().unwrap();
    assert_eq!(after.files.len(), 1, "{:?}", after.files);
    let rows = |snapshot: &Snapshot| -> usize {
        snapshot
            .files
            .iter()
            .map(|file| rows(&crate::storage::partition::read_parquet_file(file).unwrap()))
            .sum()
    };
    assert_eq!((rows(&reading), rows(&after)), (30, 30), "each event once in each");
    drop(reading);
    let on_disk: Vec<_> = partition_dirs(&store.config().events_dir())
        .iter()
        .flat_map(|dir| parquet_files(dir))
        .collect();
    assert_eq!(
        on_disk.len(),
        1,
        "the replaced files go with the last reader: {on_disk:?}"
    );
    drop(after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushes_and_compactions_running_side_by_side_store_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = config(dir.path());
    settings.flush_max_events = 1;
    settings.compaction_interval = Duration::ZERO;
    settings.compaction_min_files = 2;
    let metrics = IngestMetrics::default();
    let store = EventStore::open(settings, metrics.clone(), Duration::from_secs(1), vec![]).unwrap();
    let (stop, stopped) = watch::channel(false);
    let background = tokio::spawn(store.clone().run_background(stopped));
    // Every 200 ms tick flushes a file and, while none is running, starts a compaction,
    // which merges everything so far (the files stay small) and so soon takes longer
    // than a tick: flushes land while it runs.
    const BATCH: u32 = 4_000;
    const TOTAL: u32 = 40 * BATCH;
    for first in (0..TOTAL).step_by(BATCH as usize) {
        store.append(batch_of("a", first..first + BATCH)).await.unwrap();
        if first % (10 * BATCH) == 0 {
            let reading = store.snapshot().unwrap();
            let stored: usize = reading
                .files
                .iter()
                .map(|file| rows(&crate::storage::partition::read_parquet_file(file).unwrap()))
                .sum();
            let seen = stored + rows(&reading.recent);
            assert_eq!(seen, (first + BATCH) as usize, "each event once while both run");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    background.await.unwrap();
    let compactions = metrics.compactions.get();
    assert!(compactions > 0, "no compaction ran");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        metrics.compactions.get(),
        compactions,
        "stopping waits for a compaction under way"
    );
    assert_eq!(metrics.storage_errors.get(), 0);
    let after = store.snapshot().unwrap();
    assert!(after.recent.is_empty(), "the last flush wrote everything");
    let mut ids: Vec<String> = after
        .files
        .iter()
        .flat_map(|file| crate::storage::partition::tests::stored_ids(file))
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..TOTAL).map(|id| format!("e-{id}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
}
