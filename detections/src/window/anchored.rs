//! Which partitions match.sql runs over, for a rule with an anchor (`anchor.rs`): those
//! keeping an anchor row. Each partition counts its anchor rows as rows come and go.

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::KeptRows;
use crate::anchor::{Anchor, AnchorRows};

impl KeptRows {
    /// Sets the rule's anchor (None: every evaluated partition is matched). When it
    /// changes (a rule reloaded with another), each kept partition's anchor rows are
    /// counted again, so the rows stay and no partition is left unmatched.
    pub fn set_anchor(&mut self, anchor: Option<&Anchor>) -> Result<(), ArrowError> {
        if self.anchor.as_ref().map(AnchorRows::anchor) == anchor {
            return Ok(());
        }
        self.anchor = anchor.map(|anchor| AnchorRows::new(anchor, &self.schema)).transpose()?;
        for partition in self.partitions.values_mut() {
            let mut count = 0;
            if let Some(rows) = &self.anchor {
                for batch in partition.batches(self.cold.as_ref())?.iter() {
                    count += rows.count(batch)?;
                }
            }
            partition.anchor_rows = count;
        }
        Ok(())
    }

    pub fn has_anchor(&self) -> bool {
        self.anchor.is_some()
    }

    /// Whether match.sql is to run over `key`'s partition: always without an anchor;
    /// with one, while it keeps an anchor row.
    pub fn armed(&self, key: &str) -> bool {
        self.anchor.is_none()
            || self
                .partitions
                .get(key)
                .is_some_and(|partition| partition.anchor_rows > 0)
    }

    /// How many rows of `batch` are anchors (0 without an anchor).
    pub(super) fn anchor_rows(&self, batch: &RecordBatch) -> Result<usize, ArrowError> {
        match &self.anchor {
            Some(anchor) => anchor.count(batch),
            None => Ok(0),
        }
    }
}

#[cfg(test)]
#[path = "anchored_tests.rs"]
mod tests;
