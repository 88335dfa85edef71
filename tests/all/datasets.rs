//! Registering datasets: CSV and Parquet in, the domain's Parquet layout
//! stored; bad input refused with a clear error and nothing changed.

use crate::support::{files_under, new_domain, test_limits};
use inland_runtime::Error;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_csv_file_is_registered_with_its_schema_inferred() {
    let d = new_domain(test_limits());
    let csv = write(
        &d.sources,
        "parks.csv",
        "park,district,area_ha,opened\n北海公园,西城区,68.2,1925-08-01\n玉渊潭,海淀区,136.7,1960-01-01\n",
    );
    let rec = d.rt.catalog().register("parks", &csv, "City parks").unwrap();
    assert_eq!(rec.rows, 2);
    assert_eq!(rec.format, "csv");
    let types: Vec<(&str, &str)> = rec
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.data_type.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("park", "Utf8"),
            ("district", "Utf8"),
            ("area_ha", "Float64"),
            ("opened", "Date32")
        ]
    );
    assert_eq!(d.rt.catalog().get("parks").unwrap(), rec);
    let names: Vec<String> = d.rt.catalog().list().unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["enterprises", "parks", "residents"]);
    assert!(d.root.join(rec.relative_path()).is_file());
}

#[test]
fn a_malformed_csv_is_refused_with_its_line_number_and_changes_nothing() {
    let d = new_domain(test_limits());
    let before = files_under(&d.root.join("datasets"));
    let csv = write(&d.sources, "bad.csv", "a,b\n1,2\n3,4\n5,6,7\n8,9\n");
    let err = d.rt.catalog().register("bad", &csv, "").unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("line 4") || text.contains("line: 4"), "{text}");
    assert!(text.contains("bad.csv"), "{text}");
    assert_eq!(files_under(&d.root.join("datasets")), before);
    assert!(matches!(d.rt.catalog().get("bad"), Err(Error::NotFound(_))));
}

#[test]
fn a_corrupt_parquet_file_is_refused_and_changes_nothing() {
    let d = new_domain(test_limits());
    let before = files_under(&d.root.join("datasets"));
    let mut bytes = std::fs::read(d.sources.join("residents.parquet")).unwrap();
    bytes.truncate(bytes.len() / 2);
    let path = d.sources.join("broken.parquet");
    std::fs::write(&path, bytes).unwrap();
    let err = d.rt.catalog().register("broken", &path, "").unwrap_err().to_string();
    assert!(err.contains("not a valid Parquet file"), "{err}");
    assert_eq!(files_under(&d.root.join("datasets")), before);
}

#[test]
fn names_formats_and_duplicates_are_checked_before_anything_is_written() {
    let d = new_domain(test_limits());
    let csv = write(&d.sources, "ok.csv", "a\n1\n");
    for bad in ["Residents", "1abc", "a-b", "a b", "", "x".repeat(64).as_str()] {
        let err = d.rt.catalog().register(bad, &csv, "").unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{bad:?}: {err:?}");
    }
    let txt = write(&d.sources, "data.txt", "a\n1\n");
    let err = d.rt.catalog().register("txt", &txt, "").unwrap_err().to_string();
    assert!(err.contains("unsupported format"), "{err}");
    let err = d.rt.catalog().register("residents", &csv, "").unwrap_err();
    assert!(matches!(err, Error::Exists(_)), "{err:?}");
    let missing =
        d.rt.catalog()
            .register("missing", &d.sources.join("nope.csv"), "")
            .unwrap_err()
            .to_string();
    assert!(missing.contains("nope.csv"), "{missing}");
}

#[test]
fn the_domain_reopens_with_its_catalog() {
    let d = new_domain(test_limits());
    let before = d.rt.catalog().list().unwrap();
    drop(d.rt);
    let rt = inland_runtime::Runtime::open(&d.root).unwrap();
    assert_eq!(rt.catalog().list().unwrap(), before);
    assert_eq!(before.len(), 2);
}

/// #23: a registration works in a directory of its own under `spill/`
/// (sort runs, uniqueness hashes); one a stop left behind is removed when
/// the domain next opens, and a finished registration leaves none.
#[test]
fn a_registration_leaves_no_working_files_and_a_stopped_ones_are_removed_at_start() {
    let d = new_domain(test_limits());
    let spill = d.root.join("spill");
    let meta = inland_runtime::DatasetMeta {
        sort_by: vec!["district".into()],
        ..Default::default()
    };
    d.rt.catalog()
        .register_with("sorted_copy", &d.sources.join("residents.parquet"), meta)
        .unwrap();
    assert!(files_under(&spill).is_empty(), "{:?}", files_under(&spill));
    let left = spill.join(".registration-stopped");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join(".unique-x"), [0u8; 64]).unwrap();
    drop(d.rt);
    let _rt = inland_runtime::Runtime::open(&d.root).unwrap();
    assert!(!left.exists());
}

#[test]
fn a_dataset_can_be_stored_sorted_and_a_bad_sort_column_changes_nothing() {
    use arrow::array::AsArray;
    let d = new_domain(test_limits());
    let source = d.sources.join("residents.parquet");
    let meta = |by: &[&str]| inland_runtime::DatasetMeta {
        sort_by: by.iter().map(|c| c.to_string()).collect(),
        ..Default::default()
    };
    let before = files_under(&d.root.join("datasets"));
    let err =
        d.rt.catalog()
            .register_with("by_height", &source, meta(&["district", "height"]))
            .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("`height`"), "{err}");
    assert_eq!(files_under(&d.root.join("datasets")), before);
    assert!(matches!(d.rt.catalog().get("by_height"), Err(Error::NotFound(_))));

    let rec =
        d.rt.catalog()
            .register_with("by_district", &source, meta(&["district", "age"]))
            .unwrap();
    assert_eq!(rec.sorted_by, ["district", "age"]);
    assert_eq!(rec.rows, d.rt.catalog().get("residents").unwrap().rows);
    let file = std::fs::File::open(d.root.join(rec.relative_path())).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut keys: Vec<(String, i64)> = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let district = batch.column_by_name("district").unwrap().as_string::<i32>().clone();
        let age = batch
            .column_by_name("age")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>()
            .clone();
        keys.extend((0..batch.num_rows()).map(|i| (district.value(i).to_string(), age.value(i))));
    }
    assert_eq!(keys.len() as u64, rec.rows);
    assert!(
        keys.windows(2).all(|w| w[0] <= w[1]),
        "stored rows are in (district, age) order"
    );
}

/// Issue #18: a header naming a column twice, and a quote that is never
/// closed, are refused with what is wrong; nothing is registered.
#[test]
fn duplicate_headers_and_unclosed_quotes_are_refused() {
    let d = new_domain(test_limits());
    let before = d.rt.catalog().list().unwrap().len();
    let dup = write(&d.sources, "dup.csv", "district,income,district\nA,1,B\nC,2,D\n");
    match d.rt.catalog().register("dup", &dup, "duplicate header") {
        Err(Error::Invalid(m)) => assert!(m.contains("`district` twice"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let open = write(
        &d.sources,
        "open.csv",
        "district,note\nA,\"never closed\nB,fine\nC,fine\n",
    );
    match d.rt.catalog().register("open", &open, "unclosed quote") {
        Err(Error::Invalid(m)) => assert!(m.contains("never closed"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(d.rt.catalog().list().unwrap().len(), before);
}

/// #23: keying a dataset by its entity names a column it has, and does not
/// also sort by others; a source column named like the host's own hidden
/// columns is refused. Each refusal says what is wrong and stores nothing.
#[test]
fn a_keyed_registration_with_a_bad_column_or_order_and_a_host_column_name_are_refused() {
    let d = new_domain(test_limits());
    let source = d.sources.join("residents.parquet");
    let before = files_under(&d.root.join("datasets"));
    let keyed = |entity: &str, sort_by: &[&str]| inland_runtime::DatasetMeta {
        entity: Some(entity.into()),
        sort_by: sort_by.iter().map(|c| c.to_string()).collect(),
        ..Default::default()
    };
    let refusals = [
        (keyed("person", &[]), "`person`"),
        (keyed("resident_id", &["district"]), "not both"),
    ];
    for (meta, says) in refusals {
        match d.rt.catalog().register_with("keyed", &source, meta) {
            Err(Error::Invalid(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    let hostile = write(&d.sources, "hostile.csv", "resident_id,__inland_entity\nr1,1\nr2,2\n");
    match d.rt.catalog().register("hostile", &hostile, "a host column name") {
        Err(Error::Invalid(m)) => assert!(m.contains("`__inland_entity`"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(files_under(&d.root.join("datasets")), before);
    assert!(matches!(d.rt.catalog().get("keyed"), Err(Error::NotFound(_))));
    assert!(matches!(d.rt.catalog().get("hostile"), Err(Error::NotFound(_))));
}
