//! `inland_row_contributions(value)`: the contributions figures (see
//! `contrib`) for an aggregation whose input holds each entity at most once,
//! so that each row's value is its entity's whole contribution. The host
//! proves that at registration (the dataset's entity column is unique and
//! never null) and uses this form only when nothing between the scan and
//! the aggregation can repeat a row (no joins). It needs no entity column
//! and no per-entity state: five numbers per group, as cheap as an average.

use crate::contrib::{LARGEST, MISSING, NEGATIVES, SECOND, Single, TOTAL, list_array, list_of, selected};
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, UInt64Array};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result as DfResult, internal_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use std::sync::Arc;

/// The function's name in plans.
pub(crate) const NAME: &str = "inland_row_contributions";

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
        ])
    }
    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(RowGroups::default()))
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
}

impl Fig {
    #[inline(always)]
    fn add(&mut self, v: f64) {
        self.total += v;
        if v > self.largest {
            self.second = self.largest;
            self.largest = v;
        } else if v > self.second {
            self.second = v;
        }
        self.negatives += u64::from(v < 0.0);
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
    }
}

/// Per group: the two largest positive values, the total, and the negative and missing row counts.
#[derive(Debug, Default)]
struct RowGroups {
    groups: Vec<Fig>,
}

impl RowGroups {
    fn resize(&mut self, n: usize) {
        self.groups.resize(n, Fig::default());
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
            for (v, g) in value.values().iter().zip(group_indices) {
                match self.groups.get_mut(*g) {
                    Some(fig) => fig.add(*v),
                    None => return internal_err!("{NAME}: group {g} out of range"),
                }
            }
            return Ok(());
        }
        for (row, g) in group_indices.iter().enumerate() {
            if !selected(opt_filter, row) {
                continue;
            }
            let fig = self.group(*g)?;
            if value.is_null(row) {
                fig.missing += 1;
            } else {
                fig.add(value.value(row));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let figures = emit_to.take_needed(&mut self.groups).into_iter().map(|f| {
            let mut out = vec![0.0; 5];
            out[LARGEST] = f.largest;
            out[SECOND] = f.second;
            out[TOTAL] = f.total;
            out[NEGATIVES] = f.negatives as f64;
            out[MISSING] = f.missing as f64;
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
        ])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> DfResult<()> {
        let [largest, second, total, negatives, missing] = values else {
            return internal_err!("{NAME}: unexpected state");
        };
        self.resize(total_num_groups);
        let (largest, second, total) = (
            largest.as_primitive::<Float64Type>(),
            second.as_primitive::<Float64Type>(),
            total.as_primitive::<Float64Type>(),
        );
        let (negatives, missing) = (
            negatives.as_primitive::<UInt64Type>(),
            missing.as_primitive::<UInt64Type>(),
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
        let mut g = crate::contrib::udaf().inner().create_groups_accumulator(args)?;
        g.update_batch(&[values.clone(), entities], &groups, None, 2)?;
        let expected = g.evaluate(EmitTo::All)?;

        // Split in two partial aggregates, one of them via convert_to_state.
        let mut a = RowGroups::default();
        a.update_batch(&[values.slice(0, 5)], &groups[..5], None, 2)?;
        let b = RowGroups::default().convert_to_state(&[values.slice(5, 3)], None)?;
        let mut merged = RowGroups::default();
        merged.merge_batch(&a.state(EmitTo::All)?, &[0, 1], 2)?;
        merged.merge_batch(&b, &groups[5..], 2)?;
        let got = merged.evaluate(EmitTo::All)?;
        assert_eq!(got.as_list::<i32>(), expected.as_list::<i32>());
        // Group 0: 5, 7, 3, 0 and one missing; group 1: -1, 9.5 and one missing.
        let g0 = got.as_list::<i32>().value(0);
        assert_eq!(
            g0.as_primitive::<Float64Type>().values().to_vec(),
            vec![7.0, 5.0, 15.0, 0.0, 1.0]
        );
        let g1 = got.as_list::<i32>().value(1);
        assert_eq!(
            g1.as_primitive::<Float64Type>().values().to_vec(),
            vec![9.5, 0.0, 8.5, 1.0, 1.0]
        );
        Ok(())
    }
}
