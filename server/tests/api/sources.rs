//! Code accountability (#19): an operator submits the source archive of a
//! component with its job; the hash is recorded with the job and in the
//! ledger; reviewers read the archive. Another organization's archive
//! cannot be named, and a refused submission leaves no job behind.

use crate::support::{call, denial_recorded, fixture, get, ledger_events, wait, wasm};
use inland_runtime::Event;
use sha2::Digest as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_source_archive_is_recorded_with_it_and_read_by_reviewers() {
    let f = fixture();
    let archive = b"\x1f\x8b fake tar.gz of src/lib.rs for the district statistics".to_vec();
    // Not an archive type: refused before it is read.
    call(
        "POST",
        "/api/sources",
        Some(&f.op_a),
        Some(("text/plain", archive.clone())),
    )
    .await
    .assert_problem(415);
    // Auditors and reviewers submit no code.
    for who in [&f.auditor, &f.rev_free] {
        call(
            "POST",
            "/api/sources",
            Some(who),
            Some(("application/gzip", archive.clone())),
        )
        .await
        .assert_problem(403);
    }
    let stored = call(
        "POST",
        "/api/sources",
        Some(&f.op_a),
        Some(("application/gzip", archive.clone())),
    )
    .await;
    assert_eq!(stored.status, 201, "{}", stored.body);
    let sha = stored.json()["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha, hex::encode(sha2::Sha256::digest(&archive)));

    // Another organization cannot name it: 422, and no job is recorded.
    let before = f.rt.jobs().list().unwrap().len();
    let refused = call(
        "POST",
        &format!("/api/jobs?grant={}&source={sha}", f.grant_b),
        Some(&f.op_b),
        Some(("application/wasm", wasm("district-stats"))),
    )
    .await;
    let problem = refused.assert_problem(422);
    assert!(
        problem["detail"].as_str().unwrap().contains("not submitted by"),
        "{problem}"
    );
    assert_eq!(
        f.rt.jobs().list().unwrap().len(),
        before,
        "a refused submission left a job"
    );

    let accepted = call(
        "POST",
        &format!("/api/jobs?grant={}&source={sha}", f.grant_a),
        Some(&f.op_a),
        Some(("application/wasm", wasm("district-stats"))),
    )
    .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let job = accepted.json()["job_id"].as_str().unwrap().to_string();
    assert_eq!(wait(&f.op_a, &job).await["state"], "succeeded");
    assert_eq!(
        f.rt.jobs().get(&job).unwrap().source_sha256.as_deref(),
        Some(sha.as_str())
    );
    let recorded = ledger_events()
        .into_iter()
        .any(|e| matches!(e, Event::JobAdmitted { job_id, source_sha256: Some(s), .. } if job_id == job && s == sha));
    assert!(recorded, "the ledger names the source with the job");

    // Reviewers read it; the review view names it; others may not.
    let read = get(&format!("/api/jobs/{job}/source"), &f.rev_free).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body.as_bytes(), String::from_utf8_lossy(&archive).as_bytes());
    let output = f.rt.jobs().get(&job).unwrap().outputs[0].clone();
    let view = get(&format!("/api/outputs/{output}"), &f.rev_free).await.json();
    assert_eq!(view["source_sha256"], sha.as_str());
    for who in [&f.auditor, &f.op_b] {
        get(&format!("/api/jobs/{job}/source"), who).await.assert_problem(403);
    }
    assert!(denial_recorded(&f.op_b, "ViewSource"));
}
