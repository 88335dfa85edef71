//! Authentication: missing, malformed, unknown, revoked and expired tokens get 401.

use crate::support::{ORG_B, fixture, get, in_a_day, now_ms};
use inland_runtime::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_expired_tokens_get_401() {
    let f = fixture();
    let access = f.rt.access();
    let t = access.issue(Role::Operator, "temp", Some(ORG_B), in_a_day()).unwrap();
    assert_eq!(get("/api/whoami", &t).await.status, 200);
    access.revoke(&t.record.id).unwrap();
    let p = get("/api/whoami", &t).await.assert_problem(401);
    assert!(p["detail"].as_str().unwrap().contains("revoked"), "{p}");

    let expires = now_ms() + 20;
    let short = access.issue(Role::Auditor, "brief", None, expires).unwrap();
    while now_ms() <= expires {
        std::thread::yield_now();
    }
    let p = get("/api/whoami", &short).await.assert_problem(401);
    assert!(p["detail"].as_str().unwrap().contains("expired"), "{p}");

    let events = crate::support::ledger_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, inland_runtime::Event::TokenRevoked { id } if *id == t.record.id))
    );
    assert!(events.iter().any(
        |e| matches!(e, inland_runtime::Event::TokenIssued { id, role, .. } if *id == short.record.id && role == "auditor")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_get_401() {
    let f = fixture();
    let client = reqwest::Client::new();
    let mut forged = f.op_a.secret.clone();
    forged.pop();
    forged.push(if f.op_a.secret.ends_with('A') { 'B' } else { 'A' });
    let headers = [
        None,
        Some("Basic cm9vdDpyb290".to_string()),
        Some("Bearer".to_string()),
        Some("Bearer not-a-token".to_string()),
        Some(format!("Bearer {forged}")),
        Some(format!("Bearer inl_{}_{}", "0".repeat(12), "A".repeat(43))),
    ];
    for h in headers {
        let mut req = client.get(format!("{}/api/jobs", f.base));
        if let Some(h) = &h {
            req = req.header("authorization", h);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), 401, "{h:?}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
}

#[test]
fn tokens_are_stored_only_as_hashes() {
    let f = fixture();
    let listed = f.rt.access().list().unwrap();
    let mine = listed.iter().find(|t| t.id == f.op_a.record.id).unwrap();
    assert_ne!(mine.sha256, f.op_a.secret);
    assert!(!serde_json::to_string(&listed).unwrap().contains(&f.op_a.secret));
    assert!(f.op_a.secret.starts_with(inland_runtime::TOKEN_PREFIX));
}
