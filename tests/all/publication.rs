//! Social data fusion, feedback, the public catalog and the reports computed
//! from the ledger (clauses 10.3, 10.6, 6.2/9.4, 12).

use crate::support::{OPERATOR, approved_operator, issue, new_domain, run_as, test_limits, wasm};
use inland_runtime::{CatalogInfo, DatasetMeta, DatasetStatus, Date, Grade, JobStatus};

/// A term from today, one year long.
fn year() -> (Date, Date) {
    let today = Date::today();
    (today, today.add_years(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_social_dataset_is_invisible_until_approved_and_then_only_for_its_operator() {
    let d = new_domain(test_limits());
    approved_operator(&d.rt, "other-op");
    let csv = d.sources.join("members.csv");
    std::fs::write(&csv, "district,members\n东城区,120\n西城区,95\n").unwrap();
    let proposed =
        d.rt.catalog()
            .propose(OPERATOR, "members", &csv, "the operator's own members")
            .unwrap();
    assert_eq!(proposed.status, DatasetStatus::Pending);
    let (from, until) = year();

    // Pending: no grant may include it, and the operator's existing jobs do not see it.
    let err = issue(&d.rt, OPERATOR, &["members"], from, until)
        .unwrap_err()
        .to_string();
    assert!(err.contains("awaiting an admin's approval"), "{err}");
    let probe = wasm(inland_examples::jobs::SQL_PROBE);
    let report = run_as(&d.rt, OPERATOR, &d.grant, probe.clone(), &[("sql", "SELECT 1")]).await;
    assert!(
        !report.job.log[0].message.contains("members"),
        "{:?}",
        report.job.log[0]
    );

    d.rt.catalog().approve("members").unwrap();
    let err = issue(&d.rt, "other-op", &["members"], from, until)
        .unwrap_err()
        .to_string();
    assert!(err.contains("social data of operator `op-test`"), "{err}");
    let fused = issue(&d.rt, OPERATOR, &["members", "residents"], from, until).unwrap();
    let sql = "SELECT m.district, m.members, count(*) AS residents FROM members m JOIN residents r ON r.district = m.district GROUP BY m.district, m.members ORDER BY m.district";
    let report = run_as(&d.rt, OPERATOR, &fused, probe, &[("sql", sql)]).await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job);
    assert_eq!(report.outputs[0].rows, 2);
}

#[test]
fn core_data_can_never_be_granted() {
    let d = new_domain(test_limits());
    let meta = DatasetMeta {
        description: "core".into(),
        catalog: CatalogInfo {
            grade: Grade::Core,
            ..Default::default()
        },
        ..Default::default()
    };
    d.rt.catalog()
        .register_with("core_registry", &d.sources.join("residents.parquet"), meta)
        .unwrap();
    let (from, until) = year();
    let err = issue(&d.rt, OPERATOR, &["core_registry"], from, until)
        .unwrap_err()
        .to_string();
    assert!(err.contains("core data"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_catalog_and_reports_come_from_the_record() {
    let d = new_domain(test_limits());
    let fb =
        d.rt.catalog()
            .add_feedback("residents", OPERATOR, "age is 0 for some rows")
            .unwrap();
    assert_eq!(d.rt.catalog().feedback().unwrap(), vec![fb]);
    assert!(d.rt.catalog().add_feedback("nope", OPERATOR, "x").is_err());

    let out = d.root.join("public");
    let listed = d.rt.evidence().publish_catalog(&out).unwrap();
    assert_eq!(listed, ["enterprises", "residents"]);
    let catalog = std::fs::read_to_string(out.join("catalog.json")).unwrap();
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("<td>residents</td>"));
    // No data in it: not one resident ID, name or mobile number from the dataset.
    let ids = inland_examples::generate::residents(50, crate::support::SEED);
    use arrow::array::AsArray;
    for col in [0, 1, 2] {
        let values = ids.column(col).as_string::<i32>();
        for v in values.iter().flatten() {
            assert!(!catalog.contains(v) && !html.contains(v), "{v} leaked into the catalog");
        }
    }

    let ok = crate::support::run(&d, "district-stats", &[]).await;
    assert_eq!(ok.job.status, JobStatus::Succeeded);
    run_as(&d.rt, OPERATOR, "g-unknown", wasm("district-stats"), &[]).await;
    let today = Date::today();
    let usage = d.rt.evidence().usage_report(Some(OPERATOR), today, today).unwrap();
    assert_eq!((usage.jobs_run, usage.jobs_succeeded, usage.jobs_refused), (1, 1, 1));
    assert_eq!(usage.outputs_quarantined, 1);
    assert_eq!(usage.datasets_used.get("residents"), Some(&1));
    let nobody = d.rt.evidence().usage_report(Some("other"), today, today).unwrap();
    assert_eq!(nobody.jobs_run, 0);

    let report = d.rt.evidence().compliance_report(today.add_years(-1), today).unwrap();
    let clause = |c: &str| report.iter().find(|l| l.clause == c).unwrap().evidence.clone();
    assert_eq!(clause("8.4"), "1 grants issued; 1 jobs admitted, 1 refused");
    assert!(clause("9.3, 9.5").ends_with("ledger verification passed"));
    assert_eq!(clause("10.6"), "1 feedback reports");
    assert_eq!(clause("6.2, 9.4"), "1 catalog publications");
}

#[test]
fn approving_a_social_dataset_with_a_policy_classifies_it_or_changes_nothing() {
    let d = new_domain(test_limits());
    let csv = d.sources.join("members.csv");
    std::fs::write(&csv, "member_id,district,fee\nm1,东城区,10\nm2,西城区,12\n").unwrap();
    d.rt.catalog()
        .propose(OPERATOR, "members", &csv, "the operator's members")
        .unwrap();
    let write = |name: &str, extra: &str| {
        let p = d.sources.join(name);
        std::fs::write(&p, format!("{}\n{extra}", inland_examples::POLICY)).unwrap();
        p
    };
    let pending = || d.rt.catalog().get("members").unwrap().status == DatasetStatus::Pending;

    // A policy that does not classify the dataset: refused, nothing changes.
    let err =
        d.rt.catalog()
            .approve_with_policy("members", &write("p1.toml", ""))
            .unwrap_err();
    assert!(err.to_string().contains("does not classify `members`"), "{err}");
    assert!(pending());
    // A policy with a problem: every problem reported, nothing changes.
    let bad = "[datasets.members]\ngrade = \"general\"\nentity = \"nope\"\n[datasets.members.columns]\ndistrict = { class = \"quasi-identifier\", access = \"dimension\" }\n";
    let problems =
        d.rt.catalog()
            .approve_with_policy("members", &write("p2.toml", bad))
            .unwrap()
            .unwrap_err();
    assert!(problems.iter().any(|p| p.message.contains("`nope`")), "{problems:?}");
    assert!(pending());
    assert!(d.rt.policies().versions().unwrap().0.is_empty());
    // A good one: approved and classified in one step.
    let good = "[datasets.members]\ngrade = \"general\"\npersonal_information = true\nentity = \"member_id\"\n[datasets.members.columns]\nmember_id = { class = \"direct-identifier\", access = \"mask\", method = \"pseudonym\" }\ndistrict = { class = \"quasi-identifier\", access = \"dimension\" }\nfee = { class = \"sensitive\", access = \"aggregate-only\" }\n";
    let (record, version) =
        d.rt.catalog()
            .approve_with_policy("members", &write("p3.toml", good))
            .unwrap()
            .unwrap();
    assert_eq!(record.status, DatasetStatus::Approved);
    assert_eq!(version.version, 1);
}
