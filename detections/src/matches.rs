//! What match.sql returns, as matches: the entity, when, the evidence (resolved to its
//! events' time and kind where the kept rows carry them) and the fields to show.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::{Deserialize, Serialize};

use crate::compile::{EVIDENCE, FIRST_SEEN, LAST_SEEN};
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

    /// The entity as one stable string, e.g. `host_id=wks-1 user_name=alice`.
    pub fn entity_key(&self) -> String {
        self.entity
            .iter()
            .map(|(name, value)| format!("{name}={}", value.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Event id -> (time, kind, host) of the kept rows, when they have those columns.
pub fn evidence_index(rows: &[RecordBatch]) -> HashMap<String, EvidenceRef> {
    let mut index = HashMap::new();
    for batch in rows {
        let schema = batch.schema();
        let Ok(id_column) = schema.index_of(col::EVENT_ID) else {
            continue;
        };
        let ids = batch.column(id_column);
        let Some(ids) = ids.as_string_opt::<i32>() else {
            continue;
        };
        let time = schema.index_of(col::TIME).ok().map(|index| batch.column(index));
        let text = |name: &str| {
            schema
                .index_of(name)
                .ok()
                .and_then(|index| batch.column(index).as_string_opt::<i32>().cloned())
        };
        let (kinds, hosts) = (text(col::EVENT_NAME), text(col::HOST_ID));
        for row in 0..batch.num_rows() {
            if ids.is_null(row) {
                continue;
            }
            let pick = |column: &Option<arrow::array::StringArray>| {
                column
                    .as_ref()
                    .filter(|column| column.is_valid(row))
                    .map(|column| column.value(row).to_string())
            };
            let id = ids.value(row).to_string();
            index.insert(
                id.clone(),
                EvidenceRef {
                    event_id: id,
                    time: time.and_then(|time| timestamp_nanos(time.as_ref(), row)),
                    kind: pick(&kinds),
                    host_id: pick(&hosts),
                },
            );
        }
    }
    index
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

/// The matches in match.sql's output. Rows without a time are skipped (reported by the caller).
pub fn matches_from(
    rule_id: &str,
    entity: &[String],
    output: &[RecordBatch],
    index: &HashMap<String, EvidenceRef>,
) -> Result<Vec<Match>, String> {
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
            let mut evidence: Vec<EvidenceRef> = ids
                .into_iter()
                .map(|id| {
                    index.get(&id).cloned().unwrap_or(EvidenceRef {
                        event_id: id,
                        time: None,
                        kind: None,
                        host_id: None,
                    })
                })
                .collect();
            evidence.sort_by(|a, b| (a.time, &a.event_id).cmp(&(b.time, &b.event_id)));
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
