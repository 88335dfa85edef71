//! Filter predicates made of plain comparisons, evaluated over whole batches.
//!
//! DataFusion evaluates `a AND b` by short-circuit: when few rows pass `a`,
//! it copies those rows of the whole batch (every column), evaluates `b` on
//! the copy and scatters the answers back row by row. For a chain of cheap
//! comparisons (TPC-H q6's date, discount and quantity ranges; q12's dates
//! and ship modes) that copying and scattering cost more than the
//! comparisons themselves: a quarter of q6's profile. Comparing a column
//! with a constant over a whole batch is a vectorised loop, and combining
//! the answers is a bitwise `AND` of bitmaps.
//!
//! This rule gathers the cheap conjuncts of each filter's predicate into one
//! [`EagerLogic`] node that evaluates all of them over the whole batch and
//! combines them with three-valued logic (the same values as `AND`/`OR`).
//! Other conjuncts (functions, casts, arithmetic, `LIKE`: anything that
//! costs more per row, or could fail on a row the short-circuit would have
//! skipped) stay as they were, after it, and are still short-circuited.
//! A conjunct is cheap only if it compares columns and constants of types
//! whose comparison cannot fail, so evaluating it on more rows changes no
//! outcome.

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::compute::kernels::boolean::{and_kleene, or_kleene};
use arrow::datatypes::{DataType, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result as DfResult, internal_err};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::expressions::{
    BinaryExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, Literal, NotExpr,
};
use datafusion::physical_expr::{PhysicalExpr, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use std::fmt;
use std::sync::Arc;

/// How an [`EagerLogic`] node combines its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Logic {
    And,
    Or,
}

/// `c1 AND c2 AND ...` (or `OR`), every child evaluated over the whole batch.
#[derive(Debug, Eq)]
pub(crate) struct EagerLogic {
    logic: Logic,
    children: Vec<Arc<dyn PhysicalExpr>>,
}

// By hand, as DataFusion's own expressions do (derives trip on `Arc<dyn PhysicalExpr>`).
impl PartialEq for EagerLogic {
    fn eq(&self, other: &Self) -> bool {
        self.logic == other.logic && self.children == other.children
    }
}

impl std::hash::Hash for EagerLogic {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.logic.hash(state);
        self.children.hash(state);
    }
}

impl fmt::Display for EagerLogic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.logic {
            Logic::And => " AND ",
            Logic::Or => " OR ",
        };
        write!(f, "(")?;
        for (i, c) in self.children.iter().enumerate() {
            if i > 0 {
                f.write_str(op)?;
            }
            write!(f, "{c}")?;
        }
        write!(f, ")")
    }
}

impl PhysicalExpr for EagerLogic {
    fn data_type(&self, _input_schema: &Schema) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, input_schema: &Schema) -> DfResult<bool> {
        for c in &self.children {
            if c.nullable(input_schema)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn evaluate(&self, batch: &RecordBatch) -> DfResult<ColumnarValue> {
        let rows = batch.num_rows();
        let mut out: Option<BooleanArray> = None;
        for c in &self.children {
            let value = c.evaluate(batch)?.into_array(rows)?;
            let Some(value) = value.as_any().downcast_ref::<BooleanArray>() else {
                return internal_err!("a condition gave {}, not booleans", value.data_type());
            };
            let next = match (&out, self.logic) {
                (None, _) => value.clone(),
                (Some(acc), Logic::And) => and_kleene(acc, value)?,
                (Some(acc), Logic::Or) => or_kleene(acc, value)?,
            };
            // All false (for AND) or all true (for OR), with no unknowns: no
            // further child can change a row.
            let settled = next.null_count() == 0
                && match self.logic {
                    Logic::And => next.true_count() == 0,
                    Logic::Or => next.true_count() == rows,
                };
            out = Some(next);
            if settled {
                break;
            }
        }
        match out {
            Some(a) => Ok(ColumnarValue::Array(Arc::new(a))),
            None => internal_err!("a condition with no parts"),
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.children.iter().collect()
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> DfResult<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(EagerLogic {
            logic: self.logic,
            children,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Types whose comparisons are a plain loop and cannot fail.
fn plain_type(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(_, v) => plain_type(v),
        t => {
            t.is_primitive()
                || matches!(
                    t,
                    DataType::Boolean
                        | DataType::Utf8
                        | DataType::LargeUtf8
                        | DataType::Utf8View
                        | DataType::Binary
                        | DataType::LargeBinary
                        | DataType::BinaryView
                )
        }
    }
}

/// A column or a constant of a plain type.
fn plain_value(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> bool {
    (e.is::<Column>() || e.is::<Literal>()) && e.data_type(schema).is_ok_and(|t| plain_type(&t))
}

/// The cheap condition `e`, rewritten so its `AND`s and `OR`s are eager;
/// `None` if it is not cheap.
fn cheap(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    if let Some(b) = e.downcast_ref::<BinaryExpr>() {
        return match b.op() {
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom => {
                (plain_value(b.left(), schema) && plain_value(b.right(), schema)).then(|| e.clone())
            }
            Operator::And | Operator::Or => {
                let logic = if *b.op() == Operator::And {
                    Logic::And
                } else {
                    Logic::Or
                };
                let mut children = Vec::new();
                for side in [b.left(), b.right()] {
                    let side = cheap(side, schema)?;
                    // Flatten a chain of the same operator into one node.
                    match side.downcast_ref::<EagerLogic>() {
                        Some(inner) if inner.logic == logic => children.extend(inner.children.iter().cloned()),
                        _ => children.push(side),
                    }
                }
                Some(Arc::new(EagerLogic { logic, children }))
            }
            _ => None,
        };
    }
    if let Some(n) = e.downcast_ref::<NotExpr>() {
        let inner = cheap(n.arg(), schema)?;
        return Some(Arc::new(NotExpr::new(inner)));
    }
    if let Some(n) = e.downcast_ref::<IsNullExpr>() {
        return n.arg().is::<Column>().then(|| e.clone());
    }
    if let Some(n) = e.downcast_ref::<IsNotNullExpr>() {
        return n.arg().is::<Column>().then(|| e.clone());
    }
    if let Some(i) = e.downcast_ref::<InListExpr>() {
        let plain = plain_value(i.expr(), schema) && i.list().iter().all(|v| plain_value(v, schema));
        return plain.then(|| e.clone());
    }
    None
}

/// The predicate with its cheap conjuncts evaluated eagerly, first; `None`
/// if that would change nothing.
fn eager(predicate: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    let mut fast = Vec::new();
    let mut rest = Vec::new();
    let mut rewritten = false;
    for part in split_conjunction(predicate) {
        match cheap(part, schema) {
            Some(c) => {
                rewritten |= c.is::<EagerLogic>();
                match c.downcast_ref::<EagerLogic>() {
                    Some(inner) if inner.logic == Logic::And => fast.extend(inner.children.iter().cloned()),
                    _ => fast.push(c),
                }
            }
            None => rest.push(part.clone()),
        }
    }
    if fast.len() < 2 && !rewritten {
        return None;
    }
    let fast: Arc<dyn PhysicalExpr> = match fast.len() {
        1 => fast.remove(0),
        _ => Arc::new(EagerLogic {
            logic: Logic::And,
            children: fast,
        }),
    };
    Some(
        rest.into_iter()
            .fold(fast, |acc, r| Arc::new(BinaryExpr::new(acc, Operator::And, r))),
    )
}

/// Evaluates the cheap conditions of every filter over whole batches.
#[derive(Debug, Default)]
pub(crate) struct EagerAndRule;

impl PhysicalOptimizerRule for EagerAndRule {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let schema = filter.input().schema();
            let Some(predicate) = eager(filter.predicate(), &schema) else {
                return Ok(Transformed::no(node));
            };
            let rebuilt = FilterExecBuilder::from(filter).with_predicate(predicate).build()?;
            Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "inland_eager_and"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Int64Array, StringArray};
    use arrow::datatypes::Field;
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    fn data() -> DfResult<RecordBatch> {
        let n = 20_000i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("d", DataType::Date32, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        Ok(RecordBatch::try_new(
            schema,
            vec![
                Arc::new((0..n).map(|i| (i % 11 != 0).then_some(i % 97)).collect::<Int64Array>()),
                Arc::new(Date32Array::from_iter_values((0..n).map(|i| (i * 7 % 3650) as i32))),
                Arc::new(
                    (0..n)
                        .map(|i| (i % 13 != 0).then(|| ["MAIL", "SHIP", "AIR", "RAIL"][(i % 4) as usize]))
                        .collect::<StringArray>(),
                ),
            ],
        )?)
    }

    /// How many eager nodes the plan's filters hold.
    fn eager_nodes(plan: &Arc<dyn ExecutionPlan>) -> DfResult<usize> {
        let mut found = 0;
        plan.apply(|node| {
            if let Some(f) = node.downcast_ref::<FilterExec>() {
                f.predicate().apply(|e| {
                    found += usize::from(e.is::<EagerLogic>());
                    Ok(TreeNodeRecursion::Continue)
                })?;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(found)
    }

    #[test]
    fn filters_keep_the_same_rows_with_their_comparisons_evaluated_eagerly() -> DfResult<()> {
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        rt.block_on(async {
            let plain = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
            let ruled = SessionContext::new_with_state(
                SessionStateBuilder::new()
                    .with_config(SessionConfig::new().with_target_partitions(2))
                    .with_default_features()
                    .with_physical_optimizer_rule(Arc::new(EagerAndRule))
                    .build(),
            );
            // Each with whether it gets an eager node: ranges with nulls
            // (a selective first part, as short-circuiting favours), ORs
            // inside, NOT, IS NULL, an IN list, and conditions left alone
            // (arithmetic, LIKE) beside cheap ones.
            let cases = [
                ("a >= 5 AND a < 9 AND d < DATE '1971-01-01' AND s <> 'AIR'", true),
                ("(s = 'MAIL' OR s = 'SHIP' OR s IS NULL) AND a > 90", true),
                ("NOT (a < 3 OR a > 50) AND s IN ('RAIL', 'AIR') AND a IS NOT NULL", true),
                (
                    "a * 2 > 100 AND s LIKE 'M%' AND d > DATE '1975-01-01' AND a <> 60",
                    true,
                ),
                ("a % 5 = 0 AND s LIKE '%A%'", false),
                ("a = 3", false),
            ];
            for (condition, rewritten) in cases {
                let sql = format!("SELECT a, d, s FROM t WHERE {condition} ORDER BY d, a, s");
                let mut results = Vec::new();
                let mut found = Vec::new();
                for ctx in [&plain, &ruled] {
                    if ctx.table_exist("t")? {
                        ctx.deregister_table("t")?;
                    }
                    ctx.register_batch("t", data()?)?;
                    let df = ctx.sql(&sql).await?;
                    found.push(eager_nodes(&df.clone().create_physical_plan().await?)?);
                    results.push(df.collect().await?);
                }
                assert_eq!(found[0], 0, "{condition}");
                assert_eq!(found[1] > 0, rewritten, "{condition}: {found:?}");
                assert_eq!(results[0], results[1], "{condition}");
                let rows: usize = results[1].iter().map(|b| b.num_rows()).sum();
                assert!(rows > 0, "{condition} selects nothing: a weak test");
            }
            Ok(())
        })
    }
}
