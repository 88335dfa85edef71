//! Admins manage the domain through the API: the access policy (replaced
//! only by a version that validates and keeps them in charge, each version
//! recorded, the invariants beside it whatever it says), tokens, and the
//! lists of datasets, operators and grants.

use crate::support::{call, call_at, fixture, get, start_server};
use inland_runtime::Event;
use inland_server::authz::DEFAULT_POLICY;
use serde_json::json;

async fn put_policy(base: &str, token: &str, text: &str) -> crate::support::Reply {
    call_at(
        base,
        "PUT",
        "/api/admin/access-policy",
        Some(token),
        Some(("text/plain", text.as_bytes().to_vec())),
    )
    .await
}

/// The default policy without the auditors' permit.
fn without_auditors() -> String {
    let start = DEFAULT_POLICY.find("// Auditors read the record").unwrap();
    DEFAULT_POLICY[..start].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_replaces_the_access_policy_only_with_one_that_validates_and_every_version_is_recorded() {
    let f = fixture();
    // A server of its own: the policy changes here leave the shared server's alone.
    let base = start_server(f.rt.clone());
    let (admin, auditor, op) = (&f.admin.secret, &f.auditor.secret, &f.op_a.secret);
    let current = call_at(&base, "GET", "/api/admin/access-policy", Some(admin), None).await;
    assert_eq!(current.status, 200, "{}", current.body);
    let version = current.json()["version"].as_u64().unwrap();

    // Bad input changes nothing: a policy naming an unknown action, one that
    // does not parse, one that would lock every admin out, the wrong media type.
    let unknown = r#"permit (principal, action == Inland::Action::"Exfiltrate", resource);"#;
    let p = put_policy(&base, admin, unknown).await.assert_problem(422);
    assert!(p["detail"].as_str().unwrap().contains("line 1"), "{p}");
    put_policy(&base, admin, "permit (principal,").await.assert_problem(422);
    let lockout = r#"permit (principal is Inland::Auditor, action == Inland::Action::"ExportLedger", resource);"#;
    let p = put_policy(&base, admin, lockout).await.assert_problem(422);
    assert!(p["detail"].as_str().unwrap().contains("no admin could undo it"), "{p}");
    call_at(
        &base,
        "PUT",
        "/api/admin/access-policy",
        Some(admin),
        Some(("application/json", b"{}".to_vec())),
    )
    .await
    .assert_problem(415);
    // Nobody but an admin may read or replace it.
    for who in [auditor, op] {
        let r = put_policy(&base, who, DEFAULT_POLICY).await;
        r.assert_problem(403);
    }
    let same = call_at(&base, "GET", "/api/admin/access-policy", Some(admin), None).await;
    assert_eq!(same.json()["version"].as_u64().unwrap(), version);

    // A policy without the auditors' permit takes effect at once, and on restart.
    let set = put_policy(&base, admin, &without_auditors()).await;
    assert_eq!(set.status, 200, "{}", set.body);
    let v = set.json();
    assert_eq!(v["version"].as_u64().unwrap(), version + 1);
    assert_eq!(v["set_by"], "root");
    let export = call_at(&base, "GET", "/api/ledger/export", Some(auditor), None).await;
    export.assert_problem(403);
    let restarted = start_server(f.rt.clone());
    call_at(&restarted, "GET", "/api/ledger/export", Some(auditor), None)
        .await
        .assert_problem(403);
    // The shared server keeps the rules it started with.
    assert_eq!(get("/api/ledger/export", &f.auditor).await.status, 200);

    // A policy that lets operators read quarantine: the invariants still forbid it.
    let open = format!(
        "{DEFAULT_POLICY}\n@id(\"too-open\")\npermit (principal is Inland::Operator, action in \
         [Inland::Action::\"ListOutputs\", Inland::Action::\"ViewOutput\"], resource);\n"
    );
    assert_eq!(put_policy(&base, admin, &open).await.status, 200);
    call_at(&base, "GET", "/api/outputs", Some(op), None)
        .await
        .assert_problem(403);
    assert_eq!(
        call_at(&base, "GET", "/api/ledger/export", Some(auditor), None)
            .await
            .status,
        200
    );

    // Every version is in the ledger with its hash.
    let sets: Vec<(u64, String)> = crate::support::ledger_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::AccessPolicySet { version, sha256, by } if by == "root" => Some((version, sha256)),
            _ => None,
        })
        .collect();
    assert!(
        sets.contains(&(version + 1, v["sha256"].as_str().unwrap().to_string())),
        "{sets:?}"
    );
    assert!(sets.iter().any(|(n, _)| *n == version + 2), "{sets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_issues_lists_and_revokes_tokens_and_reads_the_domain() {
    let f = fixture();
    let body = json!({ "role": "auditor", "name": "inspector", "expires_in_days": 30 });
    let issue = |token| {
        call(
            "POST",
            "/api/admin/tokens",
            Some(token),
            Some(("application/json", serde_json::to_vec(&body).unwrap())),
        )
    };
    issue(&f.op_a).await.assert_problem(403);
    let issued = issue(&f.admin).await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let v = issued.json();
    let (id, secret) = (
        v["record"]["id"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    );
    let base = &fixture().base;
    // The ledger names the admin who issued it.
    let named = crate::support::ledger_events()
        .into_iter()
        .any(|e| matches!(e, Event::TokenIssued { id: t, by: Some(by), .. } if t == id && by == "root"));
    assert!(named, "the issuing admin is recorded");
    let me = call_at(base, "GET", "/api/whoami", Some(&secret), None).await;
    assert_eq!(me.json()["name"], "inspector");
    let list = get("/api/admin/tokens", &f.admin).await;
    assert!(list.body.contains(&id) && !list.body.contains(&secret), "{}", list.body);
    assert!(!list.body.contains("sha256"), "no token hashes are listed");

    // Bad requests name the problem.
    let bad = json!({ "role": "king", "name": "x", "expires_in_days": 30 });
    call(
        "POST",
        "/api/admin/tokens",
        Some(&f.admin),
        Some(("application/json", serde_json::to_vec(&bad).unwrap())),
    )
    .await
    .assert_problem(422);

    let revoked = call("DELETE", &format!("/api/admin/tokens/{id}"), Some(&f.admin), None).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    call_at(base, "GET", "/api/whoami", Some(&secret), None)
        .await
        .assert_problem(401);
    call("DELETE", &format!("/api/admin/tokens/{id}"), Some(&f.admin), None)
        .await
        .assert_problem(409);
    call("DELETE", "/api/admin/tokens/t-nope", Some(&f.admin), None)
        .await
        .assert_problem(404);

    let domain = get("/api/admin/domain", &f.admin).await.json();
    assert!(
        domain["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "residents")
    );
    assert!(
        domain["operators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "org-a")
    );
    assert!(
        domain["grants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == f.grant_a.as_str())
    );
}
