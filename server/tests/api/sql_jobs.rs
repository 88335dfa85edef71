//! SQL jobs through the API (#22): a `.sql` body (`application/sql`) runs
//! as the SQL job component Inland ships, under the same admission; a file
//! without named statements is refused before any job exists.

use crate::support::{call, fixture, wait};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_file_runs_as_a_job_and_a_bad_one_is_refused_before_it_is_queued() {
    let f = fixture();
    let text = "-- output: by_service\nSELECT service_type, count(*) AS n FROM residents \
                WHERE age >= $min_age GROUP BY service_type\n";
    let path = format!("/api/jobs?grant={}&param=min_age=int:18", f.grant_a);
    let accepted = call(
        "POST",
        &path,
        Some(&f.op_a),
        Some(("application/sql", text.as_bytes().to_vec())),
    )
    .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let id = accepted.json()["job_id"].as_str().unwrap().to_string();
    let view = wait(&f.op_a, &id).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    let (job, names) = f.rt.jobs().get_with_output_names(&id).unwrap();
    assert_eq!(names.into_iter().map(|(_, n)| n).collect::<Vec<_>>(), ["by_service"]);
    assert!(
        job.queries[0].sql.contains("-- $min_age = int 18"),
        "{}",
        job.queries[0].sql
    );
    for bad in ["SELECT 1", "-- output: a\n", "-- output: a/b\nSELECT 1"] {
        let refused = call(
            "POST",
            &path,
            Some(&f.op_a),
            Some(("application/sql", bad.as_bytes().to_vec())),
        )
        .await;
        let problem = refused.assert_problem(422);
        assert!(
            problem["type"].as_str().unwrap().ends_with("invalid-sql-job"),
            "{problem}"
        );
        assert!(problem["detail"].as_str().unwrap().contains("line"), "{problem}");
    }
    // The file is the job's source: no archive beside it.
    let with_source = call(
        "POST",
        &format!("{path}&source={}", "0".repeat(64)),
        Some(&f.op_a),
        Some(("application/sql", text.as_bytes().to_vec())),
    )
    .await;
    assert!(matches!(with_source.status, 400 | 422), "{}", with_source.body);
    let other = call("POST", &path, Some(&f.op_a), Some(("text/csv", b"a,b".to_vec()))).await;
    other.assert_problem(415);
}
