//! The rows of a batch grouped by partition key: the order that makes each key's rows
//! one run, and the runs. Kept rows are inserted as runs of one reordered batch (one
//! copy for all keys, then a zero-copy slice per key) rather than a `take` per key: a
//! copy of every column for each of hundreds of keys a burst was most of what
//! inserting cost (allocation and `memmove` in the profile).

use std::ops::Range;

use arrow::record_batch::RecordBatch;

use crate::key_ids::KeyIds;
use crate::window::PartitionKey;

pub(crate) struct KeyGroups {
    /// Row numbers, each key's rows together, in their order within the batch.
    pub order: Vec<u32>,
    /// Each key and its run in `order`, keys in order of their first row.
    pub runs: Vec<(PartitionKey, Range<usize>)>,
}

impl KeyGroups {
    /// Whether the rows are already in key order (one key, or runs as they came).
    pub fn in_order(&self) -> bool {
        self.order.iter().enumerate().all(|(at, &row)| at == row as usize)
    }
}

/// Groups the rows of `batch` by the text key of `columns` (as `row_keys` shows it).
/// None when a column is missing or cannot be shown as text.
pub(crate) fn group_rows(batch: &RecordBatch, columns: &[String]) -> Option<KeyGroups> {
    let KeyIds { keys, of_row } = KeyIds::of(batch, columns)?;
    // A counting sort by key, stable within each.
    let mut starts = vec![0usize; keys.len() + 1];
    for &group in &of_row {
        starts[group as usize + 1] += 1;
    }
    for group in 0..keys.len() {
        starts[group + 1] += starts[group];
    }
    let mut next = starts.clone();
    let mut order = vec![0u32; of_row.len()];
    for (row, &group) in of_row.iter().enumerate() {
        order[next[group as usize]] = row as u32;
        next[group as usize] += 1;
    }
    let runs = keys
        .into_iter()
        .enumerate()
        .map(|(group, key)| (key, starts[group]..starts[group + 1]))
        .collect();
    Some(KeyGroups { order, runs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{NULL_KEY, row_keys};
    use crate::key_ids::tests::batch;

    fn runs_of(groups: &KeyGroups) -> Vec<(String, Vec<u32>)> {
        groups
            .runs
            .iter()
            .map(|(key, run)| (key.clone(), groups.order[run.clone()].to_vec()))
            .collect()
    }

    #[test]
    fn each_keys_rows_form_one_run_in_their_order() {
        let rows = batch(vec![Some("b"), Some("a"), None, Some("b"), Some("a"), Some("b")]);
        let groups = group_rows(&rows, &["host_id".to_string()]).unwrap();
        assert_eq!(
            runs_of(&groups),
            vec![
                ("b".to_string(), vec![0, 3, 5]),
                ("a".to_string(), vec![1, 4]),
                (NULL_KEY.to_string(), vec![2]),
            ]
        );
        assert!(!groups.in_order());
    }

    #[test]
    fn keys_of_several_columns_group_as_row_keys_shows_them() {
        let rows = batch(vec![Some("a"), Some("a"), Some("b")]);
        let columns = ["host_id".to_string(), "n".to_string()];
        let groups = group_rows(&rows, &columns).unwrap();
        let expected: Vec<(String, Vec<u32>)> = row_keys(&rows, &columns)
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(row, key)| (key, vec![row as u32]))
            .collect();
        assert_eq!(runs_of(&groups), expected);
        assert!(groups.in_order());
        assert!(group_rows(&rows, &["missing".to_string()]).is_none());
    }
}
