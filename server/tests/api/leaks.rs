//! What a job read never reaches its operator: not the guest's log or
//! printed output, not its error string, not row counts or query texts.
//! Reviewers, inside the domain, see them.

use crate::support::{fixture, get, run};

/// Asserts that no answer the operator can get about `job` contains any of `planted`.
async fn operator_never_sees(job: &str, planted: &[&str]) {
    let f = fixture();
    let mut paths = vec![
        format!("/api/jobs/{job}"),
        "/api/jobs?limit=500".to_string(),
        "/api/outputs".to_string(),
    ];
    for output in f.rt.jobs().get(job).unwrap().outputs {
        paths.push(format!("/api/outputs/{output}"));
        paths.push(format!("/api/outputs/{output}/bundle"));
    }
    for path in paths {
        let body = get(&path, &f.op_a).await.body;
        for p in planted {
            assert!(!body.contains(p), "{path} shows `{p}` to the operator: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_error_string_and_log_reach_reviewers_not_its_operator() {
    let f = fixture();
    let (job, view) = run(&f.op_a, &f.grant_a, "hostile-panic", &[("divisor", "1")]).await;
    assert_eq!(view["state"], "failed", "{view}");
    assert_eq!(view["refusal"], serde_json::Value::Null);
    operator_never_sees(&job, &["gave up", "panicked", "computing"]).await;

    let (job, view) = run(
        &f.op_a,
        &f.grant_a,
        inland_examples::jobs::SQL_PROBE,
        &[(
            "sql",
            "SELECT district, count(*) AS residents FROM residents GROUP BY district",
        )],
    )
    .await;
    assert_eq!(view["state"], "succeeded", "{view}");
    operator_never_sees(&job, &["rows:", "datasets:", "SELECT", "count(*)", "notice"]).await;

    // The reviewer reads the log with the output.
    let output = f.rt.jobs().get(&job).unwrap().outputs[0].clone();
    let page = get(&format!("/api/outputs/{output}"), &f.rev_free).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let log = page.json()["job_log"].to_string();
    assert!(log.contains("rows:"), "{log}");
}

/// Issue #19: a hostile job reads values (a pseudonym and masked mobile of
/// one resident; the exact total income) and writes them into its log,
/// stdout, stderr, query texts and error. Neither the operator's answers
/// nor the auditor's ledger export contain them; the job record inside the
/// domain, which reviewers read, does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_a_job_read_reach_neither_its_operator_nor_the_auditors_export() {
    let f = fixture();
    for sql in [
        "SELECT concat_ws('/', resident_id, mobile) AS v FROM residents LIMIT 1",
        "SELECT CAST(sum(income) AS VARCHAR) AS v FROM residents",
    ] {
        let (job, view) = run(&f.op_a, &f.grant_a, inland_examples::jobs::LEAK, &[("sql", sql)]).await;
        assert_eq!(view["state"], "failed", "{view}");
        let record = f.rt.jobs().get(&job).unwrap();
        let planted = record
            .log
            .iter()
            .find_map(|l| l.message.strip_prefix("planted in the log: "))
            .unwrap_or_else(|| panic!("{sql}: the job read nothing: {:?} {:?}", record.log, record.error))
            .to_string();
        assert!(
            planted.chars().filter(char::is_ascii_digit).count() >= 4,
            "{sql}: {planted}"
        );
        operator_never_sees(&job, &[&planted]).await;
        for path in ["/api/ledger/export", "/api/ledger/signed-export"] {
            let export = get(path, &f.auditor).await;
            assert_eq!(export.status, 200, "{}", export.body);
            assert!(export.body.contains(&job), "{path} covers the job");
            assert!(!export.body.contains(&planted), "{sql}: {path} carries `{planted}`");
        }
    }
}
