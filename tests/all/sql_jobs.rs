//! SQL and Python jobs (#22): a `.sql` file of named statements, run by the
//! SQL job component Inland ships, and a Python job (componentize-py, the
//! row interface) give the same outputs as the Rust job that computes the
//! same figures, and a forbidden query is refused by the same rule,
//! whichever language asked.

use crate::support::{OPERATOR, apply_example_policy, new_domain, run_as, test_limits, wasm};
use inland_runtime::{JobReport, JobStatus, sql_job};

const DISTRICT_STATS: &str = "-- The figures district-stats computes.\n\
-- output: district_stats\n\
SELECT district, count(*) AS residents, avg(age) AS avg_age, avg(income) AS avg_income\n\
FROM residents WHERE age >= $min_age GROUP BY district ORDER BY district;\n";

async fn run_sql(d: &crate::support::TestDomain, text: &str, binds: &[(&str, &str)]) -> JobReport {
    let binds: Vec<(String, String)> = binds.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let params = sql_job::params(text, &binds).unwrap();
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_as(
        &d.rt,
        OPERATOR,
        &d.grant,
        sql_job::component().unwrap().to_vec(),
        &pairs,
    )
    .await
}

fn table(d: &crate::support::TestDomain, report: &JobReport) -> Vec<arrow::array::RecordBatch> {
    let out = report
        .outputs
        .first()
        .unwrap_or_else(|| panic!("no output: {:?}", report.job.error));
    d.rt.reviews().output_table(&out.id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_job_a_python_job_and_the_rust_job_give_identical_outputs_under_the_policy() {
    let d = new_domain(test_limits());
    apply_example_policy(&d, "");
    for min_age in ["0", "30"] {
        let rust = run_as(
            &d.rt,
            OPERATOR,
            &d.grant,
            wasm("district-stats"),
            &[("min_age", min_age)],
        )
        .await;
        assert_eq!(rust.job.status, JobStatus::Succeeded, "{:?}", rust.job.error);
        let sql = run_sql(&d, DISTRICT_STATS, &[("min_age", &format!("int:{min_age}"))]).await;
        assert_eq!(
            sql.job.status,
            JobStatus::Succeeded,
            "{:?} {:?}",
            sql.job.error,
            sql.job.log
        );
        assert_eq!(sql.outputs.len(), 1);
        let python = run_as(
            &d.rt,
            OPERATOR,
            &d.grant,
            wasm("district-stats-py"),
            &[("min_age", min_age)],
        )
        .await;
        assert_eq!(
            python.job.status,
            JobStatus::Succeeded,
            "{:?} {:?}",
            python.job.error,
            python.job.log
        );
        let whole = |r: &JobReport| {
            let t = table(&d, r);
            arrow::compute::concat_batches(&t[0].schema(), &t).unwrap()
        };
        let expected = whole(&rust);
        assert!(expected.num_rows() > 0);
        assert_eq!(whole(&sql), expected, "SQL, min_age {min_age}");
        assert_eq!(whole(&python), expected, "Python, min_age {min_age}");
        // The same label and the same gate verdict: one path.
        let verdict = |r: &JobReport| r.outputs[0].gate.as_ref().map(|g| g.verdict);
        for other in [&sql, &python] {
            assert_eq!(rust.outputs[0].label, other.outputs[0].label);
            assert_eq!(verdict(&rust), verdict(other));
        }
        // The host's notice (a suppressed group) reached the Python job too.
        let notices = |r: &JobReport| r.job.log.iter().filter(|l| l.message.contains("host notice")).count();
        assert_eq!(notices(&python), notices(&rust));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_and_rust_joins_give_the_same_table_and_the_reviewer_sees_it_is_a_join() {
    let d = new_domain(test_limits());
    apply_example_policy(&d, "");
    let rust = run_as(&d.rt, OPERATOR, &d.grant, wasm("join-stats"), &[]).await;
    let python = run_as(&d.rt, OPERATOR, &d.grant, wasm("join-stats-py"), &[]).await;
    for r in [&rust, &python] {
        assert_eq!(r.job.status, JobStatus::Succeeded, "{:?} {:?}", r.job.error, r.job.log);
    }
    let (a, b) = (table(&d, &rust), table(&d, &python));
    let a = arrow::compute::concat_batches(&a[0].schema(), &a).unwrap();
    assert!(a.num_rows() > 0);
    assert_eq!(arrow::compute::concat_batches(&b[0].schema(), &b).unwrap(), a);
    // Rows combined from two results are a choice the job made: review.
    for r in [&rust, &python] {
        let gate = r.outputs[0].gate.as_ref().unwrap();
        let selection = gate.check("selection").unwrap();
        assert_eq!(selection.status, inland_runtime::Status::NeedsReview, "{selection:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_query_is_refused_by_the_same_rule_from_sql_as_from_rust() {
    let d = new_domain(test_limits());
    apply_example_policy(&d, "");
    for forbidden in [
        "SELECT income FROM residents",
        "SELECT district, max(income) AS top FROM residents GROUP BY district",
        "DROP TABLE residents",
    ] {
        let rust = run_as(
            &d.rt,
            OPERATOR,
            &d.grant,
            wasm(inland_examples::jobs::SQL_PROBE),
            &[("sql", forbidden)],
        )
        .await;
        let sql = run_sql(&d, &format!("-- output: x\n{forbidden}\n"), &[]).await;
        let python = run_as(
            &d.rt,
            OPERATOR,
            &d.grant,
            wasm(inland_examples::jobs::PYTHON_PROBE),
            &[("sql", forbidden)],
        )
        .await;
        let rule = |r: &JobReport| {
            r.job
                .queries
                .first()
                .and_then(|q| q.error.clone())
                .and_then(|e| {
                    e.split("refused by rule `")
                        .nth(1)
                        .map(|s| s.split('`').next().unwrap_or("").to_string())
                })
                .unwrap_or_else(|| panic!("{forbidden}: not refused: {:?}", r.job.queries))
        };
        assert_eq!(rule(&rust), rule(&sql), "{forbidden}");
        assert_eq!(rule(&rust), rule(&python), "{forbidden}");
        for r in [&sql, &python] {
            assert_eq!(r.job.status, JobStatus::Failed);
            assert!(r.outputs.is_empty());
        }
        // The job's own error names the rule too (the SDK passes it on).
        let error = python.job.error.map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains(&format!("refused by rule `{}`", rule(&rust))), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_named_statements_are_several_outputs_and_an_empty_result_is_kept() {
    let d = new_domain(test_limits());
    let text = "-- output: z_counts\nSELECT district, count(*) AS n FROM residents GROUP BY district ORDER BY district\n\n\
                -- output: nobody\nSELECT district FROM residents WHERE district = $d\n";
    let r = run_sql(&d, text, &[("d", "'; DROP TABLE residents; --")]).await;
    assert_eq!(r.job.status, JobStatus::Succeeded, "{:?} {:?}", r.job.error, r.job.log);
    let mut names: Vec<String> =
        d.rt.jobs()
            .get_with_output_names(&r.job.id)
            .unwrap()
            .1
            .into_iter()
            .map(|(_, n)| n)
            .collect();
    names.sort();
    assert_eq!(names, ["nobody", "z_counts"]);
    // Run in the file's order, not the names' order.
    assert!(
        r.job.queries[0].sql.starts_with("SELECT district, count(*)"),
        "{:?}",
        r.job.queries
    );
    assert!(r.outputs.iter().map(|o| o.rows).sum::<u64>() > 0);
}

/// The parts of a component that say what it is to its host: the bytes of
/// its top-level type, import, export, alias and canonical sections (the
/// compiled code inside is left out: a build in another checkout orders it
/// differently, because a path dependency's crate hash depends on its path).
fn interface(wasm: &[u8]) -> Vec<Vec<u8>> {
    use wasmparser::{Parser, Payload};
    let mut parts = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.unwrap();
        match &payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > 0 {
            continue;
        }
        let range = match &payload {
            Payload::ComponentTypeSection(s) => s.range(),
            Payload::ComponentImportSection(s) => s.range(),
            Payload::ComponentExportSection(s) => s.range(),
            Payload::ComponentAliasSection(s) => s.range(),
            Payload::ComponentCanonicalSection(s) => s.range(),
            _ => continue,
        };
        parts.push(wasm[range].to_vec());
    }
    parts
}

/// The SQL job component Inland ships is checked in (the product needs no
/// wasm toolchain, and its hash, which an approval names, does not change
/// with the machine): it must present the same world as the one this source
/// tree builds, and every test of SQL jobs runs it. After a change to the
/// guest SDK, its WIT or the job: `scripts/update-sql-job.sh`.
#[test]
fn the_shipped_sql_job_is_the_one_this_tree_builds() {
    let built = inland_examples::jobs::wasm(inland_examples::jobs::SQL_JOB).unwrap();
    let shipped = sql_job::component().unwrap();
    let (a, b) = (interface(shipped), interface(built));
    assert!(!a.is_empty());
    assert!(
        a == b,
        "runtime/src/jobs/sql-job.wasm is stale (its interface differs from this tree's build): \
         run scripts/update-sql-job.sh"
    );
}

/// Under a grant that runs approved components only, a SQL job is approved
/// by its statements, not by the SQL job component (which runs any SQL):
/// an unapproved file is refused naming its fingerprint; once approved it
/// runs with any bound values; another file is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_file_is_approved_by_its_statements_under_a_grant_for_approved_components() {
    let d = new_domain(test_limits());
    let today = inland_runtime::Date::today();
    let grant =
        d.rt.governance()
            .issue_grant(inland_runtime::GrantRequest {
                operator: OPERATOR.into(),
                datasets: vec!["residents".into()],
                purpose: "testing".into(),
                scenario: "tests".into(),
                from: today,
                until: today.add_years(1),
                products: vec![],
                quota: Default::default(),
                approved_components_only: true,
                privacy: Default::default(),
            })
            .unwrap()
            .id;
    let run = |text: &'static str, min_age: &'static str| {
        let d = &d;
        let grant = grant.clone();
        async move {
            let binds = vec![("min_age".to_string(), format!("int:{min_age}"))];
            let params = sql_job::params(text, &binds).unwrap();
            let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            run_as(&d.rt, OPERATOR, &grant, sql_job::component().unwrap().to_vec(), &pairs).await
        }
    };
    let fingerprint = sql_job::file_fingerprint(DISTRICT_STATS).unwrap();
    let refused = run(DISTRICT_STATS, "0").await;
    assert_eq!(refused.job.status, JobStatus::Refused);
    let why = refused.job.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(why.contains(&fingerprint) && why.contains("SQL file"), "{why}");

    // Approving the SQL job component itself approves no SQL.
    let component_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(sql_job::component().unwrap()))
    };
    d.rt.governance()
        .approve_component(&component_sha, "chen", "the shipped SQL job")
        .unwrap();
    assert_eq!(run(DISTRICT_STATS, "0").await.job.status, JobStatus::Refused);

    d.rt.governance()
        .approve_component(&fingerprint, "chen", "read the file")
        .unwrap();
    for min_age in ["0", "30"] {
        let ok = run(DISTRICT_STATS, min_age).await;
        assert_eq!(ok.job.status, JobStatus::Succeeded, "{:?}", ok.job.error);
    }
    // Another file, even one statement longer, is not approved.
    let other = run(
        "-- output: n\nSELECT count(*) AS n FROM residents WHERE age >= $min_age\n",
        "0",
    )
    .await;
    assert_eq!(other.job.status, JobStatus::Refused);
}
