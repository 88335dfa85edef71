//! Shared set-up: domains with the example datasets and the example jobs.

use inland_runtime::{Domain, DomainConfig, JobReport, JobRequest, Limits, Runtime};
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
    rt.register_dataset("residents", &sources.join("residents.parquet"), "residents")
        .unwrap();
    rt.register_dataset("enterprises", &sources.join("enterprises.parquet"), "enterprises")
        .unwrap();
    TestDomain {
        _dir: dir,
        root,
        sources,
        rt,
    }
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

pub async fn run(rt: &Runtime, name: &str, params: &[(&str, &str)]) -> JobReport {
    let params = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    rt.run_job(JobRequest {
        wasm: wasm(name),
        params,
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
