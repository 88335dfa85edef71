//! The release gate end to end: outputs are checked as they are emitted,
//! reviewed under the rules, and only approved ones leave as signed bundles.

use crate::support::{OPERATOR, ROWS, SEED, TestDomain, apply_example_policy, new_domain, run_as, test_limits, wasm};
use arrow::array::AsArray;
use inland_runtime::{
    Decision, Error, JobReport, JobStatus, OutputRecord, ReviewState, Status, Verdict, VoteRequest, verify_bundle,
};

fn with_policy() -> TestDomain {
    let d = new_domain(test_limits());
    apply_example_policy(&d, "");
    d.rt.reviews().add_reviewer("li", None).unwrap();
    d.rt.reviews().add_reviewer("wang", None).unwrap();
    d.rt.reviews().add_reviewer("insider", Some(OPERATOR)).unwrap();
    d
}

async fn probe(d: &TestDomain, sql: &str) -> JobReport {
    let report = run_as(
        &d.rt,
        OPERATOR,
        &d.grant,
        wasm(inland_examples::jobs::SQL_PROBE),
        &[("sql", sql)],
    )
    .await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{sql}: {:?}", report.job.error);
    report
}

fn vote(d: &TestDomain, id: &str, reviewer: &str, decision: Decision) -> inland_runtime::Result<OutputRecord> {
    d.rt.reviews().vote(
        id,
        VoteRequest {
            reviewer: reviewer.into(),
            decision,
            reason: "checked every cell against the report".into(),
            overrides: vec![],
            justification: None,
        },
    )
}

fn text(a: &arrow::array::ArrayRef, i: usize) -> String {
    let c = arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8).unwrap();
    c.as_string::<i32>().value(i).to_string()
}

fn failing(o: &OutputRecord, check: &str) -> Vec<(u32, String)> {
    let c = o.gate.as_ref().unwrap().check(check).unwrap();
    assert_ne!(c.status, Status::Pass, "{check} passed");
    c.cells.iter().map(|c| (c.row, c.column.clone())).collect()
}

/// Issue #19: a released bundle carries nothing the job wrote or chose
/// beyond the released table: not its query texts (which may hold values it
/// read) nor digests of them, not the output's name (the files have fixed
/// names), not the quarantined table's hash (which would test guesses of
/// the cells suppressed in the release), not the reviewers' free text.
/// Auditors find the queries in the ledger by the job id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_carries_the_released_table_and_its_provenance_and_nothing_the_job_wrote() {
    let d = with_policy();
    let marker = "MARKER-4711-planted";
    let sql =
        format!("SELECT district, count(*) AS residents FROM residents WHERE district <> '{marker}' GROUP BY district");
    let report = run_as(
        &d.rt,
        OPERATOR,
        &d.grant,
        wasm(inland_examples::jobs::SQL_PROBE),
        &[("sql", sql.as_str())],
    )
    .await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job.error);
    let id = report.outputs[0].id.clone();
    let reason = "approved: the 4711 residents of one district are fine";
    d.rt.reviews()
        .vote(
            &id,
            VoteRequest {
                reviewer: "li".into(),
                decision: Decision::Approve,
                reason: reason.into(),
                overrides: vec![],
                justification: None,
            },
        )
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bundle");
    d.rt.reviews().export(&id, &bundle).unwrap();
    assert_eq!(verify_bundle(&bundle, None).unwrap().problem, None);

    let record = d.rt.reviews().output(&id).unwrap();
    assert!(record.name.is_empty(), "the stored record names the output");
    assert_eq!(report.outputs[0].name, "result");
    let mut names: Vec<String> = std::fs::read_dir(&bundle)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "manifest.json",
            "manifest.sig",
            "public.key",
            "table.csv",
            "table.parquet"
        ]
    );
    let label_reason = record.label.as_ref().map(|(_, why)| why.clone()).unwrap_or_default();
    assert!(!label_reason.is_empty());
    for name in &names {
        let text = String::from_utf8_lossy(&std::fs::read(bundle.join(name)).unwrap()).into_owned();
        for planted in [
            marker,
            "WHERE",
            &record.sha256,
            &report.outputs[0].name,
            reason,
            &label_reason,
        ] {
            assert!(!text.contains(planted), "{name} carries `{planted}`");
        }
    }
    let manifest: inland_runtime::Manifest =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.format, "inland-export/2");
    assert_eq!(manifest.job_id, report.job.id, "the auditor's key into the ledger");
    assert_eq!(manifest.approvals.len(), 1);
    assert_eq!(manifest.approvals[0].reviewer, "li");
    assert_eq!(manifest.checks.unwrap().verdict, Verdict::Review);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_aggregate_is_exported_as_a_bundle_that_verifies_and_detects_tampering() {
    let d = with_policy();
    let report = run_as(&d.rt, OPERATOR, &d.grant, wasm("district-stats"), &[]).await;
    let id = report.outputs[0].id.clone();
    let o = d.rt.reviews().output(&id).unwrap();
    let gate = o.gate.as_ref().unwrap();
    assert_eq!(gate.verdict, Verdict::Review);
    // Every value the job emitted is one the host computed: all traced, none untraced.
    assert!(gate.traced_cells >= 3 * o.rows, "{gate:?}");
    assert_eq!(gate.untraced_cells, 0);
    assert_eq!(o.review.as_ref().unwrap().state, ReviewState::Submitted);

    // Not approved yet: it cannot leave.
    let out = tempfile::tempdir().unwrap();
    let err = d.rt.reviews().export(&id, &out.path().join("early")).unwrap_err();
    assert!(
        matches!(err, Error::Refused(_)) && err.to_string().contains("submitted"),
        "{err}"
    );
    assert!(!out.path().join("early").exists());

    // The operator's own reviewer may not decide.
    let err = vote(&d, &id, "insider", Decision::Approve).unwrap_err();
    assert!(err.to_string().contains("may not decide"), "{err}");
    let approved = vote(&d, &id, "li", Decision::Approve).unwrap();
    assert_eq!(approved.review.as_ref().unwrap().state, ReviewState::Approved);
    // Decisions are final.
    assert!(
        vote(&d, &id, "wang", Decision::Reject)
            .unwrap_err()
            .to_string()
            .contains("final")
    );

    let bundle = out.path().join("bundle");
    let done = d.rt.reviews().export(&id, &bundle).unwrap();
    assert_eq!(done.files.len(), 2);
    let ok = verify_bundle(&bundle, None).unwrap();
    assert_eq!(ok.problem, None);
    assert_eq!(ok.files, 2);
    assert_eq!(
        d.rt.reviews().output(&id).unwrap().review.unwrap().state,
        ReviewState::Released
    );
    // The CSV holds the released table.
    let csv = std::fs::read_to_string(bundle.join(inland_runtime::TABLE_CSV)).unwrap();
    assert!(csv.starts_with("district,residents,avg_age,avg_income"), "{csv}");

    // With the domain's real key it verifies; with another key it does not.
    let key = hex::encode(inland_runtime::ledger::domain_public_key(&d.root).unwrap());
    assert_eq!(verify_bundle(&bundle, Some(&key)).unwrap().problem, None);
    let other = "11".repeat(32);
    assert!(
        verify_bundle(&bundle, Some(&other))
            .unwrap()
            .problem
            .unwrap()
            .contains("signature")
    );

    // Any one byte changed, in a table or in the manifest, fails verification.
    for file in [
        inland_runtime::TABLE_PARQUET,
        inland_runtime::TABLE_CSV,
        "manifest.json",
    ] {
        let copy = out.path().join(format!("copy-{file}"));
        std::fs::create_dir_all(&copy).unwrap();
        for e in std::fs::read_dir(&bundle).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
        let mut bytes = std::fs::read(copy.join(file)).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x20;
        std::fs::write(copy.join(file), bytes).unwrap();
        let problem = verify_bundle(&copy, Some(&key)).unwrap().problem;
        assert!(problem.is_some(), "a changed byte in {file} went unnoticed");
    }
    // A file slipped into the bundle is noticed too.
    std::fs::write(bundle.join("extra.csv"), "x\n1\n").unwrap();
    assert!(
        verify_bundle(&bundle, None)
            .unwrap()
            .problem
            .unwrap()
            .contains("extra.csv")
    );

    // The ledger recorded the check, the vote, the decision and the export.
    let kinds: Vec<String> =
        d.rt.evidence()
            .ledger()
            .unwrap()
            .entries()
            .unwrap()
            .iter()
            .map(|e| {
                serde_json::to_value(&e.event).unwrap()["type"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
    for k in ["output_checked", "review_voted", "review_decided", "output_exported"] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in the ledger: {kinds:?}");
    }

    // Terminating the grant lists the exported product in the destruction record; it is not recalled.
    let record =
        d.rt.jobs()
            .terminate_grant(&d.grant, inland_runtime::TerminationReason::Agreement, "ended")
            .await
            .unwrap();
    let inland_runtime::Event::GrantTerminated { released, .. } = record else {
        panic!("unexpected {record:?}")
    };
    assert_eq!(released, vec![format!("{id} (manifest {})", done.manifest_sha256)]);
    assert!(bundle.join(inland_runtime::TABLE_CSV).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_blocked_and_pending_outputs_cannot_leave() {
    let d = with_policy();
    let out = tempfile::tempdir().unwrap();
    // Rejected.
    let r = probe(
        &d,
        "SELECT service_type, count(*) AS n FROM residents GROUP BY service_type",
    )
    .await;
    let id = r.outputs[0].id.clone();
    let rejected = vote(&d, &id, "wang", Decision::Reject).unwrap();
    assert_eq!(rejected.review.unwrap().state, ReviewState::Rejected);
    let err = d.rt.reviews().export(&id, &out.path().join("a")).unwrap_err();
    assert!(err.to_string().contains("rejected"), "{err}");
    // Blocked: the job read (masked) direct identifiers.
    let r = probe(&d, "SELECT resident_id, district FROM residents LIMIT 3").await;
    let id = r.outputs[0].id.clone();
    let o = d.rt.reviews().output(&id).unwrap();
    assert_eq!(o.review.as_ref().unwrap().state, ReviewState::Blocked);
    assert_eq!(failing(&o, "label"), vec![]);
    let err = vote(&d, &id, "li", Decision::Approve).unwrap_err();
    assert!(err.to_string().contains("blocked"), "{err}");
    assert!(d.rt.reviews().export(&id, &out.path().join("b")).is_err());
    // Returned for changes is final too, and cannot leave.
    let r = probe(&d, "SELECT district, count(*) AS n FROM residents GROUP BY district").await;
    let id = r.outputs[0].id.clone();
    assert_eq!(
        vote(&d, &id, "li", Decision::Return).unwrap().review.unwrap().state,
        ReviewState::Returned
    );
    assert!(d.rt.reviews().export(&id, &out.path().join("c")).is_err());
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifiers_hidden_in_an_aggregate_table_are_caught() {
    let d = with_policy();
    // A resident ID number dressed up as a note beside honest aggregates.
    let r = probe(
        &d,
        "SELECT district, count(*) AS residents, 'contact 11010519491231002X' AS note FROM residents GROUP BY district ORDER BY district",
    )
    .await;
    let o = d.rt.reviews().output(&r.outputs[0].id).unwrap();
    assert_eq!(o.gate.as_ref().unwrap().verdict, Verdict::Blocked);
    assert_eq!(
        o.label.as_ref().unwrap().0,
        inland_runtime::Label::Aggregate,
        "the label alone would let it pass"
    );
    let cells = failing(&o, "identifier-leakage");
    assert!(cells.contains(&(0, "note".to_string())), "{cells:?}");
    // A resident's real name, found through the keyed index of identifier values.
    let residents = inland_examples::generate::residents(ROWS, SEED);
    let name = residents
        .column_by_name("name")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_string();
    let r = probe(
        &d,
        &format!("SELECT district, count(*) AS residents, '{name}' AS note FROM residents GROUP BY district"),
    )
    .await;
    let o = d.rt.reviews().output(&r.outputs[0].id).unwrap();
    assert!(failing(&o, "identifier-leakage").contains(&(0, "note".to_string())));
    let detail = &o.gate.as_ref().unwrap().check("identifier-leakage").unwrap().cells[0].detail;
    assert!(detail.contains("identifier value of a dataset"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_of_releases_that_differ_by_one_entity_is_caught() {
    let d = with_policy();
    // One resident's pseudonym (same grant, same pseudonym) and district.
    let r = probe(
        &d,
        "SELECT resident_id, district FROM residents WHERE district = '朝阳区' LIMIT 1",
    )
    .await;
    let row = d.rt.reviews().output_table(&r.outputs[0].id).unwrap();
    let pseudonym = text(row[0].column(0), 0);
    let district = text(row[0].column(1), 0);

    let all = probe(
        &d,
        "SELECT district, count(*) AS n FROM residents GROUP BY district ORDER BY district",
    )
    .await;
    let first = all.outputs[0].id.clone();
    vote(&d, &first, "li", Decision::Approve).unwrap();

    let sql = format!(
        "SELECT district, count(*) AS n FROM residents WHERE resident_id <> '{pseudonym}' GROUP BY district ORDER BY district"
    );
    let but_one = probe(&d, &sql).await;
    let second = d.rt.reviews().output(&but_one.outputs[0].id).unwrap();
    let cells = failing(&second, "differencing");
    assert_eq!(cells.len(), 1, "{cells:?}");
    // The failing cell is that resident's district.
    let table = d.rt.reviews().output_table(&second.id).unwrap();
    assert_eq!(text(table[0].column(0), cells[0].0 as usize), district);
    assert_eq!(cells[0].1, "n");
    // Approved, the released version suppresses that cell.
    let approved = vote(&d, &second.id, "wang", Decision::Approve).unwrap();
    assert_eq!(approved.review.unwrap().state, ReviewState::Approved);
    let released = d.rt.reviews().released_table(&second.id).unwrap();
    assert!(arrow::array::Array::is_null(
        released[0].column(1).as_ref(),
        cells[0].0 as usize
    ));
}

/// One resident of 朝阳区 as a grant sees them: pseudonym and district.
async fn target(d: &TestDomain, grant: &str) -> (String, String) {
    let r = run_as(
        &d.rt,
        OPERATOR,
        grant,
        wasm(inland_examples::jobs::SQL_PROBE),
        &[(
            "sql",
            "SELECT resident_id, district FROM residents WHERE district = '朝阳区' LIMIT 1",
        )],
    )
    .await;
    let row = d.rt.reviews().output_table(&r.outputs[0].id).unwrap();
    (text(row[0].column(0), 0), text(row[0].column(1), 0))
}

async fn probe_under(d: &TestDomain, grant: &str, params: &[(&str, &str)]) -> OutputRecord {
    let r = run_as(&d.rt, OPERATOR, grant, wasm(inland_examples::jobs::SQL_PROBE), params).await;
    assert_eq!(r.job.status, JobStatus::Succeeded, "{params:?}: {:?}", r.job.error);
    d.rt.reviews().output(&r.outputs[0].id).unwrap()
}

/// The rows of an output whose `column` holds `value`.
fn rows_with(d: &TestDomain, o: &OutputRecord, column: usize, value: &str) -> Vec<u32> {
    let batches = d.rt.reviews().output_table(&o.id).unwrap();
    let table = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    (0..table.num_rows())
        .filter(|&i| text(table.column(column), i) == value)
        .map(|i| i as u32)
        .collect()
}

/// #18 attack 1: the second release says the same thing in other words
/// (an alias, `count(r.district)`, a negated filter) and comes under another
/// grant. The audit compares entity sets across the whole domain, so the
/// target's district is suppressed all the same, in both of its measures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differencing_is_judged_on_entities_across_grants_whatever_the_sql_says() {
    let d = with_policy();
    let second_grant = crate::support::year_grant(&d, &["residents"]);
    let (pseudonym, district) = target(&d, &second_grant).await;
    let first = probe(
        &d,
        "SELECT district, count(*) AS n, avg(income) AS mean FROM residents GROUP BY district ORDER BY district",
    )
    .await;
    vote(&d, &first.outputs[0].id, "li", Decision::Approve).unwrap();

    let sql = format!(
        "SELECT r.district AS area, count(r.district) AS people, avg(r.income) AS average FROM residents r \
         WHERE NOT (r.district = '{district}' AND r.resident_id = '{pseudonym}') GROUP BY r.district"
    );
    let second = probe_under(&d, &second_grant, &[("sql", &sql)]).await;
    let row = rows_with(&d, &second, 0, &district);
    assert_eq!(row.len(), 1);
    let mut cells = failing(&second, "differencing");
    cells.sort();
    assert_eq!(
        cells,
        vec![(row[0], "people".to_string()), (row[0], "average".to_string())]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    let detail = &second.gate.as_ref().unwrap().check("differencing").unwrap().cells[0].detail;
    assert!(detail.contains("with a released cell of"), "{detail}");
    // Every other district is the same people as released: nothing else fails.
    let plan = &second.gate.as_ref().unwrap();
    assert_eq!(plan.check("differencing").unwrap().cells.len(), 2);
}

/// #18 attack 1, padded: leave out the target and nine people who earn
/// nearly nothing, so the difference covers ten entities and passes the
/// count. What they contributed decides: the difference is dominated by one
/// person, so the cell is suppressed; ten ordinary people left out pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_difference_padded_to_ten_with_near_zero_earners_is_suppressed() {
    let d = new_domain(test_limits());
    let mut csv = String::from("person,team,pay\n");
    for i in 0..40 {
        let pay = match i {
            0 => 11_496.48,
            1..=9 => 0.01,
            _ => 3_000.0 + 10.0 * f64::from(i),
        };
        csv.push_str(&format!("a{i},a,{pay}\n"));
        csv.push_str(&format!("b{i},b,{}\n", 2_000 + i));
    }
    crate::support::register_csv(&d, "salaries", &csv);
    apply_example_policy(
        &d,
        "[datasets.salaries]\ngrade = \"general\"\npersonal_information = true\nentity = \"person\"\n\n\
         [datasets.salaries.columns]\nperson = { class = \"attribute\", access = \"dimension\" }\n\
         team = { class = \"attribute\", access = \"dimension\" }\n\
         pay = { class = \"sensitive\", access = \"aggregate-only\" }\n",
    );
    d.rt.reviews().add_reviewer("li", None).unwrap();
    let grant = crate::support::year_grant(&d, &["salaries"]);
    let all = "SELECT team, count(*) AS n, sum(pay) AS total FROM salaries GROUP BY team ORDER BY team";
    let first = probe_under(&d, &grant, &[("sql", all)]).await;
    assert_eq!(
        first.gate.as_ref().unwrap().check("differencing").unwrap().status,
        Status::Pass
    );
    vote(&d, &first.id, "li", Decision::Approve).unwrap();

    let leave_out = |people: std::ops::Range<u32>| {
        let list: Vec<String> = people.map(|i| format!("'a{i}'")).collect();
        format!(
            "SELECT team AS t, count(person) AS people, sum(pay) AS paid FROM salaries \
             WHERE person NOT IN ({}) GROUP BY team ORDER BY team",
            list.join(", ")
        )
    };
    let padded = probe_under(&d, &grant, &[("sql", &leave_out(0..10))]).await;
    let cells = failing(&padded, "differencing");
    assert_eq!(
        cells,
        vec![(0, "people".to_string()), (0, "paid".to_string())],
        "{cells:?}"
    );
    let detail = &padded.gate.as_ref().unwrap().check("differencing").unwrap().cells[0].detail;
    assert!(detail.contains("dominate"), "{detail}");
    assert!(!detail.contains("11496") && !detail.contains("11,496"), "{detail}");

    let ordinary = probe_under(&d, &grant, &[("sql", &leave_out(10..20))]).await;
    let check = ordinary.gate.as_ref().unwrap().check("differencing").unwrap();
    assert_eq!(check.status, Status::Pass, "{check:?}");
}

/// #18 attack 1, both halves in one output: the same groups relabelled, one
/// with the target left out, emitted into one table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_halves_of_a_difference_in_one_output_are_caught() {
    let d = with_policy();
    let (pseudonym, district) = target(&d, &d.grant).await;
    let all = "SELECT concat(district, '') AS area, count(*) AS n, avg(income) AS mean FROM residents \
               GROUP BY concat(district, '')";
    let but_one = format!(
        "SELECT concat(district, ' (excl.)') AS area, count(*) AS n, avg(income) AS mean FROM residents \
         WHERE resident_id <> '{pseudonym}' GROUP BY concat(district, ' (excl.)')"
    );
    let o = probe_under(&d, &d.grant, &[("sql", all), ("also", &but_one)]).await;
    let row = rows_with(&d, &o, 0, &format!("{district} (excl.)"));
    assert_eq!(row.len(), 1);
    let cells = failing(&o, "differencing");
    assert_eq!(cells.len(), 2, "{cells:?}");
    assert!(cells.iter().all(|(r, _)| *r == row[0]), "{cells:?}");
    let detail = &o.gate.as_ref().unwrap().check("differencing").unwrap().cells[0].detail;
    assert!(detail.contains("of this table, isolates fewer than 10"), "{detail}");
}

/// #18 attack 4: a table by district and age band loses its small bands in
/// the query; once it is released, a district total would give the dropped
/// bands by subtraction, so the total is refused. A total that covers
/// exactly released bands passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_total_over_released_groups_with_dropped_small_groups_is_refused() {
    let d = with_policy();
    // Bands of 10 years: the oldest bands of each district are small.
    let bands = probe(
        &d,
        "SELECT district, floor(age / 10) AS band, count(*) AS n, sum(income) AS total FROM residents \
         GROUP BY district, floor(age / 10)",
    )
    .await;
    let notices = bands.job.log.iter().any(|l| l.message.contains("suppressed"));
    assert!(notices, "some bands are below the threshold: {:?}", bands.job.log);
    vote(&d, &bands.outputs[0].id, "li", Decision::Approve).unwrap();
    let totals = probe(
        &d,
        "SELECT district, count(*) AS n, sum(income) AS total FROM residents GROUP BY district ORDER BY district",
    )
    .await;
    let o = d.rt.reviews().output(&totals.outputs[0].id).unwrap();
    let cells = failing(&o, "differencing");
    assert!(!cells.is_empty());
    let c = o.gate.as_ref().unwrap().check("differencing").unwrap();
    assert!(c.cells.iter().all(|c| c.detail.contains("added up, isolates")), "{c:?}");
    // Approved, those totals are blank in what leaves.
    vote(&d, &o.id, "wang", Decision::Approve).unwrap();
    let released = d.rt.reviews().released_table(&o.id).unwrap();
    for (r, _) in cells {
        assert!(arrow::array::Array::is_null(released[0].column(1).as_ref(), r as usize));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_release_needs_two_blind_votes_and_a_split_vote_is_conflicted() {
    let d = new_domain(test_limits());
    let csv = d.sources.join("districts.csv");
    std::fs::write(&csv, "district,area_km2\n东城区,41.8\n西城区,50.5\n朝阳区,470.8\n").unwrap();
    d.rt.catalog().register("districts", &csv, "district areas").unwrap();
    let extra = r#"
[datasets.districts]
grade = "general"
personal_information = false
entity = "district"
[datasets.districts.columns]
district = { class = "public", access = "dimension", release_row_level = true }
area_km2 = { class = "attribute", access = "plaintext", release_row_level = true }
"#;
    apply_example_policy(&d, extra);
    for r in ["li", "wang", "zhou"] {
        d.rt.reviews().add_reviewer(r, None).unwrap();
    }
    let today = inland_runtime::Date::today();
    let grant = crate::support::issue(&d.rt, OPERATOR, &["districts"], today, today.add_years(1)).unwrap();
    let sql = [("sql", "SELECT district, area_km2 FROM districts ORDER BY district")];
    let probe = wasm(inland_examples::jobs::SQL_PROBE);
    let first = run_as(&d.rt, OPERATOR, &grant, probe.clone(), &sql).await.outputs[0]
        .id
        .clone();
    let second = run_as(&d.rt, OPERATOR, &grant, probe, &sql).await.outputs[0].id.clone();
    let o = d.rt.reviews().output(&first).unwrap();
    assert_eq!(o.label.as_ref().unwrap().0, inland_runtime::Label::RowLevel);
    assert_eq!(o.gate.as_ref().unwrap().verdict, Verdict::Review);
    assert_eq!(o.review.as_ref().unwrap().required, 2);

    // One vote: partially reviewed, and nobody sees it yet.
    let partial = vote(&d, &first, "li", Decision::Approve).unwrap();
    let review = partial.review.as_ref().unwrap();
    assert_eq!(review.state, ReviewState::PartiallyReviewed);
    assert!(inland_runtime::visible_votes(review).is_empty());
    let page = inland_runtime::review_view::render(&partial, &d.rt.reviews().output_table(&first).unwrap());
    assert!(page.contains("hidden until every reviewer has voted"), "{page}");
    assert!(!page.contains("by li"), "{page}");
    let out = tempfile::tempdir().unwrap();
    assert!(d.rt.reviews().export(&first, &out.path().join("early")).is_err());
    // A split vote is conflicted, and does not leave.
    let split = vote(&d, &first, "wang", Decision::Reject).unwrap();
    assert_eq!(split.review.as_ref().unwrap().state, ReviewState::Conflicted);
    assert!(d.rt.reviews().export(&first, &out.path().join("split")).is_err());
    // Two approvals release it.
    vote(&d, &second, "li", Decision::Approve).unwrap();
    let both = vote(&d, &second, "zhou", Decision::Approve).unwrap();
    assert_eq!(both.review.unwrap().state, ReviewState::Approved);
    d.rt.reviews().export(&second, &out.path().join("bundle")).unwrap();
    assert_eq!(verify_bundle(&out.path().join("bundle"), None).unwrap().problem, None);
}

/// Issue #18, attack 5: a scale, rounding or ratio of a sum keeps the facts
/// of the sum, so the cell a plain `sum` table suppresses for dominance is
/// suppressed in the derived table too, and never leaves once approved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_cells_keep_the_rules_of_the_aggregates_they_came_from() {
    let d = new_domain(test_limits());
    // Team `a`: one salary dominates; team `b`: twelve alike.
    let mut csv = String::from("person,team,pay\n");
    for i in 0..12 {
        csv.push_str(&format!("a{i},a,{}\n", if i == 0 { 1_000_000 } else { 100 + i }));
        csv.push_str(&format!("b{i},b,{}\n", 1_000 + i));
    }
    crate::support::register_csv(&d, "salaries", &csv);
    apply_example_policy(
        &d,
        "[datasets.salaries]\ngrade = \"general\"\npersonal_information = true\nentity = \"person\"\n\n\
         [datasets.salaries.columns]\nperson = { class = \"direct-identifier\", access = \"deny\" }\n\
         team = { class = \"attribute\", access = \"dimension\" }\n\
         pay = { class = \"sensitive\", access = \"aggregate-only\" }\n",
    );
    d.rt.reviews().add_reviewer("li", None).unwrap();
    let grant = crate::support::year_grant(&d, &["salaries"]);
    for sql in [
        "SELECT team, sum(pay) AS v FROM salaries GROUP BY team ORDER BY team",
        "SELECT team, sum(pay) / 1000.0 AS v FROM salaries GROUP BY team ORDER BY team",
        "SELECT team, round(avg(pay)) AS v FROM salaries GROUP BY team ORDER BY team",
        "SELECT team, CAST(sum(pay) AS DOUBLE) * 100 AS v FROM salaries GROUP BY team ORDER BY team",
        "SELECT team, sum(pay) / count(*) AS v FROM salaries GROUP BY team ORDER BY team",
    ] {
        let report = run_as(
            &d.rt,
            OPERATOR,
            &grant,
            wasm(inland_examples::jobs::SQL_PROBE),
            &[("sql", sql)],
        )
        .await;
        assert_eq!(report.job.status, JobStatus::Succeeded, "{sql}: {:?}", report.job.error);
        let o = d.rt.reviews().output(&report.outputs[0].id).unwrap();
        let gate = o.gate.as_ref().unwrap();
        assert_eq!(gate.check("untraced").unwrap().status, Status::Pass, "{sql}: {gate:?}");
        assert_eq!(failing(&o, "dominance"), vec![(0, "v".to_string())], "{sql}");
        vote(&d, &o.id, "li", Decision::Approve).unwrap();
        let released = d.rt.reviews().released_table(&o.id).unwrap();
        assert!(arrow::array::Array::is_null(released[0].column(1).as_ref(), 0), "{sql}");
        assert!(
            !arrow::array::Array::is_null(released[0].column(1).as_ref(), 1),
            "{sql}"
        );
    }
}

/// Issue #18, attack 9: a job that emits 3 of a traced result's rows, in its
/// own order, can encode a value in the choice. The output goes to review
/// saying so, and names the rows it dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_subset_of_a_result_names_the_rows_it_dropped() {
    let d = with_policy();
    let sql = "SELECT district, count(*) AS n FROM residents GROUP BY district ORDER BY district";
    let whole = probe(&d, sql).await;
    let o = d.rt.reviews().output(&whole.outputs[0].id).unwrap();
    assert_eq!(
        o.gate.as_ref().unwrap().check("selection").unwrap().status,
        Status::Pass
    );

    let report = run_as(
        &d.rt,
        OPERATOR,
        &d.grant,
        wasm(inland_examples::jobs::SQL_PROBE),
        &[("sql", sql), ("keep", "4,0,2")],
    )
    .await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job.error);
    let o = d.rt.reviews().output(&report.outputs[0].id).unwrap();
    let table = d.rt.reviews().output_table(&o.id).unwrap();
    assert_eq!(table.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    let details: Vec<String> = o
        .gate
        .as_ref()
        .unwrap()
        .check("selection")
        .unwrap()
        .cells
        .iter()
        .map(|c| c.detail.clone())
        .collect();
    assert!(details.iter().any(|d| d.contains("in another order")), "{details:?}");
    let dropped = details.iter().find(|d| d.contains("keeps 3 of the")).expect("a subset");
    // The whole result, to name what was dropped.
    let all = d.rt.reviews().output_table(&whole.outputs[0].id).unwrap();
    let names: Vec<String> = all
        .iter()
        .flat_map(|b| (0..b.num_rows()).map(|i| text(b.column(0), i)))
        .collect();
    for (i, name) in names.iter().enumerate() {
        let listed = dropped.contains(&format!("[{name}]"));
        assert_eq!(listed, ![0, 2, 4].contains(&i), "{name}: {dropped}");
    }
}

/// Issue #18, attack 5, from a hostile review: forms that let the job choose
/// a derived value (a literal offset or factor, a CASE, a key) would carry a
/// clean group's facts with any value in them. They are not traced: in a
/// job that read aggregates of protected data, they are blocked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_the_job_could_choose_are_never_derived_cells() {
    let d = with_policy();
    for sql in [
        "SELECT district, sum(income) + 1 AS v FROM residents GROUP BY district",
        "SELECT district, sum(income) * 83.0 AS v FROM residents GROUP BY district",
        "SELECT district, CASE WHEN count(*) > 0 THEN 1001166 END AS v FROM residents GROUP BY district",
        "SELECT district, count(*) / count(*) AS v FROM residents GROUP BY district",
        "SELECT district, CASE WHEN district = '东城区' THEN 1001166 ELSE 0 END AS v, count(*) AS n \
         FROM residents GROUP BY district",
        // Only constants, but which rows come back depends on a protected sum.
        "SELECT 1001166 AS v FROM residents GROUP BY district HAVING sum(income) > 1000",
    ] {
        let report = probe(&d, sql).await;
        let o = d.rt.reviews().output(&report.outputs[0].id).unwrap();
        let gate = o.gate.as_ref().unwrap();
        assert_eq!(gate.verdict, Verdict::Blocked, "{sql}: {gate:?}");
        assert!(!failing(&o, "computed-values").is_empty(), "{sql}");
    }
}

/// Issue #18: an approved output with a list column leaves like any other:
/// typed in the bundle's Parquet file, as text in its CSV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_output_with_a_list_column_is_exported() {
    let d = new_domain(test_limits());
    let csv = d.sources.join("districts.csv");
    let rows: String = (1..=12).map(|i| format!("d{i},{}.5\n", 40 + i)).collect();
    std::fs::write(&csv, format!("district,area_km2\n{rows}")).unwrap();
    d.rt.catalog().register("districts", &csv, "district areas").unwrap();
    apply_example_policy(
        &d,
        "[datasets.districts]\ngrade = \"general\"\npersonal_information = false\nentity = \"district\"\n\
         [datasets.districts.columns]\n\
         district = { class = \"public\", access = \"dimension\", release_row_level = true }\n\
         area_km2 = { class = \"attribute\", access = \"plaintext\", release_row_level = true }\n",
    );
    for r in ["li", "wang"] {
        d.rt.reviews().add_reviewer(r, None).unwrap();
    }
    let grant = crate::support::year_grant(&d, &["districts"]);
    let sql = "SELECT array_agg(area_km2 ORDER BY area_km2) AS areas FROM districts";
    let report = run_as(
        &d.rt,
        OPERATOR,
        &grant,
        wasm(inland_examples::jobs::SQL_PROBE),
        &[("sql", sql)],
    )
    .await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job.error);
    let id = report.outputs[0].id.clone();
    let table = d.rt.reviews().output_table(&id).unwrap();
    assert!(matches!(
        table[0].schema().field(0).data_type(),
        arrow::datatypes::DataType::List(_)
    ));
    vote(&d, &id, "li", Decision::Approve).unwrap();
    vote(&d, &id, "wang", Decision::Approve).unwrap();
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bundle");
    d.rt.reviews().export(&id, &bundle).unwrap();
    assert_eq!(verify_bundle(&bundle, None).unwrap().problem, None);
    let csv = crate::support::files_under(&bundle)
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "csv"))
        .unwrap();
    let text = std::fs::read_to_string(bundle.join(csv)).unwrap();
    assert!(text.contains("\"[41.5, 42.5, 43.5,"), "{text}");
}

/// A reviewer reading an output in a terminal (`inland review show`,
/// `inland dev`) sees a job's escape codes and line returns as escapes: a
/// column name, a cell or the SQL cannot clear the screen, hide text or
/// overwrite a line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_review_shows_a_jobs_control_characters_as_escapes() {
    let d = crate::support::shared();
    let sql = "SELECT district AS \"d\u{1b}[8m\", 'x\u{1b}[2J\ry\u{202e}z' AS note, count(*) AS n \
               FROM residents GROUP BY district";
    let report = crate::support::run(d, inland_examples::jobs::SQL_PROBE, &[("sql", sql)]).await;
    let output = report
        .outputs
        .first()
        .unwrap_or_else(|| panic!("{:?}", report.job.error));
    let page = inland_runtime::review_view::render(output, &d.rt.reviews().output_table(&output.id).unwrap());
    for c in ['\u{1b}', '\r', '\u{202e}'] {
        assert!(!page.contains(c), "{c:?} reached the terminal: {page:?}");
    }
    assert!(
        page.contains("⟨U+001B⟩[8m") && page.contains("⟨U+000D⟩") && page.contains("⟨U+202E⟩"),
        "{page}"
    );
}
