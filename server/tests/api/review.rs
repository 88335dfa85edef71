//! Votes: the reviewer is the token's holder; reviewers never decide for the
//! organization they work for, and no one votes on a request they authored.

use crate::support::{ORG_A, call, denial_recorded, fixture, get, run};
use inland_runtime::IssuedToken;
use serde_json::json;

async fn vote(id: &str, token: &IssuedToken, decision: &str) -> crate::support::Reply {
    let body = json!({ "decision": decision, "reason": "checked every cell against the report" });
    call(
        "POST",
        &format!("/api/outputs/{id}/votes"),
        Some(token),
        Some(("application/json", serde_json::to_vec(&body).unwrap())),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_independent_reviewer_decides_and_the_operator_sees_the_output_once_released() {
    let f = fixture();
    let (job, view) = run(&f.op_a, &f.grant_a, "district-stats", &[]).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    assert_eq!(view["released_outputs"], json!([]), "nothing is released yet");

    let queue = get("/api/outputs", &f.rev_free).await.json();
    let item = queue
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["job_id"] == job.as_str())
        .unwrap_or_else(|| panic!("no output of {job} in {queue}"))
        .clone();
    assert_eq!(item["organization"], ORG_A);
    assert_eq!(item["state"], "submitted");
    let id = item["id"].as_str().unwrap().to_string();

    // The operator cannot read its own quarantined output.
    get(&format!("/api/outputs/{id}"), &f.op_a).await.assert_problem(403);
    assert!(denial_recorded(&f.op_a, "ViewOutput"));
    // A reviewer working for org-a, the job's author holding a reviewer token,
    // an admin and an auditor may not decide.
    for who in [&f.rev_a, &f.rev_li, &f.admin, &f.auditor] {
        vote(&id, who, "approve").await.assert_problem(403);
        assert!(denial_recorded(who, "Vote"), "{}", who.record.name);
    }
    assert_eq!(
        get(&format!("/api/outputs/{id}"), &f.rev_free).await.json()["record"]["review"]["votes"],
        json!([]),
        "a refused vote was counted"
    );

    // An independent reviewer reads the whole page and decides.
    let page = get(&format!("/api/outputs/{id}"), &f.rev_free).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.json()["page"].as_str().unwrap().contains("district"));
    let decided = vote(&id, &f.rev_free, "approve").await;
    assert_eq!(decided.status, 200, "{}", decided.body);
    assert_eq!(decided.json()["state"], "approved");
    // Votes are final: a second one is refused by the review rules, with a problem.
    vote(&id, &f.rev_free, "reject").await.assert_problem(422);

    let after = get(&format!("/api/jobs/{job}"), &f.op_a).await.json();
    assert_eq!(after["released_outputs"], json!([id]));
    // The release is shown, but not the entity sketches kept for the
    // differencing audit: they add up each entity's contribution, and a
    // sketch of a few dozen people peels into their values.
    let released = get(&format!("/api/outputs/{id}"), &f.rev_free).await.json();
    assert_eq!(
        released["record"]["release"]["cells"],
        json!([]),
        "{}",
        released["record"]["release"]
    );
    assert!(released["record"]["release"]["rows"].as_u64().unwrap_or(0) > 0);
    // The ledger names the credential the vote came with.
    let voted = crate::support::ledger_events().into_iter().any(|e| {
        matches!(e, inland_runtime::Event::ReviewVoted { output_id, token: Some(t), .. }
            if output_id == id && t == f.rev_free.record.id)
    });
    assert!(voted, "the vote's token is not recorded");

    // Every row, page by page, for the reviewer; nothing for the operator.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = get(&format!("/api/outputs/{id}/rows?offset={offset}&limit=5"), &f.rev_free).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        assert_eq!(page["columns"][0], "district");
        seen.extend(page["rows"].as_array().unwrap().clone());
        match page["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => {
                assert_eq!(seen.len() as u64, page["total"].as_u64().unwrap());
                break;
            }
        }
    }
    assert!(seen.len() > 5, "{} rows", seen.len());
    get(&format!("/api/outputs/{id}/rows"), &f.op_a)
        .await
        .assert_problem(403);
    get(&format!("/api/outputs/{id}/rows?limit=0"), &f.rev_free)
        .await
        .assert_problem(400);
}

/// Issue #19: the operator takes its released output home as the signed
/// bundle, which verifies offline; before release, and for a name its job
/// never used, it gets the same refusal, so output names are no channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_downloads_a_released_output_as_a_bundle_that_verifies_offline() {
    use base64::Engine as _;
    let f = fixture();
    let (job, view) = run(&f.op_a, &f.grant_a, "district-stats", &[]).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    let queue = get("/api/outputs", &f.rev_free).await.json();
    let id = queue
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["job_id"] == job.as_str())
        .and_then(|o| o["id"].as_str())
        .unwrap_or_else(|| panic!("no output of {job} in {queue}"))
        .to_string();
    let unreleased = get(&format!("/api/outputs/{id}/bundle"), &f.op_a)
        .await
        .assert_problem(403);
    let unknown = get(&format!("/api/outputs/{job}/no-such-output/bundle"), &f.op_a)
        .await
        .assert_problem(403);
    assert_eq!(
        unreleased["detail"], unknown["detail"],
        "an unreleased name is told apart from an unused one"
    );
    assert!(denial_recorded(&f.op_a, "DownloadRelease"));

    assert_eq!(vote(&id, &f.rev_free, "approve").await.status, 200);
    for who in [&f.op_b, &f.auditor, &f.rev_free] {
        get(&format!("/api/outputs/{id}/bundle"), who).await.assert_problem(403);
    }
    let reply = get(&format!("/api/outputs/{id}/bundle"), &f.op_a).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let bundle = reply.json();
    assert_eq!(bundle["output_id"], id.as_str());
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for file in bundle["files"].as_array().unwrap() {
        let name = file["name"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(file["content_base64"].as_str().unwrap())
            .unwrap();
        std::fs::write(dir.path().join(name), bytes).unwrap();
        names.push(name.to_string());
    }
    assert!(
        names.iter().any(|n| n == "manifest.json") && names.iter().any(|n| n.ends_with(".parquet")),
        "{names:?}"
    );
    let public_key = hex::encode(inland_runtime::ledger::domain_public_key(f.rt.domain().root()).unwrap());
    let check = inland_runtime::verify_bundle(dir.path(), Some(&public_key)).unwrap();
    assert_eq!(check.problem, None);
    assert_eq!(check.output_id, id);
    let exported = crate::support::ledger_events()
        .into_iter()
        .any(|e| matches!(e, inland_runtime::Event::OutputExported { output_id, .. } if output_id == id));
    assert!(exported, "the download is recorded as an export");
}

/// Issue #19: reviewers (and admins) approve a component by hash through the
/// API; operators and auditors may not; a second approval and a malformed
/// hash are refused with a problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_approve_components_by_hash() {
    let f = fixture();
    let sha = "ab".repeat(32);
    let path = format!("/api/components/{sha}/approval");
    let body = || {
        Some((
            "application/json",
            br#"{"note":"read its source and its queries"}"#.to_vec(),
        ))
    };
    for who in [&f.op_a, &f.auditor] {
        call("POST", &path, Some(who), body()).await.assert_problem(403);
    }
    let approved = call("POST", &path, Some(&f.rev_free), body()).await;
    assert_eq!(approved.status, 201, "{}", approved.body);
    assert_eq!(approved.json()["approved_by"], "chen");
    call("POST", &path, Some(&f.admin), body()).await.assert_problem(409);
    // Withdrawn, it is approved no more; withdrawing again finds nothing.
    call("DELETE", &path, Some(&f.op_a), body()).await.assert_problem(403);
    let withdrawn = call("DELETE", &path, Some(&f.admin), body()).await;
    assert_eq!(withdrawn.status, 204, "{}", withdrawn.body);
    assert!(f.rt.governance().component_approval(&sha).unwrap().is_none());
    call("DELETE", &path, Some(&f.admin), body()).await.assert_problem(404);
    call("POST", "/api/components/XYZ/approval", Some(&f.admin), body())
        .await
        .assert_problem(422);
}
