//! The engine: every SQL string from a job is parsed, planned, checked by
//! the guards on the optimized logical plan, then executed under one
//! bounded memory pool.

use crate::aggregate_rule::AggregateGuard;
use crate::cell::CellPlan;
use crate::decimal_arith::DecimalArithRule;
use crate::eager_and::EagerAndRule;
use crate::entity_order::EntityOrderRule;
use crate::function_rule::FunctionGuard;
use crate::guard::{PrivacyCost, QueryError, QueryGuard, QueryScope, ReadOnlyGuard};
use crate::join_filter_scan::JoinFilterScanRule;
use crate::keep::JobQueryPlanner;
use crate::policy_table::{PolicyKeys, PolicyTable};
use crate::source::DatasetSource;
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::config::Dialect;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::{Optimizer, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use futures::StreamExt;
use inland_policies::{Label, Policy};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// DataFusion's optimizer rules, less the one that turns `count(DISTINCT x)`
/// into two nested aggregations: kept as one aggregate, a distinct count is
/// something the aggregation rule can check and the suppression rewrite can
/// count entities beside.
fn optimizer_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    Optimizer::new()
        .rules
        .into_iter()
        .filter(|r| r.name() != "single_distinct_aggregation_to_group_by")
        .collect()
}

/// A query ready to run.
pub struct PlannedQuery {
    /// The checked, optimized plan.
    pub plan: LogicalPlan,
    /// SHA-256 of the plan's text, recorded with the query.
    pub plan_hash: String,
    /// What the guards want the job told.
    pub notices: Vec<String>,
    /// Groups with fewer distinct entities than this are removed by the host.
    pub suppress_below: Option<u64>,
    /// Counts the groups the plan's own small-group filter removed (read
    /// once the result has been read to its end).
    pub suppressed: Option<Arc<AtomicU64>>,
    /// How the host records per-cell facts for the gate from this result.
    pub cells: Option<CellPlan>,
    /// The result's label and why.
    pub label: Option<(Label, String)>,
    /// What it costs in the `dp` mode; charged before it runs.
    pub privacy: Option<PrivacyCost>,
}

/// Plans and runs queries for jobs, under the domain's guards and one shared,
/// bounded memory pool.
pub struct QueryEngine {
    env: Arc<RuntimeEnv>,
    guards: Vec<Arc<dyn QueryGuard>>,
    target_partitions: usize,
    optimizer_rules: Vec<Arc<dyn OptimizerRule + Send + Sync>>,
}

/// The dataset as stored, less the host's hidden columns (the stored entity
/// key): with no policy a job reads the table as it is, but never those.
async fn without_hidden(
    raw: &SessionContext,
    d: &DatasetSource,
    path: &str,
    provider: Arc<dyn TableProvider>,
) -> Result<Arc<dyn TableProvider>, DataFusionError> {
    let schema = provider.schema();
    if !schema.fields().iter().any(|f| crate::hidden::reserved(f.name())) {
        return Ok(provider);
    }
    let visible = arrow::datatypes::Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| !crate::hidden::reserved(f.name()))
            .cloned()
            .collect::<Vec<_>>(),
    );
    // Dataset names start with a letter: this one is no dataset's.
    let name = format!("__inland_visible_{}", d.name);
    raw.register_parquet(name.as_str(), path, ParquetReadOptions::default().schema(&visible))
        .await?;
    raw.table_provider(name.as_str()).await
}

impl QueryEngine {
    /// A query engine whose queries share `memory_bytes` and never spill to disk.
    pub fn new(memory_bytes: usize) -> Result<QueryEngine, QueryError> {
        let env = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(memory_bytes)))
            // No spilling: intermediate data would sit on disk unsealed by the
            // grant's key. A query that outgrows the pool fails with a limit error.
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()
            .map_err(|e| QueryError::Internal(format!("query runtime: {e}")))?;
        let target_partitions = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Ok(QueryEngine {
            env,
            guards: vec![
                Arc::new(ReadOnlyGuard),
                Arc::new(FunctionGuard),
                Arc::new(AggregateGuard),
            ],
            target_partitions,
            optimizer_rules: optimizer_rules(),
        })
    }

    /// Adds a guard after the existing ones (the read-only guard is always first).
    pub fn add_guard(&mut self, guard: Arc<dyn QueryGuard>) {
        self.guards.push(guard);
    }

    /// A fresh session in which exactly `datasets` exist. Under a policy
    /// (with the grant's pseudonym key) each dataset shows only what the policy
    /// lets through, masked columns already masked.
    pub async fn session(
        &self,
        datasets: &[DatasetSource],
        policy: Option<(&Policy, PolicyKeys)>,
    ) -> Result<SessionContext, QueryError> {
        let config = SessionConfig::new()
            .with_information_schema(false)
            .with_target_partitions(self.target_partitions)
            .with_default_catalog_and_schema("inland", "public")
            // Build sides up to a million rows are built once and shared by every
            // partition, so the large probe side (a fact table) is not hash-
            // repartitioned: on few cores that shuffle cost more than the join.
            .set_usize("datafusion.optimizer.hash_join_single_partition_threshold", 8 << 20)
            .set_usize(
                "datafusion.optimizer.hash_join_single_partition_threshold_rows",
                1 << 20,
            )
            // A single integer join key whose build-side values cover at least 3% of
            // their range is looked up in an array indexed by key (a "perfect hash"),
            // not a hash table: one memory access per probe row. DataFusion's default
            // (15%) leaves out a typical fact-to-dimension join after a date filter
            // (TPC-H Q5: a year of orders, 3.8% of the key range), where the array
            // made the query 13-22% faster in paired runs. The array costs at most
            // 4 bytes / 0.03 = 133 bytes per build row, counted against the query's
            // memory pool like the hash table it replaces.
            .set_str("datafusion.execution.perfect_hash_join_min_key_density", "0.03")
            // A join's build side of up to 1,024 distinct keys (and 128 KiB) is handed
            // to the probed scan as a list rather than a hash-table lookup, so the
            // scan can filter by it row by row (`join_filter_scan`): TPC-H q17's
            // ~200 parts of one brand and container.
            .set_usize(
                "datafusion.optimizer.hash_join_inlist_pushdown_max_distinct_values",
                1024,
            );
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.env.clone())
            .with_default_features()
            .with_optimizer_rules(self.optimizer_rules.clone())
            .with_physical_optimizer_rule(Arc::new(DecimalArithRule))
            .with_physical_optimizer_rule(Arc::new(JoinFilterScanRule))
            .with_physical_optimizer_rule(Arc::new(EagerAndRule))
            .with_physical_optimizer_rule(Arc::new(EntityOrderRule))
            .with_query_planner(Arc::new(JobQueryPlanner))
            .build();
        let ctx = SessionContext::new_with_state(state);
        // Raw tables are opened in a private session the job's SQL can never name.
        let raw = SessionContext::new_with_state(
            SessionStateBuilder::new()
                .with_runtime_env(self.env.clone())
                .with_default_features()
                .build(),
        );
        for d in datasets {
            let path = d.path.to_str().ok_or_else(|| {
                QueryError::Internal(format!("the file of dataset `{}` has a path that is not UTF-8", d.name))
            })?;
            let open = |e: DataFusionError| QueryError::Internal(format!("opening dataset `{}`: {e}", d.name));
            raw.register_parquet(d.name.as_str(), path, ParquetReadOptions::default())
                .await
                .map_err(open)?;
            let provider = raw.table_provider(d.name.as_str()).await.map_err(open)?;
            let provider: Arc<dyn TableProvider> = match &policy {
                Some((p, keys)) => Arc::new(PolicyTable::new(provider, p, &d.name, keys, d.entity_key.as_ref())),
                None => without_hidden(&raw, d, path, provider).await.map_err(open)?,
            };
            ctx.register_table(d.name.as_str(), provider).map_err(open)?;
        }
        Ok(ctx)
    }

    /// Parses, plans, optimizes and checks one SQL statement.
    pub async fn plan(&self, ctx: &SessionContext, scope: &QueryScope, sql: &str) -> Result<PlannedQuery, QueryError> {
        self.plan_bound(ctx, scope, sql, Vec::new()).await
    }

    /// [`QueryEngine::plan`], with each `$name` placeholder bound to the
    /// value of `name` in `params`. Values are bound into the parsed plan as
    /// literals, before any rule looks at it: a value is never parsed as
    /// SQL, and every rule sees exactly what will run.
    pub async fn plan_bound(
        &self,
        ctx: &SessionContext,
        scope: &QueryScope,
        sql: &str,
        params: Vec<(String, ScalarValue)>,
    ) -> Result<PlannedQuery, QueryError> {
        let state = ctx.state();
        let statement = state.sql_to_statement(sql, &Dialect::Generic)?;
        let rule = "read-only";
        match &statement {
            DfStatement::Statement(s) if matches!(**s, SqlStatement::Query(_)) => {}
            DfStatement::Statement(s) => {
                let verb = s
                    .to_string()
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                return Err(QueryError::refused(
                    rule,
                    format!("only SELECT queries are allowed, not {verb}"),
                ));
            }
            DfStatement::CreateExternalTable(_) => {
                return Err(QueryError::refused(rule, "CREATE EXTERNAL TABLE is not allowed"));
            }
            DfStatement::CopyTo(_) => return Err(QueryError::refused(rule, "COPY is not allowed")),
            DfStatement::Explain(_) => return Err(QueryError::refused(rule, "EXPLAIN is not allowed")),
            DfStatement::Reset(_) => return Err(QueryError::refused(rule, "RESET is not allowed")),
        }
        let plan = state.statement_to_plan(statement).await?;
        // Always bound, with no values too: a placeholder left without one
        // is an error here, never a plan with a hole in it.
        let plan = plan
            .with_param_values(datafusion::common::ParamValues::from(params))
            .map_err(|e| QueryError::Invalid(e.strip_backtrace()))?;
        datafusion::execution::context::SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| QueryError::refused(rule, e.strip_backtrace().to_string()))?;
        let mut plan = state.optimize(&plan)?;
        let mut notices = Vec::new();
        let mut suppress_below = None;
        let mut suppressed = None;
        let mut cells = None;
        let mut label: Option<(Label, String)> = None;
        let mut privacy = None;
        for guard in &self.guards {
            let guarded = guard.check(plan, scope)?;
            plan = guarded.plan;
            notices.extend(guarded.notices);
            suppress_below = suppress_below.or(guarded.suppress_below);
            suppressed = suppressed.or(guarded.suppressed);
            cells = cells.or(guarded.cells);
            privacy = privacy.or(guarded.privacy);
            if let Some(l) = guarded.label
                && label.as_ref().is_none_or(|(have, _)| l.0 > *have)
            {
                label = Some(l);
            }
        }
        let plan_hash = hex::encode(Sha256::digest(plan.display_indent().to_string().as_bytes()));
        Ok(PlannedQuery {
            plan,
            plan_hash,
            notices,
            suppress_below,
            suppressed,
            cells,
            label,
            privacy,
        })
    }

    /// The physical plan DataFusion will run for a checked plan, with the
    /// session's physical rules applied (for EXPLAIN-like tooling and benches).
    pub async fn physical_plan(
        &self,
        ctx: &SessionContext,
        planned: &PlannedQuery,
    ) -> Result<Arc<dyn ExecutionPlan>, QueryError> {
        let state = ctx.state();
        Ok(state
            .query_planner()
            .create_physical_plan(&planned.plan, &state)
            .await?)
    }

    /// Starts executing a checked plan; batches are pulled from the stream.
    /// The plan is driven by a task of its own on the query runtime, two
    /// batches ahead of the reader: a job pulls batches from inside the
    /// sandbox, and the engine's work should not wait on the job's turns.
    /// Dropping the stream stops the task.
    pub async fn execute(
        &self,
        ctx: &SessionContext,
        planned: &PlannedQuery,
    ) -> Result<SendableRecordBatchStream, QueryError> {
        let physical = self.physical_plan(ctx, planned).await?;
        self.execute_physical(ctx, physical)
    }

    /// Starts executing a physical plan from [`Self::physical_plan`], driven
    /// as [`Self::execute`] drives it (benches time the two steps apart).
    pub fn execute_physical(
        &self,
        ctx: &SessionContext,
        physical: Arc<dyn ExecutionPlan>,
    ) -> Result<SendableRecordBatchStream, QueryError> {
        let mut stream = datafusion::physical_plan::execute_stream(physical, ctx.task_ctx())?;
        let mut driven = RecordBatchReceiverStreamBuilder::new(stream.schema(), 2);
        let tx = driven.tx();
        driven.spawn(async move {
            while let Some(batch) = stream.next().await {
                if tx.send(batch).await.is_err() {
                    break;
                }
            }
            Ok(())
        });
        Ok(driven.build())
    }
}
