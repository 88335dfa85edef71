//! The hidden aggregates the host adds to the one aggregation over protected
//! data, and what they share: `inland_entities(entity [, value])` counts the
//! distinct entities behind each group (for small-group suppression) and
//! sketches them (for the gate's differencing audit); the per-entity runs
//! (`Runs`) that it and `inland_measured_entities` (`measured`, the
//! contributions behind each sum or mean where people have several rows)
//! keep per group. The job never sees them.
//!
//! They run over the hidden entity key, a keyed 64-bit hash (see
//! `policy_table`), and keep their state per group in vectors of plain
//! integers, so that a million entities cost a million small appends rather
//! than a million allocations. A collision of two keys can only merge two
//! entities: fewer entities and a larger top contribution, which makes the
//! checks stricter, never looser.

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Float64Array, Int64Array, ListArray, UInt64Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result as DfResult, ScalarValue, internal_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, EmitTo, GroupsAccumulator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use inland_gate::EntitySketch;
use std::sync::Arc;

/// The entity-count function's name in plans.
pub(crate) const ENTITIES: &str = "inland_entities";

/// Where each figure sits in the list the contributions function returns.
pub(crate) const LARGEST: usize = 0;
pub(crate) const SECOND: usize = 1;
pub(crate) const TOTAL: usize = 2;
pub(crate) const NEGATIVES: usize = 3;
pub(crate) const MISSING: usize = 4;

/// Values keyed by entity for one group, kept as a vector: new entries are
/// appended, and when the new part reaches three times the old (and before
/// it is read) it is sorted and merged into the sorted, one-entry-per-entity part.
/// Appending is far cheaper than a hash insert; the merge is linear, and
/// sorted runs arriving from partial aggregates sort in linear time.
#[derive(Debug, Default)]
pub(crate) struct Runs<V> {
    items: Vec<(u64, V)>,
    compacted: usize,
    /// Some entry is not above the one before it: the new part needs a sort.
    /// Where rows arrive in key order (a dataset stored by its entity key,
    /// `dataset add --entity`) it never is, and compacting costs nothing.
    unsorted: bool,
}

/// How two values for the same entity become one.
pub(crate) trait Combine: Copy {
    fn combine(&mut self, other: Self);
}

impl Combine for () {
    fn combine(&mut self, _other: Self) {}
}

impl Combine for f64 {
    fn combine(&mut self, other: Self) {
        *self += other;
    }
}

impl<V: Combine> Runs<V> {
    pub(crate) fn push(&mut self, key: u64, v: V) {
        // A person's rows that arrive together (records stored by person,
        // `dataset add --sort-by` the entity) add into one entry here,
        // rather than each being appended, sorted and merged.
        if let Some(last) = self.items.last_mut() {
            if last.0 == key {
                last.1.combine(v);
                return;
            }
            self.unsorted |= key < last.0;
        }
        self.items.push((key, v));
        // Compacting when the new part is three times the compacted one
        // (rather than as large) merges each entry about half as often; the
        // new part holds at most three entries an entity more.
        if self.items.len() >= 4 * self.compacted + 4096 {
            self.compact();
        }
    }

    /// Appends an entry as it is, where keys are known distinct (rows that
    /// are entities); a later compaction still sorts and combines them.
    pub(crate) fn append(&mut self, key: u64, v: V) {
        self.unsorted |= self.items.last().is_some_and(|last| key <= last.0);
        self.items.push((key, v));
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    fn compact(&mut self) {
        if !self.unsorted {
            // Every entry is above the one before it: sorted, one per entity.
            self.compacted = self.items.len();
            return;
        }
        self.unsorted = false;
        if self.compacted == self.items.len() {
            return;
        }
        sort_by_key(&mut self.items[self.compacted..]);
        let (done, new) = self.items.split_at(self.compacted);
        let mut out: Vec<(u64, V)> = Vec::with_capacity(self.items.len());
        let (mut i, mut j) = (0, 0);
        while i < done.len() || j < new.len() {
            let next = match (done.get(i), new.get(j)) {
                (Some(a), Some(b)) if a.0 <= b.0 => {
                    i += 1;
                    *a
                }
                (_, Some(b)) => {
                    j += 1;
                    *b
                }
                (Some(a), None) => {
                    i += 1;
                    *a
                }
                (None, None) => break,
            };
            match out.last_mut() {
                Some((k, v)) if *k == next.0 => v.combine(next.1),
                _ => out.push(next),
            }
        }
        self.items = out;
        self.compacted = self.items.len();
    }

    /// Adds a run of entries. A run sorted by key with each key once (as
    /// every partial state's lists are) and not small beside what is held
    /// is merged in one linear pass, rather than sorted again; anything
    /// else is pushed entry by entry.
    pub(crate) fn extend_run(&mut self, keys: &[u64], values: &[V]) {
        let n = keys.len().min(values.len());
        let (keys, values) = (&keys[..n], &values[..n]);
        if n * 4 < self.items.len() || !keys.windows(2).all(|w| w[0] < w[1]) {
            for (k, v) in keys.iter().zip(values) {
                self.push(*k, *v);
            }
            return;
        }
        self.compact();
        let done = std::mem::take(&mut self.items);
        let mut out: Vec<(u64, V)> = Vec::with_capacity(done.len() + n);
        let (mut i, mut j) = (0, 0);
        while let (Some(a), Some(&k)) = (done.get(i), keys.get(j)) {
            let v = values[j];
            if a.0 < k {
                out.push(*a);
                i += 1;
            } else if a.0 > k {
                out.push((k, v));
                j += 1;
            } else {
                let mut both = *a;
                both.1.combine(v);
                out.push(both);
                i += 1;
                j += 1;
            }
        }
        out.extend_from_slice(&done[i..]);
        out.extend(keys[j..].iter().copied().zip(values[j..].iter().copied()));
        self.items = out;
        self.compacted = self.items.len();
    }

    /// Takes out every entry after the first `at` (in key order), leaving those.
    pub(crate) fn split_off(&mut self, at: usize) -> Vec<(u64, V)> {
        self.compact();
        let rest = self.items.split_off(at.min(self.items.len()));
        self.compacted = self.items.len();
        rest
    }

    /// One entry per entity, sorted by entity.
    pub(crate) fn finish(mut self) -> Vec<(u64, V)> {
        self.compact();
        self.items
    }
}

/// An entity's key and its value.
type Entry<V> = (u64, V);

/// Sorts entries by key. Keys are keyed hashes, spread evenly over all 64
/// bits, so a least-significant-digit radix sort on their top 33 bits
/// (three passes of 11) orders all but a few, and the entries whose top
/// bits tie (a few hundred in a million; all of them for the one shared key
/// of rows without an entity) are put in order by a comparison sort of each
/// tie. Every pass reads and writes in order into a few thousand places,
/// which is what matters on this path: it is bound by memory, not by
/// comparisons.
fn sort_by_key<V: Copy>(items: &mut [Entry<V>]) {
    const SMALL: usize = 2048;
    const BITS: u32 = 11;
    const PASSES: u32 = 3;
    let n = items.len();
    let Some(&first) = items.first() else {
        return;
    };
    if n < SMALL {
        items.sort_unstable_by_key(|(k, _)| *k);
        return;
    }
    let digit = |k: u64, shift: u32| ((k >> shift) & ((1 << BITS) - 1)) as usize;
    // Passes alternate between `items` and one buffer, ending in the buffer.
    const { assert!(PASSES % 2 == 1) };
    let mut a = vec![first; n];
    let mut counts = [0usize; 1 << BITS];
    for pass in 0..PASSES {
        let shift = 64 - BITS * (PASSES - pass);
        let (from, to): (&[Entry<V>], &mut [Entry<V>]) = if pass % 2 == 0 {
            (&*items, &mut a)
        } else {
            (&a, &mut *items)
        };
        counts.fill(0);
        for (k, _) in from {
            counts[digit(*k, shift)] += 1;
        }
        let mut start = 0;
        for c in counts.iter_mut() {
            let here = *c;
            *c = start;
            start += here;
        }
        for item in from {
            let d = digit(item.0, shift);
            to[counts[d]] = *item;
            counts[d] += 1;
        }
    }
    // Ties on the top bits, in order by the whole key.
    let top = |k: u64| k >> (64 - BITS * PASSES);
    let mut at = 0;
    while at < n {
        let mut end = at + 1;
        while end < n && top(a[end].0) == top(a[at].0) {
            end += 1;
        }
        if end - at > 1 {
            a[at..end].sort_unstable_by_key(|(k, _)| *k);
        }
        at = end;
    }
    items.copy_from_slice(&a);
}

/// The distinct entities of a group.
#[cfg(test)]
type KeySet = Runs<()>;
/// Each entity's sum within a group.
pub(crate) type KeySums = Runs<f64>;

#[cfg(test)]
impl KeySet {
    /// The distinct keys.
    fn distinct(self) -> Vec<u64> {
        self.finish().into_iter().map(|(k, _)| k).collect()
    }
}

/// Calls `f(group, range)` for every non-null list in a merged state column,
/// with the group its row belongs to and the range of its values.
pub(crate) fn each_run(
    lists: &ListArray,
    group_indices: &[usize],
    mut f: impl FnMut(usize, std::ops::Range<usize>) -> DfResult<()>,
) -> DfResult<()> {
    let offsets = lists.value_offsets();
    for (row, group) in group_indices.iter().enumerate() {
        if lists.is_null(row) {
            continue;
        }
        f(*group, offsets[row] as usize..offsets[row + 1] as usize)?;
    }
    Ok(())
}

/// Calls `f(group, i)` for every value `i` of every non-null list in a
/// merged state column, with the group its row belongs to.
pub(crate) fn each_listed(
    lists: &ListArray,
    group_indices: &[usize],
    mut f: impl FnMut(usize, usize) -> DfResult<()>,
) -> DfResult<()> {
    let offsets = lists.value_offsets();
    for (row, group) in group_indices.iter().enumerate() {
        if lists.is_null(row) {
            continue;
        }
        for i in offsets[row] as usize..offsets[row + 1] as usize {
            f(*group, i)?;
        }
    }
    Ok(())
}

pub(crate) fn list_of(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", t, true)))
}

pub(crate) fn entity_keys(a: &ArrayRef) -> DfResult<&UInt64Array> {
    match a.as_primitive_opt::<UInt64Type>() {
        Some(k) => Ok(k),
        None => internal_err!("the hidden entity column must hold 64-bit keys, not {}", a.data_type()),
    }
}

pub(crate) fn selected(filter: Option<&BooleanArray>, row: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(row) && f.value(row))
}

/// A list array from per-group vectors, with no per-value allocation.
pub(crate) fn list_array<T: arrow::datatypes::ArrowPrimitiveType>(
    groups: impl Iterator<Item = Vec<T::Native>>,
) -> DfResult<ListArray> {
    let mut lengths = Vec::new();
    let mut values = Vec::new();
    for g in groups {
        lengths.push(g.len());
        values.extend(g);
    }
    Ok(ListArray::try_new(
        Arc::new(Field::new("item", T::DATA_TYPE, true)),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(arrow::array::PrimitiveArray::<T>::from_iter_values(values)),
        None,
    )?)
}

// ---------------------------------------------------------------- entities

#[derive(Debug, PartialEq, Eq, Hash)]
struct Entities {
    signature: Signature,
    threshold: u64,
    rows_are_entities: bool,
    measure: u64,
}

/// `inland_entities(entity [, value])`: the distinct entities of each group,
/// as the bytes of an [`EntitySketch`] (which starts with their count).
/// Groups below `threshold` get the count alone: they are suppressed, and a
/// sketch is 2.3 KB. Where rows are entities (`rows_are_entities`), keys are
/// taken as distinct without sorting them. With a value (the first measure's
/// argument, whose source column hashes to a nonzero `measure`), the sketch
/// adds up each entity's contribution too, so that the gate can judge a
/// difference of two releases by what its entities contributed.
pub(crate) fn entities_udaf(threshold: u64, rows_are_entities: bool, measure: u64) -> AggregateUDF {
    AggregateUDF::from(Entities {
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::UInt64]),
                TypeSignature::Exact(vec![DataType::UInt64, DataType::Float64]),
            ],
            Volatility::Immutable,
        ),
        threshold,
        rows_are_entities,
        measure,
    })
}

/// An `inland_entities`' signature, threshold and measure, or `None` for
/// another function: its ordered twin (`measured::entities`) gives the same.
pub(crate) fn entities_params(udf: &AggregateUDF) -> Option<(Signature, u64, u64)> {
    let e = udf.inner().downcast_ref::<Entities>()?;
    Some((e.signature.clone(), e.threshold, e.measure))
}

impl AggregateUDFImpl for Entities {
    fn name(&self) -> &str {
        ENTITIES
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Binary)
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let mut one = self.groups();
        one.groups.push(Members::default());
        Ok(Box::new(Single(one)))
    }
    fn state_fields(&self, _args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("entities", list_of(DataType::UInt64), true)),
            Arc::new(Field::new("contributions", list_of(DataType::Float64), true)),
            Arc::new(Field::new("sketch", DataType::Binary, true)),
        ])
    }
    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(self.groups()))
    }
}

impl Entities {
    fn groups(&self) -> EntityGroups {
        EntityGroups {
            threshold: self.threshold,
            plain: self.rows_are_entities,
            measure: self.measure,
            ..EntityGroups::default()
        }
    }
}

/// Adds one entity to a sketch, with its contribution where there is a measure.
pub(crate) fn put(sketch: &mut EntitySketch, measure: u64, key: u64, value: f64) {
    if measure == 0 {
        sketch.insert(key);
    } else {
        sketch.insert_contribution(key, value);
    }
}

/// The sketch of distinct entities with their contributions.
pub(crate) fn sketch_of(measure: u64, items: impl IntoIterator<Item = (u64, f64)>) -> EntitySketch {
    let mut s = EntitySketch::of_measure(measure);
    for (k, v) in items {
        put(&mut s, measure, k, v);
    }
    s
}

/// The group's sketch bytes, or its count alone below the threshold.
pub(crate) fn sketch_bytes(sketch: &EntitySketch, threshold: u64) -> Vec<u8> {
    let n = sketch.entities();
    if n < threshold.max(1) {
        n.to_le_bytes().to_vec()
    } else {
        sketch.to_bytes()
    }
}

/// Each entity of a group, with its contribution to the measure.
type EntitySums = Runs<f64>;

/// Entities listed beyond this many take more room than a sketch (2.3 KB):
/// where rows are entities, a group that reaches it becomes a sketch, and
/// its later rows go straight into it.
const LISTED_AT_MOST: usize = 128;

/// One group's entities: listed, or (rows being entities) summed into a
/// sketch once there are many. Sketches of disjoint sets add, and where
/// rows are entities every partial state holds other entities, so a
/// million rows cost a million sketch inserts and no sorting, listing or
/// copying of keys between the aggregation's phases.
#[derive(Debug)]
enum Members {
    Listed(EntitySums),
    Sketched(EntitySketch),
}

impl Default for Members {
    fn default() -> Self {
        Members::Listed(EntitySums::default())
    }
}

/// The distinct entity keys of every group, with their contributions.
#[derive(Debug, Default)]
struct EntityGroups {
    groups: Vec<Members>,
    /// Entries listed in all groups, and groups sketched (for `size`).
    entries: usize,
    sketched: usize,
    threshold: u64,
    /// Rows are entities: keys are never sorted or merged, and large groups
    /// are sketched as their rows arrive.
    plain: bool,
    /// The measure the contributions are of; 0 for none.
    measure: u64,
}

/// What one group leaves a partial state: its listed entities, or its sketch.
enum Taken {
    Listed(Vec<(u64, f64)>),
    Sketched(EntitySketch),
}

impl EntityGroups {
    fn group(&mut self, group: usize) -> DfResult<&mut Members> {
        match self.groups.get_mut(group) {
            Some(m) => Ok(m),
            None => internal_err!("{ENTITIES}: group {group} out of range"),
        }
    }

    fn insert(&mut self, group: usize, key: u64, value: f64) -> DfResult<()> {
        let (plain, measure) = (self.plain, self.measure);
        let members = self.group(group)?;
        let set = match members {
            Members::Sketched(s) => {
                put(s, measure, key, value);
                return Ok(());
            }
            Members::Listed(set) => set,
        };
        let before = set.len();
        if !plain {
            set.push(key, value);
            let after = set.len();
            self.entries = (self.entries + after).saturating_sub(before);
            return Ok(());
        }
        set.append(key, value);
        if before < LISTED_AT_MOST {
            self.entries += 1;
            return Ok(());
        }
        let items = std::mem::take(&mut set.items);
        *members = Members::Sketched(sketch_of(measure, items));
        self.entries = self.entries.saturating_sub(before);
        self.sketched += 1;
        Ok(())
    }

    /// Adds a partial state's sketch of other entities to a group (rows
    /// being entities, partial states never share one).
    fn add_sketch(&mut self, group: usize, other: &EntitySketch) -> DfResult<()> {
        let measure = self.measure;
        let members = self.group(group)?;
        if let Members::Listed(set) = members {
            let items = std::mem::take(&mut set.items);
            let listed = items.len();
            *members = Members::Sketched(sketch_of(measure, items));
            self.entries = self.entries.saturating_sub(listed);
            self.sketched += 1;
        }
        if let Some(Members::Sketched(s)) = self.groups.get_mut(group) {
            s.add(other);
        }
        Ok(())
    }

    fn take(&mut self, emit_to: EmitTo) -> Vec<Taken> {
        let taken = emit_to.take_needed(&mut self.groups);
        let plain = self.plain;
        taken
            .into_iter()
            .map(|m| match m {
                Members::Listed(s) => {
                    self.entries = self.entries.saturating_sub(s.len());
                    Taken::Listed(if plain { s.items } else { s.finish() })
                }
                Members::Sketched(s) => {
                    self.sketched = self.sketched.saturating_sub(1);
                    Taken::Sketched(s)
                }
            })
            .collect()
    }
}

/// The value column of `inland_entities`, if it has one.
fn entity_values(values: &[ArrayRef]) -> DfResult<Option<&Float64Array>> {
    match values.get(1) {
        None => Ok(None),
        Some(v) => match v.as_primitive_opt::<Float64Type>() {
            Some(f) => Ok(Some(f)),
            None => internal_err!("{ENTITIES}: contributions must be Float64, not {}", v.data_type()),
        },
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
        let Some(entity) = values.first() else {
            return internal_err!("{ENTITIES} takes an entity");
        };
        let keys = entity_keys(entity)?;
        let contributions = entity_values(values)?;
        self.groups.resize_with(total_num_groups, Members::default);
        for (row, group) in group_indices.iter().enumerate() {
            if keys.is_valid(row) && selected(opt_filter, row) {
                let v = contributions.filter(|c| c.is_valid(row)).map_or(0.0, |c| c.value(row));
                self.insert(*group, keys.value(row), v)?;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> DfResult<ArrayRef> {
        let (threshold, measure) = (self.threshold, self.measure);
        let sketches: BinaryArray = self
            .take(emit_to)
            .into_iter()
            .map(|t| {
                Some(match t {
                    // Groups below the threshold are suppressed: their count is enough.
                    Taken::Listed(items) if (items.len() as u64) < threshold.max(1) => {
                        (items.len() as u64).to_le_bytes().to_vec()
                    }
                    Taken::Listed(items) => sketch_of(measure, items).to_bytes(),
                    Taken::Sketched(s) => sketch_bytes(&s, threshold),
                })
            })
            .collect();
        Ok(Arc::new(sketches))
    }

    fn state(&mut self, emit_to: EmitTo) -> DfResult<Vec<ArrayRef>> {
        let taken = self.take(emit_to);
        fn listed(t: &Taken) -> &[(u64, f64)] {
            match t {
                Taken::Listed(items) => items,
                Taken::Sketched(_) => &[],
            }
        }
        let keys = list_array::<UInt64Type>(taken.iter().map(|t| listed(t).iter().map(|(k, _)| *k).collect()))?;
        let values = list_array::<Float64Type>(taken.iter().map(|t| listed(t).iter().map(|(_, v)| *v).collect()))?;
        let sketches: BinaryArray = taken
            .iter()
            .map(|t| match t {
                Taken::Listed(_) => None,
                Taken::Sketched(s) => Some(s.to_bytes()),
            })
            .collect();
        Ok(vec![Arc::new(keys), Arc::new(values), Arc::new(sketches)])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> DfResult<()> {
        let [lists, sums, sketches] = values else {
            return internal_err!("{ENTITIES}: unexpected state");
        };
        let (lists, sums) = (lists.as_list::<i32>(), sums.as_list::<i32>());
        let Some(sketches) = sketches.as_binary_opt::<i32>() else {
            return internal_err!("{ENTITIES}: unexpected state");
        };
        self.groups.resize_with(total_num_groups, Members::default);
        let keys = entity_keys(lists.values())?;
        let Some(sums) = sums.values().as_primitive_opt::<Float64Type>() else {
            return internal_err!("{ENTITIES}: unexpected state");
        };
        if self.plain {
            each_listed(lists, group_indices, |group, i| {
                self.insert(group, keys.value(i), if sums.is_valid(i) { sums.value(i) } else { 0.0 })
            })?;
        } else {
            // Partial states list each group's entities sorted, once each.
            each_run(lists, group_indices, |group, range| {
                let entries = self.entries;
                match self.groups.get_mut(group) {
                    Some(Members::Listed(set)) => {
                        let before = set.len();
                        set.extend_run(&keys.values()[range.clone()], &sums.values()[range]);
                        self.entries = (entries + set.len()).saturating_sub(before);
                        Ok(())
                    }
                    _ => internal_err!("{ENTITIES}: group {group} is not a listed one"),
                }
            })?;
        }
        for (row, group) in group_indices.iter().enumerate() {
            if sketches.is_null(row) {
                continue;
            }
            if !self.plain {
                return internal_err!("{ENTITIES}: a sketched partial state where rows are not entities");
            }
            let Some(sketch) = EntitySketch::from_bytes(sketches.value(row)) else {
                return internal_err!("{ENTITIES}: a partial state's sketch does not parse");
            };
            self.add_sketch(*group, &sketch)?;
        }
        Ok(())
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> DfResult<Vec<ArrayRef>> {
        let Some(entity) = values.first() else {
            return internal_err!("{ENTITIES} takes an entity");
        };
        let keys = entity_keys(entity)?;
        let contributions = entity_values(values)?;
        let kept = |row: usize| keys.is_valid(row) && selected(opt_filter, row);
        let lists = list_array::<UInt64Type>(
            (0..keys.len()).map(|row| if kept(row) { vec![keys.value(row)] } else { Vec::new() }),
        )?;
        let sums = list_array::<Float64Type>((0..keys.len()).map(|row| {
            if kept(row) {
                vec![contributions.filter(|c| c.is_valid(row)).map_or(0.0, |c| c.value(row))]
            } else {
                Vec::new()
            }
        }))?;
        let sketches = BinaryArray::new_null(keys.len());
        Ok(vec![Arc::new(lists), Arc::new(sums), Arc::new(sketches)])
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.groups.capacity() * std::mem::size_of::<Members>()
            // Vectors grow by doubling: up to twice their length.
            + self.entries * std::mem::size_of::<(u64, f64)>() * 2
            + self.sketched * EntitySketch::BYTES
    }
}

// ------------------------------------------------------------- group size

#[derive(Debug, PartialEq, Eq, Hash)]
struct SketchSize {
    signature: Signature,
}

/// `inland_sketch_size(sketch)`: the distinct entities a sketch from
/// [`entities_udaf`] counts, as Int64: the group size the small-group filter reads.
pub(crate) fn sketch_size_udf() -> ScalarUDF {
    ScalarUDF::from(SketchSize {
        signature: Signature::exact(vec![DataType::Binary], Volatility::Immutable),
    })
}

/// The entity count at the head of sketch bytes.
pub(crate) fn sketch_count(bytes: &[u8]) -> Option<i64> {
    let head: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    i64::try_from(u64::from_le_bytes(head)).ok()
}

impl ScalarUDFImpl for SketchSize {
    fn name(&self) -> &str {
        "inland_sketch_size"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [sketches] = args.args.as_slice() else {
            return internal_err!("inland_sketch_size takes one argument");
        };
        let sketches = sketches.to_array(args.number_rows)?;
        let Some(sketches) = sketches.as_binary_opt::<i32>() else {
            return internal_err!("inland_sketch_size: unexpected argument type");
        };
        let sizes: Int64Array = sketches.iter().map(|b| b.and_then(sketch_count)).collect();
        Ok(ColumnarValue::Array(Arc::new(sizes)))
    }
}

// ---------------------------------------------------- one group, no GROUP BY

/// A groups accumulator used for an aggregation without GROUP BY: one
/// group, index 0, which exists from the start (an empty input still has a result).
#[derive(Debug)]
pub(crate) struct Single<G>(pub(crate) G);

impl<G: GroupsAccumulator + std::fmt::Debug + Sync> Accumulator for Single<G> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let rows = values.first().map(|v| v.len()).unwrap_or(0);
        self.0.update_batch(values, &vec![0; rows], None, 1)
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        let out = self.0.evaluate(EmitTo::All)?;
        ScalarValue::try_from_array(&out, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.0.size()
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        self.0
            .state(EmitTo::All)?
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let rows = states.first().map(|v| v.len()).unwrap_or(0);
        self.0.merge_batch(states, &vec![0; rows], 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Float64Array;

    fn keys(v: &[Option<u64>]) -> ArrayRef {
        Arc::new(UInt64Array::from(v.to_vec()))
    }

    #[test]
    fn entities_count_distinct_keys_per_group_across_partial_states() -> DfResult<()> {
        let mut a = EntityGroups::default();
        a.update_batch(&[keys(&[Some(1), Some(1), Some(2), None])], &[0, 0, 1, 1], None, 2)?;
        let mut b = EntityGroups::default();
        b.update_batch(&[keys(&[Some(1), Some(3)])], &[0, 0], None, 1)?;
        let mut merged = EntityGroups::default();
        merged.merge_batch(&a.state(EmitTo::All)?, &[0, 1], 2)?;
        merged.merge_batch(&b.state(EmitTo::All)?, &[0], 2)?;
        let out = merged.evaluate(EmitTo::All)?;
        let out = out.as_binary::<i32>();
        let sizes: Vec<Option<i64>> = out.iter().map(|b| b.and_then(sketch_count)).collect();
        assert_eq!(sizes, vec![Some(2), Some(1)]);
        Ok(())
    }

    /// Groups at the threshold carry a sketch of exactly their entities
    /// (whatever order and partition they arrived in); smaller groups carry
    /// their count alone.
    #[test]
    fn groups_at_the_threshold_carry_a_sketch_of_their_entities() -> DfResult<()> {
        let mut g = EntityGroups {
            threshold: 3,
            ..EntityGroups::default()
        };
        g.update_batch(
            &[keys(&[Some(7), Some(8), Some(9), Some(7), Some(1)])],
            &[0, 0, 0, 0, 1],
            None,
            2,
        )?;
        let out = g.evaluate(EmitTo::All)?;
        let out = out.as_binary::<i32>();
        let sketch = EntitySketch::from_bytes(out.value(0));
        assert_eq!(sketch, Some(EntitySketch::of_distinct([9, 8, 7])));
        assert_eq!(out.value(1), 1u64.to_le_bytes().as_slice());
        Ok(())
    }

    #[test]
    fn an_aggregation_without_group_by_over_no_rows_has_zero_entities() -> DfResult<()> {
        let udaf = entities_udaf(1, false, 0);
        let schema = arrow::datatypes::Schema::new(vec![Field::new("e", DataType::UInt64, true)]);
        let expr = datafusion::physical_expr::expressions::col("e", &schema)?;
        let field = Arc::new(Field::new("n", DataType::Binary, true));
        let args = AccumulatorArgs {
            return_field: field,
            schema: &schema,
            ignore_nulls: false,
            order_bys: &[],
            is_reversed: false,
            name: "n",
            is_distinct: false,
            exprs: &[expr],
            expr_fields: &[Arc::new(Field::new("e", DataType::UInt64, true))],
        };
        let mut acc = udaf.accumulator(args)?;
        assert_eq!(acc.evaluate()?, ScalarValue::Binary(Some(0u64.to_le_bytes().to_vec())));
        Ok(())
    }

    #[test]
    fn runs_merge_repeated_entities_across_compactions() {
        let mut set = KeySet::default();
        let mut sums = KeySums::default();
        for i in 0..5000u64 {
            set.push((i * 7919) % 1500, ());
            sums.push(i % 1500, 1.0);
        }
        let keys = set.distinct();
        assert_eq!(keys.len(), 1500);
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let per_entity = sums.finish();
        assert_eq!(per_entity.len(), 1500);
        let total: f64 = per_entity.iter().map(|(_, v)| v).sum();
        assert_eq!(total, 5000.0);
        // Entities 0..499 appear four times (i < 5000 = 3 * 1500 + 500), the rest three.
        assert_eq!(per_entity[0], (0, 4.0));
        assert_eq!(per_entity[1499], (1499, 3.0));
    }

    /// Rows in key order (a dataset stored by its entity key) need no sort;
    /// one key out of order anywhere, even after many compactions, still
    /// gives each entity once with its whole sum, in order.
    #[test]
    fn runs_in_key_order_stay_exact_when_one_key_comes_out_of_order() {
        for late in [None, Some(3), Some(20_000), Some(29_999)] {
            let mut sums = KeySums::default();
            for i in 0..30_000u64 {
                // Each entity's rows together, as stored by key.
                sums.push(i * 10, 1.0);
                sums.push(i * 10, 2.0);
                if Some(i) == late {
                    sums.push(5, 4.0); // below everything so far
                    sums.push(20, 8.0); // an entity seen before
                }
            }
            let out = sums.finish();
            let mut expected: Vec<(u64, f64)> = (0..30_000u64).map(|i| (i * 10, 3.0)).collect();
            if late.is_some() {
                expected[2].1 += 8.0;
                expected.insert(1, (5, 4.0));
            }
            assert_eq!(out, expected, "out of order after {late:?}");
        }
        // Appended entries (rows that are entities) are sorted and combined too.
        let mut appended = KeySums::default();
        for k in [9, 4, 4, 7] {
            appended.append(k, 1.0);
        }
        assert_eq!(appended.finish(), vec![(4, 2.0), (7, 1.0), (9, 1.0)]);
    }

    /// Keys spread over all 64 bits, as the keyed entity hashes are, go
    /// through the bucketed sort; repeats, and many entries of one key (0)
    /// in one bucket, still merge into one entry each.
    #[test]
    fn runs_of_spread_keys_sort_and_merge_like_a_comparison_sort() {
        let spread = |i: u64| (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut sums = KeySums::default();
        for i in 0..20_000u64 {
            sums.push(spread(i % 7_000), 1.0);
            if i % 10 == 0 {
                sums.push(0, 0.5);
            }
        }
        let per_entity = sums.finish();
        assert_eq!(per_entity.len(), 7_001);
        assert!(per_entity.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(per_entity[0], (0, 1_000.0));
        let mut expected: Vec<u64> = (0..7_000).map(spread).collect();
        expected.sort_unstable();
        let keys: Vec<u64> = per_entity[1..].iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, expected);
        // Entities 0..5999 appear three times (20,000 = 2 * 7,000 + 6,000), the rest twice.
        let of = |i: u64| per_entity.iter().find(|(k, _)| *k == spread(i)).map(|(_, v)| *v);
        assert_eq!((of(5_999), of(6_000)), (Some(3.0), Some(2.0)));
    }

    /// Rows of one entity in a row add into one entry at once (the sums
    /// are the same as apart); the entity's later rows still merge with it.
    #[test]
    fn an_entitys_rows_in_a_row_add_into_one_entry() {
        let mut sums = KeySums::default();
        for (k, v) in [(5, 1.0), (5, 2.0), (5, 3.0), (9, 1.0), (5, 4.0)] {
            sums.push(k, v);
        }
        assert_eq!(sums.len(), 3, "the three rows in a row are one entry");
        assert_eq!(sums.finish(), vec![(5, 10.0), (9, 1.0)]);
    }

    /// The radix sort orders like a comparison sort, including keys that
    /// tie on their top bits (here a third of them, in reverse order) and a
    /// key repeated many times; values stay with their keys.
    #[test]
    fn the_radix_sort_orders_like_a_comparison_sort_with_ties_on_the_top_bits() {
        let spread = |i: u64| (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut items: Vec<(u64, u64)> = Vec::new();
        for i in 0..30_000u64 {
            let key = match i % 3 {
                0 => spread(i),
                1 => 0xdead_beef_0000_0000 | (u64::from(u32::MAX) - i),
                _ => 42,
            };
            items.push((key, key ^ 7));
        }
        let mut expected = items.clone();
        expected.sort_unstable();
        sort_by_key(&mut items);
        let keys = |v: &[(u64, u64)]| v.iter().map(|(k, _)| *k).collect::<Vec<_>>();
        assert_eq!(keys(&items), keys(&expected));
        assert!(items.iter().all(|(k, v)| *v == k ^ 7));
    }

    /// Sorted runs (partial states) merge in one pass to what pushing every
    /// entry gives; a run out of order, or with a key twice, is pushed
    /// entry by entry and still merges right.
    #[test]
    fn runs_of_partial_states_merge_like_single_entries() {
        let spread = |i: u64| (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let run = |range: std::ops::Range<u64>| {
            let mut keys: Vec<u64> = range.map(spread).collect();
            keys.sort_unstable();
            let values: Vec<f64> = keys.iter().map(|k| (k % 7) as f64).collect();
            (keys, values)
        };
        let mut merged = KeySums::default();
        let mut pushed = KeySums::default();
        for range in [0..3_000, 1_000..5_000, 4_000..4_100, 0..10] {
            let (keys, values) = run(range);
            merged.extend_run(&keys, &values);
            for (k, v) in keys.iter().zip(&values) {
                pushed.push(*k, *v);
            }
        }
        let (mut keys, mut values) = run(6_000..6_600);
        keys.reverse();
        values.reverse();
        keys.push(keys[0]);
        values.push(1.0);
        merged.extend_run(&keys, &values);
        for (k, v) in keys.iter().zip(&values) {
            pushed.push(*k, *v);
        }
        let (merged, pushed) = (merged.finish(), pushed.finish());
        assert_eq!(merged.len(), 5_600);
        assert_eq!(merged, pushed);
    }

    /// Where rows are entities, a large group becomes a sketch in each
    /// partial state and the final state adds them: the released sketch is
    /// exactly the one of all its entities and their values, whichever
    /// partial state listed and which sketched them; a small group still
    /// carries its count alone.
    #[test]
    fn where_rows_are_entities_partial_sketches_add_up_to_the_whole_group() -> DfResult<()> {
        let measure = 0x51;
        let plain = || EntityGroups {
            threshold: 10,
            plain: true,
            measure,
            ..EntityGroups::default()
        };
        let key = |i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let batch = |range: std::ops::Range<u64>| -> Vec<ArrayRef> {
            vec![
                keys(&range.clone().map(|i| Some(key(i))).collect::<Vec<_>>()),
                Arc::new(Float64Array::from(range.map(|i| i as f64 * 1.5).collect::<Vec<_>>())),
            ]
        };
        // Group 0: 300 entities in one partial state (sketched), 200 in
        // another (sketched), 5 in a third (listed). Group 1: 3 entities.
        let mut a = plain();
        a.update_batch(&batch(0..300), &[0; 300], None, 1)?;
        assert_eq!((a.sketched, a.entries), (1, 0));
        let mut b = plain();
        b.update_batch(&batch(300..500), &[0; 200], None, 1)?;
        let mut c = plain();
        c.update_batch(&batch(500..508), &[0, 0, 0, 0, 0, 1, 1, 1], None, 2)?;
        assert_eq!((c.sketched, c.entries), (0, 8));
        let mut merged = plain();
        merged.merge_batch(&c.state(EmitTo::All)?, &[0, 1], 2)?;
        merged.merge_batch(&a.state(EmitTo::All)?, &[0], 2)?;
        merged.merge_batch(&b.state(EmitTo::All)?, &[0], 2)?;
        let out = merged.evaluate(EmitTo::All)?;
        let out = out.as_binary::<i32>();
        let expected = EntitySketch::of_contributions(measure, (0..505).map(|i| (key(i), i as f64 * 1.5)));
        assert_eq!(EntitySketch::from_bytes(out.value(0)), Some(expected));
        assert_eq!(out.value(1), 3u64.to_le_bytes().as_slice());
        assert_eq!((merged.sketched, merged.entries), (0, 0));
        Ok(())
    }

    /// A sketched partial state is only ever made where rows are entities;
    /// one arriving elsewhere (sets that may overlap) is an error, not a
    /// silently wrong count.
    #[test]
    fn a_sketched_state_where_rows_are_not_entities_is_refused() -> DfResult<()> {
        let mut a = EntityGroups {
            plain: true,
            ..EntityGroups::default()
        };
        let many: Vec<Option<u64>> = (1..=200).map(Some).collect();
        a.update_batch(&[keys(&many)], &[0; 200], None, 1)?;
        let mut merged = EntityGroups::default();
        assert!(merged.merge_batch(&a.state(EmitTo::All)?, &[0], 1).is_err());
        Ok(())
    }

    #[test]
    fn emitting_the_first_groups_shifts_the_rest_down() -> DfResult<()> {
        let mut a = EntityGroups::default();
        a.update_batch(&[keys(&[Some(1), Some(2), Some(3)])], &[0, 1, 1], None, 2)?;
        let first = a.evaluate(EmitTo::First(1))?;
        assert_eq!(sketch_count(first.as_binary::<i32>().value(0)), Some(1));
        a.update_batch(&[keys(&[Some(4)])], &[0], None, 1)?;
        let rest = a.evaluate(EmitTo::All)?;
        assert_eq!(sketch_count(rest.as_binary::<i32>().value(0)), Some(3));
        Ok(())
    }
}
