//! The domain server under load (#19): submissions of the `noop` job from
//! concurrent clients, each followed to its end (submit-to-report latency),
//! then authorized reads of a finished job (a cached read: the job's view).
//! Afterwards every accepted submission must have its job record and its
//! ledger entries, and no answer may have been a 5xx.
//!
//! Run: `cargo bench -p inland-benches --bench server` (200 submissions one
//! at a time, 200 from 50 clients, 10,000 reads). `cargo test` runs 20 from 5 and 200 reads, as
//! a check that nothing is lost.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use inland_runtime::{Event, IssuedToken, Limits, Role};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common.rs"]
#[allow(dead_code)]
mod common;

fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Answers by class, counted across all clients.
#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    too_many: AtomicU64,
    server_errors: AtomicU64,
    other: AtomicU64,
}

/// Submits one `noop` and follows it to its end; returns (job id, latency).
/// A 429 (the server's admission control) is retried after a pause.
async fn submit_and_follow(
    http: &reqwest::Client,
    base: &str,
    token: &IssuedToken,
    grant: &str,
    wasm: &[u8],
    counts: &Counts,
) -> (String, Duration) {
    let started = Instant::now();
    let id = loop {
        let r = http
            .post(format!("{base}/api/jobs?grant={grant}"))
            .bearer_auth(&token.secret)
            .header("content-type", "application/wasm")
            .body(wasm.to_vec())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        match status {
            202 => {
                counts.accepted.fetch_add(1, Ordering::Relaxed);
                break body["job_id"].as_str().unwrap().to_string();
            }
            429 => {
                counts.too_many.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            s if s >= 500 => {
                counts.server_errors.fetch_add(1, Ordering::Relaxed);
                panic!("{s} on submission: {body}");
            }
            s => {
                counts.other.fetch_add(1, Ordering::Relaxed);
                panic!("{s} on submission: {body}");
            }
        }
    };
    loop {
        // The server answers when the job ends (`?wait=`): no polling interval in the figure.
        let r = http
            .get(format!("{base}/api/jobs/{id}?wait=60"))
            .bearer_auth(&token.secret)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if status >= 500 {
            counts.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        let view: serde_json::Value = r.json().await.unwrap_or_default();
        match view["state"].as_str() {
            // Past its waiting views, the server answers at once: poll.
            Some("queued" | "running") => tokio::time::sleep(Duration::from_millis(10)).await,
            Some("succeeded") => return (id, started.elapsed()),
            other => panic!("job {id} ended {other:?}: {view}"),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let (submissions, clients, reads, sequential) = if full() {
        (200, 50, 10_000, 200)
    } else {
        (20, 5, 200, 5)
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("domain");
    let sources = dir.path().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    let rt = common::domain(
        &root,
        "bench-server",
        Limits {
            timeout_secs: 60,
            ..Limits::default()
        },
    );
    inland_examples::generate::write_examples(&sources, 1_000, 1).unwrap();
    rt.catalog()
        .register("residents", &sources.join("residents.parquet"), "residents")
        .unwrap();
    let grant = common::grant(&rt, &["residents"], "server load");
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 86_400_000;
    let token = Arc::new(
        rt.access()
            .issue(Role::Operator, "loader", Some(common::OPERATOR), until)
            .unwrap(),
    );
    let base = Arc::new(inland_server::spawn_on_loopback(rt.clone()).unwrap());
    let wasm: Arc<[u8]> = inland_examples::jobs::wasm("noop").unwrap().into();
    let grant = Arc::new(grant);
    let counts = Arc::new(Counts::default());
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // One submission first: it compiles the component (cached afterwards),
    // reported apart so the figures below are the steady state.
    let (warm_id, first) = client_rt.block_on(async {
        let http = reqwest::Client::new();
        submit_and_follow(&http, &base, &token, &grant, &wasm, &counts).await
    });

    // One client, one submission at a time: what a user waits for when the
    // domain is otherwise idle (#23: target < 10 ms at the median).
    let mut alone: Vec<Duration> = client_rt.block_on(async {
        let http = reqwest::Client::new();
        let mut out = Vec::with_capacity(sequential);
        for _ in 0..sequential {
            out.push(submit_and_follow(&http, &base, &token, &grant, &wasm, &counts).await.1);
        }
        out
    });
    alone.sort();

    // Submissions: `clients` at once, each its share in turn.
    let started = Instant::now();
    let results: Vec<(String, Duration)> = client_rt.block_on(async {
        let http = reqwest::Client::new();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let share = submissions / clients + usize::from(c < submissions % clients);
            let (http, base, token, grant, wasm, counts) = (
                http.clone(),
                base.clone(),
                token.clone(),
                grant.clone(),
                wasm.clone(),
                counts.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for _ in 0..share {
                    out.push(submit_and_follow(&http, &base, &token, &grant, &wasm, &counts).await);
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let submit_wall = started.elapsed();

    // Reads: the view of one finished job, `clients` at once.
    let read_id = Arc::new(results[0].0.clone());
    let started = Instant::now();
    let read_latencies: Vec<Duration> = client_rt.block_on(async {
        let http = reqwest::Client::new();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let share = reads / clients + usize::from(c < reads % clients);
            let (http, base, token, id, counts) = (
                http.clone(),
                base.clone(),
                token.clone(),
                read_id.clone(),
                counts.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::with_capacity(share);
                for _ in 0..share {
                    let t = Instant::now();
                    let r = http
                        .get(format!("{base}/api/jobs/{id}"))
                        .bearer_auth(&token.secret)
                        .send()
                        .await
                        .unwrap();
                    let status = r.status().as_u16();
                    let _ = r.bytes().await.unwrap();
                    out.push(t.elapsed());
                    if status >= 500 {
                        counts.server_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    assert_eq!(status, 200, "a read was refused");
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let read_wall = started.elapsed();

    // Nothing lost: each accepted submission has its record and ledger entries.
    assert_eq!(results.len(), submissions);
    assert_eq!(
        counts.accepted.load(Ordering::Relaxed) as usize,
        submissions + sequential + 1
    );
    assert_eq!(
        rt.jobs().get(&warm_id).unwrap().status,
        inland_runtime::JobStatus::Succeeded
    );
    assert_eq!(counts.server_errors.load(Ordering::Relaxed), 0, "5xx answers");
    let entries = rt.evidence().ledger().unwrap().entries().unwrap();
    for (id, _) in &results {
        let record = rt.jobs().get(id).unwrap();
        assert_eq!(record.status, inland_runtime::JobStatus::Succeeded, "{id}");
        let admitted = entries
            .iter()
            .any(|e| matches!(&e.event, Event::JobAdmitted { job_id, .. } if job_id == id));
        let finished = entries
            .iter()
            .any(|e| matches!(&e.event, Event::JobFinished { job_id, .. } if job_id == id));
        assert!(admitted && finished, "job {id} is missing from the ledger");
    }

    let mut submit: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
    submit.sort();
    let mut read = read_latencies;
    read.sort();
    println!(
        "server: the first submission (compiling the component) took {}",
        ms(first)
    );
    println!(
        "server: {sequential} noop submissions one after another, each followed with ?wait=: \
         submit-to-report p50 {} p90 {} p99 {}",
        ms(percentile(&alone, 0.5)),
        ms(percentile(&alone, 0.9)),
        ms(percentile(&alone, 0.99)),
    );
    println!(
        "server: {submissions} noop submissions from {clients} clients: submit-to-report p50 {} p99 {}, \
         {:.1} jobs/s ({} answered 429 and were retried); {reads} reads: p50 {} p99 {}, {:.0} reads/s; \
         nothing lost, no 5xx",
        ms(percentile(&submit, 0.5)),
        ms(percentile(&submit, 0.99)),
        submissions as f64 / submit_wall.as_secs_f64(),
        counts.too_many.load(Ordering::Relaxed),
        ms(percentile(&read, 0.5)),
        ms(percentile(&read, 0.99)),
        reads as f64 / read_wall.as_secs_f64(),
    );
}
