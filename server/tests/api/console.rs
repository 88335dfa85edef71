//! The web console (#21) over plain HTTP: sign-in with an API token into an
//! HttpOnly, SameSite=Strict session; a reviewer sees flagged cells marked
//! in place and decides through a form that carries a CSRF token; no form
//! works without it; a reviewer of the job's operator gets no vote button
//! and a direct POST is refused; text from the data or the job is shown as
//! text and never runs; a tampered quarantine file is an alarm, recorded.

use crate::support::{denial_recorded, fixture, run};
use inland_runtime::{Event, IssuedToken};

const COUNTS: &str = "SELECT service_type, count(*) AS n FROM residents";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

pub struct Page {
    pub status: u16,
    pub location: String,
    pub set_cookie: Vec<String>,
    pub csp: String,
    pub body: String,
}

async fn send(req: reqwest::RequestBuilder) -> Page {
    let res = req.send().await.unwrap();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (location, csp) = (header("location"), header("content-security-policy"));
    let set_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(String::from))
        .collect();
    Page {
        status: res.status().as_u16(),
        location,
        set_cookie,
        csp,
        body: res.text().await.unwrap(),
    }
}

pub async fn get(cookie: &str, path: &str) -> Page {
    get_at(&fixture().base, cookie, path).await
}

/// A GET from the server at `base`.
pub async fn get_at(base: &str, cookie: &str, path: &str) -> Page {
    send(client().get(format!("{base}{path}")).header("cookie", cookie)).await
}

pub async fn post(cookie: &str, path: &str, fields: &[(&str, &str)]) -> Page {
    post_at(&fixture().base, cookie, path, fields).await
}

/// A form posted to the server at `base`.
pub async fn post_at(base: &str, cookie: &str, path: &str, fields: &[(&str, &str)]) -> Page {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    send(
        client()
            .post(format!("{base}{path}"))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
    )
    .await
}

/// Signs in with `token`; returns the `Cookie` header value of the session.
pub async fn sign_in(token: &IssuedToken) -> String {
    sign_in_at(&fixture().base, token).await
}

/// Signs in to the server at `base`.
pub async fn sign_in_at(base: &str, token: &IssuedToken) -> String {
    let page = post_at(base, "", "/console/login", &[("token", &token.secret)]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let home = match token.record.role {
        inland_runtime::Role::Auditor => "/console/ledger",
        _ => "/console/queue",
    };
    assert_eq!(page.location, home);
    let cookie = page
        .set_cookie
        .iter()
        .find(|c| c.starts_with("inland_session="))
        .expect("a session cookie")
        .clone();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    cookie.split(';').next().unwrap().to_string()
}

/// The CSRF token a page's forms carry.
pub fn csrf(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
    body[at..].split('"').next().unwrap().to_string()
}

/// Runs a probe as org-a; returns its output's id.
async fn probe(sql: &str) -> String {
    let f = fixture();
    let (job, view) = run(&f.op_a, &f.grant_a, inland_examples::jobs::SQL_PROBE, &[("sql", sql)]).await;
    assert_eq!(view["state"], "succeeded", "{sql}: {view}");
    f.rt.reviews()
        .outputs()
        .unwrap()
        .into_iter()
        .find(|o| o.job_id == job)
        .unwrap_or_else(|| panic!("no output of {job}"))
        .id
}

/// An output with a cell the gate fails: counts by service type without
/// one resident, after the full counts were released (differencing).
pub async fn flagged_output() -> String {
    let f = fixture();
    let one = probe("SELECT resident_id, service_type FROM residents LIMIT 1").await;
    let table = f.rt.reviews().output_table(&one).unwrap();
    let row = inland_runtime::review_view::rows(&table, 0, 1).unwrap().rows.remove(0);
    let pseudonym = row[0].clone().unwrap();
    let full = probe(&format!("{COUNTS} GROUP BY service_type")).await;
    if f.rt.reviews().output(&full).unwrap().release.is_none() {
        f.rt.reviews()
            .vote(
                &full,
                inland_runtime::VoteRequest {
                    reviewer: "chen".into(),
                    decision: inland_runtime::Decision::Approve,
                    reason: "the full counts".into(),
                    overrides: vec![],
                    justification: None,
                },
            )
            .unwrap();
    }
    probe(&format!(
        "{COUNTS} WHERE resident_id <> '{pseudonym}' GROUP BY service_type"
    ))
    .await
}

fn votes(id: &str) -> usize {
    let o = fixture().rt.reviews().output(id).unwrap();
    o.review.map(|r| r.votes.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_sees_flagged_cells_marked_and_approves_with_a_justification() {
    let f = fixture();
    let id = flagged_output().await;
    let cookie = sign_in(&f.rev_free).await;

    let queue = get(&cookie, "/console/queue").await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    assert!(
        queue.body.contains(&format!("href=\"/console/outputs/{id}\"")),
        "{}",
        queue.body
    );
    let row = queue
        .body
        .split(&format!("href=\"/console/outputs/{id}\""))
        .nth(1)
        .unwrap_or_default();
    let row = row.split("</tr>").next().unwrap_or_default();
    assert!(row.contains("differencing"), "the checks that fired are listed: {row}");

    let page = get(&cookie, &format!("/console/outputs/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("class=\"cell-fail\""),
        "suppressed cells are marked in place"
    );
    assert!(
        page.body.contains("title=\"differencing (fail)"),
        "each marked cell says why"
    );
    assert!(
        page.body.contains("id=\"flagged\""),
        "and the reasons are listed beside the table"
    );
    assert!(page.body.contains("id=\"approve\""), "an independent reviewer may vote");
    assert!(
        page.body.contains("value=\"differencing\""),
        "the failed check may be overridden"
    );

    // An override without a written justification is refused by the review rules.
    let token = csrf(&page.body);
    let path = format!("/console/outputs/{id}/vote");
    let refused = post(
        &cookie,
        &path,
        &[
            ("csrf", &token),
            ("decision", "approve"),
            ("reason", "ok"),
            ("override", "differencing"),
        ],
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("justification"), "{}", refused.body);
    assert_eq!(votes(&id), 0);

    let voted = post(
        &cookie,
        &path,
        &[
            ("csrf", &token),
            ("decision", "approve"),
            ("reason", "district totals are published anyway"),
            ("override", "differencing"),
            ("justification", "the small cells are public counts"),
        ],
    )
    .await;
    assert_eq!(voted.status, 303, "{}", voted.body);
    assert_eq!(voted.location, format!("/console/outputs/{id}?done=1"));
    let o = f.rt.reviews().output(&id).unwrap();
    let vote = &o.review.unwrap().votes[0];
    assert_eq!(vote.reviewer, "chen");
    assert_eq!(vote.overrides, ["differencing"]);
    assert_eq!(vote.justification.as_deref(), Some("the small cells are public counts"));
    // Votes are final: the form is gone.
    let after = get(&cookie, &format!("/console/outputs/{id}?done=1")).await;
    assert!(!after.body.contains("id=\"approve\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_form_works_without_its_sessions_csrf_token() {
    let f = fixture();
    let id = flagged_output().await;
    let mine = sign_in(&f.rev_free).await;
    let theirs = sign_in(&f.rev_li).await;
    let their_token = csrf(&get(&theirs, "/console/queue").await.body);
    let path = format!("/console/outputs/{id}/vote");
    for token in ["", "0000", their_token.as_str()] {
        let page = post(
            &mine,
            &path,
            &[("csrf", token), ("decision", "reject"), ("reason", "forged")],
        )
        .await;
        assert_eq!(page.status, 403, "csrf {token:?}: {}", page.body);
    }
    assert_eq!(votes(&id), 0, "a forged form changed nothing");
    // Signing out needs the token too.
    assert_eq!(post(&mine, "/console/logout", &[("csrf", "nope")]).await.status, 403);
    assert_eq!(get(&mine, "/console/queue").await.status, 200, "still signed in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_of_the_jobs_operator_gets_no_vote_button_and_a_direct_post_is_refused() {
    let f = fixture();
    let id = flagged_output().await;
    let cookie = sign_in(&f.rev_a).await;
    let page = get(&cookie, &format!("/console/outputs/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("id=\"approve\""), "no vote form");
    assert!(page.body.contains("id=\"no-vote\""));
    let posted = post(
        &cookie,
        &format!("/console/outputs/{id}/vote"),
        &[("csrf", &csrf(&page.body)), ("decision", "approve"), ("reason", "mine")],
    )
    .await;
    assert_eq!(posted.status, 403, "{}", posted.body);
    assert_eq!(votes(&id), 0);
    assert!(denial_recorded(&f.rev_a, "Vote"));
    // An operator's token opens no session: operators never read quarantine,
    // and their sign-ins must not crowd out reviewers'.
    let operator = post("", "/console/login", &[("token", &f.op_a.secret)]).await;
    assert_eq!(operator.status, 403, "{}", operator.body);
    assert!(operator.set_cookie.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_from_another_site_is_refused_before_it_is_read() {
    let f = fixture();
    let body = format!("token={}", f.rev_free.secret);
    for (name, value) in [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")] {
        let page = send(
            client()
                .post(format!("{}/console/login", f.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .header(name, value)
                .body(body.clone()),
        )
        .await;
        assert_eq!(page.status, 403, "{name}: {value}");
        assert!(page.set_cookie.is_empty(), "no session from another site");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_waits_until_every_page_of_rows_was_shown() {
    let f = fixture();
    let values: Vec<String> = (1..=250).map(|i| format!("({i})")).collect();
    let id = probe(&format!(
        "SELECT column1 AS value FROM (VALUES {}) t",
        values.join(", ")
    ))
    .await;
    let cookie = sign_in(&f.rev_free).await;
    let first = get(&cookie, &format!("/console/outputs/{id}")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body.contains("id=\"pages\""), "two pages of rows");
    assert!(
        !first.body.contains("id=\"approve\""),
        "no approval before every row was shown"
    );
    assert!(first.body.contains("id=\"read-all\""));
    assert!(first.body.contains("id=\"reject\""), "rejecting needs no reading");
    let token = csrf(&first.body);
    let path = format!("/console/outputs/{id}/vote");
    let early = post(
        &cookie,
        &path,
        &[("csrf", &token), ("decision", "approve"), ("reason", "looked")],
    )
    .await;
    assert_eq!(early.status, 409, "{}", early.body);
    assert_eq!(votes(&id), 0);
    let second = get(&cookie, &format!("/console/outputs/{id}?offset=200")).await;
    assert!(second.body.contains(">250<"), "the last rows are on the second page");
    assert!(
        second.body.contains("id=\"approve\""),
        "every page shown: the form is there"
    );
    let voted = post(
        &cookie,
        &path,
        &[("csrf", &token), ("decision", "approve"), ("reason", "read all")],
    )
    .await;
    assert_eq!(voted.status, 303, "{}", voted.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn characters_that_hide_or_reorder_text_are_shown_as_escapes() {
    let f = fixture();
    let id = probe("SELECT chr(8238) || 'abc' || chr(8203) AS note, chr(9) AS tab").await;
    let cookie = sign_in(&f.rev_free).await;
    let page = get(&cookie, &format!("/console/outputs/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("⟨U+202E⟩abc⟨U+200B⟩"), "{}", page.body);
    assert!(page.body.contains("⟨U+0009⟩"));
    assert!(!page.body.contains('\u{202E}'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_from_the_data_or_the_job_is_shown_as_text_and_never_runs() {
    let f = fixture();
    let sql = "SELECT district AS \"<script>alert(document)</script>\", count(*) AS n, \
               '<img src=x onerror=alert(this)>' AS note FROM residents GROUP BY district";
    let (job, view) = run(&f.op_a, &f.grant_a, inland_examples::jobs::SQL_PROBE, &[("sql", sql)]).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    let id =
        f.rt.reviews()
            .queue()
            .unwrap()
            .into_iter()
            .find(|o| o.job_id == job)
            .unwrap()
            .id;
    let cookie = sign_in(&f.rev_free).await;
    let page = get(&cookie, &format!("/console/outputs/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("&lt;script&gt;alert(document)&lt;/script&gt;"),
        "the column name is text"
    );
    assert!(
        page.body.contains("&lt;img src=x onerror=alert(this)&gt;"),
        "the cell is text"
    );
    assert!(!page.body.contains("<script"), "nothing the job wrote became markup");
    assert!(!page.body.contains("<img"));
    assert!(
        page.csp.contains("default-src 'none'") && !page.csp.contains("script-src"),
        "{}",
        page.csp
    );
    // A reviewer's reason is text too, once the votes are shown.
    let voted = post(
        &cookie,
        &format!("/console/outputs/{id}/vote"),
        &[
            ("csrf", &csrf(&page.body)),
            ("decision", "reject"),
            ("reason", "<b onmouseover=alert(this)>no</b>"),
        ],
    )
    .await;
    assert_eq!(voted.status, 303, "{}", voted.body);
    let after = get(&cookie, &format!("/console/outputs/{id}")).await;
    assert!(
        after.body.contains("&lt;b onmouseover=alert(this)&gt;no&lt;/b&gt;"),
        "{}",
        after.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_live_session_every_page_sends_you_to_sign_in() {
    let f = fixture();
    for cookie in ["", "inland_session=deadbeef", "inland_session="] {
        let page = get(cookie, "/console/queue").await;
        assert_eq!(page.status, 303, "{cookie}");
        assert_eq!(page.location, "/console/login");
    }
    // Two session cookies (one planted to shadow the other) are no session.
    let mine = sign_in(&f.rev_free).await;
    let twice = get(&format!("{mine}; inland_session=planted"), "/console/queue").await;
    assert_eq!(twice.status, 303);
    let bad = post("", "/console/login", &[("token", "inl_not_a_token")]).await;
    assert_eq!(bad.status, 401);
    assert!(bad.set_cookie.is_empty(), "no session for a bad token");
    // Revoking the token ends its sessions at once.
    let temporary =
        f.rt.access()
            .issue(inland_runtime::Role::Reviewer, "chen", None, crate::support::in_a_day())
            .unwrap();
    let session = sign_in(&temporary).await;
    assert_eq!(get(&session, "/console/queue").await.status, 200);
    f.rt.access().revoke(&temporary.record.id).unwrap();
    assert_eq!(get(&session, "/console/queue").await.status, 303);
    // Signing out ends the session on the server, not only in the browser.
    let cookie = sign_in(&f.auditor).await;
    let page = get(&cookie, "/console/queue").await;
    let out = post(&cookie, "/console/logout", &[("csrf", &csrf(&page.body))]).await;
    assert_eq!(out.status, 303);
    assert_eq!(get(&cookie, "/console/queue").await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_by_default_and_english_on_request() {
    let f = fixture();
    let cookie = sign_in(&f.rev_free).await;
    let zh = get(&cookie, "/console/queue").await;
    assert!(
        zh.body.contains("lang=\"zh-CN\"") && zh.body.contains("待审核队列"),
        "{}",
        zh.body
    );
    let switch = get(&cookie, "/console/lang/en").await;
    assert_eq!(switch.status, 303);
    let lang = switch.set_cookie[0].split(';').next().unwrap().to_string();
    let en = get(&format!("{cookie}; {lang}"), "/console/queue").await;
    assert!(
        en.body.contains("lang=\"en\"") && en.body.contains("Release queue"),
        "{}",
        en.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_quarantine_file_raises_the_alarm_and_is_recorded() {
    let f = fixture();
    let id = flagged_output().await;
    let o = f.rt.reviews().output(&id).unwrap();
    let path =
        f.rt.domain()
            .root()
            .join("quarantine")
            .join(&o.grant)
            .join(format!("{}.sealed", o.sha256));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let cookie = sign_in(&f.rev_free).await;
    let page = get(&cookie, &format!("/console/outputs/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"alarm\""), "{}", page.body);
    assert!(
        !page.body.contains("id=\"content\""),
        "no table pretends to be the output"
    );
    assert!(!page.body.contains("id=\"approve\""), "nothing to approve");
    let events = crate::support::ledger_events();
    assert!(
        events.iter().any(
            |e| matches!(e, Event::OutputUnreadable { output_id, reader } if *output_id == id && reader == "chen")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_searches_the_ledger_proves_an_entry_and_verifies_the_log() {
    let f = fixture();
    let (job, _) = run(&f.op_a, &f.grant_a, "noop", &[]).await;
    let cookie = sign_in(&f.auditor).await;
    let found = get(&cookie, &format!("/console/ledger?type=job_admitted&job={job}")).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(
        found.body.matches("<tr><td><a href=\"/console/ledger/entries/").count(),
        1,
        "{}",
        found.body
    );
    assert!(found.body.contains(&job));
    // Searched by time: the day it ran finds it, another day does not, a bad date is refused.
    let today = inland_runtime::Date::today();
    let on = |day: &str| format!("/console/ledger?type=job_admitted&job={job}&from={day}&until={day}");
    let that_day = get(&cookie, &on(&today.to_string())).await;
    assert!(that_day.body.contains("/console/ledger/entries/") && that_day.body.contains(&job));
    let other_day = get(&cookie, &on("2000-01-01")).await;
    assert_eq!(other_day.status, 200);
    assert!(
        !other_day.body.contains("/console/ledger/entries/"),
        "{}",
        other_day.body
    );
    assert_eq!(get(&cookie, &on("2000-02-30")).await.status, 400);
    let seq = found
        .body
        .split("/console/ledger/entries/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let entry = get(&cookie, &format!("/console/ledger/entries/{seq}")).await;
    assert_eq!(entry.status, 200);
    assert!(entry.body.contains("job_admitted") && entry.body.contains(&job));
    assert!(entry.body.contains("id=\"proof\""));
    let verified = get(&cookie, "/console/ledger/verify").await;
    assert!(verified.body.contains("id=\"verified\""), "{}", verified.body);
    // Reviewers do not read the ledger: refused, and the refusal recorded.
    let reviewer = sign_in(&f.rev_free).await;
    assert_eq!(get(&reviewer, "/console/ledger").await.status, 403);
    assert!(denial_recorded(&f.rev_free, "ViewLedger"));
}
