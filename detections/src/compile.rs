//! Planning a rule: each stage gets a session of its own (its tables, the reference
//! tables and Cordon's functions, a memory limit), its SQL is checked to be read-only
//! and planned once, and its output is checked against what the engine needs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::TryStreamExt;

use crate::error::{EvalError, RuleError};
use crate::guard;
use crate::reference::ReferenceTable;
use crate::rule::{RuleDefinition, Stage};
use crate::slot::SlotTable;
use cordon_schemas::{EventKind, event_schema};

/// The table input.sql reads new events from, with one view per event kind over it.
pub const EVENTS_TABLE: &str = "events";
/// The table match.sql reads the kept rows of the partitions under evaluation from.
pub const KEPT_TABLE: &str = "kept";

/// Columns match.sql must return besides the entity columns.
pub const FIRST_SEEN: &str = "first_seen";
pub const LAST_SEEN: &str = "last_seen";
pub const EVIDENCE: &str = "evidence";
/// The event-time column input.sql must return (for windows and lateness).
pub const TIME: &str = "time";
/// An optional input.sql column: the event time until which a row must be kept.
/// Without it a row is kept until its time falls a window behind the watermark.
pub const KEEP_UNTIL: &str = "keep_until";
/// An optional input.sql column: the row's partition is evaluated once its watermark
/// passes this time, with `is_due` true on the row (absence: "A, then no B by then").
pub const DUE_AT: &str = "due_at";
/// The column the engine adds to `kept`: true for rows that arrived in this evaluation.
pub const IS_NEW: &str = "is_new";
/// The column the engine adds to `kept`: true in the one evaluation in which the
/// partition's watermark first passed the row's `due_at`.
pub const IS_DUE: &str = "is_due";

/// Limits every evaluation runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_bytes: usize,
    pub timeout: Duration,
}

/// One planned stage: its session, the slot it reads (refilled per evaluation) and its
/// physical plan, planned once; each run executes a fresh copy of it (`slot.rs`).
pub struct PlannedStage {
    stage: Stage,
    context: SessionContext,
    table: Arc<SlotTable>,
    physical: Arc<dyn ExecutionPlan>,
    pub output: SchemaRef,
}

impl PlannedStage {
    /// The physical plan, as `EXPLAIN` shows it.
    pub fn plan_text(&self) -> String {
        datafusion::physical_plan::displayable(self.physical.as_ref())
            .indent(false)
            .to_string()
    }

    /// The columns of its table the stage reads (None: every column).
    pub fn read_columns(&self) -> Option<Vec<usize>> {
        self.table.read_columns()
    }

    /// Runs the stage over `rows`.
    pub async fn run(&self, rule: &str, rows: Vec<RecordBatch>, limits: Limits) -> Result<Vec<RecordBatch>, EvalError> {
        let query_error = |source: DataFusionError| EvalError::Query {
            rule: rule.to_string(),
            stage: self.stage.name(),
            source,
        };
        self.table.slot.fill(rows);
        let work = async {
            let physical = reset_plan_states(self.physical.clone()).map_err(query_error)?;
            let stream = execute_stream(physical, self.context.task_ctx()).map_err(query_error)?;
            collect_within(stream, self.stage.name(), limits.memory_bytes)
                .await
                .map_err(query_error)
        };
        let result = tokio::time::timeout(limits.timeout, work).await;
        // Release the rows at once rather than holding them until the next run.
        self.table.slot.clear();
        result.map_err(|_| EvalError::Timeout {
            rule: rule.to_string(),
            stage: self.stage.name(),
            limit: limits.timeout,
        })?
    }
}

/// Gathers a stage's output, refusing it past `max_bytes`: the memory pool counts
/// what operators hold, not the rows a plan returns, so a match.sql that multiplies
/// its rows (a cross join) could return gigabytes within its limit, and the engine
/// would then make an alert of each.
async fn collect_within(
    mut stream: datafusion::execution::SendableRecordBatchStream,
    stage: &str,
    max_bytes: usize,
) -> Result<Vec<RecordBatch>, DataFusionError> {
    let mut batches = Vec::new();
    let mut bytes = 0usize;
    while let Some(batch) = stream.try_next().await? {
        bytes += batch.get_array_memory_size();
        if bytes > max_bytes {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{stage}.sql returned more than {} MiB of rows, its memory limit: \
                 narrow what it returns or raise [detections] eval_memory_mib",
                max_bytes >> 20
            )));
        }
        batches.push(batch);
    }
    Ok(batches)
}

/// A rule ready to run.
pub struct CompiledRule {
    pub definition: Arc<RuleDefinition>,
    pub input: PlannedStage,
    pub matcher: PlannedStage,
    /// Rewrites the kept rows of the evaluated partitions after the match.
    pub compact: Option<PlannedStage>,
}

fn session(limits: Limits, reference: &BTreeMap<String, ReferenceTable>) -> Result<SessionContext, DataFusionError> {
    // No spilling: a rule's memory limit is a limit, not a point past which it writes
    // events to a temporary disk and runs on, slower, for every batch.
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory_bytes, 1.0)
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
        .build_arc()?;
    let mut config = SessionConfig::new().with_target_partitions(1);
    // A plan is run many times (`slot.rs`): no filter a run derives may outlive it.
    config.options_mut().optimizer.enable_dynamic_filter_pushdown = false;
    // Spans let planning errors point at a line and column of the rule's SQL.
    config.options_mut().sql_parser.collect_spans = true;
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_optimizer_rule(Arc::new(crate::reference_match::ReferenceMatch::new(reference)))
        .build();
    let context = SessionContext::new_with_state(state);
    crate::udf::register(&context);
    crate::bounded_functions::register(&context, limits.memory_bytes / 4);
    for table in reference.values() {
        let provider = MemTable::try_new(table.schema.clone(), vec![table.batches.clone()])?;
        context.register_table(table.name.as_str(), Arc::new(provider))?;
    }
    Ok(context)
}

/// Registers `events` and the per-kind views (`network_flow`, ...) over it.
async fn register_events(context: &SessionContext) -> Result<Arc<SlotTable>, DataFusionError> {
    let table = Arc::new(SlotTable::new(event_schema()));
    context.register_table(EVENTS_TABLE, table.clone())?;
    for kind in EventKind::ALL {
        let sql = format!(
            "CREATE VIEW {} AS SELECT * FROM {EVENTS_TABLE} WHERE event_name = '{}'",
            kind.table_name(),
            kind.as_str()
        );
        context.sql(&sql).await?;
    }
    context.sql(&crate::signals::view_sql(EVENTS_TABLE)).await?;
    Ok(table)
}

async fn plan_stage(
    definition: &RuleDefinition,
    stage: Stage,
    context: SessionContext,
    table: Arc<SlotTable>,
) -> Result<PlannedStage, RuleError> {
    let sql = definition.stage(stage);
    let statement = guard::single_query(&sql.substituted.sql)
        .map_err(|refusal| sql.error_at(refusal.line, refusal.column, refusal.message))?;
    let state = context.state();
    let planning_error = |error: DataFusionError| {
        let (line, column) = guard::error_position(&error);
        sql.error_at(line, column, guard::strip_position(&error.strip_backtrace()))
    };
    let plan = state.statement_to_plan(statement).await.map_err(planning_error)?;
    guard::read_only().verify_plan(&plan).map_err(planning_error)?;
    let plan = state.optimize(&plan).map_err(planning_error)?;
    let output = Arc::new(plan.schema().as_arrow().clone());
    let physical = state
        .query_planner()
        .create_physical_plan(&plan, &state)
        .await
        .map_err(planning_error)?;
    Ok(PlannedStage {
        stage,
        context,
        table,
        physical,
        output,
    })
}

fn require_column(
    definition: &RuleDefinition,
    stage: Stage,
    schema: &SchemaRef,
    name: &str,
    fits: impl Fn(&DataType) -> bool,
    what: &str,
) -> Result<(), RuleError> {
    let sql = definition.stage(stage);
    match schema.field_with_name(name) {
        Ok(field) if fits(field.data_type()) => Ok(()),
        Ok(field) => Err(sql.error_at(
            None,
            None,
            format!("column `{name}` must be {what}, but it is {}", field.data_type()),
        )),
        Err(_) => Err(sql.error_at(
            None,
            None,
            format!(
                "the query must return a column `{name}` ({what}); it returns: {}",
                schema
                    .fields()
                    .iter()
                    .map(|field| field.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn is_timestamp(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Timestamp(_, _))
}

fn is_text_list(data_type: &DataType) -> bool {
    match data_type {
        DataType::List(item) | DataType::LargeList(item) => {
            matches!(
                item.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            )
        }
        _ => false,
    }
}

/// Plans both stages of `definition` and checks their outputs.
pub async fn compile(
    definition: RuleDefinition,
    reference: &BTreeMap<String, ReferenceTable>,
    limits: Limits,
) -> Result<CompiledRule, RuleError> {
    let setup_error = |error: DataFusionError| RuleError::in_file(&definition.dir, error.to_string());
    let input_context = session(limits, reference).map_err(setup_error)?;
    let events = register_events(&input_context).await.map_err(setup_error)?;
    let input = plan_stage(&definition, Stage::Input, input_context, events).await?;
    require_column(
        &definition,
        Stage::Input,
        &input.output,
        TIME,
        is_timestamp,
        "a timestamp",
    )?;
    for column in &definition.settings.partition_by {
        require_column(
            &definition,
            Stage::Input,
            &input.output,
            column,
            |_| true,
            "a partition column",
        )?;
    }
    if let Some(anchor) = &definition.settings.anchor {
        require_column(
            &definition,
            Stage::Input,
            &input.output,
            anchor.column(),
            |data_type| arrow::compute::can_cast_types(data_type, &DataType::Utf8),
            "the anchor column (rule.toml's anchor), comparable as text",
        )?;
    }

    for (column, example) in [(KEEP_UNTIL, "time + ${window}"), (DUE_AT, "time + ${window}")] {
        if let Ok(field) = input.output.field_with_name(column)
            && !is_timestamp(field.data_type())
        {
            return Err(definition.input.error_at(
                None,
                None,
                format!("column `{column}` must be a timestamp, e.g. {example}"),
            ));
        }
    }
    for column in [IS_NEW, IS_DUE] {
        if input.output.field_with_name(column).is_ok() {
            return Err(definition.input.error_at(
                None,
                None,
                format!("`{column}` is added by the engine for match.sql; input.sql must not return it"),
            ));
        }
    }
    let match_context = session(limits, reference).map_err(setup_error)?;
    let kept_schema = Arc::new(kept_schema(&input.output));
    let kept = Arc::new(SlotTable::new(kept_schema));
    match_context
        .register_table(KEPT_TABLE, kept.clone())
        .map_err(setup_error)?;
    let matcher = plan_stage(&definition, Stage::Match, match_context, kept).await?;
    for column in [FIRST_SEEN, LAST_SEEN] {
        require_column(
            &definition,
            Stage::Match,
            &matcher.output,
            column,
            is_timestamp,
            "a timestamp",
        )?;
    }
    require_column(
        &definition,
        Stage::Match,
        &matcher.output,
        EVIDENCE,
        is_text_list,
        "a list of event ids, e.g. array_agg(event_id)",
    )?;
    for column in &definition.settings.entity {
        require_column(
            &definition,
            Stage::Match,
            &matcher.output,
            column,
            |_| true,
            "an entity column",
        )?;
    }
    let compact = match &definition.compact {
        Some(sql) => {
            let context = session(limits, reference).map_err(setup_error)?;
            let stored = Arc::new(stored_schema(&input.output));
            let kept = Arc::new(SlotTable::new(stored.clone()));
            context.register_table(KEPT_TABLE, kept.clone()).map_err(setup_error)?;
            let planned = plan_stage(&definition, Stage::Compact, context, kept).await?;
            let returns = |schema: &SchemaRef| -> Vec<String> {
                schema
                    .fields()
                    .iter()
                    .map(|field| format!("{} {}", field.name(), field.data_type()))
                    .collect()
            };
            if returns(&planned.output) != returns(&stored) {
                return Err(sql.error_at(
                    None,
                    None,
                    format!(
                        "compact.sql must return the columns input.sql returns, in order: {}; it returns: {}",
                        returns(&stored).join(", "),
                        returns(&planned.output).join(", ")
                    ),
                ));
            }
            Some(planned)
        }
        None => None,
    };
    Ok(CompiledRule {
        definition: Arc::new(definition),
        input,
        matcher,
        compact,
    })
}

/// The schema of the rows kept from input.sql's output. Nullability and metadata of a
/// plan's output are not promises about the rows; a plain schema avoids mismatches.
pub fn stored_schema(output: &SchemaRef) -> arrow::datatypes::Schema {
    let fields: Vec<arrow::datatypes::Field> = output
        .fields()
        .iter()
        .map(|field| arrow::datatypes::Field::new(field.name(), field.data_type().clone(), true))
        .collect();
    arrow::datatypes::Schema::new(fields)
}

/// What match.sql sees as `kept`: the stored rows plus `is_new` and `is_due`.
pub fn kept_schema(output: &SchemaRef) -> arrow::datatypes::Schema {
    let mut fields: Vec<arrow::datatypes::Field> = stored_schema(output)
        .fields()
        .iter()
        .map(|field| field.as_ref().clone())
        .collect();
    fields.push(arrow::datatypes::Field::new(IS_NEW, DataType::Boolean, false));
    fields.push(arrow::datatypes::Field::new(IS_DUE, DataType::Boolean, false));
    arrow::datatypes::Schema::new(fields)
}
