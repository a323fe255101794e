//! Tests of `window.rs`: kept rows by partition, eviction, due rows, rollback.

use super::*;
use arrow::array::{AsArray, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use std::time::Duration;

fn batch(hosts: &[&str], times: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("host_id", DataType::Utf8, true),
        Field::new("time", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(hosts.to_vec())),
            Arc::new(TimestampNanosecondArray::from(times.to_vec())),
        ],
    )
    .unwrap()
}

fn flags(batches: &[RecordBatch], column: &str) -> Vec<bool> {
    batches
        .iter()
        .flat_map(|batch| {
            let flags = batch.column_by_name(column).unwrap().as_boolean().clone();
            (0..flags.len()).map(move |row| flags.value(row)).collect::<Vec<_>>()
        })
        .collect()
}

fn times(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|batch| {
            let column = batch.column(1).clone();
            (0..batch.num_rows())
                .map(move |row| timestamp_nanos(column.as_ref(), row).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn at(watermark: i64) -> impl Fn(&str, i64) -> i64 {
    move |_, _| watermark
}

fn host(key: &str) -> BTreeSet<PartitionKey> {
    [key.to_string()].into()
}

fn by_host(retention: Duration) -> KeptRows {
    KeptRows::new(batch(&[], &[]).schema(), &["host_id".to_string()], retention, None).unwrap()
}

/// Hosts h0..h9, one row each at time 10, kept for 5 ns.
fn ten_hosts_one_row_each() -> KeptRows {
    let hosts: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
    let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let mut kept = by_host(Duration::from_nanos(5));
    kept.begin();
    kept.insert(&batch(&names, &[10; 10])).unwrap();
    kept
}

#[test]
fn partitions_touches_marks_new_and_evicts() {
    let first = batch(&["a", "b", "a"], &[10, 20, 30]);
    let mut kept = KeptRows::new(first.schema(), &["host_id".to_string()], Duration::from_nanos(5), None).unwrap();
    kept.begin();
    let touched = kept.insert(&first).unwrap();
    assert_eq!(touched.iter().map(String::as_str).collect::<Vec<_>>(), vec!["a", "b"]);
    kept.begin();
    let touched = kept.insert(&batch(&["a"], &[40])).unwrap();
    let rows = kept.rows_of(&touched, &at(0)).unwrap();
    assert_eq!(
        flags(&rows, "is_new"),
        vec![false, false, true],
        "only partition a, its new row marked"
    );
    // Expiry is time + 5: the watermark 30 drops 10 and 20.
    assert_eq!(kept.sweep(usize::MAX, &at(30)).unwrap(), 2);
    assert_eq!(kept.rows(), 2);
    assert_eq!(kept.partitions(), 1, "b emptied and removed");
}

#[test]
fn a_rollback_takes_back_what_the_evaluation_inserted_and_nothing_else() {
    let first = batch(&["a", "b"], &[10, 20]);
    let mut kept = KeptRows::new(first.schema(), &["host_id".to_string()], Duration::from_secs(60), None).unwrap();
    kept.begin();
    kept.insert(&first).unwrap();
    kept.begin();
    kept.insert(&batch(&["a", "c"], &[30, 40])).unwrap();
    kept.insert(&batch(&["a"], &[50])).unwrap();
    assert_eq!((kept.rows(), kept.partitions()), (5, 3));
    kept.rollback();
    assert_eq!((kept.rows(), kept.partitions()), (2, 2), "c was new: gone");
    assert_eq!(times(&kept.rows_of(&host("a"), &at(0)).unwrap()), vec![10]);
    assert_eq!(kept.newest("a"), Some(10), "the partition's clock is put back too");
    // The next evaluation starts from there.
    kept.begin();
    let touched = kept.insert(&batch(&["a"], &[60])).unwrap();
    assert_eq!(
        flags(&kept.rows_of(&touched, &at(0)).unwrap(), "is_new"),
        vec![false, true]
    );
}

#[test]
fn rows_meet_the_match_before_they_are_evicted() {
    let rows = batch(&["a", "a"], &[10, 1_000]);
    let mut kept = KeptRows::new(rows.schema(), &["host_id".to_string()], Duration::from_nanos(5), None).unwrap();
    kept.begin();
    let touched = kept.insert(&rows).unwrap();
    // The same batch moved the watermark past the first row: it is still there.
    assert_eq!(times(&kept.rows_of(&touched, &at(900)).unwrap()), vec![10, 1_000]);
    assert_eq!(
        kept.settle(&touched, &at(900)).unwrap(),
        1,
        "evicted after the evaluation"
    );
    assert_eq!(kept.rows(), 1);
}

#[test]
fn each_partition_runs_on_its_own_watermark() {
    let rows = batch(&["laptop", "desk"], &[10, 10]);
    let mut kept = KeptRows::new(rows.schema(), &["host_id".to_string()], Duration::from_nanos(5), None).unwrap();
    kept.begin();
    kept.insert(&rows).unwrap();
    let per_host = |key: &str, _: i64| if key == "desk" { 100 } else { 12 };
    assert_eq!(
        kept.sweep(usize::MAX, &per_host).unwrap(),
        1,
        "only desk's clock has passed"
    );
    assert_eq!(kept.partitions(), 1);
    assert!(kept.newest("laptop").is_some());
}

#[test]
fn the_sweep_goes_round_the_partitions_a_slice_at_a_time() {
    let mut kept = ten_hosts_one_row_each();
    // Each partition holds one expired row: a budget of 3 rewrites 3 of them.
    assert_eq!(kept.sweep(3, &at(100)).unwrap(), 3);
    assert_eq!(kept.partitions(), 7);
    assert_eq!(kept.sweep(3, &at(100)).unwrap(), 3);
    assert_eq!(kept.sweep(3, &at(100)).unwrap(), 3);
    assert_eq!(kept.sweep(3, &at(100)).unwrap(), 1, "the round ends with the last one");
    assert_eq!((kept.rows(), kept.partitions()), (0, 0));
    assert_eq!(kept.sweep(3, &at(100)).unwrap(), 0, "nothing left: no endless loop");
}

#[test]
fn a_cap_keeps_the_newest_rows_after_the_evaluation() {
    let first = batch(&["a", "a", "a"], &[30, 10, 20]);
    let mut kept = KeptRows::new(
        first.schema(),
        &["host_id".to_string()],
        Duration::from_secs(60),
        Some(2),
    )
    .unwrap();
    kept.begin();
    let touched = kept.insert(&first).unwrap();
    assert_eq!(
        kept.rows_of(&touched, &at(0))
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum::<usize>(),
        3
    );
    kept.settle(&touched, &at(0)).unwrap();
    assert_eq!((kept.rows(), kept.trimmed()), (2, 1));
    kept.begin();
    let touched = kept.insert(&batch(&["a"], &[5])).unwrap();
    kept.settle(&touched, &at(0)).unwrap();
    let rows = kept.rows_of(&host("a"), &at(0)).unwrap();
    assert_eq!(times(&rows), vec![30, 20], "the newest two, in the order they came");
    assert_eq!(flags(&rows, "is_new"), vec![false, false]);
}

fn with_column(name: &str, hosts: &[&str], times: &[i64], extra: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("host_id", DataType::Utf8, true),
        Field::new("time", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        Field::new(name, DataType::Timestamp(TimeUnit::Nanosecond, None), true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(hosts.to_vec())),
            Arc::new(TimestampNanosecondArray::from(times.to_vec())),
            Arc::new(TimestampNanosecondArray::from(extra.to_vec())),
        ],
    )
    .unwrap()
}

#[test]
fn keep_until_overrides_the_window() {
    let batch = with_column("keep_until", &["a", "a"], &[10, 10], &[10, 1_000]);
    let mut kept = KeptRows::new(batch.schema(), &["host_id".to_string()], Duration::from_secs(60), None).unwrap();
    kept.begin();
    kept.insert(&batch).unwrap();
    // The window alone would keep both rows well past 20; keep_until lets one go.
    assert_eq!(kept.sweep(usize::MAX, &at(20)).unwrap(), 1);
    assert_eq!(kept.rows(), 1);
}

#[test]
fn a_due_row_is_due_once_when_the_watermark_passes_it() {
    let rows = with_column("due_at", &["a"], &[10], &[50]);
    let mut kept = KeptRows::new(rows.schema(), &["host_id".to_string()], Duration::from_secs(60), None).unwrap();
    kept.begin();
    let touched = kept.insert(&rows).unwrap();
    assert!(!kept.has_due("a", &at(40)));
    assert_eq!(flags(&kept.rows_of(&touched, &at(40)).unwrap(), "is_due"), vec![false]);
    kept.settle(&touched, &at(40)).unwrap();
    assert!(kept.has_due("a", &at(60)), "the watermark passed due_at");
    kept.begin();
    assert_eq!(flags(&kept.rows_of(&host("a"), &at(60)).unwrap(), "is_due"), vec![true]);
    kept.settle(&host("a"), &at(60)).unwrap();
    assert!(!kept.has_due("a", &at(70)), "fired once");
    kept.begin();
    assert_eq!(
        flags(&kept.rows_of(&host("a"), &at(70)).unwrap(), "is_due"),
        vec![false]
    );
}

#[test]
fn the_sweep_leaves_rows_that_have_not_fallen_due() {
    let rows = with_column("due_at", &["a"], &[10], &[50]);
    let mut kept = KeptRows::new(rows.schema(), &["host_id".to_string()], Duration::from_nanos(1), None).unwrap();
    kept.begin();
    kept.insert(&rows).unwrap();
    assert_eq!(
        kept.sweep(usize::MAX, &at(100)).unwrap(),
        0,
        "due but not evaluated yet"
    );
    kept.settle(&host("a"), &at(100)).unwrap();
    assert_eq!(kept.rows(), 0, "gone once evaluated");
}

#[test]
fn a_sweep_with_nothing_to_evict_visits_only_its_budget() {
    let mut kept = ten_hosts_one_row_each();
    // Nothing expired: the sweep still only looks at three partitions, and the next
    // slice goes on from there (walking them all, every evaluation, cost more than
    // the evaluation itself with 100,000 silent hosts).
    assert_eq!(kept.sweep(3, &at(0)).unwrap(), 0);
    assert_eq!(kept.sweep_pending(), 7);
    assert_eq!(kept.sweep(3, &at(100)).unwrap(), 3);
    assert_eq!(kept.sweep_pending(), 4);
}

#[test]
fn partitions_silent_a_whole_round_are_packed_and_read_the_same() {
    let mut kept = by_host(Duration::from_secs(60));
    kept.begin();
    kept.insert(&batch(&["quiet", "busy"], &[10, 10])).unwrap();
    kept.begin();
    kept.insert(&batch(&["quiet"], &[20])).unwrap();
    let before = kept.rows_of(&host("quiet"), &at(0)).unwrap();
    // Two sweep rounds while only busy is heard from: quiet is packed, busy is not.
    for time in [30, 40] {
        kept.begin();
        kept.insert(&batch(&["busy"], &[time])).unwrap();
        kept.sweep(usize::MAX, &at(0)).unwrap();
    }
    assert_eq!(kept.packed_partitions(), 1);
    let packed = kept.rows_of(&host("quiet"), &at(0)).unwrap();
    assert_eq!(times(&packed), times(&before));
    assert_eq!(flags(&packed, "is_new"), vec![false, false]);
    // Heard from again: unpacked, old rows old and the new row new.
    kept.begin();
    let touched = kept.insert(&batch(&["quiet"], &[50])).unwrap();
    assert_eq!(kept.packed_partitions(), 0);
    let rows = kept.rows_of(&touched, &at(0)).unwrap();
    assert_eq!(times(&rows), vec![10, 20, 50]);
    assert_eq!(flags(&rows, "is_new"), vec![false, false, true]);
    // Packed rows still expire.
    for time in [60, 70] {
        kept.begin();
        kept.insert(&batch(&["busy"], &[time])).unwrap();
        kept.sweep(usize::MAX, &at(0)).unwrap();
    }
    assert_eq!(kept.packed_partitions(), 1);
    let minute = 60_000_000_000;
    let evicted = kept
        .sweep(usize::MAX, &|key: &str, _| if key == "quiet" { 25 + minute } else { 0 })
        .unwrap();
    assert_eq!(evicted, 2);
    assert_eq!(times(&kept.rows_of(&host("quiet"), &at(0)).unwrap()), vec![50]);
}

#[test]
fn new_keys_then_quiet_are_packed_without_waiting_for_a_round() {
    let quiet = crate::sweep_pace::QUIET.as_nanos() as i64;
    let mut kept = by_host(Duration::from_secs(60));
    kept.begin();
    let first = kept.insert(&batch(&["old"], &[5])).unwrap();
    kept.pack_quiet(first, 0).unwrap();
    // A burst of new hosts, and "old" heard from again, evaluated at quiet-clock 1.
    kept.begin();
    let burst = kept.insert(&batch(&["once", "again", "old"], &[10, 10, 10])).unwrap();
    kept.pack_quiet(burst, 1).unwrap();
    // "again" is heard from before it has been quiet long enough.
    kept.begin();
    let second = kept.insert(&batch(&["again"], &[20])).unwrap();
    kept.pack_quiet(second, quiet).unwrap();
    assert_eq!(kept.packed_partitions(), 0, "nothing is quiet yet");
    kept.begin();
    kept.pack_quiet(BTreeSet::new(), quiet + 1).unwrap();
    assert_eq!(
        kept.packed_partitions(),
        1,
        "once is quiet: packed; again was heard from since"
    );
    assert_eq!(times(&kept.rows_of(&host("once"), &at(0)).unwrap()), vec![10]);
    kept.begin();
    kept.pack_quiet(BTreeSet::new(), 10 * quiet).unwrap();
    // Old and again came back after their first rows: left to the sweep's round.
    assert_eq!(kept.packed_partitions(), 1);
    assert_eq!(times(&kept.rows_of(&host("again"), &at(0)).unwrap()), vec![10, 20]);
}

#[test]
fn the_rows_of_many_partitions_come_as_one_batch() {
    let mut kept = by_host(Duration::from_secs(60));
    kept.begin();
    kept.insert(&batch(&["a", "b", "c"], &[10, 11, 12])).unwrap();
    kept.begin();
    let touched = kept.insert(&batch(&["a", "c"], &[20, 22])).unwrap();
    let all: BTreeSet<PartitionKey> = ["a", "b", "c"].map(String::from).into();
    let rows = kept.rows_of(&all, &at(0)).unwrap();
    assert_eq!(rows.len(), 1, "match.sql reads one batch, not one per partition");
    assert_eq!(times(&rows), vec![10, 20, 11, 12, 22]);
    assert_eq!(flags(&rows, "is_new"), vec![false, true, false, false, true]);
    assert_eq!(kept.stored_rows_of(&touched).unwrap().len(), 1);
    assert!(kept.rows_of(&host("nobody"), &at(0)).unwrap().is_empty());
}

#[test]
fn a_partition_already_a_full_batch_is_not_copied() {
    let mut kept = by_host(Duration::from_secs(60));
    kept.begin();
    let big = vec!["big"; crate::batch_gather::TARGET_ROWS];
    kept.insert(&batch(&big, &vec![5; crate::batch_gather::TARGET_ROWS]))
        .unwrap();
    let touched = kept.insert(&batch(&["a", "c"], &[1, 2])).unwrap();
    let all: BTreeSet<PartitionKey> = ["a", "big", "c"].map(String::from).into();
    let rows = kept.rows_of(&all, &at(0)).unwrap();
    let sizes: Vec<usize> = rows.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes, vec![1, crate::batch_gather::TARGET_ROWS, 1]);
    assert_eq!(touched.len(), 2);
}

/// Many partitions gathered into several batches of about 8,192 rows: each row's flags
/// are its own (old rows before time 1,000, new ones at 1,000 and after).
#[test]
fn flags_stay_with_their_rows_across_gathered_batches() {
    let hosts: Vec<String> = (0..6_000).map(|i| format!("h{i}")).collect();
    let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let mut kept = by_host(Duration::from_secs(60));
    kept.begin();
    let olds: Vec<i64> = (0..6_000).map(|i| i % 1_000).collect();
    kept.insert(&batch(&names, &olds)).unwrap();
    kept.begin();
    let odd: Vec<&str> = names.iter().copied().skip(1).step_by(2).collect();
    let news: Vec<i64> = (0..odd.len() as i64).map(|i| 2_000 + i).collect();
    kept.insert(&batch(&odd, &news)).unwrap();
    kept.insert(&batch(&names[..3_000], &vec![1_000; 3_000])).unwrap();
    let every: BTreeSet<PartitionKey> = hosts.iter().cloned().collect();
    let rows = kept.rows_of(&every, &at(0)).unwrap();
    assert!(
        rows.len() > 1,
        "{} batch: the test must cross a gathered batch",
        rows.len()
    );
    let (times, new) = (times(&rows), flags(&rows, "is_new"));
    assert_eq!(times.len(), 6_000 + 3_000 + 3_000);
    for (time, new) in times.iter().zip(&new) {
        assert_eq!(*new, *time >= 1_000, "row at {time}");
    }
}
