//! The noisy release of the `dp` privacy mode: a plan node that takes the
//! exact, bounded figures of one aggregation (per group: capped rows,
//! clamped sums, counts) and gives the job only their noisy versions, in the
//! aggregation's own columns and types. Everything above it in the job's
//! plan (HAVING, ORDER BY, arithmetic, an outer query) works on noisy values:
//! post-processing, which costs no privacy.
//!
//! Group keys: with every key column's published values, every combination
//! is released (empty groups too) and no other; otherwise a group is
//! released only if its noisy row count clears a threshold that a group made
//! by one entity's rows clears with probability below [`KEY_DELTA`].

use crate::guard::NoisyFacts;
use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow::compute::{cast, concat_batches, take};
use arrow::datatypes::{DataType, Decimal128Type, Int64Type, SchemaRef};
use async_trait::async_trait;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchemaRef, DataFusionError, Result as DfResult, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, Partitioning, PhysicalExpr, PlanProperties,
};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};
use futures::TryStreamExt;
use inland_dp::Mechanism;
use inland_gate::{CellFact, MeasureKind, canon};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The node's name in plans.
pub(crate) const NAME: &str = "InlandNoisyRelease";

/// The chance that a group made by one entity's rows alone is released
/// when its key is not from a published list.
pub const KEY_DELTA: f64 = 1e-9;

/// One exact figure per group that gets noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Figure {
    /// Rows after the cap.
    Rows,
    /// Non-null values of an expression.
    Count,
    /// Distinct non-null values of an expression.
    Distinct,
    /// The sum of values clamped to `[low, high]`.
    Sum {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
}

/// One column of the aggregation's result, from the noisy figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Out {
    /// A count: the noisy figure, never below zero.
    Count(usize),
    /// A sum: the noisy figure.
    Sum(usize),
    /// A mean: noisy sum over noisy count, clamped to the bounds, to two decimals.
    Mean {
        /// The sum's figure.
        sum: usize,
        /// The count's figure.
        count: usize,
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
}

/// Which groups are released.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Keys {
    /// No GROUP BY: one group, always.
    Global,
    /// Every combination of the key columns' published values.
    Published(Vec<Vec<String>>),
    /// Groups whose noisy row count clears the threshold.
    Threshold,
}

/// What one noisy release computes, fixed when the query is planned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Release {
    /// Key columns at the front of the input.
    pub(crate) keys: usize,
    /// Which keys are a column's own values, which the gate may trace (a
    /// computed key could carry a number the job chose).
    pub(crate) traced_keys: Vec<bool>,
    /// How groups are chosen.
    pub(crate) groups: Keys,
    /// The input's figures, after its keys; figure 0 is always [`Figure::Rows`].
    pub(crate) figures: Vec<Figure>,
    /// Which figures are released (and so get noise and a share of ρ).
    pub(crate) noised: Vec<bool>,
    /// The aggregation's value columns, after its keys.
    pub(crate) outputs: Vec<Out>,
    /// The most rows of one entity the input holds.
    pub(crate) rows_per_entity: u32,
    /// ρ of the whole query.
    pub(crate) rho: f64,
}

impl Release {
    /// ρ each noised figure spends.
    fn rho_each(&self) -> f64 {
        self.rho / self.noised.iter().filter(|n| **n).count().max(1) as f64
    }

    /// How far one entity can move a figure over all groups (L2, rounded up).
    fn sensitivity(&self, figure: Figure) -> u64 {
        let m = u64::from(self.rows_per_entity);
        match figure {
            Figure::Rows | Figure::Count | Figure::Distinct => m,
            // Whole numbers in [low, high] (the rule floors and ceils the
            // bounds and keeps m·max(|low|, |high|) within 2^52).
            Figure::Sum { low, high } => (m as f64 * low.abs().max(high.abs())).ceil().clamp(1.0, 4.5e15) as u64,
        }
    }

    /// The smallest noisy row count of a released group without a published key.
    fn threshold(&self) -> f64 {
        let sigma = inland_dp::sigma(self.sensitivity(Figure::Rows), self.rho_each());
        f64::from(self.rows_per_entity) + (sigma * (2.0 * (1.0 / KEY_DELTA).ln()).sqrt()).ceil()
    }

    /// The noisy result, in `out`'s columns, from the exact figures.
    // Key column `i` is read from the input, the output and each published combination alike.
    #[allow(clippy::needless_range_loop)]
    pub(crate) fn apply(&self, input: &SchemaRef, batches: &[RecordBatch], out: &SchemaRef) -> DfResult<RecordBatch> {
        let batch = concat_batches(input, batches)?;
        // Exact figures as integers: counts, and sums of whole numbers
        // (a wide decimal, saturated to 64 bits: a 1-Lipschitz map).
        let exact: Vec<Vec<i64>> = (0..self.figures.len())
            .map(|j| {
                let column = batch.column(self.keys + j);
                Ok(match column.as_primitive_opt::<Decimal128Type>() {
                    Some(d) => d
                        .iter()
                        .map(|v| v.unwrap_or(0).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
                        .collect(),
                    None => cast(column, &DataType::Int64)?
                        .as_primitive::<Int64Type>()
                        .iter()
                        .map(|v| v.unwrap_or(0))
                        .collect(),
                })
            })
            .collect::<DfResult<_>>()?;
        // The groups released: a row of the input, or a published key with no rows.
        let (rows, published): (Vec<Option<u32>>, Vec<Vec<String>>) = match &self.groups {
            Keys::Global => (vec![(batch.num_rows() > 0).then_some(0)], Vec::new()),
            Keys::Threshold => ((0..batch.num_rows() as u32).map(Some).collect(), Vec::new()),
            Keys::Published(lists) => {
                let texts: Vec<ArrayRef> = (0..self.keys)
                    .map(|i| cast(batch.column(i), &DataType::Utf8))
                    .collect::<Result<_, _>>()?;
                let mut at: HashMap<Vec<Option<&str>>, u32> = HashMap::new();
                for r in 0..batch.num_rows() {
                    let key = texts
                        .iter()
                        .map(|t| t.as_string::<i32>())
                        .map(|t| t.is_valid(r).then(|| t.value(r)))
                        .collect();
                    at.insert(key, r as u32);
                }
                let combos = product(lists);
                let rows = combos
                    .iter()
                    .map(|combo| {
                        at.get(&combo.iter().map(|v| Some(v.as_str())).collect::<Vec<_>>())
                            .copied()
                    })
                    .collect();
                (rows, combos)
            }
        };
        let rho = self.rho_each();
        let mut noisy: Vec<Vec<f64>> = vec![Vec::with_capacity(rows.len()); self.figures.len()];
        for (j, figure) in self.figures.iter().enumerate() {
            if !self.noised[j] {
                continue;
            }
            let sensitivity = self.sensitivity(*figure);
            for row in &rows {
                let value = row.map(|r| exact[j][r as usize]).unwrap_or(0);
                let drawn = inland_dp::add_noise(value, sensitivity, Mechanism::Gaussian { rho })
                    .map_err(|e| DataFusionError::Execution(format!("noisy release: {e}")))?;
                noisy[j].push(drawn as f64);
            }
        }
        let kept: Vec<usize> = match self.groups {
            Keys::Threshold => {
                let t = self.threshold();
                (0..rows.len()).filter(|&i| noisy[0][i] >= t).collect()
            }
            _ => (0..rows.len()).collect(),
        };
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(out.fields().len());
        for i in 0..self.keys {
            let to = out.field(i).data_type();
            let column = match &self.groups {
                Keys::Published(_) => {
                    let values: StringArray = kept.iter().map(|&g| Some(published[g][i].as_str())).collect();
                    cast(&values, to)?
                }
                _ => {
                    let at: UInt32Array = kept.iter().map(|&g| rows[g]).collect();
                    cast(&take(batch.column(i), &at, None)?, to)?
                }
            };
            columns.push(column);
        }
        for (k, o) in self.outputs.iter().enumerate() {
            let to = out.field(self.keys + k).data_type();
            let column: ArrayRef = match *o {
                Out::Count(j) => Arc::new(
                    kept.iter()
                        .map(|&g| noisy[j][g].max(0.0) as i64)
                        .collect::<Int64Array>(),
                ),
                Out::Sum(j) => Arc::new(kept.iter().map(|&g| noisy[j][g]).collect::<Float64Array>()),
                Out::Mean { sum, count, low, high } => Arc::new(
                    kept.iter()
                        // Two decimals: far finer than the noise, and no long
                        // runs of digits for the identifier check to trip on.
                        .map(|&g| ((noisy[sum][g] / noisy[count][g].max(1.0)).clamp(low, high) * 100.0).round() / 100.0)
                        .collect::<Float64Array>(),
                ),
            };
            columns.push(cast(&column, to)?);
        }
        Ok(RecordBatch::try_new(out.clone(), columns)?)
    }
}

impl Release {
    /// The facts behind each value of a noisy table: its row's keys, and a
    /// kind. Nothing about entities: the values are noisy, and the gate's
    /// exact-cell rules do not apply to them.
    fn facts(&self, noisy: &RecordBatch) -> DfResult<Vec<(String, CellFact)>> {
        let text: Vec<Vec<Option<String>>> = noisy.columns().iter().map(canon::column).collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for r in 0..noisy.num_rows() {
            let keys: Vec<String> = text[..self.keys]
                .iter()
                .zip(&self.traced_keys)
                .filter(|(_, traced)| **traced)
                .filter_map(|(c, _)| c[r].clone())
                .collect();
            for (k, o) in self.outputs.iter().enumerate() {
                let Some(value) = text[self.keys + k][r].clone() else {
                    continue;
                };
                let kind = match o {
                    Out::Count(_) => MeasureKind::Frequency,
                    Out::Sum(_) | Out::Mean { .. } => MeasureKind::Magnitude,
                };
                out.push((
                    value,
                    CellFact {
                        source: format!("dp:{}", noisy.schema().field(self.keys + k).name()),
                        kind,
                        keys: keys.clone(),
                        entities: u64::MAX,
                        contributions: None,
                        sketch: None,
                        at: None,
                    },
                ));
            }
        }
        Ok(out)
    }
}

/// Every combination of one value from each list, in list order.
fn product(lists: &[Vec<String>]) -> Vec<Vec<String>> {
    lists.iter().fold(vec![Vec::new()], |acc, list| {
        acc.iter()
            .flat_map(|prefix| {
                list.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v.clone());
                    next
                })
            })
            .collect()
    })
}

/// The logical node: `input` (the exact figures) released with noise, in
/// the replaced aggregation's schema.
#[derive(Debug, Clone)]
pub(crate) struct NoisyNode {
    pub(crate) input: LogicalPlan,
    pub(crate) schema: DFSchemaRef,
    pub(crate) release: Arc<Release>,
    pub(crate) facts: NoisyFacts,
}

// Two nodes are the same only if they share a release.
impl PartialEq for NoisyNode {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.release, &other.release) && self.input == other.input && self.schema == other.schema
    }
}
impl Eq for NoisyNode {}
impl std::hash::Hash for NoisyNode {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.release) as usize).hash(state);
        self.input.hash(state);
    }
}
impl PartialOrd for NoisyNode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        let at = |n: &Self| Arc::as_ptr(&n.release) as usize;
        match at(self).partial_cmp(&at(other)) {
            Some(std::cmp::Ordering::Equal) => self.input.partial_cmp(&other.input),
            unequal => unequal,
        }
    }
}

impl UserDefinedLogicalNodeCore for NoisyNode {
    fn name(&self) -> &str {
        NAME
    }
    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }
    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }
    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }
    /// Nothing above may move below the noise.
    fn prevent_predicate_push_down_columns(&self) -> std::collections::HashSet<String> {
        self.schema.fields().iter().map(|f| f.name().clone()).collect()
    }
    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{NAME}: rho={}", self.release.rho)
    }
    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> DfResult<Self> {
        let Ok([input]) = <[LogicalPlan; 1]>::try_from(inputs) else {
            return internal_err!("{NAME} takes one input");
        };
        Ok(Self {
            input,
            schema: self.schema.clone(),
            release: self.release.clone(),
            facts: self.facts.clone(),
        })
    }
}

/// Plans [`NoisyNode`]: its input gathered into one partition.
pub(crate) struct NoisyPlanner;

#[async_trait]
impl ExtensionPlanner for NoisyPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn datafusion::catalog::Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<NoisyNode>() else {
            return Ok(None);
        };
        let [input] = physical_inputs else {
            return internal_err!("{NAME} takes one input");
        };
        let schema: SchemaRef = Arc::new(node.schema.as_arrow().clone());
        Ok(Some(Arc::new(NoisyExec::new(
            Arc::new(CoalescePartitionsExec::new(input.clone())),
            schema,
            node.release.clone(),
            node.facts.clone(),
        ))))
    }
}

/// The physical node: reads every exact figure, then emits the noisy table.
#[derive(Debug)]
pub(crate) struct NoisyExec {
    input: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    release: Arc<Release>,
    facts: NoisyFacts,
    properties: Arc<PlanProperties>,
}

impl NoisyExec {
    fn new(input: Arc<dyn ExecutionPlan>, schema: SchemaRef, release: Arc<Release>, facts: NoisyFacts) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        NoisyExec {
            input,
            schema,
            release,
            facts,
            properties,
        }
    }
}

impl DisplayAs for NoisyExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "InlandNoisyReleaseExec: rho={}", self.release.rho)
    }
}

impl ExecutionPlan for NoisyExec {
    fn name(&self) -> &str {
        "InlandNoisyReleaseExec"
    }
    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }
    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }
    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        let Ok([input]) = <[Arc<dyn ExecutionPlan>; 1]>::try_from(children) else {
            return internal_err!("{NAME} takes one input");
        };
        Ok(Arc::new(NoisyExec::new(
            input,
            self.schema.clone(),
            self.release.clone(),
            self.facts.clone(),
        )))
    }
    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("{NAME} has one partition");
        }
        // Every partition of the input, whatever the optimizer made of it.
        let inputs = (0..self.input.properties().output_partitioning().partition_count())
            .map(|p| self.input.execute(p, context.clone()))
            .collect::<DfResult<Vec<_>>>()?;
        let (in_schema, out, release) = (self.input.schema(), self.schema.clone(), self.release.clone());
        let facts = self.facts.clone();
        let released = futures::stream::once(async move {
            let mut batches: Vec<RecordBatch> = Vec::new();
            for input in inputs {
                batches.extend(input.try_collect::<Vec<_>>().await?);
            }
            let noisy = release.apply(&in_schema, &batches, &out)?;
            facts.extend(release.facts(&noisy)?);
            Ok(noisy)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), released)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Float64Type;
    use arrow::datatypes::{Field, Schema};

    fn exact(keys: Vec<&str>, rows: Vec<i64>, sums: Vec<f64>) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("rows", DataType::Int64, false),
            Field::new("s", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(Int64Array::from(rows)),
                Arc::new(Float64Array::from(sums)),
            ],
        )
        .unwrap();
        (schema, batch)
    }

    fn out() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("district", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("mean", DataType::Float64, true),
        ]))
    }

    fn release(groups: Keys) -> Release {
        Release {
            keys: 1,
            traced_keys: vec![true],
            groups,
            figures: vec![Figure::Rows, Figure::Sum { low: 0.0, high: 100.0 }],
            noised: vec![true, true],
            outputs: vec![
                Out::Count(0),
                Out::Mean {
                    sum: 1,
                    count: 0,
                    low: 0.0,
                    high: 100.0,
                },
            ],
            rows_per_entity: 1,
            rho: 0.5,
        }
    }

    #[test]
    fn published_keys_are_all_released_and_no_others() {
        let (schema, batch) = exact(vec!["a", "zz-not-published"], vec![40, 1], vec![2000.0, 99.0]);
        let r = release(Keys::Published(vec![vec!["a".into(), "b".into(), "c".into()]]));
        let got = r.apply(&schema, &[batch], &out()).unwrap();
        let keys: Vec<&str> = got.column(0).as_string::<i32>().iter().flatten().collect();
        assert_eq!(keys, ["a", "b", "c"], "every published key, in order, and nothing else");
        // Means stay within the bounds, even for empty groups.
        let means = got.column(2).as_primitive::<Float64Type>();
        assert!(means.iter().flatten().all(|m| (0.0..=100.0).contains(&m)));
        let counts = got.column(1).as_primitive::<arrow::datatypes::Int64Type>();
        assert!(counts.iter().flatten().all(|n| n >= 0), "counts are never negative");
    }

    #[test]
    fn unpublished_keys_need_a_noisy_count_over_the_threshold() {
        let r = release(Keys::Threshold);
        let t = r.threshold();
        // ρ = 0.5 over two figures, Δ = 1: σ = 1/√0.5 ≈ 1.414, and
        // √(2 ln 1e9) ≈ 6.44, so the threshold is 1 + ⌈9.11⌉ = 11.
        assert_eq!(t, 11.0);
        let (schema, batch) = exact(vec!["big", "one-person"], vec![100_000, 1], vec![0.0, 0.0]);
        let got = r.apply(&schema, &[batch], &out()).unwrap();
        let keys: Vec<&str> = got.column(0).as_string::<i32>().iter().flatten().collect();
        // A group of one entity passes with probability below 1e-9; one of 100,000 always.
        assert_eq!(keys, ["big"]);
    }

    /// Over 20,000 releases of one group, the spread of each released
    /// figure is the σ its sensitivity and share of ρ imply (within 5%: the
    /// sample deviation's standard error is 0.5%, so the bound is 10 of them).
    #[test]
    fn count_sum_and_mean_have_the_configured_noise() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("rows", DataType::Int64, false),
            Field::new("s", DataType::Float64, true),
            Field::new("c", DataType::Int64, true),
        ]));
        let (n, s) = (10_000.0, 10_000.0 * 50.0);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![n as i64])),
                Arc::new(Float64Array::from(vec![s])),
                Arc::new(Int64Array::from(vec![n as i64])),
            ],
        )
        .unwrap();
        let out = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("total", DataType::Float64, true),
            Field::new("mean", DataType::Float64, true),
        ]));
        let r = Release {
            keys: 0,
            traced_keys: vec![],
            groups: Keys::Global,
            figures: vec![Figure::Rows, Figure::Sum { low: 0.0, high: 100.0 }, Figure::Count],
            noised: vec![true, true, true],
            outputs: vec![
                Out::Count(0),
                Out::Sum(1),
                Out::Mean {
                    sum: 1,
                    count: 2,
                    low: 0.0,
                    high: 100.0,
                },
            ],
            rows_per_entity: 2,
            rho: 0.3,
        };
        let runs = 20_000;
        let (mut sq_n, mut sq_s, mut sq_m) = (0.0, 0.0, 0.0);
        let (mut sum_n, mut sum_s) = (0.0, 0.0);
        for _ in 0..runs {
            let got = r.apply(&schema, std::slice::from_ref(&batch), &out).unwrap();
            let noisy_n = got.column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0) as f64;
            let noisy_s = got.column(1).as_primitive::<Float64Type>().value(0);
            let noisy_m = got.column(2).as_primitive::<Float64Type>().value(0);
            sq_n += (noisy_n - n).powi(2);
            sq_s += (noisy_s - s).powi(2);
            sq_m += (noisy_m - s / n).powi(2);
            sum_n += noisy_n - n;
            sum_s += noisy_s - s;
        }
        let sd = |sq: f64| (sq / runs as f64).sqrt();
        // Three figures share ρ = 0.3; two rows per entity; values in [0, 100].
        let rho = 0.1;
        let sigma_n = inland_dp::sigma(2, rho);
        let sigma_s = inland_dp::sigma(2 * 100 + 1, rho);
        assert!(
            (sd(sq_n) / sigma_n - 1.0).abs() < 0.05,
            "count sd {} vs σ {sigma_n}",
            sd(sq_n)
        );
        assert!(
            (sd(sq_s) / sigma_s - 1.0).abs() < 0.05,
            "sum sd {} vs σ {sigma_s}",
            sd(sq_s)
        );
        // Unbiased: the mean error is within 7 standard errors of 0.
        assert!((sum_n / runs as f64).abs() < 7.0 * sigma_n / (runs as f64).sqrt());
        assert!((sum_s / runs as f64).abs() < 7.0 * sigma_s / (runs as f64).sqrt());
        // The mean's error, by the delta method: √(σ_s² + mean² σ_c²) / n.
        let sigma_m = (sigma_s.powi(2) + (s / n).powi(2) * sigma_n.powi(2)).sqrt() / n;
        assert!(
            (sd(sq_m) / sigma_m - 1.0).abs() < 0.1,
            "mean sd {} vs {sigma_m}",
            sd(sq_m)
        );
    }

    #[test]
    fn combinations_follow_list_order() {
        let lists = vec![vec!["a".to_string(), "b".into()], vec!["1".into(), "2".into()]];
        assert_eq!(
            product(&lists),
            [["a", "1"], ["a", "2"], ["b", "1"], ["b", "2"]].map(|p| p.map(String::from).to_vec())
        );
    }
}
