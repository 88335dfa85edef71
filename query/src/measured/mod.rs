//! The several-rows-per-entity path's one hidden accumulator for a measure:
//! `inland_measured_entities(value, entity)` keeps, per group, each
//! entity's sum of `value`, and from that one set gives both what
//! `inland_contributions` gives (the two largest per-entity sums, the total,
//! the negative and missing rows) and what `inland_entities` gives (the
//! entity count and sketch, with each entity's contribution). The two
//! separate accumulators kept the same per-entity sums twice, each sorted
//! and merged on its own; this is most of what the policy adds to a query
//! over records, so it is done once.
//!
//! The result is a struct of the two (`figures`, `sketch`); the rewrite
//! takes each field where the separate columns were.

use crate::contrib::{
    KeySums, LARGEST, MISSING, NEGATIVES, SECOND, TOTAL, each_run, entity_keys, list_array, list_of, sketch_bytes,
    sketch_of,
};
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Float64Array, ListArray, StructArray, UInt64Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type};
use datafusion::common::{Result as DfResult, internal_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use ordered::OrderedGroups;
use rows::{CountColumns, RowCounts, Rows};
use std::sync::Arc;

mod entities;
mod ordered;
mod rows;

/// The function's name in plans.
pub(crate) const NAME: &str = "inland_measured_entities";
/// Its name in plans where rows arrive in entity order.
pub(crate) const ORDERED_NAME: &str = "inland_measured_entities_ordered";
/// The name of `inland_entities`' twin in plans where rows arrive in entity order.
#[cfg(test)]
pub(crate) use entities::NAME as ORDERED_ENTITIES_NAME;
/// The result's field with the contributions' five figures.
pub(crate) const FIGURES: &str = "figures";
/// The result's field with the entity sketch (or count, below the threshold).
pub(crate) const SKETCH: &str = "sketch";

#[derive(Debug, PartialEq, Eq, Hash)]
struct Measured {
    signature: Signature,
    threshold: u64,
    measure: u64,
    /// Rows reach each partial aggregation in entity order (`entity_order`
    /// proved it): partial states fold their inner entities
    /// (`measured::ordered`) rather than list them.
    ordered: bool,
}

/// `inland_measured_entities(value, entity)`; see the module documentation.
/// `threshold` and `measure` are as for `inland_entities`: groups below the
/// threshold carry their count alone, and the sketch's values add up the
/// measure tagged `measure` (0: none).
pub(crate) fn udaf(threshold: u64, measure: u64) -> AggregateUDF {
    AggregateUDF::from(Measured {
        signature: Signature::any(2, Volatility::Immutable),
        threshold,
        measure,
        ordered: false,
    })
}

/// The same function for rows that reach each partial aggregation in
/// entity order, with the position of its entity argument, or `None` if
/// `udf` is neither this function nor `inland_entities` (or is already a
/// twin). Only `entity_order`, which proves the order, calls it.
pub(crate) fn ordered_twin(udf: &AggregateUDF) -> Option<(AggregateUDF, usize)> {
    if let Some((signature, threshold, measure)) = crate::contrib::entities_params(udf) {
        return Some((entities::udaf(signature, threshold, measure), 0));
    }
    let m = udf.inner().downcast_ref::<Measured>()?;
    (!m.ordered).then(|| {
        let twin = AggregateUDF::from(Measured {
            signature: m.signature.clone(),
            threshold: m.threshold,
            measure: m.measure,
            ordered: true,
        });
        (twin, 1)
    })
}

pub(crate) fn result_fields() -> Fields {
    Fields::from(vec![
        Field::new(FIGURES, list_of(DataType::Float64), true),
        Field::new(SKETCH, DataType::Binary, true),
    ])
}

impl AggregateUDFImpl for Measured {
    fn name(&self) -> &str {
        if self.ordered { ORDERED_NAME } else { NAME }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Struct(result_fields()))
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        if self.ordered {
            let mut one = OrderedGroups::new(self.threshold, self.measure);
            one.resize(1);
            return Ok(Box::new(crate::contrib::Single(one)));
        }
        let mut one = self.groups();
        one.resize(1);
        Ok(Box::new(crate::contrib::Single(one)))
    }
    fn state_fields(&self, _args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        if self.ordered {
            return Ok(ordered::state_fields());
        }
        let mut fields = vec![
            Arc::new(Field::new("entities", list_of(DataType::UInt64), true)),
            Arc::new(Field::new("sums", list_of(DataType::Float64), true)),
        ];
        fields.extend(rows::count_fields());
        Ok(fields)
    }
    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn GroupsAccumulator>> {
        if self.ordered {
            return Ok(Box::new(OrderedGroups::new(self.threshold, self.measure)));
        }
        Ok(Box::new(self.groups()))
    }
}

impl Measured {
    fn groups(&self) -> MeasuredGroups {
        MeasuredGroups {
            threshold: self.threshold,
            measure: self.measure,
            ..MeasuredGroups::default()
        }
    }
}

/// Per group: each entity's sum, and the rows no entity's sum holds.
#[derive(Debug, Default)]
struct MeasuredGroups {
    sums: Vec<KeySums>,
    counts: Vec<RowCounts>,
    entries: usize,
    threshold: u64,
    measure: u64,
}

/// What one group's state is, taken out of the accumulator.
struct Group {
    sums: Vec<(u64, f64)>,
    counts: RowCounts,
}

impl Rows for MeasuredGroups {
    fn resize(&mut self, n: usize) {
        self.sums.resize_with(n, KeySums::default);
        self.counts.resize(n, RowCounts::default());
    }

    fn counts(&mut self, group: usize) -> Option<&mut RowCounts> {
        self.counts.get_mut(group)
    }

    fn entity(&mut self, group: usize, entity: u64, v: f64) -> DfResult<()> {
        let Some(sums) = self.sums.get_mut(group) else {
            return internal_err!("{NAME}: group {group} out of range");
        };
        let before = sums.len();
        sums.push(entity, v);
        self.entries = (self.entries + sums.len()).saturating_sub(before);
        Ok(())
    }

    /// The entries added are counted once at the end.
    fn plain(&mut self, values: &[f64], keys: &[u64], group_indices: &[usize]) -> DfResult<()> {
        let (sums, counts) = (&mut self.sums, &mut self.counts);
        let mut grown = 0isize;
        for ((&group, &key), &v) in group_indices.iter().zip(keys).zip(values) {
            let (Some(s), Some(c)) = (sums.get_mut(group), counts.get_mut(group)) else {
                return internal_err!("{NAME}: group {group} out of range");
            };
            c.negatives += u64::from(v < 0.0);
            let before = s.len();
            s.push(key, v);
            grown += s.len() as isize - before as isize;
        }
        self.entries = self.entries.saturating_add_signed(grown);
        Ok(())
    }
}

impl MeasuredGroups {
    fn take(&mut self, emit_to: EmitTo) -> Vec<Group> {
        let sums = emit_to.take_needed(&mut self.sums);
        self.entries = self.entries.saturating_sub(sums.iter().map(|s| s.len()).sum());
        let counts = emit_to.take_needed(&mut self.counts);
        sums.into_iter()
            .zip(counts)
            .map(|(s, counts)| Group {
                sums: s.finish(),
                counts,
            })
            .collect()
    }
}

/// The groups' entries as two list arrays (keys, sums), each value copied
/// once, straight into the arrays' buffers: a partial state lists every
/// entity of its groups, a million entries over records of a million people.
fn entry_lists(groups: &[Group]) -> DfResult<(ListArray, ListArray)> {
    let n: usize = groups.iter().map(|g| g.sums.len()).sum();
    let (mut keys, mut sums) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for g in groups {
        for &(k, v) in &g.sums {
            keys.push(k);
            sums.push(v);
        }
    }
    let offsets = OffsetBuffer::from_lengths(groups.iter().map(|g| g.sums.len()));
    let list = |t: DataType, values: ArrayRef| {
        ListArray::try_new(Arc::new(Field::new("item", t, true)), offsets.clone(), values, None)
    };
    Ok((
        list(DataType::UInt64, Arc::new(UInt64Array::from(keys)))?,
        list(DataType::Float64, Arc::new(Float64Array::from(sums)))?,
    ))
}

/// A set of contributions as the figures need it: their total and the
/// two largest (from 0: a negative contribution is never the largest).
/// Tallies of disjoint sets merge exactly.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Tally {
    pub(crate) total: f64,
    pub(crate) first: f64,
    pub(crate) second: f64,
}

impl Tally {
    pub(crate) fn add(&mut self, v: f64) {
        self.total += v;
        self.rank(v);
    }

    fn rank(&mut self, v: f64) {
        if v > self.first {
            self.second = self.first;
            self.first = v;
        } else if v > self.second {
            self.second = v;
        }
    }

    /// Adds the tally of a set disjoint from this one.
    pub(crate) fn merge(&mut self, other: &Tally) {
        self.total += other.total;
        self.rank(other.first);
        self.rank(other.second);
    }

    /// The five figures of a group (see `contrib`).
    pub(crate) fn figures(&self, negatives: u64, missing: u64) -> Vec<f64> {
        let mut out = vec![0.0; 5];
        out[LARGEST] = self.first;
        out[SECOND] = self.second;
        out[TOTAL] = self.total;
        out[NEGATIVES] = negatives as f64;
        out[MISSING] = missing as f64;
        out
    }
}

/// The five figures of one group (see `contrib`): the rows without an
/// entity are one contributor beside the entities.
fn figures(g: &Group) -> Vec<f64> {
    let mut tally = Tally::default();
    for v in g.sums.iter().map(|(_, v)| *v).chain(g.counts.unknown()) {
        tally.add(v);
    }
    tally.figures(g.counts.negatives, g.counts.missing)
}

impl GroupsAccumulator for MeasuredGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        rows::update(self, NAME, values, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let (threshold, measure) = (self.threshold, self.measure);
        let groups = self.take(emit_to);
        let figures = list_array::<Float64Type>(groups.iter().map(figures))?;
        let sketches: BinaryArray = groups
            .into_iter()
            .map(|g| {
                let n = g.sums.len() as u64;
                Some(if n < threshold.max(1) {
                    n.to_le_bytes().to_vec()
                } else {
                    sketch_bytes(&sketch_of(measure, g.sums), threshold)
                })
            })
            .collect();
        Ok(Arc::new(StructArray::try_new(
            result_fields(),
            vec![Arc::new(figures), Arc::new(sketches)],
            None,
        )?))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let groups = self.take(emit_to);
        let (keys, values) = entry_lists(&groups)?;
        let counts: Vec<RowCounts> = groups.iter().map(|g| g.counts).collect();
        let mut state: Vec<ArrayRef> = vec![Arc::new(keys), Arc::new(values)];
        state.extend(rows::count_columns(&counts));
        Ok(state)
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> DfResult<()> {
        let [keys, sums, negatives, missing, unknown_rows, unknown_sum] = values else {
            return internal_err!("{NAME}: unexpected state");
        };
        let (keys, sums) = (keys.as_list::<i32>(), sums.as_list::<i32>());
        let counts = CountColumns::of([negatives, missing, unknown_rows, unknown_sum], NAME)?;
        self.resize(total_num_groups);
        let key_values = entity_keys(keys.values())?;
        let Some(sum_values) = sums.values().as_primitive_opt::<Float64Type>() else {
            return internal_err!("{NAME}: unexpected state");
        };
        for (row, &group) in group_indices.iter().enumerate() {
            if keys.is_null(row) {
                continue;
            }
            if let Some(c) = self.counts.get_mut(group) {
                counts.merge_into(row, c);
            }
        }
        // Partial states list each group's entities sorted, once each.
        each_run(keys, group_indices, |group, range| {
            let Some(sums) = self.sums.get_mut(group) else {
                return internal_err!("{NAME}: group {group} out of range");
            };
            let before = sums.len();
            sums.extend_run(&key_values.values()[range.clone()], &sum_values.values()[range]);
            self.entries = (self.entries + sums.len()).saturating_sub(before);
            Ok(())
        })
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> DfResult<Vec<ArrayRef>> {
        // Each row its own group: run the rows through a fresh accumulator.
        let rows = values.first().map_or(0, |v| v.len());
        let mut one = MeasuredGroups {
            threshold: self.threshold,
            measure: self.measure,
            ..MeasuredGroups::default()
        };
        let groups: Vec<usize> = (0..rows).collect();
        one.update_batch(values, &groups, opt_filter, rows)?;
        one.state(EmitTo::All)
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.sums.capacity() * std::mem::size_of::<KeySums>()
            + self.counts.capacity() * std::mem::size_of::<RowCounts>()
            // Vectors grow by doubling: up to twice their length.
            + self.entries * std::mem::size_of::<(u64, f64)>() * 2
    }
}

/// Accumulator arguments for tests that make accumulators by hand.
#[cfg(test)]
pub(crate) fn tests_args() -> AccumulatorArgs<'static> {
    static SCHEMA: std::sync::LazyLock<arrow::datatypes::Schema> = std::sync::LazyLock::new(|| {
        arrow::datatypes::Schema::new(vec![
            Field::new("v", DataType::Float64, true),
            Field::new("e", DataType::UInt64, true),
        ])
    });
    static FIELD: std::sync::LazyLock<FieldRef> =
        std::sync::LazyLock::new(|| Arc::new(Field::new("out", DataType::Binary, true)));
    AccumulatorArgs {
        return_field: FIELD.clone(),
        schema: &SCHEMA,
        ignore_nulls: false,
        order_bys: &[],
        is_reversed: false,
        name: "out",
        is_distinct: false,
        exprs: &[],
        expr_fields: &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::UInt64Type;
    use inland_gate::EntitySketch;

    fn keys(v: &[Option<u64>]) -> ArrayRef {
        Arc::new(UInt64Array::from(v.to_vec()))
    }

    fn values(v: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(v.to_vec()))
    }

    /// A batch with no filter and no nulls takes the plain path; the same
    /// rows with an all-true filter take the general one: the same state,
    /// the same figures and sketches, in key order or not.
    #[test]
    fn the_plain_path_gives_what_the_general_path_gives() -> DfResult<()> {
        let spread = |i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let rows = 10_000u64;
        for sorted in [true, false] {
            let mut e: Vec<u64> = (0..rows).map(|i| spread(i / 3 % 2_000)).collect();
            if sorted {
                e.sort_unstable();
            }
            let v: Vec<f64> = (0..rows).map(|i| (i % 17) as f64 - 4.0).collect();
            let g: Vec<usize> = (0..rows as usize).map(|i| i % 5).collect();
            let batch: [ArrayRef; 2] = [Arc::new(Float64Array::from(v)), Arc::new(UInt64Array::from(e))];
            let all = BooleanArray::from(vec![true; rows as usize]);
            let fresh = || {
                Measured {
                    signature: Signature::any(2, Volatility::Immutable),
                    threshold: 3,
                    measure: 9,
                    ordered: false,
                }
                .groups()
            };
            let run = |filter: Option<&BooleanArray>| -> DfResult<(Vec<ArrayRef>, ArrayRef, usize)> {
                let mut acc = fresh();
                acc.update_batch(&batch, &g, filter, 5)?;
                let entries = acc.entries;
                let mut other = fresh();
                other.update_batch(&batch, &g, filter, 5)?;
                Ok((acc.state(EmitTo::All)?, other.evaluate(EmitTo::All)?, entries))
            };
            let (plain_state, plain_out, plain_entries) = run(None)?;
            let (general_state, general_out, general_entries) = run(Some(&all))?;
            assert_eq!(plain_entries, general_entries);
            assert_eq!(plain_state.len(), general_state.len());
            for (a, b) in plain_state.iter().zip(&general_state) {
                assert_eq!(a.as_ref(), b.as_ref());
            }
            assert_eq!(plain_out.as_ref(), general_out.as_ref());
        }
        Ok(())
    }

    /// The same rows through the two separate accumulators and through
    /// this one, split over partial states (one of them by
    /// `convert_to_state`): the figures and the sketch are the same.
    #[test]
    fn one_pass_gives_what_the_contributions_and_the_entities_give() -> DfResult<()> {
        let measure = 0x77;
        let spread = |i: u64| Some(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        // Group 0: entities 1..=12, several rows each, a negative, a
        // missing value, an entity whose only row misses it, and rows
        // without an entity. Group 1: two entities.
        let mut e = Vec::new();
        let mut v = Vec::new();
        let mut g = Vec::new();
        for i in 0..40u64 {
            e.push(spread(1 + i % 12));
            v.push(Some(i as f64 * 2.5 - 3.0));
            g.push(0usize);
        }
        e.extend([spread(13), None, None, spread(2), spread(50), spread(51)]);
        v.extend([None, Some(9.0), None, Some(-4.0), Some(1.0), Some(2.0)]);
        g.extend([0, 0, 0, 0, 1, 1]);
        let (e, v) = (keys(&e), values(&v));

        let udaf = udaf(10, measure);
        let mut a = udaf.inner().create_groups_accumulator(args())?;
        a.update_batch(&[v.slice(0, 30), e.slice(0, 30)], &g[..30], None, 2)?;
        let b = a.convert_to_state(&[v.slice(30, 16), e.slice(30, 16)], None)?;
        let mut merged = udaf.inner().create_groups_accumulator(args())?;
        merged.merge_batch(&a.state(EmitTo::All)?, &[0], 2)?;
        merged.merge_batch(&b, &g[30..], 2)?;
        let out = merged.evaluate(EmitTo::All)?;
        let out = out.as_struct();

        // The figures, computed the plain way: each entity's sum (0 for an
        // entity whose rows miss the value), the rows without an entity as
        // one more contributor, the negative and missing rows.
        let (ev, vv) = (e.as_primitive::<UInt64Type>(), v.as_primitive::<Float64Type>());
        for group in 0..2 {
            let mut sums: std::collections::BTreeMap<u64, f64> = Default::default();
            let (mut unknown, mut negatives, mut missing) = (None::<f64>, 0.0, 0.0);
            for row in (0..g.len()).filter(|&r| g[r] == group) {
                let value = vv.is_valid(row).then(|| vv.value(row));
                missing += f64::from(u8::from(value.is_none()));
                negatives += f64::from(u8::from(value.is_some_and(|x| x < 0.0)));
                if ev.is_valid(row) {
                    *sums.entry(ev.value(row)).or_default() += value.unwrap_or(0.0);
                } else if let Some(x) = value {
                    *unknown.get_or_insert(0.0) += x;
                }
            }
            let mut all: Vec<f64> = sums.values().copied().chain(unknown).collect();
            all.sort_by(|a, b| b.total_cmp(a));
            let top = |k: usize| all.get(k).copied().unwrap_or(0.0).max(0.0);
            let expected = [top(0), top(1), all.iter().sum(), negatives, missing];
            let got = out.column(0).as_list::<i32>().value(group);
            assert_eq!(
                got.as_primitive::<Float64Type>().values().to_vec(),
                expected.to_vec(),
                "group {group}"
            );
        }

        let mut s = crate::contrib::entities_udaf(10, false, measure)
            .inner()
            .create_groups_accumulator(args())?;
        s.update_batch(&[e, v], &g, None, 2)?;
        let expected_sketches = s.evaluate(EmitTo::All)?;
        assert_eq!(out.column(1).as_binary::<i32>(), expected_sketches.as_binary::<i32>());
        // Thirteen entities: a sketch; two: their count alone.
        let sketch = EntitySketch::from_bytes(out.column(1).as_binary::<i32>().value(0));
        assert_eq!(sketch.map(|s| s.entities()), Some(13));
        assert_eq!(out.column(1).as_binary::<i32>().value(1), 2u64.to_le_bytes().as_slice());
        Ok(())
    }

    /// Sums per entity, with the negative and missing rows counted and
    /// the rows without an entity as one contributor.
    #[test]
    fn contributions_sum_per_entity_and_count_negative_and_missing_rows() -> DfResult<()> {
        let v = values(&[Some(5.0), Some(7.0), Some(-1.0), None, Some(3.0)]);
        let e = keys(&[Some(1), Some(2), Some(1), Some(3), None]);
        let udaf = udaf(u64::MAX, 0);
        let mut a = udaf.inner().create_groups_accumulator(args())?;
        a.update_batch(&[v, e], &[0; 5], None, 1)?;
        let mut merged = udaf.inner().create_groups_accumulator(args())?;
        merged.merge_batch(&a.state(EmitTo::All)?, &[0], 1)?;
        let out = merged.evaluate(EmitTo::All)?;
        let figures = out.as_struct().column(0).as_list::<i32>().value(0);
        // Entity 1: 5 - 1 = 4; entity 2: 7; entity 3: nothing; unknown: 3.
        assert_eq!(
            figures.as_primitive::<Float64Type>().values().to_vec(),
            vec![7.0, 4.0, 14.0, 1.0, 1.0]
        );
        // No threshold is reached: the sketch column holds the count alone.
        assert_eq!(
            out.as_struct().column(1).as_binary::<i32>().value(0),
            3u64.to_le_bytes().as_slice()
        );
        Ok(())
    }

    fn args() -> AccumulatorArgs<'static> {
        super::tests_args()
    }
}
