//! Decimal multiplication without a per-value overflow check where none can
//! overflow. Arrow multiplies `Decimal128` values with a checked 128-bit
//! product per value, a call that cannot be vectorised: in TPC-H Q1 it was a
//! fifth of the query. When every value of both sides fits in 64 bits (the
//! case for any decimal of up to 18 digits, which is what prices and rates
//! are), their product fits in 128 bits, so the plain product is exact and
//! the result is the one Arrow would give. Anything else takes Arrow's path.
//!
//! The rewrite is a physical optimizer rule, so plans, column names and
//! results are unchanged; only the kernel differs.

use arrow::array::{ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{DataType, Decimal128Type, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::Result as DfResult;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
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

/// `left * right` over two `Decimal128` columns, with the result type Arrow
/// gives (precision `p1 + p2 + 1` up to 38, scale `s1 + s2`).
#[derive(Debug, Eq)]
pub(crate) struct DecimalProduct {
    left: Arc<dyn PhysicalExpr>,
    right: Arc<dyn PhysicalExpr>,
    precision: u8,
    scale: i8,
}

// By hand, as DataFusion's own expressions do (derives trip on `Arc<dyn PhysicalExpr>`).
impl PartialEq for DecimalProduct {
    fn eq(&self, other: &Self) -> bool {
        self.left.eq(&other.left)
            && self.right.eq(&other.right)
            && self.precision == other.precision
            && self.scale == other.scale
    }
}

impl std::hash::Hash for DecimalProduct {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.left.hash(state);
        self.right.hash(state);
        self.precision.hash(state);
        self.scale.hash(state);
    }
}

impl DecimalProduct {
    /// The product of `left` and `right` if both are `Decimal128` under
    /// `schema` and the result scale is one Arrow accepts; otherwise `None`.
    fn of(left: &Arc<dyn PhysicalExpr>, right: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<DecimalProduct> {
        let (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) =
            (left.data_type(schema).ok()?, right.data_type(schema).ok()?)
        else {
            return None;
        };
        let scale = s1.checked_add(s2).filter(|s| (0..=38).contains(s))?;
        Some(DecimalProduct {
            left: left.clone(),
            right: right.clone(),
            precision: p1.saturating_add(p2).saturating_add(1).min(38),
            scale,
        })
    }
}

/// Every value (null slots included) lies in the 64-bit range.
fn fits_i64(a: &PrimitiveArray<Decimal128Type>) -> bool {
    a.values().iter().fold(true, |ok, v| ok & (i128::from(*v as i64) == *v))
}

/// The product by the plain 128-bit multiply, if no value can overflow it.
fn exact_product(l: &ArrayRef, r: &ArrayRef, precision: u8, scale: i8) -> DfResult<Option<ArrayRef>> {
    let (Some(l), Some(r)) = (
        l.as_primitive_opt::<Decimal128Type>(),
        r.as_primitive_opt::<Decimal128Type>(),
    ) else {
        return Ok(None);
    };
    if l.len() != r.len() || !fits_i64(l) || !fits_i64(r) {
        return Ok(None);
    }
    // |a|, |b| <= 2^63, so |a * b| <= 2^126: the wrapping product never wraps.
    let product: PrimitiveArray<Decimal128Type> = arrow::compute::binary(l, r, |a, b| a.wrapping_mul(b))?;
    Ok(Some(Arc::new(product.with_precision_and_scale(precision, scale)?)))
}

impl PhysicalExpr for DecimalProduct {
    fn data_type(&self, _input_schema: &Schema) -> DfResult<DataType> {
        Ok(DataType::Decimal128(self.precision, self.scale))
    }

    fn nullable(&self, input_schema: &Schema) -> DfResult<bool> {
        Ok(self.left.nullable(input_schema)? || self.right.nullable(input_schema)?)
    }

    fn evaluate(&self, batch: &RecordBatch) -> DfResult<ColumnarValue> {
        let l = self.left.evaluate(batch)?;
        let r = self.right.evaluate(batch)?;
        if let (ColumnarValue::Array(a), ColumnarValue::Array(b)) = (&l, &r)
            && let Some(out) = exact_product(a, b, self.precision, self.scale)?
        {
            return Ok(ColumnarValue::Array(out));
        }
        // A scalar side, or a value past 64 bits: DataFusion's own kernel.
        datafusion::physical_expr_common::datum::apply(&l, &r, arrow::compute::kernels::numeric::mul)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.left, &self.right]
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> DfResult<Arc<dyn PhysicalExpr>> {
        let [left, right] = <[_; 2]>::try_from(children)
            .map_err(|c| datafusion::error::DataFusionError::Internal(format!("{} children for a product", c.len())))?;
        Ok(Arc::new(DecimalProduct {
            left,
            right,
            precision: self.precision,
            scale: self.scale,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(")?;
        self.left.fmt_sql(f)?;
        write!(f, " * ")?;
        self.right.fmt_sql(f)?;
        write!(f, ")")
    }
}

impl fmt::Display for DecimalProduct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} * {}", self.left, self.right)
    }
}

/// Replaces decimal multiplications in `expr` (evaluated against `schema`).
fn rewrite_expr(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> DfResult<Transformed<Arc<dyn PhysicalExpr>>> {
    expr.clone().transform_up(|e| {
        let Some(b) = e.downcast_ref::<BinaryExpr>() else {
            return Ok(Transformed::no(e));
        };
        if *b.op() != Operator::Multiply {
            return Ok(Transformed::no(e));
        }
        match DecimalProduct::of(b.left(), b.right(), schema) {
            // Only where the type is what the plan expects, so nothing above changes.
            Some(p) if p.data_type(schema).ok() == e.data_type(schema).ok() => {
                Ok(Transformed::yes(Arc::new(p) as Arc<dyn PhysicalExpr>))
            }
            _ => Ok(Transformed::no(e)),
        }
    })
}

/// The physical optimizer rule that puts [`DecimalProduct`] in projections
/// and aggregate arguments.
#[derive(Debug, Default)]
pub(crate) struct DecimalProductRule;

impl PhysicalOptimizerRule for DecimalProductRule {
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
        "inland_decimal_product"
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
    use datafusion::physical_expr::expressions::col;

    fn batch(a: Vec<Option<i128>>, b: Vec<Option<i128>>) -> DfResult<RecordBatch> {
        let a = Decimal128Array::from(a).with_precision_and_scale(15, 2)?;
        let b = Decimal128Array::from(b).with_precision_and_scale(16, 2)?;
        let schema = Schema::new(vec![
            Field::new("a", a.data_type().clone(), true),
            Field::new("b", b.data_type().clone(), true),
        ]);
        Ok(RecordBatch::try_new(Arc::new(schema), vec![Arc::new(a), Arc::new(b)])?)
    }

    /// DataFusion's own `a * b` and the rewritten product, on one batch.
    fn both(batch: &RecordBatch) -> DfResult<(DfResult<ArrayRef>, DfResult<ArrayRef>)> {
        let schema = batch.schema();
        let (a, b) = (col("a", &schema)?, col("b", &schema)?);
        let theirs = BinaryExpr::new(a.clone(), Operator::Multiply, b.clone());
        let ours = DecimalProduct::of(&a, &b, &schema)
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("decimal columns not recognised".into()))?;
        assert_eq!(ours.data_type(&schema)?, theirs.data_type(&schema)?);
        let run = |e: &dyn PhysicalExpr| e.evaluate(batch).and_then(|v| v.into_array(batch.num_rows()));
        Ok((run(&theirs), run(&ours)))
    }

    #[test]
    fn equals_datafusions_product_with_nulls_signs_and_wide_values() -> DfResult<()> {
        let mut next = crate::test_rng(0x2545_f491_4f6c_dd1d);
        let mut a = Vec::new();
        let mut b = Vec::new();
        for i in 0..5000 {
            let v = (next() % 10_000_000_000_000) as i128 - 5_000_000_000_000;
            a.push((i % 17 != 0).then_some(v));
            b.push((i % 23 != 0).then_some((next() % 200) as i128 - 100));
        }
        let (theirs, ours) = both(&batch(a.clone(), b.clone())?)?;
        assert_eq!(&ours?, &theirs?);

        // A value past 64 bits takes DataFusion's path and still agrees.
        a[3] = Some(1_i128 << 70);
        let (theirs, ours) = both(&batch(a, b)?)?;
        assert_eq!(&ours?, &theirs?);

        // An overflow past 128 bits is an error on both paths, not a wrapped value.
        let (theirs, ours) = both(&batch(vec![Some(i128::MAX / 2)], vec![Some(4)])?)?;
        assert!(theirs.is_err() && ours.is_err());
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
                .with_physical_optimizer_rule(Arc::new(DecimalProductRule))
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
                        found += usize::from(e.is::<DecimalProduct>());
                        Ok(TreeNodeRecursion::Continue)
                    })?;
                }
                rewritten.push(found);
                results.push(df.collect().await?);
            }
            // a * b (once, or once per aggregate) and a * (1 - b).
            assert_eq!(rewritten[0], 0);
            assert!(rewritten[1] >= 2, "{rewritten:?}");
            assert_eq!(results[0], results[1]);
            Ok(())
        })
    }
}
