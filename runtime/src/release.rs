//! The runtime's side of the gate after a job: reviewers, votes, the
//! released version of an approved output, and signed export bundles.

use crate::error::{Error, Result};
use crate::events::Event;
use crate::export::{MANIFEST, Manifest, ManifestFile, PUBLIC_KEY, SIGNATURE};
use crate::job::Runtime;
use crate::output::{ExportRecord, OutputRecord, Release};
use crate::review::{self, ReviewState, Reviewer, VoteRequest};
use crate::state::{OUTPUTS, REVIEWERS};
use std::path::Path;

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportOutcome {
    /// The output exported.
    pub output_id: String,
    /// SHA-256 of the signed manifest.
    pub manifest_sha256: String,
    /// The bundle's files: (name, SHA-256).
    pub files: Vec<(String, String)>,
}

fn check_reviewer_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "reviewer name {name:?} is not allowed: use 1 to 64 letters, digits, `_`, `-` or `.`"
        )))
    }
}

impl Runtime {
    /// Serializes decisions and exports: each reads, changes and writes an output record.
    fn review_lock(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        self.inner
            .review_lock
            .lock()
            .map_err(|_| Error::Internal("review lock poisoned".into()))
    }

    /// Registers a reviewer; `operator` names the operator they work for, whose outputs they may not decide on.
    pub fn add_reviewer(&self, name: &str, operator: Option<&str>) -> Result<Reviewer> {
        check_reviewer_name(name)?;
        if let Some(op) = operator {
            crate::governance::operator(&self.inner.domain, op)?;
        }
        let reviewer = Reviewer {
            name: name.to_string(),
            operator: operator.map(str::to_string),
            added_at_ms: crate::fsutil::now_ms(),
        };
        self.inner
            .domain
            .state
            .insert_new(REVIEWERS, name, &reviewer, "reviewer")?;
        self.inner.events.record(Event::ReviewerAdded {
            name: name.to_string(),
            operator: reviewer.operator.clone(),
        })?;
        Ok(reviewer)
    }

    /// Every registered reviewer.
    pub fn reviewers(&self) -> Result<Vec<Reviewer>> {
        self.inner.domain.state.list(REVIEWERS)
    }

    /// Outputs with a release request, newest first.
    pub fn review_queue(&self) -> Result<Vec<OutputRecord>> {
        let mut all: Vec<OutputRecord> = self
            .outputs()?
            .into_iter()
            .filter(|o| o.review.is_some() && !o.destroyed)
            .collect();
        all.sort_by_key(|o| std::cmp::Reverse(o.created_at_ms));
        Ok(all)
    }

    /// Casts a reviewer's vote on an output. When the votes make it approved,
    /// the checks run again (with the overrides every approver agreed to, and
    /// the grant's releases so far) and the released version is sealed.
    pub fn vote(&self, output_id: &str, request: VoteRequest) -> Result<OutputRecord> {
        let inner = &self.inner;
        let _guard = self.review_lock()?;
        let mut record = self.output(output_id)?;
        if record.destroyed {
            return Err(Error::Refused(format!(
                "output `{output_id}` was destroyed with grant `{}`",
                record.grant
            )));
        }
        let Some(current) = record.review.clone() else {
            return Err(Error::Invalid(format!(
                "output `{output_id}` was never checked by the gate and cannot be reviewed"
            )));
        };
        if current.state == ReviewState::Blocked {
            let why = record
                .gate
                .as_ref()
                .map(|g| g.blocked_because().join("; "))
                .unwrap_or_default();
            return Err(Error::Refused(format!(
                "output `{output_id}` is blocked by the gate's checks and cannot be reviewed: {why}"
            )));
        }
        let reviewer: Reviewer = inner
            .domain
            .state
            .get(REVIEWERS, &request.reviewer)?
            .ok_or_else(|| Error::NotFound(format!("reviewer `{}`", request.reviewer)))?;
        let next = review::cast(&current, output_id, &record.operator, &reviewer, &request)?;
        if next.state == ReviewState::Approved {
            record.release = Some(self.release_version(&record, &review::agreed_overrides(&next))?);
        }
        inner.events.record(Event::ReviewVoted {
            output_id: output_id.to_string(),
            reviewer: reviewer.name.clone(),
            decision: request.decision.to_string(),
            reason: request.reason.trim().to_string(),
            overrides: request.overrides.clone(),
            justification: request.justification.clone(),
        })?;
        if !next.state.open() {
            inner.events.record(Event::ReviewDecided {
                output_id: output_id.to_string(),
                state: next.state.to_string(),
                release_sha256: record.release.as_ref().map(|r| r.sha256.clone()),
            })?;
        }
        record.review = Some(next);
        match (&record.release, record.review.as_ref().map(|r| r.state)) {
            // Approved now: the record and the grant's release history change together.
            (Some(release), Some(ReviewState::Approved)) => inner.domain.state.replace_with(
                OUTPUTS,
                output_id,
                &record,
                (
                    crate::state::RELEASED,
                    &crate::state::released_key(&record.grant, output_id),
                    &release.cells,
                ),
            )?,
            _ => inner.domain.state.replace(OUTPUTS, output_id, &record)?,
        }
        Ok(record)
    }

    /// Runs the checks for release and seals the released version.
    fn release_version(&self, record: &OutputRecord, overrides: &[String]) -> Result<Release> {
        let inner = &self.inner;
        let policy = crate::policy_store::load_current(&inner.domain)?;
        let gate = crate::gating::GateContext::new(
            &inner.domain,
            policy.as_ref().map(|(_, p)| p),
            &record.datasets,
            &record.grant,
            Some(&record.id),
        )?;
        let key = inner.keys.grant_key(&record.grant)?;
        let batches = crate::output::read(&inner.domain, &key, record)?;
        let schema = batches
            .first()
            .map(|b| b.schema())
            .ok_or_else(|| Error::Internal(format!("output `{}` has no schema", record.id)))?;
        let table = crate::gating::concat(&schema, &batches)?;
        let facts = crate::gating::load_facts(&inner.domain, &key, &record.grant, &record.job_id)?;
        let label = record
            .label
            .as_ref()
            .map(|(l, _)| *l)
            .unwrap_or(inland_policies::Label::Public);
        let outcome = gate.check(&table, &facts, label, overrides)?;
        if outcome.report.verdict == inland_gate::Verdict::Blocked {
            return Err(Error::Refused(format!(
                "the gate's checks now block output `{}`: {}",
                record.id,
                outcome.report.blocked_because().join("; ")
            )));
        }
        let released = inland_gate::apply(&table, &outcome.plan).map_err(|e| Error::Internal(e.to_string()))?;
        let (sha256, rows) = crate::gating::seal_table(&inner.domain, &key, &record.grant, &released)?;
        Ok(Release {
            sha256,
            rows,
            report: outcome.report,
            cells: outcome.traced,
            approved_at_ms: crate::fsutil::now_ms(),
        })
    }

    /// The released version of an approved output (inside the domain).
    pub fn released_table(&self, output_id: &str) -> Result<Vec<arrow::record_batch::RecordBatch>> {
        let record = self.output(output_id)?;
        let release = approved_release(&record)?;
        let key = self.inner.keys.grant_key(&record.grant)?;
        crate::output::read_sealed_table(&self.inner.domain, &key, &record.grant, &release.sha256)
    }

    /// Writes an approved output's released version to `to` as a signed bundle.
    /// Nothing that is not approved can leave, by this or any other command.
    pub fn export(&self, output_id: &str, to: &Path) -> Result<ExportOutcome> {
        let inner = &self.inner;
        let _guard = self.review_lock()?;
        let mut record = self.output(output_id)?;
        let release = approved_release(&record)?.clone();
        let ledger = inner.ledger.as_ref().ok_or_else(|| {
            Error::Invalid("exports are signed with the domain's ledger key; open the domain with its ledger".into())
        })?;
        let key = inner.keys.grant_key(&record.grant)?;
        let table = crate::output::read_sealed_table(&inner.domain, &key, &record.grant, &release.sha256)?;
        let mut files = crate::export::table_files(&record.name, &table)?;
        let manifest = Manifest {
            format: "inland-export/1".into(),
            domain: inner.domain.config().name.clone(),
            output_id: record.id.clone(),
            job_id: record.job_id.clone(),
            operator: record.operator.clone(),
            grant: record.grant.clone(),
            module_sha256: record.module_sha256.clone(),
            label: record.label.clone(),
            datasets: record.datasets.clone(),
            queries: record.queries.clone(),
            quarantined_sha256: record.sha256.clone(),
            release_sha256: release.sha256.clone(),
            files: files
                .iter()
                .map(|(name, bytes)| ManifestFile {
                    name: name.clone(),
                    sha256: crate::fsutil::sha256_hex(bytes),
                    bytes: bytes.len() as u64,
                })
                .collect(),
            report: release.report.clone(),
            approvals: record.review.as_ref().map(|r| r.votes.clone()).unwrap_or_default(),
            exported_at_ms: crate::fsutil::now_ms(),
        };
        let (manifest_bytes, signature) = crate::export::sign(&manifest, ledger)?;
        let manifest_sha256 = crate::fsutil::sha256_hex(&manifest_bytes);
        let listed: Vec<(String, String)> = manifest
            .files
            .iter()
            .map(|f| (f.name.clone(), f.sha256.clone()))
            .collect();
        files.push((MANIFEST.into(), manifest_bytes));
        files.push((SIGNATURE.into(), format!("{signature}\n").into_bytes()));
        files.push((
            PUBLIC_KEY.into(),
            format!("{}\n", hex::encode(ledger.public_key())).into_bytes(),
        ));
        crate::export::write_bundle(to, &files)?;
        let recorded = inner.events.record(Event::OutputExported {
            output_id: record.id.clone(),
            manifest_sha256: manifest_sha256.clone(),
            files: listed.clone(),
        });
        if let Err(e) = recorded {
            // Unrecorded, it did not happen: take the bundle back.
            let _ = std::fs::remove_dir_all(to);
            return Err(e);
        }
        record.exports.push(ExportRecord {
            manifest_sha256: manifest_sha256.clone(),
            to: to.display().to_string(),
            at_ms: manifest.exported_at_ms,
        });
        if let Some(r) = record.review.as_mut() {
            r.state = ReviewState::Released;
        }
        inner.domain.state.replace(OUTPUTS, &record.id, &record)?;
        self.checkpoint()?;
        Ok(ExportOutcome {
            output_id: record.id,
            manifest_sha256,
            files: listed,
        })
    }
}

fn approved_release(record: &OutputRecord) -> Result<&Release> {
    if record.destroyed {
        return Err(Error::Refused(format!(
            "output `{}` was destroyed with grant `{}`",
            record.id, record.grant
        )));
    }
    let state = record.review.as_ref().map(|r| r.state);
    match (state, record.release.as_ref()) {
        (Some(ReviewState::Approved | ReviewState::Released), Some(release)) => Ok(release),
        (Some(state), _) => Err(Error::Refused(format!(
            "output `{}` is {state}: only an approved output can leave the domain",
            record.id
        ))),
        (None, _) => Err(Error::Refused(format!(
            "output `{}` has no release request: only an approved output can leave the domain",
            record.id
        ))),
    }
}
