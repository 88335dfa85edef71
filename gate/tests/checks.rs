//! Every check, on a table that passes and on one that fails, with the failing cells named.
#![allow(clippy::unwrap_used)]

use arrow::array::{Array, AsArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use inland_gate::*;
use inland_policies::Label;
use inland_policies::policy::{GateRules, Rounding};
use std::sync::Arc;

fn table(districts: &[&str], counts: &[i64], incomes: &[f64]) -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("district", DataType::Utf8, true),
            Field::new("residents", DataType::Int64, true),
            Field::new("income", DataType::Float64, true),
        ])),
        vec![
            Arc::new(StringArray::from(districts.to_vec())),
            Arc::new(Int64Array::from(counts.to_vec())),
            Arc::new(Float64Array::from(incomes.to_vec())),
        ],
    )
    .unwrap()
}

fn count_fact(key: &str, entities: u64) -> CellFact {
    CellFact {
        source: "count(*)".into(),
        kind: MeasureKind::Frequency,
        keys: vec![key.into()],
        entities,
        contributions: None,
        sketch: Some(people(key, entities)),
        at: None,
    }
}

/// The sketch of the first `n` people of a district: a district with `n - 1`
/// is the same people but one.
fn people(key: &str, n: u64) -> Arc<EntitySketch> {
    Arc::new(EntitySketch::of_distinct(
        (0..n).map(|i| inland_gate::facts::text_hash(&format!("{key}/{i}"))),
    ))
}

fn sum_fact(key: &str, entities: u64, largest: f64, second: f64, total: f64) -> CellFact {
    CellFact {
        source: "sum(residents.income)".into(),
        kind: MeasureKind::Magnitude,
        keys: vec![key.into()],
        entities,
        contributions: Some(Contributions {
            largest,
            second,
            total,
            negatives: 0,
            missing: 0,
        }),
        sketch: Some(people(key, entities)),
        at: None,
    }
}

/// A table of three districts whose facts the host recorded.
fn traced(rows: &[(&str, i64, f64, CellFact, CellFact)]) -> (RecordBatch, FactIndex) {
    let mut facts = FactIndex::default();
    for (_, n, s, cf, sf) in rows {
        facts.add(n.to_string(), cf.clone());
        facts.add(canon::float(*s), sf.clone());
    }
    let t = table(
        &rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        &rows.iter().map(|r| r.2).collect::<Vec<_>>(),
    );
    (t, facts)
}

fn good() -> (RecordBatch, FactIndex) {
    traced(&[
        (
            "东城区",
            40,
            4000.0,
            count_fact("东城区", 40),
            sum_fact("东城区", 40, 300.0, 250.0, 4000.0),
        ),
        (
            "西城区",
            30,
            3000.0,
            count_fact("西城区", 30),
            sum_fact("西城区", 30, 200.0, 200.0, 3000.0),
        ),
    ])
}

struct Run<'a> {
    label: Label,
    rules: GateRules,
    released: Vec<ReleasedCell>,
    overrides: Vec<String>,
    index: Option<&'a KeyedIndex>,
    releasable: bool,
    source_rows: Option<u64>,
}

impl Default for Run<'_> {
    fn default() -> Self {
        Run {
            label: Label::Aggregate,
            rules: GateRules::default(),
            released: vec![],
            overrides: vec![],
            index: None,
            releasable: false,
            source_rows: None,
        }
    }
}

impl Run<'_> {
    fn go(&self, t: &RecordBatch, f: &FactIndex) -> GateOutcome {
        check(&GateInput {
            dp: false,
            table: t,
            facts: f,
            label: self.label,
            row_level_releasable: self.releasable,
            source_rows: self.source_rows,
            rules: &self.rules,
            identifiers: self.index,
            released: &ReleaseHistory::new([("first/t".to_string(), self.released.clone())]),
            overrides: &self.overrides,
        })
        .unwrap()
    }
}

fn status(o: &GateOutcome, check: &str) -> Status {
    o.report.check(check).unwrap().status
}

fn failing_cells(o: &GateOutcome, check: &str) -> Vec<(u32, String)> {
    o.report
        .check(check)
        .unwrap()
        .cells
        .iter()
        .map(|c| (c.row, c.column.clone()))
        .collect()
}

#[test]
fn a_clean_aggregate_table_passes_every_check() {
    let (t, f) = good();
    let o = Run::default().go(&t, &f);
    assert_eq!(o.report.verdict, Verdict::Review);
    assert_eq!(
        o.report.findings().map(|c| c.check.clone()).collect::<Vec<_>>(),
        Vec::<String>::new()
    );
    assert_eq!(o.report.traced_cells, 4);
    assert_eq!(o.report.untraced_cells, 0);
    assert!(o.plan.changes.is_empty());
    assert_eq!(
        o.traced.len(),
        2,
        "one released row per group, its measures sharing one entity set"
    );
}

#[test]
fn label_identifying_blocks_for_good_and_row_level_without_permission_blocks() {
    let (t, f) = good();
    let o = Run {
        label: Label::Identifying,
        ..Default::default()
    }
    .go(&t, &f);
    assert_eq!(o.report.verdict, Verdict::Blocked);
    assert_eq!(o.report.check("label").unwrap().remedy, Remedy::Blocked);
    let o = Run {
        label: Label::RowLevel,
        ..Default::default()
    }
    .go(&t, &f);
    assert_eq!(o.report.verdict, Verdict::Blocked);
    let o = Run {
        label: Label::RowLevel,
        releasable: true,
        ..Default::default()
    }
    .go(&t, &f);
    assert_eq!(o.report.verdict, Verdict::Review);
    assert_eq!(o.report.approvals_required, 2);
}

#[test]
fn min_cell_count_fails_small_cells_and_suppresses_them() {
    let (t, f) = traced(&[
        (
            "东城区",
            40,
            4000.0,
            count_fact("东城区", 40),
            sum_fact("东城区", 40, 300.0, 250.0, 4000.0),
        ),
        (
            "延庆区",
            4,
            500.0,
            count_fact("延庆区", 4),
            sum_fact("延庆区", 4, 130.0, 125.0, 500.0),
        ),
    ]);
    let o = Run::default().go(&t, &f);
    assert_eq!(status(&o, "min-cell-count"), Status::Fail);
    assert_eq!(
        failing_cells(&o, "min-cell-count"),
        vec![(1, "residents".into()), (1, "income".into())]
    );
    let released = apply(&t, &o.plan).unwrap();
    assert!(released.column(1).is_null(1) && released.column(2).is_null(1));
    assert!(!released.column(1).is_null(0));
    // A reviewer's override keeps them, and says so.
    let o = Run {
        overrides: vec!["min-cell-count".into()],
        ..Default::default()
    }
    .go(&t, &f);
    assert_eq!(o.report.check("min-cell-count").unwrap().remedy, Remedy::Overridden);
    assert!(o.plan.changes.is_empty());
}

#[test]
fn dominance_and_p_percent_fail_cells_one_contributor_dominates() {
    let (t, f) = traced(&[
        (
            "东城区",
            40,
            4000.0,
            count_fact("东城区", 40),
            sum_fact("东城区", 40, 300.0, 250.0, 4000.0),
        ),
        // Two contributors hold 95% of the total; the rest is 5% of the largest.
        (
            "西城区",
            30,
            10000.0,
            count_fact("西城区", 30),
            sum_fact("西城区", 30, 9000.0, 500.0, 10000.0),
        ),
    ]);
    let o = Run::default().go(&t, &f);
    assert_eq!(failing_cells(&o, "dominance"), vec![(1, "income".into())]);
    assert_eq!(failing_cells(&o, "p-percent"), vec![(1, "income".into())]);
    assert_eq!(status(&o, "min-cell-count"), Status::Pass);
    let (t, f) = good();
    let o = Run::default().go(&t, &f);
    assert_eq!(status(&o, "dominance"), Status::Pass);
    assert_eq!(status(&o, "p-percent"), Status::Pass);
}

#[test]
fn negative_or_missing_contributions_go_to_review() {
    let mut sf = sum_fact("西城区", 30, 200.0, 200.0, 3000.0);
    if let Some(c) = sf.contributions.as_mut() {
        c.negatives = 2;
    }
    let (t, f) = traced(&[
        (
            "东城区",
            40,
            4000.0,
            count_fact("东城区", 40),
            sum_fact("东城区", 40, 300.0, 250.0, 4000.0),
        ),
        ("西城区", 30, 3000.0, count_fact("西城区", 30), sf),
    ]);
    let o = Run::default().go(&t, &f);
    assert_eq!(status(&o, "negative-or-missing"), Status::NeedsReview);
    assert_eq!(failing_cells(&o, "negative-or-missing"), vec![(1, "income".into())]);
}

#[test]
fn identifiers_hidden_in_an_aggregate_table_block_it() {
    let (_, f) = good();
    let t = table(&["东城区 11010519491231002X", "西城区"], &[40, 30], &[4000.0, 3000.0]);
    let o = Run::default().go(&t, &f);
    assert_eq!(o.report.verdict, Verdict::Blocked);
    assert_eq!(failing_cells(&o, "identifier-leakage"), vec![(0, "district".into())]);
    // A mobile number disguised as a count, untraced.
    let t = table(&["东城区", "西城区"], &[13812345678, 30], &[4000.0, 3000.0]);
    let o = Run::default().go(&t, &f);
    assert_eq!(failing_cells(&o, "identifier-leakage"), vec![(0, "residents".into())]);
    // A name from the domain's identifier index.
    let mut idx = KeyedIndex::new(&[1; 32]);
    idx.insert("王小明");
    let t = table(&["王小明", "西城区"], &[40, 30], &[4000.0, 3000.0]);
    let o = Run {
        index: Some(&idx),
        ..Default::default()
    }
    .go(&t, &f);
    assert_eq!(failing_cells(&o, "identifier-leakage"), vec![(0, "district".into())]);
    // Registered values written inside text, and a registered number with
    // separators inside text, are found too; other text is not.
    idx.insert("AB12345678");
    idx.insert("4000123456");
    for (cell, found) in [
        ("王小明/东城区", true),
        ("东城区 王小明 迁出", true),
        ("注册号AB12345678", true),
        ("企业 AB12345678 注销", true),
        ("编号 4000-1234-56", true),
        // Glued to other Chinese text, a name is not a word of its own.
        ("王小明的", false),
        ("东城区 西城区", false),
    ] {
        let t = table(&[cell, "西城区"], &[40, 30], &[4000.0, 3000.0]);
        let o = Run {
            index: Some(&idx),
            ..Default::default()
        }
        .go(&t, &f);
        let cells = o.report.check("identifier-leakage").unwrap().cells.len();
        assert_eq!(cells > 0, found, "{cell}");
    }
    let (t, f) = good();
    assert_eq!(
        status(
            &Run {
                index: Some(&idx),
                ..Default::default()
            }
            .go(&t, &f),
            "identifier-leakage"
        ),
        Status::Pass
    );
}

#[test]
fn a_release_that_differs_from_an_earlier_one_by_one_entity_fails() {
    let (t, f) = good();
    let first = Run::default().go(&t, &f);
    // The second table: the same statistic, one resident fewer in 东城区.
    let (t2, f2) = traced(&[
        (
            "东城区",
            39,
            3900.0,
            count_fact("东城区", 39),
            sum_fact("东城区", 39, 300.0, 250.0, 3900.0),
        ),
        (
            "西城区",
            30,
            3000.0,
            count_fact("西城区", 30),
            sum_fact("西城区", 30, 200.0, 200.0, 3000.0),
        ),
    ]);
    let o = Run {
        released: first.traced.clone(),
        ..Default::default()
    }
    .go(&t2, &f2);
    assert_eq!(
        failing_cells(&o, "differencing"),
        vec![(0, "residents".into()), (0, "income".into())]
    );
    // Far enough apart, it passes.
    let o = Run {
        released: first.traced,
        ..Default::default()
    }
    .go(&t, &f);
    assert_eq!(status(&o, "differencing"), Status::Pass);
}

#[test]
fn size_treats_a_table_as_large_as_its_source_as_row_level() {
    let (t, f) = good();
    let o = Run {
        source_rows: Some(2),
        ..Default::default()
    }
    .go(&t, &f);
    assert_eq!(o.report.verdict, Verdict::Blocked);
    assert_eq!(status(&o, "size"), Status::Fail);
    let o = Run {
        rules: GateRules {
            max_rows: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .go(&t, &f);
    assert_eq!(status(&o, "size"), Status::Fail);
    let o = Run {
        source_rows: Some(100),
        ..Default::default()
    }
    .go(&t, &f);
    assert_eq!(status(&o, "size"), Status::Pass);
}

#[test]
fn untraced_and_zero_cells_go_to_review() {
    let (_, f) = good();
    // Numbers the host never returned, in a job that read public data only.
    let t = table(&["东城区", "西城区"], &[41, 0], &[4000.0, 3000.0]);
    let o = Run {
        label: Label::Public,
        ..Default::default()
    }
    .go(&t, &f);
    assert_eq!(status(&o, "untraced"), Status::NeedsReview);
    assert_eq!(
        failing_cells(&o, "untraced"),
        vec![(0, "residents".into()), (1, "residents".into())]
    );
    assert_eq!(failing_cells(&o, "zero-cells"), vec![(1, "residents".into())]);
    assert_eq!(status(&o, "computed-values"), Status::Pass);
    assert_eq!(o.report.verdict, Verdict::Review);
}

/// Issue #18, attack 5: in a job that read aggregates of protected data, a
/// number the host never returned (a sum scaled inside the job, or an
/// income differenced there) carries no facts: it is blocked, not left to
/// review. A column total the job added is recomputed instead.
#[test]
fn numbers_computed_in_the_job_from_protected_aggregates_are_blocked() {
    let (_, f) = good();
    let t = table(&["东城区", "西城区"], &[41, 7], &[4000.0, 3000.0]);
    let o = Run::default().go(&t, &f);
    assert_eq!(status(&o, "computed-values"), Status::Fail);
    // The sums are the host's; the counts were invented.
    assert_eq!(
        failing_cells(&o, "computed-values"),
        vec![(0, "residents".into()), (1, "residents".into())]
    );
    assert_eq!(o.report.verdict, Verdict::Blocked);

    // A total row the job summed itself is blocked too: a copy of a
    // suppressed cell, or a value hidden in its low digits, looks the same.
    let (mut t, f) = good();
    let sums: Vec<f64> = (0..t.num_columns())
        .map(|c| (0..t.num_rows()).filter_map(|r| canon::number(t.column(c), r)).sum())
        .collect();
    let total = table(&["合计"], &[sums[1] as i64], &[sums[2]]);
    t = arrow::compute::concat_batches(&t.schema(), [&t, &total]).unwrap();
    let o = Run::default().go(&t, &f);
    assert_eq!(
        failing_cells(&o, "computed-values"),
        vec![(2, "residents".into()), (2, "income".into())]
    );
}

#[test]
fn a_total_row_is_recomputed_when_a_cell_is_suppressed() {
    let (mut t, mut f) = traced(&[
        (
            "东城区",
            40,
            4000.0,
            count_fact("东城区", 40),
            sum_fact("东城区", 40, 300.0, 250.0, 4000.0),
        ),
        (
            "西城区",
            30,
            3000.0,
            count_fact("西城区", 30),
            sum_fact("西城区", 30, 200.0, 200.0, 3000.0),
        ),
        (
            "延庆区",
            4,
            500.0,
            count_fact("延庆区", 4),
            sum_fact("延庆区", 4, 130.0, 125.0, 500.0),
        ),
    ]);
    // The job adds a total row (74 = 40 + 30 + 4) from which 4 could be recovered.
    let mut d: Vec<String> = t
        .column(0)
        .as_string::<i32>()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect();
    d.push("合计".into());
    let mut c: Vec<i64> = t
        .column(1)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .values()
        .to_vec();
    c.push(74);
    let mut s: Vec<f64> = t
        .column(2)
        .as_primitive::<arrow::datatypes::Float64Type>()
        .values()
        .to_vec();
    s.push(7500.0);
    t = table(&d.iter().map(String::as_str).collect::<Vec<_>>(), &c, &s);
    // The totals come from a query without GROUP BY, so they are traced.
    f.add(
        "74".into(),
        CellFact {
            keys: vec![],
            ..count_fact("合计", 74)
        },
    );
    f.add(
        canon::float(7500.0),
        CellFact {
            keys: vec![],
            ..sum_fact("合计", 74, 300.0, 250.0, 7500.0)
        },
    );
    f.reindex();
    let o = Run::default().go(&t, &f);
    assert_eq!(status(&o, "computed-values"), Status::Pass);
    assert_eq!(
        failing_cells(&o, "totals"),
        vec![(3, "residents".into()), (3, "income".into())]
    );
    let released = apply(&t, &o.plan).unwrap();
    assert_eq!(
        released
            .column(1)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(3),
        70
    );
    assert_eq!(
        released
            .column(2)
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(3),
        7000.0
    );
    // Without a suppressed cell, totals stay as they are.
    let (t, f) = good();
    assert_eq!(status(&Run::default().go(&t, &f), "totals"), Status::Pass);
}

#[test]
fn rounding_set_by_policy_is_applied_to_counts() {
    let (t, f) = traced(&[
        (
            "东城区",
            42,
            4000.0,
            count_fact("东城区", 42),
            sum_fact("东城区", 42, 300.0, 250.0, 4000.0),
        ),
        (
            "西城区",
            30,
            3000.0,
            count_fact("西城区", 30),
            sum_fact("西城区", 30, 200.0, 200.0, 3000.0),
        ),
    ]);
    let rules = GateRules {
        rounding: Some(toml::Spanned::new(
            0..0,
            Rounding {
                zero_at_or_below: 7,
                base: 5,
            },
        )),
        ..Default::default()
    };
    let o = Run {
        rules,
        ..Default::default()
    }
    .go(&t, &f);
    assert_eq!(failing_cells(&o, "rounding"), vec![(0, "residents".into())]);
    let released = apply(&t, &o.plan).unwrap();
    let counts = released.column(1).as_primitive::<arrow::datatypes::Int64Type>();
    assert_eq!((counts.value(0), counts.value(1)), (40, 30));
    // Sums are not counts: left alone.
    assert_eq!(
        released
            .column(2)
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(0),
        4000.0
    );
}

#[test]
fn only_cell_rules_can_be_overridden() {
    let (t, f) = good();
    let r = check(&GateInput {
        dp: false,
        table: &t,
        facts: &f,
        label: Label::Aggregate,
        row_level_releasable: false,
        source_rows: None,
        rules: &GateRules::default(),
        identifiers: None,
        released: &ReleaseHistory::default(),
        overrides: &["identifier-leakage".to_string()],
    });
    assert!(matches!(r, Err(GateError::NotOverridable(c)) if c == "identifier-leakage"));
}

/// A traced cell the host kept no entity sketch for (a job with more groups
/// than the per-job cap, or facts recorded before sketches) cannot be
/// compared with earlier releases: it is suppressed, named, unless a
/// reviewer overrides the differencing check.
#[test]
fn traced_cells_without_a_sketch_are_suppressed_as_unchecked() {
    let bare = |f: CellFact| CellFact { sketch: None, ..f };
    let (t, f) = traced(&[
        (
            "东城区",
            40,
            4000.0,
            bare(count_fact("东城区", 40)),
            bare(sum_fact("东城区", 40, 300.0, 250.0, 4000.0)),
        ),
        (
            "西城区",
            30,
            3000.0,
            count_fact("西城区", 30),
            sum_fact("西城区", 30, 200.0, 200.0, 3000.0),
        ),
    ]);
    let o = Run::default().go(&t, &f);
    assert_eq!(
        failing_cells(&o, "differencing"),
        vec![(0, "residents".into()), (0, "income".into())]
    );
    let detail = &o.report.check("differencing").unwrap().cells[0].detail;
    assert!(detail.contains("no sketch"), "{detail}");
}

/// Both halves of a difference side by side in one row, each from its own
/// query (#18, hostile review): every entity set of a row is audited, not
/// only the first one's.
#[test]
fn two_sets_in_one_row_are_each_audited() {
    let mut but_one = count_fact("东城区", 39);
    but_one.source = "count(r.district)".into();
    let (t, mut f) = traced(&[(
        "东城区",
        40,
        4000.0,
        count_fact("东城区", 40),
        sum_fact("东城区", 40, 300.0, 250.0, 4000.0),
    )]);
    // A fourth column, 39, traced to the second query.
    f.add("39".into(), but_one);
    let schema = Schema::new(vec![
        Field::new("district", DataType::Utf8, false),
        Field::new("residents", DataType::Int64, false),
        Field::new("income", DataType::Float64, false),
        Field::new("residents_excl", DataType::Int64, false),
    ]);
    let t = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            t.column(0).clone(),
            t.column(1).clone(),
            t.column(2).clone(),
            Arc::new(Int64Array::from(vec![39])),
        ],
    )
    .unwrap();
    let o = Run::default().go(&t, &f);
    let cells = failing_cells(&o, "differencing");
    assert!(cells.contains(&(0, "residents_excl".into())), "{cells:?}");
    assert_eq!(o.traced.len(), 2, "both sets go into the history");
}

/// The facts of one query's result of three districts, each row numbered.
fn one_result() -> FactIndex {
    let mut facts = FactIndex::default();
    let rows = [("东城区", 40), ("西城区", 30), ("朝阳区", 50)];
    let recorded = rows
        .iter()
        .enumerate()
        .map(|(i, (key, n))| {
            let fact = CellFact {
                at: Some(RowAt {
                    query: 0,
                    row: i as u32,
                }),
                ..count_fact(key, *n)
            };
            (n.to_string(), fact)
        })
        .collect();
    assert!(facts.add_result(0, recorded));
    facts
}

fn counts(districts: &[&str], counts: &[i64]) -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("district", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ])),
        vec![
            Arc::new(StringArray::from(districts.to_vec())),
            Arc::new(Int64Array::from(counts.to_vec())),
        ],
    )
    .unwrap()
}

fn selection_details(o: &GateOutcome) -> Vec<String> {
    o.report
        .check("selection")
        .unwrap()
        .cells
        .iter()
        .map(|c| c.detail.clone())
        .collect()
}

/// Issue #18, attack 9: which traced rows a job emits, and in what order,
/// can encode a value it computed. The whole result in order passes; a
/// subset names the rows dropped; a reordering and a repeat are flagged.
#[test]
fn a_subset_or_reordering_of_a_result_goes_to_review_with_the_rows_dropped() {
    let f = one_result();
    let whole = Run::default().go(&counts(&["东城区", "西城区", "朝阳区"], &[40, 30, 50]), &f);
    assert_eq!(status(&whole, "selection"), Status::Pass);

    let subset = Run::default().go(&counts(&["东城区", "朝阳区"], &[40, 50]), &f);
    assert_eq!(status(&subset, "selection"), Status::NeedsReview);
    assert_eq!(
        selection_details(&subset),
        vec!["keeps 2 of the 3 rows of query 1; dropped: [西城区]".to_string()]
    );

    let reordered = Run::default().go(&counts(&["西城区", "东城区", "朝阳区"], &[30, 40, 50]), &f);
    assert_eq!(
        selection_details(&reordered),
        vec!["rows of query 1 in another order than the job received them".to_string()]
    );

    let repeated = Run::default().go(
        &counts(&["东城区", "西城区", "西城区", "朝阳区"], &[40, 30, 30, 50]),
        &f,
    );
    assert_eq!(
        selection_details(&repeated),
        vec!["a row of query 1 shown more than once".to_string()]
    );
}
