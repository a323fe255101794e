//! RSigma as a peer: `rsigma engine eval` over the stream's JSON lines with the
//! built-in rules written as Sigma (`bench/peers/sigma/`, one file per Cordon rule,
//! titled with the Cordon rule's id). RSigma reports every matching event (of the
//! helper rules correlations read too, which are not counted) and every
//! correlation that fires; the alerts counted are those results folded the way
//! Cordon folds matches (one alert per rule and entity per suppression period,
//! `fold.rs`), so the counts compare.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde_json::Value;

use super::cordon_run::RunReport;
use super::measure::Measured;

pub fn command(rsigma: &Path, rules: &Path, input: &Path) -> Command {
    let mut command = Command::new(rsigma);
    command
        .args(["--output-format", "ndjson", "--quiet", "engine", "eval", "--rules"])
        .arg(rules)
        .args([
            "--timestamp-field",
            "time",
            "--include-event",
            "--correlation-event-mode",
            "refs",
        ])
        .arg("--event")
        .arg(format!("@{}", input.display()));
    command
}

/// What Cordon's rule says about folding: its entity and suppression.
struct Folding {
    entity: Vec<String>,
    suppression_nanos: i64,
}

fn folding(rules_dir: &Path, rule: &str) -> Option<Folding> {
    let settings = cordon_detections::settings::RuleSettings::load(&rules_dir.join(rule).join("rule.toml")).ok()?;
    Some(Folding {
        entity: settings.entity.clone(),
        suppression_nanos: settings.suppression.as_nanos() as i64,
    })
}

fn event_time(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .and_then(|time| time.timestamp_nanos_opt()),
        // RSigma's event references carry Unix seconds.
        Value::Number(number) => number.as_i64().map(|seconds| seconds.saturating_mul(1_000_000_000)),
        _ => None,
    }
}

pub fn report(measured: &Measured, events: u64, rules_dir: &Path) -> anyhow::Result<RunReport> {
    let mut foldings: HashMap<String, Option<Folding>> = HashMap::new();
    // (rule, entity) -> first_seen of each alert.
    let mut alerts: HashMap<(String, Vec<String>), Vec<i64>> = HashMap::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for line in measured.stdout.lines().filter(|line| line.starts_with('{')) {
        let result: Value = serde_json::from_str(line).with_context(|| format!("reading RSigma's output: {line}"))?;
        let Some(rule) = result.get("rule_title").and_then(Value::as_str) else {
            continue;
        };
        let folding = foldings
            .entry(rule.to_string())
            .or_insert_with(|| folding(rules_dir, rule));
        // The helper rules a correlation reads are not Cordon rules: not counted.
        let Some(folding) = folding else {
            continue;
        };
        let (entity, time) = match result.get("group_key").and_then(Value::as_array) {
            // A correlation: its group-by values, and the time of its newest event.
            Some(group) => {
                let values: HashMap<&str, &str> = group
                    .iter()
                    .filter_map(|pair| Some((pair.get(0)?.as_str()?, pair.get(1)?.as_str()?)))
                    .collect();
                let entity = folding
                    .entity
                    .iter()
                    .map(|field| values.get(field.as_str()).unwrap_or(&"").to_string())
                    .collect();
                let time = result.get("event_refs").and_then(Value::as_array).and_then(|refs| {
                    refs.iter()
                        .filter_map(|r| r.get("timestamp").and_then(event_time))
                        .max()
                });
                (entity, time)
            }
            None => {
                let event = result.get("event").cloned().unwrap_or(Value::Null);
                let entity = folding
                    .entity
                    .iter()
                    .map(|field| event.get(field).and_then(Value::as_str).unwrap_or("").to_string())
                    .collect();
                (entity, event.get("time").and_then(event_time))
            }
        };
        let time = time.unwrap_or(0);
        let held = alerts.entry((rule.to_string(), entity)).or_default();
        if held
            .last()
            .is_some_and(|first_seen| time < first_seen.saturating_add(folding.suppression_nanos))
        {
            continue;
        }
        held.push(time);
        *counts.entry(rule.to_string()).or_default() += 1;
    }
    Ok(RunReport {
        events,
        seconds: measured.wall_seconds,
        alerts: counts,
        method: "rsigma engine eval over the JSON lines, results folded per entity and suppression".into(),
        partial: false,
    })
}
