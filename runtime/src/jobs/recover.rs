//! Start-up reconciliation (#24): what a stop (a crash, a kill) left half
//! done is finished or rolled back before the domain does anything else,
//! by the ordering rule of `crate::order`:
//!
//! - an announced change the state lacks is rolled back: `not_made`;
//! - a job admitted with no record was cut short: its outputs in quarantine
//!   and its partial files are destroyed, and it is recorded as interrupted
//!   (state and ledger), naming them;
//! - a termination begun and not finished is finished (a destroyed key
//!   cannot come back);
//! - privacy charges the state missed are adopted;
//! - files no record names (a dataset's Parquet, a grant key, a sealed
//!   table written ahead of the event that would have named it) are deleted.
//!
//! Nothing can be running: the state database is open in one process only.
//! Entries before the mark of the last clean start are not read again.

use crate::context::Inner;
use crate::error::{Error, Result};
use crate::events::{Event, EventRecord, JobOutcome};
use crate::evidence::made::{self, Announcements};
use crate::governance::catalog::DatasetRecord;
use crate::governance::operators::{Grant, GrantStatus};
use crate::jobs::run::{JobRecord, JobStatus};
use crate::release::output::OutputRecord;
use crate::state::{DATASETS, GRANTS, JOBS, OUTPUTS, RECOVERED};
use inland_sandbox::JobError;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What the job's record and `job_finished` say of an interrupted job.
pub(crate) const INTERRUPTED: &str = "interrupted: the domain stopped while the job ran; recovered at start-up";

/// The key of the mark in [`RECOVERED`]: entries before it are reconciled.
const THROUGH: &str = "through";

/// What one start found and finished, for the log.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// Entries whose change was rolled back.
    pub(crate) rolled_back: usize,
    /// Jobs recorded as interrupted.
    pub(crate) interrupted: Vec<String>,
    /// Terminations finished.
    pub(crate) terminations: Vec<String>,
    /// Files no record named, deleted.
    pub(crate) orphans: usize,
}

/// Runs every step above; reads the ledger once (twice if it appended).
pub(crate) fn at_start(inner: &Arc<Inner>) -> Result<Recovery> {
    let Some(ledger) = &inner.ledger else {
        return Ok(Recovery::default());
    };
    let state = &inner.domain.state;
    let mark = state.get::<u64>(RECOVERED, THROUGH)?.unwrap_or(0);
    let mut entries = ledger.entries()?;
    let mut done = Recovery::default();

    let seen = Announcements::of(&entries);
    let tag = || inner.keys.master_tag();
    for e in entries.iter().filter(|e| e.seq >= mark) {
        if made::made(state, &tag, &seen, e)? == Some(false) {
            inner.events.record(Event::NotMade {
                entry: e.seq,
                reason: crate::order::STOPPED.into(),
            })?;
            done.rolled_back += 1;
        }
    }
    if done.rolled_back > 0 {
        entries = ledger.entries()?;
    }
    done.interrupted = interrupted_jobs(inner, &entries, mark)?;
    done.terminations = unfinished_terminations(inner, &entries, mark)?;
    crate::jobs::budget::reconcile(state, &entries)?;
    done.orphans = orphan_files(inner)?;
    state.upsert(RECOVERED, THROUGH, &ledger.len())?;
    if done.rolled_back + done.interrupted.len() + done.terminations.len() + done.orphans > 0 {
        tracing::warn!(
            rolled_back = done.rolled_back,
            interrupted = done.interrupted.len(),
            terminations = done.terminations.len(),
            orphan_files = done.orphans,
            "start-up finished what a stop left half done"
        );
    }
    Ok(done)
}

/// What a job's admission said, to record it without a run.
pub(crate) struct Admitted<'a> {
    pub(crate) id: &'a str,
    pub(crate) operator: &'a str,
    pub(crate) grant: &'a str,
    pub(crate) module_sha256: &'a str,
    pub(crate) params: &'a [(String, String)],
    pub(crate) source_sha256: Option<&'a String>,
    pub(crate) started_at_ms: u64,
}

/// Records every admitted job with no record (after the mark) as interrupted.
fn interrupted_jobs(inner: &Inner, entries: &[EventRecord], mark: u64) -> Result<Vec<String>> {
    let mut recovered = Vec::new();
    for e in entries.iter().filter(|e| e.seq >= mark) {
        let Event::JobAdmitted {
            job_id,
            operator,
            grant,
            module_sha256,
            params,
            source_sha256,
            ..
        } = &e.event
        else {
            continue;
        };
        if made::job_recorded(&inner.domain.state, job_id)? {
            continue;
        }
        let admitted = Admitted {
            id: job_id,
            operator,
            grant,
            module_sha256,
            params,
            source_sha256: source_sha256.as_ref(),
            started_at_ms: e.at_ms,
        };
        close(inner, &admitted, INTERRUPTED, entries)?;
        tracing::warn!(job = %job_id, "a job interrupted by a stop was recorded as failed");
        recovered.push(job_id.clone());
    }
    Ok(recovered)
}

/// Closes an admitted job that has no record and will not run on: its
/// outputs and partial files destroyed, `job_finished` appended and then
/// the record stored, saying `why`. Used at start-up and when a job's own
/// run fails after admission for a reason of the domain's.
pub(crate) fn close(inner: &Inner, job: &Admitted<'_>, why: &str, entries: &[EventRecord]) -> Result<()> {
    let announced: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::OutputEmitted { job_id, output_id, .. } if job_id == job.id => Some(output_id.as_str()),
            _ => None,
        })
        .collect();
    let destroyed = destroy_outputs(inner, job.id, job.grant, &announced)?;
    if !destroyed.is_empty() {
        tracing::warn!(
            job = job.id,
            outputs = destroyed.len(),
            "outputs of an unfinished job destroyed"
        );
    }
    let record = JobRecord {
        id: job.id.to_string(),
        operator: job.operator.to_string(),
        grant: job.grant.to_string(),
        module_sha256: job.module_sha256.to_string(),
        source_sha256: job.source_sha256.cloned(),
        params: job.params.to_vec(),
        status: JobStatus::Failed,
        error: Some(JobError::Failed { message: why.into() }),
        started_at_ms: job.started_at_ms,
        finished_at_ms: inland_files::now_ms(),
        run_ms: 0,
        run_us: 0,
        queries: Vec::new(),
        // The outputs destroyed, by id: nothing of them is left to show.
        outputs: destroyed.clone(),
        log: Vec::new(),
        log_dropped: 0,
        label: None,
        sealed_texts: None,
    };
    let finished = Event::JobFinished {
        job_id: job.id.to_string(),
        outcome: JobOutcome::Failed(format!("{why}; outputs destroyed: {}", destroyed.len())),
    };
    let state = &inner.domain.state;
    crate::order::announce(state, inner.events.as_ref(), finished, || {
        state.insert_new(JOBS, job.id, &record, "job")
    })
}

/// Destroys what a job left in quarantine: its outputs' records (scrubbed
/// and marked destroyed if the ledger announced them, removed if it never
/// did), each sealed file no other live output of the grant holds, and the
/// job's sealed facts and query errors. Returns the announced outputs' ids.
fn destroy_outputs(inner: &Inner, job: &str, grant: &str, announced: &BTreeSet<&str>) -> Result<Vec<String>> {
    let all: Vec<OutputRecord> = inner.domain.state.list(OUTPUTS)?;
    let dir = inner.domain.dir("quarantine").join(grant);
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
            remove_if_there(&dir.join(format!("{}.sealed", o.sha256)))?;
        }
        if announced.contains(o.id.as_str()) {
            o.scrub();
            inner.domain.state.replace(OUTPUTS, &o.id, &o)?;
            ids.push(o.id);
        } else {
            // Never announced, so never seen by anyone: undone, not destroyed.
            inner.domain.state.remove(OUTPUTS, &o.id)?;
        }
    }
    for name in [
        crate::release::gating::facts_name(job),
        format!("{job}.query-errors.sealed"),
    ] {
        remove_if_there(&dir.join(name))?;
    }
    Ok(ids)
}

fn remove_if_there(path: &std::path::Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Finishes every termination begun (after the mark) and never closed.
fn unfinished_terminations(inner: &Arc<Inner>, entries: &[EventRecord], mark: u64) -> Result<Vec<String>> {
    let mut begun: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.seq >= mark) {
        match &e.event {
            Event::GrantTerminating { grant, reason, note } => {
                begun.insert(grant, (reason, note));
            }
            Event::GrantTerminated { grant, .. } => {
                begun.remove(grant.as_str());
            }
            _ => {}
        }
    }
    let mut finished = Vec::new();
    for (grant, (reason, note)) in begun {
        let terminated = inner
            .domain
            .state
            .get::<Grant>(GRANTS, grant)?
            .is_some_and(|g| g.status == GrantStatus::Terminated);
        if !terminated {
            continue; // rolled back above: the mark never reached the state
        }
        let destroyed = crate::jobs::terminate::destroy(inner, grant)?;
        inner.events.record(Event::GrantTerminated {
            grant: grant.to_string(),
            reason: reason.to_string(),
            note: format!("{note} (finished at start-up after a stop)"),
            outputs_destroyed: destroyed.outputs,
            files_deleted: destroyed.files,
            bytes_deleted: destroyed.bytes,
            key_destroyed: destroyed.key,
            jobs_stopped: Vec::new(),
            released: destroyed.released,
        })?;
        finished.push(grant.to_string());
    }
    Ok(finished)
}

/// Deletes files written ahead of the record that would have named them:
/// unnamed dataset files and temporaries, grant keys of no grant, sealed
/// tables no output holds and half-written quarantine temporaries.
fn orphan_files(inner: &Inner) -> Result<usize> {
    let state = &inner.domain.state;
    let mut deleted = 0;

    let named: BTreeSet<String> = state
        .list::<DatasetRecord>(DATASETS)?
        .iter()
        .map(|d| d.relative_path())
        .collect();
    let datasets = inner.domain.dir("datasets");
    for name in file_names(&datasets)? {
        let relative = format!("datasets/{name}");
        if name.starts_with(".incoming-") || (name.ends_with(".parquet") && !named.contains(&relative)) {
            deleted += usize::from(remove_if_there(&datasets.join(&name))?);
        }
    }

    let grants: BTreeSet<String> = state.list::<Grant>(GRANTS)?.into_iter().map(|g| g.id).collect();
    for id in inner.keys.grant_key_ids()? {
        if !grants.contains(&id) {
            deleted += usize::from(inner.keys.destroy_grant_key(&id)?);
        }
    }

    let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for o in state
        .list::<OutputRecord>(OUTPUTS)?
        .into_iter()
        .filter(|o| !o.destroyed)
    {
        let files = held.entry(o.grant.clone()).or_default();
        files.insert(format!("{}.sealed", o.sha256));
        if let Some(r) = &o.release {
            files.insert(format!("{}.sealed", r.sha256));
        }
    }
    let quarantine = inner.domain.dir("quarantine");
    for grant in file_names(&quarantine)? {
        let dir = quarantine.join(&grant);
        if !dir.is_dir() {
            continue;
        }
        let files = held.get(&grant);
        for name in file_names(&dir)? {
            // A sealed table is named by its 64-digit content hash; facts and
            // query errors are named by their job and stay while it is recorded.
            let table = name
                .strip_suffix(".sealed")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            let unheld = table && !files.is_some_and(|f| f.contains(&name));
            if name.starts_with(".incoming-") || unheld {
                deleted += usize::from(remove_if_there(&dir.join(&name))?);
            }
        }
    }
    Ok(deleted)
}

/// The names of the entries of a directory (none if it does not exist).
fn file_names(dir: &std::path::Path) -> Result<Vec<String>> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut names = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
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

    /// What an unfinished job left in quarantine is destroyed: announced
    /// outputs scrubbed and marked, unannounced ones removed, their sealed
    /// files deleted unless another job's live output shares one (files are
    /// content-addressed per grant), and the job's facts file with them.
    #[test]
    fn an_unfinished_jobs_outputs_are_destroyed_and_shared_files_kept() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Internal(e.to_string()))?;
        let root = dir.path().join("domain");
        Domain::init(&root, "t")?;
        let rt = Runtime::open(&root)?;
        let inner = rt.inner_for_tests();
        let quarantine = inner.domain.dir("quarantine").join("g-1");
        std::fs::create_dir_all(&quarantine).map_err(|e| Error::io(&quarantine, e))?;
        for name in ["aaa.sealed", "bbb.sealed", "facts-j1.sealed"] {
            let path = quarantine.join(name);
            std::fs::write(&path, b"sealed").map_err(|e| Error::io(&path, e))?;
        }
        for o in [
            output("j1/1", "j1", "aaa"),
            output("j1/2", "j1", "bbb"),
            output("j1/3", "j1", "bbb"),
            output("j2/1", "j2", "bbb"),
        ] {
            inner.domain.state.insert_new(OUTPUTS, &o.id, &o, "output")?;
        }
        let announced: BTreeSet<&str> = ["j1/1", "j1/2"].into();
        assert_eq!(destroy_outputs(&inner, "j1", "g-1", &announced)?, ["j1/1", "j1/2"]);
        assert!(!quarantine.join("aaa.sealed").exists(), "its own file is deleted");
        assert!(!quarantine.join("facts-j1.sealed").exists(), "its facts are deleted");
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
        assert!(
            inner.domain.state.get::<OutputRecord>(OUTPUTS, "j1/3")?.is_none(),
            "an output never announced is removed"
        );
        let kept: OutputRecord = inner
            .domain
            .state
            .get(OUTPUTS, "j2/1")?
            .ok_or(Error::Internal("gone".into()))?;
        assert!(!kept.destroyed);
        // Nothing is left to destroy the second time.
        assert!(destroy_outputs(&inner, "j1", "g-1", &announced)?.is_empty());
        Ok(())
    }
}
