//! #21 in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs) driven over WebDriver with
//! fantoccini. A reviewer signs in, sees the suppressed cells marked,
//! approves with a justification; a row-level output takes two reviewers;
//! the operator's token then downloads the released bundle, which verifies
//! offline (`inland verify-export` runs the same check). A reviewer of the
//! job's operator gets no vote button; a tampered file shows the alarm.
//! Every page passes axe-core's WCAG 2 A/AA rules (labels, contrast, …) and
//! fits 1280 px and 390 px widths. Screenshots go to the target directory
//! as artifacts (`console-screenshots/`), never into the repository.

use crate::support::{call_at, in_a_day, limits};
use base64::Engine;
use fantoccini::{Client, ClientBuilder, Locator};
use inland_runtime::{
    Date, Decision, Domain, DomainConfig, Event, GrantRequest, IssuedToken, JobRequest, OperatorStatus, OperatorType,
    Role, Runtime, VoteRequest,
};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn browser() -> Browser {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let driver = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{chromedriver}: {e}; install Debian's chromium and chromium-driver (.ci/run does)")
        });
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    });
    let Value::Object(caps) = caps else { unreachable!() };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    Browser {
        client,
        driver,
        _profile: profile,
    }
}

/// A domain of its own whose policy asks two approvals of every output,
/// served on a loopback port.
struct TwoReviewers {
    _dir: tempfile::TempDir,
    rt: Runtime,
    base: String,
    grant: String,
    operator: IssuedToken,
    chen: IssuedToken,
    zhao: IssuedToken,
    wu: IssuedToken,
}

fn two_reviewers() -> TwoReviewers {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("domain");
    let sources = dir.path().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    Domain::init_with(
        &root,
        DomainConfig {
            name: "console-test".into(),
            limits: limits(),
        },
    )
    .unwrap();
    let rt = Runtime::open(&root).unwrap();
    inland_examples::generate::write_examples(&sources, 3_000, 5).unwrap();
    rt.catalog()
        .register("residents", &sources.join("residents.parquet"), "residents")
        .unwrap();
    rt.catalog()
        .register("enterprises", &sources.join("enterprises.parquet"), "enterprises")
        .unwrap();
    let policy = inland_examples::POLICY.replace("approvals = 1 ", "approvals = 2 ");
    assert_ne!(policy, inland_examples::POLICY);
    rt.policies().apply_text(&policy, "policy.toml").unwrap().unwrap();
    rt.governance()
        .add_operator("org-a", OperatorType::Scenario, vec![])
        .unwrap();
    rt.governance()
        .set_operator_status("org-a", OperatorStatus::Approved, None)
        .unwrap();
    let today = Date::today();
    let grant = rt
        .governance()
        .issue_grant(GrantRequest {
            operator: "org-a".into(),
            datasets: vec!["residents".into()],
            purpose: "statistics".into(),
            scenario: "console tests".into(),
            from: today,
            until: today.add_years(1),
            products: vec![],
            quota: Default::default(),
            approved_components_only: false,
            privacy: Default::default(),
        })
        .unwrap()
        .id;
    for (name, org) in [("chen", None), ("zhao", None), ("wu", Some("org-a"))] {
        rt.reviews().add_reviewer(name, org).unwrap();
    }
    let access = rt.access();
    let issue = |role, name: &str, org: Option<&str>| access.issue(role, name, org, in_a_day()).unwrap();
    let (operator, chen, zhao, wu) = (
        issue(Role::Operator, "li", Some("org-a")),
        issue(Role::Reviewer, "chen", None),
        issue(Role::Reviewer, "zhao", None),
        issue(Role::Reviewer, "wu", None),
    );
    let base = inland_server::spawn_on_loopback(rt.clone()).unwrap();
    TwoReviewers {
        _dir: dir,
        rt,
        base,
        grant,
        operator,
        chen,
        zhao,
        wu,
    }
}

impl TwoReviewers {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Runs the SQL probe as org-a in the domain; returns its output's id.
    async fn probe(&self, sql: &str) -> String {
        let report = self
            .rt
            .jobs()
            .run(JobRequest {
                wasm: inland_examples::jobs::wasm(inland_examples::jobs::SQL_PROBE)
                    .unwrap()
                    .to_vec(),
                params: vec![("sql".into(), sql.into())],
                operator: "org-a".into(),
                grant: self.grant.clone(),
                source_sha256: None,
            })
            .await
            .unwrap();
        report
            .outputs
            .first()
            .unwrap_or_else(|| panic!("{sql}: {:?}", report.job.error))
            .id
            .clone()
    }

    /// Counts by service type without one resident, after the full counts
    /// were released: the gate fails that resident's cell (differencing).
    async fn flagged(&self) -> String {
        let one = self
            .probe("SELECT resident_id, service_type FROM residents LIMIT 1")
            .await;
        let table = self.rt.reviews().output_table(&one).unwrap();
        let pseudonym = inland_runtime::review_view::rows(&table, 0, 1).unwrap().rows[0][0]
            .clone()
            .unwrap();
        let counts = "SELECT service_type, count(*) AS n FROM residents";
        let full = self.probe(&format!("{counts} GROUP BY service_type")).await;
        for reviewer in ["chen", "zhao"] {
            let request = VoteRequest {
                reviewer: reviewer.into(),
                decision: Decision::Approve,
                reason: "the full counts".into(),
                overrides: vec![],
                justification: None,
            };
            self.rt.reviews().vote(&full, request).unwrap();
        }
        self.probe(&format!(
            "{counts} WHERE resident_id <> '{pseudonym}' GROUP BY service_type"
        ))
        .await
    }
}

async fn sign_in(c: &Client, d: &TwoReviewers, secret: &str) {
    c.goto(&d.url("/console/login")).await.unwrap();
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(secret)
        .await
        .unwrap();
    c.find(Locator::Css("main button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "form.filters").await;
    let at = c.current_url().await.unwrap();
    assert!(
        at.path().ends_with("/console/queue"),
        "signed in lands on the queue, not {at}"
    );
}

/// Waits for the page a form led to: an element only it has.
async fn wait_for(c: &Client, css: &str) {
    if c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .is_err()
    {
        let at = c.current_url().await.unwrap();
        let source = c.source().await.unwrap_or_default();
        panic!("no `{css}` at {at}: {source}");
    }
}

async fn sign_out(c: &Client) {
    c.find(Locator::Css("form.who button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#token").await;
}

/// Saves a screenshot of the page as an artifact.
async fn screenshot(c: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// axe-core's WCAG 2 A and AA rules on the page: no violation.
async fn accessible(c: &Client, page: &str) {
    let axe_path = std::env::var("INLAND_AXE").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/inland/npm/node_modules/axe-core/axe.min.js")
    });
    let axe = std::fs::read_to_string(&axe_path)
        .unwrap_or_else(|e| panic!("{axe_path}: {e}; `npm install axe-core` there (.ci/run does)"));
    c.execute(&format!("{axe}\nreturn true;"), vec![]).await.unwrap();
    let result = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } })
                .then(r => done(r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
                .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(result, json!([]), "accessibility violations on {page}");
}

/// The page fits the window's width: nothing but the table's own scroller overflows.
async fn fits(c: &Client, page: &str) {
    for (w, h) in [(1280, 900), (390, 844)] {
        c.set_window_size(w, h).await.unwrap();
        let overflow = c
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap_or(1) <= 0,
            "{page} overflows {w} px by {overflow}"
        );
    }
    c.set_window_size(1280, 900).await.unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

async fn approve(
    c: &Client,
    d: &TwoReviewers,
    id: &str,
    reason: &str,
    overrides: &[&str],
    justification: Option<&str>,
) {
    c.goto(&d.url(&format!("/console/outputs/{id}"))).await.unwrap();
    c.find(Locator::Css("#approve-reason"))
        .await
        .unwrap()
        .send_keys(reason)
        .await
        .unwrap();
    for o in overrides {
        c.find(Locator::Css(&format!("input[name=override][value='{o}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    if let Some(j) = justification {
        c.find(Locator::Css("#justification"))
            .await
            .unwrap()
            .send_keys(j)
            .await
            .unwrap();
    }
    c.find(Locator::Css("#approve button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "p[role=status]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_decide_in_a_real_browser_and_the_released_bundle_verifies() {
    let d = two_reviewers();
    let flagged = d.flagged().await;
    let review = d.rt.reviews().output(&flagged).unwrap().review.unwrap();
    assert_eq!((review.state.to_string().as_str(), review.required), ("submitted", 2));

    let b = browser().await;
    let c = &b.client;
    c.goto(&d.url("/console/login")).await.unwrap();
    accessible(c, "sign-in").await;
    fits(c, "sign-in").await;
    sign_in(c, &d, &d.chen.secret).await;
    assert!(
        c.find(Locator::Css(&format!("#queue a[href='/console/outputs/{flagged}']")))
            .await
            .is_ok()
    );
    screenshot(c, "queue").await;
    accessible(c, "the queue").await;
    fits(c, "the queue").await;

    // The flagged output: suppressed cells marked in place, with the reason.
    c.goto(&d.url(&format!("/console/outputs/{flagged}"))).await.unwrap();
    let marked = c.find_all(Locator::Css("td.cell-fail")).await.unwrap();
    assert!(!marked.is_empty(), "suppressed cells are marked");
    let why = marked[0].attr("title").await.unwrap().unwrap_or_default();
    assert!(why.starts_with("differencing (fail)"), "{why}");
    assert!(text(c, "#flagged").await.contains("differencing"));
    assert!(c.find(Locator::Css("#approve button")).await.is_ok(), "a vote button");
    screenshot(c, "output").await;
    accessible(c, "the output page").await;
    fits(c, "the output page").await;
    let justification = "the difference is one resident of a public count";
    approve(
        c,
        &d,
        &flagged,
        "counts by service type",
        &["differencing"],
        Some(justification),
    )
    .await;
    assert_eq!(text(c, "#state").await, "partially-reviewed");
    sign_out(c).await;

    // The second reviewer approves; both votes are shown once all are in.
    sign_in(c, &d, &d.zhao.secret).await;
    approve(c, &d, &flagged, "checked", &["differencing"], Some(justification)).await;
    assert_eq!(text(c, "#state").await, "approved");
    let votes = text(c, "#votes").await;
    assert!(votes.contains("chen") && votes.contains("zhao"), "{votes}");
    sign_out(c).await;
    let o = d.rt.reviews().output(&flagged).unwrap();
    assert!(o.review.unwrap().votes.iter().all(|v| v.overrides == ["differencing"]));

    // The operator's token downloads the released bundle; it verifies offline.
    let reply = call_at(
        &d.base,
        "GET",
        &format!("/api/outputs/{flagged}/bundle"),
        Some(&d.operator.secret),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let dir = tempfile::tempdir().unwrap();
    for file in reply.json()["files"].as_array().unwrap() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(file["content_base64"].as_str().unwrap())
            .unwrap();
        std::fs::write(dir.path().join(file["name"].as_str().unwrap()), bytes).unwrap();
    }
    let key = hex::encode(inland_runtime::ledger::domain_public_key(d.rt.domain().root()).unwrap());
    let check = inland_runtime::verify_bundle(dir.path(), Some(&key)).unwrap();
    assert_eq!(check.problem, None);
    assert_eq!(check.output_id, flagged);

    // A reviewer who works for the job's operator gets no vote button.
    let other = d.flagged().await;
    sign_in(c, &d, &d.wu.secret).await;
    c.goto(&d.url(&format!("/console/outputs/{other}"))).await.unwrap();
    assert!(c.find(Locator::Css("#approve")).await.is_err(), "no vote form");
    assert!(c.find(Locator::Css("#no-vote")).await.is_ok());
    sign_out(c).await;

    // A tampered file: the alarm, in red, and on the record.
    let o = d.rt.reviews().output(&other).unwrap();
    let path =
        d.rt.domain()
            .root()
            .join("quarantine")
            .join(&o.grant)
            .join(format!("{}.sealed", o.sha256));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    sign_in(c, &d, &d.chen.secret).await;
    c.goto(&d.url(&format!("/console/outputs/{other}"))).await.unwrap();
    let alarm = c.find(Locator::Css("#alarm")).await.unwrap();
    assert!(alarm.is_displayed().await.unwrap());
    let color = c
        .execute(
            "return getComputedStyle(document.querySelector('#alarm')).borderTopColor;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(color, json!("rgb(176, 0, 32)"), "the alarm is red");
    screenshot(c, "alarm").await;
    accessible(c, "the alarm").await;
    let events = d.rt.evidence().ledger().unwrap().entries().unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.event, Event::OutputUnreadable { output_id, .. } if *output_id == other))
    );
    sign_out(c).await;

    // An auditor's ledger page: searched, and checked like every page.
    let auditor =
        d.rt.access()
            .issue(Role::Auditor, "regulator", None, in_a_day())
            .unwrap();
    c.goto(&d.url("/console/login")).await.unwrap();
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(&auditor.secret)
        .await
        .unwrap();
    c.find(Locator::Css("main button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#entries").await;
    screenshot(c, "ledger").await;
    accessible(c, "the ledger").await;
    fits(c, "the ledger").await;

    // The auditor's reports and charts.
    c.goto(&d.url("/console/reports")).await.unwrap();
    wait_for(c, "#jobs-chart svg").await;
    screenshot(c, "reports").await;
    accessible(c, "the reports").await;
    fits(c, "the reports").await;
    sign_out(c).await;

    // The admin's pages, each checked the same way.
    let admin = d.rt.access().issue(Role::Admin, "root", None, in_a_day()).unwrap();
    sign_in(c, &d, &admin.secret).await;
    let terminate = format!("/console/grants/{}/terminate", d.grant);
    for (path, marker, name) in [
        ("/console/datasets", "#datasets", "datasets"),
        ("/console/datasets/residents", "#columns", "dataset"),
        ("/console/policy", "#policy-version", "policy"),
        ("/console/grants", "#grants", "grants"),
        (terminate.as_str(), "#confirm", "terminate"),
        ("/console/tokens", "#tokens", "tokens"),
    ] {
        c.goto(&d.url(path)).await.unwrap();
        wait_for(c, marker).await;
        screenshot(c, name).await;
        accessible(c, path).await;
        fits(c, path).await;
    }
    // A policy with a problem, typed into the form: shown at its line, in red.
    c.goto(&d.url("/console/policy")).await.unwrap();
    let area = c.find(Locator::Css("#policy")).await.unwrap();
    area.clear().await.unwrap();
    area.send_keys("[domain]\nmin_group_size = \"ten\"\n").await.unwrap();
    c.find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, "#policy-problems").await;
    assert!(
        text(c, "#policy-source li.bad").await.contains("2:"),
        "the problem at line 2"
    );
    screenshot(c, "policy-problems").await;
    accessible(c, "a policy with problems").await;
    fits(c, "a policy with problems").await;
    b.client.clone().close().await.unwrap();
}
