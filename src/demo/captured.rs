//! Real agents' own exports, captured unchanged (`schemas/testdata/`) and replayed with
//! their times moved to now, under the laptop's one-host credential (none of them
//! names a host): Claude Code 2.1.332's OTLP/HTTP JSON logs and beta traces (its Bash
//! tool running curl in bypass mode), the OpenAI Agents SDK's GenAI spans (its
//! OpenTelemetry instrumentation; a fetch tool) and an MCP client's and server's spans
//! (the MCP Python SDK 2.3; a `tools/call`), the last two as OTLP/HTTP protobuf.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::Value;

const LOGS: &str = include_str!("../../schemas/testdata/claude_code/logs_bypass.json");
const TRACES: &str = include_str!("../../schemas/testdata/claude_code/traces_bypass.json");
const SPANS: &[&[u8]] = &[
    include_bytes!("../../schemas/testdata/genai/openai_agents_traces.pb"),
    include_bytes!("../../schemas/testdata/mcp/client_traces.pb"),
    include_bytes!("../../schemas/testdata/mcp/server_traces.pb"),
];

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

/// Sends the GenAI and MCP span exports to `http` as `token`, as protobuf: how many
/// spans were taken.
pub async fn replay_spans(http: &str, token: &str) -> anyhow::Result<usize> {
    let now = cordon_schemas::time::now_nanos() as u64;
    let client = reqwest::Client::new();
    let mut spans = 0;
    for export in SPANS {
        let mut request = ExportTraceServiceRequest::decode(*export)?;
        let all = request
            .resource_spans
            .iter_mut()
            .flat_map(|resource| &mut resource.scope_spans)
            .flat_map(|scope| &mut scope.spans);
        let spans_of: Vec<_> = all.collect();
        let earliest = spans_of
            .iter()
            .map(|span| span.start_time_unix_nano)
            .min()
            .unwrap_or(now);
        for span in spans_of {
            span.start_time_unix_nano = span.start_time_unix_nano - earliest + now;
            span.end_time_unix_nano = span.end_time_unix_nano.saturating_sub(earliest) + now;
            spans += 1;
        }
        let response = client
            .post(format!("{http}/v1/traces"))
            .bearer_auth(token)
            .header("content-type", "application/x-protobuf")
            .body(request.encode_to_vec())
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "/v1/traces: {}", response.status());
    }
    Ok(spans)
}

/// Sends Claude Code's export to `http` (the OTLP/HTTP listener) as `token`: how many
/// log records and spans were taken.
pub async fn replay_claude_code(http: &str, token: &str) -> anyhow::Result<(i64, i64)> {
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
