//! #22: `inland new job` writes a skeleton that builds as it is (Rust or
//! Python, with the guest SDK beside it; or SQL), and the result runs under
//! `inland dev` against dummy data from a published catalog.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use inland_runtime::{Domain, DomainConfig, Runtime};
use std::path::Path;
use std::process::{Command, Output};

fn inland(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inland"))
        .args(args)
        .current_dir(dir)
        .env_remove("INLAND_SERVER")
        .env_remove("INLAND_TOKEN")
        .output()
        .unwrap()
}

fn said(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A domain with the example data and policy, its catalog published into `to`.
fn published_catalog(dir: &Path, to: &Path) {
    let root = dir.join("domain");
    let sources = dir.join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    Domain::init_with(
        &root,
        DomainConfig {
            name: "new-job-test".into(),
            limits: Default::default(),
        },
    )
    .unwrap();
    let rt = Runtime::open(&root).unwrap();
    inland_examples::generate::write_examples(&sources, 2_000, 3).unwrap();
    for name in ["residents", "enterprises"] {
        rt.catalog()
            .register(name, &sources.join(format!("{name}.parquet")), name)
            .unwrap();
    }
    rt.policies()
        .apply_text(inland_examples::POLICY, "policy.toml")
        .unwrap()
        .unwrap();
    rt.evidence().publish_catalog(to).unwrap();
}

#[test]
fn a_new_rust_job_and_a_new_sql_job_build_and_run_under_dev() {
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("public");
    published_catalog(dir.path(), &public);
    let catalog = public.to_str().unwrap();

    // SQL: one file, runnable at once.
    let made = inland(dir.path(), &["new", "job", "district-sql", "--lang", "sql"]);
    assert!(made.status.success(), "{}", said(&made));
    let sql = dir.path().join("district-sql/district-sql.sql");
    let ran = inland(
        dir.path(),
        &[
            "dev",
            "--catalog",
            catalog,
            "--sql",
            sql.to_str().unwrap(),
            "--param",
            "min_age=int:18",
        ],
    );
    assert!(ran.status.success(), "{}", said(&ran));
    assert!(said(&ran).contains("by_district"), "{}", said(&ran));

    // Rust: a crate with the guest SDK vendored, built as a user would.
    let made = inland(dir.path(), &["new", "job", "district-rust"]);
    assert!(made.status.success(), "{}", said(&made));
    let again = inland(dir.path(), &["new", "job", "district-rust"]);
    assert!(!again.status.success(), "nothing is overwritten");
    let bad = inland(dir.path(), &["new", "job", "../escape"]);
    assert!(!bad.status.success(), "{}", said(&bad));
    let krate = dir.path().join("district-rust");
    // A target directory that outlives the test, so warm runs build little.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-job-target");
    let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--offline", "--target-dir"])
        .arg(&target)
        .current_dir(&krate)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", said(&built));
    let wasm = target.join("wasm32-wasip2/release/district_rust.wasm");
    assert!(wasm.is_file(), "{}", wasm.display());
    let ran = inland(
        dir.path(),
        &[
            "dev",
            "--catalog",
            catalog,
            wasm.to_str().unwrap(),
            "--param",
            "min_age=30",
        ],
    );
    assert!(ran.status.success(), "{}", said(&ran));
    assert!(
        said(&ran).contains("by_district") && said(&ran).contains("-- $min_age = int 30"),
        "{}",
        said(&ran)
    );
}

#[test]
fn a_new_python_job_builds_with_componentize_py_and_runs_under_dev() {
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("public");
    published_catalog(dir.path(), &public);
    let made = inland(dir.path(), &["new", "job", "district-py", "--lang", "python"]);
    assert!(made.status.success(), "{}", said(&made));
    let job = dir.path().join("district-py");
    // The build command the skeleton names, as a user runs it.
    let tool = std::env::var("COMPONENTIZE_PY").unwrap_or_else(|_| "componentize-py".into());
    let built = Command::new(tool)
        .args([
            "-d",
            "wit",
            "-w",
            "job",
            "componentize",
            "--stub-wasi",
            "-p",
            ".",
            "app",
            "-o",
            "district_py.wasm",
        ])
        .current_dir(&job)
        .output()
        .expect("componentize-py (python3 -m pip install componentize-py==0.25.1)");
    assert!(built.status.success(), "{}", said(&built));
    let ran = inland(
        dir.path(),
        &[
            "dev",
            "--catalog",
            public.to_str().unwrap(),
            job.join("district_py.wasm").to_str().unwrap(),
            "--param",
            "min_age=30",
        ],
    );
    assert!(ran.status.success(), "{}", said(&ran));
    assert!(
        said(&ran).contains("by_district") && said(&ran).contains("-- $min_age = int 30"),
        "{}",
        said(&ran)
    );
}
