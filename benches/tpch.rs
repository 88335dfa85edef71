//! The 22 TPC-H queries, run natively in DataFusion and as Inland
//! jobs through the full path (admission, sandbox, policy checks with a
//! policy that allows the queries, results emitted to quarantine and checked
//! by the gate), on the same Parquet files in the same process. Results are
//! compared, so a run also checks that Inland answers exactly what the engine
//! answers.
//!
//! `benches/tpch/run.py` runs it at scale factor 1 beside DuckDB and writes
//! `benches/RESULTS.md`. By hand:
//! `cargo bench -p inland-benches --bench tpch -- --data DIR --runs 5 --json out.jsonl`
//! (`--sorted`: store line items sorted, the documented option; `--stored-copy
//! DIR`: copy the files as Inland stores them there, for DuckDB to read too).
//! `cargo test` runs it once on the bundled scale-factor-0.001 files.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use inland_runtime::{JobRequest, JobStatus, Limits, Runtime};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator the `inland` binary runs with, so that the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TABLES: [&str; 8] = [
    "lineitem", "orders", "customer", "supplier", "nation", "region", "part", "partsupp",
];
const QUERIES: [&str; 22] = [
    "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9", "q10", "q11", "q12", "q13", "q14", "q15", "q16", "q17",
    "q18", "q19", "q20", "q21", "q22",
];
/// The masking keys of the policy sessions measured outside a job (any fixed values do).
const KEYS: inland_runtime::PolicyKeys = inland_runtime::PolicyKeys {
    pseudonym: [7; 32],
    entity: [7; 32],
};
#[path = "common.rs"]
mod common;
use common::{OPERATOR, as_sources};

struct Args {
    data: PathBuf,
    runs: usize,
    json: Option<PathBuf>,
    /// Print each query's physical plan, native and Inland's, and stop.
    explain: bool,
    /// Run only this query (for profiling one).
    only: Option<String>,
    /// Store line items sorted (`sort_order`); by default every table is
    /// stored in file order, as `dataset add` without `--sort-by` does.
    sorted: bool,
    /// Copy each table as Inland stores it into this directory.
    stored_copy: Option<PathBuf>,
    /// Time only Inland (native runs once, for the result check): for profiling.
    inland_only: bool,
}

fn args() -> Args {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        data: here.join("tpch/sf0.001"),
        runs: 1,
        json: None,
        explain: false,
        only: None,
        sorted: false,
        stored_copy: None,
        inland_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--data" => a.data = it.next().map(PathBuf::from).expect("--data DIR"),
            "--runs" => a.runs = it.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--json" => a.json = it.next().map(PathBuf::from),
            "--explain" => a.explain = true,
            "--query" => a.only = it.next(),
            "--sorted" => a.sorted = true,
            "--stored-copy" => a.stored_copy = it.next().map(PathBuf::from),
            "--inland-only" => a.inland_only = true,
            _ => {}
        }
    }
    a
}

/// How Inland is told to store each table (`dataset add --sort-by`): line
/// items by return flag, then ship date, so that a flag or a date range
/// reads only the row groups it covers.
fn sort_order(table: &str) -> Vec<String> {
    let by: &[&str] = match table {
        "lineitem" => &["l_returnflag", "l_shipdate"],
        _ => &[],
    };
    by.iter().map(|c| c.to_string()).collect()
}

fn query(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tpch/queries/{name}.sql"))).unwrap()
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

/// A policy that lets the queries through: no personal data, every column a
/// plaintext attribute (the checks still run on every plan).
fn policy(rt: &Runtime) -> String {
    let mut text = String::from("[domain]\nmin_group_size = 10\n\n");
    for d in rt.catalog().list().unwrap() {
        text.push_str(&format!(
            "[datasets.{0}]\ngrade = \"general\"\npersonal_information = false\nentity = \"{1}\"\n\n[datasets.{0}.columns]\n",
            d.name, d.columns[0].name
        ));
        for c in &d.columns {
            text.push_str(&format!(
                "{} = {{ class = \"attribute\", access = \"plaintext\" }}\n",
                c.name
            ));
        }
        text.push('\n');
    }
    text
}

fn pretty(batches: &[arrow::record_batch::RecordBatch]) -> String {
    arrow::util::pretty::pretty_format_batches(batches).unwrap().to_string()
}

/// A session over `data` with DataFusion's default settings: the native peer.
fn native_session(tokio: &tokio::runtime::Runtime, files: &[(String, PathBuf)]) -> SessionContext {
    let ctx = SessionContext::new();
    tokio.block_on(async {
        for (t, path) in files {
            ctx.register_parquet(t.as_str(), path.to_str().unwrap(), ParquetReadOptions::default())
                .await
                .unwrap();
        }
    });
    ctx
}

/// The physical plans of every query, natively and as Inland plans them
/// under the policy: where a difference in time starts.
fn explain(tokio: &tokio::runtime::Runtime, rt: &Runtime, native: &SessionContext, policy: &str) {
    use datafusion::physical_plan::displayable;
    let datasets = rt.catalog().list().unwrap();
    let catalog = datasets
        .iter()
        .map(|d| (d.name.clone(), d.columns.iter().map(|c| c.name.clone()).collect()))
        .collect();
    let policy = inland_runtime::Policy::load(policy, "policy.toml", &catalog).unwrap();
    let engine = inland_runtime::QueryEngine::new(8 << 30).unwrap();
    let names: Vec<String> = datasets.iter().map(|d| d.name.clone()).collect();
    let scope = inland_runtime::QueryScope::under(Some(&policy), names);
    tokio.block_on(async {
        let ctx = engine
            .session(&as_sources(rt.domain(), &datasets), Some((&policy, KEYS)))
            .await
            .unwrap();
        for q in QUERIES {
            let sql = query(q);
            let plan = native.sql(&sql).await.unwrap().create_physical_plan().await.unwrap();
            println!("== {q} native\n{}", displayable(plan.as_ref()).indent(true));
            let planned = engine.plan(&ctx, &scope, &sql).await.unwrap();
            let plan = engine.physical_plan(&ctx, &planned).await.unwrap();
            println!("== {q} inland\n{}", displayable(plan.as_ref()).indent(true));
            // The same plan once more, shown with each operator's rows and time.
            let stream = engine.execute_physical(&ctx, Arc::clone(&plan)).unwrap();
            datafusion::physical_plan::common::collect(stream).await.unwrap();
            println!(
                "== {q} inland, run\n{}",
                datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(plan.as_ref()).indent(true)
            );
            // The same plan run outside a job: separates the engine session
            // (policy tables, memory pool) from the job path.
            let mut times = Vec::new();
            for _ in 0..4 {
                let t = Instant::now();
                let stream = engine.execute(&ctx, &planned).await.unwrap();
                datafusion::physical_plan::common::collect(stream).await.unwrap();
                times.push(t.elapsed());
            }
            // As a job does it: a fresh session, planned and run.
            let mut fresh = Vec::new();
            for _ in 0..4 {
                let t = Instant::now();
                let ctx = engine
                    .session(&as_sources(rt.domain(), &datasets), Some((&policy, KEYS)))
                    .await
                    .unwrap();
                let planned = engine.plan(&ctx, &scope, &sql).await.unwrap();
                let stream = engine.execute(&ctx, &planned).await.unwrap();
                datafusion::physical_plan::common::collect(stream).await.unwrap();
                fresh.push(t.elapsed());
            }
            for _ in 0..3 {
                let t = Instant::now();
                let ctx = engine
                    .session(&as_sources(rt.domain(), &datasets), Some((&policy, KEYS)))
                    .await
                    .unwrap();
                let t1 = t.elapsed();
                let planned = engine.plan(&ctx, &scope, &sql).await.unwrap();
                let t2 = t.elapsed();
                let _ = engine.physical_plan(&ctx, &planned).await.unwrap();
                let t3 = t.elapsed();
                let n = Instant::now();
                let _ = native.sql(&sql).await.unwrap().create_physical_plan().await.unwrap();
                println!(
                    "== {q} planning: session {t1:?} logical {t2:?} physical {t3:?}; native both {:?}",
                    n.elapsed()
                );
            }
            let mut native_times = Vec::new();
            for _ in 0..4 {
                let t = Instant::now();
                native.sql(&sql).await.unwrap().collect().await.unwrap();
                native_times.push(t.elapsed());
            }
            println!(
                "== {q} timing: native {:?}, Inland's session outside a job {:?}, a fresh session each time {:?}",
                median(&native_times),
                median(&times),
                median(&fresh)
            );
        }
    });
}

fn json_line(engine: &str, q: &str, times: &[Duration], extra: &str) -> String {
    format!(
        r#"{{"engine":"{engine}","query":"{q}","median_s":{},"runs_s":{:?}{extra}}}"#,
        median(times).as_secs_f64(),
        times.iter().map(Duration::as_secs_f64).collect::<Vec<_>>()
    )
}

fn main() {
    let a = args();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // Native DataFusion, default settings, straight on the generated files.
    let generated: Vec<(String, PathBuf)> = TABLES
        .iter()
        .map(|t| (t.to_string(), a.data.join(format!("{t}.parquet"))))
        .collect();
    let native = native_session(&tokio, &generated);

    // Inland: the same files registered as datasets, queried by a job.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("domain");
    let rt = common::domain(
        &root,
        "tpch",
        Limits {
            timeout_secs: 600,
            query_memory_mib: 8192,
            ..Limits::default()
        },
    );
    let t = Instant::now();
    for table in TABLES {
        let sort_by = if a.sorted { sort_order(table) } else { Vec::new() };
        let meta = inland_runtime::DatasetMeta {
            description: table.to_string(),
            sort_by,
            ..Default::default()
        };
        rt.catalog()
            .register_with(table, &a.data.join(format!("{table}.parquet")), meta)
            .unwrap();
    }
    eprintln!("inland: registered {} tables in {:?}", TABLES.len(), t.elapsed());
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy(&rt)).unwrap();
    rt.policies().apply(&policy_path).unwrap().unwrap();
    let grant = common::grant(&rt, &TABLES, "TPC-H benchmark");
    let probe = inland_examples::jobs::wasm(inland_examples::jobs::SQL_PROBE)
        .unwrap()
        .to_vec();
    // Native DataFusion again, on the files as Inland stores them: separates
    // the stored layout's share of the difference from the Inland path's.
    let stored: Vec<(String, PathBuf)> = rt
        .catalog()
        .list()
        .unwrap()
        .iter()
        .map(|d| (d.name.clone(), rt.domain().root().join(d.relative_path())))
        .collect();
    let native_stored = native_session(&tokio, &stored);
    if let Some(dir) = &a.stored_copy {
        std::fs::create_dir_all(dir).unwrap();
        for (table, path) in &stored {
            std::fs::copy(path, dir.join(format!("{table}.parquet"))).unwrap();
        }
    }

    if a.explain {
        explain(&tokio, &rt, &native, &std::fs::read_to_string(&policy_path).unwrap());
        return;
    }
    let run_native = |ctx: &SessionContext, sql: &str| {
        let t = Instant::now();
        let result = tokio.block_on(async { ctx.sql(sql).await.unwrap().collect().await.unwrap() });
        (t.elapsed(), result)
    };
    let run_inland = |sql: &str| {
        let t = Instant::now();
        let report = tokio
            .block_on(rt.jobs().run(JobRequest {
                wasm: probe.clone(),
                params: vec![("sql".into(), sql.to_string())],
                operator: OPERATOR.into(),
                grant: grant.clone(),
                source_sha256: None,
            }))
            .unwrap();
        (t.elapsed(), report)
    };

    // The engines take turns within each run, so that drift in the machine's
    // speed (large on a shared 2-core machine) falls on all of them alike.
    let mut lines = Vec::new();
    for q in QUERIES.iter().filter(|q| a.only.as_deref().is_none_or(|o| o == **q)) {
        let sql = query(q);
        let (mut n_times, mut s_times, mut i_times, mut sandbox) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut expected = Vec::new();
        for i in 0..=a.runs {
            let (mut nt, mut st) = (Duration::ZERO, Duration::ZERO);
            if i == 0 || !a.inland_only {
                (nt, expected) = run_native(&native, &sql);
                st = run_native(&native_stored, &sql).0;
            }
            let (it, report) = run_inland(&sql);
            assert_eq!(report.job.status, JobStatus::Succeeded, "{q}: {:?}", report.job.error);
            if i == 0 {
                // The job saw exactly what the engine computes.
                let rows: usize = expected.iter().map(|b| b.num_rows()).sum();
                match report.outputs.first() {
                    Some(o) => {
                        let got = rt.reviews().output_table(&o.id).unwrap();
                        assert_eq!(
                            pretty(&got),
                            pretty(&expected),
                            "{q}: Inland's result differs from native DataFusion"
                        );
                    }
                    None => assert_eq!(rows, 0, "{q}: Inland returned nothing"),
                }
            }
            if i > 0 || a.runs == 0 {
                n_times.push(nt);
                s_times.push(st);
                i_times.push(it);
                sandbox.push(Duration::from_micros(report.job.run_us));
            }
        }
        eprintln!(
            "{q}: native {:?}, native on the stored copy {:?}, inland {:?} (in the sandbox {:?})",
            median(&n_times),
            median(&s_times),
            median(&i_times),
            median(&sandbox)
        );
        lines.push(json_line("native", q, &n_times, ""));
        lines.push(json_line("native-stored", q, &s_times, ""));
        let extra = format!(r#","sandbox_median_s":{}"#, median(&sandbox).as_secs_f64());
        lines.push(json_line("inland", q, &i_times, &extra));
    }
    let out = lines.join("\n") + "\n";
    match &a.json {
        Some(p) => std::fs::write(p, out).unwrap(),
        None => print!("{out}"),
    }
}
