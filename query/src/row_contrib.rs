//! `inland_row_contributions(value)`: the contributions figures (see
//! `contrib`) for an aggregation whose input holds each entity at most once,
//! so that each row's value is its entity's whole contribution. The host
//! proves that at registration (the dataset's entity column is unique and
//! never null) and uses this form only when nothing between the scan and
//! the aggregation can repeat a row (no joins). It needs no entity column
//! and no per-entity state: six numbers per group, as cheap as an average.
//! Besides the shared figures it counts the group's rows ([`ROWS`]), which
//! here are its entities: the policy's rewrite reads the group size and the
//! job's `count(*)` from it instead of running a count of its own.

use crate::contrib::{LARGEST, MISSING, NEGATIVES, SECOND, Single, TOTAL, list_array, list_of, selected};
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, UInt64Array};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result as DfResult, internal_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, EmitTo, GroupsAccumulator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::sync::Arc;

/// The function's name in plans.
pub(crate) const NAME: &str = "inland_row_contributions";

/// Where the group's row count sits in this function's list, after the
/// figures shared with `contrib` (which has no such count).
pub(crate) const ROWS: usize = 5;

#[derive(Debug, PartialEq, Eq, Hash)]
struct RowContributions {
    signature: Signature,
}

/// `inland_row_contributions(value)` as a DataFusion aggregate.
pub(crate) fn udaf() -> AggregateUDF {
    AggregateUDF::from(RowContributions {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

impl AggregateUDFImpl for RowContributions {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(list_of(DataType::Float64))
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let mut one = RowGroups::default();
        one.resize(1);
        Ok(Box::new(Single(one)))
    }
    fn state_fields(&self, _args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("largest", DataType::Float64, true)),
            Arc::new(Field::new("second", DataType::Float64, true)),
            Arc::new(Field::new("total", DataType::Float64, true)),
            Arc::new(Field::new("negatives", DataType::UInt64, true)),
            Arc::new(Field::new("missing", DataType::UInt64, true)),
            Arc::new(Field::new("rows", DataType::UInt64, true)),
        ])
    }
    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(RowGroups::default()))
    }
}

/// A value the policy's rewrite reads from a group's row contributions
/// instead of computing it a second time (see `aggregate_rule::fused_per_row`).
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
pub(crate) enum Derived {
    /// The floating-point mean: the total over the rows that had a value.
    Mean,
    /// The floating-point sum: the total, NULL where no row had a value.
    Sum,
    /// The group's row count, which is its entity count: `count(*)`.
    Rows,
}

/// `inland_mean_of(contributions)`, `inland_sum_of(...)`, `inland_rows_of(...)`:
/// one function call rather than a CASE tree, since DataFusion's physical
/// planner re-derives a projection's properties at every optimizer pass, at
/// a cost that grows with the size of its expressions.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FromFigures {
    signature: Signature,
    derived: Derived,
}

/// The function giving `derived` from a group's row contributions.
pub(crate) fn derived(derived: Derived) -> ScalarUDF {
    ScalarUDF::from(FromFigures {
        signature: Signature::any(1, Volatility::Immutable),
        derived,
    })
}

impl ScalarUDFImpl for FromFigures {
    fn name(&self) -> &str {
        match self.derived {
            Derived::Mean => "inland_mean_of",
            Derived::Sum => "inland_sum_of",
            Derived::Rows => "inland_rows_of",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match self.derived {
            Derived::Rows => DataType::Int64,
            Derived::Mean | Derived::Sum => DataType::Float64,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [figures] = args.args.as_slice() else {
            return internal_err!("{} takes one argument", self.name());
        };
        let figures = figures.to_array(args.number_rows)?;
        let Some(figures) = figures.as_list_opt::<i32>() else {
            return internal_err!("{}: unexpected argument type", self.name());
        };
        // Each group's (rows, value): rows for `count(*)`, the value for a
        // mean or sum, NULL where no row had a value (as DataFusion's).
        let mut derived = Vec::with_capacity(figures.len());
        for row in 0..figures.len() {
            if figures.is_null(row) {
                derived.push(None);
                continue;
            }
            let f = figures.value(row);
            let Some(f) = f.as_primitive_opt::<Float64Type>().filter(|f| f.len() > ROWS) else {
                return internal_err!("{}: malformed contributions", self.name());
            };
            let rows = f.value(ROWS);
            // As DataFusion's `avg`: the sum over the count of values, in f64.
            let valued = rows - f.value(MISSING);
            let value = match self.derived {
                Derived::Mean => f.value(TOTAL) / valued,
                Derived::Sum | Derived::Rows => f.value(TOTAL),
            };
            derived.push(Some((rows, (valued > 0.0).then_some(value))));
        }
        Ok(ColumnarValue::Array(match self.derived {
            Derived::Rows => Arc::new(
                derived
                    .iter()
                    .map(|d| d.map(|(rows, _)| rows as i64))
                    .collect::<arrow::array::Int64Array>(),
            ),
            Derived::Mean | Derived::Sum => {
                Arc::new(derived.iter().map(|d| d.and_then(|(_, v)| v)).collect::<Float64Array>())
            }
        }))
    }
}

/// One group's figures, kept together: one bounds check and one cache line per row.
#[derive(Debug, Default, Clone, Copy)]
struct Fig {
    largest: f64,
    second: f64,
    total: f64,
    negatives: u64,
    missing: u64,
    rows: u64,
}

impl Fig {
    #[inline(always)]
    fn add(&mut self, v: f64) {
        self.rows += 1;
        self.total += v;
        self.top(v);
        self.negatives += u64::from(v < 0.0);
    }

    /// Takes `v` into the top two. Past a group's first rows almost no value
    /// beats its second largest, so the test is a branch the CPU predicts.
    #[inline(always)]
    fn top(&mut self, v: f64) {
        if v > self.second {
            if v > self.largest {
                self.second = self.largest;
                self.largest = v;
            } else {
                self.second = v;
            }
        }
    }

    /// Folds another partial state of the same group in.
    fn merge(&mut self, other: Fig) {
        let mut top = [self.largest, self.second, other.largest, other.second];
        top.sort_unstable_by(|a, b| b.total_cmp(a));
        self.largest = top[0];
        self.second = top[1];
        self.total += other.total;
        self.negatives += other.negatives;
        self.missing += other.missing;
        self.rows += other.rows;
    }
}

/// Per group: the two largest positive values, the total, and the negative, missing and all row counts.
#[derive(Debug, Default)]
struct RowGroups {
    groups: Vec<Fig>,
}

/// Rows added together before any of them is looked at more closely.
const CHUNK: usize = 64;

impl RowGroups {
    fn resize(&mut self, n: usize) {
        self.groups.resize(n, Fig::default());
    }

    /// Adds a batch without nulls or filter a chunk of rows at a time: each
    /// row's value goes into its group's total, and one compare with the
    /// group's second largest (on the same cache line) notes whether the row
    /// could enter a top two or is negative. Only a chunk with such a row is
    /// taken again row by row; past a group's first rows that is rare, so in
    /// effect a row costs one addition, as in DataFusion's own `sum`.
    fn add_dense(&mut self, values: &[f64], group_indices: &[usize]) -> DfResult<()> {
        if values.len() != group_indices.len() {
            return internal_err!("{NAME}: {} values for {} rows", values.len(), group_indices.len());
        }
        let groups = self.groups.as_mut_slice();
        for (vs, gs) in values.chunks(CHUNK).zip(group_indices.chunks(CHUNK)) {
            let mut closer = false;
            for (v, g) in vs.iter().zip(gs) {
                // (The message names no index: keeping one at hand for it
                // costs the loop a store per row.)
                let Some(fig) = groups.get_mut(*g) else {
                    return internal_err!("{NAME}: a group index out of range");
                };
                fig.total += *v;
                fig.rows += 1;
                closer |= (*v > fig.second) | (*v < 0.0);
            }
            if closer {
                for (v, g) in vs.iter().zip(gs) {
                    let Some(fig) = groups.get_mut(*g) else {
                        return internal_err!("{NAME}: a group index out of range");
                    };
                    fig.top(*v);
                    fig.negatives += u64::from(*v < 0.0);
                }
            }
        }
        Ok(())
    }

    fn group(&mut self, g: usize) -> DfResult<&mut Fig> {
        match self.groups.get_mut(g) {
            Some(f) => Ok(f),
            None => internal_err!("{NAME}: group {g} out of range"),
        }
    }
}

fn float_values(a: &ArrayRef) -> DfResult<ArrayRef> {
    Ok(arrow::compute::cast(a, &DataType::Float64)?)
}

impl GroupsAccumulator for RowGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        let [value] = values else {
            return internal_err!("{NAME} takes one argument");
        };
        self.resize(total_num_groups);
        let value = float_values(value)?;
        let value = value.as_primitive::<Float64Type>();
        if value.null_count() == 0 && opt_filter.is_none() {
            return self.add_dense(value.values(), group_indices);
        }
        for (row, g) in group_indices.iter().enumerate() {
            if !selected(opt_filter, row) {
                continue;
            }
            let fig = self.group(*g)?;
            if value.is_null(row) {
                fig.missing += 1;
                fig.rows += 1;
            } else {
                fig.add(value.value(row));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let figures = emit_to.take_needed(&mut self.groups).into_iter().map(|f| {
            let mut out = vec![0.0; ROWS + 1];
            out[LARGEST] = f.largest;
            out[SECOND] = f.second;
            out[TOTAL] = f.total;
            out[NEGATIVES] = f.negatives as f64;
            out[MISSING] = f.missing as f64;
            out[ROWS] = f.rows as f64;
            out
        });
        Ok(Arc::new(list_array::<Float64Type>(figures)?))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let groups = emit_to.take_needed(&mut self.groups);
        let floats = |f: fn(&Fig) -> f64| -> ArrayRef { Arc::new(groups.iter().map(f).collect::<Float64Array>()) };
        let counts = |f: fn(&Fig) -> u64| -> ArrayRef { Arc::new(groups.iter().map(f).collect::<UInt64Array>()) };
        Ok(vec![
            floats(|f| f.largest),
            floats(|f| f.second),
            floats(|f| f.total),
            counts(|f| f.negatives),
            counts(|f| f.missing),
            counts(|f| f.rows),
        ])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> DfResult<()> {
        let [largest, second, total, negatives, missing, rows] = values else {
            return internal_err!("{NAME}: unexpected state");
        };
        self.resize(total_num_groups);
        let (largest, second, total) = (
            largest.as_primitive::<Float64Type>(),
            second.as_primitive::<Float64Type>(),
            total.as_primitive::<Float64Type>(),
        );
        let (negatives, missing, rows) = (
            negatives.as_primitive::<UInt64Type>(),
            missing.as_primitive::<UInt64Type>(),
            rows.as_primitive::<UInt64Type>(),
        );
        for (row, g) in group_indices.iter().enumerate() {
            if largest.is_null(row) {
                continue;
            }
            self.group(*g)?.merge(Fig {
                largest: largest.value(row),
                second: second.value(row),
                total: total.value(row),
                negatives: negatives.value(row),
                missing: missing.value(row),
                rows: rows.value(row),
            });
        }
        Ok(())
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> DfResult<Vec<ArrayRef>> {
        let [value] = values else {
            return internal_err!("{NAME} takes one argument");
        };
        let value = float_values(value)?;
        let value = value.as_primitive::<Float64Type>();
        let mut single = RowGroups::default();
        single.resize(value.len());
        for (row, fig) in single.groups.iter_mut().enumerate() {
            if !selected(opt_filter, row) {
                continue;
            }
            if value.is_null(row) {
                fig.missing += 1;
                fig.rows += 1;
            } else {
                fig.add(value.value(row));
            }
        }
        single.state(EmitTo::All)
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.groups.capacity() * std::mem::size_of::<Fig>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With one row per entity, the figures equal the general contributions
    /// function's, through partial states and a merge.
    #[test]
    fn with_one_row_per_entity_the_figures_equal_the_general_function() -> DfResult<()> {
        let raw = [
            Some(5.0),
            Some(7.0),
            Some(-1.0),
            None,
            Some(3.0),
            Some(9.5),
            Some(0.0),
            None,
        ];
        let groups = [0, 0, 1, 1, 0, 1, 0, 0];
        let values: ArrayRef = Arc::new(Float64Array::from(raw.to_vec()));
        let entities: ArrayRef = Arc::new(UInt64Array::from((1..=raw.len() as u64).collect::<Vec<_>>()));

        let schema = arrow::datatypes::Schema::new(vec![
            Field::new("v", DataType::Float64, true),
            Field::new("e", DataType::UInt64, true),
        ]);
        let exprs = [
            datafusion::physical_expr::expressions::col("v", &schema)?,
            datafusion::physical_expr::expressions::col("e", &schema)?,
        ];
        let fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
        let args = AccumulatorArgs {
            return_field: Arc::new(Field::new("out", list_of(DataType::Float64), true)),
            schema: &schema,
            ignore_nulls: false,
            order_bys: &[],
            is_reversed: false,
            name: "out",
            is_distinct: false,
            exprs: &exprs,
            expr_fields: &fields,
        };
        let mut g = crate::measured::udaf(u64::MAX, 0)
            .inner()
            .create_groups_accumulator(args)?;
        g.update_batch(&[values.clone(), entities], &groups, None, 2)?;
        let expected = g.evaluate(EmitTo::All)?.as_struct().column(0).clone();

        // Split in two partial aggregates, one of them via convert_to_state.
        let mut a = RowGroups::default();
        a.update_batch(&[values.slice(0, 5)], &groups[..5], None, 2)?;
        let b = RowGroups::default().convert_to_state(&[values.slice(5, 3)], None)?;
        let mut merged = RowGroups::default();
        merged.merge_batch(&a.state(EmitTo::All)?, &[0, 1], 2)?;
        merged.merge_batch(&b, &groups[5..], 2)?;
        let got = merged.evaluate(EmitTo::All)?;
        let (got, expected) = (got.as_list::<i32>(), expected.as_list::<i32>());
        assert_eq!(got.len(), expected.len());
        for g in 0..got.len() {
            let (mine, general) = (got.value(g), expected.value(g));
            // The shared figures first, then the row count the general function lacks.
            assert_eq!(mine.slice(0, ROWS).as_ref(), general.as_ref(), "group {g}");
        }
        // Group 0: 5, 7, 3, 0 and one missing (five rows); group 1: -1, 9.5
        // and one missing (three rows).
        assert_eq!(
            got.value(0).as_primitive::<Float64Type>().values().to_vec(),
            vec![7.0, 5.0, 15.0, 0.0, 1.0, 5.0]
        );
        assert_eq!(
            got.value(1).as_primitive::<Float64Type>().values().to_vec(),
            vec![9.5, 0.0, 8.5, 1.0, 1.0, 3.0]
        );
        Ok(())
    }

    /// The batch path that skips rows below every group's second largest
    /// finds the same figures as taking each row in turn.
    #[test]
    fn the_dense_batch_path_equals_row_by_row() -> DfResult<()> {
        let mut next = crate::test_rng(0x9e37_79b9_7f4a_7c15);
        let (rows, groups) = (20_000, 37);
        let values: Vec<f64> = (0..rows).map(|_| (next() % 20_000) as f64 - 500.0).collect();
        let group_of: Vec<usize> = (0..rows).map(|_| (next() % groups as u64) as usize).collect();
        let mut expected = vec![Fig::default(); groups];
        for (v, g) in values.iter().zip(&group_of) {
            expected[*g].add(*v);
        }
        let mut dense = RowGroups::default();
        for start in (0..rows).step_by(4096) {
            let end = (start + 4096).min(rows);
            let batch: ArrayRef = Arc::new(Float64Array::from(values[start..end].to_vec()));
            dense.update_batch(&[batch], &group_of[start..end], None, groups)?;
        }
        for (got, want) in dense.groups.iter().zip(&expected) {
            assert_eq!(
                (got.largest, got.second, got.total, got.negatives, got.rows),
                (want.largest, want.second, want.total, want.negatives, want.rows)
            );
        }
        assert!(expected.iter().all(|f| f.negatives > 0 && f.second > 19_000.0));
        Ok(())
    }

    /// The job's `avg` and `sum` of a float column, and its `count(*)`, are
    /// fused into the contributions (see `aggregate_rule::fused_per_row`):
    /// DataFusion's own results and the ones derived from the figures agree
    /// bit for bit, with
    /// nulls, negatives, all-null groups, several partitions, and partial
    /// aggregation skipped (every row turned into a state) or not.
    #[test]
    fn the_total_gives_datafusions_float_mean_and_sum_bit_for_bit() -> DfResult<()> {
        use datafusion::datasource::MemTable;
        use datafusion::prelude::{SessionConfig, SessionContext};
        let mut next = crate::test_rng(0x51_7cc1_b727_220a);
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Float64, true),
        ]));
        let mut partitions = Vec::new();
        for p in 0..3 {
            let mut batches = Vec::new();
            for _ in 0..4 {
                let rows = 1000;
                let k: Vec<i64> = (0..rows)
                    .map(|_| (next() % if p == 0 { 39 } else { 40 }) as i64)
                    .collect();
                // Group 39 holds only nulls, and the first partition no nulls at all
                // (the batch path); values span magnitudes so that the order of
                // additions shows.
                let v: Vec<Option<f64>> = k
                    .iter()
                    .map(|k| {
                        let x = (next() % 2_000_001) as f64 - 1_000_000.0;
                        (*k != 39 && (p == 0 || !next().is_multiple_of(11)))
                            .then_some(x * 10f64.powi((next() % 12) as i32 - 6))
                    })
                    .collect();
                let columns: Vec<ArrayRef> = vec![
                    Arc::new(arrow::array::Int64Array::from(k)),
                    Arc::new(Float64Array::from(v)),
                ];
                batches.push(arrow::array::RecordBatch::try_new(schema.clone(), columns)?);
            }
            partitions.push(batches);
        }
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        for skip_partial in [false, true] {
            let mut config = SessionConfig::new().with_target_partitions(3);
            if skip_partial {
                let agg = &mut config.options_mut().execution;
                agg.skip_partial_aggregation_probe_rows_threshold = 1;
                agg.skip_partial_aggregation_probe_ratio_threshold = 0.0;
            }
            let ctx = SessionContext::new_with_config(config);
            ctx.register_udaf(udaf());
            ctx.register_table("t", Arc::new(MemTable::try_new(schema.clone(), partitions.clone())?))?;
            for d in [Derived::Mean, Derived::Sum, Derived::Rows] {
                ctx.register_udf(derived(d));
            }
            let sql = format!(
                "SELECT a, s, inland_mean_of(c) AS m, inland_sum_of(c) AS t, n, inland_rows_of(c) AS r FROM \
                 (SELECT k, avg(v) AS a, sum(v) AS s, count(*) AS n, {NAME}(v) AS c FROM t GROUP BY k)"
            );
            let batches = rt.block_on(async { ctx.sql(&sql).await?.collect().await })?;
            let mut groups = 0;
            for b in &batches {
                let column = |i: usize| b.column(i).as_primitive::<Float64Type>();
                let (a, s, m, t) = (column(0), column(1), column(2), column(3));
                for row in 0..b.num_rows() {
                    let bits = |x: &Float64Array| (!x.is_null(row)).then(|| x.value(row).to_bits());
                    assert_eq!(bits(m), bits(a), "mean of group {row}, skip {skip_partial}");
                    assert_eq!(bits(t), bits(s), "sum of group {row}, skip {skip_partial}");
                    let count = |i: usize| b.column(i).as_primitive::<arrow::datatypes::Int64Type>().value(row);
                    assert_eq!(count(5), count(4), "rows of group {row}, skip {skip_partial}");
                    groups += 1;
                }
            }
            assert_eq!(groups, 40);
        }
        Ok(())
    }
}
