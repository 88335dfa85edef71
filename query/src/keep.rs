//! The small-group filter: a plan node of its own, placed right above the
//! aggregation over protected data, so that groups below the threshold are
//! gone before anything the job wrote (HAVING, ORDER BY, LIMIT, an outer
//! query, its own expressions) sees them. `ORDER BY n LIMIT 1` returns the
//! smallest group the policy allows, never a sign of one it removed; and
//! `1 / (count(*) - 3)` never divides by zero on a group the job is not shown.
//!
//! A node rather than a `Filter` with a predicate: DataFusion's optimizers
//! know nothing of it, so none can move a predicate, limit or projection
//! below it (each declines by default), and its physical form costs the
//! planner nothing (it has its input's properties; a `FilterExec` works out
//! the statistics of the whole plan below it each time it is built).
//!
//! Each planned query gets its own counter of the groups it removed, for the
//! notice the job receives.

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use async_trait::async_trait;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchemaRef, Result as DfResult, internal_err, plan_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties, execution_plan::CardinalityEffect,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::StreamExt;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The node's name in plans.
pub(crate) const NAME: &str = "InlandKeep";

/// Counts the groups one query's filter removed.
pub(crate) type Removed = Arc<AtomicU64>;

/// One query's small-group filter: its threshold and its counter.
#[derive(Debug, Clone)]
pub(crate) struct Keep {
    min: u64,
    removed: Removed,
}

impl Keep {
    /// The filter for groups of fewer than `min` entities, and its counter.
    pub(crate) fn new(min: u64) -> (Self, Removed) {
        let removed = Removed::default();
        (
            Self {
                min,
                removed: removed.clone(),
            },
            removed,
        )
    }

    /// The smallest group size kept.
    pub(crate) fn min(&self) -> u64 {
        self.min
    }

    /// `input` without the rows whose group size (`size`, an Int64
    /// expression over `input`'s columns) is below the threshold.
    pub(crate) fn over(&self, size: Expr, input: LogicalPlan) -> DfResult<LogicalPlan> {
        use datafusion::logical_expr::ExprSchemable;
        match size.get_type(input.schema()) {
            Ok(DataType::Int64) => {}
            Ok(other) => return plan_err!("{NAME}: group sizes must be Int64, not {other}"),
            Err(e) => return plan_err!("{NAME}: no group size `{size}` over this input: {e}"),
        }
        Ok(LogicalPlan::Extension(Extension {
            node: Arc::new(KeepNode {
                input,
                size,
                keep: self.clone(),
            }),
        }))
    }
}

/// The logical node: the rows of `input` whose `size` is at least the threshold.
#[derive(Debug, Clone)]
struct KeepNode {
    input: LogicalPlan,
    size: Expr,
    keep: Keep,
}

// Two nodes are the same only if they share a counter.
impl PartialEq for KeepNode {
    fn eq(&self, other: &Self) -> bool {
        self.size == other.size
            && self.keep.min == other.keep.min
            && Arc::ptr_eq(&self.keep.removed, &other.keep.removed)
            && self.input == other.input
    }
}
impl Eq for KeepNode {}
impl std::hash::Hash for KeepNode {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.size.hash(state);
        self.keep.min.hash(state);
        (Arc::as_ptr(&self.keep.removed) as usize).hash(state);
        self.input.hash(state);
    }
}
impl PartialOrd for KeepNode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        let counter = |n: &Self| Arc::as_ptr(&n.keep.removed) as usize;
        match (&self.size, self.keep.min, counter(self)).partial_cmp(&(&other.size, other.keep.min, counter(other))) {
            Some(std::cmp::Ordering::Equal) => self.input.partial_cmp(&other.input),
            unequal => unequal,
        }
    }
}

impl UserDefinedLogicalNodeCore for KeepNode {
    fn name(&self) -> &str {
        NAME
    }
    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }
    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }
    fn expressions(&self) -> Vec<Expr> {
        vec![self.size.clone()]
    }
    /// No predicate on any column may pass below the filter.
    fn prevent_predicate_push_down_columns(&self) -> HashSet<String> {
        self.input.schema().fields().iter().map(|f| f.name().clone()).collect()
    }
    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{NAME}: {} >= {}", self.size, self.keep.min)
    }
    fn with_exprs_and_inputs(&self, exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> DfResult<Self> {
        let (Ok([size]), Ok([input])) = (<[Expr; 1]>::try_from(exprs), <[LogicalPlan; 1]>::try_from(inputs)) else {
            return internal_err!("{NAME} takes one expression and one input");
        };
        Ok(Self {
            input,
            size,
            keep: self.keep.clone(),
        })
    }
}

/// The physical planner of job sessions: DataFusion's, which also plans [`KeepNode`].
#[derive(Debug)]
pub(crate) struct JobQueryPlanner;

#[async_trait]
impl datafusion::execution::context::QueryPlanner for JobQueryPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn datafusion::catalog::Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = crate::shared::share_repeated(plan)?;
        DefaultPhysicalPlanner::with_extension_planners(vec![
            Arc::new(KeepPlanner),
            Arc::new(crate::dp_release::NoisyPlanner),
            Arc::new(crate::shared::SharedPlanner::default()),
        ])
        .create_physical_plan(&plan, session)
        .await
    }
}

struct KeepPlanner;

#[async_trait]
impl ExtensionPlanner for KeepPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn datafusion::catalog::Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<KeepNode>() else {
            return Ok(None);
        };
        let ([logical], [input]) = (logical_inputs, physical_inputs) else {
            return internal_err!("{NAME} takes one input");
        };
        let size = session.create_physical_expr(node.size.clone(), logical.schema())?;
        match size.data_type(&input.schema())? {
            DataType::Int64 => {}
            other => return internal_err!("{NAME}: group sizes must be Int64, not {other}"),
        }
        Ok(Some(Arc::new(KeepExec {
            input: input.clone(),
            size,
            min: i64::try_from(node.keep.min).unwrap_or(i64::MAX),
            removed: node.keep.removed.clone(),
            metrics: ExecutionPlanMetricsSet::new(),
        })))
    }
}

/// The physical filter: passes its input's rows whose group size (`size`)
/// is at least `min`, counting the rest in `removed`.
#[derive(Debug)]
pub(crate) struct KeepExec {
    input: Arc<dyn ExecutionPlan>,
    size: Arc<dyn PhysicalExpr>,
    min: i64,
    removed: Removed,
    metrics: ExecutionPlanMetricsSet,
}

impl DisplayAs for KeepExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "InlandKeepExec: {} >= {}", self.size, self.min)
    }
}

impl ExecutionPlan for KeepExec {
    fn name(&self) -> &str {
        "InlandKeepExec"
    }
    /// A filter's output has its input's schema, partitioning, orderings and
    /// equivalences: the input's properties serve as they are.
    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }
    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        f(&self.size)
    }
    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }
    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::LowerEqual
    }
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        let Ok([input]) = <[Arc<dyn ExecutionPlan>; 1]>::try_from(children) else {
            return internal_err!("{NAME} takes one input");
        };
        if input.schema() != self.input.schema() {
            return internal_err!("{NAME}: the new input has another schema");
        }
        Ok(Arc::new(Self {
            input,
            size: self.size.clone(),
            min: self.min,
            removed: self.removed.clone(),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }
    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let (size, min, removed) = (self.size.clone(), self.min, self.removed.clone());
        let kept = input.map(move |batch| {
            let timer = baseline.elapsed_compute().timer();
            let out = batch.and_then(|b| keep_rows(&b, size.as_ref(), min, &removed));
            timer.done();
            if let Ok(b) = &out {
                baseline.record_output(b.num_rows());
            }
            out
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.input.schema(), kept)))
    }
    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// The rows of `batch` whose group size is at least `min` (a missing size
/// keeps nothing); each row removed adds one to `removed`.
fn keep_rows(batch: &RecordBatch, size: &dyn PhysicalExpr, min: i64, removed: &AtomicU64) -> DfResult<RecordBatch> {
    let sizes = size.evaluate(batch)?.into_array(batch.num_rows())?;
    let Some(sizes) = sizes.as_primitive_opt::<Int64Type>() else {
        return internal_err!("{NAME}: group sizes must be Int64, not {}", sizes.data_type());
    };
    let kept: BooleanArray = sizes.iter().map(|n| Some(n.is_some_and(|n| n >= min))).collect();
    let dropped = kept.len() - kept.true_count();
    if dropped == 0 {
        return Ok(batch.clone());
    }
    removed.fetch_add(dropped as u64, Ordering::SeqCst);
    Ok(arrow::compute::filter_record_batch(batch, &kept)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use datafusion::physical_expr::expressions::Column;

    #[test]
    fn keeps_groups_at_the_threshold_and_counts_the_rest() -> DfResult<()> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("district", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
                Arc::new(Int64Array::from(vec![Some(9), Some(10), None, Some(400)])),
            ],
        )?;
        let removed = AtomicU64::new(0);
        let (district, n) = (Column::new("district", 0), Column::new("n", 1));
        let out = keep_rows(&batch, &n, 10, &removed)?;
        let districts: Vec<&str> = out.column(0).as_string::<i32>().iter().flatten().collect();
        assert_eq!(districts, ["b", "d"]);
        assert_eq!(removed.load(Ordering::SeqCst), 2);
        // A batch of kept groups passes whole, and counts nothing.
        let out = keep_rows(&out, &n, 10, &removed)?;
        assert_eq!(out.num_rows(), 2);
        assert_eq!(removed.load(Ordering::SeqCst), 2);
        // A size column of another type is an error, not a pass.
        assert!(keep_rows(&batch, &district, 10, &removed).is_err());
        Ok(())
    }
}
