//! A timestamp column's values as nanoseconds, read once per batch. The kept rows'
//! bookkeeping (expiry, due, newest) reads every row of the partitions an evaluation
//! touches; asking the column's type again for each row cost more than the reading.

use arrow::array::{Array, AsArray};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{
    DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};

/// Each row's time in nanoseconds (any unit); None for a null row or a column that
/// is not a timestamp.
pub(crate) fn nanos_of(column: &dyn Array) -> Vec<Option<i64>> {
    let Some((values, factor)) = raw_values(column) else {
        return vec![None; column.len()];
    };
    let nulls = column.logical_nulls();
    values
        .iter()
        .enumerate()
        .map(|(row, value)| {
            let valid = nulls.as_ref().is_none_or(|nulls| nulls.is_valid(row));
            valid.then(|| value.saturating_mul(factor))
        })
        .collect()
}

/// Nanoseconds of a timestamp column (any unit) at `row`; None when null or not a
/// timestamp.
pub fn timestamp_nanos(column: &dyn Array, row: usize) -> Option<i64> {
    if column.is_null(row) {
        return None;
    }
    let (values, factor) = raw_values(column)?;
    Some(values[row].saturating_mul(factor))
}

/// A timestamp column's values in its own unit, and the nanoseconds in that unit.
fn raw_values(column: &dyn Array) -> Option<(&ScalarBuffer<i64>, i64)> {
    Some(match column.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => (column.as_primitive::<TimestampNanosecondType>().values(), 1),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            (column.as_primitive::<TimestampMicrosecondType>().values(), 1_000)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            (column.as_primitive::<TimestampMillisecondType>().values(), 1_000_000)
        }
        DataType::Timestamp(TimeUnit::Second, _) => {
            (column.as_primitive::<TimestampSecondType>().values(), 1_000_000_000)
        }
        _ => return None,
    })
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
        assert_eq!(timestamp_nanos(&millis, 0), Some(2_000_000));
        assert_eq!(timestamp_nanos(&millis, 1), None);
        assert_eq!(timestamp_nanos(&Int64Array::from(vec![1]), 0), None);
        let seconds = arrow::array::TimestampSecondArray::from(vec![3]).slice(0, 1);
        assert_eq!(nanos_of(&seconds), vec![Some(3_000_000_000)]);
    }
}
