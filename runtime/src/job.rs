//! Jobs: admission, running in the sandbox, and what is kept afterwards. The
//! [`Runtime`] is the one handle to a domain that the CLI and tests use.

use crate::catalog::{self, DatasetMeta, DatasetRecord, DatasetStatus};
use crate::date::Date;
use crate::domain::Domain;
use crate::error::{Error, JobError, Result};
use crate::events::{Event, EventSink};
use crate::governance::{
    self, Grant, GrantRequest, GrantStatus, Operator, OperatorStatus, OperatorType, Qualification, TerminationReason,
};
use crate::host::{HostCtx, JobLimiter, JobLog, JobState, LogLine, QueryRecord};
use crate::ledger::EventLedger;
use crate::output::{self, OutputCollector, OutputOrigin, OutputRecord};
use crate::query::QueryEngine;
use crate::sandbox::Sandbox;
use crate::state::{JOBS, OUTPUTS};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Semaphore;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// A job to run.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// The component's bytes.
    pub wasm: Vec<u8>,
    /// The `--param key=value` pairs.
    pub params: Vec<(String, String)>,
    /// The submitting operator's identity.
    pub operator: String,
    /// The grant the job runs under.
    pub grant: String,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// `run` returned `Ok` and the outputs are in quarantine.
    Succeeded,
    /// Refused at admission: it never ran.
    Refused,
    /// It ran and failed or was stopped; its outputs were discarded.
    Failed,
}

/// What the domain keeps about a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job id (time-ordered).
    pub id: String,
    /// The submitting operator.
    pub operator: String,
    /// The grant it ran under (as named, if refused).
    pub grant: String,
    /// SHA-256 of the component.
    pub module_sha256: String,
    /// Submission parameters.
    pub params: Vec<(String, String)>,
    /// How it ended.
    pub status: JobStatus,
    /// Why it was refused, failed or stopped.
    pub error: Option<JobError>,
    /// When it was submitted (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// When it ended.
    pub finished_at_ms: u64,
    /// How long it ran in the sandbox, limits included (0 if refused).
    pub run_ms: u64,
    /// The same in microseconds: instantiation and the run itself, for benchmarks.
    #[serde(default)]
    pub run_us: u64,
    /// Every query it ran.
    pub queries: Vec<QueryRecord>,
    /// Ids of its outputs in quarantine.
    pub outputs: Vec<String>,
    /// Its log: log lines, then captured stdout and stderr.
    pub log: Vec<LogLine>,
    /// Log lines dropped because the log was full.
    pub log_dropped: u64,
    /// The job's label — the highest label of anything it read — and why.
    #[serde(default)]
    pub label: Option<(inland_policies::Label, String)>,
}

/// A job's record and its outputs, as returned to the submitter.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The job record.
    pub job: JobRecord,
    /// The outputs it left in quarantine.
    pub outputs: Vec<OutputRecord>,
}

pub(crate) struct Inner {
    pub(crate) domain: Domain,
    pub(crate) sandbox: Sandbox,
    pub(crate) engine: Arc<QueryEngine>,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) ledger: Option<Arc<EventLedger>>,
    pub(crate) keys: crate::keys::KeyStore,
    /// Running jobs: id -> (grant, cancel flag).
    pub(crate) running: std::sync::Mutex<std::collections::HashMap<String, (String, Arc<AtomicBool>)>>,
    pub(crate) slots: Semaphore,
    /// Serializes review decisions and exports (read-modify-write of output records).
    pub(crate) review_lock: std::sync::Mutex<()>,
}

/// An open domain with its sandbox and query engine. Cheap to clone; jobs run concurrently.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

impl Runtime {
    /// Opens the domain at `root`, recording every event in its evidence ledger.
    pub fn open(root: &Path) -> Result<Runtime> {
        let domain = Domain::open(root)?;
        let ledger = Arc::new(EventLedger::open(
            &domain.dir("ledger"),
            &domain.dir("keys").join(crate::ledger::KEY_FILE),
        )?);
        Runtime::build(domain, ledger.clone(), Some(ledger))
    }

    /// Opens a domain that sends events to another sink instead of its ledger
    /// (for embedders that keep evidence elsewhere, and for tests).
    pub fn with_sink(domain: Domain, events: Arc<dyn EventSink>) -> Result<Runtime> {
        Runtime::build(domain, events, None)
    }

    fn build(domain: Domain, events: Arc<dyn EventSink>, ledger: Option<Arc<EventLedger>>) -> Result<Runtime> {
        let limits = domain.config().limits.clone();
        let sandbox = Sandbox::new(&limits, domain.dir("cache"), domain.derived_key("component-cache"))?;
        let keys = crate::keys::KeyStore::open(&domain.dir("keys"))?;
        let engine = Arc::new(QueryEngine::new(&domain, (limits.query_memory_mib << 20) as usize)?);
        Ok(Runtime {
            inner: Arc::new(Inner {
                slots: Semaphore::new(limits.max_concurrent_jobs as usize),
                domain,
                sandbox,
                engine,
                events,
                ledger,
                keys,
                running: Default::default(),
                review_lock: Default::default(),
            }),
        })
    }

    /// The domain.
    pub fn domain(&self) -> &Domain {
        &self.inner.domain
    }

    /// The evidence ledger, when the runtime records into one.
    pub fn ledger(&self) -> Option<&EventLedger> {
        self.inner.ledger.as_deref()
    }

    /// Signs a ledger checkpoint, if the runtime records into a ledger.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        if let Some(l) = &self.inner.ledger {
            l.checkpoint()?;
        }
        Ok(())
    }

    /// Registers a CSV or Parquet file as a dataset.
    pub fn register_dataset(&self, name: &str, file: &Path, description: &str) -> Result<DatasetRecord> {
        let meta = DatasetMeta {
            description: description.to_string(),
            ..Default::default()
        };
        self.register_dataset_with(name, file, meta)
    }

    /// Registers a dataset with its catalog fields (or, with an owner and
    /// pending status, an operator's proposed social dataset).
    pub fn register_dataset_with(&self, name: &str, file: &Path, meta: DatasetMeta) -> Result<DatasetRecord> {
        if let Some(owner) = &meta.owner {
            governance::operator(&self.inner.domain, owner)?;
        }
        let record = catalog::register(&self.inner.domain, self.inner.events.as_ref(), name, file, meta)?;
        if record.status == DatasetStatus::Approved {
            self.refresh_identifier_index()?;
        }
        Ok(record)
    }

    /// An operator proposes its own dataset for fusion (clause 10.3): stored,
    /// visible to no job until an admin approves it.
    pub fn propose_dataset(&self, operator: &str, name: &str, file: &Path, description: &str) -> Result<DatasetRecord> {
        let meta = DatasetMeta {
            description: description.to_string(),
            owner: Some(operator.to_string()),
            status: DatasetStatus::Pending,
            ..Default::default()
        };
        self.register_dataset_with(name, file, meta)
    }

    /// Approves a proposed dataset.
    pub fn approve_dataset(&self, name: &str) -> Result<DatasetRecord> {
        let record = catalog::approve(&self.inner.domain, self.inner.events.as_ref(), name)?;
        self.refresh_identifier_index()?;
        Ok(record)
    }

    /// Approves a proposed dataset and classifies it in one step: the policy
    /// file must be valid and must classify the dataset, or nothing changes.
    pub fn approve_dataset_with_policy(
        &self,
        name: &str,
        policy: &Path,
    ) -> Result<
        std::result::Result<(DatasetRecord, crate::policy_store::PolicyVersion), Vec<inland_policies::Diagnostic>>,
    > {
        let checked = match self.check_policy(policy)? {
            Ok(p) => p,
            Err(problems) => return Ok(Err(problems)),
        };
        if checked.entity(name).is_none() {
            return Err(Error::Invalid(format!(
                "{} does not classify `{name}`: add a [datasets.{name}] section",
                policy.display()
            )));
        }
        let current = catalog::get(&self.inner.domain, name)?;
        if current.status != DatasetStatus::Pending {
            return Err(Error::Invalid(format!("dataset `{name}` is not pending approval")));
        }
        let record = catalog::approve(&self.inner.domain, self.inner.events.as_ref(), name)?;
        match self.apply_policy(policy)? {
            Ok(version) => Ok(Ok((record, version))),
            Err(problems) => Ok(Err(problems)),
        }
    }

    /// Rebuilds the gate's identifier index when a policy is in force.
    fn refresh_identifier_index(&self) -> Result<()> {
        if let Some((_, p)) = crate::policy_store::load_current(&self.inner.domain)? {
            crate::id_index::rebuild(&self.inner.domain, &p)?;
        }
        Ok(())
    }

    /// Every dataset in the catalog.
    pub fn datasets(&self) -> Result<Vec<DatasetRecord>> {
        catalog::list(&self.inner.domain)
    }

    /// One dataset.
    pub fn dataset(&self, name: &str) -> Result<DatasetRecord> {
        catalog::get(&self.inner.domain, name)
    }

    /// Registers an operator (pending until approved).
    pub fn add_operator(&self, name: &str, kind: OperatorType, qualifications: Vec<Qualification>) -> Result<Operator> {
        governance::add_operator(
            &self.inner.domain,
            self.inner.events.as_ref(),
            name,
            kind,
            qualifications,
        )
    }

    /// Approves or suspends an operator.
    pub fn set_operator_status(&self, name: &str, status: OperatorStatus, reason: Option<String>) -> Result<Operator> {
        governance::set_operator_status(&self.inner.domain, self.inner.events.as_ref(), name, status, reason)
    }

    /// One operator.
    pub fn operator(&self, name: &str) -> Result<Operator> {
        governance::operator(&self.inner.domain, name)
    }

    /// Every operator.
    pub fn operators(&self) -> Result<Vec<Operator>> {
        self.inner.domain.state.list(crate::state::OPERATORS)
    }

    /// Issues a grant after checking operator, datasets and term.
    pub fn issue_grant(&self, request: GrantRequest) -> Result<Grant> {
        governance::issue_grant(
            &self.inner.domain,
            &self.inner.keys,
            self.inner.events.as_ref(),
            request,
        )
    }

    /// One grant.
    pub fn grant(&self, id: &str) -> Result<Grant> {
        governance::grant(&self.inner.domain, id)
    }

    /// Every grant.
    pub fn grants(&self) -> Result<Vec<Grant>> {
        self.inner.domain.state.list(crate::state::GRANTS)
    }

    /// Terminates a grant (clause 8.6): new jobs are refused, running ones
    /// stopped, its data key destroyed and its files deleted; the destruction
    /// record goes to the evidence ledger and is returned.
    pub async fn terminate_grant(&self, id: &str, reason: TerminationReason, note: &str) -> Result<Event> {
        let inner = &self.inner;
        governance::mark_terminated(&inner.domain, id)?;
        let mut jobs_stopped = Vec::new();
        loop {
            let still: Vec<String> = {
                let running = inner
                    .running
                    .lock()
                    .map_err(|_| Error::Internal("job registry poisoned".into()))?;
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
            tokio::time::sleep(crate::sandbox::EPOCH_TICK).await;
        }
        let key_destroyed = inner.keys.destroy_grant_key(id)?;
        let dir = inner.domain.dir("quarantine").join(id);
        let (mut files_deleted, mut bytes_deleted) = (0u64, 0u64);
        if dir.exists() {
            for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                bytes_deleted += entry.metadata().map(|m| m.len()).unwrap_or(0);
                files_deleted += 1;
            }
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            crate::fsutil::sync_dir(&inner.domain.dir("quarantine"))?;
        }
        let mut outputs_destroyed = Vec::new();
        let mut released = Vec::new();
        for mut o in self.outputs()?.into_iter().filter(|o| o.grant == id && !o.destroyed) {
            // Products already exported are listed, not recalled (clause 8.6).
            for e in &o.exports {
                released.push(format!("{} (manifest {})", o.id, e.manifest_sha256));
            }
            o.destroyed = true;
            inner.domain.state.replace(OUTPUTS, &o.id, &o)?;
            outputs_destroyed.push((o.id, o.sha256));
        }
        let event = Event::GrantTerminated {
            grant: id.to_string(),
            reason: format!("{reason:?}").to_lowercase(),
            note: note.to_string(),
            outputs_destroyed,
            files_deleted,
            bytes_deleted,
            key_destroyed,
            jobs_stopped,
            released,
        };
        inner.events.record(event.clone())?;
        self.checkpoint()?;
        tracing::info!(grant = id, files_deleted, "grant terminated");
        Ok(event)
    }

    /// Opens a sealed quarantine file (from a backup, say) with its grant's
    /// key. Fails once the grant is terminated: its key no longer exists.
    pub fn read_sealed(&self, grant: &str, sha256: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        self.inner.keys.grant_key(grant)?.open(sealed, sha256)
    }

    /// Ids of the jobs running now, with their grants.
    pub fn running_jobs(&self) -> Vec<(String, String)> {
        self.inner
            .running
            .lock()
            .map(|r| r.iter().map(|(id, (grant, _))| (id.clone(), grant.clone())).collect())
            .unwrap_or_default()
    }

    /// Replaces the domain's master key, re-wrapping every grant key.
    pub fn rotate_master_key(&self) -> Result<usize> {
        let n = self.inner.keys.rotate_master()?;
        self.inner.events.record(Event::Note {
            text: format!("master key rotated; {n} grant keys re-wrapped"),
        })?;
        Ok(n)
    }

    /// Records an operator's data quality report on a dataset (clause 10.6).
    pub fn add_feedback(&self, dataset: &str, operator: &str, text: &str) -> Result<crate::publication::Feedback> {
        catalog::get(&self.inner.domain, dataset)?;
        governance::operator(&self.inner.domain, operator)?;
        if text.trim().is_empty() {
            return Err(Error::Invalid("feedback needs a text".into()));
        }
        let fb = crate::publication::Feedback {
            id: uuid::Uuid::now_v7().to_string(),
            dataset: dataset.to_string(),
            operator: operator.to_string(),
            text: text.to_string(),
            at_ms: crate::fsutil::now_ms(),
        };
        self.inner
            .domain
            .state
            .insert_new(crate::state::FEEDBACK, &fb.id, &fb, "feedback")?;
        self.inner.events.record(Event::FeedbackAdded {
            id: fb.id.clone(),
            dataset: fb.dataset.clone(),
            operator: fb.operator.clone(),
        })?;
        Ok(fb)
    }

    /// Every feedback report, oldest first.
    pub fn feedback(&self) -> Result<Vec<crate::publication::Feedback>> {
        self.inner.domain.state.list(crate::state::FEEDBACK)
    }

    /// Publishes the catalog of operable datasets (JSON and HTML, no data) into `dir`.
    pub fn publish_catalog(&self, dir: &Path) -> Result<Vec<String>> {
        let datasets = self.datasets()?;
        let bytes = crate::publication::write_catalog(&datasets, &self.inner.domain.config().name, dir)?;
        let listed: Vec<String> = datasets
            .iter()
            .filter(|d| d.status == DatasetStatus::Approved && d.owner.is_none())
            .map(|d| d.name.clone())
            .collect();
        self.inner.events.record(Event::CatalogPublished {
            datasets: listed.clone(),
            sha256: crate::fsutil::sha256_hex(&bytes),
        })?;
        Ok(listed)
    }

    fn ledger_entries(&self) -> Result<Vec<crate::events::EventRecord>> {
        self.ledger()
            .ok_or_else(|| Error::Invalid("reports are computed from the ledger, and this runtime has none".into()))?
            .entries()
    }

    /// Usage over a period, for one operator or all, computed from the ledger.
    pub fn usage_report(
        &self,
        operator: Option<&str>,
        from: Date,
        until: Date,
    ) -> Result<crate::publication::UsageReport> {
        Ok(crate::publication::usage(
            &self.ledger_entries()?,
            operator,
            from,
            until,
        ))
    }

    /// Each clause of the standard, its control, and the evidence for the period.
    pub fn compliance_report(&self, from: Date, until: Date) -> Result<Vec<crate::publication::ComplianceLine>> {
        let ok = self
            .ledger()
            .map(|l| l.verify().map(|r| r.problem.is_none()))
            .transpose()?
            .unwrap_or(false);
        Ok(crate::publication::compliance(&self.ledger_entries()?, from, until, ok))
    }

    /// Checks a policy file against the catalog: the policy, or every problem with its place.
    pub fn check_policy(
        &self,
        path: &Path,
    ) -> Result<std::result::Result<inland_policies::Policy, Vec<inland_policies::Diagnostic>>> {
        crate::policy_store::check(&self.inner.domain, path)
    }

    /// Applies a policy file if it is valid; a file with problems changes nothing.
    pub fn apply_policy(
        &self,
        path: &Path,
    ) -> Result<std::result::Result<crate::policy_store::PolicyVersion, Vec<inland_policies::Diagnostic>>> {
        crate::policy_store::apply(&self.inner.domain, self.inner.events.as_ref(), path)
    }

    /// Every applied policy version, oldest first, and the text of the one in force.
    pub fn policies(&self) -> Result<(Vec<crate::policy_store::PolicyVersion>, Option<String>)> {
        let versions = crate::policy_store::versions(&self.inner.domain)?;
        let text = match crate::policy_store::current(&self.inner.domain)? {
            Some(v) => {
                let path = self.inner.domain.root().join(&v.file);
                Some(std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?)
            }
            None => None,
        };
        Ok((versions, text))
    }

    /// Every job record, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRecord>> {
        self.inner.domain.state.list(JOBS)
    }

    /// One job record.
    pub fn job(&self, id: &str) -> Result<JobRecord> {
        self.inner
            .domain
            .state
            .get(JOBS, id)?
            .ok_or_else(|| Error::NotFound(format!("job `{id}`")))
    }

    /// Every output in quarantine.
    pub fn outputs(&self) -> Result<Vec<OutputRecord>> {
        self.inner.domain.state.list(OUTPUTS)
    }

    /// One output record.
    pub fn output(&self, id: &str) -> Result<OutputRecord> {
        self.inner
            .domain
            .state
            .get(OUTPUTS, id)?
            .ok_or_else(|| Error::NotFound(format!("output `{id}`")))
    }

    /// An output's table, read back from quarantine (inside the domain only).
    pub fn output_table(&self, id: &str) -> Result<Vec<RecordBatch>> {
        let record = self.output(id)?;
        let key = self.inner.keys.grant_key(&record.grant)?;
        output::read(&self.inner.domain, &key, &record)
    }

    fn refuse(&self, id: String, started_at_ms: u64, request: JobRequest, e: JobError) -> Result<JobReport> {
        let inner = &self.inner;
        let module_sha256 = crate::fsutil::sha256_hex(&request.wasm);
        inner.events.record(Event::JobRefused {
            job_id: id.clone(),
            operator: request.operator.clone(),
            grant: request.grant.clone(),
            module_sha256: module_sha256.clone(),
            reason: e.to_string(),
        })?;
        let record = JobRecord {
            id: id.clone(),
            operator: request.operator,
            grant: request.grant,
            module_sha256,
            params: request.params,
            status: JobStatus::Refused,
            error: Some(e),
            started_at_ms,
            finished_at_ms: crate::fsutil::now_ms(),
            run_ms: 0,
            run_us: 0,
            queries: Vec::new(),
            outputs: Vec::new(),
            log: Vec::new(),
            log_dropped: 0,
            label: None,
        };
        inner.domain.state.insert_new(JOBS, &id, &record, "job")?;
        self.checkpoint()?;
        tracing::info!(error = ?record.error, "job refused");
        Ok(JobReport {
            job: record,
            outputs: Vec::new(),
        })
    }

    /// Admits and runs a job. A refusal or a failure is a normal outcome,
    /// reported in the record; `Err` means the domain itself failed.
    pub async fn run_job(&self, request: JobRequest) -> Result<JobReport> {
        let inner = &self.inner;
        let id = uuid::Uuid::now_v7().to_string();
        let started_at_ms = crate::fsutil::now_ms();
        let span = tracing::info_span!("job", id = %id);
        let _enter = span.enter();

        // Identity, grant and term first; then the module itself.
        let admitted = governance::admit(&inner.domain, &request.operator, &request.grant, Date::today())
            .map_err(|reason| JobError::NotAuthorized { reason })
            .and_then(|grant| inner.sandbox.prepare(&request.wasm).map(|(sha, pre)| (grant, sha, pre)));
        let (grant, module_sha256, pre) = match admitted {
            Ok(a) => a,
            Err(e) => return self.refuse(id, started_at_ms, request, e),
        };

        let _slot = inner
            .slots
            .acquire()
            .await
            .map_err(|_| Error::Internal("job slots closed".into()))?;
        let limits = &inner.domain.config().limits;
        // Only the grant's datasets exist for the job: in listings, queries and errors.
        // Under a policy, only those it makes readable, with only the columns it lets through.
        let in_force = crate::policy_store::load_current(&inner.domain)?;
        let mut datasets: Vec<DatasetRecord> = catalog::list(&inner.domain)?
            .into_iter()
            .filter(|d| grant.datasets.contains(&d.name) && d.status == DatasetStatus::Approved)
            .filter(|d| in_force.as_ref().is_none_or(|(_, p)| p.readable(&d.name)))
            .collect();
        if let Some((_, p)) = &in_force {
            for d in &mut datasets {
                crate::policy_table::restrict_columns(d, p);
            }
        }
        // Registered before the grant is checked again, so a termination either
        // sees this job and stops it, or this check sees the termination.
        let cancel = Arc::new(AtomicBool::new(false));
        let _running = RunningGuard::register(inner, &id, &grant.id, cancel.clone())?;
        if governance::grant(&inner.domain, &grant.id)?.status == GrantStatus::Terminated {
            drop(_running);
            let reason = format!("grant `{}` was terminated", grant.id);
            return self.refuse(id, started_at_ms, request, JobError::NotAuthorized { reason });
        }
        inner.events.record(Event::JobAdmitted {
            job_id: id.clone(),
            operator: request.operator.clone(),
            grant: grant.id.clone(),
            module_sha256: module_sha256.clone(),
            params: request.params.clone(),
            datasets: datasets.iter().map(|d| d.name.clone()).collect(),
        })?;
        // The policy that chose the datasets above is the one the queries run under.
        let policy = in_force;
        let pseudonym_key = inner.keys.pseudonym_key(&grant.id)?;
        let session = inner
            .engine
            .session(
                &inner.domain,
                &datasets,
                policy.as_ref().map(|(_, p)| (p, pseudonym_key)),
            )
            .await?;
        let log_cap = (limits.log_kib << 10) as usize;
        let stdout = MemoryOutputPipe::new(log_cap);
        let stderr = MemoryOutputPipe::new(log_cap);
        let wasi = wasmtime_wasi::WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(crate::clock::CoarseWallClock)
            .monotonic_clock(crate::clock::CoarseMonotonicClock::new())
            .build();
        let mut state = JobState {
            wasi,
            table: wasmtime::component::ResourceTable::new(),
            random: Default::default(),
            limiter: JobLimiter::new(limits.memory_bytes()),
            host: HostCtx::new(
                id.clone(),
                limits.timeout(),
                session,
                datasets,
                inner.engine.clone(),
                inner.events.clone(),
                OutputCollector::new(limits.max_output_bytes()),
                JobLog::new(log_cap),
                grant.id.clone(),
                cancel,
            ),
        };

        let ran = std::time::Instant::now();
        state.host.scope = crate::query::QueryScope::under(
            policy.as_ref().map(|(_, p)| p),
            state.host.scope.datasets.iter().cloned(),
        )
        .with_unique_entities(policy.as_ref().map(|(_, p)| p), &state.host.datasets);
        let (outcome, state) = inner.sandbox.run(&pre, state, &request.params).await;
        let run_us = ran.elapsed().as_micros() as u64;
        let run_ms = run_us / 1000;
        let host = state.host;
        let stderr_text = String::from_utf8_lossy(&stderr.contents()).into_owned();
        let outcome = outcome.map_err(|e| with_panic_message(e, &stderr_text));

        let mut log = host.log.lines;
        for (level, text) in [
            ("stdout", String::from_utf8_lossy(&stdout.contents()).into_owned()),
            ("stderr", stderr_text),
        ] {
            log.extend(text.lines().map(|l| LogLine {
                level: level.into(),
                message: l.to_string(),
            }));
        }

        let mut outputs = Vec::new();
        if outcome.is_ok() && !host.outputs.is_empty() {
            let origin = OutputOrigin {
                job_id: &id,
                operator: &request.operator,
                grant: &grant.id,
                module_sha256: &module_sha256,
                datasets: host.scope.datasets.iter().cloned().collect(),
                queries: &host.queries,
                label: host.label.clone(),
            };
            let key = inner.keys.grant_key(&grant.id)?;
            let gate = crate::gating::GateContext::new(
                &inner.domain,
                policy.as_ref().map(|(_, p)| p),
                &origin.datasets,
                &grant.id,
                None,
            )?;
            crate::gating::store_facts(&inner.domain, &key, &grant.id, &id, &host.facts)?;
            outputs = output::quarantine(&inner.domain, &key, host.outputs, &origin, &gate, &host.facts)?;
            for o in &outputs {
                inner.events.record(Event::OutputEmitted {
                    job_id: id.clone(),
                    output_id: o.id.clone(),
                    sha256: o.sha256.clone(),
                    rows: o.rows,
                })?;
                if let Some(report) = &o.gate {
                    inner.events.record(Event::OutputChecked {
                        output_id: o.id.clone(),
                        verdict: match report.verdict {
                            inland_gate::Verdict::Blocked => "blocked".into(),
                            inland_gate::Verdict::Review => "review".into(),
                        },
                        findings: report
                            .findings()
                            .map(|c| format!("{} {} ({} cells)", c.check, c.status, c.cell_count))
                            .collect(),
                        traced_cells: report.traced_cells,
                        untraced_cells: report.untraced_cells,
                    })?;
                }
            }
        } else if !host.outputs.is_empty() {
            tracing::info!(discarded = host.outputs.len(), "outputs of a failed job were discarded");
        }

        inner.events.record(Event::JobFinished {
            job_id: id.clone(),
            outcome: match &outcome {
                Ok(()) => "succeeded".into(),
                Err(e) => e.to_string(),
            },
        })?;
        let record = JobRecord {
            id: id.clone(),
            operator: request.operator,
            grant: grant.id.clone(),
            module_sha256,
            params: request.params,
            status: if outcome.is_ok() {
                JobStatus::Succeeded
            } else {
                JobStatus::Failed
            },
            error: outcome.err(),
            started_at_ms,
            finished_at_ms: crate::fsutil::now_ms(),
            run_ms,
            run_us,
            queries: host.queries,
            outputs: outputs.iter().map(|o| o.id.clone()).collect(),
            log,
            log_dropped: host.log.dropped,
            label: host.label.clone(),
        };
        inner.domain.state.insert_new(JOBS, &id, &record, "job")?;
        self.checkpoint()?;
        match &record.error {
            None => tracing::info!(outputs = outputs.len(), "job succeeded"),
            Some(e) => tracing::info!(error = %e, "job did not succeed"),
        }
        Ok(JobReport { job: record, outputs })
    }
}

/// A Rust guest prints its panic message to stderr before it aborts; name it.
fn with_panic_message(e: JobError, stderr: &str) -> JobError {
    match e {
        JobError::Trapped { .. } => match stderr.lines().position(|l| l.contains("panicked at")) {
            Some(i) => {
                let message: Vec<&str> = stderr
                    .lines()
                    .skip(i)
                    .take_while(|l| !l.starts_with("note:"))
                    .take(4)
                    .collect();
                JobError::Panicked {
                    message: message.join(" "),
                }
            }
            None => e,
        },
        other => other,
    }
}

/// Keeps a job in the running registry while it runs.
struct RunningGuard<'a> {
    inner: &'a Inner,
    id: String,
}

impl<'a> RunningGuard<'a> {
    fn register(inner: &'a Inner, id: &str, grant: &str, cancel: Arc<AtomicBool>) -> Result<Self> {
        inner
            .running
            .lock()
            .map_err(|_| Error::Internal("job registry poisoned".into()))?
            .insert(id.to_string(), (grant.to_string(), cancel));
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
