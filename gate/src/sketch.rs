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
/// Bytes of one serialized cell: count (i32), key sum (u64), check sum (u32).
const CELL_BYTES: usize = 16;

/// One cell: how many entities landed here (signed after subtraction), and
/// the XOR of their keys and of their check values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cell {
    count: i32,
    keys: u64,
    check: u32,
}

/// A sketch of the entity set behind one cell; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitySketch {
    /// Distinct entities in the set.
    entities: u64,
    cells: Box<[Cell; CELLS]>,
}

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
            cells: Box::new([Cell::default(); CELLS]),
        }
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
        self.toggle(key, 1);
        self.entities += 1;
    }

    fn toggle(&mut self, key: u64, sign: i32) {
        let check = check_of(key);
        for p in positions(key) {
            let c = &mut self.cells[p];
            c.count = c.count.wrapping_add(sign);
            c.keys ^= key;
            c.check ^= check;
        }
    }

    /// Distinct entities behind the cell.
    pub fn entities(&self) -> u64 {
        self.entities
    }

    /// Adds a disjoint set (the sketch of the union of two disjoint sets).
    pub fn add(&mut self, other: &EntitySketch) {
        self.entities += other.entities;
        for (a, b) in self.cells.iter_mut().zip(other.cells.iter()) {
            a.count = a.count.wrapping_add(b.count);
            a.keys ^= b.keys;
            a.check ^= b.check;
        }
    }

    /// How `self` and `other` differ, when the difference is at most `limit`
    /// entities; more than that is [`Difference::Many`].
    pub fn difference(&self, other: &EntitySketch, limit: u64) -> Difference {
        if self.entities.abs_diff(other.entities) > limit {
            return Difference::Many;
        }
        // Each entity of a difference sits in one cell of each row: a row
        // with more than `limit` cells that differ means more than `limit`
        // entities. Large differences stop here after a few cells.
        let mut differing = 0u64;
        for (a, b) in self.cells[..WIDTH].iter().zip(other.cells[..WIDTH].iter()) {
            if a != b {
                differing += 1;
                if differing > limit {
                    return Difference::Many;
                }
            }
        }
        let mut d: [Cell; CELLS] = [Cell::default(); CELLS];
        let mut nonzero = false;
        for (i, slot) in d.iter_mut().enumerate() {
            let (a, b) = (self.cells[i], other.cells[i]);
            *slot = Cell {
                count: a.count.wrapping_sub(b.count),
                keys: a.keys ^ b.keys,
                check: a.check ^ b.check,
            };
            nonzero |= *slot != Cell::default();
        }
        if !nonzero {
            return Difference::Same;
        }
        peel(&mut d, limit)
    }

    /// The sketch as bytes: entity count, then each cell.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + CELLS * CELL_BYTES);
        out.extend_from_slice(&self.entities.to_le_bytes());
        for c in self.cells.iter() {
            out.extend_from_slice(&c.count.to_le_bytes());
            out.extend_from_slice(&c.keys.to_le_bytes());
            out.extend_from_slice(&c.check.to_le_bytes());
        }
        out
    }

    /// Reads [`EntitySketch::to_bytes`]; `None` when the length is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 8 + CELLS * CELL_BYTES {
            return None;
        }
        let (head, body) = bytes.split_at(8);
        let mut s = Self::new();
        s.entities = u64::from_le_bytes(head.try_into().ok()?);
        for (cell, chunk) in s.cells.iter_mut().zip(body.chunks_exact(CELL_BYTES)) {
            *cell = Cell {
                count: i32::from_le_bytes(chunk.get(0..4)?.try_into().ok()?),
                keys: u64::from_le_bytes(chunk.get(4..12)?.try_into().ok()?),
                check: u32::from_le_bytes(chunk.get(12..16)?.try_into().ok()?),
            };
        }
        Some(s)
    }
}

/// Peels a difference sketch: repeatedly takes a cell that holds exactly one
/// entity (count ±1 and a matching check) and removes that entity from its
/// other cells. All cells empty at the end: the difference is what was peeled.
fn peel(d: &mut [Cell; CELLS], limit: u64) -> Difference {
    let mut found = 0u64;
    let mut progress = true;
    while progress {
        progress = false;
        for i in 0..CELLS {
            let c = d[i];
            if (c.count == 1 || c.count == -1) && check_of(c.keys) == c.check {
                let key = c.keys;
                let sign = c.count;
                let check = c.check;
                for p in positions(key) {
                    let cell = &mut d[p];
                    cell.count = cell.count.wrapping_sub(sign);
                    cell.keys ^= key;
                    cell.check ^= check;
                }
                found += 1;
                if found > limit {
                    return Difference::Many;
                }
                progress = true;
            }
        }
    }
    if d.iter().all(|c| *c == Cell::default()) {
        if found == 0 {
            Difference::Same
        } else {
            Difference::Few(found)
        }
    } else {
        Difference::Many
    }
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
        assert!(text.len() < 2_200, "{}", text.len());
    }

    /// Over many random small differences, peeling fails rarely: the rate
    /// stays far below one in a thousand for differences of up to nine.
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
