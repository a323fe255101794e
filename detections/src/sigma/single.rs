//! A Sigma detection rule as a Cordon rule folder: one match per matching event,
//! alerts on one host folding together for the suppression period.

use std::collections::BTreeMap;
use std::time::Duration;

use rsigma_parser::SigmaRule;

use super::detection::{self, BASE_COLUMNS, DetectionSql};
use super::example::EventDraft;
use super::folder::{EventBase, RuleFiles, flat_event, meta_of};
use super::mapping::SigmaMapping;

pub const FIRE_CASE: &str = "fire-sigma-values";
pub const QUIET_CASE: &str = "quiet-sigma-benign-values";

/// The converted rule and what its fixtures were made from.
#[derive(Debug)]
pub struct ConvertedDetection {
    pub files: RuleFiles,
    pub example: Example,
}

/// A single-event rule's logsource and the Sigma-side events its fixtures were made
/// from, one that fires and one that does not (what an independent Sigma engine can be
/// asked about).
#[derive(Debug)]
pub struct Example {
    pub logsource: String,
    pub fire_event: BTreeMap<String, serde_json::Value>,
    pub quiet_event: BTreeMap<String, serde_json::Value>,
}

pub fn base_time() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-01-15T10:00:00Z")
        .expect("a fixed time")
        .with_timezone(&chrono::Utc)
}

pub fn input_sql(title: &str, id: Option<&str>, rule: &SigmaRule, converted: &DetectionSql) -> String {
    let fields = converted.fields();
    let columns = BASE_COLUMNS
        .iter()
        .map(|column| column.to_string())
        .chain(fields)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "-- Sigma: {title}{}\n-- condition: {}\nWITH {}\nSELECT {columns}\nFROM sigma\nWHERE {}\n",
        id.map(|id| format!(" ({id})")).unwrap_or_default(),
        rule.detection.condition_strings.join(" | "),
        converted.cte("sigma", &[]),
        converted.condition.render(0),
    )
}

pub fn match_sql(converted: &DetectionSql) -> String {
    let fields: String = converted
        .fields()
        .iter()
        .map(|column| format!(",\n       max({column}) AS {column}"))
        .collect();
    format!(
        "-- One match per event: a Sigma detection is about single events. Alerts on one\n\
         -- host fold together for the suppression period.\n\
         SELECT host_id, max(user_name) AS user_name, max(gen_ai_agent_id) AS gen_ai_agent_id,\n       \
         max(session_id) AS session_id,\n       \
         min(time) AS first_seen, max(time) AS last_seen, array_agg(event_id) AS evidence{fields}\n\
         FROM kept\nGROUP BY host_id, event_id\n"
    )
}

pub fn convert(rule: &SigmaRule, source: &str, mapping: &SigmaMapping) -> Result<ConvertedDetection, String> {
    let converted = detection::convert(rule, mapping)?;
    let draft: EventDraft = detection::draft(rule, &converted, mapping)
        .map_err(|why| format!("no event can be built from its values for a fixture: {why}"))?;
    let meta = meta_of!(rule, source);
    let (fire_event, quiet_event) = (draft.build(), draft.benign());
    let event = |sigma: &BTreeMap<String, serde_json::Value>, id: &str| {
        let base = EventBase {
            time: base_time(),
            host: "wks-sigma-1",
            user: "sigma-user",
            id: id.to_string(),
        };
        flat_event(sigma, &converted.logsource, mapping, &base)
    };
    let cases = BTreeMap::from([
        (FIRE_CASE.to_string(), vec![event(&fire_event, "s1")]),
        (QUIET_CASE.to_string(), vec![event(&quiet_event, "q1")]),
    ]);
    Ok(ConvertedDetection {
        files: RuleFiles {
            id: super::folder::slug(&rule.title),
            input_sql: input_sql(&rule.title, rule.id.as_deref(), rule, &converted),
            match_sql: match_sql(&converted),
            window: Duration::ZERO,
            partition_by: vec!["host_id".into()],
            entity: vec!["host_id".into()],
            cases,
            notes: converted.context.notes.iter().cloned().collect(),
            meta,
        },
        example: Example {
            logsource: converted.logsource.clone(),
            fire_event,
            quiet_event,
        },
    })
}
