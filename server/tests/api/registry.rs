//! The registry through the server (#19): admins register operators and
//! reviewers, issue and terminate grants and apply the domain policy while
//! the domain runs; no one else may; bad input changes nothing.

use crate::support::{call, denial_recorded, fixture, get};
use serde_json::{Value, json};

async fn post(path: &str, who: &inland_runtime::IssuedToken, body: Value) -> crate::support::Reply {
    call(
        "POST",
        path,
        Some(who),
        Some(("application/json", serde_json::to_vec(&body).unwrap())),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_keep_the_registry_through_the_server_and_no_one_else_may() {
    let f = fixture();
    let operator = json!({ "name": "org-registry", "type": "scenario",
        "qualifications": [{ "statement": "ISO 27001", "evidence_sha256": "ab".repeat(32) }] });
    for who in [&f.op_a, &f.rev_free, &f.auditor] {
        post("/api/admin/operators", who, operator.clone())
            .await
            .assert_problem(403);
        assert!(denial_recorded(who, "ManageDomain"), "{}", who.record.name);
    }
    let bad_type = json!({ "name": "org-x", "type": "everything" });
    post("/api/admin/operators", &f.admin, bad_type)
        .await
        .assert_problem(422);
    let added = post("/api/admin/operators", &f.admin, operator.clone()).await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.json()["status"], "pending");
    post("/api/admin/operators", &f.admin, operator)
        .await
        .assert_problem(409);

    // A grant for a pending operator is refused; once approved it is issued.
    let today = inland_runtime::Date::today();
    let grant = json!({ "operator": "org-registry", "datasets": ["residents"], "purpose": "p",
        "scenario": "s", "from": today.to_string(), "until": today.add_years(1).to_string() });
    let early = post("/api/admin/grants", &f.admin, grant.clone()).await;
    assert!(matches!(early.status, 409 | 422), "{}", early.body);
    post(
        "/api/admin/operators/org-registry/status",
        &f.admin,
        json!({ "status": "suspended" }),
    )
    .await
    .assert_problem(422);
    let approved = post(
        "/api/admin/operators/org-registry/status",
        &f.admin,
        json!({ "status": "approved" }),
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    let mut bad_date = grant.clone();
    bad_date["from"] = json!("tomorrow");
    post("/api/admin/grants", &f.admin, bad_date).await.assert_problem(422);
    let issued = post("/api/admin/grants", &f.admin, grant).await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let id = issued.json()["id"].as_str().unwrap().to_string();
    let listed = get("/api/admin/domain", &f.admin).await.json();
    assert!(
        listed["grants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == id.as_str())
    );

    // Terminated once; a second termination is refused.
    let end = json!({ "reason": "agreement", "note": "test over" });
    post(&format!("/api/admin/grants/{id}/termination"), &f.op_a, end.clone())
        .await
        .assert_problem(403);
    let ended = post(&format!("/api/admin/grants/{id}/termination"), &f.admin, end.clone()).await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    post(&format!("/api/admin/grants/{id}/termination"), &f.admin, end)
        .await
        .assert_problem(422);

    let reviewer = post("/api/admin/reviewers", &f.admin, json!({ "name": "rev-registry" })).await;
    assert_eq!(reviewer.status, 201, "{}", reviewer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_policy_with_problems_changes_nothing_and_says_where() {
    let f = fixture();
    let before = f.rt.policies().versions().unwrap().0.len();
    let bad = "[columns]\nresidents.income = \"no-such-class\"\n";
    let reply = call(
        "PUT",
        "/api/admin/domain-policy",
        Some(&f.admin),
        Some(("application/toml", bad.as_bytes().to_vec())),
    )
    .await;
    let problem = reply.assert_problem(422);
    assert!(!problem["problems"].as_array().unwrap().is_empty(), "{problem}");
    assert!(problem["problems"][0].as_str().unwrap().contains(':'), "{problem}");
    assert_eq!(
        f.rt.policies().versions().unwrap().0.len(),
        before,
        "a bad policy was applied"
    );
    call(
        "PUT",
        "/api/admin/domain-policy",
        Some(&f.rev_free),
        Some(("application/toml", bad.as_bytes().to_vec())),
    )
    .await
    .assert_problem(403);
    call(
        "PUT",
        "/api/admin/domain-policy",
        Some(&f.admin),
        Some(("application/json", b"{}".to_vec())),
    )
    .await
    .assert_problem(415);
    // The same policy again is a new version, recorded; what jobs see is unchanged.
    let same = call(
        "PUT",
        "/api/admin/domain-policy",
        Some(&f.admin),
        Some(("application/toml", inland_examples::POLICY.as_bytes().to_vec())),
    )
    .await;
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(f.rt.policies().versions().unwrap().0.len(), before + 1);
}

/// A dp grant through the server (#20): issued with its budget by an admin,
/// read by the operator that holds it, hidden from other organizations (an
/// unknown grant looks the same to them); half a dp budget is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dp_grant_is_issued_through_the_server_and_its_holder_reads_the_budget() {
    let f = fixture();
    let today = inland_runtime::Date::today();
    let grant = json!({ "operator": crate::support::ORG_A, "datasets": ["residents"], "purpose": "p",
        "scenario": "s", "from": today.to_string(), "until": today.add_years(1).to_string(),
        "dp_budget_rho": 2.0, "dp_query_rho": 0.1, "dp_dataset_budgets": { "residents": 1.5 } });
    let issued = post("/api/admin/grants", &f.admin, grant.clone()).await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let id = issued.json()["id"].as_str().unwrap().to_string();
    assert_eq!(issued.json()["privacy"]["mode"], "dp");

    let budget = get(&format!("/api/grants/{id}/budget"), &f.op_a).await;
    assert_eq!(budget.status, 200, "{}", budget.body);
    let b = budget.json();
    assert_eq!(
        (b["mode"].clone(), b["budget_rho"].clone(), b["spent_rho"].clone()),
        (json!("dp"), json!(2.0), json!(0.0))
    );
    assert_eq!(b["datasets"]["residents"], json!([1.5, 0.0]));
    assert_eq!(get(&format!("/api/grants/{id}/budget"), &f.rev_free).await.status, 200);
    // Another organization: 403, the same as for a grant that does not exist.
    get(&format!("/api/grants/{id}/budget"), &f.op_b)
        .await
        .assert_problem(403);
    get("/api/grants/g-000000000000/budget", &f.op_b)
        .await
        .assert_problem(403);
    get(&format!("/api/grants/{id}/budget"), &f.auditor)
        .await
        .assert_problem(403);
    // An exact grant says so.
    let exact = get(&format!("/api/grants/{}/budget", f.grant_a), &f.op_a).await;
    assert_eq!(exact.json()["mode"], "exact");

    let mut half = grant;
    half.as_object_mut().unwrap().remove("dp_query_rho");
    post("/api/admin/grants", &f.admin, half).await.assert_problem(422);
}
