//! A physical optimizer rule that makes every operator of a hunt's plan a yield point.
//!
//! DataFusion's sources yield to the runtime every so often, but an operator that
//! turns one input batch into very many (a cross join emitting a large left side per
//! right batch) can run for minutes without polling its input, and so without
//! yielding: a task in that state can be neither timed out nor aborted. Wrapping each
//! operator in `CooperativeExec` spends task budget per batch it produces, so a hunt
//! yields at least every few batches whatever its shape, and stops when it is aborted.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;

#[derive(Debug, Default)]
pub struct YieldEverywhere;

impl PhysicalOptimizerRule for YieldEverywhere {
    fn name(&self) -> &str {
        "YieldEverywhere"
    }

    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if node.name() == "CooperativeExec" || node.children().is_empty() {
                // Sources are made cooperative by DataFusion's own rule.
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(
                Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
            ))
        })
        .map(|transformed| transformed.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// DataFusion's physical optimizer rules followed by `YieldEverywhere`.
pub fn rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    rules.push(Arc::new(YieldEverywhere));
    rules
}
