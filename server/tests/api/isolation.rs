//! One operator's token cannot see, list or submit under another's things,
//! and cannot tell another's job from one that does not exist.

use crate::support::{ORG_A, call, denial_recorded, fixture, get, run, submit, wait};

const UNKNOWN_JOB: &str = "01900000-0000-7000-8000-000000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_cannot_see_list_or_submit_under_another_operators_things() {
    let f = fixture();
    let (id, view) = run(&f.op_a, &f.grant_a, "noop", &[]).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    assert_eq!(view["organization"], ORG_A);

    // Another operator: refused, and recorded.
    get(&format!("/api/jobs/{id}"), &f.op_b).await.assert_problem(403);
    assert!(denial_recorded(&f.op_b, "ViewJob"));
    // A job that does not exist reads the same to an operator...
    let unknown = get(&format!("/api/jobs/{UNKNOWN_JOB}"), &f.op_b).await;
    assert_eq!(
        unknown.assert_problem(403),
        get(&format!("/api/jobs/{id}"), &f.op_b).await.json()
    );
    // ...while an admin learns it does not exist.
    get(&format!("/api/jobs/{UNKNOWN_JOB}"), &f.admin)
        .await
        .assert_problem(404);

    // Submitting under another's grant, or a grant that does not exist: the same refusal.
    let jobs_before = f.rt.jobs().list().unwrap().len();
    submit(&f.op_b, &f.grant_a, "noop", &[]).await.assert_problem(403);
    submit(&f.op_b, "g-doesnotexist", "noop", &[]).await.assert_problem(403);
    assert!(denial_recorded(&f.op_b, "SubmitJob"));
    // (org-b's own jobs under its own grant, from tests running beside this one, are fine.)
    assert!(
        f.rt.jobs()
            .list()
            .unwrap()
            .iter()
            .all(|j| !(j.operator == "org-b" && (j.grant == f.grant_a || j.grant == "g-doesnotexist"))),
        "a refused submission left a job"
    );
    assert!(f.rt.jobs().list().unwrap().len() >= jobs_before);

    // Listing: only its own by default; another's on request is refused.
    let mine = get("/api/jobs", &f.op_b).await.json();
    assert!(
        mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["organization"] == "org-b")
    );
    get(&format!("/api/jobs?operator={ORG_A}"), &f.op_b)
        .await
        .assert_problem(403);
    assert!(denial_recorded(&f.op_b, "ListJobs"));
    let theirs = get("/api/jobs?limit=500", &f.op_a).await.json();
    assert!(
        theirs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_lists_page_through_every_job_once_in_order() {
    let f = fixture();
    let mut submitted = Vec::new();
    for _ in 0..3 {
        let r = submit(&f.op_a, &f.grant_a, "noop", &[]).await;
        assert_eq!(r.status, 202, "{}", r.body);
        submitted.push(r.json()["job_id"].as_str().unwrap().to_string());
    }
    for id in &submitted {
        wait(&f.op_a, id).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/jobs?limit=2".to_string();
    loop {
        let page = get(&path, &f.op_a).await.json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|j| j["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/jobs?limit=2&cursor={c}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "pages repeat or are out of order");
    for id in &submitted {
        assert!(seen.contains(id), "{id} missing from the pages");
    }
}

/// A file that is not a valid component is refused at submission, with the
/// reason (it depends on the component alone), and leaves no job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_that_is_not_a_job_is_refused_at_submission_with_its_reason() {
    let f = fixture();
    let bytes = b"\0asm not really".to_vec();
    // Other tests submit jobs to the shared domain meanwhile: look for this file's.
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let r = call(
        "POST",
        &format!("/api/jobs?grant={}", f.grant_a),
        Some(&f.op_a),
        Some(("application/wasm", bytes)),
    )
    .await;
    let p = r.assert_problem(422);
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("component")), "{p}");
    let recorded = f.rt.jobs().list().unwrap();
    assert!(
        recorded.iter().all(|j| j.module_sha256 != digest),
        "no job was recorded for the refused file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_jobs_own_operator_can_cancel_it() {
    let f = fixture();
    let accepted = submit(&f.op_a, &f.grant_a, "hostile-loop", &[]).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let id = accepted.json()["job_id"].as_str().unwrap().to_string();
    // Bounded by the job's own time limit: it runs until stopped or timed out.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while get(&format!("/api/jobs/{id}"), &f.op_a).await.json()["state"] != "running" {
        assert!(std::time::Instant::now() < deadline, "job {id} never ran");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Another organization may not wait on it either (answered at once, not when it ends).
    get(&format!("/api/jobs/{id}?wait=60"), &f.op_b)
        .await
        .assert_problem(403);
    for bad in ["61", "-1", "soon"] {
        get(&format!("/api/jobs/{id}?wait={bad}"), &f.op_a)
            .await
            .assert_problem(400);
    }
    let cancel = format!("/api/jobs/{id}/cancel");
    call("POST", &cancel, Some(&f.op_b), None).await.assert_problem(403);
    assert!(denial_recorded(&f.op_b, "CancelJob"));
    call("POST", &format!("/api/jobs/{UNKNOWN_JOB}/cancel"), Some(&f.op_b), None)
        .await
        .assert_problem(403);
    let r = call("POST", &cancel, Some(&f.op_a), None).await;
    // 409 only if its own time limit ended it first.
    assert!(r.status == 202 || r.status == 409, "{}", r.body);
    // One view that waits sees it end, with no polling.
    let ended = get(&format!("/api/jobs/{id}?wait=60"), &f.op_a).await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    assert_eq!(ended.json()["state"], "failed");
    call("POST", &cancel, Some(&f.op_a), None).await.assert_problem(409);
}
