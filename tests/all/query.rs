//! The query path refuses everything but read-only queries over the job's
//! datasets, whatever the SQL looks like, and says which rule refused it.

use crate::support::as_sources;
use crate::support::{run, shared};
use inland_runtime::{JobError, JobStatus, QueryEngine, QueryError, QueryScope};

/// (SQL, expected outcome): `ok`, `refused` (by the read-only rule) or
/// `invalid` (the thing does not exist for the job).
const CASES: &[(&str, &str)] = &[
    ("SELECT count(*) FROM residents", "ok"),
    ("SELECT district, avg(income) FROM residents GROUP BY district", "ok"),
    ("WITH x AS (SELECT * FROM enterprises) SELECT count(*) FROM x", "ok"),
    ("DROP TABLE residents", "refused"),
    ("INSERT INTO residents SELECT * FROM residents", "refused"),
    ("UPDATE residents SET age = 1", "refused"),
    ("DELETE FROM residents", "refused"),
    ("CREATE TABLE copy AS SELECT * FROM residents", "refused"),
    ("CREATE VIEW v AS SELECT * FROM residents", "refused"),
    (
        "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'",
        "refused",
    ),
    ("COPY residents TO '/tmp/inland-leak.csv'", "refused"),
    (
        "COPY (SELECT * FROM residents) TO '/tmp/inland-leak.parquet'",
        "refused",
    ),
    ("SET datafusion.execution.batch_size = 1", "refused"),
    ("EXPLAIN SELECT * FROM residents", "refused"),
    ("EXPLAIN ANALYZE SELECT * FROM residents", "refused"),
    ("DESCRIBE residents", "refused"),
    ("SELECT * INTO leak FROM residents", "refused"),
    ("PREPARE p AS SELECT * FROM residents", "refused"),
    ("SELECT * FROM generate_series(1, 10)", "refused"),
    ("SELECT * FROM range(5)", "refused"),
    ("SELECT * FROM information_schema.tables", "invalid"),
    ("SELECT * FROM information_schema.columns", "invalid"),
    ("SHOW TABLES", "refused"),
    ("SELECT * FROM read_csv('/etc/passwd')", "invalid"),
    ("SELECT * FROM '/etc/passwd'", "invalid"),
    ("SELECT * FROM secret_dataset", "invalid"),
    ("SELECT 1; DROP TABLE residents", "invalid"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_read_only_queries_over_visible_datasets_are_planned() {
    let d = shared();
    let domain = d.rt.domain();
    let engine = QueryEngine::new(256 << 20).unwrap();
    let datasets = d.rt.catalog().list().unwrap();
    let ctx = engine.session(&as_sources(domain, &datasets), None).await.unwrap();
    let scope = QueryScope {
        datasets: datasets.iter().map(|d| d.name.clone()).collect(),
        ..Default::default()
    };
    let mut failures = Vec::new();
    for (sql, expected) in CASES {
        let got = match engine.plan(&ctx, &scope, sql).await {
            Ok(_) => "ok".to_string(),
            Err(QueryError::Refused { rule, .. }) if rule == "read-only" => "refused".to_string(),
            Err(QueryError::Invalid(_)) => "invalid".to_string(),
            Err(other) => format!("{other:?}"),
        };
        if got != *expected {
            failures.push(format!("{sql}\n    expected {expected}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(!std::path::Path::new("/tmp/inland-leak.csv").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_query_reaches_the_job_as_an_error_naming_the_rule() {
    let d = shared();
    let report = run(d, inland_examples::jobs::SQL_PROBE, &[("sql", "DROP TABLE residents")]).await;
    assert_eq!(report.job.status, JobStatus::Failed);
    match report.job.error.unwrap() {
        JobError::Failed { message } => assert!(message.contains("refused by rule `read-only`"), "{message}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(report.job.queries.len(), 1);
    assert!(report.job.queries[0].error.is_some());
    assert_eq!(
        d.rt.catalog().get("residents").unwrap().rows,
        crate::support::ROWS as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_lists_exactly_the_registered_datasets_and_streams_large_results() {
    let d = shared();
    let report = run(
        d,
        inland_examples::jobs::SQL_PROBE,
        &[("sql", "SELECT resident_id, age FROM residents")],
    )
    .await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job);
    let listing = &report.job.log[0].message;
    assert!(listing.starts_with("datasets: enterprises(uscc,"), "{listing}");
    assert!(
        listing.contains(" residents(resident_id,name,mobile,district,age,income,service_type)"),
        "{listing}"
    );
    assert_eq!(report.outputs[0].rows, crate::support::ROWS as u64);
    assert_eq!(report.job.queries[0].rows, crate::support::ROWS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_outgrows_the_memory_pool_fails_with_a_limit_and_writes_nothing() {
    let d = crate::support::new_domain(inland_runtime::Limits {
        query_memory_mib: 1,
        ..crate::support::test_limits()
    });
    let sql = "SELECT resident_id, count(*) AS n FROM residents GROUP BY resident_id ORDER BY n, resident_id";
    let report = run(&d, inland_examples::jobs::SQL_PROBE, &[("sql", sql)]).await;
    let err = report.job.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("limit reached: query memory"), "{err}");
    assert!(crate::support::files_under(&d.root.join("spill")).is_empty());
}

/// The `rows: N` line sql-probe logs.
fn rows_logged(report: &inland_runtime::JobReport) -> u64 {
    report
        .job
        .log
        .iter()
        .find_map(|l| l.message.strip_prefix("rows: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rows line: {:?} {:?}", report.job.log, report.job.error))
}

/// #22: a value bound to a `$name` placeholder is data. Text that would
/// change the SQL if formatted into it is compared as a string and matches
/// nothing; a number-shaped injection against a number column is an error,
/// not every row; a real value matches exactly its rows; a placeholder
/// without a value is an error. Reviewers see each value beside the SQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_values_are_compared_as_values_and_never_read_as_sql() {
    use arrow::array::AsArray;
    let d = shared();
    let by_district = "SELECT resident_id FROM residents WHERE district = $d";
    for hostile in ["'; DROP TABLE residents; --", "x' OR '1'='1", "1 OR 1=1"] {
        let r = run(
            d,
            inland_examples::jobs::SQL_PROBE,
            &[("sql", by_district), ("bind.d", hostile)],
        )
        .await;
        assert_eq!(r.job.status, JobStatus::Succeeded, "{hostile}: {:?}", r.job.error);
        assert_eq!(rows_logged(&r), 0, "{hostile} matched rows");
        let recorded = &r.job.queries[0].sql;
        assert!(recorded.starts_with(by_district), "{recorded}");
        assert!(recorded.contains(&format!("-- $d = text {hostile:?}")), "{recorded}");
    }
    // A real district matches exactly its rows.
    let people = inland_examples::generate::residents(crate::support::ROWS, crate::support::SEED);
    let districts = people.column(people.schema().index_of("district").unwrap()).clone();
    let districts = arrow::compute::cast(&districts, &arrow::datatypes::DataType::Utf8).unwrap();
    let districts = districts.as_string::<i32>();
    let first = districts.value(0).to_string();
    let expected = districts.iter().filter(|v| *v == Some(first.as_str())).count() as u64;
    let r = run(
        d,
        inland_examples::jobs::SQL_PROBE,
        &[("sql", by_district), ("bind.d", &first)],
    )
    .await;
    assert_eq!(rows_logged(&r), expected);
    // Against a number column, an injection is a failed comparison, not every row.
    let by_age = "SELECT resident_id FROM residents WHERE age > $a";
    let r = run(
        d,
        inland_examples::jobs::SQL_PROBE,
        &[("sql", by_age), ("bind.a", "int:200")],
    )
    .await;
    assert_eq!(rows_logged(&r), 0);
    let r = run(
        d,
        inland_examples::jobs::SQL_PROBE,
        &[("sql", by_age), ("bind.a", "0 OR 1=1")],
    )
    .await;
    assert_eq!(r.job.status, JobStatus::Failed, "{:?}", r.job.log);
    // A name that would forge a line under the recorded query is refused by the host.
    let forged = run(
        d,
        inland_examples::jobs::SQL_PROBE,
        &[("sql", by_age), ("bind.a\nUNION SELECT 1", "int:1")],
    )
    .await;
    assert_eq!(forged.job.status, JobStatus::Failed);
    assert!(forged.job.queries.is_empty(), "nothing ran: {:?}", forged.job.queries);
    // A placeholder nobody bound is an error, never a plan with a hole.
    let r = run(
        d,
        inland_examples::jobs::SQL_PROBE,
        &[("sql", by_age), ("bind.other", "int:1")],
    )
    .await;
    assert_eq!(r.job.status, JobStatus::Failed);
    let message = r.job.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("$a"), "{message}");
}
