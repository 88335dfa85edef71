//! Registration of a large file (#23): `dataset add` as an admin runs it
//! (stored in the domain's layout, columns proven unique, the identifier
//! index refreshed), timed, with the process's peak resident memory
//! (registering is all this process does, so the peak is registration's).
//!
//! `benches/tpch/register.py` runs it on TPC-H lineitem at scale factor 10
//! beside DuckDB's `COPY … TO` of the same file and writes the figures to
//! `benches/RESULTS.md`. By hand:
//! `cargo bench -p inland-benches --bench register -- --file PATH [--sort-by a,b]`.
//! `cargo test` registers the bundled scale-factor-0.001 line items, as a check.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use inland_runtime::{DatasetMeta, Limits};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common.rs"]
#[allow(dead_code)]
mod common;

fn main() {
    let mut file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tpch/sf0.001/lineitem.parquet");
    let mut sort_by = Vec::new();
    let mut domain: Option<PathBuf> = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--file" => file = it.next().map(PathBuf::from).expect("--file PATH"),
            "--sort-by" => {
                sort_by = it
                    .next()
                    .expect("--sort-by a,b")
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            "--domain" => domain = it.next().map(PathBuf::from),
            _ => {}
        }
    }
    // The domain on the same disk as the file by default (its stored copy is as large).
    let dir = match &domain {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let rt = common::domain(&dir.path().join("domain"), "bench-register", Limits::default());
    let before = common::peak_rss_mib().unwrap_or(0);
    let started = Instant::now();
    let record = rt
        .catalog()
        .register_with(
            "lineitem",
            &file,
            DatasetMeta {
                description: "TPC-H line items".into(),
                sort_by: sort_by.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let stored = std::fs::metadata(rt.domain().root().join(record.relative_path()))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        r#"{{"rows":{},"seconds":{seconds:.3},"peak_rss_mib":{},"rss_before_mib":{before},"stored_bytes":{stored},"sort_by":{:?}}}"#,
        record.rows,
        common::peak_rss_mib().unwrap_or(0),
        sort_by.join(",")
    );
    assert!(record.rows > 0, "nothing was registered");
}
