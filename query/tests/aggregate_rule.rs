//! Snapshot tests of the aggregate rule: SQL in, the checked and rewritten
//! plan (or the refusal) out.
//!
//! The attack suite (`tests/attacks/policy.slt`) proves the rule through the
//! whole job path, a wasm job in a domain; it says *that* a query is refused or
//! allowed, not what the rewrite made of it. These tests plan queries with
//! [`QueryEngine`] alone, over a few rows written to a temporary directory,
//! and snapshot the plan text, so that any change to the rule (a refusal that
//! moves to another rule, an entity count or small-group filter that moves or
//! disappears, a label that changes) shows up as a plan diff in review, in
//! seconds and without building a job.
//!
//! There is at least one test for each thing the rule enforces; besides the
//! snapshot each test asserts the point it makes (the rule that refused, the
//! node the rewrite added), so that accepting snapshots blindly cannot turn
//! a refusal into an acceptance unnoticed.

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use inland_policies::Policy;
use inland_policies::policy::CatalogView;
use inland_query::{ColumnInfo, DatasetSource, PlannedQuery, QueryEngine, QueryError, QueryScope};
use parquet::arrow::ArrowWriter;
use std::error::Error;
use std::path::Path;
use std::sync::Arc;

type TestResult = Result<(), Box<dyn Error>>;

/// The example policy (`examples/policies/domain.toml`) for `residents` and
/// `enterprises`, copied so that these snapshots change only when the rule
/// does, plus `districts`, a lookup table the policy leaves unrestricted (as
/// in the attack suite).
const POLICY: &str = r#"
[domain]
min_group_size = 10
allowed_aggregates = ["count", "count_distinct", "sum", "avg", "variance", "stddev"]
max_plaintext_rows = 1000

[datasets.residents]
grade = "general"
personal_information = true
entity = "resident_id"

[datasets.residents.columns]
resident_id = { class = "direct-identifier", access = "mask", method = "pseudonym" }
name = { class = "direct-identifier", access = "deny" }
mobile = { class = "direct-identifier", access = "mask", method = "keep-last", n = 4 }
district = { class = "quasi-identifier", access = "dimension" }
age = { class = "quasi-identifier", access = "mask", method = "bucket", width = 10 }
income = { class = "sensitive", access = "aggregate-only" }
service_type = { class = "attribute", access = "dimension" }

[datasets.enterprises]
grade = "general"
personal_information = false
entity = "uscc"

[datasets.enterprises.columns]
uscc = { class = "direct-identifier", access = "join-key-only" }
name = { class = "direct-identifier", access = "mask", method = "redact" }
industry = { class = "attribute", access = "dimension" }
district = { class = "quasi-identifier", access = "dimension" }
registered_capital = { class = "sensitive", access = "aggregate-only" }
employees = { class = "attribute", access = "aggregate-only" }
founded = { class = "attribute", access = "mask", method = "date-trunc", unit = "year" }

[datasets.districts]
grade = "general"
personal_information = false
entity = "district"

[datasets.districts.columns]
district = { class = "public", access = "dimension" }
area_km2 = { class = "public", access = "plaintext" }
"#;

/// The fixed pseudonym key of the grant the queries run under.
const KEY: [u8; 32] = [7u8; 32];

fn text(values: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

/// Residents, with the columns and types of `inland_examples::generate::residents`.
fn residents() -> Result<RecordBatch, Box<dyn Error>> {
    let schema = Schema::new(vec![
        Field::new("resident_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("mobile", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("age", DataType::Int64, false),
        Field::new("income", DataType::Float64, false),
        Field::new("service_type", DataType::Utf8, false),
    ]);
    let columns = vec![
        text(&[
            "110101199001010011",
            "110101198502020022",
            "110105197003030033",
            "110105200004040044",
        ]),
        text(&["王伟", "李娜", "张敏", "刘洋"]),
        text(&["13800138001", "13800138002", "13800138003", "13800138004"]),
        text(&["东城区", "东城区", "朝阳区", "朝阳区"]),
        Arc::new(Int64Array::from(vec![35, 40, 55, 25])) as ArrayRef,
        Arc::new(Float64Array::from(vec![8200.0, 12500.0, 9100.0, 6400.0])),
        text(&["medical", "pension", "medical", "housing"]),
    ];
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

/// Enterprises, with the columns and types of `inland_examples::generate::enterprises`.
fn enterprises() -> Result<RecordBatch, Box<dyn Error>> {
    let schema = Schema::new(vec![
        Field::new("uscc", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("industry", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("registered_capital", DataType::Float64, false),
        Field::new("employees", DataType::Int64, false),
        Field::new("founded", DataType::Date32, false),
    ]);
    let columns = vec![
        text(&["91110000000000001X", "91110000000000002X", "91110000000000003X"]),
        text(&["甲公司", "乙公司", "丙公司"]),
        text(&["manufacturing", "retail", "retail"]),
        text(&["东城区", "朝阳区", "朝阳区"]),
        Arc::new(Float64Array::from(vec![1.0e6, 5.0e5, 2.5e6])) as ArrayRef,
        Arc::new(Int64Array::from(vec![120, 8, 45])),
        Arc::new(Date32Array::from(vec![10_000, 12_000, 15_000])),
    ];
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

/// Districts: a public lookup table.
fn districts() -> Result<RecordBatch, Box<dyn Error>> {
    let schema = Schema::new(vec![
        Field::new("district", DataType::Utf8, false),
        Field::new("area_km2", DataType::Float64, false),
    ]);
    let columns = vec![
        text(&["东城区", "朝阳区"]),
        Arc::new(Float64Array::from(vec![41.8, 470.8])) as ArrayRef,
    ];
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

/// Writes `batch` as `<dir>/<name>.parquet` and describes it as the engine is handed it.
fn write_dataset(
    dir: &Path,
    name: &str,
    batch: &RecordBatch,
    unique: &[&str],
) -> Result<DatasetSource, Box<dyn Error>> {
    let path = dir.join(format!("{name}.parquet"));
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&path)?, batch.schema(), None)?;
    writer.write(batch)?;
    writer.close()?;
    Ok(DatasetSource {
        name: name.to_string(),
        path,
        columns: ColumnInfo::of(&batch.schema()),
        unique_columns: unique.iter().map(|c| c.to_string()).collect(),
        entity_key: None,
    })
}

/// A session over the three datasets under [`POLICY`], and the scope of a job
/// that may read them all.
struct Fixture {
    _dir: tempfile::TempDir,
    engine: QueryEngine,
    ctx: SessionContext,
    scope: QueryScope,
}

/// Whether registration proved `residents.resident_id` unique and never null,
/// so that entities may be counted by counting rows.
#[derive(Clone, Copy, PartialEq)]
enum Residents {
    OneRowPerEntity,
    AnyRows,
}

impl Fixture {
    async fn new(residents_rows: Residents) -> Result<Fixture, Box<dyn Error>> {
        let dir = tempfile::tempdir()?;
        let unique: &[&str] = match residents_rows {
            Residents::OneRowPerEntity => &["resident_id"],
            Residents::AnyRows => &[],
        };
        let sources = vec![
            write_dataset(dir.path(), "residents", &residents()?, unique)?,
            write_dataset(dir.path(), "enterprises", &enterprises()?, &[])?,
            write_dataset(dir.path(), "districts", &districts()?, &["district"])?,
        ];
        let catalog: CatalogView = sources
            .iter()
            .map(|s| (s.name.clone(), s.columns.iter().map(|c| c.name.clone()).collect()))
            .collect();
        let policy = Policy::load(POLICY, "policy.toml", &catalog)
            .map_err(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))?;
        let engine = QueryEngine::new(64 << 20)?;
        let ctx = engine
            .session(
                &sources,
                Some((
                    &policy,
                    inland_query::PolicyKeys {
                        pseudonym: KEY,
                        entity: KEY,
                    },
                )),
            )
            .await?;
        let names = sources.iter().map(|s| s.name.clone());
        let scope = QueryScope::under(Some(&policy), names).with_unique_entities(Some(&policy), &sources);
        Ok(Fixture {
            _dir: dir,
            engine,
            ctx,
            scope,
        })
    }

    async fn plan(&self, sql: &str) -> Result<PlannedQuery, QueryError> {
        self.engine.plan(&self.ctx, &self.scope, sql).await
    }

    /// The plan of an accepted query, with its label and suppression threshold.
    async fn accepted(&self, sql: &str) -> Result<String, Box<dyn Error>> {
        let planned = match self.plan(sql).await {
            Ok(planned) => planned,
            Err(e) => return Err(format!("expected `{sql}` to be accepted, got: {e}").into()),
        };
        let label = planned.label.map_or_else(|| "none".to_string(), |(_, why)| why);
        Ok(format!(
            "sql: {sql}\nlabel: {label}\nsuppress_below: {:?}\n\n{}",
            planned.suppress_below,
            planned.plan.display_indent()
        ))
    }

    /// The refusal of a query, which must come from `rule`.
    async fn refused(&self, sql: &str, rule: &str) -> Result<String, Box<dyn Error>> {
        match self.plan(sql).await {
            Err(QueryError::Refused { rule: by, message }) => {
                assert_eq!(by, rule, "`{sql}` was refused by the wrong rule: {message}");
                Ok(format!("sql: {sql}\nrefused by {by}: {message}"))
            }
            Err(other) => Err(format!("expected `{sql}` to be refused by {rule}, got: {other}").into()),
            Ok(planned) => Err(format!(
                "expected `{sql}` to be refused by {rule}, got the plan:\n{}",
                planned.plan.display_indent()
            )
            .into()),
        }
    }
}

const AGGREGATE_ONLY: &str = "aggregate-only";
const JOIN_KEY_ONLY: &str = "join-key-only";

/// An aggregate-only column through an allowed aggregate: the aggregation
/// also counts the distinct entities of each group (from the hidden entity
/// column) and records each resident's contribution to the mean, and the
/// small-group filter sits right above it.
#[tokio::test]
async fn allowed_aggregate_counts_entities_and_contributions_under_the_small_group_filter() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let plan = f
        .accepted("SELECT district, count(*) AS n, avg(income) AS avg_income FROM residents GROUP BY district")
        .await?;
    // Several rows per person: the mean's per-person sums are kept once,
    // for both its contributions and the sketch that counts the group.
    assert!(
        plan.contains(r#"InlandKeep: inland_sketch_size(get_field(__inland_measured, Utf8("sketch"))) >= 10"#),
        "{plan}"
    );
    assert!(
        plan.contains("inland_measured_entities(residents.income, __inland_entity) AS __inland_measured"),
        "{plan}"
    );
    assert!(
        plan.contains(r#"get_field(__inland_measured, Utf8("figures")) AS __inland_contrib_1"#),
        "{plan}"
    );
    insta::assert_snapshot!(plan);
    Ok(())
}

/// Over a dataset with one row per entity, `count(*)` is the group size: the
/// filter reads the job's own count; the entity column is read only for the
/// sketch of each group's entities.
#[tokio::test]
async fn count_star_over_one_row_per_entity_is_the_group_size() -> TestResult {
    let f = Fixture::new(Residents::OneRowPerEntity).await?;
    let plan = f
        .accepted("SELECT district, count(*) AS n FROM residents GROUP BY district")
        .await?;
    assert!(plan.contains("InlandKeep: count(Int64(1)) >= 10"), "{plan}");
    assert!(
        plan.contains("inland_entities(__inland_entity) AS __inland_group_sketch"),
        "{plan}"
    );
    insta::assert_snapshot!(plan);
    Ok(())
}

/// Over a dataset with one row per entity, the contributions of a mean are
/// its rows: the job's `avg` and `count(*)` are derived from them, not
/// computed a second time; the entity column feeds the sketch alone.
#[tokio::test]
async fn mean_over_one_row_per_entity_is_derived_from_row_contributions() -> TestResult {
    let f = Fixture::new(Residents::OneRowPerEntity).await?;
    let plan = f
        .accepted("SELECT district, count(*) AS n, avg(income) AS a FROM residents GROUP BY district")
        .await?;
    assert!(plan.contains("InlandKeep"), "{plan}");
    assert!(plan.contains("__inland_contrib_1"), "{plan}");
    assert!(
        plan.contains("InlandKeep: inland_rows_of(__inland_contrib_1) >= 10"),
        "{plan}"
    );
    insta::assert_snapshot!(plan);
    Ok(())
}

/// A spread is judged like a sum: its cells are magnitudes with the
/// per-person totals of its argument as contributions (the dominance and
/// p% rules then apply to it at the gate), over one row per person and
/// over several.
#[tokio::test]
async fn a_spread_gets_its_arguments_contributions() -> TestResult {
    use inland_query::CellRole;
    for rows in [Residents::OneRowPerEntity, Residents::AnyRows] {
        let f = Fixture::new(rows).await?;
        let sql =
            "SELECT district, stddev(income) AS sd, var(income) AS v, count(*) AS n FROM residents GROUP BY district";
        let planned = f.plan(sql).await?;
        let cells = planned.cells.ok_or("no cell plan")?;
        let [_, sd, v, n] = cells.columns.as_slice() else {
            return Err(format!("{:?}", cells.columns).into());
        };
        for c in [sd, v] {
            assert!(
                matches!(
                    c,
                    CellRole::Measure {
                        kind: inland_gate::MeasureKind::Magnitude,
                        contrib: Some(_),
                        ..
                    }
                ),
                "{c:?}"
            );
        }
        assert!(matches!(n, CellRole::Measure { contrib: None, .. }), "{n:?}");
    }
    Ok(())
}

/// An aggregate-only column shown as it is.
#[tokio::test]
async fn aggregate_only_column_in_the_result_is_refused() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    insta::assert_snapshot!(f.refused("SELECT income FROM residents", AGGREGATE_ONLY).await?);
    Ok(())
}

#[tokio::test]
async fn aggregate_only_column_in_where_is_refused() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let refusal = f
        .refused(
            "SELECT count(*) AS n FROM residents WHERE income > 9000",
            AGGREGATE_ONLY,
        )
        .await?;
    assert!(refusal.contains("WHERE"), "{refusal}");
    insta::assert_snapshot!(refusal);
    Ok(())
}

#[tokio::test]
async fn aggregate_only_column_in_group_by_is_refused() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let refusal = f
        .refused(
            "SELECT income, count(*) AS n FROM residents GROUP BY income",
            AGGREGATE_ONLY,
        )
        .await?;
    assert!(refusal.contains("GROUP BY"), "{refusal}");
    insta::assert_snapshot!(refusal);
    Ok(())
}

#[tokio::test]
async fn min_on_aggregate_only_column_is_refused() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let refusal = f
        .refused(
            "SELECT district, min(income) AS m FROM residents GROUP BY district",
            AGGREGATE_ONLY,
        )
        .await?;
    assert!(refusal.contains("min() is not allowed"), "{refusal}");
    insta::assert_snapshot!(refusal);
    Ok(())
}

#[tokio::test]
async fn max_on_aggregate_only_column_is_refused() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let refusal = f
        .refused(
            "SELECT district, max(income) AS m FROM residents GROUP BY district",
            AGGREGATE_ONLY,
        )
        .await?;
    assert!(refusal.contains("max() is not allowed"), "{refusal}");
    insta::assert_snapshot!(refusal);
    Ok(())
}

/// An allowed aggregate over an expression of the raw value (here one that
/// would count the rows above a threshold) is refused: only the column itself.
#[tokio::test]
async fn aggregate_over_an_expression_of_a_raw_aggregate_only_value_is_refused() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let refusal = f
        .refused(
            "SELECT sum(CASE WHEN income > 9000 THEN 1 ELSE 0 END) AS rich FROM residents",
            AGGREGATE_ONLY,
        )
        .await?;
    assert!(refusal.contains("not an expression of one"), "{refusal}");
    insta::assert_snapshot!(refusal);
    Ok(())
}

/// A protected dataset joined with an unrestricted lookup table: allowed, the
/// entities counted are the protected side's (the entity column is threaded
/// through that side only).
#[tokio::test]
async fn join_of_protected_with_unrestricted_dataset_is_allowed() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let plan = f
        .accepted(
            "SELECT d.area_km2, count(*) AS n, avg(r.income) AS a \
             FROM residents r JOIN districts d ON r.district = d.district GROUP BY d.area_km2",
        )
        .await?;
    assert!(plan.contains("Inner Join"), "{plan}");
    assert!(
        plan.contains(r#"InlandKeep: inland_sketch_size(get_field(__inland_measured, Utf8("sketch"))) >= 10"#),
        "{plan}"
    );
    insta::assert_snapshot!(plan);
    Ok(())
}

/// Two protected datasets joined on anything but both entity columns:
/// refused, whose entities a group holds would be unclear.
#[tokio::test]
async fn join_of_two_protected_datasets_on_non_entity_columns_is_refused() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let refusal = f
        .refused(
            "SELECT r.district, count(*) AS n FROM residents r JOIN enterprises e ON r.district = e.district \
             GROUP BY r.district",
            AGGREGATE_ONLY,
        )
        .await?;
    assert!(refusal.contains("two protected datasets"), "{refusal}");
    insta::assert_snapshot!(refusal);
    Ok(())
}

/// A join-key-only column compared with a literal outside a join would let a
/// job test guesses of an identifier.
#[tokio::test]
async fn join_key_only_column_compared_outside_a_join_is_refused() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let refusal = f
        .refused(
            "SELECT count(*) AS n FROM enterprises WHERE uscc = '91110000000000001X'",
            JOIN_KEY_ONLY,
        )
        .await?;
    assert!(refusal.contains("`uscc` is join-key-only"), "{refusal}");
    insta::assert_snapshot!(refusal);
    Ok(())
}

/// A window over the groups of the one aggregation sits above the
/// small-group filter; the hidden columns are put back last, after it.
#[tokio::test]
async fn window_over_groups_is_allowed_above_the_small_group_filter() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let plan = f
        .accepted(
            "SELECT district, n, rank() OVER (ORDER BY n DESC) AS r \
             FROM (SELECT district, count(*) AS n FROM residents GROUP BY district)",
        )
        .await?;
    let window = plan.find("WindowAggr").ok_or("no window in the plan")?;
    let keep = plan.find("InlandKeep").ok_or("no small-group filter in the plan")?;
    assert!(window < keep, "the window must sit above the filter:\n{plan}");
    insta::assert_snapshot!(plan);
    Ok(())
}

/// A window over the rows of a protected dataset is an aggregate no
/// small-group filter sees.
#[tokio::test]
async fn window_over_rows_is_refused() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let refusal = f
        .refused(
            "SELECT district, count(*) OVER (PARTITION BY district) AS n FROM residents",
            AGGREGATE_ONLY,
        )
        .await?;
    assert!(refusal.contains("window functions over the rows"), "{refusal}");
    insta::assert_snapshot!(refusal);
    Ok(())
}

/// A union touching a protected dataset is a plan shape the rule does not
/// follow: deny by default.
#[tokio::test]
async fn union_over_a_protected_dataset_is_refused() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let refusal = f
        .refused(
            "SELECT district FROM residents UNION ALL SELECT district FROM districts",
            AGGREGATE_ONLY,
        )
        .await?;
    assert!(refusal.contains("Union over a protected dataset"), "{refusal}");
    insta::assert_snapshot!(refusal);
    Ok(())
}

/// An aggregation over the result of another: only one level is supported.
#[tokio::test]
async fn nested_aggregation_is_refused() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let refusal = f
        .refused(
            "SELECT sum(s) AS total FROM (SELECT district, sum(income) AS s FROM residents GROUP BY district) t",
            AGGREGATE_ONLY,
        )
        .await?;
    assert!(refusal.contains("only one level of aggregation"), "{refusal}");
    insta::assert_snapshot!(refusal);
    Ok(())
}

/// A query over an unrestricted dataset of public columns only: labelled
/// public, not rewritten, nothing suppressed.
#[tokio::test]
async fn plain_public_query_is_labelled_public_and_left_alone() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let plan = f.accepted("SELECT district, area_km2 FROM districts").await?;
    assert!(plan.contains("label: public: "), "{plan}");
    assert!(plan.contains("suppress_below: None"), "{plan}");
    assert!(!plan.contains("InlandKeep"), "{plan}");
    insta::assert_snapshot!(plan);
    Ok(())
}

/// Rows of a protected dataset without its aggregate-only columns: allowed,
/// labelled row-level, the hidden entity column never in the result.
#[tokio::test]
async fn row_level_read_of_a_protected_dataset_is_labelled_row_level() -> TestResult {
    let f = Fixture::new(Residents::AnyRows).await?;
    let plan = f
        .accepted("SELECT district, service_type FROM residents LIMIT 3")
        .await?;
    assert!(plan.contains("label: row-level: "), "{plan}");
    assert!(!plan.contains("__inland_entity"), "{plan}");
    insta::assert_snapshot!(plan);
    Ok(())
}
