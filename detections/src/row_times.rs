//! A timestamp column's values as nanoseconds, read once per batch. The kept rows'
//! bookkeeping (expiry, due, newest) reads every row of the partitions an evaluation
//! touches; asking the column's type again for each row cost more than the reading.

use arrow::array::{Array, ArrowPrimitiveType, AsArray};
use arrow::datatypes::{
    DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};

/// Each row's time in nanoseconds (any unit); None for a null row or a column that
/// is not a timestamp.
pub(crate) fn nanos_of(column: &dyn Array) -> Vec<Option<i64>> {
    match column.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => scaled::<TimestampNanosecondType>(column, 1),
        DataType::Timestamp(TimeUnit::Microsecond, _) => scaled::<TimestampMicrosecondType>(column, 1_000),
        DataType::Timestamp(TimeUnit::Millisecond, _) => scaled::<TimestampMillisecondType>(column, 1_000_000),
        DataType::Timestamp(TimeUnit::Second, _) => scaled::<TimestampSecondType>(column, 1_000_000_000),
        _ => vec![None; column.len()],
    }
}

fn scaled<T: ArrowPrimitiveType<Native = i64>>(column: &dyn Array, factor: i64) -> Vec<Option<i64>> {
    column
        .as_primitive::<T>()
        .iter()
        .map(|value| value.map(|value| value.saturating_mul(factor)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, TimestampMillisecondArray, TimestampNanosecondArray};

    #[test]
    fn every_unit_reads_as_nanoseconds_and_nulls_stay_null() {
        let millis = TimestampMillisecondArray::from(vec![Some(2), None, Some(i64::MAX)]);
        assert_eq!(nanos_of(&millis), vec![Some(2_000_000), None, Some(i64::MAX)]);
        let nanos = TimestampNanosecondArray::from(vec![Some(7)]);
        assert_eq!(nanos_of(&nanos), vec![Some(7)]);
        assert_eq!(nanos_of(&Int64Array::from(vec![1, 2])), vec![None, None]);
    }
}
