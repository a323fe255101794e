//! Rules test values against reference tables of patterns the way SQL reads best:
//! `EXISTS (SELECT 1 FROM sensitive_paths p WHERE path_match(e.file_path, p.pattern))`.
//! Planned as written, that is a nested-loop join: every row against every pattern,
//! each pair a function call (profiled: the largest single cost of the built-in rules'
//! backtest). This optimizer rule finds those joins, once the subquery is decorrelated
//! into a semi, anti or mark join, and puts in their place one call per row of a
//! matcher compiled once from the table's patterns (`pattern_set.rs`): the same answer,
//! each text searched once. Any other shape of join (equality keys, more conditions,
//! a filtered or computed table) is left as planned.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, Filter, JoinType, LogicalPlan, Projection, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use parking_lot::Mutex;

use crate::pattern_set::{PatternKind, PatternSet};
use crate::reference::ReferenceTable;

/// The optimizer rule, holding the reference tables a rule's session registers.
#[derive(Debug)]
pub struct ReferenceMatch {
    tables: BTreeMap<String, Vec<Option<String>>>,
    /// Sets compiled so far, by table, column and kind (the optimizer runs in passes).
    compiled: Mutex<HashMap<(String, String, PatternKind), Arc<PatternSet>>>,
}

impl ReferenceMatch {
    pub fn new(reference: &BTreeMap<String, ReferenceTable>) -> ReferenceMatch {
        // Each table's text columns, as "table.column".
        let mut tables = BTreeMap::new();
        for table in reference.values() {
            for (index, field) in table.schema.fields().iter().enumerate() {
                if field.data_type() != &DataType::Utf8 {
                    continue;
                }
                let values = table
                    .batches
                    .iter()
                    .flat_map(|batch| {
                        let column = batch.column(index).as_string::<i32>();
                        (0..column.len())
                            .map(|row| column.is_valid(row).then(|| column.value(row).to_string()))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                tables.insert(format!("{}.{}", table.name, field.name()), values);
            }
        }
        ReferenceMatch {
            tables,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    fn set(&self, table: &str, column: &str, kind: PatternKind) -> Option<Arc<PatternSet>> {
        let patterns = self.tables.get(&format!("{table}.{column}"))?;
        let key = (table.to_string(), column.to_string(), kind);
        let mut compiled = self.compiled.lock();
        let set = compiled
            .entry(key)
            .or_insert_with(|| Arc::new(PatternSet::new(kind, patterns.iter().flatten().map(String::as_str))));
        Some(set.clone())
    }
}

/// The reference table a join's right side reads whole: a scan with no filter and no
/// limit, under aliases and projections of plain columns only.
fn whole_table(plan: &LogicalPlan) -> Option<String> {
    match plan {
        LogicalPlan::SubqueryAlias(alias) => whole_table(&alias.input),
        LogicalPlan::Projection(projection) if projection.expr.iter().all(|expr| matches!(expr, Expr::Column(_))) => {
            whole_table(&projection.input)
        }
        LogicalPlan::TableScan(scan) if scan.filters.is_empty() && scan.fetch.is_none() => {
            Some(scan.table_name.table().to_string())
        }
        _ => None,
    }
}

fn references_only(expr: &Expr, schema: &DFSchema) -> bool {
    expr.column_refs().iter().all(|column| schema.has_column(column))
}

impl OptimizerRule for ReferenceMatch {
    fn name(&self) -> &str {
        "cordon_reference_match"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(join) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let joins_by_pattern = matches!(
            join.join_type,
            JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark
        ) && join.on.is_empty()
            && !join.null_aware;
        let (Some(Expr::ScalarFunction(call)), true) = (&join.filter, joins_by_pattern) else {
            return Ok(Transformed::no(plan));
        };
        // Names are safe to go by: a rule's session registers these functions itself
        // and rules cannot register their own.
        let (Some(kind), [text, Expr::Column(pattern)]) = (PatternKind::of_function(call.func.name()), &call.args[..])
        else {
            return Ok(Transformed::no(plan));
        };
        let Some(table) = whole_table(&join.right) else {
            return Ok(Transformed::no(plan));
        };
        let sides_apart = references_only(text, join.left.schema())
            && join.right.schema().has_column(pattern)
            && !join.left.schema().has_column(pattern);
        let set = match sides_apart {
            true => self.set(&table, &pattern.name, kind),
            false => None,
        };
        let Some(set) = set else {
            return Ok(Transformed::no(plan));
        };
        let function = ScalarUDF::new_from_impl(MatchesAny {
            name: format!("{}_any({table}.{})", call.func.name(), pattern.name),
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
            set,
        });
        let hit = Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::new(function),
            vec![text.clone().cast_to(&DataType::Utf8, join.left.schema())?],
        ));
        let left = join.left.clone();
        let rewritten = match join.join_type {
            JoinType::LeftSemi => LogicalPlan::Filter(Filter::try_new(hit, left)?),
            JoinType::LeftAnti => LogicalPlan::Filter(Filter::try_new(Expr::Not(Box::new(hit)), left)?),
            _ => {
                // The mark column keeps its name and qualifier: the filter above reads it.
                let (qualifier, mark) = join.schema.qualified_field(join.schema.fields().len() - 1);
                let mut columns: Vec<Expr> = left.schema().columns().into_iter().map(Expr::Column).collect();
                columns.push(hit.alias_qualified(qualifier.cloned(), mark.name()));
                LogicalPlan::Projection(Projection::try_new(columns, left)?)
            }
        };
        Ok(Transformed::yes(rewritten))
    }
}

/// `EXISTS` over one table's patterns for one text: true when any pattern matches;
/// false for a missing text (no pattern matches nothing).
#[derive(Debug)]
struct MatchesAny {
    name: String,
    signature: Signature,
    set: Arc<PatternSet>,
}

impl PartialEq for MatchesAny {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.set, &other.set)
    }
}

impl Eq for MatchesAny {}

impl Hash for MatchesAny {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for MatchesAny {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let texts: ArrayRef = match &args.args[0] {
            ColumnarValue::Array(array) => array.clone(),
            ColumnarValue::Scalar(scalar) => scalar.to_array_of_size(1)?,
        };
        let texts = texts.as_string::<i32>();
        let (mut scratch, mut tried) = (Vec::new(), Vec::new());
        let answers: BooleanArray = (0..texts.len())
            .map(|row| Some(texts.is_valid(row) && self.set.matches(texts.value(row), &mut scratch, &mut tried)))
            .collect();
        Ok(match &args.args[0] {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(datafusion::scalar::ScalarValue::Boolean(Some(answers.value(0))))
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(answers)),
        })
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::StringArray;
    use arrow::datatypes::{Field, Schema};
    use arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::SessionContext;

    use super::*;

    fn table(name: &str, column: &str, values: &[Option<&str>]) -> (Arc<Schema>, RecordBatch, String) {
        let schema = Arc::new(Schema::new(vec![Field::new(column, DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(values.to_vec()))]).unwrap();
        (schema, batch, name.to_string())
    }

    async fn context(rewrite: bool) -> SessionContext {
        let (schema, batch, name) = table(
            "paths",
            "pattern",
            &[Some("**/.ssh/**"), Some("**/*.pem"), None, Some("/etc/shadow")],
        );
        let reference = BTreeMap::from([(
            name.clone(),
            ReferenceTable {
                name: name.clone(),
                batches: vec![batch.clone()],
                schema: schema.clone(),
            },
        )]);
        let mut builder = SessionStateBuilder::new().with_default_features();
        if rewrite {
            builder = builder.with_optimizer_rule(Arc::new(ReferenceMatch::new(&reference)));
        }
        let context = SessionContext::new_with_state(builder.build());
        crate::udf::register(&context);
        context
            .register_table("paths", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()))
            .unwrap();
        let (schema, batch, _) = table(
            "e",
            "path",
            &[
                Some("/home/a/.ssh/id_rsa"),
                Some("C:\\keys\\server.PEM"),
                None,
                Some("/etc/shadow"),
                Some("/home/a/notes.txt"),
                Some("x"),
            ],
        );
        context
            .register_table("e", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()))
            .unwrap();
        context
    }

    async fn run(rewrite: bool, sql: &str) -> (Vec<String>, String) {
        let context = context(rewrite).await;
        let frame = context.sql(sql).await.unwrap();
        let plan = format!("{}", frame.clone().into_optimized_plan().unwrap().display_indent());
        let batches = frame.collect().await.unwrap();
        let rows = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        (rows.lines().map(str::to_string).collect(), plan)
    }

    #[tokio::test]
    async fn exists_over_patterns_becomes_one_matcher_with_the_same_rows() {
        let exists = "EXISTS (SELECT 1 FROM paths p WHERE path_match(e.path, p.pattern))";
        for condition in [
            exists.to_string(),
            format!("NOT {exists}"),
            format!("e.path = 'x' OR {exists}"),
            format!("e.path = 'x' OR NOT {exists}"),
        ] {
            let sql = format!("SELECT path FROM e WHERE {condition} ORDER BY path");
            let (joined, _) = run(false, &sql).await;
            let (matched, plan) = run(true, &sql).await;
            assert_eq!(matched, joined, "{condition}");
            assert!(plan.contains("path_match_any(paths.pattern)"), "{condition}: {plan}");
            assert!(!plan.contains("Join"), "{condition}: {plan}");
        }
    }

    #[tokio::test]
    async fn other_shapes_keep_their_join() {
        // A filtered table is not the whole table: left as planned.
        let sql = "SELECT path FROM e WHERE EXISTS (SELECT 1 FROM paths p WHERE p.pattern <> '**/*.pem' \
                   AND path_match(e.path, p.pattern)) ORDER BY path";
        let (joined, _) = run(false, sql).await;
        let (kept, plan) = run(true, sql).await;
        assert_eq!(kept, joined);
        assert!(!plan.contains("_any("), "{plan}");
    }
}
