//! The engine's invariant (detections/README.md, "Time"): for the same events, the
//! alerts (entity, first and last seen, evidence) and the events set aside do not
//! depend on how arrivals were batched, on other hosts' events merged in, or on
//! reordering within the lateness bound. Property tests over the built-in rules'
//! fixture streams; each expected file is the reference (the fixture suite checks it
//! against one event at a time).
//!
//! `PROPTEST_CASES` sets how many streams each property tries (default 24: each run
//! plans a rule, about 0.2 s in a debug build).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arrow::record_batch::RecordBatch;
use cordon_detections::EngineConfig;
use cordon_detections::fixtures::{self, Expected, FixtureEvent, Shape};
use cordon_detections::reference::ReferenceTable;
use proptest::prelude::*;

struct Case {
    rule_dir: PathBuf,
    path: PathBuf,
    /// Arrivals filled in.
    events: Vec<FixtureEvent>,
    /// Some line gives its own arrival (skew and age cases depend on it exactly).
    explicit_arrivals: bool,
    expected: Shape,
}

fn detections_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for tests"))
}

fn reference() -> &'static BTreeMap<String, ReferenceTable> {
    static REFERENCE: OnceLock<BTreeMap<String, ReferenceTable>> = OnceLock::new();
    REFERENCE.get_or_init(|| cordon_detections::reference::load_dir(&detections_dir().join("reference")).unwrap())
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Every fixture case of the built-in rules, grouped by rule.
fn rules() -> &'static Vec<Vec<Case>> {
    static RULES: OnceLock<Vec<Vec<Case>>> = OnceLock::new();
    RULES.get_or_init(|| {
        cordon_detections::rule::rule_dirs(&detections_dir().join("rules"))
            .unwrap()
            .into_iter()
            .map(|rule_dir| {
                fixtures::cases(&rule_dir)
                    .into_iter()
                    .map(|path| {
                        let mut events = fixtures::read_lines(&path).unwrap();
                        let explicit_arrivals = events.iter().any(|event| event.arrival.is_some());
                        fixtures::fill_arrivals(&path, &mut events).unwrap();
                        let text = std::fs::read_to_string(path.with_extension("expected.json")).unwrap();
                        let expected: Expected = serde_json::from_str(&text).unwrap();
                        Case {
                            rule_dir: rule_dir.clone(),
                            path,
                            events,
                            explicit_arrivals,
                            expected: expected.shape(),
                        }
                    })
                    .collect()
            })
            .collect()
    })
}

fn all_cases() -> Vec<&'static Case> {
    rules().iter().flatten().collect()
}

/// Runs `events` through the rule of `case`, cut into batches after the events whose
/// `cuts` flag is set, and returns the shape of what it raised.
fn run(case: &Case, events: &[FixtureEvent], cuts: &[bool]) -> Shape {
    run_with(case, events, cuts, &EngineConfig::default())
}

fn run_with(case: &Case, events: &[FixtureEvent], cuts: &[bool], config: &EngineConfig) -> Shape {
    let singles = fixtures::to_batches(&case.path, events).unwrap();
    let mut batches: Vec<RecordBatch> = Vec::new();
    let mut pending: Vec<RecordBatch> = Vec::new();
    for (index, single) in singles.into_iter().enumerate() {
        pending.push(single);
        if cuts.get(index % cuts.len().max(1)).copied().unwrap_or(false) {
            batches.push(concat(&pending));
            pending.clear();
        }
    }
    if !pending.is_empty() {
        batches.push(concat(&pending));
    }
    let produced = runtime()
        .block_on(fixtures::produce(&case.rule_dir, batches, reference(), config))
        .unwrap();
    produced.shape()
}

fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap()
}

fn name(case: &Case) -> String {
    let rule = case.rule_dir.file_name().unwrap().to_string_lossy();
    let stem = case.path.file_stem().unwrap().to_string_lossy();
    format!("{rule}/{stem}")
}

/// Whether a field holds an identity: renamed so that a second copy of a stream is
/// another host, user, session and event set.
fn is_identity(key: &str) -> bool {
    // `risk.entity` names the user, host, agent or session a risk event is about.
    key == "host.id" || key == "user.name" || key == "risk.entity" || key.ends_with(".id") || key.ends_with("_id")
}

/// The events of `case` as another host's and user's: every identity prefixed `b-`.
/// Returns the renamed events and the renaming.
fn renamed(events: &[FixtureEvent]) -> (Vec<FixtureEvent>, BTreeMap<String, String>) {
    let mut names = BTreeMap::new();
    let events = events
        .iter()
        .map(|event| {
            let mut event = event.clone();
            if let Some(object) = event.value.as_object_mut() {
                for (key, value) in object.iter_mut() {
                    if let Some(text) = value.as_str().filter(|_| is_identity(key)) {
                        let new = format!("b-{text}");
                        names.insert(text.to_string(), new.clone());
                        *value = serde_json::Value::from(new);
                    }
                }
            }
            event
        })
        .collect();
    (events, names)
}

fn rename_shape(shape: &Shape, names: &BTreeMap<String, String>) -> Shape {
    // An agent's id that a producer mapping derived from its session
    // (`claude-code/<session.id>`) follows its session's renaming.
    let rename = |text: &String| {
        names.get(text).cloned().unwrap_or_else(|| match text.rsplit_once('/') {
            Some((product, id)) if names.contains_key(id) => format!("{product}/{}", names[id]),
            _ => text.clone(),
        })
    };
    let alerts = shape
        .0
        .iter()
        .map(|(entity, first, last, evidence)| {
            let entity = entity
                .iter()
                .map(|(key, value)| (key.clone(), value.as_ref().map(rename)))
                .collect();
            let mut evidence: Vec<String> = evidence.iter().map(rename).collect();
            evidence.sort();
            (entity, first.clone(), last.clone(), evidence)
        })
        .collect();
    (alerts, shape.1)
}

/// Two streams merged in arrival order, as one receiver meets them; `ties` decides
/// which goes first when both arrive at once.
fn merge(a: &[FixtureEvent], b: &[FixtureEvent], ties: &[bool]) -> Vec<FixtureEvent> {
    let (mut i, mut j, mut tie) = (0, 0, 0);
    let mut merged = Vec::with_capacity(a.len() + b.len());
    while i < a.len() || j < b.len() {
        let take_a = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.arrival == y.arrival => {
                tie += 1;
                ties[tie % ties.len()]
            }
            (Some(x), Some(y)) => x.arrival < y.arrival,
            (Some(_), None) => true,
            _ => false,
        };
        if take_a {
            merged.push(a[i].clone());
            i += 1;
        } else {
            merged.push(b[j].clone());
            j += 1;
        }
    }
    merged
}

fn event_time(case: &Path, event: &FixtureEvent) -> i64 {
    let record = cordon_schemas::flat::flat_json_to_event(&event.value)
        .unwrap_or_else(|error| panic!("{}: {error}", case.display()));
    record.time_unix_nano as i64
}

/// The events reordered within the lateness: each moved by a random delay shorter
/// than the lateness, then sorted by time plus delay. An event then never comes after
/// one more than the lateness newer, so none may be judged late. Arrivals are given
/// anew from the new order.
fn reorder(case: &Case, delays: &[f64]) -> Vec<FixtureEvent> {
    let lateness = EngineConfig::default().lateness.as_nanos() as i64;
    let mut keyed: Vec<(i64, usize, FixtureEvent)> = case
        .events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let delay = (delays[index % delays.len()] * (lateness - 1) as f64) as i64;
            let mut event = event.clone();
            event.arrival = None;
            (event_time(&case.path, &event) + delay, index, event)
        })
        .collect();
    keyed.sort_by_key(|(key, index, _)| (*key, *index));
    keyed.into_iter().map(|(_, _, event)| event).collect()
}

/// telemetry-gap's known limit (its rule.toml): a restart's first numbers reordered
/// into another batch than an older number and a newer one that continue each other
/// make them one run. Left out of the reordering property, not of the others.
fn crosses_a_restart(case: &Case) -> bool {
    name(case) == "telemetry-gap/fire-gap-before-a-restart"
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(24);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// A stream cut into requests of any size raises what it raises one by one.
    #[test]
    fn any_split_into_batches_raises_the_same_alerts(
        pick in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(any::<bool>(), 1..48),
    ) {
        let cases = all_cases();
        let case = pick.get(&cases);
        let shape = run(case, &case.events, &cuts);
        prop_assert_eq!(&shape, &case.expected, "{} cut at {:?}", name(case), cuts);
    }

    /// Every rule holding its events for an interval (`evaluate_every`) before
    /// evaluating them together raises what it raises evaluating them one by one.
    #[test]
    fn rules_holding_events_for_any_interval_raise_the_same_alerts(
        pick in any::<prop::sample::Index>(),
        every_ms in prop_oneof![Just(1u64), 1u64..5_000, Just(60_000u64)],
        cuts in prop::collection::vec(any::<bool>(), 1..48),
    ) {
        let cases = all_cases();
        let case = pick.get(&cases);
        let config = EngineConfig {
            evaluate_every_override: Some(std::time::Duration::from_millis(every_ms)),
            ..EngineConfig::default()
        };
        let shape = run_with(case, &case.events, &cuts, &config);
        prop_assert_eq!(&shape, &case.expected, "{} cut at {:?}, every {} ms", name(case), cuts, every_ms);
    }

    /// Two hosts' streams of the same rule merged in arrival order (as a Collector
    /// batching several hosts sends them), in batches of any size, raise both streams'
    /// alerts and nothing else.
    #[test]
    fn streams_merged_across_hosts_raise_the_alerts_of_each(
        rule in any::<prop::sample::Index>(),
        first in any::<prop::sample::Index>(),
        second in any::<prop::sample::Index>(),
        ties in prop::collection::vec(any::<bool>(), 1..16),
        cuts in prop::collection::vec(any::<bool>(), 1..48),
        every_ms in prop::option::of(prop_oneof![Just(1u64), 1u64..5_000, Just(60_000u64)]),
    ) {
        let cases = rule.get(rules());
        let (a, b) = (first.get(cases), second.get(cases));
        let (b_events, names) = renamed(&b.events);
        let merged = merge(&a.events, &b_events, &ties);
        // Held for an interval too: the two hosts' events then fall in slots of their
        // own, evaluated on different beats.
        let config = EngineConfig {
            evaluate_every_override: every_ms.map(std::time::Duration::from_millis),
            ..EngineConfig::default()
        };
        let shape = run_with(a, &merged, &cuts, &config);
        let mut expected = a.expected.clone();
        expected.0.extend(rename_shape(&b.expected, &names).0);
        expected.0.sort();
        expected.1 += b.expected.1;
        prop_assert_eq!(&shape, &expected, "{} merged with {}, every {:?} ms", name(a), name(b), every_ms);
    }

    /// Events reordered within the lateness bound raise the same alerts, and none is
    /// set aside as late.
    #[test]
    fn reordering_within_the_lateness_raises_the_same_alerts(
        pick in any::<prop::sample::Index>(),
        delays in prop::collection::vec(0.0f64..1.0, 1..48),
        cuts in prop::collection::vec(any::<bool>(), 1..48),
    ) {
        let cases: Vec<&Case> = all_cases()
            .into_iter()
            .filter(|case| !case.explicit_arrivals && case.expected.1 == 0 && !crosses_a_restart(case))
            .collect();
        let case = pick.get(&cases);
        let events = reorder(case, &delays);
        let shape = run(case, &events, &cuts);
        prop_assert_eq!(&shape, &case.expected, "{} reordered", name(case));
    }
}

/// Found by the property above: an alert's host risk event evaluated before its user's
/// (each in a request of its own, the user's a little late) raised the host's incident
/// too, though the user's holds the same alerts.
#[test]
fn an_alerts_risk_events_split_and_reordered_still_raise_one_incident_per_story() {
    let case = case("entity-risk", "fire-one-incident-per-story");
    let events = reorder(case, &[0.0, 0.0, 0.0, 0.0, 0.62, 0.0]);
    assert_eq!(run(case, &events, &[true]), case.expected);
}

fn case(rule: &str, name: &str) -> &'static Case {
    all_cases()
        .into_iter()
        .find(|case| case.rule_dir.ends_with(rule) && case.path.file_stem().is_some_and(|stem| stem == name))
        .unwrap_or_else(|| panic!("no fixture {rule}/{name}"))
}

/// Found by the reordering property: a chain's last step, kept only to its own time,
/// completed by a late step that comes in one request with a newer event of its host.
/// Expiring untouched partitions before the match evicted it unseen.
#[test]
fn a_late_step_in_a_request_with_newer_events_still_completes_its_chain() {
    let case = case(
        "exfil-attempt-chain",
        "fire-upload-after-the-clipboard-with-newer-events",
    );
    let shape = run(case, &case.events, &[false, false, true, false, false]);
    assert_eq!(shape, case.expected);
}

/// `case`'s events in the order of `ids`, arrivals given anew from that order.
fn in_order(case: &Case, ids: &[&str]) -> Vec<FixtureEvent> {
    ids.iter()
        .map(|id| {
            let mut event = case
                .events
                .iter()
                .find(|event| event.value["event.id"].as_str() == Some(id))
                .unwrap_or_else(|| panic!("no event {id} in {}", name(case)))
                .clone();
            event.arrival = None;
            event
        })
        .collect()
}

/// Found by the reordering property: a number sent twice, its two events in two runs
/// until they merge, and the gap after it named the wrong one as the event before.
#[test]
fn a_number_sent_twice_and_reordered_names_the_same_event_before_the_gap() {
    let case = case("telemetry-gap", "fire-gap-after-a-repeated-number");
    let order = ["s1", "s2", "s3", "s5", "s7", "s8", "s9", "s10", "s5-again", "s4", "s11"];
    assert_eq!(run(case, &in_order(case, &order), &[true]), case.expected);
}

/// Found by the reordering property: an old session's 4 and the new session's 2 and 3,
/// held into one evaluation without the restart's 1, looked like one stretch 2-4 and
/// filled the gap before the restart.
#[test]
fn numbers_falling_in_time_within_one_batch_are_two_sessions() {
    let case = case("telemetry-gap", "fire-gap-before-a-restart");
    let order = ["s1", "s2", "r1", "r2", "s4", "r3"];
    assert_eq!(run(case, &in_order(case, &order), &[true]), case.expected);
}
