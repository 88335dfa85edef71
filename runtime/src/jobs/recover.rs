//! Start-up reconciliation of jobs (#24): a job the ledger admitted that
//! never finished and has no record was cut short when the domain stopped (a
//! crash, a kill). It cannot be running: the state database is open in one
//! process only. Its outputs that reached quarantine are destroyed; it is
//! recorded as interrupted, in the state and the ledger, naming them.

use crate::context::Inner;
use crate::error::{Error, Result};
use crate::events::{Event, JobOutcome};
use crate::jobs::{JobRecord, JobStatus};
use crate::release::output::OutputRecord;
use crate::state::{JOBS, OUTPUTS};
use inland_sandbox::JobError;
use std::collections::{BTreeMap, BTreeSet};

/// What the job's record and `job_finished` say of an interrupted job.
pub(crate) const INTERRUPTED: &str = "interrupted: the domain stopped while the job ran; recovered at start-up";

/// What a start finds and finishes: interrupted jobs recorded, privacy
/// charges the state missed adopted. Reads the ledger once.
pub(crate) fn at_start(inner: &Inner) -> Result<()> {
    let Some(ledger) = &inner.ledger else {
        return Ok(());
    };
    let entries = ledger.entries()?;
    interrupted_jobs(inner, &entries)?;
    crate::jobs::budget::reconcile(&inner.domain.state, &entries)?;
    Ok(())
}

/// Records every admitted, unfinished, unrecorded job as interrupted;
/// returns their ids.
fn interrupted_jobs(inner: &Inner, entries: &[crate::events::EventRecord]) -> Result<Vec<String>> {
    let mut admitted: BTreeMap<&str, &crate::events::EventRecord> = BTreeMap::new();
    let mut finished: BTreeSet<&str> = BTreeSet::new();
    for e in entries {
        match &e.event {
            Event::JobAdmitted { job_id, .. } => {
                admitted.insert(job_id, e);
            }
            Event::JobFinished { job_id, .. } => {
                finished.insert(job_id);
            }
            _ => {}
        }
    }
    let mut recovered = Vec::new();
    for (id, entry) in admitted {
        if finished.contains(id) || inner.domain.state.get::<JobRecord>(JOBS, id)?.is_some() {
            continue;
        }
        let Event::JobAdmitted {
            operator,
            grant,
            module_sha256,
            params,
            source_sha256,
            ..
        } = &entry.event
        else {
            continue;
        };
        let destroyed = destroy_outputs(inner, id)?;
        if !destroyed.is_empty() {
            tracing::warn!(
                job = id,
                outputs = destroyed.len(),
                "outputs of an interrupted job destroyed"
            );
        }
        inner.events.record(Event::JobFinished {
            job_id: id.to_string(),
            outcome: JobOutcome::Failed(format!("{INTERRUPTED}; outputs destroyed: {}", destroyed.len())),
        })?;
        let now = inland_files::now_ms();
        let record = JobRecord {
            id: id.to_string(),
            operator: operator.clone(),
            grant: grant.clone(),
            module_sha256: module_sha256.clone(),
            source_sha256: source_sha256.clone(),
            params: params.clone(),
            status: JobStatus::Failed,
            error: Some(JobError::Failed {
                message: INTERRUPTED.into(),
            }),
            started_at_ms: entry.at_ms,
            finished_at_ms: now,
            run_ms: 0,
            run_us: 0,
            queries: Vec::new(),
            // The outputs destroyed, by id: nothing of them is left to show.
            outputs: destroyed,
            log: Vec::new(),
            log_dropped: 0,
            label: None,
            sealed_texts: None,
        };
        inner.domain.state.insert_new(JOBS, id, &record, "job")?;
        tracing::warn!(job = id, "a job interrupted by a stop was recorded as failed");
        recovered.push(id.to_string());
    }
    Ok(recovered)
}

/// Destroys what a job left in quarantine: its output records are scrubbed
/// and marked destroyed, and each sealed file no other live output of the
/// grant shares is deleted. Returns the outputs' ids.
fn destroy_outputs(inner: &Inner, job: &str) -> Result<Vec<String>> {
    let all: Vec<OutputRecord> = inner.domain.state.list(OUTPUTS)?;
    let mut ids = Vec::new();
    // An output already released or exported stays: someone decided on it.
    for mut o in all
        .iter()
        .filter(|o| o.job_id == job && !o.destroyed && o.release.is_none() && o.exports.is_empty())
        .cloned()
    {
        // Files are content-addressed per grant: keep one any live output
        // of the grant holds, as its table or as its released version.
        let shared = all.iter().any(|other| {
            other.id != o.id
                && other.grant == o.grant
                && !other.destroyed
                && (other.sha256 == o.sha256 || other.release.as_ref().is_some_and(|r| r.sha256 == o.sha256))
        });
        if !shared {
            let path = inner
                .domain
                .dir("quarantine")
                .join(&o.grant)
                .join(format!("{}.sealed", o.sha256));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        o.scrub();
        inner.domain.state.replace(OUTPUTS, &o.id, &o)?;
        ids.push(o.id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Domain, Runtime};

    fn output(id: &str, job: &str, sha256: &str) -> OutputRecord {
        let value = serde_json::json!({
            "id": id, "name": "result", "job_id": job, "operator": "org", "grant": "g-1",
            "module_sha256": "00", "sha256": sha256, "rows": 1, "bytes": 10,
            "columns": [{ "name": "a", "data_type": "Int64", "nullable": false }],
            "datasets": ["d"], "queries": [], "created_at_ms": 0
        });
        serde_json::from_value(value).unwrap_or_else(|e| panic!("output record: {e}"))
    }

    /// What an interrupted job left in quarantine is destroyed: its records
    /// scrubbed and marked, its sealed files deleted unless another job's
    /// live output shares one (files are content-addressed per grant).
    #[test]
    fn an_interrupted_jobs_outputs_are_destroyed_and_shared_files_kept() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Internal(e.to_string()))?;
        let root = dir.path().join("domain");
        Domain::init(&root, "t")?;
        let rt = Runtime::open(&root)?;
        let inner = rt.inner_for_tests();
        let quarantine = inner.domain.dir("quarantine").join("g-1");
        std::fs::create_dir_all(&quarantine).map_err(|e| Error::io(&quarantine, e))?;
        for sha in ["aaa", "bbb"] {
            let path = quarantine.join(format!("{sha}.sealed"));
            std::fs::write(&path, b"sealed").map_err(|e| Error::io(&path, e))?;
        }
        for o in [
            output("j1/1", "j1", "aaa"),
            output("j1/2", "j1", "bbb"),
            output("j2/1", "j2", "bbb"),
        ] {
            inner.domain.state.insert_new(OUTPUTS, &o.id, &o, "output")?;
        }
        assert_eq!(destroy_outputs(&inner, "j1")?, ["j1/1", "j1/2"]);
        assert!(!quarantine.join("aaa.sealed").exists(), "its own file is deleted");
        assert!(
            quarantine.join("bbb.sealed").exists(),
            "a file another job's output shares is kept"
        );
        let gone: OutputRecord = inner
            .domain
            .state
            .get(OUTPUTS, "j1/2")?
            .ok_or(Error::Internal("gone".into()))?;
        assert!(gone.destroyed && gone.columns.is_empty() && gone.name.is_empty());
        let kept: OutputRecord = inner
            .domain
            .state
            .get(OUTPUTS, "j2/1")?
            .ok_or(Error::Internal("gone".into()))?;
        assert!(!kept.destroyed);
        // Nothing is left to destroy the second time.
        assert!(destroy_outputs(&inner, "j1")?.is_empty());
        Ok(())
    }
}
