//! The policy applied where data enters a query: each dataset a job can see
//! is a [`PolicyTable`] exposing only the columns the policy lets through,
//! masked ones already replaced by their masked values. Nothing above the
//! scan — filters, joins, aggregates, error messages — ever sees a denied
//! column or an unmasked value, whatever SQL the job writes.
//!
//! Aggregate-only and join-key-only columns are visible to the plan, where
//! the aggregation rule decides how they may be used. A hidden column carries each
//! row's entity as a pseudonym, for small-group suppression.

use crate::hidden::ENTITY;
use crate::source::ColumnInfo;
use crate::stored_key::StoredEntityKey;
use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use chrono::{Datelike, NaiveDate, TimeDelta};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{DFSchema, Result as DfResult, exec_err};
use datafusion::datasource::TableType;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, col,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;
use inland_policies::policy::{Access, DateUnit, MaskMethod, Policy};
use std::sync::Arc;

/// How one masked column is transformed.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Pseudonym([u8; 32]),
    Redact,
    KeepLast(usize),
    DateTrunc(DateUnit),
    Bucket(f64),
    /// The hidden entity key: a keyed 64-bit hash, for counting entities
    /// inside the host (never shown to a job, so speed beats a full HMAC).
    EntityKey(u64),
}

/// A masking function. It is never registered in a session, so a job cannot
/// call it on values of its choosing (it could otherwise pseudonymize guesses).
#[derive(Debug)]
struct MaskUdf {
    mode: Mode,
    signature: Signature,
    output: DataType,
}

impl PartialEq for MaskUdf {
    fn eq(&self, other: &Self) -> bool {
        self.mode == other.mode && self.output == other.output
    }
}
impl Eq for MaskUdf {}
impl std::hash::Hash for MaskUdf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        format!("{:?}", self.output).hash(state);
    }
}

fn pseudonym(key: &ring::hmac::Key, value: &str) -> String {
    let tag = ring::hmac::sign(key, value.as_bytes());
    format!("p_{}", hex::encode(&tag.as_ref()[..12]))
}

fn keep_last(value: &str, n: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    let hidden = chars.len().saturating_sub(n);
    std::iter::repeat_n('*', hidden)
        .chain(chars[hidden..].iter().copied())
        .collect()
}

impl ScalarUDFImpl for MaskUdf {
    fn name(&self) -> &str {
        "inland_mask"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(self.output.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let Some(input) = args.args.first() else {
            return exec_err!("inland_mask takes one argument");
        };
        let array = input.to_array(args.number_rows)?;
        let out: ArrayRef = match &self.mode {
            Mode::EntityKey(seed) => Arc::new(crate::stored_key::hash_entities(&array, *seed)?),
            Mode::Pseudonym(k) => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k);
                let s = array.as_string::<i32>();
                Arc::new(s.iter().map(|v| v.map(|v| pseudonym(&key, v))).collect::<StringArray>())
            }
            Mode::Redact => Arc::new(
                (0..array.len())
                    .map(|i| (!array.is_null(i)).then_some("***"))
                    .collect::<StringArray>(),
            ),
            Mode::KeepLast(n) => {
                let s = array.as_string::<i32>();
                Arc::new(s.iter().map(|v| v.map(|v| keep_last(v, *n))).collect::<StringArray>())
            }
            Mode::DateTrunc(unit) => {
                let d = array.as_primitive::<arrow::datatypes::Date32Type>();
                // A date the calendar cannot place is withheld, never passed through untruncated.
                Arc::new(
                    d.iter()
                        .map(|v| v.and_then(|days| truncate_days(days, *unit)))
                        .collect::<Date32Array>(),
                )
            }
            Mode::Bucket(w) => match array.data_type() {
                DataType::Int64 => Arc::new(bucket_i64(
                    array.as_primitive::<arrow::datatypes::Int64Type>(),
                    w.round().max(1.0) as i64,
                )),
                _ => Arc::new(bucket_f64(array.as_primitive::<arrow::datatypes::Float64Type>(), *w)),
            },
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// 1.5 * 2^52: adding it to a float below 2^51 in magnitude, and taking it
/// away again, rounds the float to the nearest integer (the buckets' floor).
const ROUND: f64 = 6_755_399_441_055_744.0;

/// Each value replaced by the lower bound of its bucket of `width` (at
/// least 1), nulls kept. A mask runs on every row a query reads, so where
/// values and width fit in 50 bits it works in `f64`, two values an
/// instruction: the quotient is a product with the reciprocal, rounded to
/// an integer by adding 1.5 * 2^52 (no saturating conversion, no library
/// `floor`) and corrected to the exact floor; about twice as fast as
/// integer division per value. Otherwise integer division; a bound below
/// `i64::MIN` saturates.
fn bucket_i64(a: &Int64Array, width: i64) -> Int64Array {
    // The largest magnitude, as bits: every value is below 2^50 iff this is.
    let widest = a
        .values()
        .iter()
        .fold(width.unsigned_abs(), |m, v| m | v.unsigned_abs());
    let values: Vec<i64> = if widest < 1 << 50 {
        let (w, inverse) = (width as f64, 1.0 / width as f64);
        let bias = ROUND.to_bits() as i64;
        a.values()
            .iter()
            .map(|&v| {
                // All in f64, where every integer here is exact (below 2^51):
                // the product is within a quarter of v / width, so rounded it
                // is the floor or one above it; the bound goes back to an
                // integer through the same addition.
                let v = v as f64;
                let q = (v * inverse + ROUND) - ROUND;
                let q = q - if q * w > v { 1.0 } else { 0.0 };
                ((q * w + ROUND).to_bits() as i64).wrapping_sub(bias)
            })
            .collect()
    } else {
        a.values()
            .iter()
            .map(|v| v.div_euclid(width).saturating_mul(width))
            .collect()
    };
    Int64Array::new(values.into(), a.nulls().cloned())
}

/// Each value replaced by the lower bound of its bucket of `width`:
/// `(v / width).floor() * width`, bit for bit, but with the floor taken by
/// adding and taking away 1.5 * 2^52 (which rounds any quotient below 2^51
/// to an integer) rather than by `f64::floor`, a library call per value on
/// baseline x86-64. Larger quotients, infinities and NaN use `floor`.
fn bucket_f64(a: &Float64Array, width: f64) -> Float64Array {
    const EXACT: f64 = 2_251_799_813_685_248.0; // 2^51
    a.unary(|v| {
        let x = v / width;
        let floor = if x.abs() < EXACT {
            let nearest = (x + ROUND) - ROUND;
            let below = nearest - if nearest > x { 1.0 } else { 0.0 };
            // Only a floor of zero can carry the wrong sign: floor(-0.0) is -0.0.
            if below == 0.0 { below.copysign(x) } else { below }
        } else {
            x.floor()
        };
        floor * width
    })
}

/// The keys a policy table masks with.
#[derive(Clone, Copy)]
pub struct PolicyKeys {
    /// The grant's pseudonym key: pseudonyms never link across grants.
    pub pseudonym: [u8; 32],
    /// The domain's entity key: the hidden entity hash is the same under
    /// every grant, so that entity sketches of cells released under different
    /// grants can be compared. Jobs never see the hash.
    pub entity: [u8; 32],
}

/// Secret keys: a debug print says they are there, never what they are.
impl std::fmt::Debug for PolicyKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyKeys { .. }")
    }
}

/// `input` transformed by the host's masking function in `mode`.
fn mask_expr(mode: Mode, input: Expr, output: DataType) -> Expr {
    let udf = ScalarUDF::new_from_impl(MaskUdf {
        mode,
        signature: Signature::any(1, Volatility::Immutable),
        output,
    });
    Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(udf), vec![input]))
}

/// The expression a job sees for one column, or `None` if it is withheld.
fn visible_expr(
    name: &str,
    data_type: &DataType,
    access: &Access,
    pseudonym_key: &[u8; 32],
) -> Option<(Expr, DataType)> {
    let column = col(format!("\"{name}\""));
    let masked = |mode: Mode, input: Expr, output: DataType| Some((mask_expr(mode, input, output.clone()), output));
    // A cast that cannot fail (bytes that are not UTF-8 become NULL): a
    // failure at the scan would tell the job a row with such a value exists.
    let as_text = || {
        Expr::TryCast(datafusion::logical_expr::TryCast::new(
            Box::new(column.clone()),
            DataType::Utf8,
        ))
    };
    match access {
        Access::Plaintext | Access::Dimension => Some((column.clone(), data_type.clone())),
        // Visible to the plan, whose aggregation rule decides how it may be used.
        Access::AggregateOnly => Some((column.clone(), data_type.clone())),
        // Visible to the plan as stored (joins need the real value); the
        // aggregation rule lets it appear only in a join condition.
        Access::JoinKeyOnly => Some((column.clone(), data_type.clone())),
        Access::Deny => None,
        Access::Mask { method } => match method {
            MaskMethod::Pseudonym => masked(Mode::Pseudonym(*pseudonym_key), as_text(), DataType::Utf8),
            MaskMethod::Redact => masked(Mode::Redact, column.clone(), DataType::Utf8),
            MaskMethod::KeepLast { n } => masked(Mode::KeepLast(*n as usize), as_text(), DataType::Utf8),
            MaskMethod::DateTrunc { unit } if *data_type == DataType::Date32 => {
                masked(Mode::DateTrunc(*unit), column.clone(), DataType::Date32)
            }
            MaskMethod::Bucket { width } if *data_type == DataType::Int64 => {
                masked(Mode::Bucket(*width), column.clone(), DataType::Int64)
            }
            MaskMethod::Bucket { width } if data_type.is_numeric() => masked(
                Mode::Bucket(*width),
                Expr::Cast(datafusion::logical_expr::Cast::new(
                    Box::new(column.clone()),
                    DataType::Float64,
                )),
                DataType::Float64,
            ),
            MaskMethod::Null => Some((
                Expr::Literal(datafusion::scalar::ScalarValue::try_from(data_type).ok()?, None),
                data_type.clone(),
            )),
            // A method that does not fit the column's type withholds the column rather than leak it.
            MaskMethod::DateTrunc { .. } | MaskMethod::Bucket { .. } => None,
        },
    }
}

/// Days since 1970-01-01 truncated to the first day of their year or month.
fn truncate_days(days: i32, unit: DateUnit) -> Option<i32> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let date = epoch.checked_add_signed(TimeDelta::try_days(i64::from(days))?)?;
    let first = match unit {
        DateUnit::Year => NaiveDate::from_ymd_opt(date.year(), 1, 1),
        DateUnit::Month => NaiveDate::from_ymd_opt(date.year(), date.month(), 1),
    }?;
    i32::try_from(first.signed_duration_since(epoch).num_days()).ok()
}

/// Narrows a dataset's columns to those the policy lets a job see, with
/// their visible types: what the job's dataset listing shows.
pub fn visible_columns(dataset: &str, columns: &mut Vec<ColumnInfo>, policy: &Policy) {
    let name = dataset;
    columns.retain_mut(|c| {
        if crate::hidden::reserved(&c.name) {
            return false;
        }
        let Some(p) = policy.column(name, &c.name) else {
            return false;
        };
        let ty: DataType = c.data_type.parse().unwrap_or(DataType::Utf8);
        match visible_expr(&c.name, &ty, &p.access, &[0; 32]) {
            Some((_, visible)) => {
                c.data_type = visible.to_string();
                c.nullable = true;
                true
            }
            None => false,
        }
    });
}

/// A dataset as the policy lets a job see it.
#[derive(Debug)]
pub struct PolicyTable {
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
    /// For each visible column: the expression over the inner table's columns.
    exprs: Vec<Expr>,
    /// For each visible column: the inner columns it reads.
    reads: Vec<usize>,
    /// Visible columns shown as they are stored (plaintext or dimension):
    /// filters on these alone may be pushed into the scan, so Parquet can skip
    /// row groups and pages. Filters on anything else stay above the masks.
    passthrough: std::collections::BTreeSet<String>,
}

impl PolicyTable {
    /// Wraps a dataset's provider under the policy for `dataset`; `stored`
    /// is the entity key stored with its rows, if any.
    pub(crate) fn new(
        inner: Arc<dyn TableProvider>,
        policy: &Policy,
        dataset: &str,
        keys: &PolicyKeys,
        stored: Option<&StoredEntityKey>,
    ) -> Self {
        let pseudonym_key = &keys.pseudonym;
        let inner_schema = inner.schema();
        let mut fields = Vec::new();
        let mut exprs = Vec::new();
        let mut reads = Vec::new();
        let mut passthrough = std::collections::BTreeSet::new();
        for (i, f) in inner_schema.fields().iter().enumerate() {
            // The host's own stored columns are never a job's, whatever a policy says.
            if crate::hidden::reserved(f.name()) {
                continue;
            }
            let Some(p) = policy.column(dataset, f.name()) else {
                continue;
            };
            if let Some((expr, ty)) = visible_expr(f.name(), f.data_type(), &p.access, pseudonym_key) {
                if matches!(p.access, Access::Plaintext | Access::Dimension)
                    && matches!(&expr, Expr::Column(c) if c.name == *f.name())
                    && ty == *f.data_type()
                {
                    passthrough.insert(f.name().clone());
                }
                fields.push(Field::new(f.name(), ty, true));
                exprs.push(expr);
                reads.push(i);
            }
        }
        // The hidden entity column: a keyed hash of each row's entity, for
        // counting distinct entities per group. Only where they are counted:
        // a dataset jobs read unrestricted has none to leak.
        if let Some(entity) = policy.entity(dataset)
            && !policy.unrestricted(dataset)
            && let Ok(i) = inner_schema.index_of(entity)
        {
            // Read where registration stored it (`dataset add --entity`),
            // computed from the entity column otherwise.
            let (expr, i) = match crate::stored_key::usable(stored, entity, &inner_schema, &keys.entity) {
                Some(k) => (col(format!("\"{ENTITY}\"")), k),
                None => (
                    mask_expr(
                        Mode::EntityKey(crate::stored_key::entity_seed(&keys.entity)),
                        col(format!("\"{entity}\"")),
                        DataType::UInt64,
                    ),
                    i,
                ),
            };
            fields.push(Field::new(ENTITY, DataType::UInt64, true));
            exprs.push(expr);
            reads.push(i);
        }
        PolicyTable {
            inner,
            schema: Arc::new(Schema::new(fields)),
            exprs,
            reads,
            passthrough,
        }
    }
}

#[async_trait]
impl TableProvider for PolicyTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<datafusion::logical_expr::TableProviderFilterPushDown>> {
        use datafusion::logical_expr::TableProviderFilterPushDown as Push;
        Ok(filters
            .iter()
            .map(|f| {
                let refs = f.column_refs();
                if !refs.is_empty() && refs.iter().all(|c| self.passthrough.contains(&c.name)) {
                    // Inexact: the filter also stays above the scan, where the rules check it.
                    Push::Inexact
                } else {
                    Push::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let wanted: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..self.exprs.len()).collect());
        let mut inner_cols: Vec<usize> = wanted.iter().filter_map(|i| self.reads.get(*i).copied()).collect();
        inner_cols.sort_unstable();
        inner_cols.dedup();
        // Only filters on pass-through columns reach the stored data (they read
        // the same values the job sees); every other filter stays above the masks.
        let pushed: Vec<Expr> = filters
            .iter()
            .filter(|f| {
                let refs = f.column_refs();
                !refs.is_empty() && refs.iter().all(|c| self.passthrough.contains(&c.name))
            })
            .map(|f| f.clone().unalias_nested().data)
            .map(|f| {
                f.transform(|e| {
                    Ok(match e {
                        Expr::Column(c) => datafusion::common::tree_node::Transformed::yes(Expr::Column(
                            datafusion::common::Column::from_name(c.name),
                        )),
                        other => datafusion::common::tree_node::Transformed::no(other),
                    })
                })
                .map(|t| t.data)
            })
            .collect::<DfResult<_>>()?;
        let input = self.inner.scan(state, Some(&inner_cols), &pushed, limit).await?;
        let df_schema = DFSchema::try_from(input.schema().as_ref().clone())?;
        // Nothing masked or moved among the columns asked for: the stored
        // columns are the job's as they are, and a projection would only cost
        // the physical planner a node to take out again.
        let as_stored = wanted.len() == input.schema().fields().len()
            && wanted.iter().enumerate().all(|(k, i)| {
                matches!(self.exprs.get(*i), Some(Expr::Column(c)) if self.reads.get(*i) == Some(&inner_cols[k]) && c.name == input.schema().field(k).name().as_str())
                    && self.schema.fields().get(*i).map(|f| f.as_ref()) == Some(input.schema().field(k))
            });
        if as_stored {
            return Ok(input);
        }
        let mut projected = Vec::with_capacity(wanted.len());
        for i in wanted {
            let (Some(expr), Some(field)) = (self.exprs.get(i), self.schema.fields().get(i)) else {
                return exec_err!("column index {i} is out of range");
            };
            projected.push((
                state.create_physical_expr(expr.clone(), &df_schema)?,
                field.name().clone(),
            ));
        }
        Ok(Arc::new(ProjectionExec::try_new(projected, input)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorised bucket equals integer floor division, at bucket
    /// edges, for negatives, nulls, wide widths and values past 50 bits.
    #[test]
    fn buckets_are_the_exact_floor() {
        let mut next = crate::test_rng(0x00b0_c4e7);
        // Within 50 bits, the product path: bucket edges, negatives, nulls.
        let mut fast: Vec<Option<i64>> = vec![None, Some(0), Some(-1), Some(9), Some(10), Some(-10), Some(-11)];
        fast.extend([(1 << 50) - 1, -(1 << 50) + 1, (1 << 30) - 1, -(1 << 30)].map(Some));
        fast.extend((0..5000).map(|_| Some((next() >> 13) as i64 - (1 << 50) + 1)));
        fast.extend((0..5000).map(|_| Some((next() % 2001) as i64 - 1000)));
        fast.extend((0..5000).map(|_| Some((next() % (1 << 31)) as i64 - (1 << 30))));
        // One value past 50 bits sends the whole array to integer division.
        let mut wide = fast.clone();
        wide.extend([(1 << 52) - 1, -(1 << 52) + 1].map(Some));
        for values in [fast, wide] {
            let a = Int64Array::from(values.clone());
            for width in [1i64, 3, 7, 10, 1000, 999_999_937, (1 << 30) - 1, (1 << 50) - 1] {
                let got = bucket_i64(&a, width);
                for (v, g) in values.iter().zip(got.iter()) {
                    assert_eq!(g, v.map(|v| v.div_euclid(width) * width), "{v:?} in buckets of {width}");
                }
            }
        }
        // The extremes: the lowest bound saturates rather than overflow.
        let a = Int64Array::from(vec![Some(i64::MAX), Some(i64::MIN), None, Some(-25)]);
        let got: Vec<Option<i64>> = bucket_i64(&a, 10).iter().collect();
        assert_eq!(got, [Some(i64::MAX - 7), Some(i64::MIN), None, Some(-30)]);
    }

    /// The float bucket is `(v / width).floor() * width` to the bit: signed
    /// zeros, halves, NaN, infinities, subnormals and quotients past 2^51.
    #[test]
    fn float_buckets_equal_the_library_floor_bit_for_bit() {
        let mut next = crate::test_rng(0x0f10_a7b0);
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            2.5,
            -2.5,
            3.5,
            0.7,
            -0.3,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 4.0,
            -f64::MIN_POSITIVE / 4.0,
            f64::MAX,
            f64::MIN,
            2_251_799_813_685_247.5,
            -2_251_799_813_685_247.5,
            4_503_599_627_370_497.0,
        ];
        values.extend((0..20_000).map(|_| {
            let x = (next() % 2_000_001) as f64 - 1_000_000.0;
            x * 10f64.powi((next() % 24) as i32 - 12)
        }));
        values.extend((0..2_000).map(|_| f64::from_bits(next())));
        let a = Float64Array::from(values.clone());
        for width in [1.0, 0.25, 3.0, 10.0, 0.1, 1e-9, 7.5e6, 1e300] {
            let got = bucket_f64(&a, width);
            for (v, g) in values.iter().zip(got.values()) {
                let want = (v / width).floor() * width;
                assert_eq!(g.to_bits(), want.to_bits(), "{v} in buckets of {width}: {g} != {want}");
            }
        }
    }

    #[test]
    fn keep_last_and_pseudonyms() {
        assert_eq!(keep_last("13812345678", 4), "*******5678");
        assert_eq!(keep_last("ab", 4), "ab");
        let k1 = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[1; 32]);
        let k2 = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[2; 32]);
        assert_eq!(pseudonym(&k1, "x"), pseudonym(&k1, "x"));
        assert_ne!(pseudonym(&k1, "x"), pseudonym(&k2, "x"));
        assert_ne!(pseudonym(&k1, "x"), pseudonym(&k1, "y"));
    }
}
