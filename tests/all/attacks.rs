//! Runs the attack suite in `tests/attacks/*.slt`: hostile SQL and the outcome
//! the domain must give, side by side. Each outcome is part of the case's
//! specification, written by hand: `INLAND_BLESS=1` only proposes new
//! outcomes, in `policy.slt.proposed` beside the suite, for review as a diff;
//! it never changes the suite, and the test still fails on any difference.

use crate::support::{
    OPERATOR, ROWS, SEED, TestDomain, apply_example_policy, new_domain, register_csv, register_taxes, run_as,
    test_limits, wasm, year_grant,
};
use arrow::array::AsArray;
use inland_runtime::JobStatus;
use std::path::Path;

pub(crate) struct Case {
    pub(crate) expected: String,
    pub(crate) sql: String,
}

pub(crate) fn parse(text: &str) -> (Vec<String>, Vec<Case>) {
    // Keeps the header and section comments in order, to write the file back when blessing.
    let mut layout = Vec::new();
    let mut cases = Vec::new();
    for block in text.split("\n\n") {
        let lines: Vec<&str> = block.lines().collect();
        let (comments, rest): (Vec<&str>, Vec<&str>) = lines.iter().partition(|l| l.starts_with('#'));
        let comments = comments.join("\n");
        if rest.is_empty() {
            layout.push(comments);
            continue;
        }
        if !comments.is_empty() {
            layout.push(comments);
        }
        layout.push(String::new());
        cases.push(Case {
            expected: rest[0].trim().to_string(),
            sql: rest[1..].join("\n"),
        });
    }
    (layout, cases)
}

pub(crate) async fn outcome(d: &TestDomain, grant: &str, sql: &str) -> String {
    outcome_in(&d.rt, OPERATOR, grant, sql).await
}

/// The outcome of `sql` sent through sql-probe by `operator` under `grant` in `rt`.
pub(crate) async fn outcome_in(rt: &inland_runtime::Runtime, operator: &str, grant: &str, sql: &str) -> String {
    let probe = wasm(inland_examples::jobs::SQL_PROBE);
    let report = run_as(rt, operator, grant, probe, &[("sql", sql)]).await;
    if report.job.status != JobStatus::Succeeded {
        let err = report.job.error.map(|e| e.to_string()).unwrap_or_default();
        if let Some(rest) = err.split("refused by rule `").nth(1) {
            return format!("refused {}", rest.split('`').next().unwrap_or(""));
        }
        if err.contains("invalid:") {
            return "invalid".into();
        }
        return format!("error {err}");
    }
    let rows = report.outputs.first().map(|o| o.rows).unwrap_or(0);
    let suppressed: u64 = report
        .job
        .log
        .iter()
        .filter_map(|l| l.message.strip_prefix("notice: "))
        .filter_map(|m| m.split(' ').next()?.parse::<u64>().ok())
        .sum();
    let label = report.job.queries[0]
        .label
        .map(|l| l.to_string())
        .unwrap_or_else(|| "none".into());
    format!("ok rows={rows} suppressed={suppressed} label={label}")
}

/// Beside the example datasets, two the policy leaves unrestricted: a
/// district lookup table, and a licence register keyed by the enterprises'
/// USCC, which the policy makes join-key-only; and a protected tax register
/// keyed by the same USCC. Returns a grant for all five.
pub(crate) fn with_lookup_datasets(d: &TestDomain) -> String {
    let mut districts = String::from("district,area_km2\n");
    for (name, _, _) in inland_examples::generate::DISTRICTS {
        districts.push_str(&format!("{name},{}\n", 10 + districts.lines().count()));
    }
    let mut licences = String::from("uscc,licence\n");
    let enterprises = inland_examples::generate::enterprises(ROWS, SEED);
    let codes = enterprises.column(0).as_string::<i32>();
    for i in 0..200 {
        licences.push_str(&format!("{},{}\n", codes.value(i), ["food", "transport"][i % 2]));
    }
    register_csv(d, "districts", &districts);
    register_csv(d, "licences", &licences);
    // Two years of tax returns for the first 150 enterprises: another protected dataset keyed by USCC.
    let taxes = register_taxes(d, 150, &[2024, 2025]);
    let lookups = r#"
[datasets.districts]
grade = "general"
personal_information = false
entity = "district"
[datasets.districts.columns]
district = { class = "public", access = "dimension" }
area_km2 = { class = "public", access = "plaintext" }

[datasets.licences]
grade = "general"
personal_information = false
entity = "uscc"
[datasets.licences.columns]
uscc = { class = "direct-identifier", access = "join-key-only" }
licence = { class = "attribute", access = "dimension" }
"#;
    apply_example_policy(d, &format!("{lookups}{taxes}"));
    year_grant(d, &["residents", "enterprises", "districts", "licences", "taxes"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_attack_suite_gives_the_expected_outcome_for_every_trick() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("attacks/policy.slt");
    let text = std::fs::read_to_string(&path).unwrap();
    let (layout, cases) = parse(&text);
    assert!(cases.len() >= 40, "the suite has only {} cases", cases.len());

    let d = new_domain(test_limits());
    let grant = with_lookup_datasets(&d);

    let mut failures = Vec::new();
    let mut actual = Vec::new();
    for case in &cases {
        let got = outcome(&d, &grant, &case.sql).await;
        if got != case.expected {
            failures.push(format!(
                "{}\n    expected: {}\n    got:      {got}",
                case.sql, case.expected
            ));
        }
        actual.push(got);
    }
    if std::env::var_os("INLAND_BLESS").is_some() {
        let mut out = Vec::new();
        let mut next = actual.iter().zip(&cases);
        for part in layout {
            if part.is_empty() {
                if let Some((got, case)) = next.next() {
                    out.push(format!("{got}\n{}", case.sql));
                }
            } else {
                out.push(part);
            }
        }
        let proposed = path.with_extension("slt.proposed");
        std::fs::write(&proposed, out.join("\n\n") + "\n").unwrap();
        eprintln!(
            "proposed outcomes written to {}: review with `diff`",
            proposed.display()
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(!Path::new("/tmp/inland-leak.csv").exists());
}
