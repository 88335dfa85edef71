//! The domain policy in the query path: denied columns do not exist for a
//! job, masked columns are masked before anything else sees them, and
//! pseudonyms never link across grants. (Aggregate rules, suppression and
//! labels are still to come: until then aggregate-only and join-key-only
//! columns are withheld.)

use crate::support::{OPERATOR, TestDomain, issue, new_domain, run_as, test_limits, wasm};
use arrow::array::{Array, AsArray, RecordBatch};
use inland_runtime::{Date, JobStatus};

fn with_policy() -> TestDomain {
    let d = new_domain(test_limits());
    let path = d.sources.join("policy.toml");
    std::fs::write(&path, inland_examples::POLICY).unwrap();
    let v = d.rt.apply_policy(&path).unwrap().unwrap();
    assert_eq!(v.version, 1);
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
    Ok((d.rt.output_table(&report.outputs[0].id).unwrap(), listing))
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column_by_name(column).unwrap().as_string::<i32>().clone();
            (0..a.len()).map(move |i| a.value(i).to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_and_withheld_columns_do_not_exist_for_the_job() {
    let d = with_policy();
    let (batches, listing) = probe(&d, &d.grant, "SELECT * FROM residents").await.unwrap();
    assert!(
        listing.contains("residents(resident_id,mobile,district,age,service_type)"),
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
    assert_eq!(
        hit[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0),
        0
    );
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
    let problems = d.rt.apply_policy(&bad).unwrap().unwrap_err();
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
    let (versions, text) = d.rt.policies().unwrap();
    assert_eq!(versions.len(), 1, "nothing changed");
    assert_eq!(text.unwrap(), inland_examples::POLICY);
}
