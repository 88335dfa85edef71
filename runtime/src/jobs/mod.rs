//! Jobs: admission (operator, grant, term, component), the run in the
//! sandbox with the query side the domain hands it, what is kept
//! afterwards, and stopping every job of a grant when it ends (clause 8.6).

pub(crate) mod budget;
mod queries;
pub(crate) mod quota;
pub(crate) mod recover;
pub(crate) mod run;
pub(crate) mod sources;
pub mod sql_job;
pub(crate) mod terminate;
mod texts;

pub use run::{JobRecord, JobReport, JobRequest, JobStatus};

use crate::context::Inner;
use crate::date::Date;
use crate::error::{Error, Result};
use crate::events::{Event, JobOutcome};
use crate::governance::catalog::{self, DatasetRecord, DatasetStatus};
use crate::governance::components;
use crate::governance::operators::{self as governance, GrantStatus, TerminationReason};
use crate::governance::policy_store;
use crate::release::Reviews;
use crate::release::gating::{self, GateContext};
use crate::release::output::OutputOrigin;
use crate::state::JOBS;
use inland_query::{DatasetSource, QueryScope, visible_columns};
use inland_sandbox::{EPOCH_TICK, JobError, JobSetup};
use queries::JobQueries;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the dp mode lets a job's aggregates over `dataset` use, for its listing.
fn dp_terms(scope: &QueryScope, dataset: &str) -> String {
    let mut terms = Vec::new();
    let rows = if scope.unique_entities.contains(dataset) {
        Some(1)
    } else {
        scope.max_rows_per_entity.get(dataset).copied()
    };
    if let Some(m) = rows {
        terms.push(format!("at most {m} row(s) per entity count"));
    }
    for ((d, c), [low, high]) in &scope.dp_bounds {
        if d == dataset {
            terms.push(format!("sum/avg of `{c}` clamped to [{low}, {high}]"));
        }
    }
    for ((d, c), values) in &scope.public_values {
        if d == dataset {
            terms.push(format!(
                "`{c}` has {} published values (every group released)",
                values.len()
            ));
        }
    }
    if terms.is_empty() {
        return String::new();
    }
    format!(" [dp: {}]", terms.join("; "))
}

/// Jobs: admission, runs in the sandbox, their records, and stopping them when a grant ends (clause 8.6).
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

impl Jobs {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Jobs { inner }
    }

    /// Admits and runs a job. A refusal or a failure is a normal outcome,
    /// reported in the record; `Err` means the domain itself failed.
    pub async fn run(&self, request: JobRequest) -> Result<JobReport> {
        self.run_with_id(Jobs::new_id(), request).await
    }

    /// Why a grant may run no more jobs now (its quota is spent), if so:
    /// asked before a job is queued, without counting it.
    pub fn quota_spent(&self, grant: &str) -> Result<Option<String>> {
        let grant = governance::grant(&self.inner.domain, grant)?;
        quota::spent(&self.inner.domain.state, &grant, Date::today())
    }

    /// The keys a job under `grant` masks with and counts entities by.
    /// Secret: for planning queries exactly as a job's are planned, inside
    /// the domain (benchmarks, tests); never shown to anyone.
    pub fn policy_keys(&self, grant: &str) -> Result<inland_query::PolicyKeys> {
        Ok(inland_query::PolicyKeys {
            pseudonym: self.inner.keys.pseudonym_key(grant)?,
            entity: self.inner.keys.entity_key()?,
        })
    }

    /// A `dp` grant's privacy budget, spent and left (`None` for an exact grant).
    pub fn privacy_budget(&self, grant: &str) -> Result<Option<crate::privacy::BudgetView>> {
        let grant = governance::grant(&self.inner.domain, grant)?;
        match grant.privacy.budget() {
            Some(b) => Ok(Some(budget::view(&self.inner.domain.state, &grant, b)?)),
            None => Ok(None),
        }
    }

    /// Checks a component before it is queued: a component (not a core
    /// module) of the `inland:job` world whose imports are all allowed. This
    /// depends on the component alone, never on data, so the submitter may be
    /// told why; nothing is recorded, and the compiled component is kept for
    /// the run.
    pub fn check_component(&self, wasm: &[u8]) -> std::result::Result<(), JobError> {
        self.inner.sandbox()?.prepare(wasm).map(|_| ())
    }

    /// Stores a source archive submitted by `by` of `organization`; a job of
    /// that organization may then name it by hash.
    pub fn store_source(&self, organization: &str, by: &str, archive: &[u8]) -> Result<sources::SourceRecord> {
        let record = sources::store(
            &self.inner.domain,
            self.inner.events.as_ref(),
            organization,
            by,
            archive,
        )?;
        self.inner.checkpoint()?;
        Ok(record)
    }

    /// Why `organization` may not name source archive `sha256` for a job, if
    /// it may not (not a hash, not stored, or another organization's).
    pub fn source_refusal(&self, organization: &str, sha256: &str) -> Result<Option<String>> {
        sources::refusal(&self.inner.domain, organization, sha256)
    }

    /// A stored source archive: its record and bytes.
    pub fn source(&self, sha256: &str) -> Result<(sources::SourceRecord, Vec<u8>)> {
        let record = sources::record(&self.inner.domain, sha256)?
            .ok_or_else(|| Error::NotFound(format!("source archive {sha256}")))?;
        Ok((record, sources::read(&self.inner.domain, sha256)?))
    }

    /// How many components this domain compiled since it was opened (not
    /// loaded from its compile cache): for metrics and tests.
    pub fn components_compiled(&self) -> u64 {
        self.inner.sandbox.get().map_or(0, |s| s.compiles())
    }

    /// A fresh job id (time-ordered), for callers that answer before the job ends.
    pub fn new_id() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// [`Jobs::run`] under an id from [`Jobs::new_id`], so a server can hand
    /// the id out at submission and the job's record appears under it later.
    pub async fn run_with_id(&self, id: String, request: JobRequest) -> Result<JobReport> {
        let inner = &self.inner;
        let started_at_ms = inland_files::now_ms();
        let span = tracing::info_span!("job", id = %id);
        let _enter = span.enter();

        // Identity, grant and term first; then the module itself.
        let admitted = governance::admit(&inner.domain, &request.operator, &request.grant, Date::today())
            .map_err(|reason| JobError::NotAuthorized { reason })
            .and_then(|grant| {
                let sandbox = inner.sandbox()?;
                sandbox.prepare(&request.wasm).map(|(sha, pre)| (grant, sha, pre))
            });
        let (grant, module_sha256, pre) = match admitted {
            Ok(a) => a,
            Err(e) => return self.refuse(id, started_at_ms, request, e),
        };
        if let Some(sha) = &request.source_sha256
            && let Some(reason) = sources::refusal(&inner.domain, &request.operator, sha)?
        {
            return self.refuse(id, started_at_ms, request, JobError::NotAuthorized { reason });
        }
        if grant.approved_components_only {
            // The SQL job runs any SQL: what is approved is the file's statements.
            let subject = match sql_job::fingerprint(&request.params) {
                Some(statements) if module_sha256 == sql_job::component_sha256() => {
                    Some(("SQL file (statements)", statements))
                }
                _ => None,
            }
            .unwrap_or(("component", module_sha256.clone()));
            if components::approval(&inner.domain, &subject.1)?.is_none() {
                let reason = format!(
                    "grant `{}` runs approved components only, and the {} {} is not approved: \
                     ask an admin or a reviewer to approve it",
                    grant.id, subject.0, subject.1
                );
                return self.refuse(id, started_at_ms, request, JobError::NotAuthorized { reason });
            }
        }

        let _slot = inner
            .slots
            .acquire()
            .await
            .map_err(|_| Error::Internal("job slots closed".into()))?;
        // Only the grant's datasets exist for the job: in listings, queries and errors.
        // Under a policy, only those it makes readable, with only the columns it lets through.
        let in_force = policy_store::load_current(&inner.domain)?;
        if !grant.privacy.is_exact() && in_force.is_none() {
            // Without a policy nothing is protected, so nothing would get noise.
            let reason = format!(
                "grant `{}` is in the dp mode, and its jobs run only under a domain policy: none is in force",
                grant.id
            );
            return self.refuse(id, started_at_ms, request, JobError::NotAuthorized { reason });
        }
        let datasets: Vec<DatasetRecord> = catalog::list(&inner.domain)?
            .into_iter()
            .filter(|d| grant.datasets.contains(&d.name) && d.status == DatasetStatus::Approved)
            .filter(|d| in_force.as_ref().is_none_or(|(_, p)| p.readable(&d.name)))
            .collect();
        let sources: Vec<DatasetSource> = datasets.iter().map(|d| d.source(&inner.domain)).collect();
        // Registered before the grant is checked again, so a termination either
        // sees this job and stops it, or this check sees the termination.
        let cancel = Arc::new(AtomicBool::new(false));
        let _running = RunningGuard::register(inner, &id, &grant.id, cancel.clone())?;
        if governance::grant(&inner.domain, &grant.id)?.status == GrantStatus::Terminated {
            drop(_running);
            let reason = format!("grant `{}` was terminated", grant.id);
            return self.refuse(id, started_at_ms, request, JobError::NotAuthorized { reason });
        }
        if let Err(reason) = quota::take(&inner.domain.state, &grant, Date::today())? {
            drop(_running);
            return self.refuse(id, started_at_ms, request, JobError::NotAuthorized { reason });
        }
        inner.events.record(Event::JobAdmitted {
            job_id: id.clone(),
            operator: request.operator.clone(),
            grant: grant.id.clone(),
            module_sha256: module_sha256.clone(),
            params: request.params.clone(),
            datasets: datasets.iter().map(|d| d.name.clone()).collect(),
            source_sha256: request.source_sha256.clone(),
        })?;
        inland_files::crash_point("job-admitted");
        let admitted_at_ms = inland_files::now_ms();
        let (job_operator, job_grant, job_module, job_params, job_source) = (
            request.operator.clone(),
            grant.id.clone(),
            module_sha256.clone(),
            request.params.clone(),
            request.source_sha256.clone(),
        );
        // Admitted and announced: whatever fails from here on closes the job
        // now (recorded as failed, its outputs destroyed), never leaving it
        // for the next start.
        let ran: Result<JobReport> = async {
            // The policy that chose the datasets above is the one the queries run under.
            let policy = in_force;
            let policy_ref = policy.as_ref().map(|(_, p)| p);
            let keys = inland_query::PolicyKeys {
                pseudonym: inner.keys.pseudonym_key(&grant.id)?,
                entity: inner.keys.entity_key()?,
            };
            let session = inner.engine.session(&sources, policy_ref.map(|p| (p, keys))).await?;
            let mut scope = QueryScope::under(policy_ref, sources.iter().map(|d| d.name.clone()))
                .with_unique_entities(policy_ref, &sources);
            let account = grant.privacy.budget().map(|budget| queries::Account {
                inner: inner.clone(),
                grant: grant.clone(),
                budget: budget.clone(),
            });
            if let Some(budget) = grant.privacy.budget() {
                scope.dp = Some(inland_query::DpScope {
                    rho_per_query: budget.query_rho,
                    // Keyed per grant, from a key never shown: which of an
                    // entity's rows count cannot be steered by the job.
                    row_key: hex::encode(Sha256::digest([b"inland dp rows".as_slice(), &keys.pseudonym].concat())),
                });
            }
            let listed: Vec<(DatasetSource, String)> = sources
                .into_iter()
                .zip(&datasets)
                .map(|(mut s, d)| {
                    if let Some(p) = policy_ref {
                        visible_columns(&s.name, &mut s.columns, p);
                    }
                    // A dp job is told what its noisy aggregates may use.
                    let description = match (&scope.dp, policy_ref) {
                        (Some(_), Some(_)) => format!("{}{}", d.description, dp_terms(&scope, &s.name)),
                        _ => d.description.clone(),
                    };
                    (s, description)
                })
                .collect();
            let queries = Arc::new(
                JobQueries::new(
                    id.clone(),
                    inner.engine.clone(),
                    session,
                    scope.clone(),
                    &listed,
                    inner.events.clone(),
                    inner.text_digest(),
                )
                .with_account(account),
            );
            // Admission prepared the component, so the sandbox is started.
            let sandbox = inner
                .sandbox
                .get()
                .ok_or_else(|| Error::Internal("the sandbox is not started".into()))?;
            let run = sandbox
                .run(
                    &pre,
                    JobSetup {
                        grant: grant.id.clone(),
                        params: request.params.clone(),
                        backend: queries.clone(),
                        cancel,
                        // In the dp mode, how long a query took over the data
                        // would be a measurement without noise.
                        frozen_clock: !grant.privacy.is_exact(),
                    },
                )
                .await;
            let run_us = run.run_us;
            let run_ms = run_us / 1000;
            let outcome = run.outcome;
            let log = run.log;
            // The sandbox dropped its handle with the store; this is the last one.
            let trail = Arc::into_inner(queries)
                .map(JobQueries::into_trail)
                .ok_or_else(|| Error::Internal("a job's queries outlived its run".into()))?;
            let collected = run.outputs;
            if !trail.sealed_errors.is_empty() {
                let key = inner.keys.grant_key(&grant.id)?;
                gating::store_query_errors(&inner.domain, &key, &grant.id, &id, &trail.sealed_errors)?;
            }

            let mut outputs = Vec::new();
            if outcome.is_ok() && !collected.is_empty() {
                let origin = OutputOrigin {
                    job_id: &id,
                    operator: &request.operator,
                    grant: &grant.id,
                    module_sha256: &module_sha256,
                    datasets: scope.datasets.iter().cloned().collect(),
                    label: trail.label.clone(),
                };
                let key = inner.keys.grant_key(&grant.id)?;
                let gate = GateContext::new(
                    &inner.domain,
                    policy.as_ref().map(|(_, p)| p),
                    &origin.datasets,
                    &grant.id,
                    None,
                )?;
                gating::store_facts(&inner.domain, &key, &grant.id, &id, &trail.facts)?;
                outputs = gating::quarantine(
                    &inner.domain,
                    inner.events.as_ref(),
                    &key,
                    collected,
                    &origin,
                    &gate,
                    &trail.facts,
                )?;
                for o in &outputs {
                    if let Some(report) = &o.gate {
                        inner.events.record(Event::OutputChecked {
                            output_id: o.id.clone(),
                            verdict: match report.verdict {
                                inland_gate::Verdict::Blocked => "blocked".into(),
                                inland_gate::Verdict::Review => "review".into(),
                            },
                            findings: report.findings().map(|c| format!("{} {}", c.check, c.status)).collect(),
                            traced_cells: None,
                            untraced_cells: None,
                        })?;
                    }
                }
            } else if !collected.is_empty() {
                tracing::info!(discarded = collected.len(), "outputs of a failed job were discarded");
            }

            let finished = Event::JobFinished {
                job_id: id.clone(),
                outcome: JobOutcome::of_run(&outcome, &inner.text_digest()),
            };
            let output_names = outputs.iter().map(|o| (o.id.clone(), o.name.clone())).collect();
            let record = JobRecord {
                id: id.clone(),
                operator: request.operator,
                grant: grant.id.clone(),
                module_sha256,
                source_sha256: request.source_sha256,
                params: request.params,
                status: if outcome.is_ok() {
                    JobStatus::Succeeded
                } else {
                    JobStatus::Failed
                },
                error: outcome.err(),
                started_at_ms,
                finished_at_ms: inland_files::now_ms(),
                run_ms,
                run_us,
                queries: trail.queries,
                outputs: outputs.iter().map(|o| o.id.clone()).collect(),
                log,
                log_dropped: run.log_dropped,
                label: trail.label.clone(),
                sealed_texts: None,
            };
            let stored = texts::seal_or_drop(inner, &record, output_names);
            let state = &inner.domain.state;
            crate::order::announce(state, inner.events.as_ref(), finished, || {
                state.insert_new(JOBS, &id, &stored, "job")
            })?;
            self.inner.checkpoint()?;
            // The log is a channel out of the domain too: the outcome as the
            // ledger has it, never the job's own text.
            match JobOutcome::of_run(&record.error.clone().map_or(Ok(()), Err), &self.inner.text_digest()) {
                JobOutcome::Succeeded => tracing::info!(outputs = outputs.len(), "job succeeded"),
                JobOutcome::Failed(why) => tracing::info!(outcome = %why, "job did not succeed"),
            }
            Ok(JobReport { job: record, outputs })
        }
        .await;
        if let Err(e) = &ran
            && !crate::evidence::made::job_recorded(&inner.domain.state, &id)?
        {
            // The kind of failure stays in the log: which one it was may
            // depend on the data, and the ledger leaves the domain.
            tracing::warn!(kind = crate::order::kind(e), "the domain failed while a job ran");
            let admitted = recover::Admitted {
                id: &id,
                operator: &job_operator,
                grant: &job_grant,
                module_sha256: &job_module,
                params: &job_params,
                source_sha256: job_source.as_ref(),
                started_at_ms: admitted_at_ms,
            };
            recover::close(inner, &admitted, recover::DOMAIN_FAILED, false)?;
        }
        ran
    }

    fn refuse(&self, id: String, started_at_ms: u64, request: JobRequest, e: JobError) -> Result<JobReport> {
        let inner = &self.inner;
        let module_sha256 = inland_files::sha256_hex(&request.wasm);
        let refused = Event::JobRefused {
            job_id: id.clone(),
            operator: request.operator.clone(),
            grant: request.grant.clone(),
            module_sha256: module_sha256.clone(),
            reason: e.to_string(),
        };
        let record = JobRecord {
            id: id.clone(),
            operator: request.operator,
            grant: request.grant,
            module_sha256,
            source_sha256: request.source_sha256,
            params: request.params,
            status: JobStatus::Refused,
            error: Some(e),
            started_at_ms,
            finished_at_ms: inland_files::now_ms(),
            run_ms: 0,
            run_us: 0,
            queries: Vec::new(),
            outputs: Vec::new(),
            log: Vec::new(),
            log_dropped: 0,
            label: None,
            sealed_texts: None,
        };
        let state = &inner.domain.state;
        crate::order::announce(state, inner.events.as_ref(), refused, || {
            state.insert_new(JOBS, &id, &record, "job")
        })?;
        self.inner.checkpoint()?;
        tracing::info!(error = ?record.error, "job refused");
        Ok(JobReport {
            job: record,
            outputs: Vec::new(),
        })
    }

    /// Every job record, oldest first.
    pub fn list(&self) -> Result<Vec<JobRecord>> {
        let stored: Vec<JobRecord> = self.inner.domain.state.list(JOBS)?;
        Ok(stored.into_iter().map(|r| texts::open(&self.inner, r)).collect())
    }

    /// Every job record as stored, its texts sealed (empty here): for views
    /// that show none of them, without opening every job's texts.
    pub fn list_stored(&self) -> Result<Vec<JobRecord>> {
        self.inner.domain.state.list(JOBS)
    }

    /// One job record as stored (see [`Jobs::list_stored`]), if there is one.
    pub fn find_stored(&self, id: &str) -> Result<Option<JobRecord>> {
        self.inner.domain.state.get(JOBS, id)
    }

    /// One job record and the names the job gave its outputs (output id,
    /// name), opened with the grant's key: for reviewers, inside the domain.
    pub fn get_with_output_names(&self, id: &str) -> Result<(JobRecord, Vec<(String, String)>)> {
        let stored: JobRecord = self
            .inner
            .domain
            .state
            .get(JOBS, id)?
            .ok_or_else(|| Error::NotFound(format!("job `{id}`")))?;
        Ok(texts::open_with_names(&self.inner, stored))
    }

    /// One job record.
    pub fn get(&self, id: &str) -> Result<JobRecord> {
        self.inner
            .domain
            .state
            .get(JOBS, id)?
            .map(|r| texts::open(&self.inner, r))
            .ok_or_else(|| Error::NotFound(format!("job `{id}`")))
    }

    /// Ids of the jobs running now, with their grants.
    pub fn running(&self) -> Vec<(String, String)> {
        self.inner
            .running
            .lock()
            .map(|r| r.iter().map(|(id, (grant, _))| (id.clone(), grant.clone())).collect())
            .unwrap_or_default()
    }

    /// Asks a running job to stop at its next epoch tick (it ends as failed,
    /// its outputs discarded); whether it was running.
    pub fn cancel(&self, id: &str) -> Result<bool> {
        Ok(match self.inner.running()?.get(id) {
            Some((_, cancel)) => {
                cancel.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        })
    }

    /// Terminates a grant (clause 8.6): new jobs are refused, running ones
    /// stopped, its data key destroyed and its files deleted; the destruction
    /// record goes to the evidence ledger and is returned.
    ///
    /// A termination cut short (the process stopped, a disk filled) is
    /// finished by terminating again: the grant stays terminated, and what
    /// is left of its key, files and outputs is destroyed then.
    pub async fn terminate_grant(&self, id: &str, reason: TerminationReason, note: &str) -> Result<Event> {
        let inner = &self.inner;
        let note = checked_note(note)?;
        let _one_at_a_time = inner.terminations.lock().await;
        let reason = format!("{reason:?}").to_lowercase();
        if governance::grant(&inner.domain, id)?.status == GrantStatus::Terminated {
            if !self.termination_unfinished(id)? {
                return Err(Error::Invalid(format!("grant `{id}` is already terminated")));
            }
        } else {
            // Announced and marked first: from here no job is admitted, and a
            // stop before the end is finished at the next start.
            let event = Event::GrantTerminating {
                grant: id.to_string(),
                reason: reason.clone(),
                note: note.to_string(),
            };
            let state = &inner.domain.state;
            crate::order::announce(state, inner.events.as_ref(), event, || {
                governance::mark_terminated(&inner.domain, id).map(|_| ())
            })?;
        }
        let mut jobs_stopped = Vec::new();
        loop {
            let still: Vec<String> = {
                let running = inner.running()?;
                running
                    .iter()
                    .filter(|(_, (g, _))| g == id)
                    .map(|(job, (_, cancel))| {
                        cancel.store(true, Ordering::Relaxed);
                        job.clone()
                    })
                    .collect()
            };
            if still.is_empty() {
                break;
            }
            for j in still {
                if !jobs_stopped.contains(&j) {
                    jobs_stopped.push(j);
                }
            }
            // A cancelled job stops at its next epoch tick (or when its query returns).
            tokio::time::sleep(EPOCH_TICK).await;
        }
        let destroyed = terminate::destroy(inner, id)?;
        let event = Event::GrantTerminated {
            grant: id.to_string(),
            reason,
            note: note.to_string(),
            outputs_destroyed: destroyed.outputs,
            files_deleted: destroyed.files,
            bytes_deleted: destroyed.bytes,
            key_destroyed: destroyed.key,
            jobs_stopped,
            released: destroyed.released,
        };
        inner.events.record(event.clone())?;
        self.inner.checkpoint()?;
        tracing::info!(grant = id, files_deleted = destroyed.files, "grant terminated");
        Ok(event)
    }
}

/// The most characters a termination note keeps: it goes into the ledger, which leaves the domain.
pub const MAX_NOTE_CHARS: usize = 1000;

/// A termination note as the ledger keeps it: trimmed, not empty, at most
/// [`MAX_NOTE_CHARS`], and no control characters (which could disguise
/// the record when it is read).
fn checked_note(note: &str) -> Result<&str> {
    let note = note.trim();
    if note.is_empty() {
        return Err(Error::Invalid("a termination needs a note saying what happened".into()));
    }
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(Error::Invalid(format!(
            "a termination note is at most {MAX_NOTE_CHARS} characters"
        )));
    }
    if note.chars().any(crate::release::review_view::hidden) {
        return Err(Error::Invalid(
            "a termination note may not hold control, zero-width or direction characters".into(),
        ));
    }
    Ok(note)
}

impl Jobs {
    /// Whether a terminated grant still has a key, files or live outputs.
    fn termination_unfinished(&self, id: &str) -> Result<bool> {
        let inner = &self.inner;
        if inner.keys.grant_key(id).is_ok() || inner.domain.dir("quarantine").join(id).exists() {
            return Ok(true);
        }
        Ok(Reviews::new(inner.clone())
            .outputs()?
            .iter()
            .any(|o| o.grant == id && !o.destroyed))
    }
}

/// Keeps a job in the running registry while it runs.
struct RunningGuard<'a> {
    inner: &'a Inner,
    id: String,
}

impl<'a> RunningGuard<'a> {
    fn register(inner: &'a Inner, id: &str, grant: &str, cancel: Arc<AtomicBool>) -> Result<Self> {
        inner.running()?.insert(id.to_string(), (grant.to_string(), cancel));
        Ok(RunningGuard {
            inner,
            id: id.to_string(),
        })
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.inner.running.lock() {
            running.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::error::{Error, Result};

    /// A dp job's listing says what its aggregates may use: the row cap, the
    /// bounds and the published columns of that dataset, nothing of others.
    #[test]
    fn a_dp_listing_names_the_cap_bounds_and_published_columns() {
        let mut scope = inland_query::QueryScope::default();
        scope.max_rows_per_entity.insert("visits".into(), 3);
        scope.dp_bounds.insert(("visits".into(), "amount".into()), [0.0, 200.0]);
        scope.dp_bounds.insert(("other".into(), "x".into()), [0.0, 1.0]);
        scope
            .public_values
            .insert(("visits".into(), "district".into()), vec!["A".into(), "B".into()]);
        assert_eq!(
            super::dp_terms(&scope, "visits"),
            " [dp: at most 3 row(s) per entity count; sum/avg of `amount` clamped to [0, 200]; \
             `district` has 2 published values (every group released)]"
        );
        assert_eq!(super::dp_terms(&scope, "nothing"), "");
    }
    use crate::{Date, Domain, Event, GrantRequest, OperatorStatus, OperatorType, Runtime, TerminationReason};

    /// A termination cut short after the grant was marked (a crash, a full
    /// disk) is finished by terminating again; once finished, it is refused.
    #[tokio::test]
    async fn a_termination_cut_short_is_finished_by_terminating_again() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Internal(e.to_string()))?;
        let root = dir.path().join("domain");
        Domain::init(&root, "t")?;
        let rt = Runtime::open(&root)?;
        let csv = dir.path().join("d.csv");
        std::fs::write(&csv, "a\n1\n2\n").map_err(|e| Error::Internal(e.to_string()))?;
        rt.catalog().register("d", &csv, "")?;
        rt.governance().add_operator("org", OperatorType::Scenario, vec![])?;
        rt.governance()
            .set_operator_status("org", OperatorStatus::Approved, None)?;
        let today = Date::today();
        let grant = rt
            .governance()
            .issue_grant(GrantRequest {
                operator: "org".into(),
                datasets: vec!["d".into()],
                purpose: "p".into(),
                scenario: "s".into(),
                from: today,
                until: today.add_years(1),
                products: vec![],
                quota: Default::default(),
                approved_components_only: false,
                privacy: Default::default(),
            })?
            .id;
        // The first step only: marked, its key still there.
        let inner = rt.inner_for_tests();
        assert!(crate::governance::operators::mark_terminated(&inner.domain, &grant)?);
        assert!(inner.keys.grant_key(&grant).is_ok());
        let event = rt
            .jobs()
            .terminate_grant(&grant, TerminationReason::Breach, "again")
            .await?;
        assert!(
            matches!(
                event,
                Event::GrantTerminated {
                    key_destroyed: true,
                    ..
                }
            ),
            "{event:?}"
        );
        assert!(inner.keys.grant_key(&grant).is_err());
        let again = rt
            .jobs()
            .terminate_grant(&grant, TerminationReason::Breach, "once more")
            .await;
        assert!(
            matches!(&again, Err(Error::Invalid(m)) if m.contains("already terminated")),
            "{again:?}"
        );

        // Source archives: an operator not approved (here, a new one) stores none.
        rt.governance()
            .add_operator("newcomer", OperatorType::Scenario, vec![])?;
        let refused = rt.jobs().store_source("newcomer", "li", b"src");
        assert!(
            matches!(&refused, Err(Error::Refused(m)) if m.contains("pending")),
            "{refused:?}"
        );
        let stored = rt.jobs().store_source("org", "li", b"src")?;
        assert_eq!(rt.jobs().source(&stored.sha256)?.1, b"src");
        assert!(rt.jobs().source_refusal("newcomer", &stored.sha256)?.is_some());
        Ok(())
    }
}
