//! Tests of `anchored.rs`: a partition is matched exactly while it keeps an anchor row,
//! whichever way rows come and go.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;

use super::super::{KeptRows, PartitionKey};
use crate::anchor::Anchor;

/// Rows of (host, time, step); each kept 5 ns past its time.
fn rows(rows: &[(&str, i64, &str)]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("host_id", DataType::Utf8, true),
        Field::new("time", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        Field::new("step", DataType::Utf8, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|row| row.0))),
            Arc::new(TimestampNanosecondArray::from_iter_values(rows.iter().map(|row| row.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|row| row.2))),
        ],
    )
    .unwrap()
}

fn kept(cap: Option<usize>, anchor: Option<&Anchor>) -> KeptRows {
    let mut kept = KeptRows::new(
        rows(&[]).schema(),
        &["host_id".to_string()],
        Duration::from_nanos(5),
        cap,
    )
    .unwrap();
    kept.set_anchor(anchor).unwrap();
    kept
}

fn isolated() -> Anchor {
    Anchor::new("step", &["isolated"])
}

fn at(watermark: i64) -> impl Fn(&str, i64) -> i64 {
    move |_, _| watermark
}

fn keys(keys: &[&str]) -> BTreeSet<PartitionKey> {
    keys.iter().map(|key| key.to_string()).collect()
}

fn armed(kept: &KeptRows, hosts: &[&str]) -> Vec<bool> {
    hosts.iter().map(|host| kept.armed(host)).collect()
}

#[test]
fn only_partitions_keeping_an_anchor_row_are_matched_until_it_is_evicted() {
    let mut kept = kept(None, Some(&isolated()));
    kept.begin();
    let touched = kept
        .insert(&rows(&[("a", 10, "flow"), ("a", 12, "isolated"), ("b", 10, "flow")]))
        .unwrap();
    assert_eq!(armed(&kept, &["a", "b", "never-seen"]), [true, false, false]);
    // Settled past the isolation's expiry (17): it leaves, the flow kept with it too.
    kept.settle(&touched, &at(16)).unwrap();
    assert_eq!(armed(&kept, &["a"]), [true], "12 + 5 is not yet passed at 16");
    kept.settle(&keys(&["a"]), &at(18)).unwrap();
    assert_eq!(armed(&kept, &["a"]), [false]);
    // The sweep's evictions count too.
    kept.begin();
    kept.insert(&rows(&[("c", 30, "isolated"), ("c", 40, "flow")])).unwrap();
    assert!(kept.armed("c"));
    kept.sweep(usize::MAX, &at(36)).unwrap();
    assert!(!kept.armed("c"));
    assert_eq!(kept.rows(), 1, "the flow stays");
}

#[test]
fn a_rollback_a_cap_and_a_rewrite_keep_the_count_true() {
    let mut kept = kept(Some(1), Some(&isolated()));
    kept.begin();
    kept.insert(&rows(&[("a", 10, "flow")])).unwrap();
    kept.begin();
    kept.insert(&rows(&[("a", 11, "isolated")])).unwrap();
    assert!(kept.armed("a"));
    kept.rollback();
    assert!(!kept.armed("a"), "the failed evaluation's isolation is taken back");
    // The cap keeps the newest row: the isolation, then the flow after it.
    kept.begin();
    let touched = kept.insert(&rows(&[("a", 11, "isolated")])).unwrap();
    kept.settle(&touched, &at(0)).unwrap();
    assert!(kept.armed("a"));
    kept.begin();
    let touched = kept.insert(&rows(&[("a", 12, "flow")])).unwrap();
    kept.settle(&touched, &at(0)).unwrap();
    assert!(!kept.armed("a"), "the cap dropped the isolation");
    // compact.sql's rewrite is counted afresh.
    kept.replace("a", &[rows(&[("a", 12, "isolated")])]).unwrap();
    assert!(kept.armed("a"));
    kept.replace("a", &[rows(&[("a", 12, "flow")])]).unwrap();
    assert!(!kept.armed("a"));
}

#[test]
fn an_anchor_set_on_kept_rows_counts_them_packed_or_not() {
    let mut kept = kept(None, None);
    assert!(kept.armed("anything"), "without an anchor every partition is matched");
    kept.begin();
    kept.insert(&rows(&[("quiet", 10, "isolated"), ("busy", 10, "flow")]))
        .unwrap();
    // Two sweep rounds while only busy is heard from: quiet is packed.
    for time in [20, 30] {
        kept.begin();
        kept.insert(&rows(&[("busy", time, "flow")])).unwrap();
        kept.sweep(usize::MAX, &at(0)).unwrap();
    }
    assert_eq!(kept.packed_partitions(), 1);
    kept.set_anchor(Some(&isolated())).unwrap();
    assert_eq!(armed(&kept, &["quiet", "busy"]), [true, false]);
    kept.set_anchor(Some(&Anchor::new("step", &["flow"]))).unwrap();
    assert_eq!(armed(&kept, &["quiet", "busy"]), [false, true]);
    kept.set_anchor(None).unwrap();
    assert_eq!(armed(&kept, &["quiet", "busy"]), [true, true]);
}
