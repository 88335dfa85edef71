//! One evaluation of an aggregation a query names more than once. A common
//! table expression used twice (TPC-H q15's `revenue0`, joined and also
//! searched for its maximum) is inlined by DataFusion as two identical
//! subtrees, each scanning and aggregating the same rows. Here the second
//! reads what the first computed: identical deterministic plans give
//! identical rows, so results are unchanged.
//!
//! The rewrite happens between the optimized logical plan (which the guards
//! have checked) and the physical plan: it only decides how often a subtree
//! runs, never what it computes. Each occurrence stays its own physical
//! node over its own copy of the subtree; the first to run computes every
//! partition and keeps the batches (counted against the query's memory
//! pool), and the others read them when their own copy is partitioned and
//! ordered the same way, or run their own copy otherwise.

use async_trait::async_trait;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::utils::memory::RecordBatchMemoryCounter;
use datafusion::common::{DFSchemaRef, DataFusionError, Result as DfResult, internal_err};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PhysicalExpr, PlanProperties,
};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

const NAME: &str = "InlandShared";

/// Marks each occurrence of a repeated aggregation with the same `id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
struct SharedNode {
    id: usize,
    input: LogicalPlan,
}

impl UserDefinedLogicalNodeCore for SharedNode {
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
        Vec::new()
    }
    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{NAME}: id={}", self.id)
    }
    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> DfResult<Self> {
        let Ok([input]) = <[LogicalPlan; 1]>::try_from(inputs) else {
            return internal_err!("{NAME} takes one input");
        };
        Ok(Self { id: self.id, input })
    }
}

/// Whether a subtree computes the same rows each time it runs: no volatile
/// function (`random()`) anywhere in it.
fn deterministic(plan: &LogicalPlan) -> bool {
    let mut volatile = false;
    let _ = plan.apply(|node| {
        volatile |= node.expressions().iter().any(Expr::is_volatile);
        Ok(if volatile {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    !volatile
}

/// `plan` with every aggregation that occurs more than once (the same
/// deterministic subtree) marked for one evaluation. Unchanged when none does.
pub(crate) fn share_repeated(plan: &LogicalPlan) -> DfResult<LogicalPlan> {
    // One walk, subqueries too (DataFusion plans an uncorrelated scalar
    // subquery, a `max` over a common table expression, where it stands,
    // with the same planner). A recursive query runs its recursive term
    // again and again over a work table whose scans compare equal whatever
    // table they stand for: nothing in such a plan is shared.
    let mut recursive = false;
    let mut aggregates = Vec::new();
    plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::RecursiveQuery(_) => recursive = true,
            LogicalPlan::Aggregate(_) => aggregates.push(node.clone()),
            _ => {}
        }
        Ok(if recursive {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    // Most queries aggregate once: nothing to compare.
    if recursive || aggregates.len() < 2 {
        return Ok(plan.clone());
    }
    let mut counts: HashMap<LogicalPlan, usize> = HashMap::new();
    for a in aggregates {
        *counts.entry(a).or_default() += 1;
    }
    let repeated: Vec<LogicalPlan> = counts
        .into_iter()
        .filter(|(p, n)| *n > 1 && deterministic(p))
        .map(|(p, _)| p)
        .collect();
    if repeated.is_empty() {
        return Ok(plan.clone());
    }
    plan.clone()
        .transform_down_with_subqueries(|node| match repeated.iter().position(|r| *r == node) {
            Some(id) => Ok(Transformed::new(
                LogicalPlan::Extension(Extension {
                    node: Arc::new(SharedNode { id, input: node }),
                }),
                true,
                // Its own inside is shared with it.
                TreeNodeRecursion::Jump,
            )),
            None => Ok(Transformed::no(node)),
        })
        .map(|t| t.data)
}

/// What the first occurrence to run computed: every partition's batches,
/// with how its copy was partitioned and ordered.
struct Computed {
    partitioning: Partitioning,
    ordering: Option<String>,
    batches: Vec<Vec<arrow::array::RecordBatch>>,
    _memory: MemoryReservation,
}

type Shared = Arc<tokio::sync::OnceCell<Result<Arc<Computed>, Arc<DataFusionError>>>>;

/// Plans each occurrence, giving all occurrences of one id one result cell.
/// Made anew for each plan, so nothing is shared between queries.
#[derive(Default)]
pub(crate) struct SharedPlanner {
    cells: Mutex<HashMap<usize, Shared>>,
}

impl fmt::Debug for SharedPlanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedPlanner")
    }
}

#[async_trait]
impl ExtensionPlanner for SharedPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn datafusion::catalog::Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<SharedNode>() else {
            return Ok(None);
        };
        let [input] = physical_inputs else {
            return internal_err!("{NAME} takes one input");
        };
        let cell = match self.cells.lock() {
            Ok(mut cells) => cells.entry(node.id).or_default().clone(),
            Err(_) => return internal_err!("{NAME}: the planner's cells are poisoned"),
        };
        Ok(Some(Arc::new(SharedExec {
            id: node.id,
            input: input.clone(),
            cell,
        })))
    }
}

/// One occurrence of a shared aggregation; see the module documentation.
#[derive(Debug)]
struct SharedExec {
    id: usize,
    input: Arc<dyn ExecutionPlan>,
    cell: Shared,
}

impl fmt::Debug for Computed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Computed({} partitions)", self.batches.len())
    }
}

impl DisplayAs for SharedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "InlandSharedExec: id={}", self.id)
    }
}

/// How a plan's output is ordered, as text (orderings compare by it).
fn ordering_of(plan: &Arc<dyn ExecutionPlan>) -> Option<String> {
    plan.output_ordering().map(|o| o.to_string())
}

fn poisoned() -> DataFusionError {
    DataFusionError::Internal(format!("{NAME}: the memory count is poisoned"))
}

/// Runs every partition of `input` to its end, each batch counted against
/// the query's memory pool as it is kept (buffers shared between batches,
/// as an aggregate's slices of one output are, counted once).
async fn compute(input: Arc<dyn ExecutionPlan>, context: Arc<TaskContext>) -> DfResult<Arc<Computed>> {
    let partitions = input.output_partitioning().partition_count();
    let memory = Arc::new(Mutex::new((
        MemoryConsumer::new(NAME).register(context.memory_pool()),
        RecordBatchMemoryCounter::new(),
    )));
    let streams = (0..partitions)
        .map(|p| input.execute(p, context.clone()))
        .collect::<DfResult<Vec<_>>>()?;
    let batches = futures::future::try_join_all(streams.into_iter().map(|s| {
        let memory = memory.clone();
        s.map(move |b| {
            let b = b?;
            let mut held = memory.lock().map_err(|_| poisoned())?;
            let (reservation, counter) = &mut *held;
            let more = counter.count_batch(&b);
            reservation.try_grow(more)?;
            Ok::<_, DataFusionError>(b)
        })
        .try_collect::<Vec<_>>()
    }))
    .await?;
    let reservation = match Arc::try_unwrap(memory) {
        Ok(m) => m.into_inner().map_err(|_| poisoned())?.0,
        Err(_) => return internal_err!("{NAME}: the memory count is still in use"),
    };
    Ok(Arc::new(Computed {
        partitioning: input.output_partitioning().clone(),
        ordering: ordering_of(&input),
        batches,
        _memory: reservation,
    }))
}

impl ExecutionPlan for SharedExec {
    fn name(&self) -> &str {
        "InlandSharedExec"
    }
    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }
    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }
    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        let Ok([input]) = <[Arc<dyn ExecutionPlan>; 1]>::try_from(children) else {
            return internal_err!("{NAME} takes one input");
        };
        if input.schema() != self.input.schema() {
            return internal_err!("{NAME}: the new input has another schema");
        }
        Ok(Arc::new(Self {
            id: self.id,
            input,
            cell: self.cell.clone(),
        }))
    }
    /// A plan run again (a recursive query's term) starts afresh, computing
    /// its own copy rather than reading what an earlier run kept.
    fn reset_state(self: Arc<Self>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self {
            id: self.id,
            input: self.input.clone(),
            cell: Shared::default(),
        }))
    }
    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let (cell, input, schema) = (self.cell.clone(), self.input.clone(), self.schema());
        let result = async move {
            let computed = cell
                .get_or_init(|| async { compute(input.clone(), context.clone()).await.map_err(Arc::new) })
                .await
                .as_ref()
                .map_err(|e| DataFusionError::Shared(e.clone()))?
                .clone();
            // Another occurrence's copy, partitioned or ordered otherwise,
            // would hand this one rows its parent does not expect: run its own.
            if computed.partitioning != *input.output_partitioning() || computed.ordering != ordering_of(&input) {
                return Ok(input.execute(partition, context)?.boxed());
            }
            let batches = computed.batches.get(partition).cloned().unwrap_or_default();
            Ok::<_, DataFusionError>(futures::stream::iter(batches.into_iter().map(Ok)).boxed())
        };
        let stream = futures::stream::once(result).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::collect;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// DataFusion's planner with this module's step and node alone.
    #[derive(Debug)]
    struct SharingPlanner;

    #[async_trait]
    impl datafusion::execution::context::QueryPlanner for SharingPlanner {
        async fn create_physical_plan(
            &self,
            plan: &LogicalPlan,
            session: &dyn datafusion::catalog::Session,
        ) -> DfResult<Arc<dyn ExecutionPlan>> {
            datafusion::physical_planner::DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(
                SharedPlanner::default(),
            )])
            .create_physical_plan(&share_repeated(plan)?, session)
            .await
        }
    }

    fn session(shared: bool) -> DfResult<SessionContext> {
        let builder = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_default_features();
        let state = if shared {
            builder.with_query_planner(Arc::new(SharingPlanner)).build()
        } else {
            builder.build()
        };
        let ctx = SessionContext::new_with_state(state);
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values((0..1000).map(|i| i % 7))),
                Arc::new(Int64Array::from_iter_values((0..1000).map(|i| (i * 37) % 101))),
            ],
        )?;
        ctx.register_batch("t", batch)?;
        Ok(ctx)
    }

    /// The occurrences of each shared aggregation in a plan, and how many of
    /// them ran their own copy (their copy's root produced rows).
    fn occurrences(plan: &Arc<dyn ExecutionPlan>) -> (usize, usize) {
        let (mut seen, mut ran) = (0, 0);
        let _ = plan.apply(|node| {
            if node.downcast_ref::<SharedExec>().is_some() {
                seen += 1;
                let rows = node.children()[0].metrics().and_then(|m| m.output_rows()).unwrap_or(0);
                ran += usize::from(rows > 0);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        (seen, ran)
    }

    /// A common table expression used twice is aggregated once: both
    /// occurrences are marked, one runs, and the answer is the one
    /// DataFusion gives computing it twice.
    #[tokio::test]
    async fn an_aggregation_named_twice_runs_once_with_the_same_answer() -> DfResult<()> {
        let sql = "WITH r AS (SELECT k, sum(v) AS s FROM t GROUP BY k) \
                   SELECT k, s FROM r WHERE s + 200 >= (SELECT max(s) FROM r) ORDER BY k";
        let expected = session(false)?.sql(sql).await?.collect().await?;
        let ctx = session(true)?;
        let plan = ctx.sql(sql).await?.create_physical_plan().await?;
        let got = collect(plan.clone(), ctx.task_ctx()).await?;
        assert_eq!(got, expected);
        assert!(got.iter().map(|b| b.num_rows()).sum::<usize>() >= 2);
        assert_eq!(occurrences(&plan), (2, 1));
        Ok(())
    }

    /// Nothing is shared where the subtrees differ or may give other rows
    /// each time (a volatile function).
    #[tokio::test]
    async fn different_or_volatile_aggregations_are_not_shared() -> DfResult<()> {
        let ctx = session(true)?;
        for sql in [
            "SELECT (SELECT sum(v) FROM t) + (SELECT sum(k) FROM t) AS x",
            "WITH r AS (SELECT k, sum(v * random()) AS s FROM t GROUP BY k) \
             SELECT k FROM r WHERE s = (SELECT max(s) FROM r)",
        ] {
            let plan = ctx.sql(sql).await?.create_physical_plan().await?;
            assert_eq!(occurrences(&plan).0, 0, "{sql}");
            collect(plan, ctx.task_ctx()).await?;
        }
        // A recursive term's aggregate over each of two work tables (equal
        // as plans, not as rows): not shared, so the recursion ends with
        // the rows DataFusion gives alone.
        let sql = "WITH RECURSIVE l(n) AS (SELECT 1 UNION ALL SELECT max(n) + 1 FROM l HAVING max(n) < 5) \
                   SELECT n FROM l UNION ALL SELECT n * 10 FROM l ORDER BY n";
        let plan = ctx.sql(sql).await?.create_physical_plan().await?;
        assert_eq!(occurrences(&plan).0, 0);
        let got = collect(plan, ctx.task_ctx()).await?;
        assert_eq!(got, session(false)?.sql(sql).await?.collect().await?);
        assert_eq!(got.iter().map(|b| b.num_rows()).sum::<usize>(), 10);
        Ok(())
    }
}
