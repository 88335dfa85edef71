//! Bad input gets a 4xx problem document naming the problem, and changes nothing.

use crate::support::{ORG_B, call, fixture, get, ledger_events};

const SOME_OUTPUT: &str = "01900000-0000-7000-8000-000000000000/table";

fn org_b_jobs() -> usize {
    let f = fixture();
    f.rt.jobs()
        .list()
        .unwrap()
        .iter()
        .filter(|j| j.operator == ORG_B)
        .count()
}

fn votes_recorded() -> usize {
    ledger_events()
        .iter()
        .filter(|e| matches!(e, inland_runtime::Event::ReviewVoted { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_submissions_get_a_problem_and_leave_no_job() {
    let f = fixture();
    let before = org_b_jobs();
    let submit = |query: String, content_type: &'static str, body: Vec<u8>| async move {
        call(
            "POST",
            &format!("/api/jobs{query}"),
            Some(&f.op_b),
            Some((content_type, body)),
        )
        .await
    };
    let grant = format!("?grant={}", f.grant_b);
    let noop = crate::support::wasm("noop");
    submit(grant.clone(), "application/json", noop.clone())
        .await
        .assert_problem(415);
    submit(String::new(), "application/wasm", noop.clone())
        .await
        .assert_problem(400);
    submit(format!("{grant}&param=novalue"), "application/wasm", noop.clone())
        .await
        .assert_problem(400);
    submit(format!("{grant}&colour=blue"), "application/wasm", noop.clone())
        .await
        .assert_problem(400);
    submit(grant.clone(), "application/wasm", Vec::new())
        .await
        .assert_problem(400);
    // Not WebAssembly, a core module, a component that asks for sockets:
    // 422 at submission, naming the problem, and no job.
    let garbage = submit(grant.clone(), "application/wasm", b"MZ not wasm".to_vec()).await;
    garbage.assert_problem(422);
    assert!(garbage.body.contains("not a WebAssembly file"), "{}", garbage.body);
    let core = submit(grant.clone(), "application/wasm", b"\0asm\x01\0\0\0".to_vec()).await;
    core.assert_problem(422);
    assert!(core.body.contains("core WebAssembly module"), "{}", core.body);
    let sockets = submit(
        grant.clone(),
        "application/wasm",
        crate::support::wasm("hostile-sockets"),
    )
    .await;
    sockets.assert_problem(422);
    assert!(sockets.body.contains("wasi:sockets"), "{}", sockets.body);
    let answer = oversized_upload(&format!("/api/jobs{grant}"), f.module_limit + 1).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains(&f.module_limit.to_string()), "{answer}");
    assert_eq!(org_b_jobs(), before, "a refused submission left a job");
    assert!(f.rt.jobs().running().iter().all(|(_, g)| *g != f.grant_b));
}

/// Announces a component of `length` bytes and sends none of it: the
/// answer must come from the announced length alone, before any body is read.
async fn oversized_upload(path: &str, length: u64) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = fixture();
    let addr = f.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/wasm\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n",
        f.op_b.secret
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // The server answers and closes without waiting for the body.
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_votes_and_unknown_ids_get_a_problem_and_count_no_vote() {
    let f = fixture();
    let before = votes_recorded();
    let path = format!("/api/outputs/{SOME_OUTPUT}/votes");
    let vote = |content_type: &'static str, body: &'static str| {
        let path = path.clone();
        async move {
            call(
                "POST",
                &path,
                Some(&f.rev_free),
                Some((content_type, body.as_bytes().to_vec())),
            )
            .await
        }
    };
    vote("application/json", "{\"decision\": \"approve\", ")
        .await
        .assert_problem(400);
    vote("text/plain", "{\"decision\": \"approve\", \"reason\": \"ok\"}")
        .await
        .assert_problem(415);
    vote("application/json", "{\"decision\": \"maybe\", \"reason\": \"ok\"}")
        .await
        .assert_problem(422);
    vote(
        "application/json",
        "{\"decision\": \"approve\", \"reason\": \"ok\", \"reviewer\": \"chen\"}",
    )
    .await
    .assert_problem(422);
    // Well-formed, but no such output.
    vote("application/json", "{\"decision\": \"approve\", \"reason\": \"ok\"}")
        .await
        .assert_problem(404);
    assert_eq!(votes_recorded(), before);

    get(&format!("/api/outputs/{SOME_OUTPUT}"), &f.rev_free)
        .await
        .assert_problem(404);
    get("/api/jobs/not-a-job-id", &f.admin).await.assert_problem(400);
    get("/api/jobs?limit=many", &f.admin).await.assert_problem(400);
    get("/api/reports/usage?from=yesterday&until=today", &f.auditor)
        .await
        .assert_problem(400);
    get("/api/nothing-here", &f.admin).await.assert_problem(404);
    call("DELETE", "/api/whoami", Some(&f.admin), None)
        .await
        .assert_problem(405);
}

/// Issue #19: a grant whose job quota is spent takes no more submissions:
/// 429 with the quota named, before the job is queued, and no job recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_quota_refuses_submissions_before_they_queue() {
    let f = crate::support::fixture();
    let today = inland_runtime::Date::today();
    let grant =
        f.rt.governance()
            .issue_grant(inland_runtime::GrantRequest {
                operator: crate::support::ORG_A.into(),
                datasets: vec!["residents".into()],
                purpose: "testing".into(),
                scenario: "tests".into(),
                from: today,
                until: today.add_years(1),
                products: vec![],
                quota: inland_runtime::JobQuota {
                    per_day: None,
                    per_term: Some(1),
                },
                approved_components_only: false,
                privacy: Default::default(),
            })
            .unwrap()
            .id;
    let (_, view) = crate::support::run(&f.op_a, &grant, "noop", &[]).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    let refused = crate::support::submit(&f.op_a, &grant, "noop", &[]).await;
    let p = refused.assert_problem(429);
    assert!(p["detail"].as_str().unwrap().contains("all 1 jobs of its term"), "{p}");
    assert!(p.get("job_id").is_none(), "no job was queued: {p}");
}
