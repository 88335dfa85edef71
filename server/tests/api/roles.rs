//! Each role can do what the default policy allows, and gets a recorded 403 for the rest.

use crate::support::{call, denial_recorded, fixture, get};
use inland_runtime::IssuedToken;

const UNKNOWN_JOB: &str = "01900000-0000-7000-8000-00000000beef";
const REPORT: &str = "?from=2020-01-01&until=2100-12-31";

/// (method, path, action, [admin, operator, reviewer, auditor] statuses)
fn table() -> Vec<(&'static str, String, &'static str, [u16; 4])> {
    let f = fixture();
    vec![
        ("GET", "/api/whoami".into(), "Whoami", [200, 200, 200, 200]),
        ("GET", "/api/jobs".into(), "ListJobs", [200, 200, 200, 403]),
        ("GET", "/api/outputs".into(), "ListOutputs", [200, 403, 200, 403]),
        ("GET", "/api/ledger/export".into(), "ExportLedger", [200, 403, 403, 200]),
        (
            "GET",
            format!("/api/reports/usage{REPORT}"),
            "ViewReports",
            [200, 403, 403, 200],
        ),
        (
            "GET",
            format!("/api/reports/compliance{REPORT}"),
            "ViewReports",
            [200, 403, 403, 200],
        ),
        (
            "GET",
            "/api/admin/access-policy".into(),
            "ManageAccessPolicy",
            [200, 403, 403, 403],
        ),
        ("GET", "/api/admin/tokens".into(), "ManageTokens", [200, 403, 403, 403]),
        ("GET", "/api/admin/domain".into(), "ViewDomain", [200, 403, 403, 403]),
        // Only operators submit, and only under their own grants (the body is never read when refused).
        (
            "POST",
            format!("/api/jobs?grant={}", f.grant_a),
            "SubmitJob",
            [403, 202, 403, 403],
        ),
        // Admins and operators may stop jobs; of an id it does not know, only an admin learns so.
        (
            "POST",
            format!("/api/jobs/{UNKNOWN_JOB}/cancel"),
            "CancelJob",
            [404, 403, 403, 403],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_gets_exactly_what_the_default_policy_allows_and_every_refusal_is_recorded() {
    let f = fixture();
    let people: [(&str, &IssuedToken); 4] = [
        ("admin", &f.admin),
        ("operator", &f.op_a),
        ("reviewer", &f.rev_free),
        ("auditor", &f.auditor),
    ];
    for (method, path, action, expected) in table() {
        for ((role, token), want) in people.iter().zip(expected) {
            let body = (action == "SubmitJob").then(|| ("application/wasm", crate::support::wasm("noop")));
            let r = call(method, &path, Some(token), body).await;
            assert_eq!(r.status, want, "{role} {method} {path}: {}", r.body);
            if want == 403 {
                r.assert_problem(403);
                assert!(denial_recorded(token, action), "{role} {action} not recorded");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_names_the_tokens_holder_whatever_the_request_claims() {
    let f = fixture();
    let r = get("/api/whoami?name=root&role=admin", &f.op_a).await;
    assert_eq!(r.status, 200);
    let me = r.json();
    assert_eq!(me["role"], "operator");
    assert_eq!(me["name"], "li");
    assert_eq!(me["organization"], "org-a");
    assert_eq!(me["token_id"], f.op_a.record.id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_description_is_3_1_and_lists_every_path() {
    let r = call("GET", "/openapi.json", None, None).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/whoami",
        "/api/jobs",
        "/api/jobs/{id}",
        "/api/jobs/{id}/cancel",
        "/api/outputs",
        "/api/outputs/{job}/{name}",
        "/api/outputs/{job}/{name}/votes",
        "/api/ledger/export",
        "/api/reports/usage",
        "/api/reports/compliance",
        "/api/admin/access-policy",
        "/api/admin/tokens",
        "/api/admin/tokens/{id}",
        "/api/admin/domain",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}
