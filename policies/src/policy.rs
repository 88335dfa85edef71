//! The domain policy file: what admins write by hand and review in a diff.
//! Parsing and validation are pure: the catalog is passed in, every problem is
//! reported at once with its file, line and column, and a policy that has any
//! problem is never returned.
//!
//! ```toml
//! [domain]
//! min_group_size = 10
//! allowed_aggregates = ["count", "count_distinct", "sum", "avg", "variance", "stddev"]
//! max_plaintext_rows = 1000
//!
//! [datasets.residents]
//! grade = "general"              # general | important | core
//! personal_information = true
//! entity = "resident_id"         # the column that identifies a person or enterprise
//!
//! [datasets.residents.columns]
//! resident_id = { class = "direct-identifier", access = "mask", method = "pseudonym" }
//! name = { class = "direct-identifier", access = "deny" }
//! district = { class = "quasi-identifier", access = "dimension" }
//! income = { class = "sensitive", access = "aggregate-only" }
//! ```
//! Columns a policy does not list are denied.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use toml::Spanned;

/// A problem in a policy file, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

/// GB/T 43697-2024 grades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grade {
    /// General data.
    General,
    /// Important data.
    Important,
    /// Core data: never read by a job unless the policy says otherwise.
    Core,
}

/// Why a dataset may never be operated (clause 6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotOperableReason {
    /// National security.
    NationalSecurity,
    /// Public interest.
    PublicInterest,
    /// Rights that cannot be cleared (personal, commercial, third-party).
    UnclearedRights,
    /// Banned by law or regulation.
    Law,
}

/// A column's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ColumnClass {
    /// Identifies a person or enterprise on its own.
    DirectIdentifier,
    /// Identifies in combination with others.
    QuasiIdentifier,
    /// A sensitive attribute.
    Sensitive,
    /// An ordinary attribute.
    Attribute,
    /// Already public (open data).
    Public,
}

/// How a masked column is transformed before a job sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum MaskMethod {
    /// HMAC-SHA256 under a per-grant key: equal values give equal pseudonyms inside one grant only.
    Pseudonym,
    /// Replaced by a fixed marker.
    Redact,
    /// All but the last `n` characters replaced.
    KeepLast {
        /// Characters kept.
        n: u32,
    },
    /// Dates truncated to the year or month.
    DateTrunc {
        /// `year` or `month`.
        unit: DateUnit,
    },
    /// Numbers replaced by the lower bound of their bucket.
    Bucket {
        /// Bucket width.
        width: f64,
    },
    /// Replaced by null.
    Null,
}

/// Date truncation units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DateUnit {
    /// Keep the year.
    Year,
    /// Keep year and month.
    Month,
}

/// What a job may do with a column.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "access", rename_all = "kebab-case")]
pub enum Access {
    /// The column does not exist for jobs.
    Deny,
    /// Jobs see only the masked value.
    Mask {
        /// The masking method and its parameters.
        method: MaskMethod,
    },
    /// Reaches results only through allowed aggregates.
    AggregateOnly,
    /// Usable in GROUP BY and in the output as a group key.
    Dimension,
    /// May be joined on, never output.
    JoinKeyOnly,
    /// Plain values.
    Plaintext,
}

/// One column's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawColumn")]
pub struct ColumnPolicy {
    /// Its class.
    pub class: ColumnClass,
    /// Its access mode.
    pub access: Access,
    /// Why a direct identifier may be read in plaintext; required for that.
    #[serde(default)]
    pub override_reason: Option<String>,
    /// Row-level values of this column may leave through the gate (with two reviewers).
    #[serde(default)]
    pub release_row_level: bool,
    /// In the `dp` privacy mode, values summed or averaged are clamped to
    /// `[low, high]`: the bound is what one row can move a noisy total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp_bounds: Option<[f64; 2]>,
    /// The column's published values: in the `dp` mode a histogram by it
    /// lists every one of them, so a group's absence reveals nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_values: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum AccessKind {
    Deny,
    Mask,
    AggregateOnly,
    Dimension,
    JoinKeyOnly,
    Plaintext,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum MethodKind {
    Pseudonym,
    Redact,
    KeepLast,
    DateTrunc,
    Bucket,
    Null,
}

/// A column as written: every field, checked together when converted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    class: ColumnClass,
    access: AccessKind,
    method: Option<MethodKind>,
    n: Option<u32>,
    unit: Option<DateUnit>,
    width: Option<f64>,
    override_reason: Option<String>,
    #[serde(default)]
    release_row_level: bool,
    dp_bounds: Option<[f64; 2]>,
    public_values: Option<Vec<String>>,
}

impl TryFrom<RawColumn> for ColumnPolicy {
    type Error = String;
    fn try_from(r: RawColumn) -> Result<Self, String> {
        let method = match (&r.access, r.method) {
            (AccessKind::Mask, None) => {
                return Err(
                    "access = \"mask\" needs a method: pseudonym, redact, keep-last, date-trunc, bucket or null".into(),
                );
            }
            (AccessKind::Mask, Some(m)) => Some(match m {
                MethodKind::Pseudonym => MaskMethod::Pseudonym,
                MethodKind::Redact => MaskMethod::Redact,
                MethodKind::Null => MaskMethod::Null,
                MethodKind::KeepLast => MaskMethod::KeepLast {
                    n: r.n.ok_or("method = \"keep-last\" needs n")?,
                },
                MethodKind::DateTrunc => MaskMethod::DateTrunc {
                    unit: r
                        .unit
                        .ok_or("method = \"date-trunc\" needs unit = \"year\" or \"month\"")?,
                },
                MethodKind::Bucket => MaskMethod::Bucket {
                    width: r.width.ok_or("method = \"bucket\" needs width")?,
                },
            }),
            (_, Some(_)) => return Err("a method is only for access = \"mask\"".into()),
            (_, None) => None,
        };
        let access = match (r.access, method) {
            (AccessKind::Mask, Some(method)) => Access::Mask { method },
            (AccessKind::Deny, _) => Access::Deny,
            (AccessKind::AggregateOnly, _) => Access::AggregateOnly,
            (AccessKind::Dimension, _) => Access::Dimension,
            (AccessKind::JoinKeyOnly, _) => Access::JoinKeyOnly,
            (AccessKind::Plaintext, _) => Access::Plaintext,
            (AccessKind::Mask, None) => return Err("access = \"mask\" needs a method".into()),
        };
        if let Some([low, high]) = r.dp_bounds
            && !(low.is_finite() && high.is_finite() && low < high)
        {
            return Err(format!(
                "dp_bounds = [{low}, {high}] must be two finite numbers, the lower first"
            ));
        }
        if r.dp_bounds.is_some() && matches!(access, Access::Deny | Access::Mask { .. } | Access::JoinKeyOnly) {
            return Err("dp_bounds are for columns jobs aggregate (aggregate-only, dimension or plaintext)".into());
        }
        if let Some(values) = &r.public_values {
            if !matches!(access, Access::Dimension | Access::Plaintext) {
                return Err("public_values are for dimension or plaintext columns".into());
            }
            if values.is_empty() || values.len() > MAX_PUBLIC_VALUES {
                return Err(format!("public_values lists 1 to {MAX_PUBLIC_VALUES} values"));
            }
            let distinct: std::collections::BTreeSet<&String> = values.iter().collect();
            if distinct.len() != values.len() {
                return Err("public_values lists a value twice".into());
            }
        }
        Ok(ColumnPolicy {
            class: r.class,
            access,
            override_reason: r.override_reason,
            release_row_level: r.release_row_level,
            dp_bounds: r.dp_bounds,
            public_values: r.public_values,
        })
    }
}

/// One dataset's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetPolicy {
    /// Its grade.
    pub grade: Grade,
    /// Whether it holds personal information.
    #[serde(default)]
    pub personal_information: bool,
    /// `false` marks it not operable; then `not_operable_reason` is required.
    #[serde(default = "yes")]
    pub operable: bool,
    /// Why it is not operable.
    #[serde(default)]
    pub not_operable_reason: Option<NotOperableReason>,
    /// Allow jobs to read it although it is core data.
    #[serde(default)]
    pub allow_core: bool,
    /// The column that identifies the person or enterprise behind each row.
    pub entity: Spanned<String>,
    /// In the `dp` privacy mode, the most rows of one entity an aggregate
    /// counts; rows beyond it are dropped by a keyed-random choice. Not
    /// needed where registration proved the entity column unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows_per_entity: Option<Spanned<u32>>,
    /// Column policies by name.
    pub columns: BTreeMap<Spanned<String>, Spanned<ColumnPolicy>>,
}

fn yes() -> bool {
    true
}

/// Domain-wide rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainRules {
    /// The fewest distinct entities an output group may have.
    #[serde(default = "default_min_group")]
    pub min_group_size: Spanned<u64>,
    /// Aggregate functions allowed on aggregate-only columns.
    #[serde(default = "default_aggregates")]
    pub allowed_aggregates: Spanned<Vec<String>>,
    /// The most rows a query returning plaintext rows may return.
    #[serde(default = "default_rows")]
    pub max_plaintext_rows: u64,
}

fn default_min_group() -> Spanned<u64> {
    Spanned::new(0..0, 10)
}
fn default_aggregates() -> Spanned<Vec<String>> {
    Spanned::new(0..0, DEFAULT_AGGREGATES.iter().map(|s| s.to_string()).collect())
}
fn default_rows() -> u64 {
    1000
}

impl Default for DomainRules {
    fn default() -> Self {
        DomainRules {
            min_group_size: default_min_group(),
            allowed_aggregates: default_aggregates(),
            max_plaintext_rows: default_rows(),
        }
    }
}

/// The most values a column's `public_values` may list.
pub const MAX_PUBLIC_VALUES: usize = 1000;

/// The aggregates allowed by default: they never return a single contributor's raw value.
pub const DEFAULT_AGGREGATES: [&str; 6] = ["count", "count_distinct", "sum", "avg", "variance", "stddev"];
/// Aggregates that may be allowed at all. Min, max, first/last value, array
/// and string aggregation and percentiles return raw values and are not here.
pub const KNOWN_AGGREGATES: [&str; 9] = [
    "count",
    "count_distinct",
    "sum",
    "avg",
    "mean",
    "variance",
    "variance_pop",
    "stddev",
    "stddev_pop",
];

/// Output rounding applied by the host at the gate: small counts become 0,
/// then every count is rounded to the nearest `base`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rounding {
    /// Counts at or below this become 0.
    #[serde(default)]
    pub zero_at_or_below: u64,
    /// Round to the nearest multiple of this (1 leaves values as they are).
    pub base: u64,
}

/// The release gate's parameters; every check's threshold lives here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateRules {
    /// The fewest distinct entities behind a released cell.
    #[serde(default = "ten")]
    pub min_cell_count: u64,
    /// Dominance (n, k): the n largest contributions ...
    #[serde(default = "two")]
    pub dominance_n: u32,
    /// ... may not exceed k percent of a cell's total.
    #[serde(default = "ninety")]
    pub dominance_k: f64,
    /// p% rule: what the others contribute must be at least p percent of the largest.
    #[serde(default = "ten_f")]
    pub p_percent: f64,
    /// A table with more rows is treated as row-level.
    #[serde(default = "max_rows")]
    pub max_rows: u64,
    /// Independent approvals an aggregate output needs.
    #[serde(default = "one")]
    pub approvals: u32,
    /// Independent approvals a row-level output needs.
    #[serde(default = "two")]
    pub approvals_row_level: u32,
    /// Optional rounding of released counts.
    #[serde(default)]
    pub rounding: Option<Spanned<Rounding>>,
}

fn ten() -> u64 {
    10
}
fn ten_f() -> f64 {
    10.0
}
fn two() -> u32 {
    2
}
fn one() -> u32 {
    1
}
fn ninety() -> f64 {
    90.0
}
fn max_rows() -> u64 {
    10_000
}

impl Default for GateRules {
    fn default() -> Self {
        GateRules {
            min_cell_count: ten(),
            dominance_n: two(),
            dominance_k: ninety(),
            p_percent: ten_f(),
            max_rows: max_rows(),
            approvals: one(),
            approvals_row_level: two(),
            rounding: None,
        }
    }
}

impl GateRules {
    /// Problems with the values, each with a message (positions are the caller's).
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.min_cell_count == 0 {
            out.push("gate.min_cell_count must be at least 1".to_string());
        }
        if !(1..=2).contains(&self.dominance_n) {
            out.push("gate.dominance_n must be 1 or 2: the host keeps the two largest contributions".to_string());
        }
        if !(self.dominance_k > 0.0 && self.dominance_k <= 100.0) {
            out.push("gate.dominance_k is a percentage: above 0, at most 100".to_string());
        }
        if !(self.p_percent >= 0.0 && self.p_percent <= 100.0) {
            out.push("gate.p_percent is a percentage: 0 to 100".to_string());
        }
        if self.approvals == 0 || self.approvals_row_level < self.approvals.max(2) {
            out.push(
                "gate.approvals must be at least 1, and approvals_row_level at least 2 and at least approvals"
                    .to_string(),
            );
        }
        if let Some(r) = &self.rounding
            && r.get_ref().base == 0
        {
            out.push("gate.rounding.base must be at least 1".to_string());
        }
        out
    }
}

/// A whole policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Domain-wide rules.
    #[serde(default)]
    pub domain: DomainRules,
    /// The release gate's parameters.
    #[serde(default)]
    pub gate: GateRules,
    /// Dataset policies by name.
    #[serde(default)]
    pub datasets: BTreeMap<Spanned<String>, DatasetPolicy>,
}

/// What the catalog holds, as far as validation needs it: dataset → columns.
pub type CatalogView = BTreeMap<String, Vec<String>>;

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

impl Policy {
    /// Parses and validates a policy against the catalog. Returns every problem at once.
    pub fn load(text: &str, file: &str, catalog: &CatalogView) -> Result<Policy, Vec<Diagnostic>> {
        let at = |offset: usize, message: String| {
            let (line, column) = line_col(text, offset);
            Diagnostic {
                file: file.to_string(),
                line,
                column,
                message,
            }
        };
        let policy: Policy = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            vec![at(offset, e.message().trim().to_string())]
        })?;
        let mut problems = Vec::new();
        let rules = &policy.domain;
        if *rules.min_group_size.get_ref() == 0 {
            problems.push(at(
                rules.min_group_size.span().start,
                "min_group_size must be at least 1".into(),
            ));
        }
        for name in rules.allowed_aggregates.get_ref() {
            if !KNOWN_AGGREGATES.contains(&name.as_str()) {
                problems.push(at(
                    rules.allowed_aggregates.span().start,
                    format!(
                        "`{name}` cannot be allowed: it is unknown or returns raw values (allowed: {})",
                        KNOWN_AGGREGATES.join(", ")
                    ),
                ));
            }
        }
        for message in policy.gate.problems() {
            let offset = text.find("[gate]").unwrap_or(0);
            problems.push(at(offset, message));
        }
        for (name, d) in &policy.datasets {
            let Some(columns) = catalog.get(name.get_ref()) else {
                problems.push(at(
                    name.span().start,
                    format!("dataset `{}` is not in the catalog", name.get_ref()),
                ));
                continue;
            };
            if !d.operable && d.not_operable_reason.is_none() {
                problems.push(at(
                    name.span().start,
                    format!(
                        "dataset `{}` is not operable but gives no not_operable_reason (clause 6.1)",
                        name.get_ref()
                    ),
                ));
            }
            if !columns.contains(d.entity.get_ref()) {
                problems.push(at(
                    d.entity.span().start,
                    format!(
                        "entity column `{}` is not a column of `{}`",
                        d.entity.get_ref(),
                        name.get_ref()
                    ),
                ));
            }
            if let Some(m) = &d.max_rows_per_entity
                && *m.get_ref() == 0
            {
                problems.push(at(m.span().start, "max_rows_per_entity must be at least 1".into()));
            }
            for (col, p) in &d.columns {
                if !columns.contains(col.get_ref()) {
                    problems.push(at(
                        col.span().start,
                        format!("`{}` is not a column of `{}`", col.get_ref(), name.get_ref()),
                    ));
                }
                let p_ref = p.get_ref();
                if p_ref.class == ColumnClass::DirectIdentifier
                    && p_ref.access == Access::Plaintext
                    && p_ref.override_reason.as_deref().is_none_or(|r| r.trim().is_empty())
                {
                    problems.push(at(
                        p.span().start,
                        format!(
                            "`{}` is a direct identifier: plaintext access needs an explicit override_reason",
                            col.get_ref()
                        ),
                    ));
                }
                match &p_ref.access {
                    Access::Mask {
                        method: MaskMethod::Bucket { width },
                    } if width.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) => {
                        problems.push(at(
                            p.span().start,
                            format!("`{}`: bucket width must be greater than 0", col.get_ref()),
                        ));
                    }
                    Access::Mask {
                        method: MaskMethod::KeepLast { n },
                    } if *n == 0 => {
                        problems.push(at(
                            p.span().start,
                            format!("`{}`: keep-last needs n of at least 1 (or use redact)", col.get_ref()),
                        ));
                    }
                    _ => {}
                }
            }
        }
        if problems.is_empty() { Ok(policy) } else { Err(problems) }
    }

    /// Whether jobs may read a dataset at all: operable, and not core data unless allowed.
    pub fn readable(&self, dataset: &str) -> bool {
        self.datasets
            .iter()
            .find(|(n, _)| n.get_ref() == dataset)
            .is_some_and(|(_, d)| d.operable && (d.grade != Grade::Core || d.allow_core))
    }

    /// The entity column of a dataset under this policy.
    pub fn entity(&self, dataset: &str) -> Option<&str> {
        self.datasets
            .iter()
            .find(|(n, _)| n.get_ref() == dataset)
            .map(|(_, d)| d.entity.get_ref().as_str())
    }

    /// Whether a dataset is marked as holding personal information (unknown datasets are).
    pub fn personal_information(&self, dataset: &str) -> bool {
        self.datasets
            .iter()
            .find(|(n, _)| n.get_ref() == dataset)
            .is_none_or(|(_, d)| d.personal_information)
    }

    /// Whether jobs may read a dataset's rows as they are: no personal
    /// information and no aggregate-only column. Its entities are never
    /// counted, so it gets no hidden entity key either.
    pub fn unrestricted(&self, dataset: &str) -> bool {
        self.aggregate_only(dataset).is_empty() && !self.personal_information(dataset)
    }

    /// The aggregate-only columns of a dataset.
    pub fn aggregate_only(&self, dataset: &str) -> Vec<&str> {
        self.columns_with(dataset, &Access::AggregateOnly)
    }

    /// The join-key-only columns of a dataset: joinable, never shown.
    pub fn join_key_only(&self, dataset: &str) -> Vec<&str> {
        self.columns_with(dataset, &Access::JoinKeyOnly)
    }

    fn columns_with(&self, dataset: &str, access: &Access) -> Vec<&str> {
        self.datasets
            .iter()
            .filter(|(n, _)| n.get_ref() == dataset)
            .flat_map(|(_, d)| d.columns.iter())
            .filter(|(_, p)| p.get_ref().access == *access)
            .map(|(c, _)| c.get_ref().as_str())
            .collect()
    }

    /// Whether row-level values of every readable column of these datasets may be released.
    pub fn row_level_releasable(&self, datasets: &[String]) -> bool {
        datasets.iter().all(|name| {
            self.datasets
                .iter()
                .find(|(n, _)| n.get_ref() == name)
                .is_some_and(|(_, d)| {
                    d.columns.values().all(|p| {
                        let p = p.get_ref();
                        p.access == Access::Deny || p.class == ColumnClass::Public || p.release_row_level
                    })
                })
        })
    }

    /// Columns of a dataset in the direct-identifier class (for the gate's identifier index).
    pub fn direct_identifiers(&self, dataset: &str) -> Vec<&str> {
        self.datasets
            .iter()
            .filter(|(n, _)| n.get_ref() == dataset)
            .flat_map(|(_, d)| d.columns.iter())
            .filter(|(_, p)| p.get_ref().class == ColumnClass::DirectIdentifier)
            .map(|(c, _)| c.get_ref().as_str())
            .collect()
    }

    /// The most rows per entity a `dp` aggregate over a dataset counts, if set.
    pub fn max_rows_per_entity(&self, dataset: &str) -> Option<u32> {
        self.datasets
            .iter()
            .find(|(n, _)| n.get_ref() == dataset)
            .and_then(|(_, d)| d.max_rows_per_entity.as_ref().map(|m| *m.get_ref()))
    }

    /// A column's policy; `None` means the column is denied.
    pub fn column(&self, dataset: &str, column: &str) -> Option<&ColumnPolicy> {
        let (_, d) = self.datasets.iter().find(|(n, _)| n.get_ref() == dataset)?;
        d.columns
            .iter()
            .find(|(c, _)| c.get_ref() == column)
            .map(|(_, p)| p.get_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> CatalogView {
        let mut c = CatalogView::new();
        c.insert(
            "residents".into(),
            ["resident_id", "name", "district", "income", "birth"]
                .map(String::from)
                .to_vec(),
        );
        c
    }

    const GOOD: &str = r#"
[domain]
min_group_size = 5

[datasets.residents]
grade = "general"
personal_information = true
entity = "resident_id"

[datasets.residents.columns]
resident_id = { class = "direct-identifier", access = "mask", method = "pseudonym" }
name = { class = "direct-identifier", access = "deny" }
district = { class = "quasi-identifier", access = "dimension" }
income = { class = "sensitive", access = "aggregate-only" }
birth = { class = "quasi-identifier", access = "mask", method = "date-trunc", unit = "year" }
"#;

    #[test]
    fn a_valid_policy_loads_and_answers() {
        let p = Policy::load(GOOD, "p.toml", &catalog()).unwrap();
        assert_eq!(*p.domain.min_group_size.get_ref(), 5);
        assert!(p.readable("residents"));
        assert_eq!(p.column("residents", "income").unwrap().access, Access::AggregateOnly);
        assert_eq!(
            p.column("residents", "birth").unwrap().access,
            Access::Mask {
                method: MaskMethod::DateTrunc { unit: DateUnit::Year }
            }
        );
        assert!(
            p.column("residents", "unlisted").is_none(),
            "unlisted columns are denied"
        );
    }

    #[test]
    fn dp_settings_load_and_bad_ones_are_named() {
        let text = GOOD
            .replace(
                "entity = \"resident_id\"",
                "entity = \"resident_id\"\nmax_rows_per_entity = 3",
            )
            .replace(
                "access = \"dimension\" }",
                "access = \"dimension\", public_values = [\"a\", \"b\"] }",
            )
            .replace(
                "access = \"aggregate-only\" }",
                "access = \"aggregate-only\", dp_bounds = [0, 200000] }",
            );
        let p = Policy::load(&text, "p.toml", &catalog()).unwrap();
        assert_eq!(p.max_rows_per_entity("residents"), Some(3));
        assert_eq!(
            p.column("residents", "income").unwrap().dp_bounds,
            Some([0.0, 200000.0])
        );
        assert_eq!(
            p.column("residents", "district").unwrap().public_values.as_deref(),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        for (bad, why) in [
            ("dp_bounds = [5, 1]", "the lower first"),
            ("dp_bounds = [0, inf]", "finite"),
            ("public_values = []", "1 to 1000"),
            ("public_values = [\"x\", \"x\"]", "twice"),
        ] {
            let text = GOOD.replace("access = \"dimension\" }", &format!("access = \"dimension\", {bad} }}"));
            let errs = Policy::load(&text, "p.toml", &catalog()).unwrap_err();
            assert!(errs[0].message.contains(why), "{bad}: {errs:?}");
            assert_eq!(errs[0].line, 13, "{errs:?}");
        }
        let text = GOOD.replace("access = \"deny\" }", "access = \"deny\", public_values = [\"x\"] }");
        assert!(Policy::load(&text, "p.toml", &catalog()).is_err());
        let text = GOOD.replace(
            "entity = \"resident_id\"",
            "entity = \"resident_id\"\nmax_rows_per_entity = 0",
        );
        let errs = Policy::load(&text, "p.toml", &catalog()).unwrap_err();
        assert!(errs[0].message.contains("at least 1"), "{errs:?}");
    }

    #[test]
    fn every_error_is_reported_with_its_line_and_column() {
        let bad = r#"[domain]
min_group_size = 0
allowed_aggregates = ["sum", "max"]

[datasets.residents]
grade = "general"
entity = "citizen_no"

[datasets.residents.columns]
name = { class = "direct-identifier", access = "plaintext" }
shoe_size = { class = "attribute", access = "dimension" }
income = { class = "sensitive", access = "mask", method = "bucket", width = 0 }

[datasets.ghosts]
grade = "general"
entity = "id"
columns = {}
"#;
        let errs = Policy::load(bad, "bad.toml", &catalog()).unwrap_err();
        let shown: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
        let expect = [
            "bad.toml:2:18: min_group_size must be at least 1",
            "bad.toml:3:22: `max` cannot be allowed",
            "bad.toml:14:11: dataset `ghosts` is not in the catalog",
            "bad.toml:7:10: entity column `citizen_no` is not a column of `residents`",
            "bad.toml:10:8: `name` is a direct identifier",
            "bad.toml:11:1: `shoe_size` is not a column of `residents`",
            "bad.toml:12:10: `income`: bucket width must be greater than 0",
        ];
        for e in expect {
            assert!(shown.iter().any(|s| s.starts_with(e)), "missing {e:?} in {shown:#?}");
        }
        assert_eq!(shown.len(), expect.len(), "{shown:#?}");
    }

    #[test]
    fn syntax_errors_and_unknown_keys_name_their_place() {
        let errs = Policy::load("[datasets.residents]\ngrade = \"secret\"\n", "p.toml", &catalog()).unwrap_err();
        assert_eq!((errs[0].line, errs[0].column), (2, 9), "{errs:?}");
        let text = "[datasets.residents]\ngrade = \"general\"\nentity = \"resident_id\"\n[datasets.residents.columns]\nincome = { class = \"sensitive\", access = \"mask\" }\n";
        let errs = Policy::load(text, "p.toml", &catalog()).unwrap_err();
        assert_eq!(errs[0].line, 5, "{errs:?}");
        assert!(errs[0].message.contains("needs a method"), "{errs:?}");
        let errs = Policy::load("[domain]\nmin_group = 3\n", "p.toml", &catalog()).unwrap_err();
        assert_eq!(errs[0].line, 2, "{errs:?}");
        assert!(errs[0].message.contains("min_group"), "{errs:?}");
    }
}
