//! `inland_keep(group_size)`: the small-group filter, placed in the plan
//! right above the aggregation over protected data, so that groups below the
//! threshold are gone before anything the job wrote (HAVING, ORDER BY,
//! LIMIT, an outer query) sees them. `ORDER BY n LIMIT 1` returns the
//! smallest group the policy allows, never a sign of one it removed.
//!
//! Each planned query gets its own instance, whose counter tells the host
//! how many groups it removed, for the notice the job receives.

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Result as DfResult, internal_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The function's name in plans.
pub(crate) const NAME: &str = "inland_keep";

/// Counts the groups one query's filter removed.
pub(crate) type Removed = Arc<AtomicU64>;

#[derive(Debug)]
struct Keep {
    signature: Signature,
    min: i64,
    removed: Removed,
}

// Two instances are the same function only if they share a counter.
impl PartialEq for Keep {
    fn eq(&self, other: &Self) -> bool {
        self.min == other.min && Arc::ptr_eq(&self.removed, &other.removed)
    }
}
impl Eq for Keep {}
impl std::hash::Hash for Keep {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.min.hash(state);
        (Arc::as_ptr(&self.removed) as usize).hash(state);
    }
}

/// The predicate `inland_keep(size)`: true for groups of at least `min`
/// entities; each false adds one to the returned counter. Volatile, so the
/// optimizer never moves, merges or drops it.
pub(crate) fn keep(size: Expr, min: u64) -> (Expr, Removed) {
    let removed = Removed::default();
    let udf = ScalarUDF::from(Keep {
        signature: Signature::exact(vec![DataType::Int64], Volatility::Volatile),
        min: i64::try_from(min).unwrap_or(i64::MAX),
        removed: removed.clone(),
    });
    (udf.call(vec![size]), removed)
}

impl ScalarUDFImpl for Keep {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [size] = args.args.as_slice() else {
            return internal_err!("{NAME} takes one argument");
        };
        let sizes = size.to_array(args.number_rows)?;
        let Some(sizes) = sizes.as_primitive_opt::<Int64Type>() else {
            return internal_err!("{NAME}: group sizes must be Int64, not {}", sizes.data_type());
        };
        // A missing size keeps nothing.
        let kept: BooleanArray = sizes.iter().map(|n| Some(n.is_some_and(|n| n >= self.min))).collect();
        let removed = kept.len() - kept.true_count();
        self.removed.fetch_add(removed as u64, Ordering::SeqCst);
        Ok(ColumnarValue::Array(Arc::new(kept)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::Field;

    #[test]
    fn keeps_groups_at_the_threshold_and_counts_the_rest() -> DfResult<()> {
        let (expr, removed) = keep(datafusion::logical_expr::col("n"), 10);
        let Expr::ScalarFunction(f) = expr else {
            return internal_err!("not a function call");
        };
        let sizes = Arc::new(Int64Array::from(vec![Some(9), Some(10), None, Some(400)]));
        let out = f.func.invoke_with_args(ScalarFunctionArgs {
            args: vec![ColumnarValue::Array(sizes)],
            arg_fields: vec![Arc::new(Field::new("n", DataType::Int64, true))],
            number_rows: 4,
            return_field: Arc::new(Field::new("k", DataType::Boolean, true)),
            config_options: Default::default(),
        })?;
        let ColumnarValue::Array(out) = out else {
            return internal_err!("not an array");
        };
        let out = out.as_boolean();
        assert_eq!(
            out.iter().collect::<Vec<_>>(),
            vec![Some(false), Some(true), Some(false), Some(true)]
        );
        assert_eq!(removed.load(Ordering::SeqCst), 2);
        Ok(())
    }
}
