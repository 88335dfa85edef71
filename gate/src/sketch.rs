//! Entity sketches: a small fixed-size summary of the set of entities behind
//! a cell, from which the entities that two cells do not share can be listed
//! exactly whenever there are only a few of them.
//!
//! Differencing is about entities, not about how a query was written: two
//! released cells whose entity sets differ by one person give that person's
//! value by subtraction, whatever aliases, filters or group labels produced
//! them. The gate therefore compares entity sets. Keeping the sets themselves
//! for every released cell of a domain is too costly (a thousand tables over
//! a million people is a billion memberships), so each cell keeps an
//! invertible Bloom lookup table (Goodrich and Mitzenmacher, 2011) over the
//! host's keyed entity hashes: subtracting two sketches leaves a sketch of
//! the symmetric difference, which peels into its members when it is small
//! and fails to peel when it is large. Sketches add, so the sum of a released
//! table's disjoint cells is a sketch of their union, and "a total minus the
//! released cells" is one subtraction.
//!
//! Each cell also adds up the entities' contributions to one measure (in
//! thousandths, wrapping, so sums and differences are exact), tagged with
//! the measure's source column: a peeled difference then lists what each
//! differing entity contributed. A difference of ten people, nine of whom
//! contribute nearly nothing, isolates the tenth as surely as a difference
//! of one; the audit applies the dominance and p% rules to it.
//!
//! Entity hashes are keyed with the domain's secret, so a job cannot choose
//! entities that collide. The residual risk: two entities of a small
//! difference that land in the same cell of all four rows cannot be peeled
//! (about 3 in a million for a pair); the check then sees "large" and the
//! reviewer is the only safeguard for that pair.

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Rows of the table; each entity lands in one cell of each row.
const ROWS: usize = 4;
/// Cells per row.
const WIDTH: usize = 24;
/// Cells in all.
const CELLS: usize = ROWS * WIDTH;
/// Bytes of one serialized cell without values (sketches stored before
/// they carried contributions): count (i32), key sum (u64), check sum (u32).
const BARE_CELL_BYTES: usize = 16;
/// Bytes of one serialized cell: the bare cell, then the value sum (i64).
const CELL_BYTES: usize = 24;
/// Differences left in a cell after peeling, in thousandths, that are
/// rounding rather than a contribution.
const RESIDUE_TOLERANCE: u64 = 10;
/// Contributions are kept in thousandths.
const SCALE: f64 = 1000.0;
/// The largest contribution kept exactly, in thousandths; larger ones are
/// clamped (still far larger than anything beside them).
const MAX_VALUE: f64 = 4.0e15;

/// One cell: how many entities landed here (signed after subtraction), the
/// XOR of their keys and of their check values, and their contributions' sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cell {
    count: i32,
    keys: u64,
    check: u32,
    value: i64,
}

/// A sketch of the entity set behind one cell; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitySketch {
    /// Distinct entities in the set.
    entities: u64,
    /// Which measure the cells' values add up (a hash of its source
    /// column); 0 when they carry none.
    measure: u64,
    cells: Box<[Cell; CELLS]>,
}

/// First-row cells whose counts the history keeps beside each set's size.
pub const HEAD: usize = 8;

/// The largest difference whose contributions the audit lists (the sketch
/// peels far more reliably below this than near its capacity of about 70).
pub const MAX_LISTED: u64 = 40;

/// What subtracting one sketch from another shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// The sets are equal.
    Same,
    /// The sets differ by exactly this many entities (on both sides together).
    Few(u64),
    /// The sets differ by more than a sketch can list.
    Many,
}

/// What a difference of two sketches lists, when it peels.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Entities in the difference (on both sides together).
    pub entities: u64,
    /// What each of them contributed to the measure, when both sketches
    /// carry the same one (absolute values, largest first).
    pub contributions: Option<Vec<f64>>,
    /// Where entities of both sets contributed different amounts (several
    /// rows per entity, some left out): for each row of the sketch, the
    /// absolute differences left in its cells. Empty when there are none.
    pub residues: Vec<Vec<f64>>,
    /// The entities themselves, by key.
    pub members: Vec<Member>,
}

/// One entity of a listed difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its keyed entity hash.
    pub entity: u64,
    /// +1 when it is in the first set only, -1 in the second only.
    pub side: i8,
    /// Its contribution with the side's sign, in thousandths (0 without a measure).
    pub value: i64,
}

/// The absolute contributions of members, largest first.
pub fn magnitudes(members: &[Member]) -> Vec<f64> {
    let mut v: Vec<f64> = members.iter().map(|m| m.value.unsigned_abs() as f64 / SCALE).collect();
    v.sort_by(|a, b| b.total_cmp(a));
    v
}

fn mix(mut z: u64) -> u64 {
    // SplitMix64's finaliser: every output bit depends on every input bit.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn check_of(key: u64) -> u32 {
    (mix(key ^ 0x5851_f42d_4c95_7f2d) >> 32) as u32
}

fn positions(key: u64) -> [usize; ROWS] {
    let h = mix(key.wrapping_add(0x9e37_79b9_7f4a_7c15));
    let mut out = [0usize; ROWS];
    for (row, slot) in out.iter_mut().enumerate() {
        // Sixteen bits of the hash per row, reduced to the row's width.
        let bits = (h >> (16 * row)) & 0xffff;
        *slot = row * WIDTH + ((bits as usize * WIDTH) >> 16);
    }
    out
}

impl Default for EntitySketch {
    fn default() -> Self {
        Self::new()
    }
}

impl EntitySketch {
    /// The sketch of no entities.
    pub fn new() -> Self {
        EntitySketch {
            entities: 0,
            measure: 0,
            cells: Box::new([Cell::default(); CELLS]),
        }
    }

    /// Builds the sketch of distinct entity keys with each one's
    /// contribution to the measure `measure` (a nonzero hash of its source).
    pub fn of_contributions(measure: u64, items: impl IntoIterator<Item = (u64, f64)>) -> Self {
        let mut s = Self::of_measure(measure);
        for (k, v) in items {
            s.insert_contribution(k, v);
        }
        s
    }

    /// The sketch of no entities, whose values will add up `measure`.
    pub fn of_measure(measure: u64) -> Self {
        EntitySketch { measure, ..Self::new() }
    }

    /// Adds one entity with its contribution (callers give each entity once).
    pub fn insert_contribution(&mut self, key: u64, value: f64) {
        self.toggle(key, 1, fixed(value));
        self.entities += 1;
    }

    /// The counts of the first [`HEAD`] cells (all in the first row, where
    /// each entity lands in exactly one): a lower bound on how many entities
    /// two sets differ by, read without the rest of the sketch.
    pub fn head(&self) -> [i32; HEAD] {
        let mut out = [0; HEAD];
        for (o, c) in out.iter_mut().zip(self.cells.iter()) {
            *o = c.count;
        }
        out
    }

    /// The measure the cells' values add up, 0 for none.
    pub fn measure(&self) -> u64 {
        self.measure
    }

    /// Builds the sketch of a set of distinct entity keys.
    pub fn of_distinct(keys: impl IntoIterator<Item = u64>) -> Self {
        let mut s = Self::new();
        for k in keys {
            s.insert(k);
        }
        s
    }

    /// Adds one entity (callers give each entity once).
    pub fn insert(&mut self, key: u64) {
        self.toggle(key, 1, 0);
        self.entities += 1;
    }

    fn toggle(&mut self, key: u64, sign: i32, value: i64) {
        let check = check_of(key);
        for p in positions(key) {
            let c = &mut self.cells[p];
            c.count = c.count.wrapping_add(sign);
            c.keys ^= key;
            c.check ^= check;
            c.value = c.value.wrapping_add(value.wrapping_mul(i64::from(sign)));
        }
    }

    /// Distinct entities behind the cell.
    pub fn entities(&self) -> u64 {
        self.entities
    }

    /// Adds a disjoint set (the sketch of the union of two disjoint sets).
    /// The sum carries values only while every part carries the same measure.
    pub fn add(&mut self, other: &EntitySketch) {
        self.measure = if self.entities == 0 {
            other.measure
        } else if self.measure == other.measure {
            self.measure
        } else {
            0
        };
        self.entities += other.entities;
        for (a, b) in self.cells.iter_mut().zip(other.cells.iter()) {
            a.count = a.count.wrapping_add(b.count);
            a.keys ^= b.keys;
            a.check ^= b.check;
            a.value = a.value.wrapping_add(b.value);
        }
    }

    /// How `self` and `other` differ, when the difference is at most `limit`
    /// entities; more than that is [`Difference::Many`].
    pub fn difference(&self, other: &EntitySketch, limit: u64) -> Difference {
        match self.list(other, limit) {
            None => Difference::Many,
            Some(l) if l.entities == 0 => Difference::Same,
            Some(l) => Difference::Few(l.entities),
        }
    }

    /// The entities `self` and `other` differ by, with their contributions
    /// where both carry the same measure; `None` beyond `limit` entities.
    pub fn list(&self, other: &EntitySketch, limit: u64) -> Option<Listed> {
        if self.entities.abs_diff(other.entities) > limit {
            return None;
        }
        // Each entity of a difference sits in one cell of each row: a row
        // with more than `limit` cells that differ means more than `limit`
        // entities. Large differences stop here after a few cells.
        // Counts too: each entity of the difference is one ±1 in one cell
        // of the row, so the row's absolute count differences add up to at
        // most their number.
        let (mut differing, mut counted) = (0u64, 0u64);
        for (a, b) in self.cells[..WIDTH].iter().zip(other.cells[..WIDTH].iter()) {
            if (a.count, a.keys, a.check) != (b.count, b.keys, b.check) {
                differing += 1;
                counted += u64::from(a.count.wrapping_sub(b.count).unsigned_abs());
                if differing > limit || counted > limit {
                    return None;
                }
            }
        }
        let mut d: [Cell; CELLS] = [Cell::default(); CELLS];
        for (i, slot) in d.iter_mut().enumerate() {
            let (a, b) = (self.cells[i], other.cells[i]);
            *slot = Cell {
                count: a.count.wrapping_sub(b.count),
                keys: a.keys ^ b.keys,
                check: a.check ^ b.check,
                value: a.value.wrapping_sub(b.value),
            };
        }
        let mut members = peel(&mut d, limit)?;
        members.sort_unstable_by_key(|m| m.entity);
        let comparable = self.measure != 0 && self.measure == other.measure;
        let contributions = comparable.then(|| magnitudes(&members));
        // What is left once every differing entity is peeled: amounts that
        // entities of both sets contributed differently. A few thousandths
        // are rounding (an entity's rows added in another order).
        let residues: Vec<Vec<f64>> = if comparable && d.iter().any(|c| c.value.unsigned_abs() > RESIDUE_TOLERANCE) {
            d.chunks(WIDTH)
                .map(|row| {
                    row.iter()
                        .filter(|c| c.value.unsigned_abs() > RESIDUE_TOLERANCE)
                        .map(|c| c.value.unsigned_abs() as f64 / SCALE)
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        Some(Listed {
            entities: members.len() as u64,
            contributions,
            residues,
            members,
        })
    }

    /// The length of [`EntitySketch::to_bytes`], for memory accounting.
    pub const BYTES: usize = 16 + CELLS * CELL_BYTES;

    /// The sketch as bytes: entity count, measure, then each cell.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::BYTES);
        out.extend_from_slice(&self.entities.to_le_bytes());
        out.extend_from_slice(&self.measure.to_le_bytes());
        for c in self.cells.iter() {
            out.extend_from_slice(&c.count.to_le_bytes());
            out.extend_from_slice(&c.keys.to_le_bytes());
            out.extend_from_slice(&c.check.to_le_bytes());
            out.extend_from_slice(&c.value.to_le_bytes());
        }
        out
    }

    /// Reads [`EntitySketch::to_bytes`], and sketches stored before they
    /// carried contributions; `None` when the length is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (head_len, cell_bytes) = if bytes.len() == Self::BYTES {
            (16, CELL_BYTES)
        } else if bytes.len() == 8 + CELLS * BARE_CELL_BYTES {
            (8, BARE_CELL_BYTES)
        } else {
            return None;
        };
        let (head, body) = bytes.split_at(head_len);
        let mut s = Self::new();
        s.entities = u64::from_le_bytes(head.get(0..8)?.try_into().ok()?);
        if head_len == 16 {
            s.measure = u64::from_le_bytes(head.get(8..16)?.try_into().ok()?);
        }
        for (cell, chunk) in s.cells.iter_mut().zip(body.chunks_exact(cell_bytes)) {
            *cell = Cell {
                count: i32::from_le_bytes(chunk.get(0..4)?.try_into().ok()?),
                keys: u64::from_le_bytes(chunk.get(4..12)?.try_into().ok()?),
                check: u32::from_le_bytes(chunk.get(12..16)?.try_into().ok()?),
                value: match chunk.get(16..24) {
                    Some(v) => i64::from_le_bytes(v.try_into().ok()?),
                    None => 0,
                },
            };
        }
        Some(s)
    }
}

/// A contribution in thousandths, clamped; NaN counts as nothing.
///
/// Rounded half away from zero, as `f64::round` does, but without its
/// library call (baseline x86-64 has no rounding instruction, and this runs
/// once per entity of every released group): the clamp comes first (its
/// bounds are whole, so it commutes with rounding), and below 2^52 the
/// truncated whole part and the remainder are exact.
fn fixed(v: f64) -> i64 {
    if v.is_nan() {
        return 0;
    }
    let y = (v * SCALE).clamp(-MAX_VALUE, MAX_VALUE);
    let whole = y as i64;
    let rest = y - whole as f64;
    // Without branches: whether a remainder reaches a half is as good as
    // random in real amounts, and a mispredicted branch here was half of an
    // entity's insert.
    whole + i64::from(rest >= 0.5) - i64::from(rest <= -0.5)
}

/// Peels a difference sketch: repeatedly takes a cell that holds exactly one
/// entity (count ±1 and a matching check) and removes that entity from its
/// other cells. All cells empty at the end: the difference is what was
/// peeled, and each entry is what one entity contributed (with its side's
/// sign). `None` when it does not peel or holds more than `limit`.
fn peel(d: &mut [Cell; CELLS], limit: u64) -> Option<Vec<Member>> {
    let mut found: Vec<Member> = Vec::new();
    let mut progress = true;
    while progress {
        progress = false;
        for i in 0..CELLS {
            let c = d[i];
            if (c.count == 1 || c.count == -1) && check_of(c.keys) == c.check {
                for p in positions(c.keys) {
                    let cell = &mut d[p];
                    cell.count = cell.count.wrapping_sub(c.count);
                    cell.keys ^= c.keys;
                    cell.check ^= c.check;
                    cell.value = cell.value.wrapping_sub(c.value);
                }
                found.push(Member {
                    entity: c.keys,
                    side: c.count as i8,
                    value: c.value,
                });
                if found.len() as u64 > limit {
                    return None;
                }
                progress = true;
            }
        }
    }
    d.iter()
        .all(|c| (c.count, c.keys, c.check) == (0, 0, 0))
        .then_some(found)
}

impl Serialize for EntitySketch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.to_bytes()))
    }
}

impl<'de> Deserialize<'de> for EntitySketch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)?;
        EntitySketch::from_bytes(&bytes).ok_or_else(|| serde::de::Error::custom("an entity sketch of the wrong length"))
    }
}

/// Serde for `Option<Arc<EntitySketch>>` fields (serde's own needs its
/// `rc` feature, which would rebuild every crate that uses serde).
pub mod shared {
    use super::EntitySketch;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::sync::Arc;

    /// Writes the sketch, if any.
    pub fn serialize<S: Serializer>(v: &Option<Arc<EntitySketch>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_deref().serialize(s)
    }

    /// Reads a sketch, if any.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<EntitySketch>>, D::Error> {
        Ok(Option::<EntitySketch>::deserialize(d)?.map(Arc::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(range: std::ops::Range<u64>) -> impl DoubleEndedIterator<Item = u64> {
        range.map(|i| mix(i ^ 0xdead_beef))
    }

    #[test]
    fn equal_sets_are_the_same_and_one_missing_entity_is_found() {
        let all = EntitySketch::of_distinct(keys(0..10_000));
        let again = EntitySketch::of_distinct(keys(0..10_000).rev());
        assert_eq!(all.difference(&again, 9), Difference::Same);
        let but_one = EntitySketch::of_distinct(keys(0..10_000).filter(|k| *k != mix(4242 ^ 0xdead_beef)));
        assert_eq!(all.difference(&but_one, 9), Difference::Few(1));
        assert_eq!(but_one.difference(&all, 9), Difference::Few(1));
    }

    #[test]
    fn small_differences_on_both_sides_are_counted_exactly() {
        for extra in 1..=9u64 {
            let a = EntitySketch::of_distinct(keys(0..5_000));
            // Drop `extra` entities on one side, add two others on the other.
            let b = EntitySketch::of_distinct(keys(extra..5_002));
            let want = extra + 2;
            let got = a.difference(&b, 20);
            assert_eq!(got, Difference::Few(want), "extra = {extra}");
        }
    }

    #[test]
    fn large_differences_are_many_even_with_equal_sizes() {
        let a = EntitySketch::of_distinct(keys(0..5_000));
        let b = EntitySketch::of_distinct(keys(5_000..10_000));
        assert_eq!(a.difference(&b, 9), Difference::Many);
        let c = EntitySketch::of_distinct(keys(0..4_980).chain(keys(20_000..20_020)));
        assert_eq!(a.difference(&c, 9), Difference::Many);
    }

    #[test]
    fn sums_of_disjoint_cells_are_the_union() {
        let parts: Vec<EntitySketch> = (0..10)
            .map(|p| EntitySketch::of_distinct(keys(p * 100..p * 100 + 100)))
            .collect();
        let mut visible = EntitySketch::new();
        for (i, p) in parts.iter().enumerate() {
            if i != 3 {
                visible.add(p);
            }
        }
        let total = EntitySketch::of_distinct(keys(0..1_000));
        // The total minus the visible cells is the one left out: 100 entities.
        assert_eq!(total.difference(&visible, 9), Difference::Many);
        let small: Vec<EntitySketch> = (0..10)
            .map(|p| EntitySketch::of_distinct(keys(p * 3..p * 3 + 3)))
            .collect();
        let mut shown = EntitySketch::new();
        for (i, p) in small.iter().enumerate() {
            if i != 7 {
                shown.add(p);
            }
        }
        assert_eq!(
            EntitySketch::of_distinct(keys(0..30)).difference(&shown, 9),
            Difference::Few(3)
        );
    }

    #[test]
    fn bytes_and_serde_round_trip_and_bad_lengths_are_refused() {
        let a = EntitySketch::of_distinct(keys(0..777));
        assert_eq!(EntitySketch::from_bytes(&a.to_bytes()), Some(a.clone()));
        assert_eq!(EntitySketch::from_bytes(&[0u8; 10]), None);
        let text = base64::engine::general_purpose::STANDARD_NO_PAD.encode(a.to_bytes());
        assert!(text.len() < 3_200, "{}", text.len());
        let w = EntitySketch::of_contributions(7, keys(0..50).map(|k| (k, 1.5)));
        assert_eq!(EntitySketch::from_bytes(&w.to_bytes()), Some(w));
        // A sketch stored before contributions (16-byte cells, no measure).
        let mut old = a.entities.to_le_bytes().to_vec();
        for c in a.cells.iter() {
            old.extend_from_slice(&c.count.to_le_bytes());
            old.extend_from_slice(&c.keys.to_le_bytes());
            old.extend_from_slice(&c.check.to_le_bytes());
        }
        assert_eq!(EntitySketch::from_bytes(&old), Some(a));
    }

    /// A difference padded with near-zero contributors lists what each
    /// contributed, exactly, whatever the order the sets were summed in.
    #[test]
    fn a_peeled_difference_lists_each_entity_contribution() {
        let value = |k: u64| (k % 1_000) as f64 * 37.25;
        let all: Vec<(u64, f64)> = keys(0..20_000).map(|k| (k, value(k))).collect();
        let target = all[777];
        let padding: Vec<u64> = all[1_000..1_009].iter().map(|(k, _)| *k).collect();
        let a = EntitySketch::of_contributions(9, all.iter().rev().copied());
        let b = EntitySketch::of_contributions(
            9,
            all.iter()
                .copied()
                .filter(|(k, _)| *k != target.0 && !padding.contains(k))
                .map(|(k, _)| (k, value(k))),
        );
        let listed = a.list(&b, MAX_LISTED).unwrap_or_else(|| panic!("did not peel"));
        assert_eq!(listed.entities, 10);
        let mut want: Vec<f64> = all[1_000..1_009].iter().map(|(_, v)| *v).chain([target.1]).collect();
        want.sort_by(|x, y| y.total_cmp(x));
        assert_eq!(listed.contributions, Some(want));
        // Another measure's sketch, or one without values, lists no contributions.
        let other = EntitySketch::of_contributions(8, all.iter().copied().skip(1));
        assert_eq!(a.list(&other, MAX_LISTED).map(|l| l.contributions), Some(None));
        // The same people, one of them contributing less (a record of theirs
        // left out): nothing to peel, and the change is left in one cell a row.
        let less = EntitySketch::of_contributions(
            9,
            all.iter()
                .map(|&(k, v)| if k == target.0 { (k, v - 500.0) } else { (k, v) }),
        );
        let listed = a.list(&less, MAX_LISTED).unwrap_or_else(|| panic!("did not peel"));
        assert_eq!(listed.entities, 0);
        assert_eq!(listed.residues, vec![vec![500.0]; 4]);
        // Forty differing entities still peel; far more do not.
        let many = EntitySketch::of_contributions(9, all.iter().copied().skip(40));
        assert_eq!(a.list(&many, MAX_LISTED).map(|l| l.entities), Some(40));
        let more = EntitySketch::of_contributions(9, all.iter().copied().skip(400));
        assert_eq!(a.list(&more, MAX_LISTED), None);
    }

    /// Over many random small differences, peeling fails rarely: the rate
    /// stays far below one in a thousand for differences of up to nine.
    /// Stored sketches were built with `f64::round`: the faster rounding
    /// must give the same thousandths for every value, halves included.
    #[test]
    fn contributions_round_exactly_as_before() {
        let before = |v: f64| {
            if v.is_nan() {
                0
            } else {
                (v * SCALE).round().clamp(-MAX_VALUE, MAX_VALUE) as i64
            }
        };
        let mut z = 0x1234_5678_9abc_def0u64;
        let mut values = vec![
            0.0,
            -0.0,
            0.0005,
            -0.0005,
            0.0015,
            -0.0025,
            2.5e-4,
            1.2345,
            -7.0045,
            4.0e12,
            -4.0e12,
            4.1e12,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
            0.49999999999999994,
        ];
        for _ in 0..200_000 {
            z = mix(z.wrapping_add(0x9e37_79b9_7f4a_7c15));
            let scale = 10f64.powi((z % 16) as i32 - 6);
            let v = ((z >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * scale;
            values.push(v);
            // Exact halves of a thousandth.
            values.push(((z >> 20) as f64 + 0.5) / SCALE * if z & 1 == 0 { 1.0 } else { -1.0 });
        }
        for v in values {
            assert_eq!(fixed(v), before(v), "{v:e}");
        }
    }

    #[test]
    fn small_differences_peel_almost_always() {
        let mut failures = 0;
        let trials = 3_000u64;
        for t in 0..trials {
            let d = 1 + t % 9;
            let base = t * 1_000_000;
            let a = EntitySketch::of_distinct(keys(base..base + 200));
            let b = EntitySketch::of_distinct(keys(base + d..base + 200));
            if a.difference(&b, 9) != Difference::Few(d) {
                failures += 1;
            }
        }
        assert!(failures <= 2, "{failures} of {trials} small differences did not peel");
    }
}
