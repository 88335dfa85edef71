//! The automated checks, run on one output table with the facts the host
//! recorded while the job ran.

// Cells are addressed by (row, column) across several parallel arrays; index loops read best.
#![allow(clippy::needless_range_loop)]

use crate::canon;
use crate::facts::{CellFact, FactIndex, MeasureKind, RowAt};
use crate::history::{ReleaseHistory, ReleasedCell, Row, audit};
use crate::index::KeyedIndex;
use crate::leak;
use crate::report::{CellChange, CellIssue, CheckResult, GateReport, ReleasePlan, Remedy, Status, Verdict};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use inland_policies::Label;
use inland_policies::policy::GateRules;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Cells listed per check in a report; the count covers the rest.
const LISTED: usize = 50;

/// Checks a reviewer may override with a written justification. The others
/// (label, size, identifier leakage) block for good.
pub const OVERRIDABLE: [&str; 4] = ["min-cell-count", "dominance", "p-percent", "differencing"];

/// Group-key texts that mark a total row.
const TOTAL_MARKERS: [&str; 7] = ["total", "all", "sum", "合计", "总计", "小计", "全部"];

/// Why the gate could not run.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The table could not be read.
    #[error("the output table cannot be checked: {0}")]
    Table(String),
    /// A reviewer asked to override a check that cannot be overridden.
    #[error("`{0}` cannot be overridden: only {list} can", list = OVERRIDABLE.join(", "))]
    NotOverridable(String),
}

/// Everything the checks look at.
pub struct GateInput<'a> {
    /// The emitted table.
    pub table: &'a RecordBatch,
    /// Facts the host recorded for the aggregate values it gave the job.
    pub facts: &'a FactIndex,
    /// The job's label.
    pub label: Label,
    /// Whether the policy allows row-level release of every column involved.
    pub row_level_releasable: bool,
    /// Rows of the smallest dataset the job read, if known.
    pub source_rows: Option<u64>,
    /// The policy's gate parameters.
    pub rules: &'a GateRules,
    /// The index of identifier values in the domain.
    pub identifiers: Option<&'a KeyedIndex>,
    /// Every table already released in the domain, under any grant.
    pub released: &'a ReleaseHistory,
    /// Checks a reviewer overrides.
    pub overrides: &'a [String],
    /// The job ran in the `dp` mode: every aggregate of protected data it
    /// read was released by the host with noise, so the rules about exact
    /// cells ([`DP_MOOT`]) are not run.
    pub dp: bool,
}

/// Checks that noise makes moot: they protect exact cells (small counts,
/// dominant contributors, differences between releases, a choice of rows),
/// and a `dp` job never saw one. Label, size, identifier leakage, rounding,
/// untraced and computed values still run (a value the host did not release
/// is something the job made: it could carry a bit learnt another way), and
/// reviewers still decide.
pub const DP_MOOT: [&str; 8] = [
    "min-cell-count",
    "dominance",
    "p-percent",
    "negative-or-missing",
    "differencing",
    "zero-cells",
    "selection",
    "totals",
];

/// The gate's report, the released version's plan, and the traced rows the
/// release would add to the domain's differencing history.
pub struct GateOutcome {
    /// The report.
    pub report: GateReport,
    /// Changes to make for release.
    pub plan: ReleasePlan,
    /// Traced rows that would be released (or are suppressed whole).
    pub traced: Vec<ReleasedCell>,
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Null,
    Key,
    Measure(usize),
    Untraced,
}

struct Finding {
    check: &'static str,
    parameter: String,
    cells: Vec<CellIssue>,
    count: u64,
}

impl Finding {
    fn new(check: &'static str, parameter: String) -> Finding {
        Finding {
            check,
            parameter,
            cells: Vec::new(),
            count: 0,
        }
    }
    fn add(&mut self, row: usize, column: &str, detail: impl FnOnce() -> String) {
        self.count += 1;
        if self.cells.len() < LISTED {
            self.cells.push(CellIssue {
                row: row as u32,
                column: column.to_string(),
                detail: detail(),
            });
        }
    }
    fn finish(self, status_if_any: Status, remedy: Remedy, summary: impl FnOnce(u64) -> String) -> CheckResult {
        let any = self.count > 0;
        CheckResult {
            check: self.check.to_string(),
            parameter: self.parameter,
            status: if any { status_if_any } else { Status::Pass },
            remedy: if any { remedy } else { Remedy::None },
            summary: if any {
                summary(self.count)
            } else {
                "no cells concerned".to_string()
            },
            cells: self.cells,
            cell_count: self.count,
        }
    }
}

fn result(check: &str, parameter: String, status: Status, remedy: Remedy, summary: String) -> CheckResult {
    CheckResult {
        check: check.to_string(),
        parameter,
        status,
        remedy,
        summary,
        cells: Vec::new(),
        cell_count: 0,
    }
}

/// Splits rows `0..n` across the machine's cores and collects each part's result in order.
fn parallel_rows<T: Send>(n: usize, work: impl Fn(std::ops::Range<usize>) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(1)
        .min(8);
    if threads <= 1 || n < 4096 {
        return vec![work(0..n)];
    }
    let per = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let work = &work;
                s.spawn(move || work(i * per..((i + 1) * per).min(n)))
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

/// Finds, row by row, the host facts behind a table's cells.
struct Tracer<'a> {
    facts: &'a FactIndex,
    text: &'a [Vec<Option<String>>],
    hashes: &'a [Vec<u64>],
    numeric: &'a [bool],
}

impl<'a> Tracer<'a> {
    fn trace(&self, range: std::ops::Range<usize>) -> (Vec<Role>, Vec<&'a CellFact>) {
        let ncols = self.text.len();
        let cell = |r: usize, c: usize| self.text[c][r].as_deref();
        let mut roles = vec![Role::Untraced; range.len() * ncols];
        let mut facts: Vec<&'a CellFact> = Vec::new();
        for (i, r) in range.enumerate() {
            let row = &mut roles[i * ncols..(i + 1) * ncols];
            for c in 0..ncols {
                let Some(v) = cell(r, c) else {
                    row[c] = Role::Null;
                    continue;
                };
                if !self.numeric[c] {
                    continue;
                }
                let vh = self.hashes[c][r];
                if !self.facts.has_value(vh) {
                    continue;
                }
                let mut best: Option<&'a CellFact> = None;
                let mut consider = |key_hash: u64| {
                    for (fv, f) in self.facts.candidates(vh, key_hash) {
                        if fv == v
                            && best.is_none_or(|b| f.keys.len() > b.keys.len())
                            && f.keys
                                .iter()
                                .all(|k| (0..ncols).any(|c2| c2 != c && cell(r, c2) == Some(k.as_str())))
                        {
                            best = Some(f);
                        }
                    }
                };
                if self.facts.has_first_key(0) {
                    consider(0);
                }
                for c2 in (0..ncols).filter(|&c2| c2 != c) {
                    let kh = self.hashes[c2][r];
                    if self.text[c2][r].is_some() && self.facts.has_first_key(kh) {
                        consider(kh);
                    }
                }
                if let Some(f) = best {
                    row[c] = Role::Measure(facts.len());
                    facts.push(f);
                }
            }
            for c in 0..ncols {
                if let Role::Measure(m) = row[c] {
                    for k in &facts[m].keys {
                        if let Some(c2) =
                            (0..ncols).find(|&c2| row[c2] == Role::Untraced && cell(r, c2) == Some(k.as_str()))
                        {
                            row[c2] = Role::Key;
                        }
                    }
                }
            }
        }
        (roles, facts)
    }
}

/// How an output uses the job's query results: which rows it keeps, in what
/// order, and whether it combines cells of different rows. Choosing which
/// traced rows to emit can encode a value the job computed, so a subset, a
/// reordering or a re-grouping goes to review with the rows it dropped.
fn selection(
    facts: &FactIndex,
    rows: usize,
    first_column: &str,
    sources: impl Fn(usize) -> BTreeSet<RowAt>,
) -> CheckResult {
    let mut finding = Finding::new(
        "selection",
        "an output shows every row of each query result it uses, in order".into(),
    );
    let mut shown: BTreeMap<u32, Vec<(usize, u32)>> = BTreeMap::new();
    for r in 0..rows {
        let at = sources(r);
        if at.len() > 1 {
            finding.add(r, first_column, || {
                "combines cells of different rows of the job's query results".into()
            });
        }
        for a in at {
            shown.entry(a.query).or_default().push((r, a.row));
        }
    }
    if shown.is_empty() {
        return finding.finish(Status::NeedsReview, Remedy::None, |_| String::new());
    }
    let all = facts.result_rows();
    for (query, seen) in &shown {
        let Some(&(first, _)) = seen.first() else { continue };
        let n = query + 1;
        if let Some(w) = seen.windows(2).find(|w| w[1].1 < w[0].1) {
            finding.add(w[1].0, first_column, || {
                format!("rows of query {n} in another order than the job received them")
            });
        }
        let distinct: BTreeSet<u32> = seen.iter().map(|(_, row)| *row).collect();
        if distinct.len() < seen.len() {
            finding.add(first, first_column, || {
                format!("a row of query {n} shown more than once")
            });
        }
        if !facts.complete(*query) {
            finding.add(first, first_column, || {
                format!("query {n} was too large to keep whole: whether rows were dropped cannot be told")
            });
            continue;
        }
        let dropped: Vec<&[String]> = all
            .range(
                RowAt { query: *query, row: 0 }..=RowAt {
                    query: *query,
                    row: u32::MAX,
                },
            )
            .filter(|(at, _)| !distinct.contains(&at.row))
            .map(|(_, keys)| *keys)
            .collect();
        if !dropped.is_empty() {
            let total = distinct.len() + dropped.len();
            finding.add(first, first_column, || {
                let listed: Vec<String> = dropped
                    .iter()
                    .take(20)
                    .map(|keys| format!("[{}]", keys.join(", ")))
                    .collect();
                let more = dropped.len().saturating_sub(listed.len());
                format!(
                    "keeps {} of the {total} rows of query {n}; dropped: {}{}",
                    distinct.len(),
                    listed.join(" "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            });
        }
    }
    finding.finish(Status::NeedsReview, Remedy::None, |n| {
        format!(
            "{n} finding(s): the output keeps, orders or combines the rows of the job's query results \
             its own way, a choice that can encode a value"
        )
    })
}

/// Runs every check on a table.
pub fn check(input: &GateInput<'_>) -> Result<GateOutcome, GateError> {
    for o in input.overrides {
        if !OVERRIDABLE.contains(&o.as_str()) {
            return Err(GateError::NotOverridable(o.clone()));
        }
    }
    let overridden = |c: &str| input.overrides.iter().any(|o| o == c);
    let rules = input.rules;
    let t = input.table;
    let (rows, ncols) = (t.num_rows(), t.num_columns());
    let schema = t.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let numeric: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| canon::is_numeric(f.data_type()))
        .collect();
    let integer: Vec<bool> = schema.fields().iter().map(|f| f.data_type().is_integer()).collect();
    let text: Vec<Vec<Option<String>>> = std::thread::scope(|s| {
        let handles: Vec<_> = t.columns().iter().map(|a| s.spawn(move || canon::column(a))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(arrow::error::ArrowError::ComputeError("panicked".into())))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .map_err(|e| GateError::Table(e.to_string()))?;
    let cell = |r: usize, c: usize| text[c][r].as_deref();
    let hashes: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = text
            .iter()
            .map(|col| {
                s.spawn(move || {
                    col.iter()
                        .map(|v| v.as_deref().map(crate::facts::text_hash).unwrap_or(0))
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });

    // Trace: which cells are host-computed aggregates, which are their group
    // keys. Rows are independent, so the work is split across the cores.
    let tracer = Tracer {
        facts: input.facts,
        text: &text,
        hashes: &hashes,
        numeric: &numeric,
    };
    let chunks = parallel_rows(rows, |range| tracer.trace(range));
    let mut roles = Vec::with_capacity(rows * ncols);
    let mut facts: Vec<&CellFact> = Vec::new();
    for (chunk_roles, chunk_facts) in chunks {
        let offset = facts.len();
        roles.extend(chunk_roles.into_iter().map(|r| match r {
            Role::Measure(i) => Role::Measure(i + offset),
            other => other,
        }));
        facts.extend(chunk_facts);
    }
    let role = |r: usize, c: usize| roles[r * ncols + c];
    let fact_at = |r: usize, c: usize| match role(r, c) {
        Role::Measure(i) => Some(facts[i]),
        _ => None,
    };

    let mut checks = Vec::new();
    let mut blocked = false;

    // Label.
    let mut row_level = false;
    let label_result = match input.label {
        Label::Identifying => {
            blocked = true;
            result(
                "label",
                "identifying never leaves".into(),
                Status::Fail,
                Remedy::Blocked,
                "the job read direct identifiers: its outputs never leave the domain".into(),
            )
        }
        Label::RowLevel if input.row_level_releasable => {
            row_level = true;
            result(
                "label",
                "row-level needs release_row_level on every column".into(),
                Status::NeedsReview,
                Remedy::None,
                format!(
                    "row-level output; the policy allows row-level release of every column involved, so {} reviewers must approve",
                    rules.approvals_row_level
                ),
            )
        }
        Label::RowLevel => {
            row_level = true;
            blocked = true;
            result(
                "label",
                "row-level needs release_row_level on every column".into(),
                Status::Fail,
                Remedy::Blocked,
                "the job read row-level values of protected columns, and the policy does not allow releasing them"
                    .into(),
            )
        }
        l => result(
            "label",
            "identifying and row-level are blocked".into(),
            Status::Pass,
            Remedy::None,
            format!("{l}"),
        ),
    };
    checks.push(label_result);

    // Size.
    let too_many = rows as u64 > rules.max_rows;
    let as_many_as_source = input.source_rows.is_some_and(|s| s > 0 && rows as u64 >= s);
    let size_parameter = format!("max_rows = {}", rules.max_rows);
    checks.push(if too_many || as_many_as_source {
        let why = if too_many {
            format!("{rows} rows, more than max_rows = {}", rules.max_rows)
        } else {
            format!("{rows} rows, as many as a source dataset")
        };
        row_level = true;
        if input.row_level_releasable {
            result(
                "size",
                size_parameter,
                Status::NeedsReview,
                Remedy::None,
                format!(
                    "{why}: treated as row-level, needs {} reviewers",
                    rules.approvals_row_level
                ),
            )
        } else {
            blocked = true;
            result(
                "size",
                size_parameter,
                Status::Fail,
                Remedy::Blocked,
                format!("{why}: treated as row-level whatever its label says, and the policy does not allow that"),
            )
        }
    } else {
        result(
            "size",
            size_parameter,
            Status::Pass,
            Remedy::None,
            format!("{rows} rows"),
        )
    });

    // Identifier leakage: every cell, string or number, and every column name.
    let mut leak = Finding::new(
        "identifier-leakage",
        "patterns and the domain's identifier index".into(),
    );
    let mut clean: HashSet<&str> = HashSet::new();
    let index_hit = |v: &str| input.identifiers.is_some_and(|i| i.contains(v));
    for name in &names {
        if let Some(kind) = leak::find(name) {
            leak.add(u32::MAX as usize, name, || format!("the column name holds {kind}"));
        } else if index_hit(name) || leak::any_word(name, index_hit) {
            leak.add(u32::MAX as usize, name, || {
                "the column name holds an identifier value from the domain".into()
            });
        }
    }
    for c in 0..ncols {
        for r in 0..rows {
            let Some(v) = cell(r, c) else { continue };
            if clean.contains(v) {
                continue;
            }
            // A traced cell is a host-computed aggregate over a checked group, not
            // someone's number: only the index applies to it.
            let pattern = if matches!(role(r, c), Role::Measure(_)) {
                None
            } else {
                leak::find(v)
            };
            if let Some(kind) = pattern {
                leak.add(r, names[c], || format!("holds {kind}"));
            } else if index_hit(v) {
                leak.add(r, names[c], || {
                    "is an identifier value of a dataset in the domain".into()
                });
            } else if input.identifiers.is_some_and(|i| !i.is_empty()) && leak::any_word(v, index_hit) {
                leak.add(r, names[c], || {
                    "holds an identifier value of a dataset in the domain inside its text".into()
                });
            } else {
                clean.insert(v);
            }
        }
    }
    let leak = leak.finish(Status::Fail, Remedy::Blocked, |n| {
        format!("{n} cell(s) hold identifiers: the output cannot leave the domain")
    });
    blocked |= leak.remedy == Remedy::Blocked;
    checks.push(leak);

    // Cell rules on traced measures.
    let mut suppressed: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut min = Finding::new("min-cell-count", format!("min_cell_count = {}", rules.min_cell_count));
    let mut dom = Finding::new(
        "dominance",
        format!(
            "dominance_n = {}, dominance_k = {}",
            rules.dominance_n, rules.dominance_k
        ),
    );
    let mut ppct = Finding::new("p-percent", format!("p_percent = {}", rules.p_percent));
    let mut negmiss = Finding::new("negative-or-missing", "magnitude tables".into());
    let mut zero = Finding::new("zero-cells", "zero cells are possibly disclosive".into());
    let mut untraced = Finding::new("untraced", format!("judged by the job's label ({})", input.label));
    let mut diff = Finding::new(
        "differencing",
        format!(
            "entity sets against every released table of the domain, min_cell_count = {}",
            rules.min_cell_count
        ),
    );
    let magnitude_cols: Vec<bool> = (0..ncols)
        .map(|c| (0..rows).any(|r| fact_at(r, c).is_some_and(|f| f.kind == MeasureKind::Magnitude)))
        .collect();
    // Values a job computes itself after reading aggregates of protected
    // data (a scale or ratio of a sum, an income differenced inside the
    // job, a total it added) carry no facts; computed in the query, the host
    // derives their facts. Only text without digits is left to the reviewer.
    let aggregate_job = input.label == Label::Aggregate && !row_level;
    let mut computed = Finding::new(
        "computed-values",
        "values a job computed itself from aggregates of protected data".into(),
    );
    let text_column: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
        .collect();
    let (mut traced_cells, mut untraced_cells) = (0u64, 0u64);
    let mut primary: Vec<(&'static str, usize, usize)> = Vec::new();
    for r in 0..rows {
        for c in 0..ncols {
            let name = names[c];
            match role(r, c) {
                Role::Null => {
                    if magnitude_cols[c] {
                        negmiss.add(r, name, || "missing value in a magnitude column".into());
                    }
                }
                Role::Key => {}
                Role::Untraced => {
                    untraced_cells += 1;
                    if numeric[c] && cell(r, c) == Some("0") {
                        zero.add(r, name, || "zero cell".into());
                    }
                    if !row_level && input.label != Label::Identifying {
                        untraced.add(r, name, || "not traced to an aggregate the host computed".into());
                    }
                    if aggregate_job && (!text_column[c] || cell(r, c).is_some_and(|v| v.chars().any(leak::numeral))) {
                        computed.add(r, name, || {
                            "a value the job computed itself after reading aggregates of protected data".into()
                        });
                    }
                }
                Role::Measure(i) => {
                    traced_cells += 1;
                    let f = facts[i];
                    if cell(r, c) == Some("0") {
                        zero.add(r, name, || "zero cell".into());
                    }
                    if f.entities < rules.min_cell_count {
                        min.add(r, name, || {
                            format!(
                                "built from {} distinct entities, fewer than {}",
                                f.entities, rules.min_cell_count
                            )
                        });
                        primary.push(("min-cell-count", r, c));
                    }
                    if let (MeasureKind::Magnitude, Some(k)) = (f.kind, f.contributions) {
                        if k.negatives > 0 || k.missing > 0 {
                            negmiss.add(r, name, || {
                                format!(
                                    "{} negative and {} missing contribution(s): dominance rules cannot be trusted",
                                    k.negatives, k.missing
                                )
                            });
                        }
                        let top = k.largest + if rules.dominance_n >= 2 { k.second } else { 0.0 };
                        if k.total > 0.0 && top > rules.dominance_k / 100.0 * k.total {
                            dom.add(r, name, || {
                                format!(
                                    "the {} largest contribution(s) are {:.1}% of the total (limit {}%)",
                                    rules.dominance_n,
                                    100.0 * top / k.total,
                                    rules.dominance_k
                                )
                            });
                            primary.push(("dominance", r, c));
                        }
                        let rest = k.total - k.largest - k.second;
                        if k.largest > 0.0 && rest < rules.p_percent / 100.0 * k.largest {
                            ppct.add(r, name, || {
                                format!(
                                    "the others contribute {:.1}% of the largest contribution (need {}%)",
                                    100.0 * rest / k.largest,
                                    rules.p_percent
                                )
                            });
                            primary.push(("p-percent", r, c));
                        }
                    }
                }
            }
        }
    }
    // Differencing, on entity sets: one audit entry per distinct set in a
    // row (its measures may come from different queries), against the
    // domain's releases and the table's other entries.
    let limit = rules.min_cell_count.saturating_sub(1);
    let mut entries: Vec<Row<'_>> = Vec::new();
    let mut entry_cells: Vec<Vec<usize>> = Vec::new();
    let mut unchecked: Vec<(usize, usize)> = Vec::new();
    for r in 0..rows {
        let first = entries.len();
        for c in 0..ncols {
            let Some(f) = fact_at(r, c) else { continue };
            let Some(s) = f.sketch.as_deref() else {
                unchecked.push((r, c));
                continue;
            };
            match (first..entries.len()).find(|&e| entries[e].sketch == Some(s)) {
                Some(e) => entry_cells[e].push(c),
                None => {
                    entries.push(Row {
                        sketch: Some(s),
                        keys: &f.keys,
                        row: r,
                    });
                    entry_cells.push(vec![c]);
                }
            }
        }
    }
    let hit: HashSet<(usize, usize)> = primary.iter().map(|(_, r, c)| (*r, *c)).collect();
    let whole: BTreeSet<usize> = (0..entries.len())
        .filter(|&e| entry_cells[e].iter().all(|&c| hit.contains(&(entries[e].row, c))))
        .collect();
    let audited = audit(&entries, &whole, input.released, rules);
    for (e, reason) in &audited.refused {
        let (e, reason) = (*e, reason.clone());
        let r = entries[e].row;
        for &c in &entry_cells[e] {
            diff.add(r, names[c], || reason.clone());
            primary.push(("differencing", r, c));
        }
    }
    // Cells without a sketch (too many groups in the job, or facts from
    // before sketches): compared the old way with releases from before
    // sketches, and otherwise suppressed unless a reviewer overrides.
    for (r, c) in unchecked {
        let Some(f) = fact_at(r, c) else { continue };
        let reason = if input.released.legacy_clash(&f.source, &f.keys, f.entities, limit) {
            format!(
                "differs from an earlier release of `{}` by fewer than {} entities",
                f.source, rules.min_cell_count
            )
        } else {
            "no sketch of its entities (the job made more groups than the host keeps sketches for): \
             it cannot be compared with earlier releases"
                .to_string()
        };
        diff.add(r, names[c], || reason);
        primary.push(("differencing", r, c));
    }
    for (check, r, c) in primary {
        if !overridden(check) {
            suppressed.insert((r, c));
        }
    }
    let cell_rule = |f: Finding, what: &str| {
        let check = f.check;
        let what = what.to_string();
        f.finish(
            Status::Fail,
            if overridden(check) {
                Remedy::Overridden
            } else {
                Remedy::Suppressed
            },
            move |n| format!("{n} cell(s) {what}"),
        )
    };
    checks.push(cell_rule(min, "come from too few entities"));
    checks.push(cell_rule(dom, "are dominated by their largest contributors"));
    checks.push(cell_rule(ppct, "let a contributor estimate another too closely"));
    checks.push(negmiss.finish(Status::NeedsReview, Remedy::None, |n| {
        format!("{n} cell(s) with negative or missing values: a reviewer must judge the magnitude rules")
    }));
    checks.push(cell_rule(
        diff,
        "differ from an earlier release by fewer entities than the threshold",
    ));
    checks.push(zero.finish(Status::NeedsReview, Remedy::None, |n| {
        format!("{n} zero cell(s): possibly disclosive (nobody in the group has the attribute)")
    }));
    checks.push(untraced.finish(Status::NeedsReview, Remedy::None, |n| {
        format!("{n} cell(s) the job computed itself: the host cannot vouch for them")
    }));
    let computed = computed.finish(Status::Fail, Remedy::Blocked, |n| {
        format!(
            "{n} cell(s) hold values the job computed itself from aggregates of protected data: \
             compute them in the query (a change of unit, rounding or ratio there keeps the cell \
             rules; a total is its own query without GROUP BY)"
        )
    });
    blocked |= computed.remedy == Remedy::Blocked;
    checks.push(computed);
    checks.push(selection(
        input.facts,
        rows,
        names.first().copied().unwrap_or(""),
        |r| (0..ncols).filter_map(|c| fact_at(r, c)).filter_map(|f| f.at).collect(),
    ));

    if input.dp {
        // Nothing is suppressed for exact-cell rules; totals need no adjusting.
        suppressed.clear();
    }
    // Values the release plan works on.
    let values: Vec<Vec<Option<f64>>> = (0..ncols)
        .map(|c| {
            if numeric[c] {
                (0..rows).map(|r| canon::number(t.column(c), r)).collect()
            } else {
                vec![None; rows]
            }
        })
        .collect();
    let mut set: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let mut totals = Finding::new(
        "totals",
        "secondary suppression: totals recomputed from what remains".into(),
    );
    let is_measure = |r: usize, c: usize| matches!(role(r, c), Role::Measure(_) | Role::Untraced);
    // Column totals: a row marked as a total, or equal to the sum of the others.
    for c in (0..ncols).filter(|&c| numeric[c]) {
        if !(0..rows).any(|r| suppressed.contains(&(r, c))) {
            continue;
        }
        let present: Vec<usize> = (0..rows)
            .filter(|&r| values[c][r].is_some() && is_measure(r, c))
            .collect();
        let sum: f64 = present.iter().filter_map(|&r| values[c][r]).sum();
        let total_rows: Vec<usize> = present
            .iter()
            .copied()
            .filter(|&r| {
                let marked = (0..ncols).any(|c2| {
                    !numeric[c2]
                        && cell(r, c2).is_some_and(|v| TOTAL_MARKERS.contains(&v.trim().to_lowercase().as_str()))
                });
                let v = values[c][r].unwrap_or(0.0);
                let equal = present.len() >= 3 && (2.0 * v - sum).abs() <= 1e-9 * sum.abs().max(1.0);
                marked || equal
            })
            .collect();
        for &tr in &total_rows {
            if suppressed.contains(&(tr, c)) {
                continue;
            }
            if total_rows.len() == 1 {
                let remaining: f64 = present
                    .iter()
                    .filter(|&&r| r != tr && !suppressed.contains(&(r, c)))
                    .filter_map(|&r| values[c][r])
                    .sum();
                set.insert((tr, c), remaining);
                totals.add(tr, names[c], || {
                    "column total recomputed from the cells that remain".into()
                });
            } else {
                suppressed.insert((tr, c));
                totals.add(tr, names[c], || {
                    "one of several totals of a column with a suppressed cell: suppressed".into()
                });
            }
        }
    }
    // Row totals: a column equal, in every complete row, to the sum of the row's other measures.
    let measure_cols: Vec<usize> = (0..ncols)
        .filter(|&c| numeric[c] && (0..rows).any(|r| is_measure(r, c)))
        .collect();
    if measure_cols.len() >= 3 {
        for &tc in &measure_cols {
            let others: Vec<usize> = measure_cols.iter().copied().filter(|&c| c != tc).collect();
            let mut complete = 0;
            let is_total = (0..rows).all(|r| {
                let (Some(tv), Some(parts)) = (
                    values[tc][r],
                    others.iter().map(|&c| values[c][r]).collect::<Option<Vec<f64>>>(),
                ) else {
                    return true;
                };
                complete += 1;
                let s: f64 = parts.iter().sum();
                (tv - s).abs() <= 1e-9 * s.abs().max(1.0)
            });
            if !is_total || complete == 0 {
                continue;
            }
            for r in 0..rows {
                if suppressed.contains(&(r, tc)) || !others.iter().any(|&c| suppressed.contains(&(r, c))) {
                    continue;
                }
                let remaining: f64 = others
                    .iter()
                    .filter(|&&c| !suppressed.contains(&(r, c)))
                    .filter_map(|&c| values[c][r])
                    .sum();
                set.insert((r, tc), remaining);
                totals.add(r, names[tc], || {
                    "row total recomputed from the cells that remain".into()
                });
            }
            break;
        }
    }
    checks.push(totals.finish(Status::Pass, Remedy::Adjusted, |n| {
        format!("{n} total(s) adjusted so that no suppressed cell can be recovered")
    }));

    // Rounding of counts, applied by the host.
    match rules.rounding.as_ref().map(|r| *r.get_ref()) {
        Some(rounding) => {
            let mut rounded = Finding::new(
                "rounding",
                format!(
                    "counts <= {} become 0, then round to the nearest {}",
                    rounding.zero_at_or_below, rounding.base
                ),
            );
            for c in (0..ncols).filter(|&c| integer[c]) {
                for r in 0..rows {
                    let counts = match role(r, c) {
                        Role::Measure(i) => facts[i].kind == MeasureKind::Frequency,
                        Role::Untraced => true,
                        _ => false,
                    };
                    if !counts || suppressed.contains(&(r, c)) {
                        continue;
                    }
                    let Some(v) = set.get(&(r, c)).copied().or(values[c][r]) else {
                        continue;
                    };
                    let base = rounding.base.max(1) as f64;
                    let new = if v <= rounding.zero_at_or_below as f64 {
                        0.0
                    } else {
                        (v / base).round() * base
                    };
                    if new != v {
                        set.insert((r, c), new);
                        rounded.add(r, names[c], || "rounded".into());
                    }
                }
            }
            checks.push(rounded.finish(Status::Pass, Remedy::Adjusted, |n| format!("{n} count(s) rounded")));
        }
        None => checks.push(result(
            "rounding",
            "off".into(),
            Status::Pass,
            Remedy::None,
            "no rounding set by policy".into(),
        )),
    }

    if input.dp {
        for c in checks.iter_mut().filter(|c| DP_MOOT.contains(&c.check.as_str())) {
            *c = result(
                &c.check,
                "dp".into(),
                Status::Pass,
                Remedy::None,
                "not run: the job read protected data only through the host's noisy releases".into(),
            );
        }
        blocked = checks.iter().any(|c| c.remedy == Remedy::Blocked);
    }
    let mut changes: Vec<(u32, u32, CellChange)> = suppressed
        .iter()
        .map(|&(r, c)| (r as u32, c as u32, CellChange::Suppress))
        .collect();
    changes.extend(
        set.iter()
            .filter(|(k, _)| !suppressed.contains(k))
            .map(|(&(r, c), &v)| (r as u32, c as u32, CellChange::Set(v))),
    );
    changes.sort_by_key(|(r, c, _)| (*r, *c));
    // Noisy cells carry no entity sets: they join no differencing history.
    let traced = entries
        .iter()
        .zip(&entry_cells)
        .enumerate()
        .filter(|_| !input.dp)
        .filter_map(|(i, (e, cells))| {
            let f = fact_at(e.row, *cells.first()?)?;
            let mut keys = f.keys.clone();
            keys.sort_unstable();
            let shown = cells.iter().filter(|&&c| !suppressed.contains(&(e.row, c))).count();
            Some(ReleasedCell {
                source: f.source.clone(),
                keys,
                entities: f.entities,
                sketch: f.sketch.clone(),
                visible: shown > 0,
                complete: shown == cells.len(),
                derived: audited.derived.get(i).cloned().unwrap_or_default(),
            })
        })
        .collect();
    let report = GateReport {
        verdict: if blocked { Verdict::Blocked } else { Verdict::Review },
        approvals_required: if row_level {
            rules.approvals_row_level
        } else {
            rules.approvals
        },
        row_level,
        checks,
        traced_cells,
        untraced_cells,
        overrides: input.overrides.to_vec(),
    };
    Ok(GateOutcome {
        report,
        plan: ReleasePlan { changes },
        traced,
    })
}
