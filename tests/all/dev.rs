//! `inland dev` (#22): dummy data made from a domain's published catalog,
//! under its published policy, runs every useful example job, and refuses
//! every query of the attack suite by the same rule as the domain.

use crate::attacks::{outcome, outcome_in, parse, with_lookup_datasets};
use crate::support::{OPERATOR, apply_example_policy, new_domain, run_as, test_limits, wasm};
use inland_runtime::JobStatus;
use inland_runtime::dev::{DEV_OPERATOR, DevDomain};
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_useful_example_jobs_run_on_dummy_data_from_the_published_catalog() {
    let d = new_domain(test_limits());
    apply_example_policy(&d, "");
    let public = tempfile::tempdir().unwrap();
    d.rt.evidence().publish_catalog(public.path()).unwrap();
    // The catalog says what dev needs, and no more than the public may read.
    let catalog: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(public.path().join("catalog.json")).unwrap()).unwrap();
    let residents = catalog["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "residents")
        .unwrap();
    assert_eq!(residents["entity"], "resident_id");
    let income = residents["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "income")
        .unwrap();
    assert_eq!(
        (income["class"].as_str(), income["access"].as_str()),
        (Some("sensitive"), Some("aggregate-only"))
    );
    assert!(public.path().join("policy.toml").exists());
    // Uniqueness is said only where the domain's rules use it: the entity
    // column yes, an aggregate-only amount never (whatever the data holds).
    let id = residents["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "resident_id")
        .unwrap();
    assert_eq!(id["unique"], true);
    assert_eq!(income["unique"], false);
    // dev refuses a policy file that is not the one published with the catalog.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::copy(
        public.path().join("catalog.json"),
        elsewhere.path().join("catalog.json"),
    )
    .unwrap();
    let err = DevDomain::from_catalog(elsewhere.path(), 100, 1)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("policy.toml"), "{err}");
    std::fs::write(elsewhere.path().join("policy.toml"), "[domain]\nmin_group_size = 1\n").unwrap();
    let err = DevDomain::from_catalog(elsewhere.path(), 100, 1)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not the policy published"), "{err}");

    let dev = DevDomain::from_catalog(public.path(), 2_000, 3).unwrap();
    assert!(dev.policy);
    for job in inland_examples::jobs::USEFUL {
        let real = run_as(&d.rt, OPERATOR, &d.grant, wasm(job), &[]).await;
        let report = run_as(&dev.rt, DEV_OPERATOR, &dev.grant, wasm(job), &[]).await;
        // Every useful example, Rust and Python, runs in both.
        assert_eq!(report.job.status, JobStatus::Succeeded, "{job}: {:?}", report.job.error);
        assert_eq!(
            report.job.status, real.job.status,
            "{job}: dev {:?}, domain {:?}",
            report.job.error, real.job.error
        );
        assert_eq!(
            report.job.error.map(|e| e.to_string()),
            real.job.error.map(|e| e.to_string())
        );
        assert_eq!(report.outputs.len(), real.outputs.len(), "{job}");
    }
    let stats = run_as(&dev.rt, DEV_OPERATOR, &dev.grant, wasm("district-stats"), &[]).await;
    assert_eq!(stats.job.status, JobStatus::Succeeded, "{:?}", stats.job.error);
    // The same dummy data from the same seed.
    let again = DevDomain::from_catalog(public.path(), 2_000, 3).unwrap();
    let (a, b) = (
        dev.rt.catalog().get("residents").unwrap(),
        again.rt.catalog().get("residents").unwrap(),
    );
    assert_eq!(a.sha256, b.sha256);
    // Nothing of the real rows is in it.
    assert_ne!(a.sha256, d.rt.catalog().get("residents").unwrap().sha256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_refuses_the_attack_suite_by_the_same_rules_as_the_domain() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("attacks/policy.slt")).unwrap();
    let (_, cases) = parse(&text);
    let d = new_domain(test_limits());
    let grant = with_lookup_datasets(&d);
    let public = tempfile::tempdir().unwrap();
    d.rt.evidence().publish_catalog(public.path()).unwrap();
    let dev = DevDomain::from_catalog(public.path(), 2_000, 5).unwrap();
    // Refusals and what does not exist must match exactly; what runs must
    // run in both with the same label (row counts depend on the data).
    let kind = |o: &str| match o.split_whitespace().next() {
        Some("ok") => format!("ok {}", o.split("label=").nth(1).unwrap_or("")),
        Some("error") => "error".to_string(),
        _ => o.to_string(),
    };
    let mut differ = Vec::new();
    let mut refused = 0;
    for case in &cases {
        let real = outcome(&d, &grant, &case.sql).await;
        let dummy = outcome_in(&dev.rt, DEV_OPERATOR, &dev.grant, &case.sql).await;
        if real.starts_with("refused") {
            refused += 1;
        }
        if kind(&real) != kind(&dummy) {
            differ.push(format!("{}\n    domain: {real}\n    dev:    {dummy}", case.sql));
        }
    }
    assert!(refused >= 40, "only {refused} refusals compared");
    assert!(
        differ.is_empty(),
        "{} of {} cases differ:\n{}",
        differ.len(),
        cases.len(),
        differ.join("\n")
    );
}
