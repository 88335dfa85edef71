//! Gate throughput: every automated check on a 1,000,000-cell table
//! (100,000 rows × 10 columns: two key columns, eight numeric measures, half
//! of them traced to host facts), with an identifier index of 300,000 values
//! and a release history to difference against.
//!
//! Run: `cargo bench -p inland-gate --bench gate`. `cargo test` runs it once.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use inland_gate::*;
use inland_policies::Label;
use inland_policies::policy::GateRules;
use std::sync::Arc;
use std::time::Duration;

const ROWS: usize = 100_000;

fn setup() -> (RecordBatch, FactIndex, KeyedIndex, ReleaseHistory) {
    let region: Vec<String> = (0..ROWS).map(|i| format!("region-{}", i / 100)).collect();
    let cell: Vec<String> = (0..ROWS).map(|i| format!("cell-{}", i % 100)).collect();
    let mut fields = vec![
        Field::new("region", DataType::Utf8, false),
        Field::new("cell", DataType::Utf8, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(region.clone())),
        Arc::new(StringArray::from(cell.clone())),
    ];
    let mut facts = FactIndex::default();
    for m in 0..8 {
        if m % 2 == 0 {
            let v: Vec<i64> = (0..ROWS).map(|i| 10 + ((i * 7 + m) % 5000) as i64).collect();
            for (i, x) in v.iter().enumerate() {
                facts.add(
                    x.to_string(),
                    CellFact {
                        source: format!("count-{m}"),
                        kind: MeasureKind::Frequency,
                        keys: vec![region[i].clone(), cell[i].clone()],
                        entities: *x as u64,
                        contributions: None,
                        sketch: None,
                        at: None,
                    },
                );
            }
            fields.push(Field::new(format!("n{m}"), DataType::Int64, false));
            columns.push(Arc::new(Int64Array::from(v)));
        } else {
            let v: Vec<f64> = (0..ROWS).map(|i| 1000.0 + (i * 13 + m) as f64 * 0.25).collect();
            fields.push(Field::new(format!("s{m}"), DataType::Float64, false));
            columns.push(Arc::new(Float64Array::from(v)));
        }
    }
    let table = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let mut index = KeyedIndex::new(&[9; 32]);
    for i in 0..300_000u64 {
        index.insert(&format!("1{:010}", 3_000_000_000 + i));
    }
    let released = ReleaseHistory::new([(
        "earlier".to_string(),
        (0..100u64)
            .map(|i| {
                let s = EntitySketch::of_distinct((0..50).map(|e| entity(i * 50 + e)));
                ReleasedCell {
                    source: "count-0".into(),
                    keys: vec![format!("cell-{i}")],
                    entities: 50,
                    sketch: Some(Arc::new(s)),
                    visible: true,
                    complete: true,
                    derived: Vec::new(),
                }
            })
            .collect(),
    )]);
    (table, facts, index, released)
}

fn gate(c: &mut Criterion) {
    let (table, facts, index, released) = setup();
    let rules = GateRules {
        max_rows: 1_000_000,
        ..Default::default()
    };
    let mut g = c.benchmark_group("gate");
    g.throughput(Throughput::Elements((table.num_rows() * table.num_columns()) as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    g.bench_function("all-checks-1M-cells", |b| {
        b.iter(|| {
            let o = check(&GateInput {
                dp: false,
                table: &table,
                facts: &facts,
                label: Label::Aggregate,
                row_level_releasable: false,
                source_rows: None,
                rules: &rules,
                identifiers: Some(&index),
                released: &released,
                overrides: &[],
            })
            .unwrap();
            assert!(o.report.traced_cells >= 400_000);
            apply(&table, &o.plan).unwrap()
        })
    });
    g.finish();
}

/// The identifier check alone on 1,000,000 text cells, a third of them
/// needing normalisation (separators between digits, full-width digits):
/// the cost of reading disguised identifiers (issue #18).
fn identifiers(c: &mut Criterion) {
    let cells: Vec<String> = (0..1_000_000u64)
        .map(|i| match i % 3 {
            0 => format!("district-{} total", i % 97),
            1 => format!("{} {} {}", 1000 + i % 9000, 2000 + i % 7000, i % 10),
            _ => format!("第{}组 ５０{}", i % 50, i % 1000),
        })
        .collect();
    let mut g = c.benchmark_group("gate");
    g.throughput(Throughput::Elements(cells.len() as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    g.bench_function("identifiers-1M-text-cells", |b| {
        b.iter(|| cells.iter().filter(|t| inland_gate::leak::find(t).is_some()).count())
    });
    g.finish();
}

/// A keyed entity hash as the host makes them: well mixed 64-bit values.
fn entity(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The release audit (issue #18): 1,000 released tables of 100 cells, each
/// table a partition of 1,000,000 entities, and a new 100-row table to check
/// against all of them (and the sums of their cells). Measured: reading the
/// stored history, indexing it (both once per approval) and the whole gate
/// on the new table, for counts and for sums (whose sketches carry each
/// entity's contribution, so differences of up to 40 entities are listed and
/// judged by the dominance and p% rules). Debug builds (`cargo test`) use 10
/// tables over 20,000 entities.
fn audit(c: &mut Criterion) {
    audit_of(c, "count(*)");
    audit_of(c, "sum(income)");
}

fn audit_of(c: &mut Criterion, measure: &str) {
    let sums = measure.starts_with("sum");
    let tag = if sums { 7 } else { 0 };
    let income = |key: u64| 1_000.0 + (key % 50_000) as f64 * 0.5;
    let (tables, people) = if cfg!(debug_assertions) {
        (10u64, 20_000u64)
    } else {
        (1_000, 1_000_000)
    };
    let cells = 100u64;
    let partition = |t: u64| -> Vec<EntitySketch> {
        let mut out: Vec<EntitySketch> = (0..cells).map(|_| EntitySketch::of_measure(tag)).collect();
        for e in 0..people {
            let key = entity(e);
            let cell = (entity(key ^ t) % cells) as usize;
            if sums {
                out[cell].insert_contribution(key, income(key));
            } else {
                out[cell].insert(key);
            }
        }
        out
    };
    let released: Vec<(String, Vec<ReleasedCell>)> = (0..tables)
        .map(|t| {
            let rows = partition(t)
                .into_iter()
                .enumerate()
                .map(|(i, s)| ReleasedCell {
                    source: measure.into(),
                    keys: vec![format!("g{i}"), format!("h{}", i % 10)],
                    entities: s.entities(),
                    sketch: Some(Arc::new(s)),
                    visible: true,
                    complete: true,
                    derived: Vec::new(),
                })
                .collect();
            (format!("job-{t}/table"), rows)
        })
        .collect();
    // The new table: another partition of the same people.
    let fresh = partition(tables + 1);
    let mut facts = FactIndex::default();
    let mut keys = Vec::new();
    let mut counts = Vec::new();
    for (i, s) in fresh.into_iter().enumerate() {
        let n = s.entities() as i64;
        facts.add(
            n.to_string(),
            CellFact {
                source: measure.into(),
                kind: if sums {
                    MeasureKind::Magnitude
                } else {
                    MeasureKind::Frequency
                },
                keys: vec![format!("new-{i}")],
                entities: n as u64,
                contributions: sums.then_some(Contributions {
                    largest: 25_999.5,
                    second: 25_999.0,
                    total: n as f64 * 13_500.0,
                    negatives: 0,
                    missing: 0,
                }),
                sketch: Some(Arc::new(s)),
                at: None,
            },
        );
        keys.push(format!("new-{i}"));
        counts.push(n);
    }
    let table = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("group", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ])),
        vec![Arc::new(StringArray::from(keys)), Arc::new(Int64Array::from(counts))],
    )
    .unwrap();
    let rules = GateRules::default();
    let mut g = c.benchmark_group(if sums { "audit-sums" } else { "audit" });
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    // As the state store keeps them: one JSON record per released table.
    let stored: Vec<Vec<u8>> = released
        .iter()
        .map(|(_, rows)| serde_json::to_vec(rows).unwrap())
        .collect();
    g.bench_function("read-1000-stored-tables", |b| {
        b.iter(|| {
            stored
                .iter()
                .map(|t| serde_json::from_slice::<Vec<ReleasedCell>>(t).unwrap().len())
                .sum::<usize>()
        })
    });
    g.bench_function("index-1000-tables-of-100-cells", |b| {
        b.iter(|| ReleaseHistory::new(released.iter().cloned()).len())
    });
    let history = ReleaseHistory::new(released.iter().cloned());
    g.bench_function("check-100-rows-against-1000-tables", |b| {
        b.iter(|| {
            let o = check(&GateInput {
                dp: false,
                table: &table,
                facts: &facts,
                label: Label::Aggregate,
                row_level_releasable: false,
                source_rows: None,
                rules: &rules,
                identifiers: None,
                released: &history,
                overrides: &[],
            })
            .unwrap();
            assert_eq!(o.report.traced_cells, 100);
            o.traced.len()
        })
    });
    g.finish();
}

criterion_group!(benches, gate, identifiers, audit);
criterion_main!(benches);
