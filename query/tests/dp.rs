//! The `dp` privacy mode through the engine: real plans over real Parquet,
//! each answer checked against the truth the test knows.
//!
//! Statistical assertions are bounded so they fail by chance with
//! probability far below 1e-6: single draws within 7σ of the truth
//! (P ≈ 1e-12 each), spreads over many runs compared with margins of many
//! standard errors.

use arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use inland_policies::Policy;
use inland_policies::policy::CatalogView;
use inland_query::{ColumnInfo, DatasetSource, DpScope, QueryEngine, QueryError, QueryScope};
use parquet::arrow::ArrowWriter;
use std::error::Error;
use std::path::Path;
use std::sync::Arc;

type TestResult = Result<(), Box<dyn Error>>;

const POLICY: &str = r#"
[datasets.residents]
grade = "general"
personal_information = true
entity = "resident_id"

[datasets.residents.columns]
resident_id = { class = "direct-identifier", access = "mask", method = "pseudonym" }
district = { class = "quasi-identifier", access = "dimension", public_values = ["A", "B", "C", "D"] }
service_type = { class = "attribute", access = "dimension" }
income = { class = "sensitive", access = "aggregate-only", dp_bounds = [0, 200000] }
age = { class = "quasi-identifier", access = "aggregate-only" }

[datasets.visits]
grade = "general"
personal_information = true
entity = "resident_id"
max_rows_per_entity = 3

[datasets.visits.columns]
resident_id = { class = "direct-identifier", access = "mask", method = "pseudonym" }
district = { class = "quasi-identifier", access = "dimension", public_values = ["A", "B", "C", "D"] }
amount = { class = "sensitive", access = "aggregate-only", dp_bounds = [0, 200] }
"#;

/// Residents: 1,000 people in districts A, B, C (none in D); one of them,
/// the target, alone in service type `target-only`, with income 77,777.
const RESIDENTS: usize = 1000;
const TARGET_INCOME: f64 = 77_777.0;

fn income(i: usize) -> f64 {
    if i == 0 {
        TARGET_INCOME
    } else {
        ((i * 7919) % 100_000) as f64
    }
}

fn district(i: usize) -> &'static str {
    ["A", "B", "C"][i % 3]
}

fn residents() -> Result<RecordBatch, Box<dyn Error>> {
    let ids: Vec<String> = (0..RESIDENTS).map(|i| format!("R{i:05}")).collect();
    let service: Vec<&str> = (0..RESIDENTS)
        .map(|i| {
            if i == 0 {
                "target-only"
            } else {
                ["medical", "pension"][i % 2]
            }
        })
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(StringArray::from((0..RESIDENTS).map(district).collect::<Vec<_>>())),
        Arc::new(StringArray::from(service)),
        Arc::new(Float64Array::from((0..RESIDENTS).map(income).collect::<Vec<_>>())),
        Arc::new(arrow::array::Int64Array::from(
            (0..RESIDENTS).map(|i| (i % 90) as i64).collect::<Vec<_>>(),
        )),
    ];
    let schema = Schema::new(vec![
        Field::new("resident_id", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("service_type", DataType::Utf8, false),
        Field::new("income", DataType::Float64, false),
        Field::new("age", DataType::Int64, false),
    ]);
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

/// Visits: one per resident of amount 100, except R00000, who has 1,000
/// visits of amount 150 (and 1e9 once, beyond the bounds).
fn visits() -> Result<RecordBatch, Box<dyn Error>> {
    let mut ids = Vec::new();
    let mut amounts = Vec::new();
    for i in 1..RESIDENTS {
        ids.push(format!("R{i:05}"));
        amounts.push(100.0);
    }
    for k in 0..1000 {
        ids.push("R00000".to_string());
        amounts.push(if k == 500 { 1e9 } else { 150.0 });
    }
    let n = ids.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(StringArray::from(vec!["A"; n])),
        Arc::new(Float64Array::from(amounts)),
    ];
    let schema = Schema::new(vec![
        Field::new("resident_id", DataType::Utf8, false),
        Field::new("district", DataType::Utf8, false),
        Field::new("amount", DataType::Float64, false),
    ]);
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

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

struct Fixture {
    _dir: tempfile::TempDir,
    engine: QueryEngine,
    ctx: SessionContext,
    scope: QueryScope,
}

/// ρ of each query in these tests.
const RHO: f64 = 0.5;

impl Fixture {
    async fn new() -> Result<Fixture, Box<dyn Error>> {
        let dir = tempfile::tempdir()?;
        let sources = vec![
            write_dataset(dir.path(), "residents", &residents()?, &["resident_id"])?,
            write_dataset(dir.path(), "visits", &visits()?, &[])?,
        ];
        let catalog: CatalogView = sources
            .iter()
            .map(|s| (s.name.clone(), s.columns.iter().map(|c| c.name.clone()).collect()))
            .collect();
        let policy = Policy::load(POLICY, "policy.toml", &catalog)
            .map_err(|p| p.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))?;
        let engine = QueryEngine::new(256 << 20)?;
        let keys = inland_query::PolicyKeys {
            pseudonym: [7; 32],
            entity: [9; 32],
        };
        let ctx = engine.session(&sources, Some((&policy, keys))).await?;
        let mut scope = QueryScope::under(Some(&policy), sources.iter().map(|s| s.name.clone()))
            .with_unique_entities(Some(&policy), &sources);
        scope.dp = Some(DpScope {
            rho_per_query: RHO,
            row_key: "0123456789abcdef".into(),
        });
        Ok(Fixture {
            _dir: dir,
            engine,
            ctx,
            scope,
        })
    }

    async fn run(&self, sql: &str) -> Result<RecordBatch, Box<dyn Error>> {
        let planned = self.engine.plan(&self.ctx, &self.scope, sql).await?;
        let cost = planned.privacy.clone().ok_or("a dp query with no privacy cost")?;
        assert_eq!(cost.rho, RHO);
        let stream = self.engine.execute(&self.ctx, &planned).await?;
        let schema = stream.schema();
        let batches: Vec<RecordBatch> = stream.try_collect().await?;
        Ok(arrow::compute::concat_batches(&schema, &batches)?)
    }

    async fn refused(&self, sql: &str) -> Result<String, Box<dyn Error>> {
        match self.engine.plan(&self.ctx, &self.scope, sql).await {
            Err(QueryError::Refused { rule, message }) => Ok(format!("{rule}: {message}")),
            Err(other) => Err(format!("`{sql}`: expected a refusal, got {other}").into()),
            Ok(_) => Err(format!("`{sql}` was accepted in the dp mode").into()),
        }
    }
}

fn sigma(sensitivity: u64, rho: f64) -> f64 {
    inland_dp::sigma(sensitivity, rho)
}

fn texts(batch: &RecordBatch, c: usize) -> Vec<String> {
    let c = arrow::compute::cast(batch.column(c), &DataType::Utf8).unwrap_or_else(|_| batch.column(c).clone());
    c.as_string::<i32>().iter().flatten().map(str::to_string).collect()
}

fn f64s(batch: &RecordBatch, c: usize) -> Vec<f64> {
    let c = arrow::compute::cast(batch.column(c), &DataType::Float64).unwrap_or_else(|_| batch.column(c).clone());
    c.as_primitive::<Float64Type>()
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect()
}

#[tokio::test]
async fn every_published_group_is_released_with_noise_of_the_configured_scale() -> TestResult {
    let f = Fixture::new().await?;
    let got = f
        .run("SELECT district, count(*) AS n, sum(income) AS s, avg(income) AS m FROM residents GROUP BY district ORDER BY district")
        .await?;
    let keys = texts(&got, 0);
    assert_eq!(
        keys,
        ["A", "B", "C", "D"],
        "D has no residents and is released all the same"
    );
    assert_eq!(got.column(1).data_type(), &DataType::Int64, "a count keeps its type");
    // Four figures share ρ: count, sum, and the mean's sum and count.
    let rho = RHO / 4.0;
    let (n, s) = (f64s(&got, 1), f64s(&got, 2));
    for (g, d) in ["A", "B", "C", "D"].iter().enumerate() {
        let members: Vec<usize> = (0..RESIDENTS).filter(|&i| district(i) == *d).collect();
        let true_n = members.len() as f64;
        let true_s: f64 = members.iter().map(|&i| income(i)).sum();
        assert!(
            (n[g] - true_n).abs() <= 7.0 * sigma(1, rho) + 1.0,
            "{d}: n {} vs {true_n}",
            n[g]
        );
        assert!(
            (s[g] - true_s).abs() <= 7.0 * sigma(200_001, rho),
            "{d}: sum {} vs {true_s}",
            s[g]
        );
    }
    let means = f64s(&got, 3);
    assert!(
        means.iter().all(|m| (0.0..=200_000.0).contains(m)),
        "means are clamped to the bounds: {means:?}"
    );
    Ok(())
}

/// Two releases that differ by one person (a WHERE that leaves out the
/// target): in the exact mode their difference is the target's income; here
/// its error over many tries is the noise of two releases.
#[tokio::test]
async fn differencing_two_releases_gives_an_error_no_smaller_than_the_noise() -> TestResult {
    let f = Fixture::new().await?;
    let trials = 60;
    let mut squared = 0.0;
    for _ in 0..trials {
        let all = f64s(&f.run("SELECT sum(income) FROM residents").await?, 0)[0];
        let rest = f64s(
            &f.run("SELECT sum(r.income) FROM residents r WHERE r.service_type <> 'target-only'")
                .await?,
            0,
        )[0];
        let estimate = all - rest;
        squared += (estimate - TARGET_INCOME).powi(2);
    }
    let rms = (squared / trials as f64).sqrt();
    // Each release has σ = 200,001/√(2ρ); the difference √2 times that.
    let implied = 2f64.sqrt() * sigma(200_001, RHO);
    // With 60 tries the RMS is below half the implied σ with probability ~1e-20.
    assert!(rms > 0.5 * implied, "rms error {rms} against implied noise {implied}");
    Ok(())
}

/// One resident has 1,000 visits (one far beyond the bounds): the policy's
/// cap of 3 rows per entity and the clamping keep their effect on a total to
/// 3 × 200, so the release is near the capped truth, not the real one.
#[tokio::test]
async fn rows_beyond_the_cap_and_values_beyond_the_bounds_do_not_count() -> TestResult {
    let f = Fixture::new().await?;
    let got = f.run("SELECT count(*) AS n, sum(amount) AS s FROM visits").await?;
    let (n, s) = (f64s(&got, 0)[0], f64s(&got, 1)[0]);
    let others = (RESIDENTS - 1) as f64;
    let rho = RHO / 2.0;
    let capped_n = others + 3.0;
    assert!(
        (n - capped_n).abs() <= 7.0 * sigma(3, rho) + 1.0,
        "n {n} vs capped {capped_n}"
    );
    // The target's three rows: 150 each, or 200 for the clamped 1e9 if chosen.
    let low = others * 100.0 + 3.0 * 150.0;
    let high = others * 100.0 + 2.0 * 150.0 + 200.0;
    let spread = 7.0 * sigma(3 * 200 + 1, rho);
    assert!(
        s >= low - spread && s <= high + spread,
        "sum {s} outside [{low}, {high}] ± {spread}"
    );
    Ok(())
}

#[tokio::test]
async fn a_group_of_one_entity_without_a_published_key_is_not_released() -> TestResult {
    let f = Fixture::new().await?;
    let got = f
        .run("SELECT service_type, count(*) AS n FROM residents GROUP BY service_type ORDER BY service_type")
        .await?;
    let keys = texts(&got, 0);
    assert_eq!(keys, ["medical", "pension"], "the target's own group never appears");
    Ok(())
}

/// What the job writes above the aggregation works on noisy values.
#[tokio::test]
async fn having_order_and_arithmetic_above_the_release_work_on_noisy_values() -> TestResult {
    let f = Fixture::new().await?;
    let got = f
        .run(
            "SELECT district, count(*) * 2 AS twice FROM residents GROUP BY district \
             HAVING count(*) > 100 ORDER BY twice DESC",
        )
        .await?;
    let keys = texts(&got, 0);
    assert_eq!(keys.len(), 3, "D is empty, so HAVING removes its noisy count: {keys:?}");
    let twice = got.column(1).as_primitive::<Int64Type>();
    assert!(twice.iter().flatten().all(|v| v % 2 == 0));
    Ok(())
}

/// The row-amplification attack: `VALUES (0),(1),(1),…` joined so that the
/// target's row matches 1,000 times.
const REPEAT_TARGET: &str = concat!(
    "SELECT sum(r.income) FROM residents r JOIN (VALUES ",
    "(0),(1),(1),(1),(1),(1),(1),(1),(1),(1),(1)",
    ") v(f) ON (CASE WHEN r.service_type = 'target-only' THEN 1 ELSE 0 END) = v.f"
);

#[tokio::test]
async fn what_the_host_cannot_bound_is_refused_by_a_named_rule() -> TestResult {
    let f = Fixture::new().await?;
    for sql in [
        // Rows themselves.
        "SELECT district FROM residents",
        // A sum without bounds.
        "SELECT sum(age) FROM residents",
        // An aggregate with no noisy form.
        "SELECT stddev(income) FROM residents",
        // LIMIT below the aggregation.
        "SELECT sum(income) FROM (SELECT income FROM residents LIMIT 10) t",
        // Two levels of aggregation over protected data.
        "SELECT count(*) FROM (SELECT district, sum(income) AS s FROM residents GROUP BY district) t",
        // One person's row repeated 1,000 times by a join (refused in the
        // exact mode too: the other side's key is not unique).
        REPEAT_TARGET,
        // An error raised by one row would say, exactly, that the row exists.
        "SELECT count(*) FROM residents WHERE 1 / (CASE WHEN service_type = 'target-only' THEN 0 ELSE 1 END) = 1",
        "SELECT sum(CAST(income AS BIGINT)) FROM residents",
        "SELECT lpad(service_type, 5) AS s, count(*) FROM residents GROUP BY lpad(service_type, 5)",
        // A join of the release with protected rows.
        "SELECT t.n FROM (SELECT count(*) AS n FROM residents) t JOIN residents r ON r.district = 'A'",
    ] {
        let why = f.refused(sql).await?;
        assert!(
            why.starts_with("dp:") || why.starts_with("aggregate-only:") || why.starts_with("group-keys:"),
            "{sql}: {why}"
        );
    }
    let why = f.refused("SELECT sum(age) FROM residents").await?;
    assert!(why.contains("dp_bounds"), "{why}");
    let why = f
        .refused("SELECT count(*) FROM residents WHERE 1 / (CASE WHEN service_type = 'x' THEN 0 ELSE 1 END) = 1")
        .await?;
    assert!(why.contains("never fail"), "{why}");
    let why = f.refused("SELECT stddev(income) FROM residents").await?;
    assert!(why.starts_with("dp:") || why.starts_with("aggregate-only:"), "{why}");
    // A refusal plans nothing: it has no cost to charge.
    assert!(
        f.engine
            .plan(&f.ctx, &f.scope, "SELECT district FROM residents")
            .await
            .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn the_cost_is_known_before_the_query_runs() -> TestResult {
    let f = Fixture::new().await?;
    let planned = f
        .engine
        .plan(
            &f.ctx,
            &f.scope,
            "SELECT district, count(*) FROM visits GROUP BY district",
        )
        .await?;
    let cost = planned.privacy.ok_or("no cost")?;
    assert_eq!((cost.rho, cost.datasets), (RHO, vec!["visits".to_string()]));
    assert_eq!(cost.delta, 0.0, "published keys add no δ");
    // Keys chosen by a threshold add δ: each entity is in at most `cap` groups.
    let planned = f
        .engine
        .plan(
            &f.ctx,
            &f.scope,
            "SELECT service_type, count(*) FROM residents GROUP BY service_type",
        )
        .await?;
    assert_eq!(planned.privacy.ok_or("no cost")?.delta, inland_query::KEY_DELTA);
    Ok(())
}
