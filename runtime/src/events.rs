//! The event stream: every step of the domain's work, recorded before it is
//! reported done. One sink takes them all; the evidence ledger is such a sink.

use crate::error::{Error, Result};
use crate::privacy::Privacy;
use crate::quota::JobQuota;
use inland_policies::Label;
use inland_sandbox::JobError;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Something that happened in the domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A dataset was registered in the catalog.
    DatasetRegistered {
        /// Dataset name.
        name: String,
        /// SHA-256 of the stored Parquet file.
        sha256: String,
        /// Row count.
        rows: u64,
    },
    /// An operator was registered (pending approval).
    OperatorRegistered {
        /// Operator name.
        name: String,
        /// comprehensive, domain or scenario.
        kind: String,
        /// SHA-256 of each qualification document.
        qualifications: Vec<String>,
    },
    /// An operator was approved or suspended.
    OperatorStatusChanged {
        /// Operator name.
        name: String,
        /// The new status.
        status: String,
        /// Why, when given.
        reason: Option<String>,
    },
    /// A grant (authorization agreement) was issued.
    GrantIssued {
        /// Grant id.
        grant: String,
        /// The operator holding it.
        operator: String,
        /// Datasets it covers.
        datasets: Vec<String>,
        /// Authorized purpose.
        purpose: String,
        /// First day in force.
        from: String,
        /// Last day in force.
        until: String,
        /// How many jobs it may run (absent: no limit, and in grants
        /// recorded before quotas).
        #[serde(default, skip_serializing_if = "JobQuota::is_unlimited")]
        quota: JobQuota,
        /// Whether its jobs must run approved components only.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        approved_components_only: bool,
        /// Its privacy mode and budget (absent: exact).
        #[serde(default, skip_serializing_if = "Privacy::is_exact")]
        privacy: Privacy,
    },
    /// A grant's termination began: it is marked terminated, so no job is
    /// admitted under it; `grant_terminated` follows once everything derived
    /// under it is destroyed (at the next start if the domain stops first).
    GrantTerminating {
        /// Grant id.
        grant: String,
        /// expired, breach, incident, law or agreement.
        reason: String,
        /// The admin's note.
        note: String,
    },
    /// A grant was terminated and everything derived under it destroyed (clause 8.6).
    GrantTerminated {
        /// Grant id.
        grant: String,
        /// expired, breach, incident, law or agreement.
        reason: String,
        /// The admin's note.
        note: String,
        /// Outputs destroyed: (output id, keyed digest of its content's SHA-256).
        outputs_destroyed: Vec<(String, String)>,
        /// Files deleted from the domain.
        files_deleted: u64,
        /// Bytes deleted.
        bytes_deleted: u64,
        /// Whether the grant's data key was destroyed (crypto-shredding).
        key_destroyed: bool,
        /// Jobs that were running and were stopped.
        jobs_stopped: Vec<String>,
        /// Products already released, listed and not recalled.
        released: Vec<String>,
    },
    /// An operator proposed its own (social) dataset; visible to no job until approved.
    DatasetProposed {
        /// Dataset name.
        name: String,
        /// The proposing operator.
        operator: String,
        /// SHA-256 of the stored file.
        sha256: String,
        /// Row count.
        rows: u64,
    },
    /// An admin approved a proposed dataset.
    DatasetApproved {
        /// Dataset name.
        name: String,
        /// The operator that owns it.
        owner: Option<String>,
    },
    /// An operator reported a data quality problem (clause 10.6).
    FeedbackAdded {
        /// Feedback id.
        id: String,
        /// The dataset concerned.
        dataset: String,
        /// The reporting operator.
        operator: String,
    },
    /// The public catalog was published.
    CatalogPublished {
        /// Datasets listed.
        datasets: Vec<String>,
        /// SHA-256 of the published catalog.json.
        sha256: String,
    },
    /// A domain policy was applied.
    PolicyApplied {
        /// Its version number.
        version: u64,
        /// SHA-256 of the file.
        sha256: String,
    },
    /// A job was admitted and is about to run.
    JobAdmitted {
        /// Job id.
        job_id: String,
        /// The submitting operator.
        operator: String,
        /// The grant it runs under.
        grant: String,
        /// SHA-256 of the component.
        module_sha256: String,
        /// Submission parameters.
        params: Vec<(String, String)>,
        /// Datasets the job may read (its inputs, for lineage).
        datasets: Vec<String>,
        /// SHA-256 of the source archive submitted with the component.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_sha256: Option<String>,
    },
    /// An organization submitted a source archive (code accountability).
    SourceSubmitted {
        /// SHA-256 of the archive.
        sha256: String,
        /// The organization.
        organization: String,
        /// The person who submitted it.
        by: String,
        /// Its size.
        bytes: u64,
    },
    /// A job was refused before running.
    JobRefused {
        /// Job id.
        job_id: String,
        /// The submitting operator, as claimed.
        operator: String,
        /// The grant named, as claimed.
        grant: String,
        /// SHA-256 of the component.
        module_sha256: String,
        /// Why.
        reason: String,
    },
    /// A query ran.
    QueryRun {
        /// Job id.
        job_id: String,
        /// The SQL text's keyed digest ([`TextDigest`]): the job wrote it,
        /// possibly after reading data, so the text stays in the domain for
        /// reviewers. (Empty in entries written before texts were kept
        /// out, which carried a `sql` field instead.)
        #[serde(default)]
        sql_hmac: String,
        /// The keyed digest of the checked plan's SHA-256 (its literals are
        /// the job's); the job record keeps the plain hash.
        plan_hash: String,
        /// The result's label, where the policy layer assigns one.
        label: Option<Label>,
    },
    /// A query was refused.
    QueryRefused {
        /// Job id.
        job_id: String,
        /// The SQL text's keyed digest, as for `query_run`.
        #[serde(default)]
        sql_hmac: String,
        /// The rule that refused it: a name fixed by Inland.
        rule: String,
        /// The keyed digest of the refusal as the job saw it, which may
        /// quote names the job wrote.
        #[serde(default)]
        message_hmac: String,
    },
    /// A `dp` query's cost was charged to its grant's budget, before it ran.
    PrivacyCharged {
        /// Job id.
        job_id: String,
        /// The grant charged.
        grant: String,
        /// ρ (zCDP) of the query.
        rho: f64,
        /// The protected datasets it read.
        datasets: Vec<String>,
        /// ρ the grant has spent, this query included.
        spent_rho: f64,
        /// δ its choice of groups adds (absent: 0, published keys).
        #[serde(default, skip_serializing_if = "is_zero")]
        delta: f64,
    },
    /// An output table entered quarantine.
    OutputEmitted {
        /// Job id.
        job_id: String,
        /// Output id.
        output_id: String,
        /// The keyed digest ([`TextDigest`]) of the stored table's SHA-256:
        /// the job chose the table's bytes, so a plain hash would let anyone
        /// holding the export test a guess of its content (a one-cell table
        /// holding one person's income). Entries from before carry the plain
        /// hash under `sha256`.
        #[serde(alias = "sha256")]
        content_digest: String,
        /// Row count, in entries from before counts were kept out: how many
        /// rows a job emitted is its choice after reading data (the job
        /// record inside the domain keeps it for reviewers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rows: Option<u64>,
    },
    /// The gate's automated checks ran on an output.
    OutputChecked {
        /// Output id.
        output_id: String,
        /// `review` or `blocked`.
        verdict: String,
        /// Checks that failed or need review, with their status (entries
        /// from before counts were kept out also give their cell counts).
        findings: Vec<String>,
        /// Cells traced to host facts (old entries only: a count that
        /// depends on the data; the output record keeps it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traced_cells: Option<u64>,
        /// Cells the host could not trace (old entries only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        untraced_cells: Option<u64>,
    },
    /// A reviewer voted on an output's release.
    ReviewVoted {
        /// Output id.
        output_id: String,
        /// The reviewer.
        reviewer: String,
        /// approve, reject or return.
        decision: String,
        /// The reviewer's reason.
        reason: String,
        /// Checks overridden by this vote (flagged).
        overrides: Vec<String>,
        /// The written justification for the overrides.
        justification: Option<String>,
        /// The id of the bearer token the vote came with, through the server:
        /// which credential decided, should one be stolen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// An output's review reached its final state.
    ReviewDecided {
        /// Output id.
        output_id: String,
        /// approved, rejected, returned or conflicted.
        state: String,
        /// SHA-256 of the released version, when approved.
        release_sha256: Option<String>,
    },
    /// An approved output left the domain as a signed bundle.
    OutputExported {
        /// Output id.
        output_id: String,
        /// SHA-256 of the signed manifest.
        manifest_sha256: String,
        /// Files in the bundle: (name, SHA-256).
        files: Vec<(String, String)>,
    },
    /// A reviewer was registered.
    ReviewerAdded {
        /// The reviewer's name.
        name: String,
        /// The operator the reviewer belongs to, if any.
        operator: Option<String>,
    },
    /// The ledger cut a torn final record when it was opened after a crash.
    LedgerRepaired {
        /// Index of the first entry that was cut.
        at_entry: u64,
        /// Bytes cut.
        cut_bytes: u64,
    },
    /// The change an earlier entry announced was not made: it failed, or
    /// the domain stopped before it was made and start-up rolled it back.
    /// Read with [`Event::NotMade`]'s entry, the ledger says what happened.
    NotMade {
        /// The announcing entry.
        entry: u64,
        /// Why: `stopped` (a crash; found at start-up) or the kind of failure.
        reason: String,
    },
    /// The entry before this one re-announces, from the state, a change whose
    /// own event was in the ledger's torn tail, cut when it was opened (a
    /// domain from before the ordering rule made the change first).
    Reappended {
        /// The entry the state's record was re-announced as.
        entry: u64,
    },
    /// A quarantined output's sealed file did not open when a reviewer asked
    /// for it: tampered with, or its key destroyed.
    OutputUnreadable {
        /// The output.
        output_id: String,
        /// Who asked.
        reader: String,
    },
    /// The master key was replaced and every grant key re-wrapped under it.
    MasterKeyRotated {
        /// Grant keys re-wrapped.
        grant_keys: u64,
        /// A keyed tag of the new master key (HMAC of a fixed text under
        /// it): start-up tells from it whether the rotation committed.
        key_tag: String,
    },
    /// A note an admin or auditor added to the record.
    Note {
        /// The note.
        text: String,
    },
    /// A bearer token was issued (its hash is kept, never the token).
    TokenIssued {
        /// Token id.
        id: String,
        /// The role it carries.
        role: String,
        /// The person it was issued to.
        name: String,
        /// For operators, the organization they act for.
        operator: Option<String>,
        /// When it expires (ms since the Unix epoch).
        expires_at_ms: u64,
        /// The admin who issued it through the server (absent: issued from
        /// the domain directory, at bootstrap).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// A component was approved by hash to run under grants that require approval.
    ComponentApproved {
        /// SHA-256 of the component.
        sha256: String,
        /// Who approved it.
        by: String,
    },
    /// A component's approval was withdrawn.
    ComponentApprovalRevoked {
        /// SHA-256 of the component.
        sha256: String,
        /// Who withdrew it.
        by: String,
        /// Why.
        note: String,
    },
    /// An admin replaced the server's access policy.
    AccessPolicySet {
        /// The new version.
        version: u64,
        /// SHA-256 of its text (the text is kept in the domain).
        sha256: String,
        /// The admin who set it.
        by: String,
    },
    /// A bearer token was revoked.
    TokenRevoked {
        /// Token id.
        id: String,
    },
    /// The domain's access policy refused a request. Only who, what and on
    /// what: never the request's body.
    AccessDenied {
        /// The token used.
        token: String,
        /// Its role.
        role: String,
        /// Its holder.
        name: String,
        /// The action refused.
        action: String,
        /// The resource, as `Type::"id"`.
        resource: String,
    },
    /// A job ended: succeeded, failed or stopped.
    JobFinished {
        /// Job id.
        job_id: String,
        /// `succeeded`, or the error that ended it.
        outcome: JobOutcome,
    },
}

/// How a job ended, as its `job_finished` event records it. Kept as one
/// string in the record (`succeeded`, or the error's text) so that ledgers
/// written by earlier versions read the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum JobOutcome {
    /// `run` returned `Ok`.
    Succeeded,
    /// It failed or was stopped, for this reason.
    Failed(String),
}

impl JobOutcome {
    const SUCCEEDED: &'static str = "succeeded";

    /// The outcome of a run as the ledger may carry it: the kind of failure
    /// and the limit it hit, never a text the job wrote (its panic message,
    /// trap or returned error, which it may compose from data). Those are
    /// named by their keyed digest; the text stays with the job record.
    pub(crate) fn of_run(outcome: &std::result::Result<(), JobError>, digest: &TextDigest) -> JobOutcome {
        let Err(e) = outcome else {
            return JobOutcome::Succeeded;
        };
        let sealed = |what: &str, message: &str| {
            JobOutcome::Failed(format!(
                "{what}; its message is kept for reviewers (hmac {})",
                digest.of(message)
            ))
        };
        match e {
            JobError::Panicked { message } => sealed("the job panicked", message),
            JobError::Trapped { message } => sealed("the job trapped", message),
            JobError::Failed { message } => sealed("the job returned an error", message),
            other => JobOutcome::Failed(other.to_string()),
        }
    }

    /// Whether the job succeeded.
    pub fn succeeded(&self) -> bool {
        matches!(self, JobOutcome::Succeeded)
    }
}

impl From<String> for JobOutcome {
    fn from(s: String) -> Self {
        if s == JobOutcome::SUCCEEDED {
            JobOutcome::Succeeded
        } else {
            JobOutcome::Failed(s)
        }
    }
}

impl From<JobOutcome> for String {
    fn from(o: JobOutcome) -> Self {
        match o {
            JobOutcome::Succeeded => JobOutcome::SUCCEEDED.to_string(),
            JobOutcome::Failed(why) => why,
        }
    }
}

impl std::fmt::Display for JobOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobOutcome::Succeeded => f.write_str(JobOutcome::SUCCEEDED),
            JobOutcome::Failed(why) => f.write_str(why),
        }
    }
}

/// Names, in the ledger, a text a job wrote (its SQL, a refusal that quotes
/// it, its error): HMAC-SHA256 under a key only the domain holds. A plain
/// hash would let a job retry variants of a text until its digest spells a
/// value, or let anyone holding the export test a guess; reviewers, inside
/// the domain, can still match a text to its entry.
#[derive(Clone)]
pub(crate) struct TextDigest(ring::hmac::Key);

impl TextDigest {
    /// What the domain's key for these digests is derived for.
    pub(crate) const PURPOSE: &'static str = "ledger-text-digest";

    /// A digest under `key` (the domain's key derived for [`Self::PURPOSE`]).
    pub(crate) fn new(key: &[u8; 32]) -> TextDigest {
        TextDigest(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key))
    }

    /// The digest of `text`, in hex.
    pub(crate) fn of(&self, text: &str) -> String {
        hex::encode(ring::hmac::sign(&self.0, text.as_bytes()).as_ref())
    }
}

/// An event with the time it was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Position in the record, from 0.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// Where events go. `record` returns only once the event is durable, so an
/// action is never reported done before its evidence exists.
pub trait EventSink: Send + Sync + 'static {
    /// Records one event durably; returns its sequence number.
    fn record(&self, event: Event) -> Result<u64>;
}

/// Keeps events in memory; for tests and embedders that persist elsewhere.
#[derive(Default)]
pub struct MemorySink(Mutex<Vec<EventRecord>>);

impl MemorySink {
    /// Every event recorded so far.
    pub fn events(&self) -> Vec<EventRecord> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl EventSink for MemorySink {
    fn record(&self, event: Event) -> Result<u64> {
        let mut events = self
            .0
            .lock()
            .map_err(|_| Error::Internal("event sink lock poisoned".into()))?;
        let seq = events.len() as u64;
        events.push(EventRecord {
            seq,
            at_ms: inland_files::now_ms(),
            event,
        });
        Ok(seq)
    }
}

/// Whether a figure is zero, to leave it out of an event.
fn is_zero(x: &f64) -> bool {
    *x == 0.0
}
