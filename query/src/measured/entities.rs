//! The ordered twin of `inland_entities`: a count with no measure of its
//! own over records keyed by person (`SELECT district, count(*) …`) needs
//! only each group's entity sketch, and where rows arrive in entity order
//! the ordered measure (`measured::ordered`) folds the entities into it as
//! they arrive instead of listing every one between the aggregation's
//! phases. The result is the sketch field of that measure, the same bytes
//! `inland_entities` gives (count below the threshold, sketch from it on).
//! Only `entity_order`, which proves the order, puts it in a plan.

use super::ordered::{self, OrderedGroups};
use super::rows::Rows;
use crate::contrib::Single;
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result as DfResult, internal_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature};
use std::sync::Arc;

/// Its name in plans.
pub(crate) const NAME: &str = "inland_entities_ordered";

#[derive(Debug, PartialEq, Eq, Hash)]
struct OrderedEntities {
    signature: Signature,
    threshold: u64,
    measure: u64,
}

/// The twin of an `inland_entities` of these parameters, with its signature
/// (entity, and optionally the contribution), so the plan's arguments stay.
pub(crate) fn udaf(signature: Signature, threshold: u64, measure: u64) -> AggregateUDF {
    AggregateUDF::from(OrderedEntities {
        signature,
        threshold,
        measure,
    })
}

impl AggregateUDFImpl for OrderedEntities {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Binary)
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let mut one = self.groups();
        one.0.resize(1);
        Ok(Box::new(Single(one)))
    }
    fn state_fields(&self, _args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(ordered::state_fields())
    }
    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(self.groups()))
    }
}

impl OrderedEntities {
    fn groups(&self) -> EntityGroups {
        EntityGroups(OrderedGroups::new(self.threshold, self.measure))
    }
}

/// The ordered measure, fed `inland_entities`' arguments and giving its result.
#[derive(Debug)]
struct EntityGroups(OrderedGroups);

/// `inland_entities`' arguments (entity, and optionally the contribution)
/// as the measure's (contribution, entity); a count's contribution is 0.
fn measure_args(values: &[ArrayRef]) -> DfResult<[ArrayRef; 2]> {
    match values {
        [entity] => Ok([
            Arc::new(Float64Array::from(vec![0.0; entity.len()])),
            Arc::clone(entity),
        ]),
        [entity, value] => Ok([Arc::clone(value), Arc::clone(entity)]),
        _ => internal_err!("{NAME} takes an entity and optionally a contribution"),
    }
}

impl GroupsAccumulator for EntityGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        self.0
            .update_batch(&measure_args(values)?, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let out = self.0.evaluate(emit_to)?;
        match out.as_struct_opt().and_then(|s| s.column_by_name(super::SKETCH)) {
            Some(sketch) => Ok(Arc::clone(sketch)),
            None => internal_err!("{NAME}: the measure gave no sketch"),
        }
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        self.0.state(emit_to)
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> DfResult<()> {
        self.0.merge_batch(values, group_indices, total_num_groups)
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> DfResult<Vec<ArrayRef>> {
        self.0.convert_to_state(&measure_args(values)?, opt_filter)
    }

    fn size(&self) -> usize {
        self.0.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contrib::entities_udaf;
    use crate::measured::ordered::tests::records;
    use crate::measured::tests_args;
    use arrow::array::UInt64Array;

    const THRESHOLD: u64 = 10;

    /// `inland_entities`' arguments: the entity, and the value if `valued`.
    fn args(v: &[Option<f64>], e: &[Option<u64>], valued: bool) -> Vec<ArrayRef> {
        let mut out: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from(e.to_vec()))];
        if valued {
            out.push(Arc::new(Float64Array::from(v.to_vec())));
        }
        out
    }

    /// Byte for byte what `inland_entities` gives, with a contribution and
    /// without: over two partial states (each fed in small batches that cut
    /// through people's rows) merged into a final one, and in one phase
    /// without groups.
    #[test]
    fn the_twin_gives_what_inland_entities_gives() -> DfResult<()> {
        let (v, e, g) = records();
        let half = v.len() / 2;
        for (valued, measure) in [(false, 0), (true, 9)] {
            let listing = entities_udaf(THRESHOLD, false, measure);
            let Some((signature, threshold, m)) = crate::contrib::entities_params(&listing) else {
                panic!("inland_entities has parameters");
            };
            let twin = udaf(signature, threshold, m);
            let mut want = listing.create_groups_accumulator(tests_args())?;
            want.update_batch(&args(&v, &e, valued), &g, None, 4)?;
            let want = want.evaluate(EmitTo::All)?;

            let mut last = twin.create_groups_accumulator(tests_args())?;
            for (from, to) in [(0, half), (half, v.len())] {
                let mut partial = twin.create_groups_accumulator(tests_args())?;
                for at in (from..to).step_by(97) {
                    let end = (at + 97).min(to);
                    partial.update_batch(&args(&v[at..end], &e[at..end], valued), &g[at..end], None, 4)?;
                }
                let state = partial.state(EmitTo::All)?;
                let groups: Vec<usize> = (0..state[0].len()).collect();
                last.merge_batch(&state, &groups, 4)?;
            }
            let got = last.evaluate(EmitTo::All)?;
            assert_eq!(got.as_ref(), want.as_ref(), "valued {valued}");
            let sizes: Vec<usize> = got
                .as_binary::<i32>()
                .iter()
                .map(|b| b.map_or(0, <[u8]>::len))
                .collect();
            assert!(sizes[..3].iter().all(|&n| n > 8) && sizes[3] == 8, "{sizes:?}");

            let all: Vec<usize> = vec![0; v.len()];
            let mut one = listing.create_groups_accumulator(tests_args())?;
            one.update_batch(&args(&v, &e, valued), &all, None, 1)?;
            let mut single = twin.accumulator(tests_args())?;
            single.update_batch(&args(&v, &e, valued))?;
            let want = datafusion::common::ScalarValue::try_from_array(&one.evaluate(EmitTo::All)?, 0)?;
            assert_eq!(single.evaluate()?, want, "valued {valued}");
        }
        // No rows at all: no entities.
        let twin = udaf(
            Signature::any(1, datafusion::logical_expr::Volatility::Immutable),
            THRESHOLD,
            0,
        );
        let empty = datafusion::common::ScalarValue::Binary(Some(0u64.to_le_bytes().to_vec()));
        assert_eq!(twin.accumulator(tests_args())?.evaluate()?, empty);
        Ok(())
    }
}
