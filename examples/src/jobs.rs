//! The example jobs, embedded as compiled WebAssembly components.

include!(concat!(env!("OUT_DIR"), "/jobs.rs"));

/// The component bytes of the example job `name` (e.g. `district-stats`, `district-stats-py`).
pub fn wasm(name: &str) -> Option<&'static [u8]> {
    ALL.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes)
}

/// Every example job: (name, component bytes), in name order. Rust jobs are
/// named by their crate, Python jobs (`examples/python/NAME.py`) `NAME-py`.
pub fn all() -> &'static [(&'static str, &'static [u8])] {
    ALL
}

/// The example jobs that compute something a domain would release: in
/// Rust, and the same computations in Python (`examples/python/`).
pub const USEFUL: [&str; 4] = ["district-stats", "district-stats-py", "join-stats", "join-stats-py"];

/// A Python job for tests: `--param sql=...` runs the SQL and emits the
/// result (as `sql-probe` does); `--param try=socket|file|env|listdir`
/// tries to reach the network, a host file, the environment or the file system.
pub const PYTHON_PROBE: &str = "probe-py";

/// The SQL job the product ships: runs the `-- output: NAME` statements of
/// a `.sql` file (`inland job run --sql`, or `POST /api/jobs` with
/// `application/sql`), each as an output, with bound `$NAME` values.
pub const SQL_JOB: &str = "sql-job";

/// A job that runs the SQL given as `--param sql=...` and emits the result; for tests.
pub const SQL_PROBE: &str = "sql-probe";

/// A hostile job that reads a value (`--param sql=...`) and writes it into
/// its log, stdout, stderr, query texts and returned error.
pub const LEAK: &str = "hostile-leak";

/// The hostile example jobs and the limit or capability each one runs into.
pub const HOSTILE: [(&str, &str); 7] = [
    ("hostile-files", "wasi:filesystem"),
    ("hostile-sockets", "wasi:sockets"),
    ("hostile-env", "environment"),
    ("hostile-loop", "time limit"),
    ("hostile-alloc", "memory limit"),
    ("hostile-output", "output limit"),
    ("hostile-panic", "panicked"),
];

/// Jobs the benchmarks run: a job that does nothing, one that makes `n` host
/// calls, and one that reads every batch of a query and keeps nothing.
pub const BENCH: [&str; 3] = ["noop", "bench-calls", "bench-stream"];
