//! telemetry-gap's compact.sql against the merge it stands for, written out here step by
//! step: per host, runs (bounds and first event time) in producer sessions (a run from 0
//! or 1 counts again, in event time order), runs that meet or overlap in a session
//! merged, each merged run's first and last rows kept with its bounds and earliest time,
//! `due_at` on its first only. The SQL takes short
//! cuts for the common shapes (one run; two where the second follows on the first), so
//! random states of every shape check that the cuts agree with the general merge.

mod telemetry_gap_stage;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use proptest::prelude::*;
use telemetry_gap_stage::{Row, rule};

/// A run: (start, end, first event time).
type Run = (i64, i64, i64);

/// Runs of one host: (start, length, time of its first row, whether its first row is due).
/// Starts lean to 0..3, where producer sessions begin, and times to a few values, so that
/// restarts before and after a run come up often.
fn host_runs() -> impl Strategy<Value = Vec<(i64, i64, i64, bool)>> {
    let start = prop_oneof![0i64..3, 0i64..24];
    let time = prop_oneof![0i64..4, 0i64..1_000];
    prop::collection::vec((start, 0i64..4, time, any::<bool>()), 1..5)
}

/// The rows a state of runs is kept as: each run's first and last (one row if it is one
/// number), times distinct per host so that event-time order has no ties. Two runs may
/// have the same bounds (two sessions counting through the same numbers).
fn rows_of(hosts: &[Vec<(i64, i64, i64, bool)>]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (h, runs) in hosts.iter().enumerate() {
        let host = format!("wks-{h}");
        for (r, (start, length, time, due)) in runs.iter().enumerate() {
            let end = start + length;
            let time = time * 100 + r as i64;
            let id = |n: i64| format!("{host}-r{r}-{n}");
            rows.push((
                host.clone(),
                id(*start),
                *start,
                *start,
                end,
                due.then_some(time),
                time,
                time,
            ));
            if end != *start {
                rows.push((host.clone(), id(end), end, *start, end, None, time + 50, time));
            }
        }
    }
    rows
}

/// The general merge, step by step (the SQL's window functions as loops).
fn merged(rows: &[Row]) -> Vec<Row> {
    let mut by_host: BTreeMap<&str, std::collections::BTreeSet<(i64, i64, i64)>> = BTreeMap::new();
    for (host, _, _, start, end, _, _, run_time) in rows {
        by_host.entry(host).or_default().insert((*start, *end, *run_time));
    }
    let mut bounds: BTreeMap<(String, Run), Run> = BTreeMap::new();
    for (host, host_runs) in by_host {
        let mut host_runs: Vec<(i64, i64, i64)> = host_runs.into_iter().collect();
        host_runs.sort_by_key(|(start, _, time)| (*time, *start));
        let mut sessions: BTreeMap<usize, Vec<(i64, i64, i64)>> = BTreeMap::new();
        let mut session = 0;
        for (start, end, time) in host_runs {
            session += usize::from(start <= 1);
            sessions.entry(session).or_default().push((start, end, time));
        }
        for mut in_session in sessions.into_values() {
            in_session.sort();
            let mut islands: Vec<Vec<(i64, i64, i64)>> = Vec::new();
            let mut reached: Option<i64> = None;
            for (start, end, time) in in_session {
                match reached {
                    Some(reached) if start <= reached + 1 => islands.last_mut().unwrap().push((start, end, time)),
                    _ => islands.push(vec![(start, end, time)]),
                }
                reached = Some(reached.map_or(end, |reached| reached.max(end)));
            }
            for island in islands {
                let new_start = island.iter().map(|(start, _, _)| *start).min().unwrap();
                let new_end = island.iter().map(|(_, end, _)| *end).max().unwrap();
                let new_time = island.iter().map(|(_, _, time)| *time).min().unwrap();
                for (start, end, time) in island {
                    bounds.insert((host.to_string(), (start, end, time)), (new_start, new_end, new_time));
                }
            }
        }
    }
    let mut out: Vec<Row> = rows
        .iter()
        .filter_map(|(host, id, sequence, start, end, due_at, time, run_time)| {
            let (new_start, new_end, new_time) = bounds[&(host.clone(), (*start, *end, *run_time))];
            (*sequence == new_start || *sequence == new_end).then(|| {
                let due_at = if *sequence == new_start { *due_at } else { None };
                (
                    host.clone(),
                    id.clone(),
                    *sequence,
                    new_start,
                    new_end,
                    due_at,
                    *time,
                    new_time,
                )
            })
        })
        .collect();
    out.sort();
    out
}

fn batch_of(rows: &[Row]) -> RecordBatch {
    let compact = rule().compact.as_ref().expect("telemetry-gap has a compact.sql");
    let schema = compact.output.clone();
    let time = |values: Vec<Option<i64>>| -> ArrayRef {
        Arc::new(TimestampNanosecondArray::from(values).with_timezone("UTC"))
    };
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| -> ArrayRef {
            match field.name().as_str() {
                "time" => time(rows.iter().map(|row| Some(row.6)).collect()),
                "host_id" => Arc::new(StringArray::from_iter_values(rows.iter().map(|row| row.0.as_str()))),
                "event_id" => Arc::new(StringArray::from_iter_values(rows.iter().map(|row| row.1.as_str()))),
                "event_name" => Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "agent.session"))),
                "event_sequence" => Arc::new(Int64Array::from_iter_values(rows.iter().map(|row| row.2))),
                "run_start" => Arc::new(Int64Array::from_iter_values(rows.iter().map(|row| row.3))),
                "run_end" => Arc::new(Int64Array::from_iter_values(rows.iter().map(|row| row.4))),
                "due_at" => time(rows.iter().map(|row| row.5).collect()),
                "run_time" => time(rows.iter().map(|row| Some(row.7)).collect()),
                "keep_until" => time(rows.iter().map(|row| Some(row.6 + 3_600)).collect()),
                other => panic!("telemetry-gap keeps a column this test does not know: {other}"),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

fn compacted(rows: &[Row]) -> Vec<Row> {
    let compact = rule().compact.as_ref().unwrap();
    telemetry_gap_stage::run(compact, batch_of(rows), |nanos| nanos)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn compaction_merges_runs_as_the_general_merge_does(hosts in prop::collection::vec(host_runs(), 1..4)) {
        let rows = rows_of(&hosts);
        prop_assert_eq!(compacted(&rows), merged(&rows));
    }
}

#[test]
fn a_run_following_on_the_kept_one_merges_into_one() {
    // The common shape: the stretch kept so far (1..=4) and a batch continuing it.
    let rows = rows_of(&[vec![(1, 3, 1, true), (4, 2, 2, true)]]);
    let expected: Vec<Row> = vec![
        ("wks-0".into(), "wks-0-r0-1".into(), 1, 1, 6, Some(100), 100, 100),
        ("wks-0".into(), "wks-0-r1-6".into(), 6, 1, 6, None, 251, 100),
    ];
    assert_eq!(compacted(&rows), expected);
    assert_eq!(merged(&rows), expected);
}

/// Two runs of one host that meet by number but are two producer sessions: compaction
/// keeps them apart, each row with its own run's bounds.
fn assert_kept_apart(runs: Vec<(i64, i64, i64, bool)>, rows: usize, bounds: [(i64, i64); 2]) {
    let rows_in = rows_of(&[runs]);
    let compacted = compacted(&rows_in);
    assert_eq!(compacted.len(), rows, "{compacted:?}");
    assert!(
        compacted.iter().all(|row| bounds.contains(&(row.3, row.4))),
        "{compacted:?}"
    );
    assert_eq!(compacted, merged(&rows_in));
}

#[test]
fn a_restart_earlier_in_time_is_another_session() {
    // 5..=7 came first in event time, then the producer counted again from 1: the two
    // runs meet by number but are not one stretch.
    assert_kept_apart(vec![(5, 2, 1, true), (1, 3, 2, true)], 4, [(5, 7), (1, 4)]);
}

#[test]
fn a_run_from_one_after_a_run_of_zero_is_another_session() {
    // 0, then 1..=3: they meet by number, but a run from 1 is the producer counting again.
    assert_kept_apart(vec![(0, 0, 1, true), (1, 2, 2, true)], 3, [(0, 0), (1, 3)]);
}

#[test]
fn two_sessions_through_the_same_numbers_stay_apart() {
    // 1..=3, then the producer counting 1..=3 again after a restart: the same bounds,
    // two runs told apart by their first event time, each keeping its own rows.
    let rows = rows_of(&[vec![(1, 2, 1, true), (1, 2, 2, true)]]);
    let compacted = compacted(&rows);
    let run_times: std::collections::BTreeSet<i64> = compacted.iter().map(|row| row.7).collect();
    assert_eq!(compacted.len(), 4, "{compacted:?}");
    assert_eq!(run_times, [100, 201].into(), "{compacted:?}");
    assert_eq!(compacted, merged(&rows));
}
