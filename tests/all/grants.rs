//! Every job runs under a grant of the operator that submits it: identity,
//! scope and term are checked on each job, and each refusal says why.

use crate::support::{OPERATOR, approved_operator, issue, new_domain, run, run_as, test_limits, wasm};
use inland_runtime::{Date, Error, Event, JobError, JobStatus, OperatorStatus, OperatorType, TerminationReason};

fn refusal(report: &inland_runtime::JobReport) -> String {
    assert_eq!(report.job.status, JobStatus::Refused, "{:?}", report.job);
    match report.job.error.clone().unwrap() {
        JobError::NotAuthorized { reason } => reason,
        other => panic!("unexpected {other:?}"),
    }
}

fn date(s: &str) -> Date {
    Date::parse(s).unwrap()
}

#[test]
fn a_term_over_five_years_an_unknown_dataset_or_an_unapproved_operator_is_refused() {
    let d = new_domain(test_limits());
    let err = issue(&d.rt, OPERATOR, &["residents"], date("2026-01-01"), date("2031-01-02")).unwrap_err();
    assert!(err.to_string().contains("exceeds 5 years"), "{err}");
    issue(&d.rt, OPERATOR, &["residents"], date("2026-01-01"), date("2031-01-01")).unwrap();
    let err = issue(
        &d.rt,
        OPERATOR,
        &["residents", "secret"],
        date("2026-01-01"),
        date("2027-01-01"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("`secret` is not in the catalog"), "{err}");
    let err = issue(&d.rt, OPERATOR, &["residents"], date("2026-01-01"), date("2025-01-01")).unwrap_err();
    assert!(err.to_string().contains("ends"), "{err}");
    d.rt.governance()
        .add_operator("newcomer", OperatorType::Comprehensive, vec![])
        .unwrap();
    let err = issue(
        &d.rt,
        "newcomer",
        &["residents"],
        date("2026-01-01"),
        date("2027-01-01"),
    )
    .unwrap_err();
    assert!(matches!(&err, Error::Invalid(m) if m.contains("is pending")), "{err}");
    let err = issue(&d.rt, "nobody", &["residents"], date("2026-01-01"), date("2027-01-01")).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_future_grants_are_refused() {
    let d = new_domain(test_limits());
    let expired = issue(&d.rt, OPERATOR, &["residents"], date("2020-01-01"), date("2021-01-01")).unwrap();
    let report = run_as(&d.rt, OPERATOR, &expired, wasm("district-stats"), &[]).await;
    assert_eq!(refusal(&report), format!("grant `{expired}` expired on 2021-01-01"));
    let today = Date::today();
    let future = issue(&d.rt, OPERATOR, &["residents"], today.add_years(1), today.add_years(2)).unwrap();
    let report = run_as(&d.rt, OPERATOR, &future, wasm("district-stats"), &[]).await;
    assert!(
        refusal(&report).contains("is not in force until"),
        "{:?}",
        report.job.error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_operator_and_another_operators_grant_are_refused() {
    let d = new_domain(test_limits());
    approved_operator(&d.rt, "other-op");
    // The other operator cannot use this operator's grant, and learns nothing about it.
    let report = run_as(&d.rt, "other-op", &d.grant, wasm("district-stats"), &[]).await;
    assert_eq!(
        refusal(&report),
        format!("operator `other-op` holds no grant `{}`", d.grant)
    );
    let report = run_as(&d.rt, "other-op", "g-doesnotexist", wasm("district-stats"), &[]).await;
    assert_eq!(refusal(&report), "operator `other-op` holds no grant `g-doesnotexist`");
    let report = run_as(&d.rt, "stranger", &d.grant, wasm("district-stats"), &[]).await;
    assert_eq!(refusal(&report), "operator `stranger` is not registered");

    d.rt.governance()
        .set_operator_status(OPERATOR, OperatorStatus::Suspended, Some("audit finding".into()))
        .unwrap();
    let report = run(&d, "district-stats", &[]).await;
    assert_eq!(refusal(&report), format!("operator `{OPERATOR}` is suspended"));
    d.rt.governance()
        .set_operator_status(OPERATOR, OperatorStatus::Approved, None)
        .unwrap();
    assert_eq!(run(&d, "district-stats", &[]).await.job.status, JobStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_outside_the_grant_do_not_exist_for_the_job() {
    let d = new_domain(test_limits());
    let today = Date::today();
    let narrow = issue(&d.rt, OPERATOR, &["residents"], today, today.add_years(1)).unwrap();
    let probe = wasm(inland_examples::jobs::SQL_PROBE);
    let report = run_as(
        &d.rt,
        OPERATOR,
        &narrow,
        probe.clone(),
        &[("sql", "SELECT count(*) FROM residents")],
    )
    .await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job);
    assert!(
        report.job.log[0].message.starts_with("datasets: residents("),
        "{:?}",
        report.job.log[0]
    );
    assert!(!report.job.log[0].message.contains("enterprises"));
    assert_eq!(report.outputs[0].grant, narrow);
    assert_eq!(report.outputs[0].operator, OPERATOR);
    assert_eq!(report.outputs[0].datasets, vec!["residents".to_string()]);

    let report = run_as(
        &d.rt,
        OPERATOR,
        &narrow,
        probe,
        &[("sql", "SELECT count(*) FROM enterprises")],
    )
    .await;
    assert_eq!(report.job.status, JobStatus::Failed);
    let msg = report.job.error.unwrap().to_string();
    assert!(msg.contains("enterprises") && msg.contains("not found"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_refuses_jobs_destroys_keys_and_files_and_records_it() {
    let d = new_domain(test_limits());
    let report = run(&d, "district-stats", &[]).await;
    let output = report.outputs[0].clone();
    let path = d.root.join(output.relative_path());
    let backup = std::fs::read(&path).unwrap();
    // The sealed file holds no plaintext, but opens with the grant's key while it lives.
    assert!(!backup.windows(6).any(|w| w == b"ARROW1"));
    assert!(
        d.rt.reviews()
            .read_sealed(&d.grant, &output.sha256, &backup)
            .unwrap()
            .starts_with(b"ARROW1")
    );

    let record =
        d.rt.jobs()
            .terminate_grant(&d.grant, TerminationReason::Breach, "audit finding 7")
            .await
            .unwrap();
    let Event::GrantTerminated {
        outputs_destroyed,
        key_destroyed,
        files_deleted,
        ..
    } = &record
    else {
        panic!("unexpected {record:?}")
    };
    assert!(key_destroyed);
    // The output and the job's sealed cell facts.
    assert_eq!(*files_deleted, 2);
    assert_eq!(
        outputs_destroyed,
        &vec![(output.id.clone(), d.rt.evidence().digest_of(&output.sha256))]
    );

    // Nothing of it can be read again: not the file, not a copy taken before.
    assert!(!path.exists());
    assert!(matches!(
        d.rt.reviews().output_table(&output.id),
        Err(Error::NotFound(_))
    ));
    let err =
        d.rt.reviews()
            .read_sealed(&d.grant, &output.sha256, &backup)
            .unwrap_err();
    assert!(err.to_string().contains("destroyed"), "{err}");
    // Its jobs are refused, and the destruction record is in the ledger.
    let report = run(&d, "district-stats", &[]).await;
    assert_eq!(refusal(&report), format!("grant `{}` was terminated", d.grant));
    let entries = d.rt.evidence().ledger().unwrap().entries().unwrap();
    assert!(entries.iter().any(|e| e.event == record));
    assert_eq!(d.rt.evidence().ledger().unwrap().verify().unwrap().problem, None);
    let err =
        d.rt.jobs()
            .terminate_grant(&d.grant, TerminationReason::Breach, "again")
            .await
            .unwrap_err();
    assert!(err.to_string().contains("already terminated"), "{err}");
}

/// A note goes into the ledger, which leaves the domain: an empty, long or
/// disguised one is refused and the grant stays as it was. Two requests at
/// once (a reload, a double click) end it once, with one record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_termination_needs_a_plain_note_and_happens_once_however_often_asked() {
    let d = new_domain(test_limits());
    let long = "x".repeat(inland_runtime::MAX_NOTE_CHARS + 1);
    for note in ["", "   ", long.as_str(), "fine\u{202E}txt.exe", "bell\u{7}"] {
        let err =
            d.rt.jobs()
                .terminate_grant(&d.grant, TerminationReason::Breach, note)
                .await
                .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{note:?}: {err}");
    }
    let grant = d.rt.governance().grants().unwrap().remove(0);
    assert_eq!(grant.status, inland_runtime::GrantStatus::Active, "nothing changed");
    let (a, b) = (d.rt.jobs(), d.rt.jobs());
    let (g1, g2) = (d.grant.clone(), d.grant.clone());
    let first = tokio::spawn(async move { a.terminate_grant(&g1, TerminationReason::Breach, "one").await });
    let second = tokio::spawn(async move { b.terminate_grant(&g2, TerminationReason::Law, "two").await });
    let outcomes = [first.await.unwrap(), second.await.unwrap()];
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    let refused = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
    assert!(refused.to_string().contains("already terminated"), "{refused}");
    let entries = d.rt.evidence().ledger().unwrap().entries().unwrap();
    let count = |f: fn(&Event) -> bool| entries.iter().filter(|e| f(&e.event)).count();
    assert_eq!(count(|e| matches!(e, Event::GrantTerminating { .. })), 1);
    assert_eq!(count(|e| matches!(e, Event::GrantTerminated { .. })), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_stops_a_running_job_of_the_grant() {
    let d = std::sync::Arc::new(new_domain(test_limits()));
    let runner = d.clone();
    let job = tokio::spawn(async move { run(&runner, "hostile-loop", &[]).await });
    while d.rt.jobs().running().is_empty() {
        tokio::task::yield_now().await;
    }
    let record =
        d.rt.jobs()
            .terminate_grant(&d.grant, TerminationReason::Incident, "stop everything")
            .await
            .unwrap();
    let report = job.await.unwrap();
    assert_eq!(
        report.job.error,
        Some(JobError::GrantTerminated { grant: d.grant.clone() })
    );
    let Event::GrantTerminated { jobs_stopped, .. } = record else {
        panic!()
    };
    assert_eq!(jobs_stopped, vec![report.job.id.clone()]);
}

/// Issue #19: a job's success is one data-dependent bit its operator learns;
/// a grant's quota bounds how many it can collect, per day and over its
/// term. Refused jobs do not count, and the quota is recorded with the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_runs_no_more_jobs_than_its_quota() {
    let d = new_domain(test_limits());
    let today = Date::today();
    let grant = |per_day, per_term| {
        d.rt.governance()
            .issue_grant(inland_runtime::GrantRequest {
                operator: OPERATOR.into(),
                datasets: vec!["residents".into()],
                purpose: "testing".into(),
                scenario: "tests".into(),
                from: today,
                until: today.add_years(1),
                products: vec![],
                quota: inland_runtime::JobQuota { per_day, per_term },
                approved_components_only: false,
                privacy: Default::default(),
            })
            .unwrap()
            .id
    };
    let daily = grant(Some(2), None);
    let noop = || wasm("noop");
    for _ in 0..2 {
        let ok = run_as(&d.rt, OPERATOR, &daily, noop(), &[]).await;
        assert_eq!(ok.job.status, JobStatus::Succeeded, "{:?}", ok.job.error);
    }
    let third = run_as(&d.rt, OPERATOR, &daily, noop(), &[]).await;
    let why = refusal(&third);
    assert!(why.contains("quota") && why.contains("its 2 jobs for"), "{why}");

    // A term quota; a job refused for another reason (a foreign module) does not count.
    let term = grant(None, Some(1));
    let bad = run_as(&d.rt, OPERATOR, &term, b"not a component".to_vec(), &[]).await;
    assert_eq!(bad.job.status, JobStatus::Refused);
    let ok = run_as(&d.rt, OPERATOR, &term, noop(), &[]).await;
    assert_eq!(ok.job.status, JobStatus::Succeeded, "{:?}", ok.job.error);
    let why = refusal(&run_as(&d.rt, OPERATOR, &term, noop(), &[]).await);
    assert!(why.contains("all 1 jobs of its term"), "{why}");
    // Other grants are not affected.
    let free = run_as(&d.rt, OPERATOR, &d.grant, noop(), &[]).await;
    assert_eq!(free.job.status, JobStatus::Succeeded);

    let events = d.rt.evidence().ledger().unwrap().entries().unwrap();
    let recorded = events.iter().any(|e| {
        matches!(&e.event, Event::GrantIssued { grant, quota, .. }
            if *grant == daily && quota.per_day == Some(2) && quota.per_term.is_none())
    });
    assert!(recorded, "the quota is recorded with the grant");
}

/// Issue #19: a grant may require that its jobs run only components an
/// admin or reviewer approved by hash; an unapproved one is refused at
/// admission, naming its hash, and runs once approved. Approvals are recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_requiring_approved_components_runs_only_those() {
    let d = new_domain(test_limits());
    let today = Date::today();
    let grant =
        d.rt.governance()
            .issue_grant(inland_runtime::GrantRequest {
                operator: OPERATOR.into(),
                datasets: vec!["residents".into()],
                purpose: "testing".into(),
                scenario: "tests".into(),
                from: today,
                until: today.add_years(1),
                products: vec![],
                quota: Default::default(),
                approved_components_only: true,
                privacy: Default::default(),
            })
            .unwrap()
            .id;
    let noop = wasm("noop");
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&noop))
    };
    let why = refusal(&run_as(&d.rt, OPERATOR, &grant, noop.clone(), &[]).await);
    assert!(why.contains(&sha) && why.contains("not approved"), "{why}");

    // Bad hashes and second approvals change nothing.
    let governance = d.rt.governance();
    assert!(matches!(
        governance.approve_component("not-a-hash", "chen", "read it"),
        Err(Error::Invalid(_))
    ));
    governance.approve_component(&sha, "chen", "read its source").unwrap();
    assert!(matches!(
        governance.approve_component(&sha, "wang", "again"),
        Err(Error::Exists(_))
    ));
    assert_eq!(
        governance.component_approval(&sha).unwrap().unwrap().approved_by,
        "chen"
    );

    let ok = run_as(&d.rt, OPERATOR, &grant, noop, &[]).await;
    assert_eq!(ok.job.status, JobStatus::Succeeded, "{:?}", ok.job.error);
    // Another component is still refused.
    let other = refusal(&run_as(&d.rt, OPERATOR, &grant, wasm("district-stats"), &[]).await);
    assert!(other.contains("not approved"), "{other}");
    // Withdrawn, the approval holds no more.
    governance
        .revoke_component_approval(&sha, "chen", "its source does not build to this hash")
        .unwrap();
    let again = refusal(&run_as(&d.rt, OPERATOR, &grant, wasm("noop"), &[]).await);
    assert!(again.contains("not approved"), "{again}");

    let events = d.rt.evidence().ledger().unwrap().entries().unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.event, Event::ComponentApproved { sha256, by } if *sha256 == sha && by == "chen"))
    );
}
