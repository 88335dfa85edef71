//! One domain and one server shared by every test: two operator
//! organizations with a grant each, reviewers (one working for org-a, one
//! named like org-a's user), and a token for each person.

use inland_runtime::{
    Date, Domain, DomainConfig, Event, GrantRequest, IssuedToken, Limits, OperatorStatus, OperatorType, Role, Runtime,
};
use serde_json::Value;
use std::sync::OnceLock;
use std::time::Duration;

pub const ORG_A: &str = "org-a";
pub const ORG_B: &str = "org-b";

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub rt: Runtime,
    pub base: String,
    pub grant_a: String,
    pub grant_b: String,
    pub admin: IssuedToken,
    pub auditor: IssuedToken,
    /// `li` of org-a.
    pub op_a: IssuedToken,
    /// `zhang` of org-b.
    pub op_b: IssuedToken,
    /// A reviewer working for no operator.
    pub rev_free: IssuedToken,
    /// A reviewer working for org-a.
    pub rev_a: IssuedToken,
    /// A reviewer named `li`, like org-a's user who submits the jobs.
    pub rev_li: IssuedToken,
    /// The largest component accepted, in bytes.
    pub module_limit: u64,
}

pub fn limits() -> Limits {
    Limits {
        timeout_secs: 5,
        memory_mib: 128,
        max_output_mib: 8,
        // Python components (componentize-py) are about 19 MiB.
        max_module_mib: 32,
        ..Limits::default()
    }
}

fn approved(rt: &Runtime, name: &str) {
    rt.governance()
        .add_operator(name, OperatorType::Scenario, vec![])
        .unwrap();
    rt.governance()
        .set_operator_status(name, OperatorStatus::Approved, None)
        .unwrap();
}

pub fn grant(rt: &Runtime, operator: &str) -> String {
    grant_for(rt, operator, &["residents"])
}

/// An exact grant of `datasets` to `operator` for a year.
pub fn grant_for(rt: &Runtime, operator: &str, datasets: &[&str]) -> String {
    let today = Date::today();
    rt.governance()
        .issue_grant(GrantRequest {
            operator: operator.into(),
            datasets: datasets.iter().map(|d| d.to_string()).collect(),
            purpose: "testing".into(),
            scenario: "tests".into(),
            from: today,
            until: today.add_years(1),
            products: vec![],
            quota: Default::default(),
            approved_components_only: false,
            privacy: Default::default(),
        })
        .unwrap()
        .id
}

pub fn in_a_day() -> u64 {
    now_ms() + 86_400_000
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(build)
}

/// A domain and server of a test's own, set up as the shared fixture is:
/// for tests that change what others read (the policy, grants, tokens).
pub fn fresh() -> Fixture {
    build()
}

fn build() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("domain");
    let sources = dir.path().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    Domain::init_with(
        &root,
        DomainConfig {
            name: "server-test".into(),
            limits: limits(),
        },
    )
    .unwrap();
    let rt = Runtime::open(&root).unwrap();
    inland_examples::generate::write_examples(&sources, 5_000, 11).unwrap();
    rt.catalog()
        .register("residents", &sources.join("residents.parquet"), "residents")
        .unwrap();
    rt.catalog()
        .register("enterprises", &sources.join("enterprises.parquet"), "enterprises")
        .unwrap();
    let policy = sources.join("policy.toml");
    std::fs::write(&policy, inland_examples::POLICY).unwrap();
    rt.policies().apply(&policy).unwrap().unwrap();
    approved(&rt, ORG_A);
    approved(&rt, ORG_B);
    let (grant_a, grant_b) = (grant(&rt, ORG_A), grant(&rt, ORG_B));
    rt.reviews().add_reviewer("chen", None).unwrap();
    rt.reviews().add_reviewer("wu", Some(ORG_A)).unwrap();
    rt.reviews().add_reviewer("li", None).unwrap();
    let access = rt.access();
    let issue = |role, name: &str, org: Option<&str>| access.issue(role, name, org, in_a_day()).unwrap();
    let fixture_tokens = (
        issue(Role::Admin, "root", None),
        issue(Role::Auditor, "regulator", None),
        issue(Role::Operator, "li", Some(ORG_A)),
        issue(Role::Operator, "zhang", Some(ORG_B)),
        issue(Role::Reviewer, "chen", None),
        issue(Role::Reviewer, "wu", None),
        issue(Role::Reviewer, "li", None),
    );
    let base = start_server(rt.clone());
    let (admin, auditor, op_a, op_b, rev_free, rev_a, rev_li) = fixture_tokens;
    Fixture {
        _dir: dir,
        rt,
        base,
        grant_a,
        grant_b,
        admin,
        auditor,
        op_a,
        op_b,
        rev_free,
        rev_a,
        rev_li,
        module_limit: limits().max_module_mib << 20,
    }
}

/// Starts a server of its own over `rt` (with the access policy stored in
/// the domain, or the default); returns its base URL.
pub fn start_server(rt: Runtime) -> String {
    inland_server::spawn_on_loopback(rt).unwrap()
}

/// An answer from the server.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// Asserts an RFC 9457 problem document with `status`.
    pub fn assert_problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.content_type, "application/problem+json", "{}", self.body);
        let p = self.json();
        assert_eq!(p["status"], status);
        assert!(p["type"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        assert!(p["detail"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        p
    }
}

/// A client for one request: each test has its own async runtime, and a
/// pooled connection would die with the test that opened it.
fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

/// Sends a request; `token` as a bearer token, `body` with its content type.
pub async fn call(method: &str, path: &str, token: Option<&IssuedToken>, body: Option<(&str, Vec<u8>)>) -> Reply {
    call_at(&fixture().base, method, path, token.map(|t| t.secret.as_str()), body).await
}

/// Sends a request to the server at `base`; `token` as a bearer token.
pub async fn call_at(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client().request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((content_type, bytes)) = body {
        req = req.header("content-type", content_type).body(bytes);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Reply {
        status,
        content_type,
        body: res.text().await.unwrap(),
    }
}

pub async fn get(path: &str, token: &IssuedToken) -> Reply {
    get_from(&fixture().base, path, token).await
}

/// `get` from the server at `base` (a `fresh` fixture's).
pub async fn get_from(base: &str, path: &str, token: &IssuedToken) -> Reply {
    call_at(base, "GET", path, Some(token.secret.as_str()), None).await
}

pub fn wasm(name: &str) -> Vec<u8> {
    inland_examples::jobs::wasm(name).unwrap().to_vec()
}

/// Submits an example job under `grant`; `params` as `key=value`.
pub async fn submit(token: &IssuedToken, grant: &str, job: &str, params: &[(&str, &str)]) -> Reply {
    submit_at(&fixture().base, token, grant, job, params).await
}

/// `submit` to the server at `base`.
pub async fn submit_at(base: &str, token: &IssuedToken, grant: &str, job: &str, params: &[(&str, &str)]) -> Reply {
    let mut query = form_query(&[("grant", grant)]);
    for (k, v) in params {
        query.push('&');
        query.push_str(&form_query(&[("param", &format!("{k}={v}"))]));
    }
    call_at(
        base,
        "POST",
        &format!("/api/jobs?{query}"),
        Some(token.secret.as_str()),
        Some(("application/wasm", wasm(job))),
    )
    .await
}

fn form_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Submits a job and waits, through the API, until it ends; returns its id and final view.
pub async fn run(token: &IssuedToken, grant: &str, job: &str, params: &[(&str, &str)]) -> (String, Value) {
    run_at(&fixture().base, token, grant, job, params).await
}

/// `run` on the server at `base`.
pub async fn run_at(
    base: &str,
    token: &IssuedToken,
    grant: &str,
    job: &str,
    params: &[(&str, &str)],
) -> (String, Value) {
    let accepted = submit_at(base, token, grant, job, params).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let id = accepted.json()["job_id"].as_str().unwrap().to_string();
    (id.clone(), wait_at(base, token, &id).await)
}

/// Polls a job's view until it has ended (bounded: a job's own time limit applies).
pub async fn wait(token: &IssuedToken, id: &str) -> Value {
    wait_at(&fixture().base, token, id).await
}

/// `wait` on the server at `base`.
pub async fn wait_at(base: &str, token: &IssuedToken, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let r = get_from(base, &format!("/api/jobs/{id}"), token).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        if ["succeeded", "failed", "refused"].contains(&v["state"].as_str().unwrap()) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "job {id} did not end: {v}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether the ledger records a denial of `action` to `token`.
pub fn denial_recorded(token: &IssuedToken, action: &str) -> bool {
    ledger_events()
        .iter()
        .any(|e| matches!(e, Event::AccessDenied { token: t, action: a, .. } if *t == token.record.id && a == action))
}

pub fn ledger_events() -> Vec<Event> {
    fixture()
        .rt
        .evidence()
        .ledger()
        .unwrap()
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}
