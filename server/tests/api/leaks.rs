//! What a job read never reaches its operator: not the guest's log or
//! printed output, not its error string, not row counts or query texts.
//! Reviewers, inside the domain, see them.

use crate::support::{Fixture, fixture, get, get_from, run, run_at};

/// Asserts that no answer the operator can get about `job` contains any of `planted`.
async fn operator_never_sees(job: &str, planted: &[&str]) {
    operator_of(fixture(), job, planted).await;
}

/// `operator_never_sees` on the domain and server of `f`.
async fn operator_of(f: &Fixture, job: &str, planted: &[&str]) {
    let mut paths = vec![
        format!("/api/jobs/{job}"),
        "/api/jobs?limit=500".to_string(),
        "/api/outputs".to_string(),
    ];
    for output in f.rt.jobs().get(job).unwrap().outputs {
        paths.push(format!("/api/outputs/{output}"));
        paths.push(format!("/api/outputs/{output}/bundle"));
    }
    for path in paths {
        let body = get_from(&f.base, &path, &f.op_a).await.body;
        for p in planted {
            assert!(!body.contains(p), "{path} shows `{p}` to the operator: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_error_string_and_log_reach_reviewers_not_its_operator() {
    let f = fixture();
    let (job, view) = run(&f.op_a, &f.grant_a, "hostile-panic", &[("divisor", "1")]).await;
    assert_eq!(view["state"], "failed", "{view}");
    assert_eq!(view["refusal"], serde_json::Value::Null);
    operator_never_sees(&job, &["gave up", "panicked", "computing"]).await;

    let (job, view) = run(
        &f.op_a,
        &f.grant_a,
        inland_examples::jobs::SQL_PROBE,
        &[(
            "sql",
            "SELECT district, count(*) AS residents FROM residents GROUP BY district",
        )],
    )
    .await;
    assert_eq!(view["state"], "succeeded", "{view}");
    operator_never_sees(&job, &["rows:", "datasets:", "SELECT", "count(*)", "notice"]).await;

    // The reviewer reads the log with the output.
    let output = f.rt.jobs().get(&job).unwrap().outputs[0].clone();
    let page = get(&format!("/api/outputs/{output}"), &f.rev_free).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let log = page.json()["job_log"].to_string();
    assert!(log.contains("rows:"), "{log}");
}

/// Issue #19: a hostile job reads values (a pseudonym and masked mobile of
/// one resident; the exact total income) and writes them into its log,
/// stdout, stderr, query texts and error. Neither the operator's answers
/// nor the auditor's ledger export contain them; the job record inside the
/// domain, which reviewers read, does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_a_job_read_reach_neither_its_operator_nor_the_auditors_export() {
    let f = fixture();
    for sql in [
        "SELECT concat_ws('/', resident_id, mobile) AS v FROM residents LIMIT 1",
        "SELECT CAST(sum(income) AS VARCHAR) AS v FROM residents",
    ] {
        let (job, view) = run(&f.op_a, &f.grant_a, inland_examples::jobs::LEAK, &[("sql", sql)]).await;
        assert_eq!(view["state"], "failed", "{view}");
        let record = f.rt.jobs().get(&job).unwrap();
        let planted = record
            .log
            .iter()
            .find_map(|l| l.message.strip_prefix("planted in the log: "))
            .unwrap_or_else(|| panic!("{sql}: the job read nothing: {:?} {:?}", record.log, record.error))
            .to_string();
        assert!(
            planted.chars().filter(char::is_ascii_digit).count() >= 4,
            "{sql}: {planted}"
        );
        operator_never_sees(&job, &[&planted]).await;
        for path in ["/api/ledger/export", "/api/ledger/signed-export"] {
            let export = get(path, &f.auditor).await;
            assert_eq!(export.status, 200, "{}", export.body);
            assert!(export.body.contains(&job), "{path} covers the job");
            assert!(!export.body.contains(&planted), "{sql}: {path} carries `{planted}`");
        }
    }
}

/// Issue #20: under a dp grant, a hostile job that tries to read one
/// resident's ID and mobile, and an exact total, is refused; and no answer
/// its operator gets (job views, outputs, bundles, the budget) nor the
/// auditor's export contains a resident's ID, mobile or the exact total
/// income, which the test takes from the generated data itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dp_jobs_operator_and_the_auditors_export_never_see_exact_values() {
    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Float64Type};
    let f = fixture();
    let today = inland_runtime::Date::today();
    let grant =
        f.rt.governance()
            .issue_grant(inland_runtime::GrantRequest {
                operator: crate::support::ORG_A.into(),
                datasets: vec!["residents".into()],
                purpose: "noisy statistics".into(),
                scenario: "tests".into(),
                from: today,
                until: today.add_years(1),
                products: vec![],
                quota: Default::default(),
                approved_components_only: false,
                privacy: inland_runtime::Privacy::Dp(inland_runtime::DpBudget {
                    budget_rho: 5.0,
                    query_rho: 0.1,
                    datasets: Default::default(),
                }),
            })
            .unwrap()
            .id;
    // The planted values, from the rows the domain registered.
    let residents = inland_examples::generate::residents(5_000, 11);
    let schema = residents.schema();
    let text = |name: &str| {
        let c = arrow::compute::cast(residents.column(schema.index_of(name).unwrap()), &DataType::Utf8).unwrap();
        c.as_string::<i32>().value(0).to_string()
    };
    let income =
        arrow::compute::cast(residents.column(schema.index_of("income").unwrap()), &DataType::Float64).unwrap();
    let total: f64 = income.as_primitive::<Float64Type>().iter().flatten().sum();
    let total = format!("{}", total.trunc() as i64);
    let planted = [text("resident_id"), text("mobile"), total];
    assert!(planted.iter().all(|p| p.len() >= 7), "{planted:?}");
    let planted: Vec<&str> = planted.iter().map(String::as_str).collect();

    let mut jobs = Vec::new();
    for sql in [
        "SELECT concat_ws('/', resident_id, mobile) AS v FROM residents LIMIT 1",
        "SELECT CAST(sum(income) AS VARCHAR) AS v FROM residents",
    ] {
        let (job, view) = run(&f.op_a, &grant, inland_examples::jobs::LEAK, &[("sql", sql)]).await;
        assert_eq!(view["state"], "failed", "{sql}: {view}");
        let record = f.rt.jobs().get(&job).unwrap();
        assert!(
            record
                .queries
                .iter()
                .any(|q| q.error.as_deref().is_some_and(|e| e.contains("refused by rule"))),
            "{sql}: {:?}",
            record.queries
        );
        jobs.push(job);
    }
    let by_district = "SELECT district, count(*) AS n FROM residents GROUP BY district";
    let (job, view) = run(
        &f.op_a,
        &grant,
        inland_examples::jobs::SQL_PROBE,
        &[("sql", by_district)],
    )
    .await;
    assert_eq!(view["state"], "succeeded", "{view}");
    jobs.push(job);
    for job in &jobs {
        operator_never_sees(job, &planted).await;
    }
    let budget = get(&format!("/api/grants/{grant}/budget"), &f.op_a).await;
    assert_eq!(budget.status, 200, "{}", budget.body);
    for path in ["/api/ledger/export", "/api/ledger/signed-export"] {
        let export = get(path, &f.auditor).await;
        assert_eq!(export.status, 200, "{}", export.body);
        for body in [&export.body, &budget.body] {
            for p in &planted {
                assert!(!body.contains(p), "{path} or the budget carries `{p}`");
            }
        }
    }
}

/// Issue #21: the console outside review carries none of the values a
/// hostile job read and planted: not the auditor's ledger search, any of
/// the job's entries with their proofs, the reports or the audit package,
/// nor the admin's pages. The operator gets no console session at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_a_job_read_reach_no_console_page_outside_review() {
    use crate::console::{get as page, post, sign_in};
    let f = fixture();
    // A resident no other test names (the last by pseudonym), so that the
    // whole ledger, which other tests' submissions share, is searched too.
    let sql = "SELECT concat_ws('/', resident_id, mobile) AS v FROM residents ORDER BY resident_id DESC LIMIT 1";
    let (job, _) = run(&f.op_a, &f.grant_a, inland_examples::jobs::LEAK, &[("sql", sql)]).await;
    let record = f.rt.jobs().get(&job).unwrap();
    let planted = record
        .log
        .iter()
        .find_map(|l| l.message.strip_prefix("planted in the log: "))
        .unwrap_or_else(|| panic!("the job read nothing: {:?}", record.log))
        .to_string();
    let halves: Vec<&str> = planted.split('/').filter(|p| p.len() >= 6).collect();
    assert!(!halves.is_empty(), "{planted}");
    let mut paths = vec![
        format!("/console/ledger?job={job}"),
        "/console/ledger".to_string(),
        "/console/reports".to_string(),
    ];
    for e in f.rt.evidence().ledger().unwrap().entries().unwrap() {
        if serde_json::to_string(&e.event).unwrap().contains(&job) {
            paths.push(format!("/console/ledger/entries/{}", e.seq));
        }
    }
    assert!(paths.len() > 5, "the job's entries are read one by one");
    let auditor = sign_in(&f.auditor).await;
    let admin = sign_in(&f.admin).await;
    let admin_paths = [
        "/console/datasets",
        "/console/datasets/residents",
        "/console/grants",
        "/console/policy",
    ];
    let reads = paths
        .iter()
        .map(|p| (&auditor, p.as_str()))
        .chain(admin_paths.iter().map(|p| (&admin, *p)));
    for (cookie, path) in reads {
        let answer = page(cookie, path).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        for p in std::iter::once(planted.as_str()).chain(halves.iter().copied()) {
            if let Some(at) = answer.body.find(p) {
                let from = answer.body[..at]
                    .char_indices()
                    .rev()
                    .nth(600)
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                panic!(
                    "{path} shows `{p}`: …{}",
                    &answer.body[from..(at + 100).min(answer.body.len())]
                );
            }
        }
    }
    let reports = page(&auditor, "/console/reports").await;
    let package = post(
        &auditor,
        "/console/reports/package",
        &[("csrf", &crate::console::csrf(&reports.body))],
    )
    .await;
    assert_eq!(package.status, 200);
    for p in std::iter::once(planted.as_str()).chain(halves.iter().copied()) {
        assert!(!package.body.contains(p), "the audit package shows `{p}`");
    }
    let operator = post("", "/console/login", &[("token", &f.op_a.secret)]).await;
    assert_eq!(operator.status, 403);
    assert!(operator.set_cookie.is_empty(), "no session for an operator");
}

/// #22: SQL jobs that read values (a resident's pseudonym and masked
/// mobile, emitted row-level into quarantine) or make the engine fail on
/// one (the total income, too large for the decimal type it is cast to,
/// whose message quotes it), and a Python job that writes the values it
/// read everywhere it can, show none of them to their operator, and none
/// reaches the auditor's export; the reviewer's record has them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_a_sql_job_read_reach_neither_its_operator_nor_the_auditors_export() {
    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Float64Type};
    let f = fixture();
    let submit = |text: &'static str| async move {
        let path = format!("/api/jobs?grant={}", f.grant_a);
        let accepted = crate::support::call(
            "POST",
            &path,
            Some(&f.op_a),
            Some(("application/sql", text.as_bytes().to_vec())),
        )
        .await;
        assert_eq!(accepted.status, 202, "{}", accepted.body);
        let job = accepted.json()["job_id"].as_str().unwrap().to_string();
        crate::support::wait(&f.op_a, &job).await;
        job
    };
    // One resident's values, emitted row-level into quarantine.
    let read = submit(
        "-- output: one\nSELECT concat_ws('/', resident_id, mobile) AS v FROM residents ORDER BY mobile DESC, resident_id LIMIT 1\n",
    )
    .await;
    let record = f.rt.jobs().get(&read).unwrap();
    let output = record.outputs.first().unwrap_or_else(|| panic!("{:?}", record.error));
    let table = f.rt.reviews().output_table(output).unwrap();
    let value = table[0].column(0).as_string::<i32>().value(0).to_string();
    let mut planted: Vec<String> = value.split('/').filter(|h| h.len() >= 6).map(String::from).collect();
    assert_eq!(planted.len(), 2, "{value}");
    planted.push(value);
    // The exact total income, which the engine's overflow message would quote.
    let residents = inland_examples::generate::residents(5_000, 11);
    let income = arrow::compute::cast(
        residents.column(residents.schema().index_of("income").unwrap()),
        &DataType::Float64,
    )
    .unwrap();
    let total: f64 = income.as_primitive::<Float64Type>().iter().flatten().sum();
    planted.push(format!("{}", total.trunc() as i64));
    let failed = submit("-- output: overflow\nSELECT CAST(sum(income) AS DECIMAL(5,2)) AS v FROM residents\n").await;
    assert!(
        f.rt.jobs().get(&failed).unwrap().error.is_some(),
        "the overflow fails the job"
    );
    let planted: Vec<&str> = planted.iter().map(String::as_str).collect();
    // A Python job reads the same resident and writes the values into its
    // log, an output's name and its exception.
    let (python, view) = run(
        &f.op_a,
        &f.grant_a,
        inland_examples::jobs::PYTHON_PROBE,
        &[
            (
                "sql",
                "SELECT resident_id, mobile FROM residents ORDER BY mobile DESC, resident_id LIMIT 1",
            ),
            ("leak", "1"),
        ],
    )
    .await;
    assert_eq!(view["state"], "failed", "{view}");
    let sealed = f.rt.jobs().get(&python).unwrap();
    let error = sealed.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        error.contains(planted[0]) && error.contains(planted[1]),
        "the job read the values: {error}"
    );
    for job in [&read, &failed, &python] {
        operator_never_sees(job, &planted).await;
    }
    for path in ["/api/ledger/export", "/api/ledger/signed-export"] {
        let export = get(path, &f.auditor).await;
        assert!(
            export.body.contains(&read) && export.body.contains(&failed) && export.body.contains(&python),
            "{path} covers the jobs"
        );
        for p in &planted {
            assert!(!export.body.contains(p), "{path} carries `{p}`");
        }
    }
}

/// #23: over records with several rows per person (the service records,
/// where the host sums each person's rows to judge a group), a hostile job
/// reads a person's pseudonym, the exact total, each district's exact sum,
/// and per-person sums (groups of one person, suppressed), and writes what
/// it read everywhere it can. None of the records' values reaches the
/// operator or the auditor's export: not a resident's ID, the total, a
/// district's sum, nor the largest or second-largest person's total,
/// which the dominance check computes; the test takes them from the
/// generated rows themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_of_records_with_several_rows_per_person_reach_neither_the_operator_nor_the_export() {
    records_leak_nothing(false).await;
}

/// The same, with the records keyed by person at registration (`dataset
/// add --entity`): the hidden key stored beside the rows, in its order,
/// reaches no one either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_of_records_keyed_by_person_reach_neither_the_operator_nor_the_export() {
    records_leak_nothing(true).await;
}

async fn records_leak_nothing(keyed: bool) {
    use arrow::array::AsArray;
    use arrow::datatypes::Float64Type;
    use std::collections::BTreeMap;
    let f = crate::support::fresh();
    let residents = inland_examples::generate::residents(5_000, 11);
    let services = inland_examples::generate::services(&residents, 15_000, 7);
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("services.parquet");
    inland_examples::generate::write_parquet(&source, &services).unwrap();
    let meta = inland_runtime::DatasetMeta {
        description: "service records".into(),
        entity: keyed.then(|| "resident_id".to_string()),
        ..Default::default()
    };
    let record = f.rt.catalog().register_with("services", &source, meta).unwrap();
    assert_eq!(record.entity_key.is_some(), keyed);
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!("{}{}", inland_examples::POLICY, inland_examples::SERVICES_POLICY),
    )
    .unwrap();
    f.rt.policies().apply(&policy).unwrap().unwrap();
    let grant = crate::support::grant_for(&f.rt, crate::support::ORG_A, &["services"]);

    // The planted values, from the generated rows.
    let ids = services.column(0).as_string::<i32>();
    let districts = services.column(1).as_string::<i32>();
    let amounts = services.column(3).as_primitive::<Float64Type>();
    let mut by_person: BTreeMap<&str, f64> = BTreeMap::new();
    let mut by_district: BTreeMap<&str, f64> = BTreeMap::new();
    for row in 0..services.num_rows() {
        *by_person.entry(ids.value(row)).or_default() += amounts.value(row);
        *by_district.entry(districts.value(row)).or_default() += amounts.value(row);
    }
    let mut people: Vec<f64> = by_person.values().copied().collect();
    people.sort_by(|a, b| b.total_cmp(a));
    let cents = |v: f64| format!("{v:.2}");
    let mut planted: Vec<String> = (0..3).map(|row| ids.value(row).to_string()).collect();
    planted.push(cents(amounts.iter().flatten().sum()));
    planted.extend(by_district.values().map(|v| cents(*v)));
    planted.extend(people[..2].iter().map(|v| cents(*v)));
    assert!(planted.iter().all(|p| p.len() >= 7), "{planted:?}");

    let mut jobs = Vec::new();
    for (sql, end) in [
        (
            "SELECT concat_ws('/', resident_id, district) AS v FROM services LIMIT 1",
            "error",
        ),
        ("SELECT CAST(sum(amount) AS VARCHAR) AS v FROM services", "error"),
        (
            "SELECT CAST(sum(amount) AS VARCHAR) AS v, district FROM services GROUP BY district",
            "ok",
        ),
        (
            "SELECT CAST(sum(amount) AS VARCHAR) AS v, resident_id FROM services GROUP BY resident_id",
            "error",
        ),
        (
            "SELECT CAST(max(amount) AS VARCHAR) AS v FROM services GROUP BY district",
            "error",
        ),
        // Every ID of a district, in the stored (for keyed records: the
        // hidden key's) order.
        (
            "SELECT string_agg(resident_id, ',') AS v FROM services GROUP BY district",
            "error",
        ),
        // One aggregation named twice (run once by the host): the largest
        // district sum, picked by a subquery.
        (
            "WITH r AS (SELECT district, sum(amount) AS s FROM services GROUP BY district) \
             SELECT CAST(s AS VARCHAR) AS v FROM r WHERE s = (SELECT max(s) FROM r)",
            "error",
        ),
    ] {
        let (job, view) = run_at(
            &f.base,
            &f.op_a,
            &grant,
            inland_examples::jobs::LEAK,
            &[("sql", sql), ("end", end)],
        )
        .await;
        let record = f.rt.jobs().get(&job).unwrap();
        let read = record
            .log
            .iter()
            .find_map(|l| l.message.strip_prefix("planted in the log: "))
            .map(String::from);
        // The whole sum and the district sums are read inside the domain:
        // the job had them to leak.
        if sql.contains("sum(amount) AS VARCHAR) AS v FROM") || end == "ok" {
            let read = read.clone().unwrap_or_else(|| panic!("{sql}: read nothing: {view}"));
            assert!(read.chars().filter(char::is_ascii_digit).count() >= 4, "{sql}: {read}");
            planted.push(read);
        }
        if end == "ok" {
            assert_eq!(view["state"], "succeeded", "{sql}: {view}");
            assert_eq!(record.outputs.len(), 1, "{sql}: the output waits for review");
            // The reviewer's copy has what the search below looks for.
            let table = f.rt.reviews().output_table(&record.outputs[0]).unwrap();
            let sums = arrow::compute::cast(table[0].column(0), &arrow::datatypes::DataType::Utf8).unwrap();
            let sums = sums.as_string::<i32>();
            assert!(
                read.as_deref().is_some_and(|r| sums.iter().flatten().any(|s| s == r)),
                "{sql}: {read:?}"
            );
        } else {
            assert_eq!(view["state"], "failed", "{sql}: {view}");
        }
        jobs.push(job);
    }
    let planted: Vec<&str> = planted.iter().map(String::as_str).collect();
    for job in &jobs {
        operator_of(&f, job, &planted).await;
    }
    for path in ["/api/ledger/export", "/api/ledger/signed-export"] {
        let export = get_from(&f.base, path, &f.auditor).await;
        assert_eq!(export.status, 200, "{}", export.body);
        assert!(jobs.iter().all(|j| export.body.contains(j)), "{path} covers the jobs");
        for p in &planted {
            assert!(!export.body.contains(p), "{path} carries `{p}`");
        }
    }
}
