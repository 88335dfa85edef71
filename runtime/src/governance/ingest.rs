//! Reading a dataset's source file for registration as a stream of batches,
//! sorted if the admin asked, in bounded memory: a province's register or a
//! year of transactions is larger than the machine's memory. A sort spills
//! to the domain's own `spill/` directory (the admin's file, inside the domain).

use crate::error::{Error, Result};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::Path;
use std::sync::Arc;

/// Memory the external sort may use before it spills.
const SORT_MEMORY: usize = 64 << 20;

/// Batches of a source, read as they are asked for.
pub(crate) type Batches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// A source file opened for reading.
pub(crate) struct Source {
    /// `csv` or `parquet`.
    pub(crate) format: &'static str,
    pub(crate) schema: SchemaRef,
    /// Rows, when the file says how many (Parquet): for progress.
    pub(crate) rows_hint: Option<u64>,
    pub(crate) batches: Batches,
}

fn invalid_file(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{}: {what}", path.display()))
}

/// Arrow's CSV errors already say which line; drop the variant prefix.
fn csv_message(e: &ArrowError) -> String {
    match e {
        ArrowError::CsvError(m) | ArrowError::ParseError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Opens a source file: CSV (header row, schema inferred from every row,
/// which reads the file once without keeping it) or Parquet.
pub(crate) fn open(path: &Path) -> Result<Source> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let file = File::open(path).map_err(|e| invalid_file(path, format!("cannot open: {e}")))?;
    match ext.as_str() {
        "csv" => {
            if let Some(line) = unclosed_quote(path)? {
                // A quote opened and never closed swallows every line after it
                // into one field; the reader would take that for data.
                return Err(invalid_file(
                    path,
                    format!("line {line}: a quoted field is never closed"),
                ));
            }
            let mut reader = BufReader::new(file);
            let format = arrow::csv::reader::Format::default().with_header(true);
            let (schema, _) = format
                .infer_schema(&mut reader, None)
                .map_err(|e| invalid_file(path, format!("not a valid CSV file: {}", csv_message(&e))))?;
            if schema.fields().is_empty() {
                return Err(invalid_file(path, "the CSV file has no header row"));
            }
            let mut seen = std::collections::BTreeSet::new();
            for f in schema.fields() {
                if !seen.insert(f.name().as_str()) {
                    return Err(invalid_file(
                        path,
                        format!(
                            "line 1: the header names column `{}` twice; column names must be unique",
                            f.name()
                        ),
                    ));
                }
            }
            let schema = Arc::new(schema);
            reader.rewind().map_err(|e| Error::io(path, e))?;
            let csv = arrow::csv::ReaderBuilder::new(schema.clone())
                .with_header(true)
                .build(reader)
                .map_err(|e| invalid_file(path, csv_message(&e)))?;
            let shown = path.to_path_buf();
            Ok(Source {
                format: "csv",
                schema,
                rows_hint: None,
                batches: Box::new(csv.map(move |b| {
                    b.map_err(|e| invalid_file(&shown, format!("not a valid CSV file: {}", csv_message(&e))))
                })),
            })
        }
        "parquet" | "pq" => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| invalid_file(path, format!("not a valid Parquet file: {e}")))?;
            let schema = builder.schema().clone();
            let rows_hint = u64::try_from(builder.metadata().file_metadata().num_rows()).ok();
            let reader = builder
                .build()
                .map_err(|e| invalid_file(path, format!("not a valid Parquet file: {e}")))?;
            let shown = path.to_path_buf();
            Ok(Source {
                format: "parquet",
                schema,
                rows_hint,
                batches: Box::new(
                    reader.map(move |b| b.map_err(|e| invalid_file(&shown, format!("not a valid Parquet file: {e}")))),
                ),
            })
        }
        _ => Err(invalid_file(
            path,
            "unsupported format: register a .csv or .parquet file",
        )),
    }
}

/// The line where a quote opens that is never closed, if one is: quotes of
/// a well-formed CSV file come in pairs (an escaped quote is two).
fn unclosed_quote(path: &Path) -> Result<Option<usize>> {
    use std::io::Read;
    let mut file = BufReader::new(File::open(path).map_err(|e| Error::io(path, e))?);
    let (mut line, mut open_at, mut inside) = (1usize, 0usize, false);
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        for &b in &buf[..n] {
            match b {
                b'"' => {
                    inside = !inside;
                    if inside {
                        open_at = line;
                    }
                }
                b'\n' => line += 1,
                _ => {}
            }
        }
    }
    Ok(inside.then_some(open_at))
}

/// The source's rows sorted by the columns `by` (ascending, nulls first),
/// through DataFusion's external sort: runs that do not fit
/// [`SORT_MEMORY`] spill into `spill_dir`. A column that does not exist is
/// an error that names it. Unchanged when `by` is empty.
pub(crate) fn sorted(source: Source, by: &[String], spill_dir: &Path) -> Result<Source> {
    if by.is_empty() {
        return Ok(source);
    }
    for name in by {
        if source.schema.index_of(name).is_err() {
            return Err(Error::Invalid(format!(
                "cannot sort by `{name}`: the dataset has no such column"
            )));
        }
    }
    let schema = source.schema.clone();
    // `Ok(None)` marks the end: a channel that closes without it (the
    // thread panicked) is an error, never a shorter dataset.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Option<RecordBatch>>>(2);
    let by = by.to_vec();
    let spill_dir = spill_dir.to_path_buf();
    // Set when the registration drops the sorted stream (it failed): the
    // sort stops reading the source instead of finishing for nobody.
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = StopOnDrop(stopped.clone());
    let input: Batches = Box::new(source.batches.map(move |b| {
        if stopped.load(std::sync::atomic::Ordering::Relaxed) {
            Err(Error::Internal("the registration stopped".into()))
        } else {
            b
        }
    }));
    // Its own thread and runtime: registration is called from sync code
    // and from async handlers alike, and a sort must not block either's executor.
    std::thread::Builder::new()
        .name("inland-sort".into())
        .spawn(move || {
            let failed = tx.clone();
            if let Err(e) = sort_into(input, schema, &by, &spill_dir, tx) {
                let _ = failed.send(Err(e));
            }
        })
        .map_err(|e| Error::Internal(format!("starting the sort: {e}")))?;
    let mut ended = false;
    let batches = std::iter::from_fn(move || {
        let _held = &stop;
        if ended {
            return None;
        }
        match rx.recv() {
            Ok(Ok(Some(batch))) => Some(Ok(batch)),
            Ok(Ok(None)) => {
                ended = true;
                None
            }
            Ok(Err(e)) => {
                ended = true;
                Some(Err(e))
            }
            Err(_) => {
                ended = true;
                Some(Err(Error::Internal(
                    "sorting the dataset stopped before its end".into(),
                )))
            }
        }
    });
    Ok(Source {
        format: source.format,
        schema: source.schema,
        rows_hint: source.rows_hint,
        batches: Box::new(batches),
    })
}

/// The source's rows with the hidden entity key of column `entity` appended
/// as a last column ([`inland_query::STORED_ENTITY_KEY`]), batch by batch,
/// made exactly as a query would compute it; with what the catalog records.
/// A column that does not exist is an error that names it.
pub(crate) fn keyed(
    source: Source,
    entity: &str,
    domain_entity_key: &[u8; 32],
) -> Result<(Source, inland_query::StoredEntityKey)> {
    let Ok(at) = source.schema.index_of(entity) else {
        return Err(Error::Invalid(format!(
            "cannot key the rows by `{entity}`: the dataset has no such column"
        )));
    };
    let keyer = inland_query::EntityKeyer::new(entity, source.schema.field(at).data_type(), domain_entity_key);
    let record = keyer.record();
    let mut fields: Vec<arrow::datatypes::FieldRef> = source.schema.fields().iter().cloned().collect();
    fields.push(Arc::new(arrow::datatypes::Field::new(
        inland_query::STORED_ENTITY_KEY,
        arrow::datatypes::DataType::UInt64,
        true,
    )));
    let schema: SchemaRef = Arc::new(arrow::datatypes::Schema::new_with_metadata(
        fields,
        source.schema.metadata().clone(),
    ));
    let out = schema.clone();
    let batches = source.batches.map(move |b| {
        let b = b?;
        let keys = keyer.keys(b.column(at)).map_err(|e| Error::Internal(e.to_string()))?;
        let mut columns = b.columns().to_vec();
        columns.push(Arc::new(keys));
        RecordBatch::try_new(out.clone(), columns).map_err(|e| Error::Internal(format!("keying the rows: {e}")))
    });
    Ok((
        Source {
            format: source.format,
            schema,
            rows_hint: source.rows_hint,
            batches: Box::new(batches),
        },
        record,
    ))
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One pass over the source's batches, as DataFusion's streaming input.
struct OnePass {
    schema: SchemaRef,
    input: std::sync::Mutex<Option<Batches>>,
}

impl std::fmt::Debug for OnePass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnePass")
    }
}

impl datafusion::physical_plan::streaming::PartitionStream for OnePass {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(
        &self,
        _ctx: Arc<datafusion::execution::TaskContext>,
    ) -> datafusion::execution::SendableRecordBatchStream {
        use datafusion::error::DataFusionError;
        let input = self.input.lock().ok().and_then(|mut i| i.take());
        let batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send> = match input {
            Some(b) => b,
            None => Box::new(std::iter::once(Err(Error::Internal(
                "the source was read already".into(),
            )))),
        };
        let stream = futures::stream::iter(batches.map(|b| b.map_err(|e| DataFusionError::External(Box::new(e)))));
        Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        ))
    }
}

fn sort_into(
    input: Batches,
    schema: SchemaRef,
    by: &[String],
    spill_dir: &Path,
    tx: std::sync::mpsc::SyncSender<Result<Option<RecordBatch>>>,
) -> Result<()> {
    use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext, ident};
    use futures::StreamExt;
    let failed = |what: &str, e: &dyn std::fmt::Display| Error::Internal(format!("sorting the dataset: {what}: {e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed("starting", &e))?;
    runtime.block_on(async move {
        let env = RuntimeEnvBuilder::new()
            .with_memory_limit(SORT_MEMORY, 1.0)
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Directories(vec![spill_dir.to_path_buf()])),
            )
            .build_arc()
            .map_err(|e| failed("setting up", &e))?;
        let config = SessionConfig::new().with_target_partitions(1);
        let ctx = SessionContext::new_with_config_rt(config, env);
        let table = datafusion::catalog::streaming::StreamingTable::try_new(
            schema.clone(),
            vec![Arc::new(OnePass {
                schema: schema.clone(),
                input: std::sync::Mutex::new(Some(input)),
            })],
        )
        .map_err(|e| failed("reading", &e))?;
        let frame = ctx.read_table(Arc::new(table)).map_err(|e| failed("reading", &e))?;
        let order = by.iter().map(|c| ident(c).sort(true, true)).collect();
        let mut stream = frame
            .sort(order)
            .map_err(|e| failed("planning", &e))?
            .execute_stream()
            .await
            .map_err(|e| failed("running", &e))?;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| match e {
                // The source's own error (a malformed row) as it was.
                datafusion::error::DataFusionError::External(inner) => match inner.downcast::<Error>() {
                    Ok(own) => *own,
                    Err(other) => failed("running", &other),
                },
                other => failed("running", &other),
            })?;
            if tx.send(Ok(Some(batch))).is_err() {
                // The reader went away (registration failed): stop.
                return Ok(());
            }
        }
        let _ = tx.send(Ok(None));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    fn source(values: Vec<Vec<i64>>, fail_after: Option<usize>) -> Source {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batches: Vec<Result<RecordBatch>> = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| match fail_after {
                Some(n) if i >= n => Err(Error::Invalid("line 7: not a number".into())),
                _ => Ok(RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(v))]).unwrap()),
            })
            .collect();
        Source {
            format: "csv",
            schema,
            rows_hint: None,
            batches: Box::new(batches.into_iter()),
        }
    }

    #[test]
    fn the_external_sort_keeps_every_row_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let sorted = sorted(
            source(vec![vec![5, 3, 9], vec![1, 7], vec![2]], None),
            &["v".into()],
            dir.path(),
        )
        .unwrap();
        let values: Vec<i64> = sorted
            .batches
            .map(|b| b.unwrap())
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(values, vec![1, 2, 3, 5, 7, 9]);
    }

    /// A source that fails part-way fails the sorted stream with its own
    /// error: never a shorter dataset.
    #[test]
    fn a_source_error_during_the_sort_reaches_the_registration() {
        let dir = tempfile::tempdir().unwrap();
        let sorted = sorted(
            source(vec![vec![5, 3], vec![1], vec![2]], Some(2)),
            &["v".into()],
            dir.path(),
        )
        .unwrap();
        let results: Vec<Result<RecordBatch>> = sorted.batches.collect();
        let err = results.into_iter().find_map(|r| r.err()).expect("an error");
        assert!(err.to_string().contains("line 7: not a number"), "{err}");
        let err = super::sorted(source(vec![vec![1]], None), &["w".into()], dir.path())
            .err()
            .unwrap();
        assert!(err.to_string().contains("cannot sort by `w`"), "{err}");
    }
}
