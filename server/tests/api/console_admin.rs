//! The console's admin and auditor pages (#21): datasets with their columns
//! under the policy, the policy applied from a form with its problems shown
//! at their line and column, grants terminated after a confirmation, tokens
//! issued (secret shown once) and revoked, and the auditor's reports,
//! charts and audit package. Tests that change what others read run on a
//! domain of their own (`fresh`).

use crate::console::{csrf, get, get_at, post, post_at, sign_in, sign_in_at};
use crate::support::{denial_recorded, fixture, fresh, run};
use inland_runtime::{Event, GrantStatus};

fn events(rt: &inland_runtime::Runtime) -> Vec<Event> {
    rt.evidence()
        .ledger()
        .unwrap()
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sees_each_dataset_with_its_columns_under_the_policy() {
    let f = fixture();
    let admin = sign_in(&f.admin).await;
    let list = get(&admin, "/console/datasets").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("href=\"/console/datasets/residents\""));
    assert!(list.body.contains("href=\"/console/datasets/enterprises\""));
    let residents = get(&admin, "/console/datasets/residents").await;
    assert_eq!(residents.status, 200, "{}", residents.body);
    for (column, class, access) in [
        ("mobile", "direct-identifier", "mask (keep-last n=4)"),
        ("income", "sensitive", "aggregate-only"),
        ("district", "quasi-identifier", "dimension"),
        ("name", "direct-identifier", "deny"),
    ] {
        let row = format!("<td>{column}</td>");
        let at = residents
            .body
            .find(&row)
            .unwrap_or_else(|| panic!("{column}: {}", residents.body));
        let rest = &residents.body[at..];
        let end = rest.find("</tr>").unwrap();
        assert!(
            rest[..end].contains(class) && rest[..end].contains(access),
            "{column}: {}",
            &rest[..end]
        );
    }
    assert!(residents.body.contains("resident_id"), "the entity column");
    assert_eq!(get(&admin, "/console/datasets/nothing").await.status, 404);
    // Reviewers keep no registry: refused, and the refusal recorded.
    let reviewer = sign_in(&f.rev_free).await;
    assert_eq!(get(&reviewer, "/console/datasets").await.status, 403);
    assert!(denial_recorded(&f.rev_free, "ViewDomain"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_with_problems_is_shown_at_its_line_and_column_and_changes_nothing() {
    let f = fresh();
    let admin = sign_in_at(&f.base, &f.admin).await;
    let page = get_at(&f.base, &admin, "/console/policy").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (before, _) = f.rt.policies().versions().unwrap();
    let current = before.last().unwrap();
    assert!(page.body.contains(&current.sha256), "the hash of the version in force");
    // A column the catalog does not have, on a known line.
    let bad = inland_examples::POLICY.replacen("income = {", "incom = {", 1);
    let line = bad.lines().position(|l| l.starts_with("incom = {")).unwrap() + 1;
    let token = csrf(&page.body);
    let refused = post_at(
        &f.base,
        &admin,
        "/console/policy",
        &[("csrf", &token), ("policy", &bad)],
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("id=\"policy-problems\""), "{}", refused.body);
    assert!(
        refused
            .body
            .contains(&format!("{line}:1: `incom` is not a column of `residents`")),
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body.matches("<li class=\"bad\">").count(),
        1,
        "the one line is marked"
    );
    assert_eq!(
        f.rt.policies().versions().unwrap().0.len(),
        before.len(),
        "nothing changed"
    );
    // Without the form's token nothing is read.
    let forged = post_at(
        &f.base,
        &admin,
        "/console/policy",
        &[("policy", inland_examples::POLICY)],
    )
    .await;
    assert_eq!(forged.status, 403);
    // A good one goes into force, as a new version (CR LF from the browser kept as LF).
    let crlf = inland_examples::POLICY.replace('\n', "\r\n");
    let applied = post_at(
        &f.base,
        &admin,
        "/console/policy",
        &[("csrf", &token), ("policy", &crlf)],
    )
    .await;
    assert_eq!(applied.status, 303, "{}", applied.body);
    let (after, text) = f.rt.policies().versions().unwrap();
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(text.as_deref(), Some(inland_examples::POLICY));
    assert_eq!(
        applied.location,
        format!("/console/policy?applied={}", after.last().unwrap().version)
    );
    // Auditors read nothing here, and a reviewer cannot apply one.
    let reviewer = sign_in_at(&f.base, &f.rev_free).await;
    let reviewer_page = get_at(&f.base, &reviewer, "/console/queue").await;
    let tried = post_at(
        &f.base,
        &reviewer,
        "/console/policy",
        &[
            ("csrf", &csrf(&reviewer_page.body)),
            ("policy", inland_examples::POLICY),
        ],
    )
    .await;
    assert_eq!(tried.status, 403);
    assert_eq!(f.rt.policies().versions().unwrap().0.len(), after.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_is_terminated_only_after_its_confirmation() {
    let f = fresh();
    let admin = sign_in_at(&f.base, &f.admin).await;
    let list = get_at(&f.base, &admin, "/console/grants").await;
    assert_eq!(list.status, 200, "{}", list.body);
    let confirm_path = format!("/console/grants/{}/terminate", f.grant_a);
    assert!(list.body.contains(&format!("href=\"{confirm_path}\"")), "{}", list.body);
    let confirm = get_at(&f.base, &admin, &confirm_path).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("id=\"confirm\"") && confirm.body.contains("class=\"alarm\""));
    let token = csrf(&confirm.body);
    let grant = |id: &str| {
        f.rt.governance()
            .grants()
            .unwrap()
            .into_iter()
            .find(|g| g.id == id)
            .unwrap()
    };
    // Unconfirmed: nothing happens.
    let unconfirmed = post_at(
        &f.base,
        &admin,
        &confirm_path,
        &[("csrf", &token), ("reason", "breach"), ("note", "data sold")],
    )
    .await;
    assert_eq!(unconfirmed.status, 422);
    assert_eq!(grant(&f.grant_a).status, GrantStatus::Active);
    // A reviewer's session, even with its own token, is refused before anything.
    let reviewer = sign_in_at(&f.base, &f.rev_free).await;
    let rpage = get_at(&f.base, &reviewer, "/console/queue").await;
    let tried = post_at(
        &f.base,
        &reviewer,
        &confirm_path,
        &[
            ("csrf", &csrf(&rpage.body)),
            ("reason", "breach"),
            ("note", "x"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(tried.status, 403);
    assert_eq!(grant(&f.grant_a).status, GrantStatus::Active);
    let done = post_at(
        &f.base,
        &admin,
        &confirm_path,
        &[
            ("csrf", &token),
            ("reason", "breach"),
            ("note", "<script>alert(1)</script> data sold"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(grant(&f.grant_a).status, GrantStatus::Terminated);
    assert_eq!(grant(&f.grant_b).status, GrantStatus::Active, "only that grant");
    assert!(
        events(&f.rt)
            .iter()
            .any(|e| matches!(e, Event::GrantTerminated { grant, .. } if *grant == f.grant_a))
    );
    // The note is on the record, and the auditor's ledger page shows it as text.
    let auditor = sign_in_at(&f.base, &f.auditor).await;
    let ledger = get_at(&f.base, &auditor, "/console/ledger?type=grant_terminating").await;
    assert!(
        ledger.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        ledger.body
    );
    assert!(!ledger.body.contains("<script"));
    // Terminated grants offer no second termination.
    let again = get_at(&f.base, &admin, &confirm_path).await;
    assert_eq!(again.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_issues_a_token_whose_secret_is_shown_once_and_revokes_it() {
    let f = fresh();
    let admin = sign_in_at(&f.base, &f.admin).await;
    let page = get_at(&f.base, &admin, "/console/tokens").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = csrf(&page.body);
    let before = f.rt.access().list().unwrap().len();
    let bad = post_at(
        &f.base,
        &admin,
        "/console/tokens",
        &[
            ("csrf", &token),
            ("role", "superuser"),
            ("name", "zhao"),
            ("days", "30"),
        ],
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let too_long = post_at(
        &f.base,
        &admin,
        "/console/tokens",
        &[
            ("csrf", &token),
            ("role", "reviewer"),
            ("name", "zhao"),
            ("days", "400"),
        ],
    )
    .await;
    assert_eq!(too_long.status, 422);
    // A reviewer token needs a registered reviewer: the rule's own words.
    let unregistered = post_at(
        &f.base,
        &admin,
        "/console/tokens",
        &[("csrf", &token), ("role", "reviewer"), ("name", "zhao"), ("days", "30")],
    )
    .await;
    assert_eq!(unregistered.status, 422);
    assert!(
        unregistered.body.contains("not a registered reviewer"),
        "{}",
        unregistered.body
    );
    assert_eq!(f.rt.access().list().unwrap().len(), before, "nothing issued");
    let posted = post_at(
        &f.base,
        &admin,
        "/console/tokens",
        &[("csrf", &token), ("role", "reviewer"), ("name", "chen"), ("days", "30")],
    )
    .await;
    // Issued, then off to the list (a reload repeats no issue), where the secret is shown once.
    assert_eq!(posted.status, 303, "{}", posted.body);
    assert_eq!(f.rt.access().list().unwrap().len(), before + 1);
    let issued = get_at(&f.base, &admin, &posted.location).await;
    assert_eq!(issued.status, 200);
    let marker = "id=\"secret\">";
    let at = issued.body.find(marker).unwrap() + marker.len();
    let secret = issued.body[at..].split('<').next().unwrap().to_string();
    let who =
        f.rt.access()
            .verify(&secret)
            .unwrap()
            .unwrap_or_else(|e| panic!("{e:?}: {secret}"));
    assert_eq!((who.name.as_str(), who.role), ("chen", inland_runtime::Role::Reviewer));
    // Shown once: the same page again, or the list, never carries it.
    for path in [posted.location.as_str(), "/console/tokens"] {
        let listed = get_at(&f.base, &admin, path).await;
        assert!(listed.body.contains(&who.token_id));
        assert!(!listed.body.contains(&secret), "{path}");
    }
    // A crafted link cannot make the page claim a live token was revoked.
    let claimed = get_at(&f.base, &admin, &format!("/console/tokens?revoked={}", who.token_id)).await;
    assert!(!claimed.body.contains("id=\"revoked\""));
    let revoked = post_at(
        &f.base,
        &admin,
        &format!("/console/tokens/{}/revoke", who.token_id),
        &[("csrf", &token)],
    )
    .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    assert!(f.rt.access().verify(&secret).unwrap().is_err(), "revoked at once");
    // An auditor manages no tokens.
    let auditor = sign_in_at(&f.base, &f.auditor).await;
    assert_eq!(get_at(&f.base, &auditor, "/console/tokens").await.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_in_a_dataset_description_or_column_name_is_shown_as_text() {
    let f = fresh();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("notes.csv");
    std::fs::write(&csv, "id,\"<img src=x onerror=alert(1)>\"\n1,a\n2,b\n").unwrap();
    f.rt.catalog()
        .register("notes", &csv, "<script>alert(document.cookie)</script>\u{202E}exe.txt")
        .unwrap();
    let admin = sign_in_at(&f.base, &f.admin).await;
    for path in ["/console/datasets", "/console/datasets/notes"] {
        let page = get_at(&f.base, &admin, path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body
                .contains("&lt;script&gt;alert(document.cookie)&lt;/script&gt;"),
            "{path}"
        );
        assert!(!page.body.contains("<script"), "{path}");
        assert!(!page.body.contains("<img"), "{path}");
    }
    let show = get_at(&f.base, &admin, "/console/datasets/notes").await;
    assert!(
        show.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{}",
        show.body
    );
    // A character that reverses the text after it is shown, not obeyed.
    assert!(show.body.contains("⟨U+202E⟩exe.txt") && !show.body.contains('\u{202E}'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_reads_reports_and_charts_and_takes_an_audit_package_that_verifies() {
    let f = fixture();
    run(&f.op_a, &f.grant_a, "noop", &[]).await;
    // An output of org-a whose checks fired.
    crate::console::flagged_output().await;
    let auditor = sign_in(&f.auditor).await;
    let page = get(&auditor, "/console/reports").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for id in [
        "usage",
        "jobs-chart",
        "decisions-chart",
        "checks-chart",
        "compliance",
        "package",
    ] {
        assert!(page.body.contains(&format!("id=\"{id}\"")), "{id}: {}", page.body);
    }
    let chart = &page.body[page.body.find("id=\"jobs-chart\"").unwrap()..];
    assert!(chart.contains("<svg") && chart.contains("<rect"), "bars drawn");
    assert!(chart.contains("org-a"), "the operator in the legend");
    let today = inland_runtime::Date::today();
    let usage = f.rt.evidence().usage_report(None, today, today).unwrap();
    let filtered = get(&auditor, &format!("/console/reports?from={today}&until={today}")).await;
    assert!(
        filtered.body.contains(&format!("<dd>{}</dd>", usage.jobs_run)),
        "the report's own figure"
    );
    let section = |body: &str, id: &str| {
        let at = body.find(&format!("id=\"{id}\"")).unwrap();
        body[at..].split("</figure>").next().unwrap().to_string()
    };
    assert!(
        section(&page.body, "checks-chart").contains("<rect"),
        "org-a's checks fired"
    );
    // Filtered to an operator, every chart counts only that operator's outputs.
    let nobody = get(&auditor, "/console/reports?operator=nobody").await;
    for id in ["jobs-chart", "decisions-chart", "checks-chart"] {
        assert!(!section(&nobody.body, id).contains("<rect"), "{id}");
    }
    assert_eq!(get(&auditor, "/console/reports?from=2026-13-01").await.status, 400);
    assert_eq!(
        get(&auditor, "/console/reports?from=2020-01-01&until=2026-01-01")
            .await
            .status,
        400
    );
    // The audit package: the signed export an auditor verifies offline. It
    // signs a new checkpoint, so it is a form with the session's token.
    assert_eq!(get(&auditor, "/console/reports/package").await.status, 405);
    assert_eq!(post(&auditor, "/console/reports/package", &[]).await.status, 403);
    let package = post(&auditor, "/console/reports/package", &[("csrf", &csrf(&page.body))]).await;
    assert_eq!(package.status, 200, "{}", package.body);
    let json: serde_json::Value = serde_json::from_str(&package.body).unwrap();
    assert_eq!(json["format"], "inland-audit-package/1");
    assert!(json["usage"]["jobs_run"].as_u64().unwrap() >= 1);
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in json["files"].as_object().unwrap() {
        std::fs::write(dir.path().join(name), content.as_str().unwrap()).unwrap();
    }
    let report = inland_runtime::ledger::verify_export(dir.path(), None).unwrap();
    assert!(report.problem.is_none() && report.entries >= 1, "{report:?}");
    // Reviewers read no reports: refused and recorded.
    let reviewer = sign_in(&f.rev_free).await;
    assert_eq!(get(&reviewer, "/console/reports").await.status, 403);
    assert!(denial_recorded(&f.rev_free, "ViewReports"));
}
