//! The measure accumulator (`measured`) for rows that reach each partial
//! aggregation in entity order: records keyed by person at registration
//! (`dataset add --entity`), scanned with nothing between the scan and the
//! partial aggregation that could reorder them (`entity_order` proves it).
//!
//! A group's entities then come one after another, so an entity is finished
//! when the next one starts: counted, added to the group's total and its two
//! largest, and put in the group's sketch, in the partial aggregation and in
//! one pass. A partial state carries those folded figures instead of listing
//! every entity, which is what made records cost several times the query.
//!
//! Only entities strictly inside a state's key range are folded. The first
//! and the last stay listed, because another partition (or this partition's
//! next emission) may hold more of their rows; listed entries merge exactly,
//! as in `measured`. Folding is exact only if no other state holds an
//! entity inside a folded range, so the final aggregation checks exactly
//! that, and a partial checks that its rows come in order: either failing
//! fails the query (an internal error, never a wrong figure). The plan rule
//! makes both impossible; the checks keep a mistake in it from counting a
//! person twice.

use super::rows::{self, CountColumns, RowCounts, Rows};
use super::{ORDERED_NAME, Tally, result_fields};
use crate::contrib::{KeySums, entity_keys, put, sketch_bytes, sketch_of};
use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Float64Array, ListArray, StructArray, UInt64Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result as DfResult, internal_err};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use inland_gate::EntitySketch;
use std::sync::Arc;

/// Entities a group lists before it starts folding: below this a sketch
/// (2.3 KB) costs more than the list, and a query with many small groups
/// keeps no sketch per group.
const LISTED_AT_MOST: usize = 128;

/// The partial state's columns.
pub(crate) fn state_fields() -> Vec<FieldRef> {
    let list = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
    let f = |name: &str, t: DataType| Arc::new(Field::new(name, t, true));
    let mut fields = vec![
        f("entities", list(DataType::UInt64)),
        f("sums", list(DataType::Float64)),
        f("folded", DataType::UInt64),
        f("folded_total", DataType::Float64),
        f("folded_first", DataType::Float64),
        f("folded_second", DataType::Float64),
        f("folded_sketch", DataType::Binary),
    ];
    fields.extend(rows::count_fields());
    fields
}

/// Entities folded into figures: how many, their tally, and their sketch
/// (none where no sketch is wanted).
#[derive(Debug, Default)]
struct Folded {
    count: u64,
    tally: Tally,
    sketch: Option<EntitySketch>,
}

impl Folded {
    fn new(measure: u64, sketched: bool) -> Self {
        Folded {
            sketch: sketched.then(|| EntitySketch::of_measure(measure)),
            ..Folded::default()
        }
    }

    fn add(&mut self, measure: u64, key: u64, v: f64) {
        self.count += 1;
        self.tally.add(v);
        if let Some(s) = &mut self.sketch {
            put(s, measure, key, v);
        }
    }
}

/// One group: the entity whose rows are arriving, the finished entities
/// still listed, those folded, and (in the final) the key ranges of the
/// merged states that folded some.
#[derive(Debug, Default)]
struct Slot {
    open: Option<(u64, f64)>,
    listed: KeySums,
    folded: Option<Box<Folded>>,
    ranges: Vec<Range>,
    counts: RowCounts,
}

/// A merged state that folded entities: its first and last listed keys,
/// and the tally of what it folded (added at the end, in key order, so a
/// total does not depend on which state arrived first).
type Range = (u64, u64, Tally);

/// The accumulator; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct OrderedGroups {
    slots: Vec<Slot>,
    threshold: u64,
    measure: u64,
    /// Entries listed in all groups, and groups folding (for `size`).
    entries: usize,
    folding: usize,
    /// Merged states' ranges held in all groups (for `size`).
    ranges: usize,
}

fn out_of_order() -> DfResult<()> {
    internal_err!("{ORDERED_NAME}: rows did not arrive in entity order")
}

impl OrderedGroups {
    pub(crate) fn new(threshold: u64, measure: u64) -> Self {
        OrderedGroups {
            threshold,
            measure,
            ..OrderedGroups::default()
        }
    }

    /// A sketch is kept only where some group may reach the threshold.
    fn sketched(&self) -> bool {
        self.threshold != u64::MAX
    }

    /// A run of consecutive rows of one entity in one group, `sum` their
    /// values added in order: added to the entity arriving (value by value,
    /// so its sum is the same as row by row), or (a new entity) the one
    /// before it is finished.
    fn absorb(&mut self, group: usize, key: u64, sum: f64, run: &[f64], negatives: u64) -> DfResult<()> {
        let Some(slot) = self.slots.get_mut(group) else {
            return internal_err!("{ORDERED_NAME}: group {group} out of range");
        };
        slot.counts.negatives += negatives;
        match &mut slot.open {
            Some((k, open)) if *k == key => {
                for v in run {
                    *open += v;
                }
                return Ok(());
            }
            Some((k, _)) if key < *k => return out_of_order(),
            _ => {}
        }
        if let Some((k, open)) = slot.open.replace((key, sum)) {
            self.finish(group, k, open);
        }
        Ok(())
    }

    /// An entity all of whose rows in this segment have arrived: listed
    /// while the group is small (the first always stays listed), folded after.
    fn finish(&mut self, group: usize, key: u64, sum: f64) {
        let (measure, sketched) = (self.measure, self.sketched());
        let Some(slot) = self.slots.get_mut(group) else {
            return;
        };
        if let Some(f) = &mut slot.folded {
            f.add(measure, key, sum);
            return;
        }
        slot.listed.append(key, sum);
        self.entries += 1;
        if slot.listed.len() > LISTED_AT_MOST {
            let rest = slot.listed.split_off(1);
            self.entries = self.entries.saturating_sub(rest.len());
            let mut f = Folded::new(measure, sketched);
            for (k, v) in rest {
                f.add(measure, k, v);
            }
            slot.folded = Some(Box::new(f));
            self.folding += 1;
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> Vec<Slot> {
        let taken = emit_to.take_needed(&mut self.slots);
        for s in &taken {
            self.entries = self.entries.saturating_sub(s.listed.len());
            self.folding = self.folding.saturating_sub(usize::from(s.folded.is_some()));
            self.ranges = self.ranges.saturating_sub(s.ranges.len());
        }
        taken
    }
}

impl Rows for OrderedGroups {
    fn resize(&mut self, n: usize) {
        if self.slots.len() < n {
            self.slots.resize_with(n, Slot::default);
        }
    }

    fn counts(&mut self, group: usize) -> Option<&mut RowCounts> {
        self.slots.get_mut(group).map(|s| &mut s.counts)
    }

    /// One row: a run of one.
    fn entity(&mut self, group: usize, key: u64, v: f64) -> DfResult<()> {
        self.absorb(group, key, v, std::slice::from_ref(&v), 0)
    }

    /// Each run of rows of one entity in one group is summed in a
    /// tight loop and reaches the group once, so only the run's ends cost a
    /// lookup (about three rows a person in records).
    fn plain(&mut self, values: &[f64], keys: &[u64], group_indices: &[usize]) -> DfResult<()> {
        let n = values.len().min(keys.len()).min(group_indices.len());
        let (values, keys, groups) = (&values[..n], &keys[..n], &group_indices[..n]);
        let mut start = 0;
        while let (Some(&group), Some(&key), Some(&first)) = (groups.get(start), keys.get(start), values.get(start)) {
            let (mut sum, mut negatives) = (first, u64::from(first < 0.0));
            let mut end = start + 1;
            while end < n && groups[end] == group && keys[end] == key {
                let v = values[end];
                sum += v;
                negatives += u64::from(v < 0.0);
                end += 1;
            }
            self.absorb(group, key, sum, &values[start..end], negatives)?;
            start = end;
        }
        Ok(())
    }
}

/// A slot's listed entries with the arriving entity, in key order, taken
/// out of it.
fn entries_of(slot: &mut Slot) -> Vec<(u64, f64)> {
    let mut listed = std::mem::take(&mut slot.listed);
    if let Some((k, v)) = slot.open.take() {
        listed.append(k, v);
    }
    listed.finish()
}

/// Whether some entity counted in a folded range is also counted elsewhere:
/// a listed entry strictly inside a folded range, or two folded ranges
/// whose insides meet. `listed` is in key order; `ranges` are left in it.
fn counted_twice(listed: &[(u64, f64)], ranges: &mut [Range]) -> bool {
    ranges.sort_unstable_by_key(|&(lo, hi, _)| (lo, hi));
    if ranges.windows(2).any(|w| w[1].0 < w[0].1) {
        return true;
    }
    ranges.iter().any(|&(lo, hi, _)| {
        let after = listed.partition_point(|(k, _)| *k <= lo);
        listed.get(after).is_some_and(|(k, _)| *k < hi)
    })
}

impl GroupsAccumulator for OrderedGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> DfResult<()> {
        rows::update(self, ORDERED_NAME, values, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let (threshold, measure) = (self.threshold, self.measure);
        let slots = self.take(emit_to);
        let mut figures: Vec<Vec<f64>> = Vec::with_capacity(slots.len());
        let mut sketches: Vec<Vec<u8>> = Vec::with_capacity(slots.len());
        for mut slot in slots {
            let (negatives, missing) = (slot.counts.negatives, slot.counts.missing);
            let unknown = slot.counts.unknown();
            let listed = entries_of(&mut slot);
            let (folded, mut ranges) = (slot.folded, slot.ranges);
            if counted_twice(&listed, &mut ranges) {
                return internal_err!("{ORDERED_NAME}: partial states overlap in entity order");
            }
            let mut tally = Tally::default();
            for v in listed.iter().map(|(_, v)| *v).chain(unknown) {
                tally.add(v);
            }
            let n = listed.len() as u64 + folded.as_ref().map_or(0, |f| f.count);
            if let Some(f) = &folded {
                tally.merge(&f.tally);
            }
            for (_, _, t) in &ranges {
                tally.merge(t);
            }
            figures.push(tally.figures(negatives, missing));
            sketches.push(if n < threshold.max(1) {
                n.to_le_bytes().to_vec()
            } else {
                let mut sketch = sketch_of(measure, listed);
                match folded.as_ref().map(|f| (f.count, f.sketch.as_ref())) {
                    Some((c, Some(s))) if c > 0 => sketch.add(s),
                    Some((c, None)) if c > 0 => {
                        return internal_err!("{ORDERED_NAME}: folded entities without their sketch");
                    }
                    _ => {}
                }
                sketch_bytes(&sketch, threshold)
            });
        }
        let figures = crate::contrib::list_array::<Float64Type>(figures.into_iter())?;
        let sketches: BinaryArray = sketches.into_iter().map(Some).collect();
        Ok(Arc::new(StructArray::try_new(
            result_fields(),
            vec![Arc::new(figures), Arc::new(sketches)],
            None,
        )?))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let slots = self.take(emit_to);
        let mut lengths = Vec::with_capacity(slots.len());
        let (mut keys, mut sums) = (Vec::new(), Vec::new());
        let mut counts = Vec::with_capacity(slots.len());
        let mut tallies: Vec<Tally> = Vec::with_capacity(slots.len());
        let mut sketches: Vec<Option<Vec<u8>>> = Vec::with_capacity(slots.len());
        let mut row_counts = Vec::with_capacity(slots.len());
        for mut slot in slots {
            row_counts.push(slot.counts);
            // A merged state's ranges have no place in a state: its folded
            // people would seem to lie between its first and last keys, where
            // other states' listed people do. Only a final aggregation that
            // spilled would ask (the engine's have no disk to spill to).
            if !slot.ranges.is_empty() {
                return internal_err!("{ORDERED_NAME}: merged states cannot be passed on");
            }
            let listed = entries_of(&mut slot);
            let folded = slot.folded;
            lengths.push(listed.len());
            for (k, v) in listed {
                keys.push(k);
                sums.push(v);
            }
            let folded = folded.map(|f| *f).unwrap_or_default();
            counts.push(folded.count);
            tallies.push(folded.tally);
            sketches.push(folded.sketch.filter(|_| folded.count > 0).map(|s| s.to_bytes()));
        }
        let offsets = OffsetBuffer::from_lengths(lengths);
        let list = |t: DataType, values: ArrayRef| {
            ListArray::try_new(Arc::new(Field::new("item", t, true)), offsets.clone(), values, None)
        };
        let floats = |f: fn(&Tally) -> f64| Arc::new(tallies.iter().map(f).collect::<Float64Array>()) as ArrayRef;
        let mut state: Vec<ArrayRef> = vec![
            Arc::new(list(DataType::UInt64, Arc::new(UInt64Array::from(keys)))?),
            Arc::new(list(DataType::Float64, Arc::new(Float64Array::from(sums)))?),
            Arc::new(UInt64Array::from(counts)),
            floats(|t| t.total),
            floats(|t| t.first),
            floats(|t| t.second),
            Arc::new(sketches.iter().map(|s| s.as_deref()).collect::<BinaryArray>()),
        ];
        state.extend(rows::count_columns(&row_counts));
        Ok(state)
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> DfResult<()> {
        let [
            keys,
            sums,
            count,
            total,
            first,
            second,
            sketch,
            negatives,
            missing,
            unknown_rows,
            unknown_sum,
        ] = values
        else {
            return internal_err!("{ORDERED_NAME}: unexpected state");
        };
        let (Some(keys), Some(sums)) = (keys.as_list_opt::<i32>(), sums.as_list_opt::<i32>()) else {
            return internal_err!("{ORDERED_NAME}: unexpected state");
        };
        let counts = CountColumns::of([negatives, missing, unknown_rows, unknown_sum], ORDERED_NAME)?;
        let Some(count) = count.as_primitive_opt::<UInt64Type>() else {
            return internal_err!("{ORDERED_NAME}: unexpected state");
        };
        let floats = [total, first, second].map(|c| c.as_primitive_opt::<Float64Type>());
        let [Some(total), Some(first), Some(second)] = floats else {
            return internal_err!("{ORDERED_NAME}: unexpected state");
        };
        let Some(sketch) = sketch.as_binary_opt::<i32>() else {
            return internal_err!("{ORDERED_NAME}: unexpected state");
        };
        let key_values = entity_keys(keys.values())?.values();
        let Some(sum_values) = sums.values().as_primitive_opt::<Float64Type>() else {
            return internal_err!("{ORDERED_NAME}: unexpected state");
        };
        let sum_values = sum_values.values();
        self.resize(total_num_groups);
        let (measure, sketched) = (self.measure, self.sketched());
        let offsets = keys.value_offsets();
        for (row, &group) in group_indices.iter().enumerate() {
            let Some(slot) = self.slots.get_mut(group) else {
                return internal_err!("{ORDERED_NAME}: group {group} out of range");
            };
            counts.merge_into(row, &mut slot.counts);
            let range = if keys.is_null(row) {
                0..0
            } else {
                offsets[row] as usize..offsets[row + 1] as usize
            };
            let listed = &key_values[range.clone()];
            let before = slot.listed.len();
            slot.listed.extend_run(listed, &sum_values[range]);
            self.entries = (self.entries + slot.listed.len()).saturating_sub(before);
            let folded = if count.is_null(row) { 0 } else { count.value(row) };
            if folded == 0 {
                continue;
            }
            // Folded entities lie strictly between the state's first and
            // last listed ones.
            let (Some(&lo), Some(&hi)) = (listed.first(), listed.last()) else {
                return internal_err!("{ORDERED_NAME}: folded entities outside a range");
            };
            if lo >= hi {
                return internal_err!("{ORDERED_NAME}: folded entities outside a range");
            }
            self.ranges += 1;
            slot.ranges.push((
                lo,
                hi,
                Tally {
                    total: total.value(row),
                    first: first.value(row),
                    second: second.value(row),
                },
            ));
            if slot.folded.is_none() {
                self.folding += 1;
            }
            let f = slot
                .folded
                .get_or_insert_with(|| Box::new(Folded::new(measure, sketched)));
            f.count += folded;
            if let Some(mine) = &mut f.sketch {
                let theirs = (!sketch.is_null(row))
                    .then(|| EntitySketch::from_bytes(sketch.value(row)))
                    .flatten();
                let Some(theirs) = theirs else {
                    return internal_err!("{ORDERED_NAME}: folded entities without their sketch");
                };
                mine.add(&theirs);
            }
        }
        Ok(())
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> DfResult<Vec<ArrayRef>> {
        // Each row its own group: one listed entity each, nothing folded.
        let rows = values.first().map_or(0, |v| v.len());
        let mut one = OrderedGroups::new(self.threshold, self.measure);
        let groups: Vec<usize> = (0..rows).collect();
        one.update_batch(values, &groups, opt_filter, rows)?;
        one.state(EmitTo::All)
    }

    fn size(&self) -> usize {
        let sketch = std::mem::size_of::<EntitySketch>() + 96 * 24;
        std::mem::size_of::<Self>()
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            // Vectors grow by doubling: up to twice their length.
            + self.entries * std::mem::size_of::<(u64, f64)>() * 2
            + self.folding * (std::mem::size_of::<Folded>() + sketch)
            + self.ranges * std::mem::size_of::<Range>() * 2
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use arrow::array::{Float64Array, UInt64Array};

    const THRESHOLD: u64 = 3;
    const MEASURE: u64 = 0x55;

    /// Records in entity-key order: 2,000 entities of one to four rows each,
    /// spread over three large groups, a small fourth group, rows missing a
    /// value, rows without an entity, negative values. Values are quarters,
    /// so every sum is exact in any order.
    pub(in crate::measured) fn records() -> (Vec<Option<f64>>, Vec<Option<u64>>, Vec<usize>) {
        let mut rng = crate::test_rng(7);
        let mut keys: Vec<u64> = (0..2_000).map(|_| rng() | 1).collect();
        keys.sort_unstable();
        keys.dedup();
        let (mut v, mut e, mut g) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &k) in keys.iter().enumerate() {
            for _ in 0..=(rng() % 4) {
                let r = rng();
                e.push(Some(k));
                v.push((!r.is_multiple_of(11)).then_some((r % 400) as f64 * 0.25 - 10.0));
                g.push(if i % 250 == 0 { 3 } else { (r >> 20) as usize % 3 });
            }
            if i % 300 == 0 {
                e.push(None);
                v.push(Some(2.5));
                g.push(i % 3);
            }
        }
        (v, e, g)
    }

    fn arrays(v: &[Option<f64>], e: &[Option<u64>]) -> [ArrayRef; 2] {
        [
            Arc::new(Float64Array::from(v.to_vec())),
            Arc::new(UInt64Array::from(e.to_vec())),
        ]
    }

    /// What the list accumulator gives over all the rows at once.
    fn expected(v: &[Option<f64>], e: &[Option<u64>], g: &[usize]) -> DfResult<ArrayRef> {
        let udaf = super::super::udaf(THRESHOLD, MEASURE);
        let mut acc = udaf.inner().create_groups_accumulator(super::super::tests_args())?;
        acc.update_batch(&arrays(v, e), g, None, 4)?;
        acc.evaluate(EmitTo::All)
    }

    /// The rows of `range`, in batches of 97, through one partial, which
    /// emits all its groups at each of `emits` (rows from the start of the range).
    fn partial(
        v: &[Option<f64>],
        e: &[Option<u64>],
        g: &[usize],
        range: std::ops::Range<usize>,
        emits: &[usize],
    ) -> DfResult<Vec<Vec<ArrayRef>>> {
        let mut acc = OrderedGroups::new(THRESHOLD, MEASURE);
        let mut states = Vec::new();
        let mut at = range.start;
        let mut cuts: Vec<usize> = emits.iter().map(|c| range.start + c).collect();
        cuts.push(range.end);
        for cut in cuts {
            while at < cut {
                let end = (at + 97).min(cut);
                acc.update_batch(&arrays(&v[at..end], &e[at..end]), &g[at..end], None, 4)?;
                at = end;
            }
            states.push(acc.state(EmitTo::All)?);
        }
        Ok(states)
    }

    fn merged(states: &[Vec<ArrayRef>]) -> DfResult<ArrayRef> {
        let mut last = OrderedGroups::new(THRESHOLD, MEASURE);
        for s in states {
            let rows = s.first().map_or(0, |a| a.len());
            let groups: Vec<usize> = (0..rows).collect();
            last.merge_batch(s, &groups, 4)?;
        }
        last.evaluate(EmitTo::All)
    }

    /// Three partitions cut inside entities (their first and last people
    /// straddle), one of them emitting twice mid-way: the same figures and
    /// the same sketches as listing every entity; large groups fold.
    #[test]
    fn folded_partial_states_give_what_listing_every_entity_gives() -> DfResult<()> {
        let (v, e, g) = records();
        let n = v.len();
        // Cut where an entity's rows continue on the other side.
        let straddle = |from: usize| {
            (from..n - 1)
                .find(|&i| e[i].is_some() && e[i] == e[i + 1])
                .unwrap_or(from)
                + 1
        };
        let (a, b) = (straddle(n / 3), straddle(2 * n / 3));
        let mut states = partial(&v, &e, &g, 0..a, &[])?;
        states.extend(partial(
            &v,
            &e,
            &g,
            a..b,
            &[straddle(a + 400) - a, straddle(a + 900) - a],
        )?);
        states.extend(partial(&v, &e, &g, b..n, &[])?);
        let folded: u64 = states
            .iter()
            .map(|s| s[2].as_primitive::<UInt64Type>().iter().flatten().sum::<u64>())
            .sum();
        assert!(folded > 1_000, "large groups fold their inner entities: {folded}");
        let got = merged(&states)?;
        assert_eq!(got.as_ref(), expected(&v, &e, &g)?.as_ref());
        // States merged in another order give the same.
        states.reverse();
        assert_eq!(merged(&states)?.as_ref(), got.as_ref());
        Ok(())
    }

    /// Batches with every row valued and keyed take the run-at-a-time
    /// path; the same batches with a filter that keeps every row go row by
    /// row. Both give the same bits: people whose rows alternate between
    /// groups and continue across batches, with values (negative ones and
    /// -0 among them) whose sums depend on the order they are added in.
    #[test]
    fn runs_of_rows_sum_as_row_by_row() -> DfResult<()> {
        let mut rng = crate::test_rng(11);
        let mut keys: Vec<u64> = (0..3_000).map(|_| rng() | 1).collect();
        keys.sort_unstable();
        keys.dedup();
        let (mut v, mut e, mut g) = (Vec::new(), Vec::new(), Vec::new());
        for &k in &keys {
            for _ in 0..=(rng() % 6) {
                let r = rng();
                e.push(Some(k));
                v.push(Some(match r % 40 {
                    0 => -0.0,
                    1..=4 => -((r % 10_000) as f64) / 100.0 - 0.01,
                    _ => (r % 1_000_000) as f64 / 100.0 + 0.1,
                }));
                g.push(usize::from((r >> 40).is_multiple_of(4)));
            }
        }
        let run = |filtered: bool| -> DfResult<(ArrayRef, Vec<ArrayRef>)> {
            let (mut one, mut two) = (
                OrderedGroups::new(THRESHOLD, MEASURE),
                OrderedGroups::new(THRESHOLD, MEASURE),
            );
            for at in (0..v.len()).step_by(97) {
                let end = (at + 97).min(v.len());
                let keep = BooleanArray::from(vec![true; end - at]);
                let filter = filtered.then_some(&keep);
                for acc in [&mut one, &mut two] {
                    acc.update_batch(&arrays(&v[at..end], &e[at..end]), &g[at..end], filter, 2)?;
                }
            }
            Ok((one.evaluate(EmitTo::All)?, two.state(EmitTo::All)?))
        };
        let (runs, by_row) = (run(false)?, run(true)?);
        assert_eq!(runs.0.as_ref(), by_row.0.as_ref());
        assert_eq!(runs.1, by_row.1);
        Ok(())
    }

    /// Arguments and group indices of unequal lengths fail the query
    /// rather than the process (the row-by-row path would read past them).
    #[test]
    fn arguments_and_groups_of_unequal_lengths_fail() {
        let mut acc = OrderedGroups::new(THRESHOLD, MEASURE);
        let (v, e) = (vec![Some(1.0); 2], vec![Some(5), None]);
        let err = acc.update_batch(&arrays(&v, &e), &[0, 0, 0], None, 1).unwrap_err();
        assert!(err.to_string().contains("unequal lengths"), "{err}");
    }

    /// One accumulator over every row (an aggregation in one phase).
    #[test]
    fn one_phase_gives_what_listing_every_entity_gives() -> DfResult<()> {
        let (v, e, g) = records();
        let mut acc = OrderedGroups::new(THRESHOLD, MEASURE);
        acc.update_batch(&arrays(&v, &e), &g, None, 4)?;
        assert_eq!(acc.evaluate(EmitTo::All)?.as_ref(), expected(&v, &e, &g)?.as_ref());
        Ok(())
    }

    /// A row whose entity comes before its group's last one fails the
    /// query: a partial cannot tell whether it already counted that entity.
    #[test]
    fn a_row_out_of_entity_order_fails_rather_than_count_twice() -> DfResult<()> {
        let mut acc = OrderedGroups::new(THRESHOLD, MEASURE);
        let (v, e) = (vec![Some(1.0); 3], vec![Some(5), Some(9), Some(7)]);
        let err = acc.update_batch(&arrays(&v, &e), &[0, 0, 0], None, 1).unwrap_err();
        assert!(err.to_string().contains("entity order"), "{err}");
        // In another group it is no disorder.
        let mut acc = OrderedGroups::new(THRESHOLD, MEASURE);
        acc.update_batch(&arrays(&v, &e), &[0, 0, 1], None, 2)?;
        Ok(())
    }

    /// Two partitions whose rows interleave (as a plan that reordered rows
    /// would give): the final finds a folded range holding another state's
    /// entity, or two folded ranges meeting, and fails.
    #[test]
    fn states_whose_ranges_overlap_fail_rather_than_count_twice() -> DfResult<()> {
        let (v, e, g) = records();
        // Even and odd entities' rows to two partitions: each in order, their ranges interleaved.
        let (mut even, mut odd) = ((vec![], vec![], vec![]), (vec![], vec![], vec![]));
        let mut parity = false;
        for i in 0..v.len() {
            if i > 0 && e[i] != e[i - 1] {
                parity = !parity;
            }
            let to = if parity { &mut odd } else { &mut even };
            to.0.push(v[i]);
            to.1.push(e[i]);
            to.2.push(g[i]);
        }
        let part = |p: &(Vec<Option<f64>>, Vec<Option<u64>>, Vec<usize>)| partial(&p.0, &p.1, &p.2, 0..p.0.len(), &[]);
        let mut states = part(&even)?;
        states.extend(part(&odd)?);
        let err = merged(&states).unwrap_err();
        assert!(err.to_string().contains("overlap"), "{err}");
        // One folded state and a small listed one inside its range.
        let mut states = partial(&v, &e, &g, 0..v.len(), &[])?;
        let inside = (v.len() / 2..v.len())
            .find(|&i| g[i] == 0 && e[i].is_some())
            .unwrap_or(0);
        states.extend(partial(&v, &e, &g, inside..inside + 1, &[])?);
        let err = merged(&states).unwrap_err();
        assert!(err.to_string().contains("overlap"), "{err}");
        Ok(())
    }

    /// A final aggregation that merged folded states and is asked for its
    /// state (as one that spills would be) refuses, rather than pass on
    /// states whose folded people lose their figures or seem to overlap.
    #[test]
    fn merged_folded_states_are_not_passed_on() -> DfResult<()> {
        let (v, e, g) = records();
        let states = partial(&v, &e, &g, 0..v.len(), &[])?;
        let mut last = OrderedGroups::new(THRESHOLD, MEASURE);
        for s in &states {
            let groups: Vec<usize> = (0..s[0].len()).collect();
            last.merge_batch(s, &groups, 4)?;
        }
        let err = last.state(EmitTo::All).unwrap_err();
        assert!(err.to_string().contains("cannot be passed on"), "{err}");
        // Listed states alone (nothing folded) pass on as they are.
        let (mut sv, mut se) = (Vec::new(), Vec::new());
        for i in (0..v.len()).filter(|&i| g[i] == 3) {
            sv.push(v[i]);
            se.push(e[i]);
        }
        let sg = vec![0; sv.len()];
        let mut last = OrderedGroups::new(THRESHOLD, MEASURE);
        for s in partial(&sv, &se, &sg, 0..sv.len(), &[])? {
            let groups: Vec<usize> = (0..s[0].len()).collect();
            last.merge_batch(&s, &groups, 4)?;
        }
        assert_eq!(last.state(EmitTo::All)?[0].len(), 4);
        Ok(())
    }
}
