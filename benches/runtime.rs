//! Runtime benchmarks: job start (cold: first compile; warm: cached), the
//! host-call round trip, moving query results into a job (bytes/s), the cost
//! of the policy checks at planning time and on a 1M-row aggregate, and 50
//! jobs submitted at once (with the process's peak memory); Python jobs
//! beside Rust ones and the row interface against Arrow IPC.
//!
//! Run: `cargo bench -p inland-benches --bench runtime`. `cargo test` runs
//! each once on small data, as a check that they still work.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inland_runtime::{JobRequest, JobStatus, Limits, Policy, QueryEngine, QueryScope, Runtime};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The allocator the `inland` binary runs with, so that the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Full runs (`cargo bench`) use 1M residents; `cargo test` a quick 10k.
fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn rows() -> usize {
    if full() { 1_000_000 } else { 10_000 }
}

struct Bench {
    _dir: tempfile::TempDir,
    root: PathBuf,
    rt: Option<Runtime>,
    grant: String,
    policy: Policy,
    tokio: tokio::runtime::Runtime,
}

#[path = "common.rs"]
mod common;
use common::{OPERATOR, as_sources};

fn setup() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("domain");
    let sources = dir.path().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    let rt = common::domain(
        &root,
        "bench",
        Limits {
            timeout_secs: 600,
            max_output_mib: 256,
            ..Limits::default()
        },
    );
    inland_examples::generate::write_examples(&sources, rows(), 7).unwrap();
    // Three service records per resident on average, in no order (#23).
    let residents = inland_examples::generate::residents(rows(), 7);
    let services = inland_examples::generate::services(&residents, 3 * rows(), 7);
    inland_examples::generate::write_parquet(&sources.join("services.parquet"), &services).unwrap();
    drop((residents, services));
    // The same records stored by person (`dataset add --sort-by resident_id`).
    rt.catalog()
        .register_with(
            "services_by_person",
            &sources.join("services.parquet"),
            inland_runtime::DatasetMeta {
                description: "service records by person".into(),
                sort_by: vec!["resident_id".into()],
                ..Default::default()
            },
        )
        .unwrap();
    // The same records keyed by person (`dataset add --entity resident_id`):
    // the hidden entity key stored beside the rows, in its order.
    rt.catalog()
        .register_with(
            "services_keyed",
            &sources.join("services.parquet"),
            inland_runtime::DatasetMeta {
                description: "service records keyed by person".into(),
                entity: Some("resident_id".into()),
                ..Default::default()
            },
        )
        .unwrap();
    rt.catalog()
        .register("residents", &sources.join("residents.parquet"), "residents")
        .unwrap();
    rt.catalog()
        .register("services", &sources.join("services.parquet"), "service records")
        .unwrap();
    rt.catalog()
        .register("enterprises", &sources.join("enterprises.parquet"), "enterprises")
        .unwrap();
    let grant = common::grant(&rt, &["residents", "enterprises", "services"], "benchmarks");
    let catalog = rt
        .catalog()
        .list()
        .unwrap()
        .into_iter()
        .map(|d| (d.name.clone(), d.columns.iter().map(|c| c.name.clone()).collect()))
        .collect();
    let policy = Policy::load(
        &format!(
            "{}{}{}{}",
            inland_examples::POLICY,
            inland_examples::SERVICES_POLICY,
            inland_examples::SERVICES_POLICY.replace("datasets.services", "datasets.services_by_person"),
            inland_examples::SERVICES_POLICY.replace("datasets.services", "datasets.services_keyed")
        ),
        "domain.toml",
        &catalog,
    )
    .unwrap();
    Bench {
        _dir: dir,
        root,
        rt: Some(rt),
        grant,
        policy,
        tokio: tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap(),
    }
}

impl Bench {
    fn rt(&self) -> &Runtime {
        self.rt.as_ref().unwrap()
    }

    fn job(&self, name: &str, params: &[(&str, &str)]) -> inland_runtime::JobReport {
        let report = self
            .tokio
            .block_on(self.rt().jobs().run(JobRequest {
                wasm: inland_examples::jobs::wasm(name).unwrap().to_vec(),
                params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                operator: OPERATOR.into(),
                grant: self.grant.clone(),
                source_sha256: None,
            }))
            .unwrap();
        assert_eq!(
            report.job.status,
            JobStatus::Succeeded,
            "{name}: {:?}",
            report.job.error
        );
        report
    }
}

fn clear_cache(root: &Path) {
    let cache = root.join("cache");
    if cache.exists() {
        std::fs::remove_dir_all(&cache).unwrap();
        std::fs::create_dir_all(&cache).unwrap();
    }
}

fn job_start(c: &mut Criterion, b: &mut Bench) {
    let mut g = c.benchmark_group("job-start");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    // Cold: a fresh runtime and an empty compile cache: the component is compiled.
    g.bench_function("cold-compile-and-run", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                b.rt = None;
                clear_cache(&b.root);
                b.rt = Some(Runtime::open(&b.root).unwrap());
                let t = Instant::now();
                b.job("noop", &[]);
                total += t.elapsed();
            }
            total
        })
    });
    // Warm, end to end: admission, durable ledger events and checkpoint, run.
    b.job("noop", &[]);
    g.bench_function("warm-submit-to-report", |bench| bench.iter(|| b.job("noop", &[])));
    // Warm, in the sandbox alone: instantiate from the pre-instantiated
    // component in the pooling allocator, call `run`, tear down.
    g.bench_function("warm-instantiate-and-run", |bench| {
        bench.iter_custom(|iters| {
            (0..iters)
                .map(|_| Duration::from_micros(b.job("noop", &[]).job.run_us))
                .sum()
        })
    });
    g.finish();
}

fn host_calls(c: &mut Criterion, b: &Bench) {
    let n: u64 = if full() { 100_000 } else { 1_000 };
    let mut g = c.benchmark_group("host-call");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    // Per call: the same job with n calls minus with none, in the sandbox.
    g.bench_function("list-datasets-round-trip", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let with = b.job("bench-calls", &[("n", &n.to_string())]).job.run_us;
                let without = b.job("bench-calls", &[("n", "0")]).job.run_us;
                total += Duration::from_nanos(with.saturating_sub(without) * 1000 / n);
            }
            total
        })
    });
    g.finish();
}

fn stream(c: &mut Criterion, b: &Bench) {
    let sql = "SELECT * FROM residents";
    let report = b.job("bench-stream", &[("sql", sql)]);
    let bytes: u64 = report
        .job
        .log
        .iter()
        .find_map(|l| l.message.split("bytes=").nth(1).and_then(|v| v.trim().parse().ok()))
        .unwrap();
    let mut g = c.benchmark_group("results-into-guest");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(bytes));
    g.bench_function("select-star-residents", |bench| {
        bench.iter_custom(|iters| {
            (0..iters)
                .map(|_| Duration::from_micros(b.job("bench-stream", &[("sql", sql)]).job.run_us))
                .sum()
        })
    });
    g.finish();
}

/// #22: Python beside Rust. Start (cold: compile from an empty cache; warm:
/// instantiate and run), district statistics in the sandbox, and the row
/// interface (rows of cells, what Python jobs use) against Arrow IPC on the
/// same result, per row.
fn languages(c: &mut Criterion, b: &mut Bench) {
    let mut g = c.benchmark_group("languages");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for job in ["noop", "noop-py"] {
        let wasm = inland_examples::jobs::wasm(job).unwrap();
        g.bench_function(format!("{job}/cold-compile"), |bench| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    b.rt = None;
                    clear_cache(&b.root);
                    b.rt = Some(Runtime::open(&b.root).unwrap());
                    let t = Instant::now();
                    b.rt().jobs().check_component(wasm).unwrap();
                    total += t.elapsed();
                }
                total
            })
        });
        b.job(job, &[]);
        g.bench_function(format!("{job}/warm-instantiate-and-run"), |bench| {
            bench.iter_custom(|iters| {
                (0..iters)
                    .map(|_| Duration::from_micros(b.job(job, &[]).job.run_us))
                    .sum()
            })
        });
    }
    for job in ["district-stats", "district-stats-py"] {
        b.job(job, &[]);
        g.bench_function(format!("{job}/in-sandbox"), |bench| {
            bench.iter_custom(|iters| {
                (0..iters)
                    .map(|_| Duration::from_micros(b.job(job, &[]).job.run_us))
                    .sum()
            })
        });
    }
    g.finish();

    let sql = "SELECT * FROM residents";
    let mut g = c.benchmark_group("results-into-guest-per-row");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(rows() as u64));
    for (name, params) in [
        ("arrow-ipc", vec![("sql", sql)]),
        ("rows-of-cells", vec![("sql", sql), ("as", "rows")]),
    ] {
        let report = b.job("bench-stream", &params);
        assert!(
            report
                .job
                .log
                .iter()
                .any(|l| l.message.starts_with(&format!("rows={} ", rows())))
        );
        g.bench_function(format!("select-star-residents/{name}"), |bench| {
            bench.iter_custom(|iters| {
                (0..iters)
                    .map(|_| Duration::from_micros(b.job("bench-stream", &params).job.run_us))
                    .sum()
            })
        });
    }
    g.finish();
}

const PLANNED: [&str; 4] = [
    "SELECT district, count(*) AS n, avg(income) AS income FROM residents GROUP BY district",
    "SELECT district, service_type, sum(income) FROM residents WHERE age >= 30 GROUP BY district, service_type ORDER BY district LIMIT 20",
    "SELECT industry, count(*), sum(registered_capital) FROM enterprises GROUP BY industry",
    "SELECT district, age FROM residents WHERE district = '朝阳区' LIMIT 10",
];

fn policy(c: &mut Criterion, b: &Bench) {
    let engine = QueryEngine::new(4 << 30).unwrap();
    let datasets = b.rt().catalog().list().unwrap();
    let names: Vec<String> = datasets.iter().map(|d| d.name.clone()).collect();
    let with = b
        .tokio
        .block_on(engine.session(
            &as_sources(b.rt().domain(), &datasets),
            // The domain's own keys, as a job's: a stored entity key is
            // used only under the key it was made with.
            Some((&b.policy, b.rt().jobs().policy_keys(&b.grant).unwrap())),
        ))
        .unwrap();
    let without = b
        .tokio
        .block_on(engine.session(&as_sources(b.rt().domain(), &datasets), None))
        .unwrap();
    // As a job sees it: residents hold each person once, proven at registration.
    let scope_general = QueryScope::under(Some(&b.policy), names.clone());
    let scope_with = scope_general
        .clone()
        .with_unique_entities(Some(&b.policy), &as_sources(b.rt().domain(), &datasets));
    let scope_without = QueryScope::under(None, names);
    let mut g = c.benchmark_group("policy-planning");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for (i, sql) in PLANNED.iter().enumerate() {
        g.bench_function(format!("q{i}-with-policy"), |bench| {
            bench.iter(|| b.tokio.block_on(engine.plan(&with, &scope_with, sql)).unwrap())
        });
        g.bench_function(format!("q{i}-without-policy"), |bench| {
            bench.iter(|| b.tokio.block_on(engine.plan(&without, &scope_without, sql)).unwrap())
        });
    }
    g.finish();

    // The whole query, planned and run, over every resident.
    let mut g = c.benchmark_group("policy-aggregate-1M");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    // QUERY=<name> picks another of the paired queries for the modes below.
    let chosen = std::env::var("QUERY").ok();
    let sql = PAIRED
        .iter()
        .chain(RECORDS.iter())
        .find(|(name, _)| Some(*name) == chosen.as_deref())
        .map_or(PLANNED[0], |(_, sql)| *sql);
    // Plans and runs the query as a job's query runs; returns the seconds
    // spent in its three steps: checked logical plan, physical plan, execution.
    let run_sql = |ctx: &datafusion::prelude::SessionContext, scope: &QueryScope, sql: &str| {
        b.tokio.block_on(async {
            let start = std::time::Instant::now();
            let planned = engine.plan(ctx, scope, sql).await.unwrap();
            let logical = start.elapsed();
            let physical = engine.physical_plan(ctx, &planned).await.unwrap();
            let planned_at = start.elapsed();
            let stream = engine.execute_physical(ctx, physical).unwrap();
            datafusion::physical_plan::common::collect(stream).await.unwrap();
            let done = start.elapsed();
            [logical, planned_at - logical, done - planned_at].map(|d| d.as_secs_f64())
        })
    };
    let run = |ctx: &datafusion::prelude::SessionContext, scope: &QueryScope| run_sql(ctx, scope, sql);
    // EXPLAIN=1 prints both physical plans of each paired query (to see what the rewrite adds).
    if std::env::var_os("EXPLAIN").is_some() {
        let sides = [(&with, &scope_with), (&without, &scope_without)];
        for ((ctx, scope), (_, sql)) in PAIRED.iter().flat_map(|q| sides.map(|s| (s, q))) {
            b.tokio.block_on(async {
                let planned = engine.plan(ctx, scope, sql).await.unwrap();
                let plan = engine.physical_plan(ctx, &planned).await.unwrap();
                eprintln!("{}", datafusion::physical_plan::displayable(plan.as_ref()).indent(true));
            });
        }
    }
    // METRICS=1 prints each side's executed plan with DataFusion's metrics,
    // and the medians of physical planning and execution over 41 runs; the
    // third side is the policy's tables without the rewrite.
    if std::env::var_os("METRICS").is_some() {
        let sides = [
            ("with the policy", &with, &scope_with),
            ("without", &without, &scope_without),
            ("policy tables, no rewrite", &with, &scope_without),
        ];
        for (name, ctx, scope) in sides {
            b.tokio.block_on(async {
                let planned = engine.plan(ctx, scope, sql).await.unwrap();
                let (mut physical, mut execution) = (Vec::new(), Vec::new());
                let mut last = None;
                for _ in 0..41 {
                    let t = std::time::Instant::now();
                    let plan = engine.physical_plan(ctx, &planned).await.unwrap();
                    physical.push(t.elapsed().as_secs_f64() * 1e3);
                    let t = std::time::Instant::now();
                    datafusion::physical_plan::collect(plan.clone(), ctx.task_ctx())
                        .await
                        .unwrap();
                    execution.push(t.elapsed().as_secs_f64() * 1e3);
                    last = Some(plan);
                }
                if let Some(plan) = last {
                    let shown =
                        datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(plan.as_ref());
                    eprintln!("{}", shown.indent(true));
                }
                physical.sort_by(f64::total_cmp);
                execution.sort_by(f64::total_cmp);
                eprintln!(
                    "policy-aggregate-1M ({name}): physical planning {:.2} ms, execution {:.2} ms (medians of 41)",
                    physical[20], execution[20]
                );
            });
        }
    }
    // RULES=1 times each of DataFusion's physical optimizer rules on each
    // side (medians of 201), to see where the rewrite's planning cost goes.
    if std::env::var_os("RULES").is_some() {
        for (name, ctx, scope) in [("with", &with, &scope_with), ("without", &without, &scope_without)] {
            b.tokio.block_on(async {
                let planned = engine.plan(ctx, scope, sql).await.unwrap();
                let state = ctx.state();
                let bare = datafusion::execution::SessionStateBuilder::new_from_existing(state.clone())
                    .with_physical_optimizer_rules(vec![])
                    .build();
                let rules = state.physical_optimizers().to_vec();
                if std::env::var("RULES").as_deref() == Ok("plans") {
                    let plan = bare
                        .query_planner()
                        .create_physical_plan(&planned.plan, &bare)
                        .await
                        .unwrap();
                    eprintln!("{}", datafusion::physical_plan::displayable(plan.as_ref()).indent(true));
                }
                let mut times = vec![Vec::new(); rules.len() + 1];
                for _ in 0..201 {
                    let t = std::time::Instant::now();
                    let mut plan = bare
                        .query_planner()
                        .create_physical_plan(&planned.plan, &bare)
                        .await
                        .unwrap();
                    times[0].push(t.elapsed().as_secs_f64() * 1e6);
                    for (i, rule) in rules.iter().enumerate() {
                        let t = std::time::Instant::now();
                        plan = rule.optimize(plan, state.config_options()).unwrap();
                        times[i + 1].push(t.elapsed().as_secs_f64() * 1e6);
                    }
                }
                let mut line = format!("rules ({name}):");
                for (i, t) in times.iter_mut().enumerate() {
                    t.sort_by(f64::total_cmp);
                    let rule = if i == 0 { "initial plan" } else { rules[i - 1].name() };
                    line.push_str(&format!(" {rule} {:.0}us;", t[100]));
                }
                eprintln!("{line}");
            });
        }
        return;
    }
    // PROFILE=with|without runs only that side, 400 times, for a profiler
    // attached to the process to see one side alone; PROFILE=plan-with|
    // plan-without makes only its physical plan, 4000 times, and
    // PROFILE=logical-with|logical-without only its checked logical plan.
    if let Ok(side) = std::env::var("PROFILE") {
        let (ctx, scope) = if side.ends_with("without") {
            (&without, &scope_without)
        } else {
            (&with, &scope_with)
        };
        if side.starts_with("logical-") {
            b.tokio.block_on(async {
                for _ in 0..4000 {
                    engine.plan(ctx, scope, sql).await.unwrap();
                }
            });
        } else if side.starts_with("plan-") {
            b.tokio.block_on(async {
                let planned = engine.plan(ctx, scope, sql).await.unwrap();
                for _ in 0..4000 {
                    engine.physical_plan(ctx, &planned).await.unwrap();
                }
            });
        } else {
            for _ in 0..400 {
                run(ctx, scope);
            }
        }
        return;
    }
    g.bench_function("with-policy", |bench| bench.iter(|| run(&with, &scope_with)));
    // The same query counting distinct entities, as for a dataset with several rows per person.
    g.bench_function("with-policy-per-entity", |bench| {
        bench.iter(|| run(&with, &scope_general))
    });
    g.bench_function("without-policy", |bench| bench.iter(|| run(&without, &scope_without)));
    g.finish();

    // The overhead as a ratio of runs taken in turns, so that the machine's
    // drift (±10% between criterion groups here) falls on both sides alike;
    // for the query above and other aggregate shapes over every resident.
    // PAIRS=N takes more pairs than the default 101, for smaller differences.
    let pairs = match std::env::var("PAIRS").ok().and_then(|p| p.parse::<usize>().ok()) {
        Some(n) if full() => n.max(3),
        _ if full() => 101,
        _ => 3,
    };
    // The records queries (several rows per person, #23) under the same name prefix.
    // ONLY=<text> runs only the paired queries whose names contain it.
    let only = std::env::var("ONLY").unwrap_or_default();
    for (name, sql) in PAIRED.iter().chain(RECORDS.iter()) {
        if !name.contains(only.as_str()) {
            continue;
        }
        let mut ratios = Vec::with_capacity(pairs);
        // Each side's whole query (all three steps), in ms.
        let mut totals: [Vec<f64>; 2] = Default::default();
        let mut cpu = [0u64; 2];
        // Per step (logical, physical, execution): each pair's difference in ms.
        let mut steps: [Vec<f64>; 3] = Default::default();
        for i in 0..pairs {
            let mut time = |ctx: &datafusion::prelude::SessionContext, scope: &QueryScope| {
                let side = usize::from(std::ptr::eq(ctx, &without));
                let c0 = cpu_ticks();
                let taken = run_sql(ctx, scope, sql);
                cpu[side] += cpu_ticks().saturating_sub(c0);
                taken
            };
            let (w, wo) = if i % 2 == 0 {
                let w = time(&with, &scope_with);
                (w, time(&without, &scope_without))
            } else {
                let wo = time(&without, &scope_without);
                (time(&with, &scope_with), wo)
            };
            ratios.push(w.iter().sum::<f64>() / wo.iter().sum::<f64>());
            totals[0].push(w.iter().sum::<f64>() * 1e3);
            totals[1].push(wo.iter().sum::<f64>() * 1e3);
            for (k, step) in steps.iter_mut().enumerate() {
                step.push((w[k] - wo[k]) * 1e3);
            }
        }
        ratios.sort_by(f64::total_cmp);
        eprintln!(
            "policy-aggregate-1M {name}: with/without policy, median of {pairs} paired runs: {:.3} (quartiles {:.3}-{:.3})",
            ratios[pairs / 2],
            ratios[pairs / 4],
            ratios[3 * pairs / 4]
        );
        for step in steps.iter_mut().chain(totals.iter_mut()) {
            step.sort_by(f64::total_cmp);
        }
        eprintln!(
            "policy-aggregate-1M {name}: whole query, medians: {:.2} ms with the policy, {:.2} ms without",
            totals[0][pairs / 2],
            totals[1][pairs / 2]
        );
        eprintln!(
            "policy-aggregate-1M {name}: added by the policy, median of paired differences: checked logical plan {:+.2} ms, physical plan {:+.2} ms, execution {:+.2} ms",
            steps[0][pairs / 2],
            steps[1][pairs / 2],
            steps[2][pairs / 2]
        );
        if cpu[1] > 0 {
            eprintln!(
                "policy-aggregate-1M {name}: CPU time with/without policy over the same runs: {:.3}",
                cpu[0] as f64 / cpu[1] as f64
            );
        }
    }

    if !only.is_empty() && only != "dp" {
        return;
    }
    // #20: the dp mode against the exact mode, same session and queries.
    // `dp` is the fast path (each resident is one row, proven at
    // registration); `dp-capped` treats residents as if a person could have
    // several rows, so each entity's rows are ranked and capped (at 1).
    let mut scope_dp = scope_with.clone();
    scope_dp
        .dp_bounds
        .insert(("residents".into(), "income".into()), [0.0, 200_000.0]);
    scope_dp.dp = Some(inland_runtime::DpScope {
        rho_per_query: 0.1,
        row_key: "bench".into(),
    });
    let mut scope_capped = scope_dp.clone();
    scope_capped.unique_entities.clear();
    scope_capped.max_rows_per_entity.insert("residents".into(), 1);
    let mut g = c.benchmark_group("dp-aggregate-1M");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("exact", |bench| bench.iter(|| run(&with, &scope_with)));
    g.bench_function("dp", |bench| bench.iter(|| run(&with, &scope_dp)));
    g.bench_function("dp-capped", |bench| bench.iter(|| run(&with, &scope_capped)));
    g.finish();
    for (name, sql) in PAIRED.iter().take(2) {
        for (mode, scope) in [("dp", &scope_dp), ("dp-capped", &scope_capped)] {
            let mut ratios = Vec::with_capacity(pairs);
            let mut totals: [Vec<f64>; 2] = Default::default();
            for i in 0..pairs {
                let whole = |s: &QueryScope| run_sql(&with, s, sql).iter().sum::<f64>();
                let (d, e) = if i % 2 == 0 {
                    let d = whole(scope);
                    (d, whole(&scope_with))
                } else {
                    let e = whole(&scope_with);
                    (whole(scope), e)
                };
                ratios.push(d / e);
                totals[0].push(d * 1e3);
                totals[1].push(e * 1e3);
            }
            ratios.sort_by(f64::total_cmp);
            for t in totals.iter_mut() {
                t.sort_by(f64::total_cmp);
            }
            eprintln!(
                "dp-aggregate-1M {name}: {mode}/exact, median of {pairs} paired runs: {:.3} (quartiles {:.3}-{:.3}); medians {:.2} ms {mode}, {:.2} ms exact",
                ratios[pairs / 2],
                ratios[pairs / 4],
                ratios[3 * pairs / 4],
                totals[0][pairs / 2],
                totals[1][pairs / 2]
            );
        }
    }
}

/// Aggregate queries over every resident whose overhead the paired loop
/// measures: the query of the criterion group; two group keys, a masked
/// column in WHERE, ORDER BY and LIMIT; a measure the rewrite cannot derive
/// from the contributions (`stddev`) beside one it can.
/// Aggregates over the service records, three rows per person on average
/// (#23): the policy must count each group's distinct people and each
/// person's total, where over residents it counts rows.
/// The `by-person` pair reads the same records stored by person, the
/// `keyed` pair the same records keyed by person (`dataset add --entity`).
/// The `count` pair has no measure: the policy counts each group's people.
const RECORDS: [(&str, &str); 8] = [
    (
        "records-count-avg",
        "SELECT district, count(*) AS n, avg(amount) AS mean FROM services GROUP BY district",
    ),
    (
        "records-two-keys-sum",
        "SELECT district, service_type, count(*) AS n, sum(amount) AS total FROM services GROUP BY district, service_type",
    ),
    (
        "records-by-person-count-avg",
        "SELECT district, count(*) AS n, avg(amount) AS mean FROM services_by_person GROUP BY district",
    ),
    (
        "records-by-person-two-keys-sum",
        "SELECT district, service_type, count(*) AS n, sum(amount) AS total FROM services_by_person GROUP BY district, service_type",
    ),
    (
        "records-keyed-count-avg",
        "SELECT district, count(*) AS n, avg(amount) AS mean FROM services_keyed GROUP BY district",
    ),
    (
        "records-keyed-two-keys-sum",
        "SELECT district, service_type, count(*) AS n, sum(amount) AS total FROM services_keyed GROUP BY district, service_type",
    ),
    (
        "records-count",
        "SELECT district, service_type, count(*) AS n FROM services GROUP BY district, service_type",
    ),
    (
        "records-keyed-count",
        "SELECT district, service_type, count(*) AS n FROM services_keyed GROUP BY district, service_type",
    ),
];

const PAIRED: [(&str, &str); 3] = [
    ("count-avg", PLANNED[0]),
    ("two-keys-masked-where", PLANNED[1]),
    (
        "stddev-sum",
        "SELECT district, stddev(income) AS sd, sum(income) AS total FROM residents GROUP BY district",
    ),
];

/// The process's user and system CPU time in clock ticks (0 where /proc is missing).
fn cpu_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // Fields after the command name: utime and stime are the 12th and 13th.
    let fields: Vec<u64> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)
}

fn load(c: &mut Criterion, b: &Bench) {
    let jobs = if full() { 50 } else { 8 };
    let mut g = c.benchmark_group("load");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function(format!("{jobs}-district-stats-at-once"), |bench| {
        bench.iter(|| {
            b.tokio.block_on(async {
                let wasm = inland_examples::jobs::wasm("district-stats").unwrap().to_vec();
                let handles: Vec<_> = (0..jobs)
                    .map(|_| {
                        let rt = b.rt().clone();
                        let request = JobRequest {
                            wasm: wasm.clone(),
                            params: vec![],
                            operator: OPERATOR.into(),
                            grant: b.grant.clone(),
                            source_sha256: None,
                        };
                        tokio::spawn(async move { rt.jobs().run(request).await })
                    })
                    .collect();
                for h in handles {
                    let report = h.await.unwrap().unwrap();
                    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job.error);
                }
            })
        })
    });
    g.finish();
    if let Some(mib) = common::peak_rss_mib() {
        let limits = Limits::default();
        eprintln!(
            "load: peak resident memory of the benchmark process {mib} MiB (pools: queries {} MiB, jobs {} x {} MiB)",
            limits.query_memory_mib, limits.max_concurrent_jobs, limits.memory_mib
        );
    }
}

fn benches(c: &mut Criterion) {
    let mut b = setup();
    job_start(c, &mut b);
    host_calls(c, &b);
    stream(c, &b);
    languages(c, &mut b);
    policy(c, &b);
    load(c, &b);
}

criterion_group!(runtime, benches);
criterion_main!(runtime);
