//! Export bundles: the approved, released version of an output as Parquet
//! and CSV, with a manifest (content hashes, lineage, label, check report,
//! approvals) signed with the domain's Ed25519 key. A bundle is checked
//! offline with nothing but its files and the domain's public key.

use crate::error::{Error, Result};
use crate::governance::catalog;
use crate::release::review::{Decision, Vote};
use arrow::record_batch::RecordBatch;
use inland_gate::GateReport;
use inland_policies::Label;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The manifest's detached Ed25519 signature, hex.
pub const SIGNATURE: &str = "manifest.sig";
/// The domain's public key, hex (a convenience: check with the key you trust).
pub const PUBLIC_KEY: &str = "public.key";
/// The manifest format written now: the release's provenance without
/// anything the job wrote or chose beyond the released table (no query
/// texts or digests of them, no output name, no label reason, no check
/// details, no reviewers' free text). Auditors find the rest in the ledger
/// by the job id.
pub(crate) const FORMAT: &str = "inland-export/2";
/// The first format: still verified, never written (it carried the job's
/// query texts, errors and row counts, and the gate's cell details).
const FORMAT_V1: &str = "inland-export/1";

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// File name inside the bundle.
    pub name: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

/// What a bundle says about itself; signed by the domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// `inland-export/2` (`/1` bundles still verify).
    pub format: String,
    /// The domain that released it.
    pub domain: String,
    /// The output.
    pub output_id: String,
    /// The job that made it, its operator, grant and module.
    pub job_id: String,
    /// Operator.
    pub operator: String,
    /// Grant.
    pub grant: String,
    /// SHA-256 of the job's component.
    pub module_sha256: String,
    /// The output's label (its level; the reason names the job's columns and
    /// stays in the domain).
    #[serde(default, deserialize_with = "label_level")]
    pub label: Option<Label>,
    /// Datasets the job could read.
    pub datasets: Vec<String>,
    /// SHA-256 of the released version (after suppression, totals, rounding).
    pub release_sha256: String,
    /// The files of the bundle.
    pub files: Vec<ManifestFile>,
    /// The gate's verdict and the checks reviewers overrode (absent in
    /// `inland-export/1` bundles, which carried the gate's whole report).
    #[serde(default)]
    pub checks: Option<CheckSummary>,
    /// Who approved, and when.
    pub approvals: Vec<Approval>,
    /// When it was exported (ms since the Unix epoch).
    pub exported_at_ms: u64,
}

/// A reviewer's approval as a bundle states it: not their reason or
/// justification, free text that may quote cells of the quarantined table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The reviewer.
    pub reviewer: String,
    /// Their decision.
    pub decision: Decision,
    /// Checks they overrode.
    #[serde(default)]
    pub overrides: Vec<String>,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
}

impl From<&Vote> for Approval {
    fn from(v: &Vote) -> Self {
        Approval {
            reviewer: v.reviewer.clone(),
            decision: v.decision,
            overrides: v.overrides.clone(),
            at_ms: v.at_ms,
        }
    }
}

/// A label as `/2` writes it (the level) or `/1` wrote it (level, reason).
fn label_level<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Label>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    let level = match value {
        Some(serde_json::Value::Array(mut pair)) if !pair.is_empty() => pair.swap_remove(0),
        Some(v) => v,
        None => return Ok(None),
    };
    serde_json::from_value(level)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// What the checks concluded: the verdict and the checks reviewers
/// overrode. Not each check's status or cells: those describe the table
/// before suppression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// The gate's verdict.
    pub verdict: inland_gate::Verdict,
    /// Checks reviewers overrode.
    pub overrides: Vec<String>,
}

impl CheckSummary {
    /// The summary of `report`.
    pub(crate) fn of(report: &GateReport) -> Self {
        CheckSummary {
            verdict: report.verdict,
            overrides: report.overrides.clone(),
        }
    }
}

/// The files of a bundle, ready to write.
/// The table's file names in a bundle: fixed, because the output's name is
/// the job's choice, made after reading data, and no reviewer reads it.
pub const TABLE_PARQUET: &str = "table.parquet";
/// The CSV copy of the table.
pub const TABLE_CSV: &str = "table.csv";

pub(crate) fn table_files(batches: &[RecordBatch]) -> Result<Vec<(String, Vec<u8>)>> {
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| Error::Internal("an export needs the table's schema".into()))?;
    let mut parquet_bytes = Vec::new();
    {
        let mut w = parquet::arrow::ArrowWriter::try_new(
            &mut parquet_bytes,
            schema.clone(),
            Some(catalog::writer_properties()),
        )
        .map_err(|e| Error::Internal(format!("writing Parquet: {e}")))?;
        for b in batches {
            w.write(b)
                .map_err(|e| Error::Internal(format!("writing Parquet: {e}")))?;
        }
        w.close()
            .map_err(|e| Error::Internal(format!("writing Parquet: {e}")))?;
    }
    let mut csv_bytes = Vec::new();
    {
        let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut csv_bytes);
        for b in batches {
            w.write(&flat_for_csv(b)?)
                .map_err(|e| Error::Internal(format!("writing CSV: {e}")))?;
        }
    }
    Ok(vec![
        (TABLE_PARQUET.to_string(), parquet_bytes),
        (TABLE_CSV.to_string(), csv_bytes),
    ])
}

/// The batch with every nested column (list, struct, map) written as text,
/// `[1, 2]` or `{a: 1}`: CSV has no nested values, and the Parquet file of
/// the bundle keeps them typed.
fn flat_for_csv(batch: &RecordBatch) -> Result<RecordBatch> {
    use arrow::array::{Array, ArrayRef, StringBuilder};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let nested = |t: &DataType| t.is_nested();
    if !batch.schema().fields().iter().any(|f| nested(f.data_type())) {
        return Ok(batch.clone());
    }
    let options = FormatOptions::default();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !nested(field.data_type()) {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        let format = ArrayFormatter::try_new(column.as_ref(), &options)
            .map_err(|e| Error::Internal(format!("writing CSV: {e}")))?;
        let mut text = StringBuilder::new();
        for i in 0..column.len() {
            if column.is_null(i) {
                text.append_null();
            } else {
                text.append_value(format.value(i).to_string());
            }
        }
        fields.push(Field::new(field.name(), DataType::Utf8, true));
        columns.push(std::sync::Arc::new(text.finish()));
    }
    RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::Internal(format!("writing CSV: {e}")))
}

/// Writes a bundle into `to` (absent or empty) all at once: the files go to a
/// staging directory beside it, which is renamed into place when complete.
/// Also how a client stores a bundle it downloaded.
pub fn write_bundle(to: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    check_target(to)?;
    let parent = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let staging = parent.join(format!(".inland-export-{}", uuid::Uuid::now_v7()));
    let result = (|| {
        std::fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
        for (name, bytes) in files {
            inland_files::write_atomic(&staging.join(name), bytes)?;
        }
        inland_files::sync_dir(&staging)?;
        if to.exists() {
            std::fs::remove_dir(to).map_err(|e| Error::io(to, e))?;
        }
        std::fs::rename(&staging, to).map_err(|e| Error::io(to, e))?;
        Ok::<_, Error>(inland_files::sync_dir(&parent)?)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// Refuses a target directory that is not new or empty, before anything is
/// recorded: an export is recorded before its files are written.
pub fn check_target(to: &Path) -> Result<()> {
    if to.exists() {
        let empty = std::fs::read_dir(to).map_err(|e| Error::io(to, e))?.next().is_none();
        if !empty {
            return Err(Error::Invalid(format!(
                "{} is not empty: export into a new directory",
                to.display()
            )));
        }
    }
    Ok(())
}

/// What checking a bundle found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportCheck {
    /// The output the bundle holds.
    pub output_id: String,
    /// Files checked against the manifest.
    pub files: usize,
    /// The first problem, if any: the bundle is not what the domain signed.
    pub problem: Option<String>,
}

/// Checks a bundle offline: the manifest's signature with the public key
/// (hex; the bundle's own `public.key` when `None` — pass the key you trust),
/// and every file against its hash. Extra or missing files are problems.
pub fn verify_bundle(dir: &Path, public_key_hex: Option<&str>) -> Result<ExportCheck> {
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| Error::io(dir.join(name), e));
    let manifest_bytes = read(MANIFEST)?;
    let signature_hex = String::from_utf8_lossy(&read(SIGNATURE)?).trim().to_string();
    let key_hex = match public_key_hex {
        Some(k) => k.trim().to_string(),
        None => String::from_utf8_lossy(&read(PUBLIC_KEY)?).trim().to_string(),
    };
    let key = hex::decode(&key_hex).map_err(|_| Error::Invalid("the public key is not hex".into()))?;
    let manifest: Option<Manifest> = serde_json::from_slice(&manifest_bytes).ok();
    let mut check = ExportCheck {
        output_id: manifest.as_ref().map(|m| m.output_id.clone()).unwrap_or_default(),
        files: 0,
        problem: None,
    };
    let signature = hex::decode(&signature_hex).unwrap_or_default();
    if !inland_ledger::verify_signature(&key, &manifest_bytes, &signature) {
        check.problem = Some(format!(
            "{MANIFEST}: the signature does not verify with this public key"
        ));
        return Ok(check);
    }
    let Some(manifest) = manifest else {
        check.problem = Some(format!("{MANIFEST} is signed but not a manifest"));
        return Ok(check);
    };
    if manifest.format != FORMAT && manifest.format != FORMAT_V1 {
        check.problem = Some(format!("unknown bundle format `{}`", manifest.format));
        return Ok(check);
    }
    for f in &manifest.files {
        let bytes = match std::fs::read(dir.join(&f.name)) {
            Ok(b) => b,
            Err(_) => {
                check.problem = Some(format!("{}: listed in the manifest but missing", f.name));
                return Ok(check);
            }
        };
        if bytes.len() as u64 != f.bytes || inland_files::sha256_hex(&bytes) != f.sha256 {
            check.problem = Some(format!("{}: does not match the hash in the signed manifest", f.name));
            return Ok(check);
        }
        check.files += 1;
    }
    let known: Vec<&str> = manifest
        .files
        .iter()
        .map(|f| f.name.as_str())
        .chain([MANIFEST, SIGNATURE, PUBLIC_KEY])
        .collect();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !known.contains(&name.as_str()) {
            check.problem = Some(format!("{name}: not listed in the signed manifest"));
            return Ok(check);
        }
    }
    Ok(check)
}

/// Serializes and signs a manifest; returns (manifest bytes, signature hex).
pub(crate) fn sign(manifest: &Manifest, ledger: &inland_ledger::Ledger) -> Result<(Vec<u8>, String)> {
    let bytes = serde_json::to_vec_pretty(manifest)?;
    let signature = hex::encode(ledger.sign(&bytes));
    Ok((bytes, signature))
}
