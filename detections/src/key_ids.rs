//! The partition key of every row of a batch, as a number into the batch's distinct
//! keys: one string per key, not per row. Judging a burst looked up each row's key
//! (a `String` allocated per row, then hashed into the clocks, the touched set and the
//! health book, each with SipHash); per key, the burst's few hundred hosts cost that
//! once, its ten thousand events a hash of a borrowed string each.

use std::borrow::Cow;

use ahash::AHashMap;
use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use crate::clock::{NULL_KEY, row_keys};

/// Each row's key as an index into `keys`, the distinct keys in order of first row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyIds {
    pub keys: Vec<String>,
    pub of_row: Vec<u32>,
}

impl KeyIds {
    /// The text keys of `columns` (as `row_keys` shows them). None when a column is
    /// missing or cannot be shown as text.
    pub fn of(batch: &RecordBatch, columns: &[String]) -> Option<KeyIds> {
        let keys_of_rows: Vec<Cow<str>> = match single_text_column(batch, columns) {
            Some(column) => {
                let text = column.as_string::<i32>();
                (0..batch.num_rows())
                    .map(|row| Cow::Borrowed(if text.is_null(row) { NULL_KEY } else { text.value(row) }))
                    .collect()
            }
            None => row_keys(batch, columns)?.into_iter().map(Cow::Owned).collect(),
        };
        let mut ids: AHashMap<&str, u32> = AHashMap::new();
        let mut keys = Vec::new();
        let of_row = keys_of_rows
            .iter()
            .map(|key| {
                *ids.entry(key.as_ref()).or_insert_with(|| {
                    keys.push(key.to_string());
                    keys.len() as u32 - 1
                })
            })
            .collect();
        Some(KeyIds { keys, of_row })
    }

    /// `rows` rows that all have one key, `key`.
    pub fn one(key: &str, rows: usize) -> KeyIds {
        KeyIds {
            keys: if rows == 0 { Vec::new() } else { vec![key.to_string()] },
            of_row: vec![0; rows],
        }
    }

    pub fn rows(&self) -> usize {
        self.of_row.len()
    }

    #[cfg(test)]
    pub fn key_of(&self, row: usize) -> &str {
        &self.keys[self.of_row[row] as usize]
    }

    /// The rows where `keep` is true, with the same distinct keys (a key may then
    /// have no row).
    pub fn filtered(&self, keep: &[bool]) -> KeyIds {
        KeyIds {
            keys: self.keys.clone(),
            of_row: self
                .of_row
                .iter()
                .zip(keep)
                .filter(|(_, keep)| **keep)
                .map(|(id, _)| *id)
                .collect(),
        }
    }
}

fn single_text_column<'a>(batch: &'a RecordBatch, columns: &[String]) -> Option<&'a dyn Array> {
    let [name] = columns else {
        return None;
    };
    let column = batch.column_by_name(name)?;
    (column.data_type() == &DataType::Utf8).then_some(column.as_ref())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    /// A batch of `host_id` (as given) and `n` (the row number).
    pub(crate) fn batch(hosts: Vec<Option<&str>>) -> RecordBatch {
        let rows = hosts.len() as i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("host_id", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(hosts)),
                Arc::new(Int64Array::from((0..rows).collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn each_row_names_its_key_as_row_keys_shows_it() {
        let rows = batch(vec![Some("b"), Some("a"), None, Some("b")]);
        for columns in [
            vec!["host_id".to_string()],
            vec!["host_id".to_string(), "n".to_string()],
        ] {
            let ids = KeyIds::of(&rows, &columns).unwrap();
            let shown: Vec<&str> = (0..ids.rows()).map(|row| ids.key_of(row)).collect();
            let expected = row_keys(&rows, &columns).unwrap();
            assert_eq!(shown, expected, "{columns:?}");
        }
        let ids = KeyIds::of(&rows, &["host_id".to_string()]).unwrap();
        assert_eq!(ids.keys, ["b", "a", NULL_KEY], "distinct, in order of first row");
        assert_eq!(ids.of_row, [0, 1, 2, 0]);
        assert!(KeyIds::of(&rows, &["user_name".to_string()]).is_none());
    }

    #[test]
    fn filtering_keeps_the_keys_of_the_rows_kept() {
        let ids = KeyIds::of(&batch(vec![Some("b"), Some("a"), Some("b")]), &["host_id".to_string()]).unwrap();
        let kept = ids.filtered(&[false, true, true]);
        assert_eq!(
            (0..kept.rows()).map(|row| kept.key_of(row)).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(KeyIds::one("", 3).of_row, [0, 0, 0]);
    }
}
