//! Rule fixtures: `tests/<case>.jsonl` in a rule folder holds flat JSON events
//! (contract section 3), one a line, in arrival order; `#` lines are comments. Its
//! `tests/<case>.expected.json` holds the alerts the rule must raise from them.
//! A case named `fire-*` must raise at least one alert and `quiet-*` none, whatever
//! its expected file says, so blessing cannot turn a quiet case into a firing one.
//! Each expected alert names its title, severity, entity, times, count, evidence and
//! fields: what analysts read and what responses take their targets from (a
//! `token_id` field is what `revoke_token` revokes).
//!
//! Every case runs twice: one event at a time (checked against the expected file),
//! and all its events in one batch, as the server evaluates a burst of arrivals; the
//! two must raise the same alerts (the engine's invariant, detections/README.md).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::alerts::{AlertFilter, AlertStore};
use crate::engine::{Engine, EngineConfig};
use crate::error::RuleError;
use crate::metrics::DetectionMetrics;
use crate::reference::ReferenceTable;
use crate::rule::TESTS_DIR;
use arrow::record_batch::RecordBatch;
use cordon_schemas::{EventBatchBuilder, flat::flat_json_to_event, flat::parse_time};

/// What a case must produce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    pub alerts: Vec<ExpectedAlert>,
    /// Events that arrived later than the lateness bound.
    #[serde(default)]
    pub late_events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedAlert {
    pub title: String,
    pub severity: cordon_schemas::Severity,
    pub entity: std::collections::BTreeMap<String, Option<String>>,
    pub first_seen: String,
    pub last_seen: String,
    pub count: u64,
    /// Evidence event ids, oldest first.
    pub evidence: Vec<String>,
    /// The rule's extra output columns, from the latest match.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// The outcome of one case.
#[derive(Debug)]
pub struct CaseResult {
    pub rule: String,
    pub case: String,
    pub file: PathBuf,
    /// None when the case passed.
    pub failure: Option<String>,
    pub blessed: bool,
}

/// The cases of one rule folder, sorted by name.
pub fn cases(rule_dir: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(rule_dir.join(TESTS_DIR))
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    cases.sort();
    cases
}

fn expected_path(case: &Path) -> PathBuf {
    case.with_extension("expected.json")
}

/// The key an event line may carry to say when it arrived (RFC 3339 or integer
/// nanoseconds); without it an event arrives just after the line before it, and no
/// earlier than its own time.
pub const ARRIVAL_KEY: &str = "arrival";
/// A line's key for how the event arrived (`{"transport": "otlp_grpc", "producer":
/// "wks-1", "tls": true}`); without it, an unauthenticated event of transport `unknown`.
pub const PROVENANCE_KEY: &str = "provenance";

fn read_provenance(value: &serde_json::Value) -> Result<cordon_schemas::Provenance, String> {
    const TRANSPORTS: &[&str] = &[
        "otlp_grpc",
        "otlp_http",
        "kafka",
        "opa_logs",
        "responder",
        "detections",
        "unknown",
    ];
    let transport = value
        .get("transport")
        .and_then(|value| value.as_str())
        .unwrap_or("unknown");
    let transport = TRANSPORTS
        .iter()
        .find(|known| **known == transport)
        .ok_or_else(|| format!("{PROVENANCE_KEY}.transport {transport:?} is none of {TRANSPORTS:?}"))?;
    Ok(cordon_schemas::Provenance {
        transport,
        producer: value.get("producer").and_then(|value| value.as_str()).map(Into::into),
        tls: value.get("tls").and_then(|value| value.as_bool()).unwrap_or(false),
        hosts: cordon_schemas::HostScope::Any,
    })
}

/// One event line of a case: the flat JSON (its `event.id` filled in when absent) and
/// the arrival it gives, if any.
#[derive(Debug, Clone)]
pub struct FixtureEvent {
    pub value: serde_json::Value,
    pub arrival: Option<i64>,
    pub provenance: Option<cordon_schemas::Provenance>,
    pub line: u64,
}

/// Reads a case's event lines, in file order.
pub fn read_lines(case: &Path) -> Result<Vec<FixtureEvent>, RuleError> {
    let text = std::fs::read_to_string(case).map_err(|error| RuleError::io(case, error))?;
    let stem = case.file_stem().and_then(|stem| stem.to_str()).unwrap_or("case");
    let mut events = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index as u64 + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let bad = |message: String| RuleError::at(case, Some(line_number), None, message);
        let mut value: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|error| bad(format!("not JSON: {error}")))?;
        let mut arrival = None;
        let mut provenance = None;
        if let Some(object) = value.as_object_mut() {
            if let Some(given) = object.remove(PROVENANCE_KEY) {
                provenance = Some(read_provenance(&given).map_err(bad)?);
            }
            object
                .entry("event.id")
                .or_insert_with(|| serde_json::Value::from(format!("{stem}:{line_number}")));
            if let Some(given) = object.remove(ARRIVAL_KEY) {
                let nanos = parse_time(&given).map_err(|reason| bad(format!("{ARRIVAL_KEY}: {reason}")))?;
                arrival = Some(i64::try_from(nanos).unwrap_or(i64::MAX));
            }
        }
        events.push(FixtureEvent {
            value,
            arrival,
            provenance,
            line: line_number,
        });
    }
    Ok(events)
}

/// Gives every event without an arrival one: just after the event before it, and no
/// earlier than its own time (fixtures describe lateness by file order).
pub fn fill_arrivals(case: &Path, events: &mut [FixtureEvent]) -> Result<(), RuleError> {
    let mut previous_arrival = i64::MIN;
    for event in events.iter_mut() {
        let record = flat_json_to_event(&event.value)
            .map_err(|reason| RuleError::at(case, Some(event.line), None, reason.to_string()))?;
        let event_time = i64::try_from(record.time_unix_nano).unwrap_or(i64::MAX);
        let arrival = event
            .arrival
            .unwrap_or_else(|| previous_arrival.saturating_add(1).max(event_time));
        event.arrival = Some(arrival);
        previous_arrival = previous_arrival.max(arrival);
    }
    Ok(())
}

/// One record batch per event, in the given order (arrivals as `fill_arrivals` gives).
pub fn to_batches(case: &Path, events: &[FixtureEvent]) -> Result<Vec<RecordBatch>, RuleError> {
    let mut events = events.to_vec();
    fill_arrivals(case, &mut events)?;
    let mut batches = Vec::with_capacity(events.len());
    for event in &events {
        let bad = |message: String| RuleError::at(case, Some(event.line), None, message);
        let record = flat_json_to_event(&event.value).map_err(|reason| bad(reason.to_string()))?;
        record.validate().map_err(|reason| bad(reason.to_string()))?;
        let mut builder = EventBatchBuilder::with_capacity(1).allowing_own_kinds();
        if let Some(provenance) = &event.provenance {
            builder = builder.with_provenance(provenance.clone());
        }
        builder
            .append(&record, event.arrival.unwrap_or_default())
            .map_err(|reason| bad(reason.to_string()))?;
        batches.push(builder.finish());
    }
    Ok(batches)
}

/// Reads a case's events: one record batch per event, in file order.
pub fn read_events(case: &Path) -> Result<Vec<RecordBatch>, RuleError> {
    to_batches(case, &read_lines(case)?)
}

/// Runs one case of the rule in `rule_dir`.
pub async fn run_case(
    rule_dir: &Path,
    case: &Path,
    reference: &std::collections::BTreeMap<String, ReferenceTable>,
    config: &EngineConfig,
    bless: bool,
) -> CaseResult {
    let rule = rule_dir
        .file_name()
        .map(|name| name.to_string_lossy().to_string())
        .unwrap_or_default();
    let name = case
        .file_stem()
        .map(|stem| stem.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut result = CaseResult {
        rule,
        case: name.clone(),
        file: case.to_path_buf(),
        failure: None,
        blessed: false,
    };
    let events = match read_events(case) {
        Ok(events) => events,
        Err(error) => {
            result.failure = Some(error.to_string());
            return result;
        }
    };
    let batched = match events.first() {
        Some(first) => vec![arrow::compute::concat_batches(&first.schema(), &events).expect("one schema")],
        None => Vec::new(),
    };
    let anchor = crate::settings::RuleSettings::load(&rule_dir.join(crate::rule::SETTINGS_FILE))
        .ok()
        .and_then(|settings| settings.anchor);
    // An anchor is the rule's word that every match holds an anchor row: checked by
    // matching every partition too, one event at a time (where skipping counts most).
    let unanchored = match &anchor {
        Some(_) => {
            let config = EngineConfig {
                ignore_anchors: true,
                ..config.clone()
            };
            Some(produce(rule_dir, events.clone(), reference, &config).await)
        }
        None => None,
    };
    let one_by_one = produce(rule_dir, events, reference, config).await;
    let in_one_batch = produce(rule_dir, batched, reference, config).await;
    if let (Some(anchor), Some(Ok(unanchored)), Ok(actual)) = (&anchor, &unanchored, &one_by_one)
        && unanchored.shape() != actual.shape()
    {
        result.failure = Some(format!(
            "a match holds no row with {} in {:?}, so rule.toml's anchor is wrong (fix it or leave it out): with it {}\n     matching every partition {}",
            anchor.column(),
            anchor.values(),
            serde_json::to_string(&actual.shape()).unwrap_or_default(),
            serde_json::to_string(&unanchored.shape()).unwrap_or_default()
        ));
        return result;
    }
    match (one_by_one, in_one_batch) {
        (Err(message), _) | (_, Err(message)) => result.failure = Some(message),
        (Ok(actual), Ok(batched)) if actual.shape() != batched.shape() => {
            result.failure = Some(format!(
                "the alerts depend on batching: one event at a time {}\n     all in one batch {}",
                serde_json::to_string(&actual.shape()).unwrap_or_default(),
                serde_json::to_string(&batched.shape()).unwrap_or_default()
            ));
        }
        (Ok(actual), Ok(_)) => {
            if name.starts_with("fire-") && actual.alerts.is_empty() {
                result.failure = Some("a fire- case raised no alert".into());
            } else if name.starts_with("quiet-") && !actual.alerts.is_empty() {
                result.failure = Some(format!(
                    "a quiet- case raised {} alert(s): {}",
                    actual.alerts.len(),
                    serde_json::to_string(&actual.alerts).unwrap_or_default()
                ));
            } else if bless {
                let text = serde_json::to_string_pretty(&actual).expect("serializable") + "\n";
                match std::fs::write(expected_path(case), text) {
                    Ok(()) => result.blessed = true,
                    Err(error) => result.failure = Some(format!("cannot write the expected file: {error}")),
                }
            } else {
                result.failure = compare(case, &actual);
            }
        }
    }
    result
}

fn compare(case: &Path, actual: &Expected) -> Option<String> {
    let path = expected_path(case);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) => {
            return Some(format!(
                "{} is missing; run `cordon rules test --bless` to write it from this run, then review it",
                path.display()
            ));
        }
    };
    let expected: Expected = match serde_json::from_str(&text) {
        Ok(expected) => expected,
        Err(error) => return Some(format!("{}: {error}", path.display())),
    };
    if &expected == actual {
        return None;
    }
    Some(format!(
        "expected {}\n     got {}",
        serde_json::to_string(&expected).unwrap_or_default(),
        serde_json::to_string(actual).unwrap_or_default()
    ))
}

/// What must not depend on batching: the alerts' entity, first and last seen and
/// evidence, and the events set aside. (`count`, the matches folded in, may: one
/// evaluation of a burst can see a match that one event at a time never formed.)
pub type Shape = (
    Vec<(
        std::collections::BTreeMap<String, Option<String>>,
        String,
        String,
        Vec<String>,
    )>,
    u64,
);

impl Expected {
    pub fn shape(&self) -> Shape {
        let mut alerts: Vec<_> = self
            .alerts
            .iter()
            .map(|alert| {
                let mut evidence = alert.evidence.clone();
                evidence.sort();
                (
                    alert.entity.clone(),
                    alert.first_seen.clone(),
                    alert.last_seen.clone(),
                    evidence,
                )
            })
            .collect();
        alerts.sort();
        (alerts, self.late_events)
    }
}

/// Runs the rule in `rule_dir` over `batches`, one evaluation each, and returns what
/// it raised.
pub async fn produce(
    rule_dir: &Path,
    batches: Vec<RecordBatch>,
    reference: &std::collections::BTreeMap<String, ReferenceTable>,
    config: &EngineConfig,
) -> Result<Expected, String> {
    let mut engine = Engine::new(config.clone(), reference.clone(), DetectionMetrics::default());
    let compiled = engine
        .compile(rule_dir)
        .await
        .map_err(|error| error.to_string())?
        .ok_or("the rule is disabled")?;
    engine.install(compiled);
    let store = AlertStore::in_memory();
    let last = batches.len();
    for (at, batch) in batches.into_iter().enumerate() {
        let mut burst = crate::process::process_and_fold(&mut engine, &store, &batch).await;
        if at + 1 == last {
            // What a rule holds (`evaluate_every`) is evaluated once the case is over,
            // as the server does when its interval passes with nothing arriving.
            let held = crate::process::evaluate_held_and_fold(&mut engine, &store, crate::engine::Due::All).await;
            burst.merge(held);
        }
        if let Some(error) = burst.errors.first() {
            return Err(error.to_string());
        }
        if let Some((_, error)) = burst.store_errors.first() {
            return Err(error.to_string());
        }
        // A building block's fixtures check its signals as they would an alert.
        for (found, definition) in burst.signals {
            store
                .fold(&found, &crate::alerts::RuleMeta::from(&definition.settings))
                .map_err(|error| error.to_string())?;
        }
    }
    let mut alerts = store
        .list(&AlertFilter {
            limit: 10_000,
            ..AlertFilter::default()
        })
        .map_err(|error| error.to_string())?;
    // Alert ids are random: order by what the alerts hold, so two alerts that start
    // together (one per destination) always come in the same order.
    let key = |alert: &cordon_schemas::Alert| {
        let evidence: Vec<&str> = alert.evidence.iter().map(|e| e.event_id.as_str()).collect();
        (
            alert.first_seen.clone(),
            alert.last_seen.clone(),
            format!("{:?}", alert.entity),
            evidence.join(","),
        )
    };
    alerts.sort_by_key(key);
    Ok(Expected {
        alerts: alerts
            .into_iter()
            .map(|alert| ExpectedAlert {
                title: alert.title,
                severity: alert.severity,
                entity: alert.entity,
                first_seen: alert.first_seen,
                last_seen: alert.last_seen,
                count: alert.count,
                evidence: alert.evidence.into_iter().map(|evidence| evidence.event_id).collect(),
                fields: alert.fields,
            })
            .collect(),
        late_events: engine.late_events(),
    })
}

/// Runs every case of every rule folder under `rules_dir` (or only `only`).
pub async fn run_all(
    rules_dir: &Path,
    reference: &std::collections::BTreeMap<String, ReferenceTable>,
    config: &EngineConfig,
    only: Option<&str>,
    bless: bool,
) -> Result<Vec<CaseResult>, RuleError> {
    let mut results = Vec::new();
    for dir in crate::rule::rule_dirs(rules_dir)? {
        let id = dir.file_name().map(|name| name.to_string_lossy().to_string());
        if only.is_some_and(|only| Some(only) != id.as_deref()) {
            continue;
        }
        let cases = cases(&dir);
        if cases.is_empty() {
            results.push(CaseResult {
                rule: id.unwrap_or_default(),
                case: "-".into(),
                file: dir.join(TESTS_DIR),
                failure: Some("the rule has no fixtures: add tests/fire-*.jsonl and tests/quiet-*.jsonl".into()),
                blessed: false,
            });
        }
        for case in cases {
            results.push(run_case(&dir, &case, reference, config, bless).await);
        }
    }
    Ok(results)
}
