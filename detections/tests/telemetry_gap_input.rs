//! telemetry-gap's input.sql against what it stands for, written out here step by step:
//! per host, its numbered events in event-time order split into producer sessions (a
//! number from 0 or 1, or one no higher than the one before it in time, counts again),
//! consecutive numbers within a session one run (a number sent twice ranks once), and
//! each run's first and last events kept with its bounds, its earliest time and `due_at`
//! on its first. A host whose numbers are one stretch, none twice and none from 0 or 1,
//! lowest first and highest last in time, is one run (the SQL's short cut, taken without
//! the sorts). Random batches of every shape check the SQL against these steps.

mod telemetry_gap_stage;

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::RecordBatch;
use cordon_detections::fixtures::{FixtureEvent, to_batches};
use proptest::prelude::*;
use telemetry_gap_stage::{Row, rule};

/// One event: (host, id, sequence number, time in seconds from the base).
type Event = (String, String, i64, i64);

const BASE: i64 = 1_768_471_200; // 2026-01-15T10:00:00Z

/// One host's events: mostly a stretch counting on from somewhere (the common shape),
/// sometimes with numbers from 0 or 1, repeats, holes and times out of order.
fn host_events() -> impl Strategy<Value = Vec<(i64, i64)>> {
    let stretch = (2i64..50, 1usize..6, 0i64..1_000).prop_map(|(from, count, time)| {
        (0..count as i64)
            .map(|step| (from + step, time + step * 10))
            .collect::<Vec<_>>()
    });
    // The same numbers, their times in another order: numbers falling in time.
    let falling = (2i64..50, 1usize..6, 0i64..1_000).prop_flat_map(|(from, count, time)| {
        let times: Vec<i64> = (0..count as i64).map(|step| time + step * 10).collect();
        Just(times)
            .prop_shuffle()
            .prop_map(move |times| (from..).zip(times).collect::<Vec<_>>())
    });
    let anything = prop::collection::vec((prop_oneof![0i64..3, 0i64..8], 0i64..40), 1..7);
    prop_oneof![stretch.clone(), stretch.prop_shuffle(), falling, anything]
}

fn events_of(hosts: &[Vec<(i64, i64)>]) -> Vec<Event> {
    let mut events = Vec::new();
    for (h, numbers) in hosts.iter().enumerate() {
        for (n, (sequence, time)) in numbers.iter().enumerate() {
            events.push((format!("wks-{h}"), format!("e{h}-{n}"), *sequence, *time));
        }
    }
    events
}

/// What input.sql stands for, step by step.
fn expected(events: &[Event]) -> Vec<Row> {
    let mut by_host: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for event in events {
        by_host.entry(&event.0).or_default().push(event);
    }
    let mut out = Vec::new();
    for (host, mut numbered) in by_host {
        numbered.sort_by_key(|(_, _, sequence, time)| (*time, *sequence));
        let row = |event: &Event, start: i64, end: i64, run_time: i64| -> Row {
            let due = (event.2 == start).then_some(event.3);
            (
                host.to_string(),
                event.1.clone(),
                event.2,
                start,
                end,
                due,
                event.3,
                run_time,
            )
        };
        let numbers: std::collections::BTreeSet<i64> = numbered.iter().map(|event| event.2).collect();
        let (lo, hi) = (*numbers.first().unwrap(), *numbers.last().unwrap());
        let lowest_first = numbered.iter().all(|event| event.2 != lo || event.3 == numbered[0].3);
        let highest_last = numbered
            .iter()
            .all(|event| event.2 != hi || event.3 == numbered[numbered.len() - 1].3);
        let unbroken = lo > 1
            && (hi - lo + 1) as usize == numbers.len()
            && numbers.len() == numbered.len()
            && lowest_first
            && highest_last;
        if unbroken {
            let first_time = numbered[0].3;
            for event in numbered.iter().filter(|event| event.2 == lo || event.2 == hi) {
                out.push(row(event, lo, hi, first_time));
            }
            continue;
        }
        let mut sessions: BTreeMap<usize, Vec<&Event>> = BTreeMap::new();
        let (mut session, mut previous) = (0, None);
        for event in numbered {
            if event.2 <= 1 || previous.is_some_and(|previous| event.2 <= previous) {
                session += 1;
            }
            previous = Some(event.2);
            sessions.entry(session).or_default().push(event);
        }
        for in_session in sessions.into_values() {
            let distinct: Vec<i64> = in_session
                .iter()
                .map(|event| event.2)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let run_of = |sequence: i64| sequence - distinct.iter().position(|n| *n == sequence).unwrap() as i64;
            let mut runs: BTreeMap<i64, Vec<&Event>> = BTreeMap::new();
            for event in in_session {
                runs.entry(run_of(event.2)).or_default().push(event);
            }
            for run in runs.into_values() {
                let start = run.iter().map(|event| event.2).min().unwrap();
                let end = run.iter().map(|event| event.2).max().unwrap();
                let run_time = run.iter().map(|event| event.3).min().unwrap();
                for event in run.into_iter().filter(|event| event.2 == start || event.2 == end) {
                    out.push(row(event, start, end, run_time));
                }
            }
        }
    }
    out.sort();
    out
}

fn batch_of(events: &[Event]) -> RecordBatch {
    let lines: Vec<FixtureEvent> = events
        .iter()
        .enumerate()
        .map(|(line, (host, id, sequence, time))| FixtureEvent {
            value: serde_json::json!({
                "time": chrono::DateTime::from_timestamp(BASE + time, 0).unwrap().to_rfc3339(),
                "host.id": host,
                "event.name": "file.access",
                "event.id": id,
                "event.sequence": sequence,
                "file.operation": "read",
                "file.path": "/home/alice/a.md",
            }),
            arrival: None,
            provenance: None,
            line: line as u64 + 1,
        })
        .collect();
    let batches = to_batches(Path::new("telemetry-gap-input"), &lines).unwrap();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// input.sql's output over one batch of `events`, times in seconds from the base.
fn kept(events: &[Event]) -> Vec<Row> {
    telemetry_gap_stage::run(&rule().input, batch_of(events), |nanos| nanos / 1_000_000_000 - BASE)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn input_keeps_each_runs_ends_as_the_steps_do(hosts in prop::collection::vec(host_events(), 1..5)) {
        let events = events_of(&hosts);
        prop_assert_eq!(kept(&events), expected(&events));
    }
}

#[test]
fn one_number_is_one_row_and_a_stretch_two() {
    let events = events_of(&[vec![(7, 0)], vec![(3, 0), (4, 10), (5, 20)]]);
    let rows = kept(&events);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert_eq!(rows, expected(&events));
}

#[test]
fn a_number_sent_twice_at_an_end_keeps_both_events() {
    // Not the short cut: the steps keep every event at a run's ends.
    let events = events_of(&[vec![(3, 0), (3, 5), (4, 10)]]);
    let rows = kept(&events);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert_eq!(rows, expected(&events));
}
