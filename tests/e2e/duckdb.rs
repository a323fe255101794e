//! DuckDB, an independent Parquet reader, finds exactly what was sent, in the Hive
//! partitions by date and hour, also after compaction.

use std::collections::BTreeMap;
use std::time::Duration;

use cordon::simulate::senders::{SendReport, Sender};
use cordon::simulate::{SimConfig, Simulator};
use cordon_ingest::storage::partition::{parquet_files, partition_dirs};
use cordon_schemas::AttrValue;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_reads_every_event_from_the_parquet_files() {
    let test = TestServer::start_with(|config| config.storage.compaction_min_files = 2).await;
    let mut simulator = Simulator::new(SimConfig {
        seed: 11,
        hosts: 8,
        rate: 0.5,
        duration: Duration::from_secs(3 * 3600),
        start_unix_nano: 1_768_471_200_000_000_000, // 2026-01-15T10:00:00Z
        ..SimConfig::default()
    });
    let events = simulator.events_until(i64::MAX);
    let mut sender = Sender::grpc(&test.grpc_url()).await.unwrap();
    let mut report = SendReport::default();
    // Six flushes: each hour's partition gets several files to compact.
    let sixths: Vec<_> = events.chunks(events.len().div_ceil(6)).collect();
    for sixth in &sixths {
        for batch in sixth.chunks(500) {
            sender.send(batch, &mut report).await.unwrap();
        }
        test.server.store().flush().await.unwrap();
    }
    // A redelivery after the flush is still recognised.
    sender.send(&sixths[0][..500], &mut report).await.unwrap();
    assert_eq!(test.server.metrics.events_duplicate.get(), 500);

    let events_dir = test.storage().events_dir();
    let files_before: usize = partition_dirs(&events_dir)
        .iter()
        .map(|dir| parquet_files(dir).len())
        .sum();
    let compacted = test.server.store().compact().await.unwrap();
    let files_after: usize = partition_dirs(&events_dir)
        .iter()
        .map(|dir| parquet_files(dir).len())
        .sum();
    assert!(
        compacted >= 3 && files_after < files_before,
        "{compacted} partitions, {files_before} -> {files_after} files"
    );
    test.server.stop().await.unwrap();

    let output = tokio::process::Command::new(python())
        .arg(python_script("duckdb_count.py"))
        .arg(&events_dir)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let found: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut bytes_sent = 0;
    for event in &events {
        // Stored under its contract kind: an agent's own event as its mapping names it.
        let flat = event.to_json(true);
        let record = cordon_schemas::flat::flat_json_to_event(&flat).unwrap();
        let kind = cordon_schemas::EventKind::from_name(record.event_name.as_deref().unwrap());
        *kinds.entry(kind.as_str().to_string()).or_default() += 1;
        if let Some(AttrValue::Int(bytes)) = event.get("network.io.bytes_sent") {
            bytes_sent += bytes;
        }
    }
    assert_eq!(found["rows"], events.len(), "{found}");
    assert_eq!(found["distinct"], events.len(), "{found}");
    assert_eq!(found["bytes_sent"], bytes_sent, "{found}");
    let found_kinds: BTreeMap<String, u64> = serde_json::from_value(found["kinds"].clone()).unwrap();
    assert_eq!(found_kinds, kinds);
    assert_eq!(
        found["partitions"],
        serde_json::json!(["2026-01-15/10", "2026-01-15/11", "2026-01-15/12"]),
    );
}
