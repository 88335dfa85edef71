//! Builds the example jobs (a separate cargo workspace in `jobs/`) for
//! `wasm32-wasip2` and embeds the components, so the demo and the tests
//! always run the jobs that match this source tree.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a build script reports failure by panicking

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let jobs_dir = manifest_dir.join("jobs");
    println!("cargo:rerun-if-changed={}", jobs_dir.display());
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("../guest-sdk/src").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("../guest-sdk/wit").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("../guest-sdk/Cargo.toml").display()
    );

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = wasm_target_dir(&out_dir);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    let mut cmd = Command::new(cargo);
    cmd.current_dir(&jobs_dir)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    // The outer build's flags and wrappers (clippy, coverage) are for the host, not the guests.
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    // Paths are remapped: a component carries no path of the machine or
    // checkout that built it (panic locations name `/inland/...`).
    let repo = manifest_dir.parent().unwrap_or(&manifest_dir).to_path_buf();
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let rustup_home = env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))
        .unwrap_or_default();
    let flags = [
        format!("--remap-path-prefix={}=/inland", repo.display()),
        format!("--remap-path-prefix={}=/cargo", cargo_home.display()),
        format!("--remap-path-prefix={}=/rustup", rustup_home.display()),
    ];
    cmd.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}"));
    let status = cmd.status().expect("failed to start cargo to build the example jobs");
    if !status.success() {
        panic!(
            "building the example jobs for wasm32-wasip2 failed (see above). If the target is \
             missing, run `rustup target add wasm32-wasip2`."
        );
    }

    let release = target_dir.join("wasm32-wasip2").join("release");
    let mut names: Vec<String> = std::fs::read_dir(&jobs_dir)
        .expect("examples/jobs is readable")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();

    let mut jobs: Vec<(String, PathBuf)> = names
        .iter()
        .map(|name| {
            let wasm = release.join(format!("{}.wasm", name.replace('-', "_")));
            assert!(wasm.is_file(), "expected {} after building the jobs", wasm.display());
            (name.clone(), wasm)
        })
        .collect();
    jobs.extend(build_python(&manifest_dir, &target_dir));
    jobs.sort();
    let mut code =
        String::from("/// Every example job: (name, component bytes).\npub(crate) static ALL: &[(&str, &[u8])] = &[\n");
    for (name, wasm) in &jobs {
        writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            wasm.display().to_string()
        )
        .expect("write to String");
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("jobs.rs"), code).expect("write jobs.rs");
}

/// The componentize-py the Python jobs are built with (`make setup` installs it).
const COMPONENTIZE_PY: &str = "0.25.1";

/// Builds each `python/NAME.py` into the component `NAME-py` (underscores
/// as dashes) with componentize-py, with WASI stubbed out: a job imports
/// nothing but `inland:job/host`. A component newer than its sources is kept.
fn build_python(manifest_dir: &Path, target_dir: &Path) -> Vec<(String, PathBuf)> {
    let python_dir = manifest_dir.join("python");
    let sdk = manifest_dir.join("../guest-sdk/python");
    let wit = manifest_dir.join("../guest-sdk/wit");
    println!("cargo:rerun-if-changed={}", python_dir.display());
    println!("cargo:rerun-if-changed={}", sdk.display());
    println!("cargo:rerun-if-env-changed=COMPONENTIZE_PY");
    let tool = env::var_os("COMPONENTIZE_PY").unwrap_or_else(|| "componentize-py".into());
    let mut modules: Vec<String> = std::fs::read_dir(&python_dir)
        .expect("examples/python is readable")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".py").map(str::to_string))
        .collect();
    modules.sort();
    let newest_source = [&python_dir, &sdk.join("inland_guest"), &wit]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().filter_map(|e| e.ok()))
        .filter(|e| is_source(&e.path()))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max();
    let out = target_dir.join("python");
    // componentize-py writes __pycache__ beside the sources it reads: it
    // reads copies, so the source tree stays as checked out.
    // One directory per build script run: a debug and a release build may
    // run this at once.
    let copies = out.join(format!("src-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copies);
    copy_py(&python_dir, &copies.join("jobs"));
    copy_py(&sdk.join("inland_guest"), &copies.join("sdk").join("inland_guest"));
    let mut built = Vec::new();
    for module in modules {
        let name = format!("{}-py", module.replace('_', "-"));
        let wasm = out.join(format!("{module}-{COMPONENTIZE_PY}.wasm"));
        let fresh = wasm.metadata().and_then(|m| m.modified()).ok();
        if fresh.is_none() || fresh < newest_source {
            let status = Command::new(&tool)
                .args(["-d"])
                .arg(&wit)
                .args(["-w", "job", "componentize", "--stub-wasi", "-p"])
                .arg(copies.join("jobs"))
                .arg("-p")
                .arg(copies.join("sdk"))
                .arg(&module)
                .arg("-o")
                .arg(&wasm)
                .status();
            match status {
                Ok(s) if s.success() => {}
                Ok(_) => panic!("componentize-py failed on examples/python/{module}.py (see above)"),
                Err(e) => panic!(
                    "cannot run componentize-py ({e}); the Python example jobs need it: \
                     `python3 -m pip install componentize-py=={COMPONENTIZE_PY}` (or `make setup`), \
                     or set COMPONENTIZE_PY to its path"
                ),
            }
        }
        built.push((name, wasm));
    }
    let _ = std::fs::remove_dir_all(&copies);
    built
}

/// `<target>/wasm-jobs`, beside the host build's own profiles, so it survives
/// between builds and never locks the directory the outer cargo holds.
fn wasm_target_dir(out_dir: &Path) -> PathBuf {
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out (or with a target triple in between).
    out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent())
        .and_then(|profile| profile.parent())
        .map(|target| target.join("wasm-jobs"))
        .unwrap_or_else(|| out_dir.join("wasm-jobs"))
}

fn is_source(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "py" || x == "wit")
}

/// Copies the `.py` files of `from` into `to`.
fn copy_py(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create a directory for the Python sources");
    for entry in std::fs::read_dir(from)
        .expect("the Python sources are readable")
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "py") {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy a Python source");
        }
    }
}
