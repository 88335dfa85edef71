//! The tables a job emits, collected under the output cap while it runs.
//! Nothing here is trusted: names are checked, IPC is decoded by the host,
//! and a table keeps the schema it was first emitted with.

use crate::error::JobError;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::record_batch::RecordBatch;
use inland_policies::{Name, NameKind};
use std::collections::BTreeMap;

/// Output tables one job may emit.
const MAX_TABLES: usize = 64;

/// Checks an output name: it becomes part of a file name and an id.
pub fn validate_output_name(name: &str) -> Result<(), String> {
    Name::parse(NameKind::Output, name)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// One emitted table: its schema and every batch emitted under its name.
pub struct Collected {
    /// The columns.
    pub schema: SchemaRef,
    /// The rows, batch by batch.
    pub batches: Vec<RecordBatch>,
}

/// The tables a running job has emitted so far, and the bytes it has used.
pub struct OutputCollector {
    limit: u64,
    used: u64,
    tables: BTreeMap<String, Collected>,
}

impl OutputCollector {
    /// A collector that stops the job once it has emitted `limit` bytes.
    pub fn new(limit: u64) -> Self {
        OutputCollector {
            limit,
            used: 0,
            tables: BTreeMap::new(),
        }
    }

    /// Takes one emitted IPC stream. The outer error stops the job (the output
    /// cap); the inner one is returned to the job (a bad name or table).
    pub fn add(&mut self, name: &str, ipc: &[u8]) -> Result<Result<(), String>, JobError> {
        self.used = self.used.saturating_add(ipc.len() as u64);
        if self.used > self.limit {
            return Err(JobError::OutputLimit {
                limit_bytes: self.limit,
            });
        }
        if let Err(m) = validate_output_name(name) {
            return Ok(Err(m));
        }
        let reader = match StreamReader::try_new(std::io::Cursor::new(ipc), None) {
            Ok(r) => r,
            Err(e) => return Ok(Err(format!("output `{name}` is not an Arrow IPC stream: {e}"))),
        };
        let schema = reader.schema();
        let mut batches = Vec::new();
        for b in reader {
            match b {
                Ok(b) => batches.push(b),
                Err(e) => return Ok(Err(format!("output `{name}` has a malformed batch: {e}"))),
            }
        }
        if !self.tables.contains_key(name) && self.tables.len() >= MAX_TABLES {
            return Ok(Err(format!("a job may emit at most {MAX_TABLES} output tables")));
        }
        let entry = self.tables.entry(name.to_string()).or_insert_with(|| Collected {
            schema: schema.clone(),
            batches: Vec::new(),
        });
        if entry.schema.fields() != schema.fields() {
            return Ok(Err(format!(
                "output `{name}` was emitted before with a different schema"
            )));
        }
        entry.batches.extend(batches);
        Ok(Ok(()))
    }

    /// Whether the job emitted nothing.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
    /// How many tables it emitted.
    pub fn len(&self) -> usize {
        self.tables.len()
    }
}

impl IntoIterator for OutputCollector {
    type Item = (String, Collected);
    type IntoIter = std::collections::btree_map::IntoIter<String, Collected>;

    /// The tables in name order.
    fn into_iter(self) -> Self::IntoIter {
        self.tables.into_iter()
    }
}
