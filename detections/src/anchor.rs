//! A rule's anchor, `anchor = { step = ["isolated"] }` in rule.toml: the rule's word
//! that every match holds at least one kept row whose column (here `step`) is one of
//! the values. A partition keeping no such row cannot match, so match.sql does not run
//! over it: its new rows are still kept, settled and swept, only not gathered and
//! matched. For rules whose matches hang on a rare event (an isolation, a proof-of-
//! possession failure, an egress to an unapproved destination) most partitions an
//! evaluation touches may keep none, and gathering and matching them found nothing.
//!
//! A partition counts its anchor rows as they are kept, evicted, trimmed or rewritten,
//! so it is matched exactly while match.sql would see one (an anchor row a burst's newer
//! events have already put behind the watermark still meets that burst's new rows, as
//! every kept row does). `cordon rules test` checks the word: each fixture runs with the
//! anchor and without it, and a difference fails the rule.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::error::RuleError;

/// One column of input.sql's output and the values that make a row an anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Anchor(BTreeMap<String, Vec<String>>);

impl Anchor {
    pub fn new(column: &str, values: &[&str]) -> Anchor {
        Anchor(BTreeMap::from([(
            column.to_string(),
            values.iter().map(|value| value.to_string()).collect(),
        )]))
    }

    /// The column (checked to be exactly one).
    pub fn column(&self) -> &str {
        self.0.keys().next().map_or("", String::as_str)
    }

    pub fn values(&self) -> &[String] {
        self.0.values().next().map_or(&[], Vec::as_slice)
    }

    pub(crate) fn check(&self, path: &Path) -> Result<(), RuleError> {
        if self.0.len() != 1 {
            return Err(RuleError::in_file(
                path,
                "anchor names one column of input.sql's output and its values, e.g. anchor = { step = [\"isolated\"] }",
            ));
        }
        if self.values().is_empty() {
            return Err(RuleError::in_file(
                path,
                format!(
                    "anchor `{}` lists no values: no partition could match; list the values a match always holds",
                    self.column()
                ),
            ));
        }
        Ok(())
    }
}

/// Finds the anchor rows of kept batches.
#[derive(Debug, Clone)]
pub(crate) struct AnchorRows {
    anchor: Anchor,
    column: usize,
    values: HashSet<String>,
}

impl AnchorRows {
    /// For rows of `schema` (input.sql's output as kept).
    pub fn new(anchor: &Anchor, schema: &Schema) -> Result<AnchorRows, ArrowError> {
        let column = schema.index_of(anchor.column())?;
        if !arrow::compute::can_cast_types(schema.field(column).data_type(), &DataType::Utf8) {
            return Err(ArrowError::InvalidArgumentError(format!(
                "anchor column `{}` is {}, which cannot be compared as text",
                anchor.column(),
                schema.field(column).data_type()
            )));
        }
        Ok(AnchorRows {
            anchor: anchor.clone(),
            column,
            values: anchor.values().iter().cloned().collect(),
        })
    }

    pub fn anchor(&self) -> &Anchor {
        &self.anchor
    }

    /// Which rows of `batch` are anchors.
    pub fn mask(&self, batch: &RecordBatch) -> Result<Vec<bool>, ArrowError> {
        let text = cast(batch.column(self.column), &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        Ok((0..text.len())
            .map(|row| text.is_valid(row) && self.values.contains(text.value(row)))
            .collect())
    }

    /// How many rows of `batch` are anchors.
    pub fn count(&self, batch: &RecordBatch) -> Result<usize, ArrowError> {
        Ok(self.mask(batch)?.into_iter().filter(|anchor| *anchor).count())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::Field;

    use super::*;

    fn batch(steps: &[Option<&str>]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("step", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(steps.to_vec())),
                Arc::new(Int64Array::from(vec![0; steps.len()])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn rows_holding_one_of_the_values_are_anchors() {
        let rows = batch(&[Some("flow"), Some("isolated"), None, Some("isolated"), Some("released")]);
        let anchor = AnchorRows::new(&Anchor::new("step", &["isolated", "pinned"]), &rows.schema()).unwrap();
        assert_eq!(anchor.mask(&rows).unwrap(), [false, true, false, true, false]);
        assert_eq!(anchor.count(&rows).unwrap(), 2);
        assert_eq!(anchor.count(&batch(&[Some("flow"), None])).unwrap(), 0);
    }

    #[test]
    fn an_anchor_names_one_existing_column_and_some_values() {
        let schema = batch(&[]).schema();
        let error = AnchorRows::new(&Anchor::new("stage", &["x"]), &schema).unwrap_err();
        assert!(error.to_string().contains("stage"), "{error}");
        let path = Path::new("rule.toml");
        assert!(Anchor::new("step", &["isolated"]).check(path).is_ok());
        let error = Anchor::new("step", &[]).check(path).unwrap_err().to_string();
        assert!(error.contains("lists no values"), "{error}");
        let two: Anchor = toml::from_str::<BTreeMap<String, Anchor>>("a = { step = [\"x\"], kind = [\"y\"] }")
            .unwrap()
            .remove("a")
            .unwrap();
        assert!(two.check(path).unwrap_err().to_string().contains("one column"));
    }
}
