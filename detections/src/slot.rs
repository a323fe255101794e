//! The table a rule stage reads, refilled for every evaluation: a slot of record
//! batches behind a table whose scan reads the slot when the plan runs, not when it is
//! planned. So a stage is planned into a physical plan once, at compile time, and each
//! evaluation runs a fresh copy of it (`reset_plan_states`) over the slot's rows:
//! planning a stage cost more than running it on a second's events (the profile is in
//! docs/performance.md). The scan reports no statistics, so nothing planned depends
//! on one evaluation's rows.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::memory::{LazyBatchGenerator, LazyMemoryExec};
use parking_lot::RwLock;

/// The rows one evaluation of a stage reads.
#[derive(Debug, Default)]
pub struct Slot {
    batches: Mutex<Vec<RecordBatch>>,
}

impl Slot {
    pub fn fill(&self, rows: Vec<RecordBatch>) {
        *self.batches.lock().expect("slot lock") = rows;
    }

    pub fn clear(&self) {
        self.batches.lock().expect("slot lock").clear();
    }

    fn snapshot(&self) -> Vec<RecordBatch> {
        self.batches.lock().expect("slot lock").clone()
    }
}

/// A table over a slot.
#[derive(Debug)]
pub struct SlotTable {
    schema: SchemaRef,
    pub slot: Arc<Slot>,
    /// The columns the plans' scans read (None inside: every column), once planned.
    read: Mutex<Option<Option<Vec<usize>>>>,
}

impl SlotTable {
    pub fn new(schema: SchemaRef) -> SlotTable {
        SlotTable {
            schema,
            slot: Arc::new(Slot::default()),
            read: Mutex::new(None),
        }
    }

    /// The columns the stage planned over this table reads, ascending: what a rule
    /// holding its events for later must keep (`held.rs`). None: every column.
    pub fn read_columns(&self) -> Option<Vec<usize>> {
        self.read.lock().expect("slot lock").clone().unwrap_or(Some(Vec::new()))
    }

    fn record_read(&self, projection: Option<&Vec<usize>>) {
        let mut read = self.read.lock().expect("slot lock");
        *read = Some(match (read.take(), projection) {
            (Some(None), _) | (_, None) => None,
            (None, Some(columns)) => Some(columns.clone()),
            (Some(Some(mut known)), Some(columns)) => {
                known.extend(columns);
                Some(known)
            }
        });
        if let Some(Some(columns)) = read.as_mut() {
            columns.sort_unstable();
            columns.dedup();
        }
    }
}

/// Yields the slot's batches as they are when the plan's copy is executed.
struct SlotReader {
    slot: Arc<Slot>,
    batches: std::vec::IntoIter<RecordBatch>,
}

impl fmt::Debug for SlotReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SlotReader")
    }
}

impl fmt::Display for SlotReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("slot")
    }
}

impl LazyBatchGenerator for SlotReader {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn generate_next_batch(&mut self) -> Result<Option<RecordBatch>> {
        Ok(self.batches.next())
    }

    /// Every execution starts over from the slot's current rows.
    fn reset_state(&self) -> Arc<RwLock<dyn LazyBatchGenerator>> {
        Arc::new(RwLock::new(SlotReader {
            slot: self.slot.clone(),
            batches: self.slot.snapshot().into_iter(),
        }))
    }
}

#[async_trait::async_trait]
impl TableProvider for SlotTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.record_read(projection);
        let reader: Arc<RwLock<dyn LazyBatchGenerator>> = Arc::new(RwLock::new(SlotReader {
            slot: self.slot.clone(),
            batches: Vec::new().into_iter(),
        }));
        let exec = LazyMemoryExec::try_new(self.schema.clone(), vec![reader])?.with_projection(projection.cloned());
        Ok(Arc::new(exec))
    }
}
