//! #23: registration in bounded memory. `inland dataset add` of a CSV file
//! larger than the memory its process may use, in a memory cgroup the test
//! makes, succeeds: stored, counted and proven unique, plain and sorted.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use inland_runtime::Runtime;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Memory the registering process may use (RSS and page cache it dirties).
const CAP: u64 = 256 << 20;
/// Rows of the generated file: about 330 MB of CSV.
const ROWS: u64 = 6_000_000;

/// A memory cgroup (v1 or v2) with a hard limit, removed when dropped.
struct Cgroup {
    dir: PathBuf,
    v2: bool,
}

impl Cgroup {
    fn create(name: &str, limit: u64) -> Cgroup {
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let (dir, v2) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.join(name), false)
        } else {
            (Path::new("/sys/fs/cgroup").join(name), true)
        };
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("this test needs to create a memory cgroup at {}: {e}", dir.display()));
        let (limit_file, swap_file) = if v2 {
            ("memory.max", "memory.swap.max")
        } else {
            ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
        };
        std::fs::write(dir.join(limit_file), limit.to_string()).unwrap();
        // No swapping around the limit, where the kernel allows setting it.
        let _ = std::fs::write(dir.join(swap_file), if v2 { "0".into() } else { limit.to_string() });
        Cgroup { dir, v2 }
    }

    /// The most memory its processes used together.
    fn peak(&self) -> u64 {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        std::fs::read_to_string(self.dir.join(file))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Runs `program args` inside the cgroup.
    fn run(&self, program: &Path, args: &[&str]) -> std::process::Output {
        let procs = self.dir.join("cgroup.procs");
        Command::new("sh")
            .arg("-c")
            .arg(r#"echo $$ > "$0" && exec "$@""#)
            .arg(&procs)
            .arg(program)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A CSV of `ROWS` service records: a unique record id, a person with
/// several records, a district, an amount and a note.
fn generate(path: &Path) -> u64 {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "record_id,person,district,amount,note").unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..ROWS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        writeln!(
            out,
            "{i},{},d{},{}.{:02},note {} about service {}",
            x % 1_000_000,
            x % 16,
            x % 5000,
            x % 100,
            x % 100_000,
            i % 977
        )
        .unwrap();
    }
    out.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn a_file_larger_than_the_memory_cap_registers_plain_and_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("records.csv");
    let size = generate(&csv);
    assert!(size > CAP, "the file ({size} bytes) must be larger than the cap");
    let domain = dir.path().join("domain");
    let inland = Path::new(env!("CARGO_BIN_EXE_inland"));
    let init = Command::new(inland)
        .args(["--domain", domain.to_str().unwrap(), "init", "--name", "memory"])
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));

    for (name, sort) in [("records", None), ("records_sorted", Some("person,record_id"))] {
        let cgroup = Cgroup::create(&format!("inland-registration-{}", std::process::id()), CAP);
        let mut args = vec![
            "--domain",
            domain.to_str().unwrap(),
            "dataset",
            "add",
            name,
            csv.to_str().unwrap(),
            "--description",
            "service records",
        ];
        if let Some(by) = sort {
            args.extend(["--sort-by", by]);
        }
        let added = cgroup.run(inland, &args);
        assert!(
            added.status.success(),
            "{name}: {:?}\n{}",
            added.status,
            String::from_utf8_lossy(&added.stderr)
        );
        // Over the cap the kernel kills the process; this shows it ran
        // inside the cgroup, counted.
        let peak = cgroup.peak();
        assert!(peak > 32 << 20, "{name}: peak {peak}");
        drop(cgroup);

        let rt = Runtime::open(&domain).unwrap();
        let record = rt.catalog().get(name).unwrap();
        assert_eq!(record.rows, ROWS, "{name}");
        // The proof over every row: the id is unique, the person is not.
        assert_eq!(record.unique_columns, vec!["record_id".to_string()], "{name}");
        if sort.is_some() {
            assert_eq!(record.sorted_by, vec!["person".to_string(), "record_id".to_string()]);
        }
        drop(rt);
        // The domain's spill directory is left empty.
        let spill: Vec<_> = std::fs::read_dir(domain.join("spill")).unwrap().flatten().collect();
        assert!(spill.is_empty(), "{name}: {spill:?}");
    }
}
