//! What a job read never reaches its operator: not the guest's log or
//! printed output, not its error string, not row counts or query texts.
//! Reviewers, inside the domain, see them.

use crate::support::{fixture, get, run};

/// Asserts that no answer the operator can get about `job` contains any of `planted`.
async fn operator_never_sees(job: &str, planted: &[&str]) {
    let f = fixture();
    for path in [
        format!("/api/jobs/{job}"),
        "/api/jobs?limit=500".to_string(),
        format!("/api/outputs/{job}/result"),
        "/api/outputs".to_string(),
    ] {
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
    let page = get(&format!("/api/outputs/{job}/result"), &f.rev_free).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let log = page.json()["job_log"].to_string();
    assert!(log.contains("rows:"), "{log}");
}
