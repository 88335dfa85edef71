//! The domain's release history and the differencing audit against it.
//!
//! A released table is public, whoever released it and under whichever
//! grant, so a new table is audited against every released table of the
//! domain. The audit works on entity sets (see [`crate::sketch`]), never on
//! how a query was written: aliases, rewritten filters and relabelled groups
//! change nothing. A row of the new table is refused when, with what is
//! already out, it isolates fewer than `min_cell_count` entities:
//!
//! - it and one released cell differ by a few entities (a group with one
//!   person left out, a population without one person);
//! - it and an earlier row of the same table differ by a few entities (both
//!   halves of a difference in one output);
//! - it and the released cells of one table, added up, differ by a few
//!   entities (a total that covers a suppressed cell, a complement within a
//!   released population).
//!
//! A difference of more entities than that is still a cell anyone can
//! compute: where both sets carry contributions to the same measure, the
//! difference is listed (up to [`MAX_LISTED`] entities) and refused when it
//! fails the dominance or p% rule, so padding a difference with people who
//! contribute nearly nothing does not isolate anyone either.
//!
//! And when the new table's own rows, added up, differ from a released cell
//! or table by a few entities (a total released first, then the groups with
//! one suppressed), its smallest rows are suppressed until they no longer do.
//!
//! Sums are only meaningful for tables whose rows have disjoint entity sets
//! (a GROUP BY over one row per entity). Where an entity sits in several rows,
//! the sum of sketches is not a set and never peels: such sums never clash,
//! and combinations of three or more overlapping sets are related only as
//! pairs of listed differences (below; see the README: the reviewer judges
//! the rest).
//!
//! A listed difference that passes is a set anyone can compute too (the
//! target with twenty others). It is kept with the new row, and a later
//! listed difference is compared with every kept one: the target with twenty
//! others, minus the same twenty, is the target (four releases, two pairs).

use crate::sketch::{EntitySketch, HEAD, Listed, MAX_LISTED, Member, magnitudes};
use inland_policies::policy::GateRules;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A row of a released table, kept for the differencing audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleasedCell {
    /// The first statistic of the row as planned (for messages only).
    pub source: String,
    /// Its group keys, sorted (for messages only).
    pub keys: Vec<String>,
    /// Distinct entities behind it.
    pub entities: u64,
    /// A sketch of those entities; rows released before sketches existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::sketch::shared")]
    pub sketch: Option<Arc<EntitySketch>>,
    /// Whether any of its values left (a fully suppressed row is kept for
    /// the record but compared with nothing).
    #[serde(default = "visible_by_default")]
    pub visible: bool,
    /// Whether all of its values left: a row with one value suppressed (a
    /// dominated sum beside its count) must not be given back by a later
    /// release of the same set, or of a sum that covers it.
    #[serde(default = "visible_by_default")]
    pub complete: bool,
    /// Differences of this row with what was released before it that were
    /// listed and passed (more than `min_cell_count` entities, none
    /// dominating): sets anyone can compute, compared with later ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<Vec<Member>>,
}

/// Listed differences kept per released row, at most (smallest sets first:
/// a job that filled them with decoys needs this many approved releases).
const DERIVED_PER_ROW: usize = 32;

fn visible_by_default() -> bool {
    true
}

/// What one comparable set of the history is.
#[derive(Debug, Clone)]
enum Part {
    /// One released row.
    Row,
    /// The released rows that share a group key value, added up.
    Key(String),
    /// All released rows of the table, added up.
    Whole,
}

/// A set whose value anyone can compute from what was released: one
/// released row, or a sum of a table's released rows.
#[derive(Debug)]
struct Entry {
    entities: u64,
    /// The sketch's first cell counts, kept beside the size so that most
    /// unrelated sets are passed over without reading their sketch.
    head: [i32; HEAD],
    table: u32,
    part: Part,
    sketch: Arc<EntitySketch>,
    /// It holds a row with a suppressed value: even the same set again would
    /// give that value back.
    partial: bool,
}

/// The sums worth comparing of a set of disjoint rows: all of them, and
/// those sharing each group key value (a district's age bands add up to the
/// district). Sums of one row are the row itself and are left out.
fn sums<'a>(rows: impl Iterator<Item = (&'a EntitySketch, &'a [String], bool)>) -> Vec<(Part, EntitySketch, bool)> {
    type Sum = (usize, EntitySketch, bool);
    let mut out = Vec::new();
    let mut by_key: std::collections::BTreeMap<&str, Sum> = std::collections::BTreeMap::new();
    let (mut n, mut whole, mut partial) = (0usize, EntitySketch::new(), false);
    for (s, keys, complete) in rows {
        n += 1;
        whole.add(s);
        partial |= !complete;
        let mut seen: Vec<&str> = Vec::new();
        for k in keys {
            if seen.contains(&k.as_str()) {
                continue;
            }
            seen.push(k);
            let e = by_key.entry(k).or_insert_with(|| (0, EntitySketch::new(), false));
            e.0 += 1;
            e.1.add(s);
            e.2 |= !complete;
        }
    }
    if n >= 2 {
        out.push((Part::Whole, whole, partial));
    }
    for (k, (count, sum, partial)) in by_key {
        if count >= 2 && count < n {
            out.push((Part::Key(k.to_string()), sum, partial));
        }
    }
    out
}

/// Every set anyone can compute from the domain's releases (each released
/// row with a sketch, and the sums of each table's rows), indexed by size:
/// two sets that differ by fewer than `k` entities differ in size by less
/// than `k`, so a set is compared only with sets of about its size.
#[derive(Debug, Default)]
pub struct ReleaseHistory {
    names: Vec<String>,
    /// By entities.
    entries: Vec<Entry>,
    /// Rows released before sketches existed: entity counts by statistic and
    /// sorted group keys, compared the old way (same text, close counts).
    legacy: std::collections::HashMap<(String, Vec<String>), Vec<u64>>,
    /// Listed differences of released rows, with their table.
    derived: Vec<(u32, Vec<Member>)>,
}

impl ReleaseHistory {
    /// Indexes released tables, each given as its name and rows.
    pub fn new(tables: impl IntoIterator<Item = (String, Vec<ReleasedCell>)>) -> Self {
        let mut h = ReleaseHistory::default();
        for (name, cells) in tables {
            let table = h.names.len() as u32;
            h.names.push(name);
            for c in cells.iter().filter(|c| c.visible) {
                h.derived.extend(c.derived.iter().map(|d| (table, d.clone())));
            }
            for c in cells.iter().filter(|c| c.visible && c.sketch.is_none()) {
                h.legacy
                    .entry((c.source.clone(), c.keys.clone()))
                    .or_default()
                    .push(c.entities);
            }
            let rows: Vec<(&Arc<EntitySketch>, &[String], bool)> = cells
                .iter()
                .filter(|c| c.visible)
                .filter_map(|c| c.sketch.as_ref().map(|s| (s, c.keys.as_slice(), c.complete)))
                .collect();
            for (part, sketch, partial) in sums(rows.iter().map(|(s, k, c)| (s.as_ref(), *k, *c))) {
                h.entries.push(Entry {
                    entities: sketch.entities(),
                    head: sketch.head(),
                    table,
                    part,
                    sketch: Arc::new(sketch),
                    partial,
                });
            }
            for (s, _, complete) in rows {
                h.entries.push(Entry {
                    entities: s.entities(),
                    head: s.head(),
                    table,
                    part: Part::Row,
                    sketch: s.clone(),
                    partial: !complete,
                });
            }
        }
        h.entries.sort_by_key(|e| (e.entities, e.table));
        h
    }

    /// Sets indexed (released rows and sums of rows).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing with a sketch was released.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Why `s` cannot be released: the first indexed set it differs from by
    /// fewer than `min_cell_count` entities, or by a difference the
    /// dominance or p% rule would suppress, or equals where that set had a
    /// value suppressed, or whose listed difference with `s`, combined with a
    /// difference listed before (`earlier`, or kept in the history), isolates
    /// someone. Listed differences that pass go into `found`. The reason names
    /// the table, never how many entities differ (that number would answer
    /// questions about individuals).
    fn clash(
        &self,
        s: &EntitySketch,
        rules: &GateRules,
        earlier: &[Vec<Member>],
        found: &mut Vec<Vec<Member>>,
    ) -> Option<String> {
        let limit = rules.min_cell_count.saturating_sub(1);
        let n = s.entities();
        let reach = MAX_LISTED.max(limit);
        let head = s.head();
        let from = self.entries.partition_point(|e| e.entities < n.saturating_sub(reach));
        for e in &self.entries[from..] {
            if e.entities > n.saturating_add(reach) {
                break;
            }
            // Each differing entity moves one of these counts by one: more
            // apart than `reach`, the sets differ by more than can be listed.
            let apart: u64 = head
                .iter()
                .zip(&e.head)
                .map(|(a, b)| u64::from(a.wrapping_sub(*b).unsigned_abs()))
                .sum();
            if apart > reach {
                continue;
            }
            let name = self.names.get(e.table as usize).map(String::as_str).unwrap_or("?");
            let why = match compare(s, &e.sketch, rules, e.partial) {
                Compared::Unrelated => continue,
                Compared::Clash(why) => why.text(limit, true),
                Compared::Derived(members) => match self.combined(&members, earlier, rules) {
                    Some(why) => format!("{}, {why}", why_combined(limit)),
                    None => {
                        if found.len() < DERIVED_PER_ROW {
                            found.push(members);
                        }
                        continue;
                    }
                },
            };
            return Some(match &e.part {
                Part::Row => format!("with a released cell of `{name}`, {why}"),
                Part::Key(key) => format!("with the released cells of `{name}` for `{key}` added up, {why}"),
                Part::Whole => format!("with all released cells of `{name}` added up, {why}"),
            });
        }
        None
    }

    /// Whether a listed difference, combined with one listed before (kept in
    /// the history, or `earlier` in this audit), isolates someone.
    fn combined(&self, d: &[Member], earlier: &[Vec<Member>], rules: &GateRules) -> Option<String> {
        self.derived
            .iter()
            .map(|(_, e)| e.as_slice())
            .chain(earlier.iter().map(Vec::as_slice))
            .find_map(|e| pair_isolates(d, e, rules))
            .map(|why| why.text(rules.min_cell_count.saturating_sub(1), false))
    }

    /// Whether a cell with no sketch is within `limit` entities (but not
    /// equal) of a cell released before sketches with the same statistic
    /// text and keys: the old check, kept for those releases.
    pub(crate) fn legacy_clash(&self, source: &str, keys: &[String], entities: u64, limit: u64) -> bool {
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        self.legacy
            .get(&(source.to_string(), sorted))
            .is_some_and(|old| old.iter().any(|e| (1..=limit).contains(&e.abs_diff(entities))))
    }
}

/// Why the difference of two entity sets cannot be let out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// It isolates fewer than `min_cell_count` entities (or none, where the
    /// other set had a value suppressed).
    Few,
    /// Its listed contributions fail the dominance or p% rule.
    Dominated,
}

impl Why {
    fn text(self, limit: u64, suppressed_too: bool) -> String {
        match self {
            Why::Few if suppressed_too => {
                format!("isolates fewer than {} entities or a suppressed value", limit + 1)
            }
            Why::Few => format!("isolates fewer than {} entities", limit + 1),
            Why::Dominated => {
                "leaves a difference whose largest contributions dominate it (the dominance or p% rule)".to_string()
            }
        }
    }
}

/// What comparing two entity sets found.
enum Compared {
    /// Their difference cannot be let out.
    Clash(Why),
    /// Their difference is listed and passes: a set anyone can compute.
    Derived(Vec<Member>),
    /// Too different to list, or equal.
    Unrelated,
}

/// Compares `a` with `b`; `equal_hides`: `b` had a value suppressed, so even
/// the same set again would give it back.
fn compare(a: &EntitySketch, b: &EntitySketch, rules: &GateRules, equal_hides: bool) -> Compared {
    let limit = rules.min_cell_count.saturating_sub(1);
    let comparable = a.measure() != 0 && a.measure() == b.measure();
    let Some(Listed {
        entities,
        contributions,
        residues,
        mut members,
    }) = a.list(b, MAX_LISTED.max(limit))
    else {
        return Compared::Unrelated;
    };
    if !comparable {
        // The cells' values add up different measures, or none: only the
        // entities mean anything.
        members.iter_mut().for_each(|m| m.value = 0);
    }
    let listed = contributions.unwrap_or_default();
    // Entities in both sets that contributed differently (a record of one
    // person left out, where people have several): judged with the listed
    // ones, row by row of the sketch; dominated in every row, it isolates.
    let changed = comparable
        && !residues.is_empty()
        && residues.iter().all(|row| {
            let mut c: Vec<f64> = listed.iter().chain(row).copied().collect();
            c.sort_by(|x, y| y.total_cmp(x));
            dominated(&c, rules)
        });
    match entities {
        0 if equal_hides => Compared::Clash(Why::Few),
        n if n > 0 && n <= limit => Compared::Clash(Why::Few),
        _ if changed => Compared::Clash(Why::Dominated),
        0 => Compared::Unrelated,
        _ if comparable && residues.is_empty() && dominated(&listed, rules) => Compared::Clash(Why::Dominated),
        // With changed contributions beside it that dominate nothing, the
        // difference is still kept: the same change in another pair cancels.
        _ => Compared::Derived(members),
    }
}

/// What the reason says of a pair of differences.
fn why_combined(limit: u64) -> String {
    format!(
        "leaves a difference that, with another difference of released cells, isolates fewer than {} entities \
         or a dominated value",
        limit + 1
    )
}

/// Whether two listed differences, added or subtracted, isolate someone:
/// fewer than `min_cell_count` entities, or a dominated difference.
fn pair_isolates(d: &[Member], e: &[Member], rules: &GateRules) -> Option<Why> {
    let limit = rules.min_cell_count.saturating_sub(1);
    [1i8, -1].into_iter().find_map(|sign| {
        let c = combine(d, e, sign);
        match c.len() as u64 {
            0 => None,
            n if n <= limit => Some(Why::Few),
            _ => dominated(&magnitudes(&c), rules).then_some(Why::Dominated),
        }
    })
}

/// `d + sign × e` over two differences sorted by entity: the entities left.
fn combine(d: &[Member], e: &[Member], sign: i8) -> Vec<Member> {
    let mut out = Vec::with_capacity(d.len() + e.len());
    let (mut i, mut j) = (0, 0);
    while i < d.len() || j < e.len() {
        let next = match (d.get(i), e.get(j)) {
            (Some(a), Some(b)) if a.entity == b.entity => {
                i += 1;
                j += 1;
                Member {
                    entity: a.entity,
                    side: a.side.saturating_add(sign.saturating_mul(b.side)),
                    value: a.value.wrapping_add(i64::from(sign).wrapping_mul(b.value)),
                }
            }
            (Some(a), Some(b)) if a.entity < b.entity => {
                i += 1;
                *a
            }
            (Some(a), None) => {
                i += 1;
                *a
            }
            (_, Some(b)) => {
                j += 1;
                Member {
                    side: sign.saturating_mul(b.side),
                    value: i64::from(sign).wrapping_mul(b.value),
                    ..*b
                }
            }
            (None, None) => break,
        };
        if next.side != 0 {
            out.push(next);
        }
    }
    out
}

/// The cell rules on a difference's contributions (absolute, largest first).
fn dominated(c: &[f64], rules: &GateRules) -> bool {
    let total: f64 = c.iter().sum();
    let largest = c.first().copied().unwrap_or(0.0);
    let second = c.get(1).copied().unwrap_or(0.0);
    let top = largest + if rules.dominance_n >= 2 { second } else { 0.0 };
    let rest = total - largest - second;
    (total > 0.0 && top > rules.dominance_k / 100.0 * total)
        || (largest > 0.0 && rest < rules.p_percent / 100.0 * largest)
}

/// One entity set of a table being checked (a row's measures may come from
/// different queries, each with its own set): its sketch, its group keys,
/// and the table row it sits in.
pub(crate) struct Row<'a> {
    pub(crate) sketch: Option<&'a EntitySketch>,
    pub(crate) keys: &'a [String],
    pub(crate) row: usize,
}

/// What the differencing audit of one table found.
#[derive(Debug, Default)]
pub(crate) struct Audit {
    /// Rows to suppress, with reasons.
    pub(crate) refused: Vec<(usize, String)>,
    /// Per row, its listed differences that passed: kept with its release.
    pub(crate) derived: Vec<Vec<Vec<Member>>>,
}

/// The differencing audit of one table: its rows, and the rows other checks
/// already suppress whole.
pub(crate) fn audit(rows: &[Row<'_>], already: &BTreeSet<usize>, history: &ReleaseHistory, rules: &GateRules) -> Audit {
    let limit = rules.min_cell_count.saturating_sub(1);
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut derived: Vec<Vec<Vec<Member>>> = vec![Vec::new(); rows.len()];
    if limit == 0 {
        return Audit { refused: out, derived };
    }
    let mut refused: BTreeSet<usize> = BTreeSet::new();
    // Listed differences of this table's earlier rows, compared with later ones.
    let mut earlier: Vec<Vec<Member>> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let Some(s) = row.sketch else { continue };
        if already.contains(&r) {
            continue;
        }
        let mut found: Vec<Vec<Member>> = Vec::new();
        let reason = history.clash(s, rules, &earlier, &mut found).or_else(|| {
            rows[..r].iter().enumerate().find_map(|(r2, other)| {
                let other = other.sketch?;
                if refused.contains(&r2) || already.contains(&r2) {
                    return None;
                }
                let why = match compare(s, other, rules, false) {
                    Compared::Clash(why) => why.text(limit, false),
                    Compared::Derived(members) => match history.combined(&members, &earlier, rules) {
                        Some(why) => format!("{}, {why}", why_combined(limit)),
                        None => {
                            if found.len() < DERIVED_PER_ROW {
                                found.push(members);
                            }
                            return None;
                        }
                    },
                    Compared::Unrelated => return None,
                };
                Some(if rows[r2].row != row.row {
                    format!("with row {} of this table, {why}", rows[r2].row + 1)
                } else {
                    format!("with another value of this row, {why}")
                })
            })
        });
        // Kept even for a refused row: a reviewer may override the refusal.
        earlier.extend(found.iter().cloned());
        derived[r] = found;
        if let Some(reason) = reason {
            refused.insert(r);
            out.push((r, reason));
        }
    }
    // The table's own rows added up (all, or those sharing a key), against
    // what is already out: while a sum isolates a few entities, its
    // smallest row goes too.
    for _ in 0..rows.len() {
        let visible: Vec<usize> = (0..rows.len())
            .filter(|r| !refused.contains(r) && !already.contains(r) && rows[*r].sketch.is_some())
            .collect();
        let mut found = None;
        for (part, sum, _) in sums(
            visible
                .iter()
                .filter_map(|&r| rows[r].sketch.map(|s| (s, rows[r].keys, true))),
        ) {
            if let Some(reason) = history.clash(&sum, rules, &earlier, &mut Vec::new()) {
                found = Some((part, reason));
                break;
            }
        }
        let Some((part, reason)) = found else { break };
        let members = visible.iter().copied().filter(|&r| match &part {
            Part::Key(k) => rows[r].keys.iter().any(|x| x == k),
            _ => true,
        });
        let Some(smallest) = members.min_by_key(|&r| (rows[r].sketch.map(|s| s.entities()), r)) else {
            break;
        };
        refused.insert(smallest);
        out.push((
            smallest,
            format!("this table's cells added up: {reason}; its smallest cell there is suppressed too"),
        ));
    }
    Audit { refused: out, derived }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(range: std::ops::Range<u64>) -> Vec<u64> {
        range
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x1234_5678)
            .collect()
    }

    fn rules10() -> GateRules {
        GateRules {
            min_cell_count: 10,
            ..GateRules::default()
        }
    }

    /// A released table of one row, with the differences kept with it.
    fn released(name: &str, s: EntitySketch, derived: Vec<Vec<Member>>) -> (String, Vec<ReleasedCell>) {
        (
            name.to_string(),
            vec![ReleasedCell {
                source: "sum(x)".into(),
                keys: vec![],
                entities: s.entities(),
                sketch: Some(Arc::new(s)),
                visible: true,
                complete: true,
                derived,
            }],
        )
    }

    /// A new table of one row.
    fn row(s: &EntitySketch) -> Vec<Row<'_>> {
        vec![Row {
            sketch: Some(s),
            keys: &[],
            row: 0,
        }]
    }

    fn sketch(range: std::ops::Range<u64>) -> EntitySketch {
        EntitySketch::of_distinct(keys(range))
    }

    fn cell(range: std::ops::Range<u64>, visible: bool) -> ReleasedCell {
        let s = sketch(range);
        ReleasedCell {
            source: "count(*)".into(),
            keys: vec![],
            entities: s.entities(),
            sketch: Some(Arc::new(s)),
            visible,
            complete: visible,
            derived: Vec::new(),
        }
    }

    fn audit_rows(rows: &[EntitySketch], history: &ReleaseHistory) -> Vec<(usize, String)> {
        let refs: Vec<Row<'_>> = rows
            .iter()
            .enumerate()
            .map(|(row, s)| Row {
                sketch: Some(s),
                keys: &[],
                row,
            })
            .collect();
        audit(&refs, &BTreeSet::new(), history, &rules10()).refused
    }

    #[test]
    fn a_group_without_one_person_is_refused_against_the_released_group() {
        let h = ReleaseHistory::new([("first".to_string(), vec![cell(0..500, true), cell(500..900, true)])]);
        // The same groups, one person left out of the first: whatever the SQL said.
        let out = audit_rows(&[sketch(1..500), sketch(500..900)], &h);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, 0);
        assert!(
            out[0]
                .1
                .contains("with a released cell of `first`, isolates fewer than 10"),
            "{}",
            out[0].1
        );
    }

    /// Leaving out the target and nine people who earn nearly nothing passes
    /// the entity count (ten) but not the dominance rule on the difference;
    /// leaving out ten ordinary people passes both.
    #[test]
    fn a_difference_padded_with_near_zero_contributors_is_refused() {
        let income = |i: u64| match i {
            0 => 11_496.48,
            1..=9 => 0.01,
            _ => 3_000.0 + (i % 97) as f64 * 50.0,
        };
        let with = |range: std::ops::Range<u64>| {
            let ks = keys(range.clone());
            EntitySketch::of_contributions(42, range.zip(ks).map(|(i, k)| (k, income(i))))
        };
        let all = with(0..2_000);
        let h = ReleaseHistory::new([(
            "district".to_string(),
            vec![ReleasedCell {
                source: "sum(residents.income)".into(),
                keys: vec![],
                entities: all.entities(),
                sketch: Some(Arc::new(all)),
                visible: true,
                complete: true,
                derived: Vec::new(),
            }],
        )]);
        let out = audit_rows(&[with(10..2_000)], &h);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].1.contains("dominate"), "{}", out[0].1);
        // Ten ordinary people left out: their sum is no one's income.
        let ordinary = {
            let mut s = with(0..10);
            s.add(&with(20..2_000));
            s
        };
        assert!(audit_rows(&[ordinary], &h).is_empty());
        // Padded in the other direction (the new set is larger) it is caught too.
        let h2 = ReleaseHistory::new([(
            "but-ten".to_string(),
            vec![ReleasedCell {
                source: "sum(residents.income)".into(),
                keys: vec![],
                entities: 1_990,
                sketch: Some(Arc::new(with(10..2_000))),
                visible: true,
                complete: true,
                derived: Vec::new(),
            }],
        )]);
        assert_eq!(audit_rows(&[with(0..2_000)], &h2).len(), 1);
    }

    /// The same people, one record of one person left out (several rows per
    /// person): no entity differs, but the sums differ by that record alone.
    #[test]
    fn the_same_people_with_one_contribution_changed_are_refused() {
        let pay = |i: u64| 2_000.0 + (i % 13) as f64 * 100.0;
        let with = |changed: Option<u64>| {
            let range = 0..500u64;
            let ks = keys(range.clone());
            EntitySketch::of_contributions(
                5,
                range
                    .zip(ks)
                    .map(|(i, k)| (k, if Some(i) == changed { pay(i) - 1_234.5 } else { pay(i) })),
            )
        };
        let all = with(None);
        let h = ReleaseHistory::new([(
            "payroll".to_string(),
            vec![ReleasedCell {
                source: "sum(payroll.pay)".into(),
                keys: vec![],
                entities: all.entities(),
                sketch: Some(Arc::new(all)),
                visible: true,
                complete: true,
                derived: Vec::new(),
            }],
        )]);
        let out = audit_rows(&[with(Some(77))], &h);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].1.contains("dominate"), "{}", out[0].1);
        // Everyone's pay a little different (another month): no one stands out.
        let month = {
            let range = 0..500u64;
            let ks = keys(range.clone());
            EntitySketch::of_contributions(5, range.zip(ks).map(|(i, k)| (k, pay(i) * 0.9)))
        };
        assert!(audit_rows(&[month], &h).is_empty());
    }

    /// Two pairs of releases: A − B is the target with twenty others, C − D
    /// the same twenty. Each pair passes (21 and 20 entities), but the
    /// difference kept from the first pair makes the second isolate the target.
    #[test]
    fn a_second_pair_that_cancels_a_kept_difference_is_refused() {
        // A: 1,000 people with the target (0) and twenty nurses (1..=20); B without them.
        let (a, b) = (sketch(0..1_000), sketch(21..1_000));
        let mut tables = vec![released("a", a, vec![])];
        let first = audit(
            &row(&b),
            &BTreeSet::new(),
            &ReleaseHistory::new(tables.clone()),
            &rules10(),
        );
        assert!(first.refused.is_empty(), "{:?}", first.refused);
        assert_eq!(first.derived[0].len(), 1, "A − B is kept");
        assert_eq!(first.derived[0][0].len(), 21);
        tables.push(released("b", b, first.derived[0].clone()));
        // C: the nurses among 2,000 others; D without them.
        let c = {
            let mut c = sketch(5_000..7_000);
            c.add(&sketch(1..21));
            c
        };
        tables.push(released("c", c, vec![]));
        let d = sketch(5_000..7_000);
        let second = audit(
            &row(&d),
            &BTreeSet::new(),
            &ReleaseHistory::new(tables.clone()),
            &rules10(),
        );
        assert_eq!(second.refused.len(), 1, "{:?}", second.refused);
        assert!(
            second.refused[0].1.contains("another difference"),
            "{}",
            second.refused[0].1
        );
        // Another twenty people instead of the nurses: nothing cancels.
        let mut tables2 = tables[..2].to_vec();
        let other = {
            let mut c = sketch(5_000..7_000);
            c.add(&sketch(10_000..10_020));
            c
        };
        tables2.push(released("c", other, vec![]));
        let third = audit(&row(&d), &BTreeSet::new(), &ReleaseHistory::new(tables2), &rules10());
        assert!(third.refused.is_empty(), "{:?}", third.refused);
    }

    /// The same pairs, each also carrying one changed record of a third
    /// person (several rows per person): the change does not hide the pair.
    #[test]
    fn a_changed_record_beside_a_pair_does_not_hide_it() {
        let value = |i: u64| 3_000.0 + (i % 17) as f64 * 40.0;
        let sketch_of = |range: std::ops::Range<u64>, extra: std::ops::Range<u64>, less: Option<u64>| {
            let mut s = EntitySketch::of_measure(3);
            for (i, k) in range
                .clone()
                .chain(extra.clone())
                .zip(keys(range).into_iter().chain(keys(extra)))
            {
                let v = if Some(i) == less { value(i) - 700.0 } else { value(i) };
                s.insert_contribution(k, v);
            }
            s
        };
        // A: the target (0), twenty others (1..=20) and 979 more; B: the 979,
        // person 500's record changed.
        let (a, b) = (sketch_of(0..1_000, 0..0, None), sketch_of(21..1_000, 0..0, Some(500)));
        let mut tables = vec![released("a", a, vec![])];
        let first = audit(
            &row(&b),
            &BTreeSet::new(),
            &ReleaseHistory::new(tables.clone()),
            &rules10(),
        );
        assert!(first.refused.is_empty(), "{:?}", first.refused);
        assert_eq!(first.derived[0].len(), 1);
        tables.push(released("b", b, first.derived[0].clone()));
        tables.push(released("c", sketch_of(5_000..7_000, 1..21, None), vec![]));
        let d = sketch_of(5_000..7_000, 0..0, Some(6_000));
        let second = audit(&row(&d), &BTreeSet::new(), &ReleaseHistory::new(tables), &rules10());
        assert_eq!(second.refused.len(), 1, "{:?}", second.refused);
    }

    #[test]
    fn both_halves_in_one_table_are_caught() {
        let out = audit_rows(&[sketch(0..500), sketch(0..499)], &ReleaseHistory::default());
        assert_eq!(
            out,
            vec![(
                1,
                "with row 1 of this table, isolates fewer than 10 entities".to_string()
            )]
        );
    }

    #[test]
    fn a_total_covering_a_suppressed_cell_is_refused() {
        // Districts released with a 3-person district suppressed.
        let h = ReleaseHistory::new([(
            "districts".to_string(),
            vec![cell(0..400, true), cell(400..403, false), cell(403..900, true)],
        )]);
        // The city total: everyone.
        let out = audit_rows(&[sketch(0..900)], &h);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0]
                .1
                .contains("all released cells of `districts` added up, isolates fewer than 10"),
            "{}",
            out[0].1
        );
        // A total over a different population passes.
        assert!(audit_rows(&[sketch(2_000..3_000)], &h).is_empty());
    }

    #[test]
    fn groups_released_after_their_total_lose_their_smallest_row_too() {
        let h = ReleaseHistory::new([("city".to_string(), vec![cell(0..900, true)])]);
        // The district table, its 3-person district already suppressed by the
        // small-cell rule: the rest add up to the total minus those 3.
        let rows = [sketch(0..400), sketch(400..403), sketch(403..900)];
        let refs: Vec<Row<'_>> = rows
            .iter()
            .enumerate()
            .map(|(row, s)| Row {
                sketch: Some(s),
                keys: &[],
                row,
            })
            .collect();
        let out = audit(&refs, &BTreeSet::from([1]), &h, &rules10()).refused;
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].0, 0, "the smaller of the two visible rows goes");
    }

    fn keyed(range: std::ops::Range<u64>, keys: &[&str]) -> ReleasedCell {
        ReleasedCell {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            ..cell(range, true)
        }
    }

    #[test]
    fn a_subtotal_over_released_groups_with_a_dropped_small_group_is_refused() {
        // District × age band; in district A one band had 2 people and never
        // reached the table (the query dropped it).
        let h = ReleaseHistory::new([(
            "bands".to_string(),
            vec![
                keyed(0..300, &["A", "young"]),
                keyed(302..600, &["A", "old"]),
                keyed(600..900, &["B", "young"]),
                keyed(900..1_200, &["B", "old"]),
            ],
        )]);
        // District A's total: its two released bands plus the 2 dropped people.
        let out = audit_rows(&[sketch(0..600)], &h);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].1.contains("for `A` added up, isolates fewer than 10"),
            "{}",
            out[0].1
        );
        // District B's total is exactly its bands: nothing new.
        assert!(audit_rows(&[sketch(600..1_200)], &h).is_empty());
    }

    #[test]
    fn bands_released_after_their_subtotal_lose_a_band() {
        let h = ReleaseHistory::new([("a-total".to_string(), vec![cell(0..600, true)])]);
        let rows = [sketch(0..300), sketch(302..600), sketch(600..900)];
        let keys = [vec!["A".to_string()], vec!["A".to_string()], vec!["B".to_string()]];
        let refs: Vec<Row<'_>> = rows
            .iter()
            .zip(&keys)
            .enumerate()
            .map(|(row, (s, k))| Row {
                sketch: Some(s),
                keys: k,
                row,
            })
            .collect();
        let out = audit(&refs, &BTreeSet::new(), &h, &rules10()).refused;
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].0, 1, "the smaller of district A's bands goes");
    }

    /// A district whose sum was suppressed for dominance while its count was
    /// shown: the same set again, or a total covering it, would give the sum
    /// back by subtraction.
    #[test]
    fn a_set_whose_sum_was_suppressed_is_not_released_again() {
        let dominated = ReleasedCell {
            complete: false,
            derived: Vec::new(),
            ..cell(0..400, true)
        };
        let h = ReleaseHistory::new([("districts".to_string(), vec![dominated, cell(400..900, true)])]);
        let again = audit_rows(&[sketch(0..400)], &h);
        assert_eq!(again.len(), 1, "{again:?}");
        let total = audit_rows(&[sketch(0..900)], &h);
        assert_eq!(total.len(), 1, "{total:?}");
        assert!(total[0].1.contains("suppressed value"), "{}", total[0].1);
        // The complete district again is no news.
        assert!(audit_rows(&[sketch(400..900)], &h).is_empty());
    }

    /// Releases recorded before sketches are still compared, the old way.
    #[test]
    fn releases_without_sketches_are_compared_by_statistic_and_keys() {
        let old = ReleasedCell {
            source: "count(*)".into(),
            keys: vec!["东城区".into()],
            entities: 40,
            sketch: None,
            visible: true,
            complete: true,
            derived: Vec::new(),
        };
        let h = ReleaseHistory::new([("old".to_string(), vec![old])]);
        assert!(h.legacy_clash("count(*)", &["东城区".to_string()], 39, 9));
        assert!(!h.legacy_clash("count(*)", &["东城区".to_string()], 40, 9));
        assert!(!h.legacy_clash("count(*)", &["西城区".to_string()], 39, 9));
    }

    #[test]
    fn unrelated_and_equal_sets_pass() {
        let h = ReleaseHistory::new([("t".to_string(), vec![cell(0..500, true), cell(500..1_000, true)])]);
        assert!(audit_rows(&[sketch(0..500), sketch(500..1_000)], &h).is_empty());
        assert!(audit_rows(&[sketch(0..250), sketch(250..500)], &h).is_empty());
        // A difference of exactly min_cell_count entities is allowed.
        assert!(audit_rows(&[sketch(10..500)], &h).is_empty());
    }

    #[test]
    fn released_cells_round_trip_and_old_records_read() -> Result<(), serde_json::Error> {
        let c = cell(0..50, false);
        let back: ReleasedCell = serde_json::from_str(&serde_json::to_string(&c)?)?;
        assert_eq!(back, c);
        // A record written before sketches: visible, no sketch, never compared.
        let old: ReleasedCell = serde_json::from_str(r#"{"source":"count(*)","keys":["a"],"entities":12}"#)?;
        assert!(old.visible && old.sketch.is_none());
        Ok(())
    }
}
