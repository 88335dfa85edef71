//! Decimal arithmetic without a per-value overflow check where none can
//! overflow. Arrow adds, subtracts and multiplies `Decimal128` values with
//! checked 128-bit operations, one call per value, which cannot be
//! vectorised: in TPC-H Q1 (`price * (1 - discount) * (1 + tax)`) they were
//! a fifth of the query. When every value of both sides fits in 64 bits (the
//! case for any decimal of up to 18 digits, which is what prices and rates
//! are), no product, and no sum of values rescaled by at most 10^18, can leave
//! 128 bits, so the unchecked result is exact and is the one Arrow would
//! give. Anything else takes Arrow's path, errors included.
//!
//! The rewrite is a physical optimizer rule, so plans, column names and
//! results are unchanged; only the kernel differs.

use arrow::array::{ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{DataType, Decimal128Type, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::projection::ProjectionExec;
use std::fmt;
use std::sync::Arc;

/// The operations rewritten, with Arrow's result types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Add,
    Sub,
    Mul,
}

impl Op {
    fn of(op: &Operator) -> Option<Op> {
        match op {
            Operator::Plus => Some(Op::Add),
            Operator::Minus => Some(Op::Sub),
            Operator::Multiply => Some(Op::Mul),
            _ => None,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
        }
    }
}

/// `left op right` over two `Decimal128` operands (columns or scalars), with
/// the result type Arrow gives.
#[derive(Debug, Eq)]
pub(crate) struct DecimalArith {
    left: Arc<dyn PhysicalExpr>,
    right: Arc<dyn PhysicalExpr>,
    op: Op,
    /// What each side is multiplied by to reach the result scale (1 for a product).
    factors: (i64, i64),
    precision: u8,
    scale: i8,
}

// By hand, as DataFusion's own expressions do (derives trip on `Arc<dyn PhysicalExpr>`).
impl PartialEq for DecimalArith {
    fn eq(&self, other: &Self) -> bool {
        self.left.eq(&other.left)
            && self.right.eq(&other.right)
            && self.op == other.op
            && self.factors == other.factors
            && self.precision == other.precision
            && self.scale == other.scale
    }
}

impl std::hash::Hash for DecimalArith {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.left.hash(state);
        self.right.hash(state);
        self.op.hash(state);
        self.factors.hash(state);
        self.precision.hash(state);
        self.scale.hash(state);
    }
}

/// `10^exp` if it is at most 10^18, so that a 64-bit value times it stays
/// within 2^123.
fn factor(exp: i16) -> Option<i64> {
    u32::try_from(exp).ok().filter(|e| *e <= 18).map(|e| 10_i64.pow(e))
}

impl DecimalArith {
    /// `left op right` if both are `Decimal128` under `schema` and the
    /// rescaling is one the unchecked path covers; otherwise `None`.
    fn of(
        left: &Arc<dyn PhysicalExpr>,
        op: Op,
        right: &Arc<dyn PhysicalExpr>,
        schema: &Schema,
    ) -> Option<DecimalArith> {
        let (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) =
            (left.data_type(schema).ok()?, right.data_type(schema).ok()?)
        else {
            return None;
        };
        let (precision, scale, factors) = match op {
            Op::Mul => {
                let scale = s1.checked_add(s2).filter(|s| (0..=38).contains(s))?;
                (p1.saturating_add(p2).saturating_add(1).min(38), scale, (1, 1))
            }
            Op::Add | Op::Sub => {
                let scale = s1.max(s2);
                let digits = (i16::from(p1) - i16::from(s1)).max(i16::from(p2) - i16::from(s2));
                let precision = u8::try_from((digits + i16::from(scale) + 1).clamp(1, 38)).ok()?;
                let factors = (
                    factor(i16::from(scale) - i16::from(s1))?,
                    factor(i16::from(scale) - i16::from(s2))?,
                );
                (precision, scale, factors)
            }
        };
        Some(DecimalArith {
            left: left.clone(),
            right: right.clone(),
            op,
            factors,
            precision,
            scale,
        })
    }

    /// The result by unchecked arithmetic, if no value can overflow it.
    fn exact(&self, l: &ColumnarValue, r: &ColumnarValue) -> DfResult<Option<ArrayRef>> {
        let (lf, rf) = self.factors;
        // Every operand fits in 64 bits and every factor is at most 10^18, so
        // each product is below 2^126 and each sum of two rescaled values
        // below 2^124: the wrapping operations below never wrap. Operands are
        // widened inside each closure so that every product is one
        // 64×64→128-bit multiply.
        let out: PrimitiveArray<Decimal128Type> = match (l, r) {
            (ColumnarValue::Array(a), ColumnarValue::Array(b)) => {
                let (Some(a), Some(b)) = (
                    a.as_primitive_opt::<Decimal128Type>(),
                    b.as_primitive_opt::<Decimal128Type>(),
                ) else {
                    return Ok(None);
                };
                if a.len() != b.len() || !fits_i64(a) || !fits_i64(b) {
                    return Ok(None);
                }
                match self.op {
                    Op::Mul => arrow::compute::binary(a, b, |x, y| wide(x).wrapping_mul(wide(y)))?,
                    Op::Add => arrow::compute::binary(a, b, |x, y| scaled(x, lf).wrapping_add(scaled(y, rf)))?,
                    Op::Sub => arrow::compute::binary(a, b, |x, y| scaled(x, lf).wrapping_sub(scaled(y, rf)))?,
                }
            }
            (ColumnarValue::Scalar(ScalarValue::Decimal128(Some(x), ..)), ColumnarValue::Array(b)) => {
                let Some(b) = beside_scalar(b, *x) else {
                    return Ok(None);
                };
                let x64 = *x as i64;
                let xs = scaled(*x, lf);
                match self.op {
                    Op::Mul => b.unary(|y| wide(y).wrapping_mul(i128::from(x64))),
                    Op::Add => b.unary(|y| xs.wrapping_add(scaled(y, rf))),
                    Op::Sub => b.unary(|y| xs.wrapping_sub(scaled(y, rf))),
                }
            }
            (ColumnarValue::Array(a), ColumnarValue::Scalar(ScalarValue::Decimal128(Some(y), ..))) => {
                let Some(a) = beside_scalar(a, *y) else {
                    return Ok(None);
                };
                let y64 = *y as i64;
                let ys = scaled(*y, rf);
                match self.op {
                    Op::Mul => a.unary(|x| wide(x).wrapping_mul(i128::from(y64))),
                    Op::Add => a.unary(|x| scaled(x, lf).wrapping_add(ys)),
                    Op::Sub => a.unary(|x| scaled(x, lf).wrapping_sub(ys)),
                }
            }
            // Two scalars, or a null scalar: Arrow's path.
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(
            out.with_precision_and_scale(self.precision, self.scale)?,
        )))
    }
}

/// The value lies in the 64-bit range.
fn fits(v: i128) -> bool {
    i128::from(v as i64) == v
}

/// Every value (null slots included) lies in the 64-bit range.
fn fits_i64(a: &PrimitiveArray<Decimal128Type>) -> bool {
    a.values().iter().fold(true, |ok, v| ok & fits(*v))
}

/// The array side of an operation with scalar `s`, if both fit the unchecked path.
fn beside_scalar(a: &ArrayRef, s: i128) -> Option<&PrimitiveArray<Decimal128Type>> {
    a.as_primitive_opt::<Decimal128Type>()
        .filter(|a| fits(s) && fits_i64(a))
}

/// A value known to fit in 64 bits, widened so that the compiler multiplies
/// it with one 64×64→128-bit instruction.
#[inline(always)]
fn wide(v: i128) -> i128 {
    i128::from(v as i64)
}

/// A value known to fit in 64 bits, brought to the result scale.
#[inline(always)]
fn scaled(v: i128, factor: i64) -> i128 {
    if factor == 1 {
        v
    } else {
        wide(v).wrapping_mul(i128::from(factor))
    }
}

impl PhysicalExpr for DecimalArith {
    fn data_type(&self, _input_schema: &Schema) -> DfResult<DataType> {
        Ok(DataType::Decimal128(self.precision, self.scale))
    }

    fn nullable(&self, input_schema: &Schema) -> DfResult<bool> {
        Ok(self.left.nullable(input_schema)? || self.right.nullable(input_schema)?)
    }

    fn evaluate(&self, batch: &RecordBatch) -> DfResult<ColumnarValue> {
        let l = self.left.evaluate(batch)?;
        let r = self.right.evaluate(batch)?;
        if let Some(out) = self.exact(&l, &r)? {
            return Ok(ColumnarValue::Array(out));
        }
        // A value past 64 bits, or no array side: DataFusion's own kernels.
        use arrow::compute::kernels::numeric;
        let kernel = match self.op {
            Op::Add => numeric::add,
            Op::Sub => numeric::sub,
            Op::Mul => numeric::mul,
        };
        datafusion::physical_expr_common::datum::apply(&l, &r, kernel)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.left, &self.right]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> DfResult<Arc<dyn PhysicalExpr>> {
        let [left, right] = <[_; 2]>::try_from(children).map_err(|c| {
            datafusion::error::DataFusionError::Internal(format!("{} children for a decimal operation", c.len()))
        })?;
        Ok(Arc::new(DecimalArith {
            left,
            right,
            op: self.op,
            factors: self.factors,
            precision: self.precision,
            scale: self.scale,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(")?;
        self.left.fmt_sql(f)?;
        write!(f, " {} ", self.op.symbol())?;
        self.right.fmt_sql(f)?;
        write!(f, ")")
    }
}

impl fmt::Display for DecimalArith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.left, self.op.symbol(), self.right)
    }
}

/// Replaces decimal additions, subtractions and multiplications in `expr`
/// (evaluated against `schema`).
fn rewrite_expr(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> DfResult<Transformed<Arc<dyn PhysicalExpr>>> {
    expr.clone().transform_up(|e| {
        let Some(b) = e.downcast_ref::<BinaryExpr>() else {
            return Ok(Transformed::no(e));
        };
        let Some(op) = Op::of(b.op()) else {
            return Ok(Transformed::no(e));
        };
        match DecimalArith::of(b.left(), op, b.right(), schema) {
            // Only where the type is what the plan expects, so nothing above changes.
            Some(d) if d.data_type(schema).ok() == e.data_type(schema).ok() => {
                Ok(Transformed::yes(Arc::new(d) as Arc<dyn PhysicalExpr>))
            }
            _ => Ok(Transformed::no(e)),
        }
    })
}

/// The physical optimizer rule that puts [`DecimalArith`] in projections
/// and aggregate arguments.
#[derive(Debug, Default)]
pub(crate) struct DecimalArithRule;

impl PhysicalOptimizerRule for DecimalArithRule {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(p) = node.downcast_ref::<ProjectionExec>() {
                let schema = p.input().schema();
                let mut changed = false;
                let mut exprs = Vec::with_capacity(p.expr().len());
                for pe in p.expr() {
                    let t = rewrite_expr(&pe.expr, &schema)?;
                    changed |= t.transformed;
                    exprs.push(ProjectionExpr {
                        expr: t.data,
                        alias: pe.alias.clone(),
                    });
                }
                if !changed {
                    return Ok(Transformed::no(node));
                }
                let rewritten = ProjectionExec::try_new(exprs, p.input().clone())?;
                return Ok(Transformed::yes(Arc::new(rewritten) as Arc<dyn ExecutionPlan>));
            }
            if let Some(a) = node.downcast_ref::<AggregateExec>() {
                let schema = a.input_schema();
                let mut changed = false;
                let mut aggrs = Vec::with_capacity(a.aggr_expr().len());
                for agg in a.aggr_expr() {
                    let all = agg.all_expressions();
                    let mut args = Vec::with_capacity(all.args.len());
                    let mut this = false;
                    for arg in &all.args {
                        let t = rewrite_expr(arg, &schema)?;
                        this |= t.transformed;
                        args.push(t.data);
                    }
                    match this
                        .then(|| agg.with_new_expressions(args, all.order_by_exprs))
                        .flatten()
                    {
                        Some(new) => {
                            changed = true;
                            aggrs.push(Arc::new(new));
                        }
                        None => aggrs.push(agg.clone()),
                    }
                }
                if !changed {
                    return Ok(Transformed::no(node));
                }
                return Ok(Transformed::yes(
                    Arc::new(a.with_new_aggr_exprs(aggrs)) as Arc<dyn ExecutionPlan>
                ));
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "inland_decimal_arith"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Decimal128Array};
    use arrow::datatypes::Field;
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::physical_expr::expressions::{col, lit};

    fn batch(a: Vec<Option<i128>>, b: Vec<Option<i128>>) -> DfResult<RecordBatch> {
        // Different scales, so that sums rescale one side.
        let a = Decimal128Array::from(a).with_precision_and_scale(15, 2)?;
        let b = Decimal128Array::from(b).with_precision_and_scale(16, 4)?;
        let schema = Schema::new(vec![
            Field::new("a", a.data_type().clone(), true),
            Field::new("b", b.data_type().clone(), true),
        ]);
        Ok(RecordBatch::try_new(Arc::new(schema), vec![Arc::new(a), Arc::new(b)])?)
    }

    /// DataFusion's own `left op right` and the rewritten one, on one batch.
    fn both(
        batch: &RecordBatch,
        left: &Arc<dyn PhysicalExpr>,
        op: Operator,
        right: &Arc<dyn PhysicalExpr>,
    ) -> DfResult<(DfResult<ArrayRef>, DfResult<ArrayRef>)> {
        let schema = batch.schema();
        let theirs = BinaryExpr::new(left.clone(), op, right.clone());
        let ours = Op::of(&op)
            .and_then(|o| DecimalArith::of(left, o, right, &schema))
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("decimal operands not recognised".into()))?;
        assert_eq!(ours.data_type(&schema)?, theirs.data_type(&schema)?, "{op}");
        let run = |e: &dyn PhysicalExpr| e.evaluate(batch).and_then(|v| v.into_array(batch.num_rows()));
        Ok((run(&theirs), run(&ours)))
    }

    type Operand = Arc<dyn PhysicalExpr>;

    const OPS: [Operator; 3] = [Operator::Plus, Operator::Minus, Operator::Multiply];

    /// Columns `a` and `b`, and decimal literals at other scales: each side
    /// of some pair is the one rescaled.
    fn operands(schema: &Schema) -> DfResult<Vec<(Operand, Operand)>> {
        let (a, b) = (col("a", schema)?, col("b", schema)?);
        let one = lit(ScalarValue::Decimal128(Some(1), 20, 0));
        let rate = lit(ScalarValue::Decimal128(Some(-1234), 10, 3));
        Ok(vec![
            (a.clone(), b.clone()),
            (b.clone(), a.clone()),
            (one.clone(), b.clone()),
            (a.clone(), one),
            (rate.clone(), a.clone()),
            (a.clone(), rate.clone()),
            (rate.clone(), b.clone()),
            (b, rate),
        ])
    }

    #[test]
    fn equals_datafusions_arithmetic_with_nulls_signs_scales_and_scalars() -> DfResult<()> {
        let mut next = crate::test_rng(0x2545_f491_4f6c_dd1d);
        let mut a = Vec::new();
        let mut b = Vec::new();
        for i in 0..5000 {
            let v = (next() % 10_000_000_000_000) as i128 - 5_000_000_000_000;
            a.push((i % 17 != 0).then_some(v));
            b.push((i % 23 != 0).then_some((next() % 2_000_000) as i128 - 1_000_000));
        }
        let data = batch(a.clone(), b.clone())?;
        let mut compared = 0;
        for op in OPS {
            for (l, r) in operands(&data.schema())? {
                let (theirs, ours) = both(&data, &l, op, &r)?;
                assert_eq!(&ours?, &theirs?, "{l} {op} {r}");
                compared += 1;
            }
        }
        assert_eq!(compared, 24);

        // A value past 64 bits takes DataFusion's path and still agrees.
        a[3] = Some(1_i128 << 70);
        let data = batch(a, b)?;
        for op in OPS {
            for (l, r) in operands(&data.schema())? {
                let (theirs, ours) = both(&data, &l, op, &r)?;
                assert_eq!(&ours?, &theirs?, "{l} {op} {r}");
            }
        }
        Ok(())
    }

    #[test]
    fn an_overflow_past_128_bits_is_an_error_on_both_paths() -> DfResult<()> {
        let data = batch(vec![Some(i128::MAX / 2)], vec![Some(i128::MAX / 2)])?;
        let schema = data.schema();
        let (a, b) = (col("a", &schema)?, col("b", &schema)?);
        for op in OPS {
            // b is rescaled by 100 to meet a, or multiplied: both overflow.
            let (theirs, ours) = both(&data, &b, op, &a)?;
            assert!(theirs.is_err() && ours.is_err(), "{op}: {theirs:?} {ours:?}");
        }
        Ok(())
    }

    #[test]
    fn the_rule_rewrites_projections_and_aggregate_arguments_and_keeps_results() -> DfResult<()> {
        use datafusion::prelude::{SessionConfig, SessionContext};
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        rt.block_on(async {
            let data = batch(
                (0..1000).map(|i| Some(i * 37 - 9000)).collect(),
                (0..1000).map(|i| (i % 7 != 0).then_some(i % 90)).collect(),
            )?;
            let plain = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
            let state = datafusion::execution::SessionStateBuilder::new()
                .with_config(SessionConfig::new().with_target_partitions(2))
                .with_default_features()
                .with_physical_optimizer_rule(Arc::new(DecimalArithRule))
                .build();
            let ruled = SessionContext::new_with_state(state);
            let sql = "SELECT b % 3 AS k, sum(a * b) AS s, sum(a * (1 - b)) AS t, min(a * b) AS m \
                       FROM t GROUP BY b % 3 ORDER BY k";
            let mut results = Vec::new();
            let mut rewritten = Vec::new();
            for ctx in [&plain, &ruled] {
                ctx.register_batch("t", data.clone())?;
                let df = ctx.sql(sql).await?;
                let plan = df.clone().create_physical_plan().await?;
                let mut exprs: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
                plan.apply(|node| {
                    if let Some(a) = node.downcast_ref::<AggregateExec>() {
                        exprs.extend(a.aggr_expr().iter().flat_map(|agg| agg.expressions()));
                    }
                    if let Some(p) = node.downcast_ref::<ProjectionExec>() {
                        exprs.extend(p.expr().iter().map(|pe| pe.expr.clone()));
                    }
                    Ok(TreeNodeRecursion::Continue)
                })?;
                let mut found = 0;
                for e in exprs {
                    e.apply(|e| {
                        found += usize::from(e.is::<DecimalArith>());
                        Ok(TreeNodeRecursion::Continue)
                    })?;
                }
                rewritten.push(found);
                results.push(df.collect().await?);
            }
            // a * b (once, or once per aggregate), and a * (1 - b) with its subtraction.
            assert_eq!(rewritten[0], 0);
            assert!(rewritten[1] >= 3, "{rewritten:?}");
            assert_eq!(results[0], results[1]);
            Ok(())
        })
    }
}
