//! Ledger benchmarks: durable appends per second (one writer, and many writers
//! sharing fsyncs through group commit), and proof generation and verification
//! on a 100,000-entry ledger.
//!
//! Run: `cargo bench -p inland-ledger --bench ledger`. `cargo test` runs each
//! once as a check that they still work.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inland_ledger::{Ledger, merkle};
use std::time::{Duration, Instant};

fn open() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let (l, _) = Ledger::open(&dir.path().join("ledger"), &dir.path().join("key")).unwrap();
    (dir, l)
}

fn entry(seq: u64) -> inland_ledger::Result<Vec<u8>> {
    Ok(format!(r#"{{"seq":{seq},"at_ms":1795749687460,"type":"query_run","job_id":"01a21b09-6048-74d7-9dac-8078110eb3a7","sql":"SELECT district, count(*) FROM residents GROUP BY district","plan_hash":"8f02c500c11e05b9"}}"#).into_bytes())
}

fn appends(c: &mut Criterion) {
    let mut g = c.benchmark_group("ledger-append-durable");
    g.throughput(Throughput::Elements(1))
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for writers in [1usize, 8, 64] {
        let (_dir, ledger) = open();
        g.bench_function(format!("writers={writers}"), |b| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(writers as u64);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..writers {
                        s.spawn(|| {
                            for _ in 0..per {
                                ledger.append_with(entry).unwrap();
                            }
                        });
                    }
                });
                // Report time per append actually made.
                start.elapsed().mul_f64(iters as f64 / (per * writers as u64) as f64)
            })
        });
    }
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let quick = std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let n: u64 = if quick { 1_000 } else { 100_000 };
    let (_dir, ledger) = open();
    std::thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                for _ in 0..n / 64 + 1 {
                    ledger.append_with(entry).unwrap();
                }
            });
        }
    });
    let size = ledger.len();
    let mut g = c.benchmark_group(format!("ledger-proofs-{size}-entries"));
    g.sample_size(20);
    let mut i = 0u64;
    g.bench_function("inclusion-proof", |b| {
        b.iter(|| {
            i = (i + 7919) % size;
            ledger.inclusion_proof(i, None).unwrap()
        })
    });
    let p = ledger.inclusion_proof(size / 3, None).unwrap();
    let path: Vec<Vec<u8>> = p.path.iter().map(|h| hex::decode(h).unwrap()).collect();
    let (leaf, root) = (hex::decode(&p.leaf_hash).unwrap(), hex::decode(&p.root).unwrap());
    g.bench_function("verify-inclusion", |b| {
        b.iter(|| merkle::verify_inclusion(p.index, p.tree_size, &leaf, &path, &root).unwrap())
    });
    g.bench_function("consistency-proof", |b| {
        b.iter(|| ledger.consistency_proof(size / 2, size).unwrap())
    });
    let cp = ledger.consistency_proof(size / 2, size).unwrap();
    let cpath: Vec<Vec<u8>> = cp.path.iter().map(|h| hex::decode(h).unwrap()).collect();
    let (r1, r2) = (hex::decode(&cp.old_root).unwrap(), hex::decode(&cp.new_root).unwrap());
    g.bench_function("verify-consistency", |b| {
        b.iter(|| merkle::verify_consistency(cp.old_size, cp.new_size, &cpath, &r1, &r2).unwrap())
    });
    g.bench_function("checkpoint", |b| b.iter(|| ledger.checkpoint().unwrap()));
    g.finish();
}

criterion_group!(benches, appends, proofs);
criterion_main!(benches);
