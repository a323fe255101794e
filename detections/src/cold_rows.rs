//! A silent key's kept rows, packed. A host that fell silent keeps its rows until it
//! comes back or the maximum event age passes (a laptop may return with buffered
//! events), and a partition of a few rows held as Arrow arrays costs a buffer and an
//! array per column: about 12 KB a silent host with the built-in rules. Packed in
//! Arrow's row format, the same rows are one byte buffer, unpacked only when the key
//! is heard from again or its rows expire.

use arrow::array::ArrayRef;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};

pub(crate) struct ColdRows {
    schema: SchemaRef,
    converter: RowConverter,
}

impl ColdRows {
    /// None when a column has a type the row format cannot hold: such a rule's
    /// partitions stay as arrays.
    pub fn new(schema: &SchemaRef) -> Option<ColdRows> {
        let fields: Vec<SortField> = schema
            .fields()
            .iter()
            .map(|field| SortField::new(field.data_type().clone()))
            .collect();
        if !RowConverter::supports_fields(&fields) {
            return None;
        }
        Some(ColdRows {
            schema: schema.clone(),
            converter: RowConverter::new(fields).ok()?,
        })
    }

    /// The rows of `batches` (of this schema) as one buffer, sized to fit.
    pub fn pack(&self, batches: &[RecordBatch]) -> Result<Rows, ArrowError> {
        let columns: Vec<ArrayRef> = match batches {
            [one] => one.columns().to_vec(),
            _ => concat_batches(&self.schema, batches)?.columns().to_vec(),
        };
        self.converter.convert_columns(&columns)
    }

    /// `rows` (from `pack`) as one batch again.
    pub fn unpack(&self, rows: &Rows) -> Result<RecordBatch, ArrowError> {
        let columns = self.converter.convert_rows(rows)?;
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, ListArray, StringArray, TimestampNanosecondArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit};

    use super::*;

    #[test]
    fn packed_rows_unpack_to_the_same_batch() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("host_id", DataType::Utf8, true),
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            Field::new("bytes", DataType::Int64, true),
            Field::new("seen", DataType::new_list(DataType::Int64, true), true),
        ]));
        let batch = |hosts: Vec<Option<&str>>, first: i64| {
            let rows = hosts.len() as i64;
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(hosts)),
                    Arc::new(
                        TimestampNanosecondArray::from((first..first + rows).collect::<Vec<_>>()).with_timezone("UTC"),
                    ),
                    Arc::new(Int64Array::from(
                        (0..rows).map(|n| (n % 2 == 0).then_some(n)).collect::<Vec<_>>(),
                    )),
                    Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
                        (0..rows).map(|n| (n != 1).then(|| vec![Some(n), None])),
                    )),
                ],
            )
            .unwrap()
        };
        let parts = [batch(vec![Some("a"), None], 10), batch(vec![Some("bé")], 20)];
        let cold = ColdRows::new(&schema).expect("these types have a row form");
        let packed = cold.pack(&parts).unwrap();
        assert_eq!(packed.num_rows(), 3);
        let unpacked = cold.unpack(&packed).unwrap();
        assert_eq!(unpacked, concat_batches(&schema, &parts).unwrap());
    }
}
