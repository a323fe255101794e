//! The one Arrow schema every event kind is stored in.

use std::sync::{Arc, OnceLock};

use arrow::array::{Array, MapBuilder, StringBuilder, new_null_array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::fields::{ATTR_FIELDS, FieldType, col};

/// Timestamps are nanoseconds in UTC, as OTLP carries them.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The data type of the `attributes` map column (string keys, string values).
pub fn attributes_type() -> DataType {
    // Taken from the builder so schema and builder can never disagree.
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
        .finish()
        .data_type()
        .clone()
}

/// The event table's schema: fixed columns, one typed column per contract attribute,
/// and a map of the attributes the contract does not name.
pub fn event_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields = vec![
                Field::new(col::TIME, timestamp_type(), false),
                Field::new(col::OBSERVED_TIME, timestamp_type(), true),
                Field::new(col::RECEIVED_TIME, timestamp_type(), false),
                Field::new(col::TIME_ESTIMATED, DataType::Boolean, false),
                Field::new(col::HOST_ID, DataType::Utf8, false),
                Field::new(col::HOST_NAME, DataType::Utf8, true),
                Field::new(col::SERVICE_NAME, DataType::Utf8, true),
                Field::new(col::EVENT_NAME, DataType::Utf8, false),
                Field::new(col::EVENT_ID, DataType::Utf8, false),
                Field::new(col::SIGNATURE_STATUS, DataType::Utf8, false),
                // Nullable: files and logs written before provenance was kept lack them.
                Field::new(col::TRANSPORT, DataType::Utf8, true),
                Field::new(col::PRODUCER, DataType::Utf8, true),
                Field::new(col::TLS, DataType::Boolean, true),
            ];
            fields.extend(ATTR_FIELDS.iter().map(|field| {
                let data_type = match field.ty {
                    FieldType::Str => DataType::Utf8,
                    FieldType::Int => DataType::Int64,
                };
                Field::new(field.column, data_type, true)
            }));
            fields.push(Field::new(col::ATTRIBUTES, attributes_type(), false));
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// Index of the first typed attribute column.
pub const FIRST_ATTR_COLUMN: usize = 13;

/// `batch` in the current event schema: a batch written by an older Cordon (the WAL, a
/// Parquet file) lacks the columns added since; they are null in it. Columns are
/// matched by name, so an old batch's order does not matter.
pub fn conform(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = event_schema();
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => Ok(column.clone()),
            None if field.is_nullable() => Ok(new_null_array(field.data_type(), batch.num_rows())),
            None => Err(ArrowError::SchemaError(format!(
                "a stored batch lacks the column {} that every event has",
                field.name()
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        schema,
        columns,
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_without_the_newer_columns_is_conformed_with_nulls() {
        let mut builder = crate::EventBatchBuilder::with_capacity(1);
        let mut record = crate::EventRecord::new();
        record.set("host.id".into(), crate::AttrValue::Str("wks-1".into()));
        record.set("event.name".into(), crate::AttrValue::Str("network.flow".into()));
        builder.append(&record, 1).unwrap();
        let current = builder.finish();
        let old_fields: Vec<usize> = (0..current.num_columns())
            .filter(|&index| {
                ![col::TRANSPORT, col::PRODUCER, col::TLS].contains(&current.schema().field(index).name().as_str())
            })
            .collect();
        let old = current.project(&old_fields).unwrap();
        let conformed = conform(old).unwrap();
        assert_eq!(conformed.schema(), event_schema());
        assert!(conformed.column_by_name(col::PRODUCER).unwrap().is_null(0));
        assert_eq!(conform(current.clone()).unwrap(), current);
    }

    #[test]
    fn typed_columns_follow_the_fixed_ones() {
        let schema = event_schema();
        assert_eq!(schema.field(FIRST_ATTR_COLUMN).name(), ATTR_FIELDS[0].column);
        assert_eq!(schema.fields().len(), FIRST_ATTR_COLUMN + ATTR_FIELDS.len() + 1);
        assert_eq!(schema.field(schema.fields().len() - 1).name(), col::ATTRIBUTES);
    }
}
