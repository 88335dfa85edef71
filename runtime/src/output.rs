//! Outputs: tables a job emits, collected under the output cap while it runs,
//! then kept in quarantine — content-addressed, immutable, inside the domain.

use crate::catalog::ColumnInfo;
use crate::domain::Domain;
use crate::error::{Error, JobError, Result};
use crate::host::QueryRecord;
use crate::state::OUTPUTS;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Output tables one job may emit.
const MAX_TABLES: usize = 64;

/// Checks an output name: letters, digits, `_` and `-`, 1 to 64 characters.
pub fn validate_output_name(name: &str) -> std::result::Result<(), String> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "output name {name:?} is not allowed: use 1 to 64 letters, digits, `_` or `-`"
        ))
    }
}

struct Collected {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

/// The tables a running job has emitted so far, and the bytes it has used.
pub(crate) struct OutputCollector {
    limit: u64,
    used: u64,
    tables: BTreeMap<String, Collected>,
}

impl OutputCollector {
    pub(crate) fn new(limit: u64) -> Self {
        OutputCollector {
            limit,
            used: 0,
            tables: BTreeMap::new(),
        }
    }

    /// Takes one emitted IPC stream. The outer error stops the job (the output
    /// cap); the inner one is returned to the job (a bad name or table).
    pub(crate) fn add(
        &mut self,
        name: &str,
        ipc: &[u8],
    ) -> std::result::Result<std::result::Result<(), String>, JobError> {
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

    pub(crate) fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
    pub(crate) fn len(&self) -> usize {
        self.tables.len()
    }
}

/// An output in quarantine: where it came from and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// `<job id>/<name>`.
    pub id: String,
    /// The name the job gave it.
    pub name: String,
    /// The job that emitted it.
    pub job_id: String,
    /// The operator that submitted the job.
    pub operator: String,
    /// The grant the job ran under.
    pub grant: String,
    /// SHA-256 of the job's component.
    pub module_sha256: String,
    /// SHA-256 of the stored Arrow IPC file; also its file name.
    pub sha256: String,
    /// Row count.
    pub rows: u64,
    /// Stored size.
    pub bytes: u64,
    /// Columns.
    pub columns: Vec<ColumnInfo>,
    /// Datasets the job could read (lineage).
    pub datasets: Vec<String>,
    /// Every query the job ran (lineage).
    pub queries: Vec<QueryRecord>,
    /// When it entered quarantine (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// The job's label when it emitted this output (outputs inherit it), and why.
    #[serde(default)]
    pub label: Option<(inland_policies::Label, String)>,
    /// Destroyed with its grant; only this record remains.
    #[serde(default)]
    pub destroyed: bool,
    /// The gate's report from when it was emitted.
    #[serde(default)]
    pub gate: Option<inland_gate::GateReport>,
    /// Its release request.
    #[serde(default)]
    pub review: Option<crate::review::Review>,
    /// The released version, once approved.
    #[serde(default)]
    pub release: Option<Release>,
    /// Every export of it.
    #[serde(default)]
    pub exports: Vec<ExportRecord>,
}

/// The released version of an approved output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// SHA-256 of the released table (kept sealed in quarantine).
    pub sha256: String,
    /// Its rows.
    pub rows: u64,
    /// The gate's report at approval (with the overrides agreed by the reviewers).
    pub report: inland_gate::GateReport,
    /// Traced cells it releases: the grant's differencing history.
    pub cells: Vec<inland_gate::ReleasedCell>,
    /// When approved.
    pub approved_at_ms: u64,
}

/// One export of an output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// SHA-256 of the signed manifest.
    pub manifest_sha256: String,
    /// Where it was written.
    pub to: String,
    /// When.
    pub at_ms: u64,
}

impl OutputRecord {
    /// The stored file, relative to the domain directory: sealed with the
    /// grant's key, in the grant's own directory.
    pub fn relative_path(&self) -> String {
        format!("quarantine/{}/{}.sealed", self.grant, self.sha256)
    }
}

/// Lineage and identity shared by every output of one job.
pub(crate) struct OutputOrigin<'a> {
    pub(crate) job_id: &'a str,
    pub(crate) operator: &'a str,
    pub(crate) grant: &'a str,
    pub(crate) module_sha256: &'a str,
    pub(crate) datasets: Vec<String>,
    pub(crate) queries: &'a [QueryRecord],
    pub(crate) label: Option<(inland_policies::Label, String)>,
}

/// Writes every collected table into quarantine, sealed with the grant's
/// key, and records it.
pub(crate) fn quarantine(
    domain: &Domain,
    key: &crate::keys::SealingKey,
    collected: OutputCollector,
    origin: &OutputOrigin<'_>,
    gate: &crate::gating::GateContext,
    facts: &inland_gate::FactIndex,
) -> Result<Vec<OutputRecord>> {
    let label = origin
        .label
        .as_ref()
        .map(|(l, _)| *l)
        .unwrap_or(inland_policies::Label::Public);
    let qdir = GrantDir::open(domain, origin.grant)?;
    let mut records = Vec::new();
    for (name, table) in collected.tables {
        let (sha256, stored_bytes) = qdir.seal_table(key, &table.schema, &table.batches)?;
        let record = OutputRecord {
            id: format!("{}/{name}", origin.job_id),
            name,
            job_id: origin.job_id.to_string(),
            operator: origin.operator.to_string(),
            grant: origin.grant.to_string(),
            module_sha256: origin.module_sha256.to_string(),
            sha256,
            rows: table.batches.iter().map(|b| b.num_rows() as u64).sum(),
            bytes: stored_bytes,
            columns: ColumnInfo::of(&table.schema),
            datasets: origin.datasets.clone(),
            queries: origin.queries.to_vec(),
            created_at_ms: crate::fsutil::now_ms(),
            label: origin.label.clone(),
            destroyed: false,
            gate: None,
            review: None,
            release: None,
            exports: Vec::new(),
        };
        // The automated checks run as the output is emitted.
        let whole = crate::gating::concat(&table.schema, &table.batches)?;
        let report = gate.check(&whole, facts, label, &[])?.report;
        let mut record = record;
        record.review = Some(crate::review::Review {
            state: match report.verdict {
                inland_gate::Verdict::Blocked => crate::review::ReviewState::Blocked,
                inland_gate::Verdict::Review => crate::review::ReviewState::Submitted,
            },
            required: report.approvals_required,
            votes: Vec::new(),
        });
        record.gate = Some(report);
        domain.state.insert_new(OUTPUTS, &record.id, &record, "output")?;
        records.push(record);
    }
    qdir.sync()?;
    Ok(records)
}

/// A grant's quarantine directory, opened as a capability: writes go through
/// it to that directory alone.
pub(crate) struct GrantDir {
    path: std::path::PathBuf,
    dir: Dir,
}

impl GrantDir {
    /// Opens (creating if needed) the quarantine directory of `grant`.
    pub(crate) fn open(domain: &Domain, grant: &str) -> Result<GrantDir> {
        let path = domain.dir("quarantine").join(grant);
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        let dir = Dir::open_ambient_dir(&path, ambient_authority()).map_err(|e| Error::io(&path, e))?;
        Ok(GrantDir { path, dir })
    }

    /// Seals a table as an Arrow IPC file, content-addressed; returns its
    /// SHA-256 and its size before sealing.
    pub(crate) fn seal_table(
        &self,
        key: &crate::keys::SealingKey,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(String, u64)> {
        let mut bytes = Vec::new();
        {
            let mut w = FileWriter::try_new(&mut bytes, schema).map_err(|e| Error::Internal(e.to_string()))?;
            for b in batches {
                w.write(b).map_err(|e| Error::Internal(e.to_string()))?;
            }
            w.finish().map_err(|e| Error::Internal(e.to_string()))?;
        }
        let sha256 = crate::fsutil::sha256_hex(&bytes);
        self.seal_named(key, &format!("{sha256}.sealed"), &sha256, &bytes)?;
        Ok((sha256, bytes.len() as u64))
    }

    /// Seals bytes under `name`, bound to `aad`.
    pub(crate) fn seal_named(&self, key: &crate::keys::SealingKey, name: &str, aad: &str, bytes: &[u8]) -> Result<()> {
        let sealed = key.seal(bytes, aad)?;
        store_in(&self.dir, name, &sealed).map_err(|e| Error::io(self.path.join(name), e))
    }

    /// Makes what was stored durable.
    pub(crate) fn sync(&self) -> Result<()> {
        crate::fsutil::sync_dir(&self.path)
    }
}

/// Stores content-addressed bytes under `name` in `dir`, atomically and read-only.
/// Content already there is left as it is: same name, same bytes.
fn store_in(dir: &Dir, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if dir.exists(name) {
        return Ok(());
    }
    let tmp = format!(".incoming-{}", uuid::Uuid::now_v7());
    let result = (|| {
        let mut f = dir.create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            dir.set_permissions(
                &tmp,
                cap_std::fs::Permissions::from_std(std::fs::Permissions::from_mode(0o440)),
            )?;
        }
        dir.rename(&tmp, dir, name)
    })();
    if result.is_err() {
        let _ = dir.remove_file(&tmp);
    }
    result
}

/// Reads a quarantined output's table back, opening it with the grant's key
/// and checking its content hash.
pub(crate) fn read(domain: &Domain, key: &crate::keys::SealingKey, record: &OutputRecord) -> Result<Vec<RecordBatch>> {
    if record.destroyed {
        return Err(Error::NotFound(format!(
            "output `{}`: destroyed when grant `{}` was terminated",
            record.id, record.grant
        )));
    }
    read_sealed_table(domain, key, &record.grant, &record.sha256)
}

/// Reads a sealed, content-addressed table of a grant from quarantine.
pub(crate) fn read_sealed_table(
    domain: &Domain,
    key: &crate::keys::SealingKey,
    grant: &str,
    sha256: &str,
) -> Result<Vec<RecordBatch>> {
    let path = domain.root().join(format!("quarantine/{grant}/{sha256}.sealed"));
    let sealed = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let bytes = key.open(&sealed, sha256)?;
    if crate::fsutil::sha256_hex(&bytes) != sha256 {
        return Err(Error::Invalid(format!(
            "{} does not match its recorded hash: quarantine was altered",
            path.display()
        )));
    }
    let reader = arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Internal(e.to_string()))?;
    // An empty table still has its columns: readers always get at least one batch.
    Ok(if batches.is_empty() {
        vec![RecordBatch::new_empty(schema)]
    } else {
        batches
    })
}
