//! The domain policy in the query path: denied columns do not exist for a
//! job, masked columns are masked before anything else sees them, and
//! pseudonyms never link across grants; results carry labels, and lookup
//! datasets join each other and a protected dataset. The aggregation and
//! join-key rules, trick by trick, are in the attack suite (`attacks.rs`).

use crate::support::as_sources;
use crate::support::{
    OPERATOR, TestDomain, apply_example_policy, issue, new_domain, register_csv, register_taxes, run_as, test_limits,
    wasm, year_grant,
};
use arrow::array::{Array, AsArray, RecordBatch};
use inland_runtime::{Date, JobStatus};

fn with_policy() -> TestDomain {
    let d = new_domain(test_limits());
    assert_eq!(apply_example_policy(&d, "").version, 1);
    d
}

async fn probe(d: &TestDomain, grant: &str, sql: &str) -> Result<(Vec<RecordBatch>, String), String> {
    let report = run_as(
        &d.rt,
        OPERATOR,
        grant,
        wasm(inland_examples::jobs::SQL_PROBE),
        &[("sql", sql)],
    )
    .await;
    if report.job.status != JobStatus::Succeeded {
        return Err(report.job.error.map(|e| e.to_string()).unwrap_or_default());
    }
    let listing = report.job.log[0].message.clone();
    Ok((d.rt.reviews().output_table(&report.outputs[0].id).unwrap(), listing))
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let c = arrow::compute::cast(b.column_by_name(column).unwrap(), &arrow::datatypes::DataType::Utf8).unwrap();
            let a = c.as_string::<i32>().clone();
            (0..a.len()).map(move |i| a.value(i).to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_and_withheld_columns_do_not_exist_for_the_job() {
    let d = with_policy();
    let (batches, listing) = probe(
        &d,
        &d.grant,
        "SELECT resident_id, mobile, district, age, service_type FROM residents",
    )
    .await
    .unwrap();
    assert!(
        listing.contains("residents(resident_id,mobile,district,age,income,service_type)"),
        "{listing}"
    );
    let names: Vec<String> = batches[0].schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["resident_id", "mobile", "district", "age", "service_type"]);
    for sql in [
        "SELECT name FROM residents",
        "SELECT count(*) FROM residents WHERE name = '王伟'",
        "SELECT upper(name) FROM residents",
    ] {
        let err = probe(&d, &d.grant, sql).await.unwrap_err();
        assert!(err.contains("name"), "{sql}: {err}");
        assert!(!err.contains("王"), "{sql}: the error shows data: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_columns_are_masked_before_anything_else_sees_them() {
    let d = with_policy();
    let raw = inland_examples::generate::residents(crate::support::ROWS, crate::support::SEED);
    let raw_ids = raw.column(0).as_string::<i32>();
    let raw_mobiles = raw.column(2).as_string::<i32>();
    let (batches, _) = probe(&d, &d.grant, "SELECT resident_id, mobile, age FROM residents")
        .await
        .unwrap();
    let ids = strings(&batches, "resident_id");
    let mobiles = strings(&batches, "mobile");
    assert_eq!(ids.len(), crate::support::ROWS);
    for (i, id) in ids.iter().enumerate() {
        // Keyed pseudonym: p_ + 24 hex characters, never the identifier.
        assert!(id.starts_with("p_") && id.len() == 26, "{id}");
        assert_ne!(id, raw_ids.value(i));
        // Keep-last-4.
        let m = &mobiles[i];
        assert_eq!(&m[..7], "*******");
        assert_eq!(&m[7..], &raw_mobiles.value(i)[7..]);
    }
    let ages: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column(2)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert!(ages.iter().all(|a| a % 10 == 0), "ages are bucketed by 10");
    // A filter on a masked column sees the masked value, not the raw one.
    let raw_first = raw_ids.value(0).to_string();
    let (hit, _) = probe(
        &d,
        &d.grant,
        &format!("SELECT count(*) AS n FROM residents WHERE resident_id = '{raw_first}'"),
    )
    .await
    .unwrap();
    // No row matches the raw identifier; the empty group is suppressed besides.
    let matched: i64 = hit
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        })
        .sum();
    assert_eq!(matched, 0);
    // Redaction and date truncation on the other dataset.
    let (e, _) = probe(&d, &d.grant, "SELECT name, founded FROM enterprises LIMIT 5")
        .await
        .unwrap();
    assert!(strings(&e, "name").iter().all(|n| n == "***"));
    let founded = e[0].column(1).as_primitive::<arrow::datatypes::Date32Type>();
    for i in 0..founded.len() {
        let date = Date::from_days(i64::from(founded.value(i))).to_string();
        assert!(date.ends_with("-01-01"), "{date}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_value_gets_different_pseudonyms_under_two_grants() {
    let d = with_policy();
    let today = Date::today();
    let other = issue(&d.rt, OPERATOR, &["residents"], today, today.add_years(1)).unwrap();
    let sql = "SELECT resident_id FROM residents WHERE district = '延庆区'";
    let first: Vec<String> = strings(&probe(&d, &d.grant, sql).await.unwrap().0, "resident_id");
    let again: Vec<String> = strings(&probe(&d, &d.grant, sql).await.unwrap().0, "resident_id");
    let second: Vec<String> = strings(&probe(&d, &other, sql).await.unwrap().0, "resident_id");
    assert_eq!(first.len(), 4);
    assert_eq!(first, again, "stable within a grant");
    assert!(first.iter().all(|p| !second.contains(p)), "{first:?} vs {second:?}");
}

#[test]
fn a_policy_with_errors_reports_them_all_and_changes_nothing() {
    let d = with_policy();
    let bad = d.sources.join("bad.toml");
    std::fs::write(&bad, "[datasets.residents]\ngrade = \"general\"\nentity = \"nobody\"\n\n[datasets.residents.columns]\nname = { class = \"direct-identifier\", access = \"plaintext\" }\n\n[datasets.missing]\ngrade = \"general\"\nentity = \"x\"\ncolumns = {}\n").unwrap();
    let problems = d.rt.policies().apply(&bad).unwrap().unwrap_err();
    let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown
            .iter()
            .any(|s| s.contains("bad.toml:3:10: entity column `nobody`")),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|s| s.contains("bad.toml:6:8: `name` is a direct identifier")),
        "{shown:#?}"
    );
    assert!(
        shown.iter().any(|s| s.contains("bad.toml:8:11: dataset `missing`")),
        "{shown:#?}"
    );
    let (versions, text) = d.rt.policies().versions().unwrap();
    assert_eq!(versions.len(), 1, "nothing changed");
    assert_eq!(text.unwrap(), inland_examples::POLICY);
}

// The aggregation rule's attack cases are in tests/attacks/policy.slt (see attacks.rs).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_with_too_few_entities_are_suppressed_and_the_job_is_told() {
    let d = with_policy();
    let report = run_as(&d.rt, OPERATOR, &d.grant, wasm("district-stats"), &[]).await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job);
    let out = d.rt.reviews().output_table(&report.outputs[0].id).unwrap();
    let districts = strings(&out, "district");
    assert_eq!(districts.len(), 11, "{districts:?}");
    assert!(
        !districts.contains(&"延庆区".to_string()),
        "the 4-person district is suppressed"
    );
    assert_eq!(out[0].num_columns(), 4, "the entity count is not shown");
    let warning = report
        .job
        .log
        .iter()
        .find(|l| l.message.contains("host notice"))
        .unwrap();
    assert!(
        warning
            .message
            .contains("1 group(s) with fewer than 10 distinct entities were suppressed"),
        "{warning:?}"
    );
    // Narrowing a group to one person by a WHERE clause leaves a group of one: suppressed.
    let (one, _) = probe(
        &d,
        &d.grant,
        "SELECT sum(income) AS s FROM residents WHERE district = '延庆区' AND age = 60",
    )
    .await
    .unwrap();
    assert_eq!(one.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_functions_over_groups_see_only_the_groups_that_were_kept() {
    let d = with_policy();
    // A share of the total and a rank: the total is over the kept groups, so
    // the suppressed district's 4 people cannot be recovered from it.
    let (out, _) = probe(
        &d,
        &d.grant,
        "SELECT district, n, sum(n) OVER () AS total, rank() OVER (ORDER BY n DESC, district) AS r \
         FROM (SELECT district, count(*) AS n FROM residents GROUP BY district)",
    )
    .await
    .unwrap();
    let districts = strings(&out, "district");
    assert_eq!(districts.len(), 11, "{districts:?}");
    assert!(
        !districts.contains(&"延庆区".to_string()),
        "the 4-person district is suppressed"
    );
    let ints = |column: &str| -> Vec<i64> { strings(&out, column).iter().map(|v| v.parse().unwrap()).collect() };
    let (n, total, rank) = (ints("n"), ints("total"), ints("r"));
    let kept: i64 = n.iter().sum();
    assert!(
        total.iter().all(|t| *t == kept),
        "total {total:?} is the sum of the kept groups {kept}"
    );
    let mut ranks = rank.clone();
    ranks.sort_unstable();
    assert_eq!(
        ranks,
        (1..=11).collect::<Vec<i64>>(),
        "ranks run over the kept groups only"
    );
    assert_eq!(out[0].num_columns(), 4, "the hidden columns stay hidden");

    // Over rows, a window is an unchecked aggregate: refused, naming the rule.
    let err = probe(
        &d,
        &d.grant,
        "SELECT district, count(*) OVER (PARTITION BY district) AS n FROM residents",
    )
    .await
    .unwrap_err();
    assert!(err.contains("aggregate-only") && err.contains("window"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_labels_every_result_and_outputs_inherit_the_job_label() {
    use inland_runtime::Label;
    let d = with_policy();
    let cases = [
        (
            "SELECT district, avg(income) AS a FROM residents GROUP BY district",
            Label::Aggregate,
        ),
        ("SELECT district, service_type FROM residents LIMIT 3", Label::RowLevel),
        ("SELECT mobile FROM residents LIMIT 3", Label::Identifying),
        ("SELECT resident_id FROM residents LIMIT 3", Label::Identifying),
        ("SELECT 1 AS one", Label::Public),
    ];
    for (sql, expected) in cases {
        let report = run_as(
            &d.rt,
            OPERATOR,
            &d.grant,
            wasm(inland_examples::jobs::SQL_PROBE),
            &[("sql", sql)],
        )
        .await;
        assert_eq!(report.job.status, JobStatus::Succeeded, "{sql}: {:?}", report.job.error);
        assert_eq!(report.job.queries[0].label, Some(expected), "{sql}");
        let (label, why) = report.outputs[0].label.clone().unwrap();
        assert_eq!(label, expected, "{sql}: {why}");
        assert!(why.starts_with(&expected.to_string()), "{why}");
    }
    // Without a policy, anything read from a dataset is row-level.
    let plain = new_domain(test_limits());
    let report = crate::support::run(&plain, "district-stats", &[]).await;
    let (label, why) = report.job.label.unwrap();
    assert_eq!(label, Label::RowLevel);
    assert!(why.contains("no policy"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_datasets_join_each_other_and_a_protected_dataset_and_keep_their_labels() {
    let d = new_domain(test_limits());
    for (name, text) in [
        ("districts", "district,area_km2\n东城区,41.8\n西城区,50.5\n"),
        ("stations", "district,stations\n东城区,12\n西城区,9\n"),
    ] {
        register_csv(&d, name, text);
    }
    let extra = r#"
[datasets.districts]
grade = "general"
personal_information = false
entity = "district"
[datasets.districts.columns]
district = { class = "public", access = "dimension" }
area_km2 = { class = "attribute", access = "plaintext" }

[datasets.stations]
grade = "general"
personal_information = false
entity = "district"
[datasets.stations.columns]
district = { class = "public", access = "dimension" }
stations = { class = "attribute", access = "plaintext" }
"#;
    apply_example_policy(&d, extra);
    let today = Date::today();
    let grant = issue(
        &d.rt,
        OPERATOR,
        &["residents", "districts", "stations"],
        today,
        today.add_years(1),
    )
    .unwrap();
    let sql = "SELECT d.district, d.area_km2, s.stations FROM districts d JOIN stations s ON d.district = s.district WHERE d.district = '东城区'";
    let report = run_as(
        &d.rt,
        OPERATOR,
        &grant,
        wasm(inland_examples::jobs::SQL_PROBE),
        &[("sql", sql)],
    )
    .await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job.error);
    assert_eq!(report.outputs[0].rows, 1);
    // The join does not launder the label: plaintext attributes are row-level values.
    assert_eq!(report.job.label.as_ref().unwrap().0, inland_runtime::Label::RowLevel);
    // Personal data joined with a lookup table: aggregated and suppressed on
    // the protected side's entities, with the same figures as without the join.
    let counts = |batches: Vec<RecordBatch>| {
        let mut out = Vec::new();
        for b in &batches {
            let k = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
            let (k, n) = (
                k.as_string::<i32>(),
                b.column(1).as_primitive::<arrow::datatypes::Int64Type>(),
            );
            out.extend((0..b.num_rows()).map(|i| (k.value(i).to_string(), n.value(i))));
        }
        out.sort();
        out
    };
    let joined = "SELECT d.district, count(*) AS n FROM districts d JOIN residents r ON r.district = d.district \
                  GROUP BY d.district";
    let direct =
        "SELECT district, count(*) AS n FROM residents WHERE district IN ('东城区', '西城区') GROUP BY district";
    let (joined, _) = probe(&d, &grant, joined).await.unwrap();
    let (direct, _) = probe(&d, &grant, direct).await.unwrap();
    let joined = counts(joined);
    assert_eq!(joined.len(), 2, "{joined:?}");
    assert_eq!(joined, counts(direct));
    // Two protected datasets cannot be joined yet.
    let sql =
        "SELECT r.district, count(*) FROM residents r JOIN residents s ON r.district = s.district GROUP BY r.district";
    let err = probe(&d, &grant, sql).await.unwrap_err();
    assert!(err.contains("two protected datasets"), "{err}");
}

/// The example policy, loaded against the domain's registered datasets.
fn example_policy(datasets: &[inland_runtime::DatasetRecord]) -> inland_runtime::Policy {
    let catalog = datasets
        .iter()
        .map(|d| (d.name.clone(), d.columns.iter().map(|c| c.name.clone()).collect()))
        .collect();
    inland_runtime::Policy::load(inland_examples::POLICY, "domain.toml", &catalog).unwrap()
}

/// Runs `sql` in a session under the example policy, outside a job, and
/// returns the result with the hidden columns the host strips, and the plan.
async fn hidden_result(d: &TestDomain, scope: &inland_runtime::QueryScope, sql: &str) -> (Vec<RecordBatch>, String) {
    use futures::TryStreamExt;
    let datasets = d.rt.catalog().list().unwrap();
    let policy = example_policy(&datasets);
    let engine = inland_runtime::QueryEngine::new(256 << 20).unwrap();
    let ctx = engine
        .session(
            &as_sources(d.rt.domain(), &datasets),
            Some((
                &policy,
                inland_runtime::PolicyKeys {
                    pseudonym: [5; 32],
                    entity: [5; 32],
                },
            )),
        )
        .await
        .unwrap();
    let planned = engine.plan(&ctx, scope, sql).await.unwrap();
    let plan = planned.plan.display_indent().to_string();
    let stream = engine.execute(&ctx, &planned).await.unwrap();
    (stream.try_collect().await.unwrap(), plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_row_per_person_lets_the_host_count_rows_with_the_same_result() {
    let d = with_policy();
    let datasets = d.rt.catalog().list().unwrap();
    let residents = datasets.iter().find(|r| r.name == "residents").unwrap();
    assert!(residents.unique_columns.contains(&"resident_id".to_string()));
    assert!(!residents.unique_columns.contains(&"district".to_string()));

    let policy = example_policy(&datasets);
    let names = datasets.iter().map(|d| d.name.clone());
    let general = inland_runtime::QueryScope::under(Some(&policy), names);
    let per_row = general
        .clone()
        .with_unique_entities(Some(&policy), &as_sources(d.rt.domain(), &datasets));
    assert!(per_row.unique_entities.contains("residents"));

    let sql = "SELECT district, count(*) AS n, avg(income) AS mean, sum(income) AS total \
               FROM residents WHERE age >= 30 GROUP BY district ORDER BY district";
    let (fast, fast_plan) = hidden_result(&d, &per_row, sql).await;
    let (slow, slow_plan) = hidden_result(&d, &general, sql).await;
    assert!(fast_plan.contains("inland_row_contributions"), "{fast_plan}");
    // The mean and the sum come from the one contributions total, not a second pass.
    let aggregation = fast_plan.lines().find(|l| l.contains("Aggregate:")).unwrap();
    assert!(
        !aggregation.contains("avg(")
            && !aggregation.contains("sum(")
            && aggregation.matches("inland_row").count() == 1,
        "{aggregation}"
    );
    // Both sketch each group's entities; only the general plan counts them
    // from the sketch, the per-row plan counts rows.
    assert!(!fast_plan.contains("inland_sketch_size"), "{fast_plan}");
    assert!(slow_plan.contains("inland_sketch_size"), "{slow_plan}");
    // The job's count(*) and the group size are the contributions' row count:
    // no count of its own in the aggregation.
    assert!(!aggregation.contains("count("), "{aggregation}");
    // Group sizes, entity sketches (rows taken as distinct on one side, keys
    // sorted and merged on the other), contributions and the visible columns: all equal.
    let fast = assert_same_results(&fast, &slow);
    assert_eq!(
        fast.num_columns(),
        8,
        "4 visible, 2 contributions, the entity sketch, the group size"
    );
    assert!(fast.num_rows() >= 10);
    // Each contributions list ends with its group's row count, which is the group size.
    let sizes = fast.column(7).as_primitive::<arrow::datatypes::Int64Type>();
    for c in [4, 5] {
        let lists = fast.column(c).as_list::<i32>();
        for r in 0..fast.num_rows() {
            let figures = lists.value(r);
            let figures = figures.as_primitive::<arrow::datatypes::Float64Type>();
            assert_eq!(figures.len(), SHARED_FIGURES + 1);
            assert_eq!(figures.value(SHARED_FIGURES), sizes.value(r) as f64, "row {r}");
        }
    }
}

/// Asserts two results hold the same columns, names and values (floats, which
/// may add up in another order, to 1e-9); returns the first, as one batch.
fn assert_same_results(fast: &[RecordBatch], slow: &[RecordBatch]) -> RecordBatch {
    let fast = arrow::compute::concat_batches(&fast[0].schema(), fast).unwrap();
    let slow = arrow::compute::concat_batches(&slow[0].schema(), slow).unwrap();
    assert_eq!(fast.schema().fields().len(), slow.schema().fields().len());
    for (i, (a, b)) in fast.columns().iter().zip(slow.columns()).enumerate() {
        assert_eq!(
            fast.schema().field(i).name(),
            slow.schema().field(i).name(),
            "column {i}"
        );
        assert_eq!(a.data_type(), b.data_type(), "column {i}");
        let (a, b) = (flat_floats(a), flat_floats(b));
        match (a, b) {
            (Some(a), Some(b)) => {
                assert_eq!(a.len(), b.len(), "column {i}");
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "column {i}: {x} != {y}");
                }
            }
            _ => assert_eq!(fast.column(i), slow.column(i), "column {i}"),
        }
    }
    fast
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rewrite_keeps_the_names_and_values_the_job_wrote() {
    let d = with_policy();
    let datasets = d.rt.catalog().list().unwrap();
    let policy = example_policy(&datasets);
    let names: Vec<String> = datasets.iter().map(|d| d.name.clone()).collect();
    let general = inland_runtime::QueryScope::under(Some(&policy), names.clone());
    let per_row = general
        .clone()
        .with_unique_entities(Some(&policy), &as_sources(d.rt.domain(), &datasets));
    // What the job's SQL names its columns, with no policy in force.
    let engine = inland_runtime::QueryEngine::new(256 << 20).unwrap();
    let plain = engine
        .session(&as_sources(d.rt.domain(), &datasets), None)
        .await
        .unwrap();
    let unpoliced = inland_runtime::QueryScope::under(None, names);
    for sql in [
        // Unaliased expressions over fused values, in the job's projection.
        "SELECT district, avg(income) + 1, sum(income) * 2 AS doubled, count(*) FROM residents \
         GROUP BY district ORDER BY district",
        // Columns reordered, with HAVING between projection and aggregation.
        "SELECT avg(income), district FROM residents GROUP BY district HAVING count(*) > 12 ORDER BY 2",
        // No projection of the job's own: sorted and cut straight off the aggregation.
        "SELECT district, sum(income) FROM residents GROUP BY district ORDER BY sum(income) DESC LIMIT 3",
    ] {
        let (fast, fast_plan) = hidden_result(&d, &per_row, sql).await;
        let (slow, _) = hidden_result(&d, &general, sql).await;
        assert!(
            fast_plan.contains("inland_mean_of") || fast_plan.contains("inland_sum_of"),
            "{fast_plan}"
        );
        // The small-group filter sits right on the aggregation, before anything the job wrote.
        let lines: Vec<&str> = fast_plan.lines().map(str::trim).collect();
        let keep = lines.iter().position(|l| l.starts_with("InlandKeep: ")).unwrap();
        assert!(lines[keep + 1].starts_with("Aggregate:"), "{fast_plan}");
        let fast = assert_same_results(&fast, &slow);
        let planned = engine.plan(&plain, &unpoliced, sql).await.unwrap();
        let expected: Vec<String> = planned
            .plan
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let got: Vec<String> = fast.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(got[..expected.len()], expected[..], "{sql}");
        assert!(
            got[expected.len()..].iter().all(|n| n.starts_with("__inland_")),
            "{got:?}"
        );
    }
}

/// The figures every contributions list holds (largest, second, total,
/// negatives, missing); the per-row form adds its row count after them.
const SHARED_FIGURES: usize = 5;

/// The values of a float column, or of a list-of-float column flattened
/// (each list cut to the figures both forms of contributions hold).
fn flat_floats(a: &arrow::array::ArrayRef) -> Option<Vec<f64>> {
    use arrow::datatypes::Float64Type;
    match a.data_type() {
        arrow::datatypes::DataType::Float64 => Some(a.as_primitive::<Float64Type>().values().to_vec()),
        arrow::datatypes::DataType::List(_) => {
            let lists = a.as_list::<i32>();
            let mut out = Vec::new();
            for r in 0..lists.len() {
                let figures = lists.value(r);
                let figures = figures.as_primitive_opt::<Float64Type>()?.values();
                out.extend(figures.iter().take(SHARED_FIGURES));
            }
            Some(out)
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_with_many_rows_counts_once_towards_the_threshold() {
    let d = new_domain(test_limits());
    // District A: 12 people with 2 visits each; district B: 5 people with 3 visits each.
    let mut csv = String::from("resident_id,district,amount\n");
    for (district, people, visits) in [("A", 12, 2), ("B", 5, 3)] {
        for p in 0..people {
            for v in 0..visits {
                csv.push_str(&format!("{district}{p},{district},{}\n", 10 + v));
            }
        }
    }
    register_csv(&d, "visits", &csv);
    let visits = d.rt.catalog().get("visits").unwrap();
    assert!(visits.unique_columns.is_empty(), "{:?}", visits.unique_columns);
    apply_example_policy(
        &d,
        r#"
[datasets.visits]
grade = "general"
personal_information = true
entity = "resident_id"

[datasets.visits.columns]
resident_id = { class = "direct-identifier", access = "deny" }
district = { class = "quasi-identifier", access = "dimension" }
amount = { class = "sensitive", access = "aggregate-only" }
"#,
    );
    let grant = year_grant(&d, &["visits"]);
    let (out, _) = probe(
        &d,
        &grant,
        "SELECT district, count(*) AS n, sum(amount) AS s FROM visits GROUP BY district",
    )
    .await
    .unwrap();
    // B has 15 rows but only 5 people: suppressed.
    assert_eq!(strings(&out, "district"), vec!["A".to_string()]);
    assert_eq!(strings(&out, "n"), vec!["24".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_protected_datasets_joined_on_their_entities_count_entities_not_rows() {
    let d = new_domain(test_limits());
    // Three tax returns for each of the first 40 enterprises.
    let taxes = register_taxes(&d, 40, &[2023, 2024, 2025]);
    apply_example_policy(&d, taxes);
    let enterprises = inland_examples::generate::enterprises(crate::support::ROWS, crate::support::SEED);
    let grant = year_grant(&d, &["enterprises", "taxes"]);
    // Per year: 40 enterprises, each once.
    let (by_year, _) = probe(
        &d,
        &grant,
        "SELECT t.year, count(*) AS n, sum(t.tax) AS s FROM taxes t JOIN enterprises e ON t.uscc = e.uscc \
         GROUP BY t.year ORDER BY t.year",
    )
    .await
    .unwrap();
    assert_eq!(strings(&by_year, "year"), ["2023", "2024", "2025"]);
    assert_eq!(strings(&by_year, "n"), ["40", "40", "40"]);
    // Per industry: three rows per enterprise, and no industry has ten of the
    // forty enterprises, so every group is below the threshold, however many rows.
    let mut per_industry = std::collections::HashMap::<&str, usize>::new();
    let industries = enterprises.column_by_name("industry").unwrap().as_string::<i32>();
    for i in 0..40 {
        *per_industry.entry(industries.value(i)).or_default() += 1;
    }
    let small: Vec<_> = per_industry.iter().filter(|(_, n)| **n < 10).collect();
    let report = run_as(
        &d.rt,
        OPERATOR,
        &grant,
        wasm(inland_examples::jobs::SQL_PROBE),
        &[(
            "sql",
            "SELECT e.industry, count(*) AS n FROM enterprises e JOIN taxes t ON e.uscc = t.uscc GROUP BY e.industry",
        )],
    )
    .await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job.error);
    let out = d.rt.reviews().output_table(&report.outputs[0].id).unwrap();
    let kept = strings(&out, "industry");
    assert_eq!(
        kept.len() + small.len(),
        per_industry.len(),
        "{kept:?} {per_industry:?}"
    );
    for (industry, _) in &small {
        assert!(
            !kept.contains(&industry.to_string()),
            "{industry} has fewer than 10 enterprises"
        );
    }
    let notice = format!("{} group(s) with fewer than 10 distinct entities", small.len());
    assert!(
        report.job.log.iter().any(|l| l.message.contains(&notice)),
        "{:?}",
        report.job.log
    );
    // A left join would keep enterprises without returns, whose rows have no second entity: refused.
    let refused = probe(
        &d,
        &grant,
        "SELECT e.industry, count(*) AS n FROM enterprises e LEFT JOIN taxes t ON e.uscc = t.uscc GROUP BY e.industry",
    )
    .await
    .unwrap_err();
    assert!(refused.contains("refused by rule `aggregate-only`"), "{refused}");
}

/// Issue #18, attack 7: an error raised while the query runs over the data
/// quotes the value it failed on. The job, its record and the ledger get the
/// kind of failure only; the engine's own text is sealed with the grant's key.
/// (On aggregate-only columns such casts are refused before they run: see
/// the attack suite.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_raised_over_the_data_never_quote_it() {
    let d = with_policy();
    let grant = year_grant(&d, &["residents"]);
    let districts: Vec<&str> = inland_examples::generate::DISTRICTS
        .iter()
        .map(|(n, _, _)| *n)
        .collect();
    for (sql, engine_says, never_shown) in [
        // A failed cast quotes the value it could not cast: a district's name.
        (
            "SELECT CAST(district AS INT) AS d FROM residents",
            "cast",
            districts.clone(),
        ),
        // An overflow quotes the value that did not fit.
        (
            "SELECT district, sum(CAST(age AS DECIMAL(1,0))) AS s FROM residents GROUP BY district",
            "Decimal",
            vec!["too large to store"],
        ),
    ] {
        let report = run_as(
            &d.rt,
            OPERATOR,
            &grant,
            wasm(inland_examples::jobs::SQL_PROBE),
            &[("sql", sql)],
        )
        .await;
        assert_ne!(report.job.status, JobStatus::Succeeded, "{sql}");
        let error = report.job.error.clone().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("kept sealed for the reviewers"), "{sql}: {error}");
        let shown = serde_json::to_string(&report.job).unwrap();
        assert!(
            !never_shown.iter().any(|n| shown.contains(n)),
            "{sql}: the job record quotes the data: {shown}"
        );
        let entries = d.rt.evidence().ledger().unwrap().entries().unwrap();
        let ledger = serde_json::to_string(&entries).unwrap();
        assert!(
            !never_shown.iter().any(|n| ledger.contains(n)),
            "{sql}: the ledger quotes the data"
        );
        // Nor does the audit export a regulator takes away.
        let export = tempfile::tempdir().unwrap();
        d.rt.evidence().ledger().unwrap().export_jsonl(export.path()).unwrap();
        for file in crate::support::files_under(export.path()) {
            let text = String::from_utf8_lossy(&std::fs::read(export.path().join(&file)).unwrap()).into_owned();
            assert!(
                !never_shown.iter().any(|n| text.contains(n)),
                "{sql}: {} quotes the data",
                file.display()
            );
        }
        // The engine's own message is kept, sealed with the grant's key, for reviewers.
        let name = format!("{}.query-errors.sealed", report.job.id);
        let path = d.rt.domain().root().join("quarantine").join(&grant).join(name);
        let sealed = std::fs::read(path).unwrap();
        let opened =
            d.rt.reviews()
                .read_sealed(&grant, &format!("query-errors:{}", report.job.id), &sealed)
                .unwrap();
        let text = String::from_utf8(opened).unwrap();
        assert!(text.contains(engine_says), "{sql}: {text}");
    }
}

/// Issue #18: a policy applies again (a new version, the identifier index
/// rebuilt in place), and datasets register under it.
#[test]
fn a_policy_applies_again_and_datasets_register_under_it() {
    let d = with_policy();
    assert_eq!(apply_example_policy(&d, "").version, 2);
    register_csv(&d, "zones", "zone,area_km2\nnorth,12\nsouth,30\n");
    assert_eq!(d.rt.catalog().get("zones").unwrap().rows, 2);
    assert_eq!(apply_example_policy(&d, "").version, 3);
}

/// A session under `policy` and `keys` over every registered dataset, and a
/// runner of one query in it that returns the result with its hidden
/// columns, and the physical plan.
async fn keyed_session(
    d: &TestDomain,
    policy: &inland_runtime::Policy,
    keys: inland_runtime::PolicyKeys,
) -> (inland_runtime::QueryEngine, datafusion::prelude::SessionContext) {
    let datasets = d.rt.catalog().list().unwrap();
    let engine = inland_runtime::QueryEngine::new(256 << 20).unwrap();
    let ctx = engine
        .session(&as_sources(d.rt.domain(), &datasets), Some((policy, keys)))
        .await
        .unwrap();
    (engine, ctx)
}

async fn run_hidden(
    engine: &inland_runtime::QueryEngine,
    ctx: &datafusion::prelude::SessionContext,
    scope: &inland_runtime::QueryScope,
    sql: &str,
) -> (Vec<RecordBatch>, String) {
    use datafusion::common::tree_node::TreeNode;
    use futures::TryStreamExt;
    let planned = engine.plan(ctx, scope, sql).await.unwrap();
    let physical = ctx.state().create_physical_plan(&planned.plan).await.unwrap();
    let mut shown = datafusion::physical_plan::displayable(physical.as_ref())
        .indent(true)
        .to_string();
    // The functions the aggregations call, which the text names by alias.
    physical
        .apply(|node| {
            if let Some(a) = node.downcast_ref::<datafusion::physical_plan::aggregates::AggregateExec>() {
                for e in a.aggr_expr() {
                    shown.push_str(&format!("\ncalls {}", e.fun().name()));
                }
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
    let stream = engine.execute(ctx, &planned).await.unwrap();
    (stream.try_collect().await.unwrap(), shown)
}

/// Two results of one query with the same rows and hidden facts: figures
/// equal to rounding, and entity sketches of the same entities with the same
/// contributions (an entity's rows added in another order may differ in the
/// last thousandth, which the gate tolerates).
fn assert_same_facts(a: &[RecordBatch], b: &[RecordBatch], sql: &str) {
    let a = arrow::compute::concat_batches(&a[0].schema(), a).unwrap();
    let b = arrow::compute::concat_batches(&b[0].schema(), b).unwrap();
    assert_eq!(a.schema(), b.schema(), "{sql}");
    assert!(a.num_rows() > 0, "{sql}");
    let mut sketches = 0;
    for (i, (x, y)) in a.columns().iter().zip(b.columns()).enumerate() {
        let name = a.schema().field(i).name().clone();
        if let (Some(x), Some(y)) = (x.as_binary_opt::<i32>(), y.as_binary_opt::<i32>()) {
            for (p, q) in x.iter().zip(y.iter()) {
                match (
                    p.and_then(inland_gate::EntitySketch::from_bytes),
                    q.and_then(inland_gate::EntitySketch::from_bytes),
                ) {
                    (Some(p), Some(q)) => {
                        let listed = p.list(&q, 0).expect("the same entities");
                        assert_eq!(listed.entities, 0, "{name}: {sql}");
                        assert!(listed.residues.is_empty(), "{name}: {listed:?}: {sql}");
                        sketches += 1;
                    }
                    (p, q) => assert_eq!(p, q, "{name}: {sql}"),
                }
            }
            continue;
        }
        match (flat_floats(x), flat_floats(y)) {
            (Some(x), Some(y)) => {
                assert_eq!(x.len(), y.len(), "{name}");
                for (p, q) in x.iter().zip(&y) {
                    assert!((p - q).abs() <= 1e-9 * p.abs().max(1.0), "{name}: {p} != {q}: {sql}");
                }
            }
            _ => assert_eq!(x, y, "{name}: {sql}"),
        }
    }
    assert!(sketches > 0, "the entity sketches are compared too: {sql}");
}

/// Registers service records of `people` residents (three rows a person on
/// average) twice: `services` as given, `services_keyed` keyed by
/// `resident_id` at registration; returns the keyed one's record.
fn register_records(d: &TestDomain, people: usize, seed: u64) -> inland_runtime::DatasetRecord {
    let residents = inland_examples::generate::residents(people, seed);
    let services = inland_examples::generate::services(&residents, people * 3, seed);
    let file = d.sources.join("services.parquet");
    inland_examples::generate::write_parquet(&file, &services).unwrap();
    d.rt.catalog().register("services", &file, "records").unwrap();
    let keyed = inland_runtime::DatasetMeta {
        entity: Some("resident_id".into()),
        ..Default::default()
    };
    d.rt.catalog().register_with("services_keyed", &file, keyed).unwrap()
}

/// #23: records keyed by person at registration (`dataset add --entity`)
/// give a query under the policy the same answer and the same hidden facts
/// (group sizes, entity sketches, contributions) as the same records whose
/// entity key the query computes, reading the stored key instead of hashing;
/// a stored key made under another domain's entity key is not used; and no
/// job sees the stored key, with a policy or without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_keyed_at_registration_give_the_same_facts_and_never_show_the_key() {
    let d = new_domain(test_limits());
    let keyed = register_records(&d, 3_000, 11);
    let plain = d.rt.catalog().get("services").unwrap();
    assert_eq!(
        keyed.columns, plain.columns,
        "the stored key is no column of the catalog's"
    );
    assert_eq!(keyed.rows, plain.rows);
    assert_eq!(
        keyed.entity_key.as_ref().map(|k| k.column.as_str()),
        Some("resident_id")
    );
    // The stored rows are in the order of their key.
    let stored = std::fs::File::open(d.root.join(keyed.relative_path())).unwrap();
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(stored).unwrap();
    // The stored key is in plain pages: every query under the policy reads
    // it, and decoding a dictionary of a row group's people cost more.
    let key_column = builder
        .parquet_schema()
        .columns()
        .iter()
        .position(|c| c.name() == inland_runtime::STORED_ENTITY_KEY)
        .unwrap();
    for group in builder.metadata().row_groups() {
        assert!(group.column(key_column).dictionary_page_offset().is_none());
    }
    let reader = builder.build().unwrap();
    let mut stored_keys = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let k = batch.column_by_name(inland_runtime::STORED_ENTITY_KEY).unwrap();
        stored_keys.extend(
            k.as_primitive::<arrow::datatypes::UInt64Type>()
                .values()
                .iter()
                .copied(),
        );
    }
    assert_eq!(stored_keys.len() as u64, keyed.rows);
    assert!(stored_keys.windows(2).all(|w| w[0] <= w[1]));

    let datasets = d.rt.catalog().list().unwrap();
    let catalog = datasets
        .iter()
        .map(|d| (d.name.clone(), d.columns.iter().map(|c| c.name.clone()).collect()))
        .collect();
    let text = format!(
        "{}{}",
        inland_examples::SERVICES_POLICY,
        inland_examples::SERVICES_POLICY.replace("datasets.services", "datasets.services_keyed")
    );
    let policy = inland_runtime::Policy::load(&text, "domain.toml", &catalog).unwrap();
    let names = datasets.iter().map(|d| d.name.clone());
    let scope = inland_runtime::QueryScope::under(Some(&policy), names.clone());
    let domain_keys = d.rt.jobs().policy_keys(&d.grant).unwrap();
    let other_keys = inland_runtime::PolicyKeys {
        pseudonym: domain_keys.pseudonym,
        entity: [9; 32],
    };
    let queries = [
        "SELECT district, count(*) AS n, avg(amount) AS mean FROM services GROUP BY district ORDER BY district",
        "SELECT district, service_type, count(*) AS n, sum(amount) AS total FROM services \
         GROUP BY district, service_type ORDER BY district, service_type",
        "SELECT service_type, count(DISTINCT resident_id) AS people, stddev(amount) AS spread FROM services \
         WHERE district <> '朝阳区' GROUP BY service_type ORDER BY service_type",
        // A count alone: the policy counts each group's people, with no measure.
        "SELECT district, service_type, count(*) AS n FROM services \
         GROUP BY district, service_type ORDER BY district, service_type",
    ];
    for (keys, stored_used) in [(domain_keys, true), (other_keys, false)] {
        let (engine, ctx) = keyed_session(&d, &policy, keys).await;
        for sql in queries {
            let (computed, computed_plan) = run_hidden(&engine, &ctx, &scope, sql).await;
            let keyed_sql = sql.replace("FROM services", "FROM services_keyed");
            let (read, read_plan) = run_hidden(&engine, &ctx, &scope, &keyed_sql).await;
            assert!(computed_plan.contains("inland_mask"), "{computed_plan}");
            // Only the pseudonym of `count(DISTINCT resident_id)` is masked
            // where the stored key is read.
            let masks = |p: &str| p.matches("inland_mask").count();
            assert_eq!(
                masks(&read_plan) < masks(&computed_plan),
                stored_used,
                "{read_plan}\n{computed_plan}"
            );
            // Where the stored key is read straight from the scan, the
            // measure folds each group's people as they arrive.
            let folds = |p: &str| {
                p.contains("calls inland_measured_entities_ordered") || p.contains("calls inland_entities_ordered")
            };
            assert!(!folds(&computed_plan), "{computed_plan}");
            if !sql.contains("DISTINCT") {
                assert_eq!(folds(&read_plan), stored_used, "{read_plan}");
            }
            assert_same_facts(&read, &computed, sql);
        }
        // The stored key is no column of the job's, whatever the SQL.
        for sql in [
            "SELECT \"__inland_entity\" FROM services_keyed",
            "SELECT count(DISTINCT \"__inland_entity\") FROM services_keyed",
        ] {
            assert!(engine.plan(&ctx, &scope, sql).await.is_err(), "{sql}");
        }
        // `*` is refused (it includes aggregate-only `amount`) or shows no hidden column.
        if let Ok(planned) = engine.plan(&ctx, &scope, "SELECT * FROM services_keyed").await {
            let schema = planned.plan.schema();
            assert!(
                schema.fields().iter().all(|f| !f.name().starts_with("__inland_")),
                "{schema:?}"
            );
        }
    }
    // Without a policy too.
    let engine = inland_runtime::QueryEngine::new(256 << 20).unwrap();
    let ctx = engine
        .session(&as_sources(d.rt.domain(), &datasets), None)
        .await
        .unwrap();
    let open = inland_runtime::QueryScope::under(None, datasets.iter().map(|d| d.name.clone()));
    assert!(
        engine
            .plan(&ctx, &open, "SELECT \"__inland_entity\" FROM services_keyed")
            .await
            .is_err()
    );
    let planned = engine.plan(&ctx, &open, "SELECT * FROM services_keyed").await.unwrap();
    let names: Vec<&str> = planned
        .plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["resident_id", "district", "service_type", "amount"]);
}

/// #23: an admin checking or applying a policy hears which records its
/// entity column makes slow (several rows a person, not stored keyed by
/// it), at the line naming the entity; records keyed at registration and
/// datasets of one row a person get no note, and notes change nothing.
#[test]
fn a_policy_over_records_not_keyed_by_their_entity_notes_it() {
    let d = new_domain(test_limits());
    register_records(&d, 300, 5);
    let text = format!(
        "{}\n{}\n{}",
        inland_examples::POLICY,
        inland_examples::SERVICES_POLICY,
        inland_examples::SERVICES_POLICY.replace("datasets.services", "datasets.services_keyed")
    );
    let path = d.sources.join("policy.toml");
    std::fs::write(&path, &text).unwrap();
    let notes = d.rt.policies().layout_notes(&path).unwrap();
    assert_eq!(
        notes.len(),
        1,
        "residents and enterprises have one row each, services_keyed is keyed: {notes:#?}"
    );
    let section = text.find("[datasets.services]").unwrap();
    let entity_line = text[..section].matches('\n').count()
        + 1
        + text[section..].lines().position(|l| l.starts_with("entity")).unwrap();
    assert_eq!(notes[0].line, entity_line, "{}", notes[0]);
    assert!(
        notes[0]
            .message
            .starts_with("note: `services` has several rows per `resident_id`"),
        "{}",
        notes[0]
    );
    assert!(notes[0].message.contains("--entity resident_id"), "{}", notes[0]);
    // Notes are only read: the policy applies as before, and a file with
    // problems gets its problems, not notes.
    d.rt.policies().apply(&path).unwrap().unwrap();
    std::fs::write(
        &path,
        format!("{text}\n[datasets.nowhere]\ngrade = \"general\"\nentity = \"x\"\ncolumns = {{}}\n"),
    )
    .unwrap();
    assert!(d.rt.policies().layout_notes(&path).unwrap().is_empty());
}
