//! Exports for audit systems: the entries as JSON lines (exactly the bytes
//! that were hashed), a signed checkpoint and the public key — enough for a
//! regulator to verify offline.

use super::{Checkpoint, Error, Ledger, Result, merkle, seq_of};
use inland_files::write_atomic;
use std::path::Path;

/// File names inside an export directory.
pub const EXPORT_ENTRIES: &str = "entries.jsonl";
/// The checkpoint the export is verified against.
pub const EXPORT_CHECKPOINT: &str = "checkpoint.json";
/// The domain's Ed25519 public key, hex.
pub const EXPORT_PUBLIC_KEY: &str = "public.key";

/// The files of an export: (name, bytes), entries first.
pub type ExportFiles = [(&'static str, Vec<u8>); 3];

impl Ledger {
    /// Writes `entries.jsonl`, a fresh signed `checkpoint.json` and `public.key` into `dir`.
    pub fn export_jsonl(&self, dir: &Path) -> Result<Checkpoint> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let (files, cp) = self.export_files()?;
        for (name, bytes) in files {
            write_atomic(&dir.join(name), &bytes)?;
        }
        Ok(cp)
    }

    /// The three files of an export, in memory (for a server to hand out),
    /// with the fresh checkpoint they are verified against.
    pub fn export_files(&self) -> Result<(ExportFiles, Checkpoint)> {
        let cp = self.checkpoint()?;
        let raw = self.raw_entries()?;
        let mut out = Vec::new();
        for entry in raw.iter().take(cp.tree_size as usize) {
            out.extend_from_slice(entry);
            out.push(b'\n');
        }
        let cp_json = serde_json::to_vec_pretty(&cp).map_err(|e| Error::Internal(e.to_string()))?;
        let key = format!("{}\n", hex::encode(self.public_key())).into_bytes();
        Ok((
            [
                (EXPORT_ENTRIES, out),
                (EXPORT_CHECKPOINT, cp_json),
                (EXPORT_PUBLIC_KEY, key),
            ],
            cp,
        ))
    }
}

/// What an offline verification of an export found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineReport {
    /// Entries in the export.
    pub entries: u64,
    /// The checkpoint's size.
    pub tree_size: u64,
    /// The first problem, naming the entry; `None` when the export verifies.
    pub problem: Option<String>,
}

/// Verifies an export directory with only its files and a public key (hex;
/// the export's own `public.key` when `None` — pass the key you trust).
pub fn verify_export(dir: &Path, public_key_hex: Option<&str>) -> Result<OfflineReport> {
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| Error::io(dir.join(name), e));
    let key_hex = match public_key_hex {
        Some(k) => k.trim().to_string(),
        None => String::from_utf8_lossy(&read(EXPORT_PUBLIC_KEY)?).trim().to_string(),
    };
    let key = hex::decode(&key_hex).map_err(|_| Error::Invalid("the public key is not hex".into()))?;
    let cp: Checkpoint = serde_json::from_slice(&read(EXPORT_CHECKPOINT)?)
        .map_err(|e| Error::Invalid(format!("{EXPORT_CHECKPOINT}: {e}")))?;
    let entries = read(EXPORT_ENTRIES)?;
    let lines: Vec<&[u8]> = entries.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut report = OfflineReport {
        entries: lines.len() as u64,
        tree_size: cp.tree_size,
        problem: None,
    };
    if !cp.verify_signature(&key) {
        report.problem = Some("the checkpoint's signature does not verify with this public key".into());
        return Ok(report);
    }
    let mut leaves = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match seq_of(line) {
            Ok(seq) if seq == i as u64 => {}
            Ok(seq) => {
                report.problem = Some(format!("entry {i}: expected sequence number {i}, found {seq}"));
                return Ok(report);
            }
            Err(e) => {
                report.problem = Some(format!("entry {i} is not a valid record: {e}"));
                return Ok(report);
            }
        }
        leaves.push(merkle::leaf_hash(line));
    }
    if leaves.len() as u64 != cp.tree_size {
        report.problem = Some(format!(
            "the checkpoint covers {} entries, the export has {}",
            cp.tree_size,
            leaves.len()
        ));
        return Ok(report);
    }
    if hex::encode(merkle::root(&leaves)) != cp.root {
        report.problem = Some("the entries do not match the signed root: at least one was altered".into());
    }
    Ok(report)
}
