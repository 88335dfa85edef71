//! Shared set-up: domains with the example datasets and the example jobs.

use inland_runtime::{
    Date, Domain, DomainConfig, GrantRequest, JobReport, JobRequest, Limits, OperatorStatus, OperatorType, Runtime,
};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Rows per generated example dataset in tests.
pub const ROWS: usize = 5_000;
/// Seed of the generated datasets.
pub const SEED: u64 = 11;

pub struct TestDomain {
    pub _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub sources: PathBuf,
    pub rt: Runtime,
    /// An approved operator holding [`TestDomain::grant`].
    pub operator: String,
    /// A grant over both example datasets, in force today.
    pub grant: String,
}

/// The operator every test domain has.
pub const OPERATOR: &str = "op-test";

/// Issues a grant to `operator` over `datasets`, in force from `from` for `years`.
pub fn issue(
    rt: &Runtime,
    operator: &str,
    datasets: &[&str],
    from: Date,
    until: Date,
) -> inland_runtime::Result<String> {
    rt.governance()
        .issue_grant(GrantRequest {
            operator: operator.into(),
            datasets: datasets.iter().map(|d| d.to_string()).collect(),
            purpose: "testing".into(),
            scenario: "tests".into(),
            from,
            until,
            products: vec![],
            quota: Default::default(),
            approved_components_only: false,
            privacy: Default::default(),
        })
        .map(|g| g.id)
}

/// Registers and approves an operator.
pub fn approved_operator(rt: &Runtime, name: &str) {
    rt.governance()
        .add_operator(name, OperatorType::Scenario, vec![])
        .unwrap();
    rt.governance()
        .set_operator_status(name, OperatorStatus::Approved, None)
        .unwrap();
}

/// Limits small enough that hostile jobs hit them quickly.
pub fn test_limits() -> Limits {
    Limits {
        timeout_secs: 2,
        memory_mib: 128,
        max_output_mib: 8,
        ..Limits::default()
    }
}

/// A new domain with both example datasets registered.
pub fn new_domain(limits: Limits) -> TestDomain {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("domain");
    let sources = dir.path().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    Domain::init_with(
        &root,
        DomainConfig {
            name: "test".into(),
            limits,
        },
    )
    .unwrap();
    let rt = Runtime::open(&root).unwrap();
    inland_examples::generate::write_examples(&sources, ROWS, SEED).unwrap();
    rt.catalog()
        .register("residents", &sources.join("residents.parquet"), "residents")
        .unwrap();
    rt.catalog()
        .register("enterprises", &sources.join("enterprises.parquet"), "enterprises")
        .unwrap();
    approved_operator(&rt, OPERATOR);
    let today = Date::today();
    let grant = issue(&rt, OPERATOR, &["residents", "enterprises"], today, today.add_years(1)).unwrap();
    TestDomain {
        _dir: dir,
        root,
        sources,
        rt,
        operator: OPERATOR.into(),
        grant,
    }
}

/// Applies the example policy, followed by `extra` policy text (more
/// `[datasets.X]` sections); returns the version applied.
pub fn apply_example_policy(d: &TestDomain, extra: &str) -> inland_runtime::PolicyVersion {
    let path = d.sources.join("policy.toml");
    let text = match extra {
        "" => inland_examples::POLICY.to_string(),
        extra => format!("{}\n{extra}", inland_examples::POLICY),
    };
    std::fs::write(&path, text).unwrap();
    d.rt.policies().apply(&path).unwrap().unwrap()
}

/// A grant to the test operator for `datasets`, from today for a year.
pub fn year_grant(d: &TestDomain, datasets: &[&str]) -> String {
    let today = Date::today();
    issue(&d.rt, OPERATOR, datasets, today, today.add_years(1)).unwrap()
}

/// Registers `taxes`, a protected register of `years` tax returns for each of
/// the first `enterprises` example enterprises, keyed by their USCC; returns
/// its policy section (USCC join-key-only, tax aggregate-only).
pub fn register_taxes(d: &TestDomain, enterprises: usize, years: &[i32]) -> &'static str {
    let registry = inland_examples::generate::enterprises(ROWS, SEED);
    let codes = arrow::array::AsArray::as_string::<i32>(registry.column(0));
    let mut taxes = String::from("uscc,year,tax\n");
    for i in 0..enterprises {
        for year in years {
            taxes.push_str(&format!("{},{year},{}\n", codes.value(i), 1000 + 37 * i));
        }
    }
    register_csv(d, "taxes", &taxes);
    r#"
[datasets.taxes]
grade = "general"
personal_information = false
entity = "uscc"
[datasets.taxes.columns]
uscc = { class = "direct-identifier", access = "join-key-only" }
year = { class = "attribute", access = "dimension" }
tax = { class = "sensitive", access = "aggregate-only" }
"#
}

/// Registers a dataset `name` from CSV text (for small lookup tables).
pub fn register_csv(d: &TestDomain, name: &str, text: &str) {
    let csv = d.sources.join(format!("{name}.csv"));
    std::fs::write(&csv, text).unwrap();
    d.rt.catalog().register(name, &csv, name).unwrap();
}

/// One domain shared by the tests that only read and run jobs, so each
/// component is compiled once per test run.
pub fn shared() -> &'static TestDomain {
    static SHARED: OnceLock<TestDomain> = OnceLock::new();
    SHARED.get_or_init(|| new_domain(test_limits()))
}

pub fn wasm(name: &str) -> Vec<u8> {
    inland_examples::jobs::wasm(name)
        .unwrap_or_else(|| panic!("no example job {name}"))
        .to_vec()
}

/// Runs an example job as the domain's operator under its grant.
pub async fn run(d: &TestDomain, name: &str, params: &[(&str, &str)]) -> JobReport {
    run_as(&d.rt, &d.operator, &d.grant, wasm(name), params).await
}

/// Runs a component as `operator` under `grant`.
pub async fn run_as(rt: &Runtime, operator: &str, grant: &str, wasm: Vec<u8>, params: &[(&str, &str)]) -> JobReport {
    let params = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    rt.jobs()
        .run(JobRequest {
            operator: operator.into(),
            grant: grant.into(),
            wasm,
            params,
            source_sha256: None,
        })
        .await
        .unwrap()
}

/// Every file under `dir`, relative to it.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// What the query engine is handed about `datasets`: their stored files in `domain`.
pub fn as_sources(
    domain: &inland_runtime::Domain,
    datasets: &[inland_runtime::DatasetRecord],
) -> Vec<inland_runtime::DatasetSource> {
    datasets.iter().map(|d| d.source(domain)).collect()
}
