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
use crate::governance::operators::{Operator, OperatorStatus};
use crate::jobs::run::{JobRecord, JobStatus};
use crate::recovery::Recovery;
use crate::release::output::OutputRecord;
use crate::state::{COMPONENTS, DATASETS, GRANTS, JOBS, OPERATORS, OUTPUTS, RECOVERED, TOKENS};
use inland_sandbox::JobError;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What the job's record and `job_finished` say of an interrupted job.
pub(crate) const INTERRUPTED: &str = "interrupted: the domain stopped while the job ran; recovered at start-up";

/// What a job's record and `job_finished` say of a job whose run failed
/// for a reason of the domain's, after its admission: one fixed text.
pub(crate) const DOMAIN_FAILED: &str = "failed: the domain could not finish the job; its outputs were destroyed";

/// The key of the mark in [`RECOVERED`]: entries before it are reconciled.
const THROUGH: &str = "through";

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
        if made::made(state, &tag, &seen, e)? != Some(false) {
            continue;
        }
        if finish_restriction(inner, e)? {
            done.finished.push(e.seq);
            continue;
        }
        inner.events.record(Event::NotMade {
            entry: e.seq,
            reason: crate::order::STOPPED.into(),
        })?;
        done.rolled_back.push(e.seq);
    }
    // A tail cut in this open may have taken the event of a change a domain
    // from before the ordering rule made first: re-announce it from the state.
    if entries
        .iter()
        .any(|e| e.seq >= mark && matches!(e.event, Event::LedgerRepaired { .. }))
    {
        done.reappended = reappend_cut(inner, &entries)?;
    }
    if !done.rolled_back.is_empty() || !done.reappended.is_empty() {
        entries = ledger.entries()?;
    }
    done.interrupted = interrupted_jobs(inner, &entries, mark)?;
    done.terminations = unfinished_terminations(inner, &entries, mark)?;
    crate::jobs::budget::reconcile(state, &entries)?;
    done.orphans = orphan_files(inner, &entries)?;
    state.upsert(RECOVERED, THROUGH, &ledger.len())?;
    if !done.is_empty() {
        tracing::warn!(
            rolled_back = done.rolled_back.len(),
            finished = done.finished.len(),
            interrupted = done.interrupted.len(),
            terminations = done.terminations.len(),
            orphan_files = done.orphans.len(),
            "start-up finished what a stop left half done"
        );
    }
    Ok(done)
}

/// Re-announces the records of the kinds a pre-rule command wrote before its
/// event (datasets, operators, grants, reviewers, tokens) that no event
/// announces, each followed by `reappended`.
fn reappend_cut(inner: &Inner, entries: &[EventRecord]) -> Result<Vec<u64>> {
    let state = &inner.domain.state;
    let seen = Announcements::of(entries);
    let mut announced: BTreeSet<(&str, &str)> = BTreeSet::new();
    for e in entries.iter().filter(|e| !seen.rolled_back.contains(&e.seq)) {
        let key = match &e.event {
            Event::DatasetRegistered { name, .. } | Event::DatasetProposed { name, .. } => ("dataset", name),
            Event::OperatorRegistered { name, .. } => ("operator", name),
            Event::GrantIssued { grant, .. } => ("grant", grant),
            Event::ReviewerAdded { name, .. } => ("reviewer", name),
            Event::TokenIssued { id, .. } => ("token", id),
            _ => continue,
        };
        announced.insert((key.0, key.1.as_str()));
    }
    let mut missing = Vec::new();
    for d in state.list::<DatasetRecord>(DATASETS)? {
        if !announced.contains(&("dataset", d.name.as_str())) {
            missing.push(match d.owner {
                Some(operator) => Event::DatasetProposed {
                    name: d.name,
                    operator,
                    sha256: d.sha256,
                    rows: d.rows,
                },
                None => Event::DatasetRegistered {
                    name: d.name,
                    sha256: d.sha256,
                    rows: d.rows,
                },
            });
        }
    }
    for o in state.list::<Operator>(OPERATORS)? {
        if !announced.contains(&("operator", o.name.as_str())) {
            missing.push(Event::OperatorRegistered {
                kind: format!("{:?}", o.kind).to_lowercase(),
                qualifications: o.qualifications.iter().map(|q| q.evidence_sha256.clone()).collect(),
                name: o.name,
            });
        }
    }
    for g in state.list::<Grant>(GRANTS)? {
        if !announced.contains(&("grant", g.id.as_str())) {
            missing.push(Event::GrantIssued {
                from: g.from.to_string(),
                until: g.until.to_string(),
                grant: g.id,
                operator: g.operator,
                datasets: g.datasets,
                purpose: g.purpose,
                quota: g.quota,
                approved_components_only: g.approved_components_only,
                privacy: g.privacy,
            });
        }
    }
    for r in state.list::<crate::release::review::Reviewer>(crate::state::REVIEWERS)? {
        if !announced.contains(&("reviewer", r.name.as_str())) {
            missing.push(Event::ReviewerAdded {
                name: r.name,
                operator: r.operator,
            });
        }
    }
    for t in state.list::<crate::access::TokenRecord>(TOKENS)? {
        if !announced.contains(&("token", t.id.as_str())) {
            missing.push(Event::TokenIssued {
                role: t.role.to_string(),
                id: t.id,
                name: t.name,
                operator: t.operator,
                expires_at_ms: t.expires_at_ms,
                by: None,
            });
        }
    }
    let mut reappended = Vec::new();
    for event in missing {
        let entry = inner.events.record(event)?;
        inner.events.record(Event::Reappended { entry })?;
        reappended.push(entry);
    }
    Ok(reappended)
}

/// Makes a change that only takes something away (a token revoked, a
/// component approval withdrawn, an operator suspended, a grant marked
/// terminated) whose event is in the ledger and whose change is not:
/// returns whether `e` was such a change. The event is its evidence.
fn finish_restriction(inner: &Inner, e: &EventRecord) -> Result<bool> {
    let state = &inner.domain.state;
    match &e.event {
        Event::TokenRevoked { id } => {
            let Some(mut t) = state.get::<crate::access::TokenRecord>(TOKENS, id)? else {
                return Ok(false);
            };
            t.revoked_at_ms = Some(e.at_ms);
            state.replace(TOKENS, id, &t)?;
        }
        Event::ComponentApprovalRevoked { sha256, .. } => {
            state.remove(COMPONENTS, sha256)?;
        }
        Event::OperatorStatusChanged { name, status, reason } if status == OperatorStatus::Suspended.as_str() => {
            let Some(mut op) = state.get::<Operator>(OPERATORS, name)? else {
                return Ok(false);
            };
            op.status = OperatorStatus::Suspended;
            op.status_reason = reason.clone();
            state.replace(OPERATORS, name, &op)?;
        }
        Event::GrantTerminating { grant, .. } => {
            if state.get::<Grant>(GRANTS, grant)?.is_none() {
                return Ok(false);
            }
            crate::governance::operators::mark_terminated(&inner.domain, grant)?;
        }
        _ => return Ok(false),
    }
    tracing::warn!(
        entry = e.seq,
        "a restriction announced before a stop was made at start-up"
    );
    Ok(true)
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
        close(inner, &admitted, INTERRUPTED, true)?;
        tracing::warn!(job = %job_id, "a job interrupted by a stop was recorded as failed");
        recovered.push(job_id.clone());
    }
    Ok(recovered)
}

/// Closes an admitted job that has no record and will not run on: its
/// outputs destroyed, `job_finished` appended and then the record stored,
/// saying `why`. Used at start-up (`delete_files`: nothing else runs) and
/// when a job's run fails after admission for a reason of the domain's
/// (its sealed files are then left to the next start's sweep, since another
/// job of the grant may be sealing the same content-addressed file now).
pub(crate) fn close(inner: &Inner, job: &Admitted<'_>, why: &str, delete_files: bool) -> Result<()> {
    let destroyed = destroy_outputs(inner, job.id, job.grant, delete_files)?;
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
/// and marked destroyed; a record exists only once its `output_emitted`
/// does) and, with `delete_files`, each sealed file no other live output of
/// the grant holds and the job's sealed facts and query errors. Returns the
/// outputs' ids.
fn destroy_outputs(inner: &Inner, job: &str, grant: &str, delete_files: bool) -> Result<Vec<String>> {
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
        if delete_files && !shared {
            remove_if_there(&dir.join(format!("{}.sealed", o.sha256)))?;
        }
        o.scrub();
        inner.domain.state.replace(OUTPUTS, &o.id, &o)?;
        ids.push(o.id);
    }
    if delete_files {
        for name in [
            crate::release::gating::facts_name(job),
            format!("{job}.query-errors.sealed"),
        ] {
            remove_if_there(&dir.join(name))?;
        }
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

/// Deletes files written ahead of an event that never came (or was rolled
/// back): dataset files and temporaries, grant keys, sealed tables and
/// half-written quarantine temporaries. A file the ledger says was
/// committed is never deleted, even if the state has lost its record: the
/// state check reports that difference instead.
fn orphan_files(inner: &Inner, entries: &[EventRecord]) -> Result<Vec<String>> {
    let state = &inner.domain.state;
    let mut deleted = Vec::new();
    let effective = Announcements::of(entries);
    let digest = inner.text_digest();
    let (mut datasets_announced, mut grants_announced, mut contents_announced) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for e in entries.iter().filter(|e| !effective.rolled_back.contains(&e.seq)) {
        match &e.event {
            Event::DatasetRegistered { name, .. } | Event::DatasetProposed { name, .. } => {
                datasets_announced.insert(format!("datasets/{name}.parquet"));
            }
            Event::GrantIssued { grant, .. } => {
                grants_announced.insert(grant.as_str());
            }
            Event::OutputEmitted { content_digest, .. } => {
                contents_announced.insert(content_digest.as_str());
            }
            _ => {}
        }
    }

    let named: BTreeSet<String> = state
        .list::<DatasetRecord>(DATASETS)?
        .iter()
        .map(|d| d.relative_path())
        .collect();
    let datasets = inner.domain.dir("datasets");
    for name in file_names(&datasets)? {
        let relative = format!("datasets/{name}");
        let unnamed =
            name.ends_with(".parquet") && !named.contains(&relative) && !datasets_announced.contains(&relative);
        if (name.starts_with(".incoming-") || unnamed) && remove_if_there(&datasets.join(&name))? {
            deleted.push(relative);
        }
    }

    // A registration's working directory (sort runs, uniqueness hashes)
    // that a stop left behind, as with its `.incoming-` file.
    let spill = inner.domain.dir("spill");
    for name in file_names(&spill)? {
        if name.starts_with(".registration-") {
            let path = spill.join(&name);
            match std::fs::remove_dir_all(&path) {
                Ok(()) => deleted.push(format!("spill/{name}")),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
    }

    let grants: BTreeSet<String> = state.list::<Grant>(GRANTS)?.into_iter().map(|g| g.id).collect();
    for id in inner.keys.grant_key_ids()? {
        if !grants.contains(&id) && !grants_announced.contains(id.as_str()) && inner.keys.destroy_grant_key(&id)? {
            deleted.push(format!("keys/grants/{id}.key"));
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
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            // A table some live output holds, or whose emission the ledger
            // recorded, stays.
            let unheld = table.is_some_and(|sha| {
                !files.is_some_and(|f| f.contains(&name)) && !contents_announced.contains(digest.of(sha).as_str())
            });
            if (name.starts_with(".incoming-") || unheld) && remove_if_there(&dir.join(&name))? {
                deleted.push(format!("quarantine/{grant}/{name}"));
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

    /// What an unfinished job left in quarantine is destroyed: its outputs
    /// scrubbed and marked, their sealed files deleted unless another job's
    /// live output shares one (files are content-addressed per grant), and
    /// the job's facts file with them.
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
        assert_eq!(destroy_outputs(&inner, "j1", "g-1", true)?, ["j1/1", "j1/2", "j1/3"]);
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
        let kept: OutputRecord = inner
            .domain
            .state
            .get(OUTPUTS, "j2/1")?
            .ok_or(Error::Internal("gone".into()))?;
        assert!(!kept.destroyed);
        // Nothing is left to destroy the second time.
        assert!(destroy_outputs(&inner, "j1", "g-1", true)?.is_empty());
        Ok(())
    }
}
