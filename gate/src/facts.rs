//! Per-cell contributor facts. The host computes them while it runs each
//! aggregate query, where every group's contributions are known; the gate
//! finds them again for the cells of an emitted table by value and group keys.
//! Nothing here comes from the guest.

use crate::sketch::EntitySketch;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

/// A fixed hash of a cell's text (the same in every process).
pub fn text_hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// Combines a value's hash with the hash of one of its group keys (0 for none).
fn pair(value: u64, key: u64) -> u64 {
    value.rotate_left(17) ^ key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// What kind of statistic a cell holds; the checks differ by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeasureKind {
    /// A count of rows or entities.
    Frequency,
    /// A sum or mean of values, where a few large contributors can dominate.
    Magnitude,
    /// Another allowed aggregate (variance, standard deviation).
    Other,
}

/// The per-entity contributions behind one magnitude cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Contributions {
    /// The largest per-entity contribution.
    pub largest: f64,
    /// The second largest (0 when there is one contributor).
    pub second: f64,
    /// The sum of all contributions.
    pub total: f64,
    /// Rows with a negative value (the dominance rules then cannot be trusted).
    pub negatives: u64,
    /// Rows with a missing value.
    pub missing: u64,
}

/// Facts about one aggregate value the host returned to the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellFact {
    /// The aggregate as planned, e.g. `sum(residents.income)`: the same statistic in two outputs has the same source.
    pub source: String,
    /// What kind of statistic it is.
    pub kind: MeasureKind,
    /// The group key values of its row, canonical.
    pub keys: Vec<String>,
    /// Distinct entities behind the group.
    pub entities: u64,
    /// Contributions, for magnitude cells.
    pub contributions: Option<Contributions>,
    /// A sketch of the group's entities (shared by the measures of one row),
    /// for comparing the cell with every released cell of the domain.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::sketch::shared")]
    pub sketch: Option<Arc<EntitySketch>>,
    /// Which query of the job and which row of its result the value stood
    /// in, so the gate can tell an output that keeps only some rows of a
    /// result, or reorders them (a choice that can encode a value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<RowAt>,
}

/// A row of one of a job's query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RowAt {
    /// The query, numbered from 0 in the order the job ran them.
    pub query: u32,
    /// The row of its result, from 0, as the job received it.
    pub row: u32,
}

/// Every aggregate value a job was given, looked up by canonical value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FactIndex {
    facts: Vec<(String, CellFact)>,
    /// Queries some of whose facts were not kept (the index was full): their
    /// results cannot be compared whole with an output.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    incomplete: BTreeSet<u32>,
    /// (value, first key) hash → facts: a cell is looked up with each other cell of its row.
    #[serde(skip)]
    by_pair: HashMap<u64, Vec<u32>>,
    /// Hashes of every recorded value and of every first key: most cells are
    /// ruled out by these small sets before the large map is touched.
    #[serde(skip)]
    values: HashSet<u64>,
    #[serde(skip)]
    first_keys: HashSet<u64>,
    /// Distinct entity sketches kept, and the last one (a row's measures share it).
    #[serde(skip)]
    sketches: usize,
    #[serde(skip)]
    last_sketch: Option<Arc<EntitySketch>>,
}

impl FactIndex {
    /// Facts kept per job; past this, further values stay untraced (and go to review).
    pub const CAPACITY: usize = 2_000_000;

    /// Entity sketches kept per job (2.3 KB each); rows past this keep no
    /// sketch, and the gate sends them to review as unchecked for differencing.
    pub const SKETCHES: usize = 50_000;

    /// Records the facts of one query's result, numbering them as query
    /// `query`; returns false when the index filled up on the way.
    pub fn add_result(&mut self, query: u32, facts: Vec<(String, CellFact)>) -> bool {
        for (value, mut fact) in facts {
            if let Some(at) = &mut fact.at {
                at.query = query;
            }
            if !self.add(value, fact) {
                self.incomplete.insert(query);
                return false;
            }
        }
        true
    }

    /// Whether every fact of `query`'s result was kept.
    pub fn complete(&self, query: u32) -> bool {
        !self.incomplete.contains(&query)
    }

    /// The rows of each query's result that carry facts, each with the group
    /// keys of its facts, in row order.
    pub fn result_rows(&self) -> BTreeMap<RowAt, &[String]> {
        let mut rows = BTreeMap::new();
        for (_, f) in &self.facts {
            if let Some(at) = f.at {
                rows.entry(at).or_insert(f.keys.as_slice());
            }
        }
        rows
    }

    /// Records the fact behind a value; returns false when the index is full.
    pub fn add(&mut self, value: String, mut fact: CellFact) -> bool {
        if self.facts.len() >= Self::CAPACITY {
            return false;
        }
        self.count_sketch(&mut fact);
        let i = self.facts.len() as u32;
        self.note(i, &value, &fact);
        self.facts.push((value, fact));
        true
    }

    fn note(&mut self, i: u32, value: &str, fact: &CellFact) {
        let (v, k) = (text_hash(value), fact.keys.first().map(|k| text_hash(k)).unwrap_or(0));
        self.values.insert(v);
        self.first_keys.insert(k);
        self.by_pair.entry(pair(v, k)).or_default().push(i);
    }

    /// Whether some fact has a value with this hash.
    pub fn has_value(&self, value: u64) -> bool {
        self.values.contains(&value)
    }

    /// Whether some fact's first group key has this hash (0: a fact without keys).
    pub fn has_first_key(&self, key: u64) -> bool {
        self.first_keys.contains(&key)
    }

    /// Facts whose value hashes to `value` and whose first group key hashes to
    /// `key` (0: facts without keys). Callers compare the texts.
    pub fn candidates(&self, value: u64, key: u64) -> impl Iterator<Item = (&str, &CellFact)> {
        self.by_pair
            .get(&pair(value, key))
            .into_iter()
            .flatten()
            .filter_map(|i| self.facts.get(*i as usize).map(|(v, f)| (v.as_str(), f)))
    }

    /// How many facts are recorded.
    pub fn len(&self) -> usize {
        self.facts.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }

    /// Rebuilds the lookup after deserializing.
    pub fn reindex(&mut self) {
        self.by_pair.clear();
        self.values.clear();
        self.first_keys.clear();
        self.sketches = 0;
        self.last_sketch = None;
        let mut facts = std::mem::take(&mut self.facts);
        for (i, (v, f)) in facts.iter_mut().enumerate() {
            self.count_sketch(f);
            self.note(i as u32, v, f);
        }
        self.facts = facts;
    }

    /// Keeps the fact's sketch while fewer than [`Self::SKETCHES`] are kept.
    fn count_sketch(&mut self, fact: &mut CellFact) {
        let Some(s) = &fact.sketch else { return };
        if self
            .last_sketch
            .as_ref()
            .is_some_and(|l| Arc::ptr_eq(l, s) || **l == **s)
        {
            return;
        }
        if self.sketches >= Self::SKETCHES {
            fact.sketch = None;
            return;
        }
        self.sketches += 1;
        self.last_sketch = Some(s.clone());
    }
}
