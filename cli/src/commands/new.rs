//! `inland new job`: writes a job skeleton that builds and runs as it is.
//! A Rust job gets the guest SDK (its source and WIT, as this `inland` was
//! built with them) in `inland-guest/`, so it builds with no checkout of
//! Inland; a Python job gets the Python guest package and the WIT the same
//! way; a SQL job is one file.

use crate::args::{LangArg, NewCmd};
use anyhow::{Context, Result, bail};
use std::path::Path;

/// The guest SDK's files, as this binary was built with them.
const SDK: [(&str, &str); 5] = [
    ("src/lib.rs", include_str!("../../../guest-sdk/src/lib.rs")),
    ("src/error.rs", include_str!("../../../guest-sdk/src/error.rs")),
    ("src/ipc.rs", include_str!("../../../guest-sdk/src/ipc.rs")),
    ("src/params.rs", include_str!("../../../guest-sdk/src/params.rs")),
    ("wit/job.wit", include_str!("../../../guest-sdk/wit/job.wit")),
];

/// The Python guest package and the WIT it is built against.
const PYTHON_SDK: [(&str, &str); 2] = [
    (
        "inland_guest/__init__.py",
        include_str!("../../../guest-sdk/python/inland_guest/__init__.py"),
    ),
    ("wit/job.wit", include_str!("../../../guest-sdk/wit/job.wit")),
];

const PYTHON_JOB: &str = r#""""{name}: counts residents by district (replace with your analysis).

Build:  componentize-py -d wit -w job componentize --stub-wasi -p . app -o {file}
        (python3 -m pip install componentize-py==0.25.1 first; --stub-wasi is required)
Try it on dummy data:  inland dev --catalog PUBLISHED_CATALOG {file} --param min_age=18
"""

from inland_guest import WitWorld, emit, job, log, query  # noqa: F401 (WitWorld is the export)


@job
def run(params):
    min_age = params.get("min_age", 0, int)
    # `$min_age` is bound by the host after parsing: a value, never SQL.
    result = query(
        "SELECT district, count(*) AS residents FROM residents "
        "WHERE age >= $min_age GROUP BY district ORDER BY district",
        min_age=min_age,
    )
    for notice in result.notices():
        log(f"host notice: {notice}", "warn")
    emit("by_district", result.columns, result)
"#;

/// The SDK's manifest on its own (in this repository it inherits from the workspace).
const SDK_MANIFEST: &str = r#"[package]
name = "inland-guest"
version = "0.1.0"
edition = "2024"
license = "Apache-2.0"
publish = false

[dependencies]
wit-bindgen = { version = "=0.61.1" }
arrow-array = { version = "=59.3.2" }
arrow-schema = { version = "=59.3.2" }
arrow-ipc = { version = "=59.3.2", default-features = false }
"#;

const RUST_JOB: &str = r#"//! {name}: counts residents by district (replace with your analysis).
//! Try it on dummy data: `inland dev --catalog PUBLISHED_CATALOG target/wasm32-wasip2/release/{crate}.wasm`.

use inland_guest::{Error, Params, Value, emit, job, log, query_stream_with};

fn run(params: Params) -> Result<(), Error> {
    let min_age: i64 = params.get_or("min_age", 0)?;
    // `$min_age` is bound by the host after parsing: a value, never SQL.
    let rows = query_stream_with(
        "SELECT district, count(*) AS residents FROM residents WHERE age >= $min_age GROUP BY district",
        &[("min_age", Value::Integer(min_age))],
    )?;
    for notice in rows.notices() {
        log!(warn: "host notice: {notice}");
    }
    for batch in rows {
        emit("by_district", &batch?)?;
    }
    Ok(())
}

job!(run);
"#;

const SQL_JOB: &str = r#"-- {name}: each statement after an `-- output: NAME` line becomes that output.
-- Try it on dummy data:  inland dev --catalog PUBLISHED_CATALOG --sql {file} --param min_age=int:18
-- Run it in the domain:  inland job run --sql {file} --grant G --param min_age=int:18
-- `$min_age` is bound to the --param value by the host: a value, never SQL.

-- output: by_district
SELECT district, count(*) AS residents
FROM residents WHERE age >= $min_age
GROUP BY district ORDER BY district;
"#;

/// Writes `path` with `text`, refusing to overwrite anything.
fn write_new(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Runs `inland new`.
pub fn run(cmd: NewCmd) -> Result<()> {
    let NewCmd::Job { name, lang, dir } = cmd;
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!("a job's name is a lower-case letter, then lower-case letters, digits, `-` or `_` (at most 64)");
    }
    let root = dir.unwrap_or_else(|| ".".into()).join(&name);
    if root.exists() {
        bail!("{} exists already; choose another name or --dir", root.display());
    }
    let fill = |template: &str, file: &str| {
        template
            .replace("{name}", &name)
            .replace("{crate}", &name.replace('-', "_"))
            .replace("{file}", file)
    };
    match lang {
        LangArg::Sql => {
            let file = format!("{name}.sql");
            write_new(&root.join(&file), &fill(SQL_JOB, &file))?;
            println!("wrote {}", root.join(&file).display());
        }
        LangArg::Python => {
            let file = format!("{}.wasm", name.replace('-', "_"));
            write_new(&root.join("app.py"), &fill(PYTHON_JOB, &file))?;
            for (path, text) in PYTHON_SDK {
                write_new(&root.join(path), text)?;
            }
            println!(
                "wrote {root}\n  build: cd {root} && componentize-py -d wit -w job componentize --stub-wasi -p . app -o {file}\n  \
                 (python3 -m pip install componentize-py==0.25.1 first)",
                root = root.display(),
            );
        }
        LangArg::Rust => {
            let manifest = format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
                 [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\ninland-guest = {{ path = \"inland-guest\" }}\n\n\
                 [workspace]\n\n[profile.release]\nopt-level = 2\nstrip = true\npanic = \"abort\"\n"
            );
            write_new(&root.join("Cargo.toml"), &manifest)?;
            write_new(&root.join("src/lib.rs"), &fill(RUST_JOB, ""))?;
            write_new(
                &root.join(".cargo/config.toml"),
                "[build]\ntarget = \"wasm32-wasip2\"\n",
            )?;
            write_new(&root.join("inland-guest/Cargo.toml"), SDK_MANIFEST)?;
            for (path, text) in SDK {
                write_new(&root.join("inland-guest").join(path), text)?;
            }
            println!(
                "wrote {root}\n  build: cd {root} && cargo build --release   (rustup target add wasm32-wasip2 first)\n  \
                 component: {root}/target/wasm32-wasip2/release/{crate}.wasm",
                root = root.display(),
                crate = name.replace('-', "_")
            );
        }
    }
    Ok(())
}
