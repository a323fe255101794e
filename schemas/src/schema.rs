//! The one Arrow schema every event kind is stored in.

use std::sync::{Arc, OnceLock};

use arrow::array::{Array, MapBuilder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

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
pub const FIRST_ATTR_COLUMN: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_columns_follow_the_fixed_ones() {
        let schema = event_schema();
        assert_eq!(schema.field(FIRST_ATTR_COLUMN).name(), ATTR_FIELDS[0].column);
        assert_eq!(schema.fields().len(), FIRST_ATTR_COLUMN + ATTR_FIELDS.len() + 1);
        assert_eq!(schema.field(schema.fields().len() - 1).name(), col::ATTRIBUTES);
    }
}
