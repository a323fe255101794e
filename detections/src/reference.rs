//! Reference tables: CSV files under `detections/reference/` that detection engineers
//! keep (approved destinations, sensitive paths, tools allowed per agent). Each file
//! is a table named after it, every column text; `#` starts a comment line.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::error::RuleError;

/// One reference table, loaded.
#[derive(Debug, Clone)]
pub struct ReferenceTable {
    pub name: String,
    pub batches: Vec<RecordBatch>,
    pub schema: Arc<Schema>,
}

/// Every `*.csv` in `dir`, by table name.
pub fn load_dir(dir: &Path) -> Result<BTreeMap<String, ReferenceTable>, RuleError> {
    let mut tables = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(tables),
        Err(error) => return Err(RuleError::io(dir, error)),
    };
    let mut paths: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "csv"))
        .collect();
    paths.sort();
    for path in paths {
        let table = load_file(&path)?;
        tables.insert(table.name.clone(), table);
    }
    Ok(tables)
}

pub fn load_file(path: &Path) -> Result<ReferenceTable, RuleError> {
    let name = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .filter(|stem| stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .ok_or_else(|| {
            RuleError::in_file(
                path,
                "a reference table's file name is its table name: use letters, digits and _",
            )
        })?
        .to_string();
    let text = std::fs::read_to_string(path).map_err(|error| RuleError::io(path, error))?;
    let data: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    let header = data
        .lines()
        .next()
        .ok_or_else(|| RuleError::in_file(path, "empty: the first line must name the columns"))?;
    let fields: Vec<Field> = header
        .split(',')
        .map(|column| Field::new(column.trim(), DataType::Utf8, true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_header(true)
        .build(Cursor::new(data.into_bytes()))
        .map_err(|error| RuleError::in_file(path, error.to_string()))?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| RuleError::in_file(path, error.to_string()))?;
    let batches = batches
        .iter()
        .map(trim_values)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| RuleError::in_file(path, error.to_string()))?;
    Ok(ReferenceTable { name, batches, schema })
}

/// Values as written, without the blanks around them.
fn trim_values(batch: &RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
    use arrow::array::{ArrayRef, AsArray, StringArray};
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|column| {
            let trimmed: StringArray = column
                .as_string::<i32>()
                .iter()
                .map(|value| value.map(str::trim).filter(|value| !value.is_empty()))
                .collect();
            Arc::new(trimmed) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;

    #[test]
    fn reads_csv_with_comments() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("approved_destinations.csv"),
            "# approved\npattern, note\n*.sharepoint.com, files\n\ngithub.com,\n",
        )
        .unwrap();
        let tables = load_dir(dir.path()).unwrap();
        let table = &tables["approved_destinations"];
        assert_eq!(table.schema.field(0).name(), "pattern");
        let batch = &table.batches[0];
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(0).as_string::<i32>().value(0), "*.sharepoint.com");
        assert!(batch.column(1).is_null(1));
    }
}
