//! The domain's events in its evidence ledger ([`inland_ledger`]): each event
//! is one entry, a JSON [`EventRecord`] with its sequence number. Adds what is
//! specific to the runtime: typed entries, the record of repairs, and
//! OpenLineage run events built from the job events.

use crate::date::Date;
use crate::error::{Error, Result};
use crate::events::{Event, EventRecord, EventSink};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

pub use inland_ledger::{
    Checkpoint, ConsistencyProof, EXPORT_CHECKPOINT, EXPORT_ENTRIES, EXPORT_PUBLIC_KEY, InclusionProof, OfflineReport,
    Repair, VerifyReport, merkle, public_key_of, verify_dir, verify_export,
};

/// The ledger signing key, in the domain's `keys/` directory.
pub const KEY_FILE: &str = "ledger.ed25519";
/// OpenLineage run events, one per line, in an export directory.
pub const EXPORT_OPENLINEAGE: &str = "openlineage.jsonl";

impl From<inland_ledger::Error> for Error {
    fn from(e: inland_ledger::Error) -> Self {
        match e {
            inland_ledger::Error::Io { path, source } => Error::Io { path, source },
            inland_ledger::Error::Invalid(m) => Error::Invalid(m),
            inland_ledger::Error::Internal(m) => Error::Internal(m),
            other => Error::Ledger(other),
        }
    }
}

/// The evidence ledger holding the domain's events. Dereferences to the
/// underlying log for checkpoints, proofs, verification and exports.
pub struct EventLedger {
    log: inland_ledger::Ledger,
}

impl std::ops::Deref for EventLedger {
    type Target = inland_ledger::Ledger;
    fn deref(&self) -> &Self::Target {
        &self.log
    }
}

impl EventLedger {
    /// Opens (or creates) the ledger; a torn final record left by a crash is
    /// cut, and the cut is recorded as the next event.
    pub fn open(dir: &Path, key_path: &Path) -> Result<EventLedger> {
        let (log, repair) = inland_ledger::Ledger::open(dir, key_path)?;
        let ledger = EventLedger { log };
        if let Some(r) = repair {
            ledger.append(Event::LedgerRepaired {
                at_entry: r.at_entry,
                cut_bytes: r.cut_bytes,
            })?;
        }
        Ok(ledger)
    }

    /// Appends an event; returns its sequence number once it is durable.
    pub fn append(&self, event: Event) -> Result<u64> {
        let at_ms = inland_files::now_ms();
        Ok(self.log.append_with(|seq| {
            serde_json::to_vec(&EventRecord { seq, at_ms, event })
                .map_err(|e| inland_ledger::Error::Internal(e.to_string()))
        })?)
    }

    /// Every event whose change happened: without the entries a `not_made`
    /// event rolled back (nor the `not_made` events themselves). What reports
    /// and lineage count; the ledger itself keeps everything.
    pub fn effective_entries(&self) -> Result<Vec<EventRecord>> {
        let entries = self.entries()?;
        let rolled_back: std::collections::BTreeSet<u64> = entries
            .iter()
            .filter_map(|e| match &e.event {
                Event::NotMade { entry, .. } => Some(*entry),
                _ => None,
            })
            .collect();
        Ok(entries
            .into_iter()
            .filter(|e| !rolled_back.contains(&e.seq) && !matches!(e.event, Event::NotMade { .. }))
            .collect())
    }

    /// Every event, decoded.
    pub fn entries(&self) -> Result<Vec<EventRecord>> {
        self.log
            .raw_entries()?
            .iter()
            .enumerate()
            .map(|(i, bytes)| serde_json::from_slice(bytes).map_err(|e| Error::damaged(format!("ledger entry {i}"), e)))
            .collect()
    }

    /// Writes `openlineage.jsonl` into `dir`: for each job a START and a
    /// COMPLETE or FAIL run event, with its input datasets and its outputs.
    pub fn export_openlineage(&self, dir: &Path, namespace: &str) -> Result<usize> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let entries = self.effective_entries()?;
        let mut outputs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for e in &entries {
            if let Event::OutputEmitted { job_id, output_id, .. } = &e.event {
                outputs.entry(job_id).or_default().push(output_id);
            }
        }
        let mut started: BTreeMap<&str, (&str, &[String])> = BTreeMap::new();
        let mut out = Vec::new();
        let mut count = 0;
        for e in &entries {
            let line = match &e.event {
                Event::JobAdmitted {
                    job_id,
                    module_sha256,
                    datasets,
                    ..
                } => {
                    started.insert(job_id, (module_sha256, datasets));
                    run_event("START", e, job_id, module_sha256, datasets, &[], namespace)
                }
                Event::JobFinished { job_id, outcome } => {
                    let Some((module, datasets)) = started.get(job_id.as_str()) else {
                        continue;
                    };
                    let kind = if outcome.succeeded() { "COMPLETE" } else { "FAIL" };
                    let outs = outputs.get(job_id.as_str()).map(Vec::as_slice).unwrap_or_default();
                    run_event(kind, e, job_id, module, datasets, outs, namespace)
                }
                _ => continue,
            };
            out.extend(serde_json::to_vec(&line)?);
            out.push(b'\n');
            count += 1;
        }
        inland_files::write_atomic(&dir.join(EXPORT_OPENLINEAGE), &out)?;
        Ok(count)
    }
}

impl EventSink for EventLedger {
    fn record(&self, event: Event) -> Result<u64> {
        self.append(event)
    }
}

/// The public key of a domain's ledger, from its signing key.
pub fn domain_public_key(domain_root: &Path) -> Result<Vec<u8>> {
    Ok(public_key_of(&domain_root.join("keys").join(KEY_FILE))?)
}

fn run_event(
    kind: &str,
    e: &EventRecord,
    job_id: &str,
    module: &str,
    datasets: &[String],
    outputs: &[&str],
    namespace: &str,
) -> serde_json::Value {
    json!({
        "eventType": kind,
        "eventTime": iso8601(e.at_ms),
        "producer": "https://github.com/inland/inland",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": { "runId": job_id, "facets": { "inland": { "ledgerSeq": e.seq } } },
        "job": { "namespace": namespace, "name": format!("module-{}", &module[..module.len().min(16)]) },
        "inputs": datasets.iter().map(|d| json!({ "namespace": namespace, "name": d })).collect::<Vec<_>>(),
        "outputs": outputs.iter().map(|o| json!({ "namespace": format!("{namespace}/quarantine"), "name": o })).collect::<Vec<_>>(),
    })
}

/// Milliseconds since the Unix epoch as an ISO 8601 UTC timestamp.
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let date = Date::from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{date}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso8601_formats_known_instants() {
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(super::iso8601(1_795_749_687_460), "2026-11-27T03:21:27.460Z");
    }
}
