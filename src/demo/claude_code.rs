//! Claude Code as it really sends: its own OTLP/HTTP JSON export (logs and beta traces,
//! captured from the Claude Code 2.1.332 CLI running curl through its Bash tool in
//! bypass mode; `schemas/testdata/claude_code`), replayed with its times moved to now
//! under the laptop's one-host credential, since Claude Code names no host.

use serde_json::Value;

const LOGS: &str = include_str!("../../schemas/testdata/claude_code/logs_bypass.json");
const TRACES: &str = include_str!("../../schemas/testdata/claude_code/traces_bypass.json");

/// The OTLP time fields of logs and spans.
const TIME_FIELDS: &[&str] = &[
    "timeUnixNano",
    "observedTimeUnixNano",
    "startTimeUnixNano",
    "endTimeUnixNano",
];

/// `export` with every time moved by the same amount, so that its first is `now`.
fn moved_to(export: &str, now: i64) -> anyhow::Result<Value> {
    let mut export: Value = serde_json::from_str(export)?;
    let mut earliest = i64::MAX;
    visit_times(&mut export, &mut |time| earliest = earliest.min(*time));
    let shift = now - earliest;
    visit_times(&mut export, &mut |time| *time += shift);
    Ok(export)
}

fn visit_times(value: &mut Value, visit: &mut impl FnMut(&mut i64)) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if TIME_FIELDS.contains(&name.as_str())
                    && let Some(mut time) = field.as_str().and_then(|text| text.parse::<i64>().ok())
                {
                    visit(&mut time);
                    *field = Value::String(time.to_string());
                } else {
                    visit_times(field, visit);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| visit_times(item, visit)),
        _ => {}
    }
}

/// Sends the export to `http` (the OTLP/HTTP listener) as `token`: how many log records
/// and spans were taken.
pub async fn replay(http: &str, token: &str) -> anyhow::Result<(i64, i64)> {
    let now = cordon_schemas::time::now_nanos();
    let client = reqwest::Client::new();
    let mut taken = Vec::new();
    for (path, export, count_key) in [("/v1/logs", LOGS, "logRecords"), ("/v1/traces", TRACES, "spans")] {
        let body = moved_to(export, now)?;
        let response = client
            .post(format!("{http}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "{path}: {}", response.status());
        let answer: Value = response.json().await?;
        let rejected = answer["partialSuccess"]["rejectedLogRecords"]
            .as_i64()
            .or_else(|| answer["partialSuccess"]["rejectedSpans"].as_i64())
            .unwrap_or(0);
        anyhow::ensure!(rejected == 0, "{path}: {answer}");
        taken.push(count(&body, count_key));
    }
    Ok((taken[0], taken[1]))
}

/// The number of items in every `key` array of `value`.
fn count(value: &Value, key: &str) -> i64 {
    match value {
        Value::Object(fields) => fields
            .iter()
            .map(|(name, field)| match (name == key, field) {
                (true, Value::Array(items)) => items.len() as i64,
                _ => count(field, key),
            })
            .sum(),
        Value::Array(items) => items.iter().map(|item| count(item, key)).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_move_together_to_now() {
        let moved = moved_to(LOGS, 2_000_000_000_000_000_000).unwrap();
        let mut times = Vec::new();
        visit_times(&mut moved.clone(), &mut |time| times.push(*time));
        assert_eq!(times.iter().min(), Some(&2_000_000_000_000_000_000));
        let original: Value = serde_json::from_str(LOGS).unwrap();
        let mut before = Vec::new();
        visit_times(&mut original.clone(), &mut |time| before.push(*time));
        let spread = |times: &[i64]| times.iter().max().unwrap() - times.iter().min().unwrap();
        assert_eq!(spread(&times), spread(&before), "the intervals are kept");
        assert_eq!(count(&original, "logRecords"), 10);
    }
}
