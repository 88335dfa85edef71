//! The seam where domain policy sits: a guard checks (and may rewrite) every
//! plan; its refusals are typed and never quote data.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use inland_policies::policy::{Access, ColumnClass, MaskMethod};
use inland_policies::{Label, Policy};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::cell::CellPlan;
use crate::source::DatasetSource;

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

/// An error raised while a query ran over the data, kept apart from what
/// the job is told: DataFusion's and Arrow's messages quote the values they
/// failed on ("11496.48 is too large to store in a Decimal128 of precision
/// 5"), so the job gets only the kind of failure. The original stays with the
/// host, to be sealed for reviewers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    /// What the job is told: no value from the data.
    pub shown: QueryError,
    /// The engine's own message, which may quote data.
    pub original: String,
}

impl RunError {
    /// Classifies an execution error without keeping its message for the job.
    pub fn from_execution(e: &DataFusionError) -> RunError {
        RunError {
            shown: shown_run_error(e),
            original: e.to_string(),
        }
    }
}

impl RunError {
    /// A failure of the host's own handling of a result (not of the job's SQL).
    pub fn internal(e: impl std::fmt::Display) -> RunError {
        RunError {
            shown: QueryError::Internal("the host failed while it handled the query's result".into()),
            original: e.to_string(),
        }
    }
}

impl From<QueryError> for RunError {
    /// A host error from recording facts: its text names no value, but it is sealed all the same.
    fn from(e: QueryError) -> Self {
        RunError::internal(e)
    }
}

impl From<DataFusionError> for RunError {
    fn from(e: DataFusionError) -> Self {
        RunError::from_execution(&e)
    }
}

fn shown_run_error(e: &DataFusionError) -> QueryError {
    use datafusion::arrow::error::ArrowError;
    let kind = match e {
        DataFusionError::ResourcesExhausted(_) => {
            return QueryError::Limit("query memory: the query needed more than the domain's query pool allows".into());
        }
        DataFusionError::Context(_, inner) => return shown_run_error(inner),
        DataFusionError::Shared(inner) => return shown_run_error(inner),
        DataFusionError::ArrowError(a, _) => match a.as_ref() {
            ArrowError::CastError(_) => "a value could not be cast to the type asked for",
            ArrowError::ArithmeticOverflow(_) => "a value does not fit the type asked for (overflow)",
            ArrowError::DivideByZero => "division by zero",
            ArrowError::InvalidArgumentError(_) => "a function was given a value it does not accept",
            ArrowError::ComputeError(_) => "a computation over the data failed",
            _ => "the engine failed while reading or computing over the data",
        },
        DataFusionError::Execution(_) => "a computation over the data failed",
        DataFusionError::Internal(_) => {
            return QueryError::Internal("the engine failed while the query ran (a bug in Inland)".into());
        }
        _ => "the query failed while it ran over the data",
    };
    QueryError::Invalid(format!(
        "{kind}; the engine's message quotes the data, so it is kept sealed for the reviewers"
    ))
}

/// What a job's query may touch: the datasets visible to it, and the rules
/// of the policy in force.
#[derive(Debug, Clone, Default)]
pub struct QueryScope {
    /// Names of the datasets this job may read.
    pub datasets: BTreeSet<String>,
    /// Datasets under a policy, with their aggregate-only columns.
    pub protected: BTreeMap<String, BTreeSet<String>>,
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
    pub key_only: BTreeMap<String, BTreeSet<String>>,
    /// Column classes under the policy: dataset → column → class.
    pub classes: BTreeMap<String, BTreeMap<String, ColumnClass>>,
    /// Entity columns under the policy whose visible values tell entities
    /// apart: dataset → (column, whether jobs see it pseudonymised).
    pub entities: BTreeMap<String, (String, bool)>,
    /// Protected datasets whose entity column was proven unique and never null
    /// at registration: a group's entities can be counted by counting its rows.
    pub unique_entities: BTreeSet<String>,
    /// Columns registration proved unique and never null, per dataset: a
    /// lookup joined to a protected dataset on one of them cannot repeat a
    /// protected row.
    pub unique_columns: BTreeMap<String, BTreeSet<String>>,
    /// The grant's `dp` privacy mode, when it has chosen it.
    pub dp: Option<DpScope>,
    /// Clamping bounds for noisy sums: (dataset, column) → [low, high].
    pub dp_bounds: BTreeMap<(String, String), [f64; 2]>,
    /// Published values of group columns: (dataset, column) → values.
    pub public_values: BTreeMap<(String, String), Vec<String>>,
    /// The most rows per entity a noisy aggregate counts, per dataset.
    pub max_rows_per_entity: BTreeMap<String, u32>,
}

/// The `dp` privacy mode as the query path needs it: what a query costs,
/// and the secret that keys which of an entity's rows beyond the cap count.
#[derive(Debug, Clone)]
pub struct DpScope {
    /// ρ (zCDP) each query over protected data costs.
    pub rho_per_query: f64,
    /// Keys the choice of rows; never shown.
    pub row_key: String,
}

/// What a query's noisy release costs, known before it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyCost {
    /// ρ (zCDP).
    pub rho: f64,
    /// The protected datasets it reads.
    pub datasets: Vec<String>,
    /// The δ its choice of groups adds: a group that one entity's rows
    /// alone make may pass the threshold (0 with published keys).
    pub delta: f64,
    /// The values the release gave, recorded as it runs, so the gate can
    /// tell them from numbers the job made up.
    pub facts: NoisyFacts,
}

/// The facts behind the values of one noisy release, filled when it runs.
#[derive(Debug, Clone, Default)]
pub struct NoisyFacts(Arc<std::sync::Mutex<Vec<(String, inland_gate::CellFact)>>>);

// Two are the same only if they are one.
impl PartialEq for NoisyFacts {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl NoisyFacts {
    /// Takes what has been recorded.
    pub fn take(&self) -> Vec<(String, inland_gate::CellFact)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn extend(&self, facts: Vec<(String, inland_gate::CellFact)>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend(facts);
    }
}

impl QueryScope {
    /// The scope of a job that may read `datasets`, under the policy in force if any.
    pub fn under(policy: Option<&Policy>, datasets: impl IntoIterator<Item = String>) -> QueryScope {
        let mut scope = QueryScope {
            datasets: datasets.into_iter().collect(),
            ..Default::default()
        };
        let Some(p) = policy else { return scope };
        scope.allowed_aggregates = p.domain.allowed_aggregates.get_ref().clone();
        scope.min_group_size = *p.domain.min_group_size.get_ref();
        for (name, d) in &p.datasets {
            let dataset = name.get_ref();
            if let Some(m) = &d.max_rows_per_entity {
                scope.max_rows_per_entity.insert(dataset.clone(), *m.get_ref());
            }
            for (column, cp) in &d.columns {
                let key = (dataset.clone(), column.get_ref().clone());
                if let Some(b) = cp.get_ref().dp_bounds {
                    scope.dp_bounds.insert(key.clone(), b);
                }
                if let Some(v) = &cp.get_ref().public_values {
                    scope.public_values.insert(key, v.clone());
                }
            }
            let classes = d
                .columns
                .iter()
                .map(|(c, cp)| (c.get_ref().clone(), cp.get_ref().class))
                .collect();
            scope.classes.insert(name.get_ref().clone(), classes);
        }
        for name in scope.datasets.clone() {
            let ao: BTreeSet<String> = p.aggregate_only(&name).into_iter().map(str::to_string).collect();
            if p.unrestricted(&name) {
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
    /// [`DatasetSource::unique_columns`]), so suppression can count rows.
    pub fn with_unique_entities(mut self, policy: Option<&Policy>, datasets: &[DatasetSource]) -> Self {
        // Proven on the stored values: a column stays unique for a job only
        // where the policy shows it as stored (or as an injective pseudonym);
        // a redaction or a bucket merges values.
        let shown_as_stored = |dataset: &str, column: &str| match policy {
            None => true,
            Some(p) => p.column(dataset, column).is_some_and(|c| {
                matches!(
                    c.access,
                    Access::Plaintext
                        | Access::Dimension
                        | Access::JoinKeyOnly
                        | Access::Mask {
                            method: MaskMethod::Pseudonym
                        }
                )
            }),
        };
        self.unique_columns = datasets
            .iter()
            .map(|d| {
                let unique = d
                    .unique_columns
                    .iter()
                    .filter(|c| shown_as_stored(&d.name, c))
                    .cloned()
                    .collect();
                (d.name.clone(), unique)
            })
            .collect();
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
    pub fn class(&self, dataset: &str, column: &str) -> Option<ColumnClass> {
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
    pub suppressed: Option<Arc<AtomicU64>>,
    /// How the host records per-cell facts for the gate from this result.
    pub cells: Option<CellPlan>,
    /// The result's label and why, when the guard decides it.
    pub label: Option<(Label, String)>,
    /// What the query's noisy release costs, in the `dp` mode.
    pub privacy: Option<PrivacyCost>,
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
            privacy: None,
        }
    }

    /// The plan with the label the guard decided.
    pub fn labelled(plan: LogicalPlan, label: (Label, String)) -> Guarded {
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
    fn check(&self, plan: LogicalPlan, scope: &QueryScope) -> Result<Guarded, QueryError>;
}

/// Read-only: the plan may only read the job's visible datasets. DDL, DML,
/// COPY, SET, EXPLAIN, prepared statements and table functions are refused.
pub struct ReadOnlyGuard;

impl QueryGuard for ReadOnlyGuard {
    fn name(&self) -> &'static str {
        "read-only"
    }

    fn check(&self, plan: LogicalPlan, scope: &QueryScope) -> Result<Guarded, QueryError> {
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
