//! The `dp` privacy mode end to end (#20): a grant with a budget, jobs whose
//! aggregates reach them with noise, each query charged before it runs, the
//! gate's exact-cell rules stood down, and the ledger able to prove the spend.

use crate::support::{OPERATOR, TestDomain, new_domain, run_as, test_limits, wasm};
use inland_runtime::{
    Date, DpBudget, Event, GrantRequest, JobStatus, Privacy, Remedy, Status, Verdict, spent_per_grant,
};
use std::collections::BTreeMap;

/// The example policy with clamping bounds for income and the published
/// list of districts (every district of the example data, 延庆区 included).
fn dp_policy(d: &TestDomain) {
    let districts: Vec<String> = inland_examples::generate::DISTRICTS
        .iter()
        .map(|(name, _, _)| format!("\"{name}\""))
        .collect();
    let text = inland_examples::POLICY
        .replace(
            r#"income = { class = "sensitive", access = "aggregate-only" }"#,
            r#"income = { class = "sensitive", access = "aggregate-only", dp_bounds = [0, 200000] }"#,
        )
        .replace(
            r#"district = { class = "quasi-identifier", access = "dimension" }"#,
            &format!(
                r#"district = {{ class = "quasi-identifier", access = "dimension", public_values = [{}] }}"#,
                districts.join(", ")
            ),
        );
    assert!(
        text.contains("dp_bounds") && text.contains("public_values"),
        "the example policy changed"
    );
    let path = d.sources.join("dp-policy.toml");
    std::fs::write(&path, text).unwrap();
    d.rt.policies().apply(&path).unwrap().unwrap();
}

/// A year's grant over residents to the test operator, in the dp mode.
fn dp_request(budget_rho: f64, query_rho: f64, datasets: BTreeMap<String, f64>) -> GrantRequest {
    let today = Date::today();
    GrantRequest {
        operator: OPERATOR.into(),
        datasets: vec!["residents".into()],
        purpose: "noisy statistics".into(),
        scenario: "tests".into(),
        from: today,
        until: today.add_years(1),
        products: vec![],
        quota: Default::default(),
        approved_components_only: false,
        privacy: Privacy::Dp(DpBudget {
            budget_rho,
            query_rho,
            datasets,
        }),
    }
}

fn dp_grant(d: &TestDomain, budget_rho: f64, query_rho: f64) -> String {
    let request = dp_request(budget_rho, query_rho, BTreeMap::new());
    d.rt.governance().issue_grant(request).unwrap().id
}

const BY_DISTRICT: &str =
    "SELECT district, count(*) AS residents, avg(income) AS mean_income FROM residents GROUP BY district";

fn charged(d: &TestDomain) -> Vec<(String, f64)> {
    d.rt.evidence()
        .ledger()
        .unwrap()
        .entries()
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::PrivacyCharged { job_id, rho, .. } => Some((job_id, rho)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dp_grant_gets_noisy_tables_its_gate_skips_exact_cell_rules_and_the_spend_is_proven() {
    let d = new_domain(test_limits());
    dp_policy(&d);
    let grant = dp_grant(&d, 1.0, 0.1);
    let r = run_as(
        &d.rt,
        OPERATOR,
        &grant,
        wasm(inland_examples::jobs::SQL_PROBE),
        &[("sql", BY_DISTRICT)],
    )
    .await;
    assert_eq!(r.job.status, JobStatus::Succeeded, "{:?}", r.job.error);
    assert_eq!(r.job.queries[0].rho, Some(0.1), "the query's cost is in its record");
    let output = &r.outputs[0];
    let gate = output.gate.as_ref().unwrap();
    // Every published district is there, the empty 延庆区 included.
    assert_eq!(output.rows, inland_examples::generate::DISTRICTS.len() as u64);
    for moot in inland_runtime::DP_MOOT {
        let c = gate.check(moot).unwrap();
        assert_eq!(
            (c.status, c.remedy),
            (Status::Pass, Remedy::None),
            "{moot} ran on a dp output"
        );
    }
    // Every value is one the host released: traced, nothing made up.
    assert_eq!(gate.untraced_cells, 0, "{:#?}", gate.checks);
    assert!(gate.traced_cells > 0);
    let blocking: Vec<_> = gate.checks.iter().filter(|c| c.remedy == Remedy::Blocked).collect();
    assert_eq!(gate.verdict, Verdict::Review, "reviewers still decide: {blocking:#?}");
    assert_ne!(gate.check("label").unwrap().remedy, Remedy::Blocked);
    // The reviewer's view shows what the output cost.
    // (as the server shows it: the lineage's queries from the job's sealed record)
    let mut record = d.rt.reviews().output(&output.id).unwrap();
    record.queries = d.rt.jobs().get(&r.job.id).unwrap().queries;
    let page = inland_runtime::review_view::render(&record, &d.rt.reviews().output_table(&output.id).unwrap());
    assert!(page.contains("privacy  dp: the job's queries cost ρ = 0.1"), "{page}");
    // The budget: one query charged, in the store and in the ledger alike.
    let view = d.rt.jobs().privacy_budget(&grant).unwrap().unwrap();
    assert_eq!((view.spent_rho, view.queries, view.remaining_rho), (0.1, 1, 0.9));
    assert!(view.spent_epsilon > 0.0 && view.spent_epsilon < view.budget_epsilon);
    assert_eq!(
        view.spent_delta,
        inland_runtime::DISPLAY_DELTA,
        "published keys add no δ"
    );
    let entries = d.rt.evidence().ledger().unwrap().entries().unwrap();
    assert_eq!(spent_per_grant(&entries).get(&grant).copied(), Some(view.spent_rho));
    // Auditors see the same figure in the usage report.
    let today = Date::today();
    let usage = d.rt.evidence().usage_report(None, today, today).unwrap();
    assert_eq!(usage.privacy_rho.get(&grant).copied(), Some(view.spent_rho));
    // An exact grant has no budget, and its queries charge nothing.
    assert!(d.rt.jobs().privacy_budget(&d.grant).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_beyond_the_budget_is_refused_with_what_is_left_and_costs_nothing() {
    let d = new_domain(test_limits());
    dp_policy(&d);
    let grant = dp_grant(&d, 0.25, 0.1);
    let probe = wasm(inland_examples::jobs::SQL_PROBE);
    for _ in 0..2 {
        let r = run_as(&d.rt, OPERATOR, &grant, probe.clone(), &[("sql", BY_DISTRICT)]).await;
        assert_eq!(r.job.status, JobStatus::Succeeded, "{:?}", r.job.error);
    }
    let r = run_as(&d.rt, OPERATOR, &grant, probe, &[("sql", BY_DISTRICT)]).await;
    assert_ne!(r.job.status, JobStatus::Succeeded);
    let refusal = r.job.queries[0].error.clone().unwrap();
    assert!(refusal.contains("privacy-budget"), "{refusal}");
    assert!(refusal.contains("ρ = 0.050000 left of 0.25"), "{refusal}");
    let view = d.rt.jobs().privacy_budget(&grant).unwrap().unwrap();
    assert!((view.spent_rho - 0.2).abs() < 1e-12, "a refused query spent: {view:?}");
    assert_eq!(view.queries, 2);
    assert_eq!(charged(&d).len(), 2);
    let refused = d.rt.evidence().ledger().unwrap().entries().unwrap().into_iter().any(|e| {
        matches!(&e.event, Event::QueryRefused { job_id, rule, .. } if *job_id == r.job.id && rule == "privacy-budget")
    });
    assert!(refused, "the refusal is in the ledger");
}

/// Thirty-two jobs race for a budget with room for five queries: exactly
/// five are charged, the budget is spent and never overspent, and the ledger's
/// sum is the stored figure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_jobs_never_overspend_a_budget() {
    let d = new_domain(test_limits());
    dp_policy(&d);
    let grant = dp_grant(&d, 0.5, 0.1);
    let probe = wasm(inland_examples::jobs::SQL_PROBE);
    let runs = (0..32).map(|_| run_as(&d.rt, OPERATOR, &grant, probe.clone(), &[("sql", BY_DISTRICT)]));
    let reports = futures::future::join_all(runs).await;
    let succeeded = reports.iter().filter(|r| r.job.status == JobStatus::Succeeded).count();
    assert_eq!(succeeded, 5, "five queries fit the budget");
    for r in reports.iter().filter(|r| r.job.status != JobStatus::Succeeded) {
        let e = r.job.queries[0].error.clone().unwrap_or_default();
        assert!(e.contains("privacy-budget"), "a job failed for another reason: {e}");
    }
    let view = d.rt.jobs().privacy_budget(&grant).unwrap().unwrap();
    assert!(view.spent_rho <= 0.5 + 1e-9, "overspent: {view:?}");
    assert_eq!(view.queries, 5);
    let entries = d.rt.evidence().ledger().unwrap().entries().unwrap();
    let from_ledger = spent_per_grant(&entries).get(&grant).copied().unwrap();
    assert_eq!(from_ledger, view.spent_rho, "the ledger and the store disagree");
    assert_eq!(charged(&d).len(), 5);
}

/// A number the host did not release is blocked, as in the exact mode: it
/// could carry a bit the job learnt some other way. Here the first row is a
/// noisy total the host released, the second one computed from it in SQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dp_job_cannot_release_a_number_it_made_up() {
    let d = new_domain(test_limits());
    dp_policy(&d);
    let grant = dp_grant(&d, 1.0, 0.1);
    let params = [
        ("sql", "SELECT sum(income) AS s FROM residents"),
        ("also", "SELECT sum(income) * 2 AS s FROM residents"),
    ];
    let r = run_as(&d.rt, OPERATOR, &grant, wasm(inland_examples::jobs::SQL_PROBE), &params).await;
    assert_eq!(r.job.status, JobStatus::Succeeded, "{:?}", r.job.error);
    let gate = r.outputs[0].gate.as_ref().unwrap();
    assert_eq!(gate.verdict, Verdict::Blocked);
    let computed = gate.check("computed-values").unwrap();
    assert_eq!((computed.cell_count, computed.cells[0].row), (1, 1), "{computed:#?}");
}

/// A group key the job computed (a CASE with number literals) could carry a
/// number it chose past the noise, since keys are released as they are: the
/// query is refused by the group-keys rule before anything runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_computed_group_key_is_refused_before_it_is_released() {
    let d = new_domain(test_limits());
    dp_policy(&d);
    let grant = dp_grant(&d, 1.0, 0.1);
    let sql =
        "SELECT CASE WHEN service_type IS NULL THEN 1 ELSE 31337 END AS k, count(*) AS n FROM residents GROUP BY 1";
    let r = run_as(
        &d.rt,
        OPERATOR,
        &grant,
        wasm(inland_examples::jobs::SQL_PROBE),
        &[("sql", sql)],
    )
    .await;
    assert_eq!(r.job.status, JobStatus::Failed, "{:?}", r.job.error);
    let error = r.job.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("group-keys"), "{error}");
    assert!(r.outputs.is_empty(), "{:?}", r.outputs.len());
}

/// Without a policy nothing is protected, so nothing would get noise: a dp
/// grant's jobs are refused until one is in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dp_grant_runs_nothing_without_a_policy() {
    let d = new_domain(test_limits());
    let grant = dp_grant(&d, 1.0, 0.1);
    let r = run_as(
        &d.rt,
        OPERATOR,
        &grant,
        wasm(inland_examples::jobs::SQL_PROBE),
        &[("sql", BY_DISTRICT)],
    )
    .await;
    assert_eq!(r.job.status, JobStatus::Refused);
    assert!(
        format!("{:?}", r.job.error).contains("only under a domain policy"),
        "{:?}",
        r.job.error
    );
    assert!(charged(&d).is_empty());
}

/// A charge the ledger recorded and the state never stored (a stop between
/// the two: the event is appended inside the transaction, before it
/// commits) is adopted on the next start: the budget errs on the spent side,
/// and the state check is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_the_state_missed_is_adopted_on_the_next_start() {
    let d = new_domain(test_limits());
    dp_policy(&d);
    let grant = dp_grant(&d, 1.0, 0.1);
    d.rt.evidence()
        .ledger()
        .unwrap()
        .append(Event::PrivacyCharged {
            job_id: "job-stopped-mid-charge".into(),
            grant: grant.clone(),
            rho: 0.1,
            datasets: vec!["residents".into()],
            spent_rho: 0.1,
            delta: 0.0,
        })
        .unwrap();
    assert_eq!(d.rt.jobs().privacy_budget(&grant).unwrap().unwrap().spent_rho, 0.0);
    let root = d.root.clone();
    drop(d.rt);
    let rt = inland_runtime::Runtime::open(&root).unwrap();
    let view = rt.jobs().privacy_budget(&grant).unwrap().unwrap();
    assert_eq!((view.spent_rho, view.queries), (0.1, 1));
    let check = rt.evidence().check_state().unwrap();
    assert!(check.clean(), "{:#?}", check.differences);
}

#[test]
fn a_budget_that_cannot_work_is_refused_when_the_grant_is_issued() {
    let d = new_domain(test_limits());
    for (budget, query, datasets, why) in [
        (0.0, 0.1, vec![], "positive"),
        (1.0, 2.0, vec![], "more than the whole budget"),
        (1.0, 0.1, vec![("enterprises", 0.5)], "does not cover"),
        (1.0, 0.1, vec![("residents", 5.0)], "no larger than"),
    ] {
        let datasets = datasets.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let e =
            d.rt.governance()
                .issue_grant(dp_request(budget, query, datasets))
                .unwrap_err();
        assert!(e.to_string().contains(why), "{e}");
    }
}

/// The attack that recovers exact totals in the exact mode, done inside the
/// job: it asks for the total income and the total without the four
/// residents of 延庆区, and could difference the two. Whatever it computes
/// is a function of the noisy answers it got; over 30 jobs the difference
/// misses the truth by the noise of two releases, not less.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_differencing_two_aggregates_gets_an_estimate_no_better_than_the_noise() {
    use arrow::array::AsArray;
    let d = new_domain(test_limits());
    dp_policy(&d);
    let query_rho = 0.1;
    let grant = dp_grant(&d, 10.0, query_rho);
    // The truth, from the generated data the domain registered.
    let residents = inland_examples::generate::residents(crate::support::ROWS, crate::support::SEED);
    let schema = residents.schema();
    let district = arrow::compute::cast(
        residents.column(schema.index_of("district").unwrap()),
        &arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    let income = arrow::compute::cast(
        residents.column(schema.index_of("income").unwrap()),
        &arrow::datatypes::DataType::Float64,
    )
    .unwrap();
    let truth: f64 = (0..residents.num_rows())
        .filter(|&i| district.as_string::<i32>().value(i) == "延庆区")
        .map(|i| {
            income
                .as_primitive::<arrow::datatypes::Float64Type>()
                .value(i)
                .clamp(0.0, 200_000.0)
        })
        .sum();
    let probe = wasm(inland_examples::jobs::SQL_PROBE);
    let params = [
        ("sql", "SELECT sum(income) AS s FROM residents"),
        (
            "also",
            "SELECT sum(income) AS s FROM residents WHERE district <> '延庆区'",
        ),
    ];
    let trials = 30;
    let mut squared = 0.0;
    for _ in 0..trials {
        let r = run_as(&d.rt, OPERATOR, &grant, probe.clone(), &params).await;
        assert_eq!(r.job.status, JobStatus::Succeeded, "{:?}", r.job.error);
        let table = d.rt.reviews().output_table(&r.outputs[0].id).unwrap();
        let values: Vec<f64> = table
            .iter()
            .flat_map(|b| {
                let c = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Float64).unwrap();
                c.as_primitive::<arrow::datatypes::Float64Type>()
                    .iter()
                    .flatten()
                    .collect::<Vec<_>>()
            })
            .collect();
        let [all, rest] = values[..] else {
            panic!("two totals expected: {values:?}")
        };
        squared += (all - rest - truth).powi(2);
    }
    let rms = (squared / f64::from(trials)).sqrt();
    // Each total has σ = 200,000/√(2ρ); their difference √2 σ. Below 0.3 of
    // that over 30 tries: a χ²(30) below 2.7, probability about 1e-12.
    let implied = 2f64.sqrt() * inland_dp::sigma(200_000, query_rho);
    assert!(rms > 0.3 * implied, "rms error {rms}, implied noise {implied}");
}
