//! Output records: what the domain keeps about each table a job left in
//! quarantine — lineage, label, gate report, review, release and exports.

use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::keys::SealingKey;
use crate::release::review::Review;
use crate::release::vault::read_sealed_table;
use arrow::record_batch::RecordBatch;
use inland_gate::GateReport;
use inland_gate::ReleasedCell;
use inland_policies::Label;
use inland_query::ColumnInfo;
use serde::{Deserialize, Serialize};

/// A query as the job ran it, for the job record and the output's lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRecord {
    /// The SQL text.
    pub sql: String,
    /// SHA-256 of the checked plan, when it got that far.
    pub plan_hash: Option<String>,
    /// Rows returned to the job.
    pub rows: u64,
    /// The refusal or error, if any.
    pub error: Option<String>,
    /// The result's label, decided by the host from the plan.
    #[serde(default)]
    pub label: Option<Label>,
    /// ρ (zCDP) charged for it, in the `dp` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
}

impl OutputRecord {
    /// Marks the output destroyed and drops what its record says of the
    /// content: the job's column names, the label's reason, the gate's
    /// per-cell findings (which may quote group keys of protected data),
    /// the released rows' sketches and kept differences (per-entity
    /// contributions; the domain's release history keeps its own copy).
    pub(crate) fn scrub(&mut self) {
        self.destroyed = true;
        if let Some(release) = self.release.as_mut() {
            release.cells.clear();
        }
        self.columns.clear();
        self.gate = None;
        self.queries.clear();
        self.name.clear();
        if let Some((_, why)) = self.label.as_mut() {
            why.clear();
        }
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
    pub label: Option<(Label, String)>,
    /// Destroyed with its grant; only this record remains.
    #[serde(default)]
    pub destroyed: bool,
    /// The gate's report from when it was emitted.
    #[serde(default)]
    pub gate: Option<GateReport>,
    /// Its release request.
    #[serde(default)]
    pub review: Option<Review>,
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
    pub report: GateReport,
    /// Traced rows it releases, with entity sketches: part of the domain's differencing history.
    pub cells: Vec<ReleasedCell>,
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
    pub(crate) label: Option<(Label, String)>,
}

/// Reads a quarantined output's table back, opening it with the grant's key
/// and checking its content hash.
pub(crate) fn read(domain: &Domain, key: &SealingKey, record: &OutputRecord) -> Result<Vec<RecordBatch>> {
    if record.destroyed {
        return Err(Error::NotFound(format!(
            "output `{}`: destroyed when grant `{}` was terminated",
            record.id, record.grant
        )));
    }
    read_sealed_table(domain, key, &record.grant, &record.sha256)
}
