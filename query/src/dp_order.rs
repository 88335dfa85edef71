//! The keyed order in which the `dp` mode keeps an entity's first rows: a
//! 64-bit hash of the row's values under a per-grant seed. Which rows count
//! then depends on their values and a secret, not on where they sit in a
//! file. Hashing the values as they are (not as text, not with SHA-256) is
//! what keeps the cap affordable over millions of rows.

use arrow::array::{ArrayRef, UInt64Array};
use arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// The function's name in plans (it shows no seed).
pub(crate) const NAME: &str = "inland_row_order";

/// A function no job can call (it is never registered in a session): the
/// keyed hash of its arguments, never NULL, never failing.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RowOrder {
    seed: u64,
    signature: Signature,
}

impl ScalarUDFImpl for RowOrder {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::UInt64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if args.args.is_empty() {
            return exec_err!("{NAME} takes at least one argument");
        }
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<DfResult<_>>()?;
        let state = foldhash::quality::FixedState::with_seed(self.seed);
        let mut hashes = vec![0u64; args.number_rows];
        datafusion::common::hash_utils::create_hashes(arrays.iter(), &state, &mut hashes)?;
        Ok(ColumnarValue::Array(Arc::new(UInt64Array::from(hashes))))
    }
}

/// The keyed order of rows by `columns`, under `seed`. Every Arrow type is
/// hashed as it is (DataFusion's row hashing takes them all, nested ones
/// included), so nothing is cast and nothing can fail; each column also
/// gives whether it is NULL, which the hash of a NULL alone does not tell.
pub(crate) fn row_order(seed: u64, columns: Vec<Expr>) -> Expr {
    let args = columns.into_iter().flat_map(|e| [e.clone().is_null(), e]).collect();
    let udf = ScalarUDF::new_from_impl(RowOrder {
        seed,
        signature: Signature::variadic_any(Volatility::Immutable),
    });
    Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
        Arc::new(udf),
        args,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::Field;
    use datafusion::config::ConfigOptions;

    fn order(seed: u64, a: ArrayRef, b: ArrayRef) -> Vec<u64> {
        let f = RowOrder {
            seed,
            signature: Signature::variadic_any(Volatility::Immutable),
        };
        let n = a.len();
        let fields = vec![
            Arc::new(Field::new("a", a.data_type().clone(), true)),
            Arc::new(Field::new("b", b.data_type().clone(), true)),
        ];
        let out = f
            .invoke_with_args(ScalarFunctionArgs {
                args: vec![ColumnarValue::Array(a), ColumnarValue::Array(b)],
                arg_fields: fields,
                number_rows: n,
                return_field: Arc::new(Field::new("o", DataType::UInt64, false)),
                config_options: Arc::new(ConfigOptions::default()),
            })
            .and_then(|v| v.to_array(n))
            .unwrap_or_else(|e| panic!("{e}"));
        let out = out.as_any().downcast_ref::<UInt64Array>().map(|a| a.values().to_vec());
        out.unwrap_or_default()
    }

    /// The order depends on the values and the seed, not on the rows' positions.
    #[test]
    fn the_order_follows_values_and_seed_not_position() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(2), None]));
        let b: ArrayRef = Arc::new(StringArray::from(vec!["x", "y", "z"]));
        let h = order(7, a.clone(), b.clone());
        assert_eq!(h.len(), 3);
        assert_ne!(h[0], h[1]);
        // The same rows in another order get the same hashes, moved with them.
        let a2: ArrayRef = Arc::new(Int64Array::from(vec![None, Some(1), Some(2)]));
        let b2: ArrayRef = Arc::new(StringArray::from(vec!["z", "x", "y"]));
        assert_eq!(order(7, a2, b2), vec![h[2], h[0], h[1]]);
        // Another seed, another order.
        assert_ne!(order(8, a, b), h);
    }
}
