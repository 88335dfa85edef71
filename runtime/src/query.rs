//! The query path: every SQL string from a job is parsed, planned, checked
//! by the domain's guards on the optimized logical plan, then executed with
//! bounded memory. Guards are the seam where domain policy sits.

use crate::catalog::DatasetRecord;
use crate::domain::Domain;
use crate::error::{Error, Result};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::config::Dialect;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Why a query was not answered. The messages name the rule or the problem
/// and never include data the job may not see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A guard refused the query.
    #[error("refused by rule `{rule}`: {message}")]
    Refused {
        /// The rule's name.
        rule: String,
        /// What the rule objected to.
        message: String,
    },
    /// The SQL is malformed or names what the job cannot see.
    #[error("{0}")]
    Invalid(String),
    /// A resource limit of the query was reached.
    #[error("{0}")]
    Limit(String),
    /// The host failed.
    #[error("{0}")]
    Internal(String),
}

impl QueryError {
    /// A refusal by the named rule.
    pub fn refused(rule: impl Into<String>, message: impl Into<String>) -> Self {
        QueryError::Refused {
            rule: rule.into(),
            message: message.into(),
        }
    }
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        match e {
            DataFusionError::ResourcesExhausted(m) => QueryError::Limit(format!("query memory: {m}")),
            DataFusionError::Context(_, inner) => QueryError::from(*inner),
            DataFusionError::Shared(inner) => QueryError::Invalid(inner.to_string()),
            DataFusionError::Internal(m) => QueryError::Internal(m),
            DataFusionError::External(inner) => QueryError::Internal(inner.to_string()),
            other => QueryError::Invalid(other.strip_backtrace().to_string()),
        }
    }
}

/// What a job's query may touch: the datasets visible to it, and the rules
/// of the policy in force.
#[derive(Debug, Clone, Default)]
pub struct QueryScope {
    /// Names of the datasets this job may read.
    pub datasets: BTreeSet<String>,
    /// Datasets under a policy, with their aggregate-only columns.
    pub protected: std::collections::BTreeMap<String, BTreeSet<String>>,
    /// Aggregates allowed on aggregate-only columns.
    pub allowed_aggregates: Vec<String>,
    /// Fewest distinct entities a released group may have.
    pub min_group_size: u64,
    /// Datasets under the policy that hold neither personal information nor
    /// aggregate-only columns: joins and unions over them are allowed and
    /// their aggregates need no small-group suppression (their labels still apply).
    pub unrestricted: BTreeSet<String>,
    /// Join-key-only columns: dataset → columns that may be compared in a
    /// join condition, with another join-key-only column, and nowhere else.
    pub key_only: std::collections::BTreeMap<String, BTreeSet<String>>,
    /// Column classes under the policy: dataset → column → class.
    pub classes:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, inland_policies::policy::ColumnClass>>,
    /// Entity columns under the policy whose visible values tell entities
    /// apart: dataset → (column, whether jobs see it pseudonymised).
    pub entities: std::collections::BTreeMap<String, (String, bool)>,
    /// Protected datasets whose entity column was proven unique and never null
    /// at registration: a group's entities can be counted by counting its rows.
    pub unique_entities: BTreeSet<String>,
}

impl QueryScope {
    /// The scope of a job that may read `datasets`, under the policy in force if any.
    pub fn under(policy: Option<&inland_policies::Policy>, datasets: impl IntoIterator<Item = String>) -> QueryScope {
        use inland_policies::policy::{Access, MaskMethod};
        let mut scope = QueryScope {
            datasets: datasets.into_iter().collect(),
            ..Default::default()
        };
        let Some(p) = policy else { return scope };
        scope.allowed_aggregates = p.domain.allowed_aggregates.get_ref().clone();
        scope.min_group_size = *p.domain.min_group_size.get_ref();
        for (name, d) in &p.datasets {
            let classes = d
                .columns
                .iter()
                .map(|(c, cp)| (c.get_ref().clone(), cp.get_ref().class))
                .collect();
            scope.classes.insert(name.get_ref().clone(), classes);
        }
        for name in scope.datasets.clone() {
            let ao: BTreeSet<String> = p.aggregate_only(&name).into_iter().map(str::to_string).collect();
            if ao.is_empty() && !p.personal_information(&name) {
                scope.unrestricted.insert(name.clone());
            }
            let keys: BTreeSet<String> = p.join_key_only(&name).into_iter().map(str::to_string).collect();
            if !keys.is_empty() {
                scope.key_only.insert(name.clone(), keys);
            }
            // Only where equal visible values mean the same entity: a mask that
            // merges values (redaction, last digits) cannot link two datasets.
            if let Some(e) = p.entity(&name)
                && let Some(c) = p.column(&name, e)
            {
                let pseudonymised = match c.access {
                    Access::Plaintext | Access::Dimension | Access::JoinKeyOnly => Some(false),
                    Access::Mask {
                        method: MaskMethod::Pseudonym,
                    } => Some(true),
                    _ => None,
                };
                if let Some(pseudonymised) = pseudonymised {
                    scope.entities.insert(name.clone(), (e.to_string(), pseudonymised));
                }
            }
            scope.protected.insert(name, ao);
        }
        scope
    }

    /// Notes which of `datasets` hold each entity once (see
    /// [`crate::DatasetRecord::unique_columns`]), so suppression can count rows.
    pub fn with_unique_entities(
        mut self,
        policy: Option<&inland_policies::Policy>,
        datasets: &[crate::DatasetRecord],
    ) -> Self {
        let Some(p) = policy else { return self };
        self.unique_entities = datasets
            .iter()
            .filter(|d| self.protected.contains_key(&d.name))
            .filter(|d| {
                p.entity(&d.name)
                    .is_some_and(|e| d.unique_columns.iter().any(|u| u == e))
            })
            .map(|d| d.name.clone())
            .collect();
        self
    }

    /// A column's class under the policy in force.
    pub fn class(&self, dataset: &str, column: &str) -> Option<inland_policies::policy::ColumnClass> {
        self.classes.get(dataset).and_then(|c| c.get(column)).copied()
    }
}

/// A checked plan, perhaps rewritten, and what the guard wants the job told.
#[derive(Debug, Clone)]
pub struct Guarded {
    /// The plan to run.
    pub plan: LogicalPlan,
    /// Lines for the job, such as how many groups were suppressed.
    pub notices: Vec<String>,
    /// Suppress result rows whose last column (distinct entities) is below this.
    pub suppress_below: Option<u64>,
    /// Counts the groups the plan's own small-group filter removed.
    pub suppressed: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// How the host records per-cell facts for the gate from this result.
    pub cells: Option<crate::aggregate_rule::CellPlan>,
    /// The result's label and why, when the guard decides it.
    pub label: Option<(inland_policies::Label, String)>,
}

impl Guarded {
    /// The plan as it came, with nothing to add: what a guard returns when it lets a plan pass.
    pub fn unchanged(plan: LogicalPlan) -> Guarded {
        Guarded {
            plan,
            notices: Vec::new(),
            suppress_below: None,
            suppressed: None,
            cells: None,
            label: None,
        }
    }

    /// The plan with the label the guard decided.
    pub fn labelled(plan: LogicalPlan, label: (inland_policies::Label, String)) -> Guarded {
        Guarded {
            label: Some(label),
            ..Guarded::unchanged(plan)
        }
    }
}

/// A check on every query's optimized logical plan, before it runs. Guards run
/// in order; each may refuse the plan or rewrite it. Deny by default: a guard
/// that does not recognise a plan node should refuse it.
pub trait QueryGuard: Send + Sync {
    /// The rule's name, as it appears in refusals.
    fn name(&self) -> &'static str;
    /// Checks (and perhaps rewrites) a plan.
    fn check(&self, plan: LogicalPlan, scope: &QueryScope) -> std::result::Result<Guarded, QueryError>;
}

/// Read-only: the plan may only read the job's visible datasets. DDL, DML,
/// COPY, SET, EXPLAIN, prepared statements and table functions are refused.
pub struct ReadOnlyGuard;

impl QueryGuard for ReadOnlyGuard {
    fn name(&self) -> &'static str {
        "read-only"
    }

    fn check(&self, plan: LogicalPlan, scope: &QueryScope) -> std::result::Result<Guarded, QueryError> {
        let mut refusal: Option<QueryError> = None;
        plan.apply_with_subqueries(|node| {
            let problem = match node {
                LogicalPlan::TableScan(scan) => {
                    let table = scan.table_name.table();
                    let known =
                        scan.table_name.schema().is_none_or(|s| s == "public") && scope.datasets.contains(table);
                    (!known).then(|| format!("`{}` is not a dataset this job can read", scan.table_name))
                }
                LogicalPlan::Dml(_) => Some("data modification is not allowed".to_string()),
                LogicalPlan::Ddl(_) => Some("schema changes are not allowed".to_string()),
                LogicalPlan::Copy(_) => Some("COPY is not allowed".to_string()),
                LogicalPlan::Statement(_) => Some("statements other than queries are not allowed".to_string()),
                LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) => Some("EXPLAIN is not allowed".to_string()),
                LogicalPlan::Extension(_) => Some("extension plans are not allowed".to_string()),
                LogicalPlan::DescribeTable(_) => Some("DESCRIBE is not allowed; use list-datasets".to_string()),
                _ => None,
            };
            if let Some(message) = problem {
                refusal = Some(QueryError::refused(self.name(), message));
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .map_err(QueryError::from)?;
        match refusal {
            Some(r) => Err(r),
            None => Ok(Guarded::unchanged(plan)),
        }
    }
}

/// DataFusion's optimizer rules, less the one that turns `count(DISTINCT x)`
/// into two nested aggregations: kept as one aggregate, a distinct count is
/// something the aggregation rule can check and the suppression rewrite can
/// count entities beside.
fn optimizer_rules() -> Vec<Arc<dyn datafusion::optimizer::OptimizerRule + Send + Sync>> {
    datafusion::optimizer::Optimizer::new()
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
    pub suppressed: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// How the host records per-cell facts for the gate from this result.
    pub cells: Option<crate::aggregate_rule::CellPlan>,
    /// The result's label and why.
    pub label: Option<(inland_policies::Label, String)>,
}

/// Plans and runs queries for jobs, under the domain's guards and one shared,
/// bounded memory pool.
pub struct QueryEngine {
    env: Arc<RuntimeEnv>,
    guards: Vec<Arc<dyn QueryGuard>>,
    target_partitions: usize,
    optimizer_rules: Vec<Arc<dyn datafusion::optimizer::OptimizerRule + Send + Sync>>,
}

impl QueryEngine {
    /// A query engine whose queries share `memory_bytes` and never spill to disk.
    pub fn new(_domain: &Domain, memory_bytes: usize) -> Result<QueryEngine> {
        let env = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(memory_bytes)))
            // No spilling: intermediate data would sit on disk unsealed by the
            // grant's key. A query that outgrows the pool fails with a limit error.
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()
            .map_err(|e| Error::Internal(format!("query runtime: {e}")))?;
        let target_partitions = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Ok(QueryEngine {
            env,
            guards: vec![
                Arc::new(ReadOnlyGuard),
                Arc::new(crate::function_rule::FunctionGuard),
                Arc::new(crate::aggregate_rule::AggregateGuard),
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
        domain: &Domain,
        datasets: &[DatasetRecord],
        policy: Option<(&inland_policies::Policy, [u8; 32])>,
    ) -> Result<SessionContext> {
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
            .set_str("datafusion.execution.perfect_hash_join_min_key_density", "0.03");
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.env.clone())
            .with_default_features()
            .with_optimizer_rules(self.optimizer_rules.clone())
            .with_physical_optimizer_rule(Arc::new(crate::decimal_arith::DecimalArithRule))
            .with_query_planner(Arc::new(crate::keep::JobQueryPlanner))
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
            let path = domain.root().join(d.relative_path());
            let path = path
                .to_str()
                .ok_or_else(|| Error::Invalid(format!("{} is not valid UTF-8", path.display())))?;
            let open =
                |e: datafusion::error::DataFusionError| Error::Internal(format!("opening dataset `{}`: {e}", d.name));
            raw.register_parquet(d.name.as_str(), path, ParquetReadOptions::default())
                .await
                .map_err(open)?;
            let provider = raw.table_provider(d.name.as_str()).await.map_err(open)?;
            let provider: Arc<dyn datafusion::catalog::TableProvider> = match &policy {
                Some((p, key)) => Arc::new(crate::policy_table::PolicyTable::new(provider, p, &d.name, key)),
                None => provider,
            };
            ctx.register_table(d.name.as_str(), provider).map_err(open)?;
        }
        Ok(ctx)
    }

    /// Parses, plans, optimizes and checks one SQL statement.
    pub async fn plan(
        &self,
        ctx: &SessionContext,
        scope: &QueryScope,
        sql: &str,
    ) -> std::result::Result<PlannedQuery, QueryError> {
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
        let mut label: Option<(inland_policies::Label, String)> = None;
        for guard in &self.guards {
            let guarded = guard.check(plan, scope)?;
            plan = guarded.plan;
            notices.extend(guarded.notices);
            suppress_below = suppress_below.or(guarded.suppress_below);
            suppressed = suppressed.or(guarded.suppressed);
            cells = cells.or(guarded.cells);
            if let Some(l) = guarded.label
                && label.as_ref().is_none_or(|(have, _)| l.0 > *have)
            {
                label = Some(l);
            }
        }
        let plan_hash = crate::fsutil::sha256_hex(plan.display_indent().to_string().as_bytes());
        Ok(PlannedQuery {
            plan,
            plan_hash,
            notices,
            suppress_below,
            suppressed,
            cells,
            label,
        })
    }

    /// The physical plan DataFusion will run for a checked plan, with the
    /// session's physical rules applied (for EXPLAIN-like tooling and benches).
    pub async fn physical_plan(
        &self,
        ctx: &SessionContext,
        planned: &PlannedQuery,
    ) -> std::result::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>, QueryError> {
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
    ) -> std::result::Result<SendableRecordBatchStream, QueryError> {
        let physical = self.physical_plan(ctx, planned).await?;
        self.execute_physical(ctx, physical)
    }

    /// Starts executing a physical plan from [`Self::physical_plan`], driven
    /// as [`Self::execute`] drives it (benches time the two steps apart).
    pub fn execute_physical(
        &self,
        ctx: &SessionContext,
        physical: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    ) -> std::result::Result<SendableRecordBatchStream, QueryError> {
        use futures::StreamExt;
        let mut stream = datafusion::physical_plan::execute_stream(physical, ctx.task_ctx())?;
        let mut driven = datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder::new(stream.schema(), 2);
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
