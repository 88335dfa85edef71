//! Set-up shared by the benchmarks that run jobs: a domain in a temporary
//! directory, and an approved operator holding a grant.

use inland_runtime::{Date, Domain, DomainConfig, GrantRequest, Limits, OperatorStatus, OperatorType, Runtime};
use std::path::Path;

/// The operator the benchmarks run jobs as.
pub const OPERATOR: &str = "bench-op";

/// A new domain at `root` with these limits, opened.
pub fn domain(root: &Path, name: &str, limits: Limits) -> Runtime {
    Domain::init_with(
        root,
        DomainConfig {
            name: name.into(),
            limits,
        },
    )
    .unwrap();
    Runtime::open(root).unwrap()
}

/// Approves [`OPERATOR`] and issues it a one-year grant over `datasets`; returns the grant id.
pub fn grant(rt: &Runtime, datasets: &[&str], purpose: &str) -> String {
    rt.governance()
        .add_operator(OPERATOR, OperatorType::Scenario, vec![])
        .unwrap();
    rt.governance()
        .set_operator_status(OPERATOR, OperatorStatus::Approved, None)
        .unwrap();
    let today = Date::today();
    rt.governance()
        .issue_grant(GrantRequest {
            operator: OPERATOR.into(),
            datasets: datasets.iter().map(|d| d.to_string()).collect(),
            purpose: purpose.into(),
            scenario: "benchmark".into(),
            from: today,
            until: today.add_years(1),
            products: vec![],
            quota: Default::default(),
            approved_components_only: false,
            privacy: Default::default(),
        })
        .unwrap()
        .id
}

/// What the query engine is handed about `datasets`: their stored files in `domain`.
pub fn as_sources(
    domain: &inland_runtime::Domain,
    datasets: &[inland_runtime::DatasetRecord],
) -> Vec<inland_runtime::DatasetSource> {
    datasets.iter().map(|d| d.source(domain)).collect()
}

/// The most memory this process has held, in MiB (`VmHWM`).
#[allow(dead_code)]
pub fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kib| kib / 1024)
}
