//! What match.sql returns, as matches: the entity, when, the evidence (resolved to its
//! events' time and kind where the kept rows carry them) and the fields to show.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::{Deserialize, Serialize};

use crate::compile::{EVIDENCE, FIRST_SEEN, IS_DUE, IS_NEW, LAST_SEEN};
use crate::window::timestamp_nanos;
use cordon_schemas::fields::col;

/// One event that a match rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRef {
    pub event_id: String,
    /// Event time, nanoseconds since the epoch.
    pub time: Option<i64>,
    pub kind: Option<String>,
    pub host_id: Option<String>,
}

/// One row of match.sql's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub rule_id: String,
    /// The entity columns and their values (text).
    pub entity: BTreeMap<String, Option<String>>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub evidence: Vec<EvidenceRef>,
    /// Every other column, as JSON.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// How long after its last event the match was found (ns): the arrival of the
    /// evidence that completed it minus `last_seen`. Set by the engine.
    #[serde(default)]
    pub detected_after: Option<i64>,
}

impl Match {
    /// The value of a column, from the entity or the fields.
    pub fn value(&self, column: &str) -> Option<String> {
        if let Some(value) = self.entity.get(column) {
            return value.clone();
        }
        match self.fields.get(column) {
            Some(serde_json::Value::String(text)) => Some(text.clone()),
            Some(serde_json::Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        }
    }

    /// A hash of the match's evidence ids (whatever their order): the same match found
    /// again hashes the same.
    pub fn evidence_hash(&self) -> u64 {
        let mut ids: Vec<&str> = self.evidence.iter().map(|e| e.event_id.as_str()).collect();
        ids.sort_unstable();
        xxhash_rust::xxh3::xxh3_64(ids.join("\u{1f}").as_bytes())
    }

    /// The entity as one stable string, e.g. `host_id=wks-1 user_name=alice`.
    pub fn entity_key(&self) -> String {
        self.entity
            .iter()
            .map(|(name, value)| format!("{name}={}", value.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Fills in the time, kind and host of each match's evidence from the rows match.sql
/// read, and drops the matches none of whose evidence arrived or fell due in this
/// evaluation (those were raised when their newest event came). Only the rows of evidence ids are looked
/// at, and only when there are matches: most evaluations find none. Without an
/// `event_id` column in the rows, matches are kept as they are.
pub fn resolve_evidence(found: Vec<Match>, rows: &[RecordBatch]) -> Vec<Match> {
    if found.is_empty() {
        return found;
    }
    let wanted: HashSet<&str> = found
        .iter()
        .flat_map(|found| found.evidence.iter().map(|evidence| evidence.event_id.as_str()))
        .collect();
    // Event id -> (what the rows say of it, whether it is new).
    let mut seen: HashMap<String, (EvidenceRef, bool)> = HashMap::new();
    let mut has_ids = false;
    for batch in rows {
        let schema = batch.schema();
        let Some(ids) = batch
            .column_by_name(col::EVENT_ID)
            .and_then(|ids| ids.as_string_opt::<i32>().cloned())
        else {
            continue;
        };
        has_ids = true;
        let time = schema.index_of(col::TIME).ok().map(|index| batch.column(index));
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>().cloned())
        };
        let (kinds, hosts) = (text(col::EVENT_NAME), text(col::HOST_ID));
        let is_new = batch.column_by_name(IS_NEW).map(|flags| flags.as_boolean().clone());
        let is_due = batch.column_by_name(IS_DUE).map(|flags| flags.as_boolean().clone());
        for row in 0..batch.num_rows() {
            if ids.is_null(row) || !wanted.contains(ids.value(row)) {
                continue;
            }
            let pick = |column: &Option<arrow::array::StringArray>| {
                column
                    .as_ref()
                    .filter(|column| column.is_valid(row))
                    .map(|column| column.value(row).to_string())
            };
            // Fresh: arrived now, or fell due now (an absence whose window just closed).
            let new = is_new.as_ref().is_some_and(|flags| flags.value(row))
                || is_due.as_ref().is_some_and(|flags| flags.value(row));
            let entry = seen.entry(ids.value(row).to_string()).or_insert_with(|| {
                let evidence = EvidenceRef {
                    event_id: ids.value(row).to_string(),
                    time: time.and_then(|time| timestamp_nanos(time.as_ref(), row)),
                    kind: pick(&kinds),
                    host_id: pick(&hosts),
                };
                (evidence, false)
            });
            entry.1 |= new;
        }
    }
    if !has_ids {
        return found;
    }
    found
        .into_iter()
        .filter(|found| {
            found
                .evidence
                .iter()
                .any(|evidence| seen.get(&evidence.event_id).is_some_and(|(_, new)| *new))
        })
        .map(|mut found| {
            for evidence in &mut found.evidence {
                if let Some((known, _)) = seen.get(&evidence.event_id) {
                    *evidence = known.clone();
                }
            }
            found
                .evidence
                .sort_by(|a, b| (a.time, &a.event_id).cmp(&(b.time, &b.event_id)));
            found
        })
        .collect()
}

fn json_of(column: &dyn Array, row: usize, formatter: &ArrayFormatter<'_>) -> serde_json::Value {
    use serde_json::Value;
    if column.is_null(row) {
        return Value::Null;
    }
    match column.data_type() {
        DataType::Int64 => Value::from(column.as_primitive::<arrow::datatypes::Int64Type>().value(row)),
        DataType::UInt64 => Value::from(column.as_primitive::<arrow::datatypes::UInt64Type>().value(row)),
        DataType::Int32 => Value::from(column.as_primitive::<arrow::datatypes::Int32Type>().value(row)),
        DataType::Float64 => Value::from(column.as_primitive::<arrow::datatypes::Float64Type>().value(row)),
        DataType::Boolean => Value::from(column.as_boolean().value(row)),
        _ => Value::from(formatter.value(row).to_string()),
    }
}

/// The matches in match.sql's output, evidence by id only (see `resolve_evidence`).
pub fn matches_from(rule_id: &str, entity: &[String], output: &[RecordBatch]) -> Result<Vec<Match>, String> {
    let options = FormatOptions::default();
    let mut out = Vec::new();
    for batch in output {
        let schema = batch.schema();
        let column = |name: &str| {
            schema
                .index_of(name)
                .map(|index| batch.column(index).clone())
                .map_err(|_| format!("no column `{name}`"))
        };
        let (first, last, evidence) = (column(FIRST_SEEN)?, column(LAST_SEEN)?, column(EVIDENCE)?);
        let formatters = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| error.to_string())?;
        for row in 0..batch.num_rows() {
            let (Some(first_seen), Some(last_seen)) = (
                timestamp_nanos(first.as_ref(), row),
                timestamp_nanos(last.as_ref(), row),
            ) else {
                return Err("a row with no first_seen or last_seen".into());
            };
            let mut ids: Vec<String> = evidence_ids(evidence.as_ref(), row);
            ids.sort();
            ids.dedup();
            if ids.is_empty() {
                return Err("a row with an empty evidence list".into());
            }
            let evidence: Vec<EvidenceRef> = ids
                .into_iter()
                .map(|event_id| EvidenceRef {
                    event_id,
                    time: None,
                    kind: None,
                    host_id: None,
                })
                .collect();
            let mut entity_values = BTreeMap::new();
            let mut fields = serde_json::Map::new();
            for (index, field) in schema.fields().iter().enumerate() {
                let name = field.name();
                if [FIRST_SEEN, LAST_SEEN, EVIDENCE].contains(&name.as_str()) {
                    continue;
                }
                let value = json_of(batch.column(index).as_ref(), row, &formatters[index]);
                if entity.contains(name) {
                    let text = match value {
                        serde_json::Value::Null => None,
                        serde_json::Value::String(text) => Some(text),
                        other => Some(other.to_string()),
                    };
                    entity_values.insert(name.clone(), text);
                } else {
                    fields.insert(name.clone(), value);
                }
            }
            out.push(Match {
                rule_id: rule_id.to_string(),
                entity: entity_values,
                first_seen,
                last_seen,
                evidence,
                fields,
                detected_after: None,
            });
        }
    }
    Ok(out)
}

fn evidence_ids(column: &dyn Array, row: usize) -> Vec<String> {
    let list = match column.data_type() {
        DataType::List(_) => column.as_list::<i32>().value(row),
        DataType::LargeList(_) => column.as_list::<i64>().value(row),
        _ => return Vec::new(),
    };
    let values = match arrow::compute::cast(&list, &DataType::Utf8) {
        Ok(values) => values,
        Err(_) => return Vec::new(),
    };
    let values = values.as_string::<i32>();
    values.iter().flatten().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, StringArray, TimestampNanosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    fn kept(ids: &[&str], times: &[i64], new: &[bool]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(col::EVENT_ID, DataType::Utf8, true),
            Field::new(col::TIME, DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            Field::new(col::EVENT_NAME, DataType::Utf8, true),
            Field::new(IS_NEW, DataType::Boolean, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(ids.to_vec())),
                Arc::new(TimestampNanosecondArray::from(times.to_vec())),
                Arc::new(StringArray::from(vec!["policy.decision"; ids.len()])),
                Arc::new(BooleanArray::from(new.to_vec())),
            ],
        )
        .unwrap()
    }

    fn found(ids: &[&str]) -> Match {
        Match {
            rule_id: "r".into(),
            entity: BTreeMap::new(),
            first_seen: 0,
            last_seen: 0,
            evidence: ids
                .iter()
                .map(|id| EvidenceRef {
                    event_id: id.to_string(),
                    time: None,
                    kind: None,
                    host_id: None,
                })
                .collect(),
            fields: serde_json::Map::new(),
            detected_after: None,
        }
    }

    #[test]
    fn keeps_matches_with_new_evidence_and_fills_it_in() {
        let rows = vec![kept(&["old-1", "old-2", "new-1"], &[30, 10, 20], &[false, false, true])];
        let resolved = resolve_evidence(vec![found(&["old-1", "old-2"]), found(&["old-1", "new-1"])], &rows);
        assert_eq!(resolved.len(), 1, "the match of old rows alone was raised before");
        let evidence = &resolved[0].evidence;
        assert_eq!(
            evidence
                .iter()
                .map(|e| (e.event_id.as_str(), e.time))
                .collect::<Vec<_>>(),
            vec![("new-1", Some(20)), ("old-1", Some(30))],
            "sorted by time, times filled in"
        );
        assert_eq!(evidence[0].kind.as_deref(), Some("policy.decision"));
    }
}
