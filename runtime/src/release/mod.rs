//! Release: outputs in quarantine (sealed with the grant's key), the gate's
//! inputs and checks, reviewers and their votes, the released version of an
//! approved output, and signed export bundles.

pub(crate) mod export;
pub(crate) mod gating;
pub(crate) mod output;
pub(crate) mod review;
pub mod review_view;
pub(crate) mod vault;

use crate::context::Inner;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::events::Event;
use crate::governance::operators;
use crate::governance::policy_store;
use crate::release::export::{MANIFEST, Manifest, ManifestFile, PUBLIC_KEY, SIGNATURE};
use crate::release::output::{ExportRecord, OutputRecord, Release};
use crate::state::{OUTPUTS, RELEASED, REVIEWERS, State, released_key};
use arrow::record_batch::RecordBatch;
use gating::GateContext;
use inland_policies::{Name, NameKind};
use review::{ReviewState, Reviewer, VoteRequest};
use std::path::Path;

/// Exports of one output at most: each builds, signs and records a bundle
/// under the review lock, so unbounded downloads would hold up reviews.
pub const MAX_EXPORTS: usize = 16;

/// A bundle's files: (name, bytes), the manifest and its signature last.
pub type BundleFiles = Vec<(String, Vec<u8>)>;

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
    Name::parse(NameKind::Reviewer, name)
        .map(|_| ())
        .map_err(|e| Error::Invalid(e.to_string()))
}

/// The release side: outputs in quarantine, reviewers and their votes, released versions and signed exports.
#[derive(Clone)]
pub struct Reviews {
    inner: Arc<Inner>,
}

impl Reviews {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Reviews { inner }
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

    /// Opens a sealed quarantine file (from a backup, say) with its grant's
    /// key. Fails once the grant is terminated: its key no longer exists.
    pub fn read_sealed(&self, grant: &str, sha256: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        self.inner.keys.grant_key(grant)?.open(sealed, sha256)
    }

    /// Serializes decisions and exports: each reads, changes and writes an output record.
    fn review_lock(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        self.inner
            .review_lock
            .lock()
            .map_err(|_| Error::Internal("review lock poisoned".into()))
    }

    /// Records that `output_id`'s sealed file did not open for `reader`: an
    /// alarm for auditors, never an empty table.
    pub fn record_unreadable(&self, output_id: &str, reader: &str) -> Result<()> {
        self.inner.events.record(Event::OutputUnreadable {
            output_id: output_id.to_string(),
            reader: reader.to_string(),
        })?;
        Ok(())
    }

    /// Registers a reviewer; `operator` names the operator they work for, whose outputs they may not decide on.
    pub fn add_reviewer(&self, name: &str, operator: Option<&str>) -> Result<Reviewer> {
        check_reviewer_name(name)?;
        if let Some(op) = operator {
            operators::operator(&self.inner.domain, op)?;
        }
        let reviewer = Reviewer {
            name: name.to_string(),
            operator: operator.map(str::to_string),
            added_at_ms: inland_files::now_ms(),
        };
        let state = &self.inner.domain.state;
        if state.get::<Reviewer>(REVIEWERS, name)?.is_some() {
            return Err(Error::Exists(format!("reviewer `{name}`")));
        }
        let event = Event::ReviewerAdded {
            name: name.to_string(),
            operator: reviewer.operator.clone(),
        };
        crate::order::announce(state, self.inner.events.as_ref(), event, || {
            state.insert_new(REVIEWERS, name, &reviewer, "reviewer")
        })?;
        Ok(reviewer)
    }

    /// Every registered reviewer.
    pub fn reviewers(&self) -> Result<Vec<Reviewer>> {
        self.inner.domain.state.list(REVIEWERS)
    }

    /// Outputs with a release request, newest first.
    pub fn queue(&self) -> Result<Vec<OutputRecord>> {
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
        self.vote_with_token(output_id, request, None)
    }

    /// [`Reviews::vote`], recording the id of the bearer token it came with.
    pub fn vote_with_token(&self, output_id: &str, request: VoteRequest, token: Option<&str>) -> Result<OutputRecord> {
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
        let mut announcing = vec![Event::ReviewVoted {
            output_id: output_id.to_string(),
            reviewer: reviewer.name.clone(),
            decision: request.decision.to_string(),
            reason: request.reason.trim().to_string(),
            overrides: request.overrides.clone(),
            justification: request.justification.clone(),
            token: token.map(str::to_string),
        }];
        if !next.state.open() {
            announcing.push(Event::ReviewDecided {
                output_id: output_id.to_string(),
                state: next.state.to_string(),
                release_sha256: record.release.as_ref().map(|r| r.sha256.clone()),
            });
        }
        record.review = Some(next);
        let state = &inner.domain.state;
        crate::order::announce_all(state, inner.events.as_ref(), announcing, || {
            match (&record.release, record.review.as_ref().map(|r| r.state)) {
                // Approved now: the record and the grant's release history change together.
                (Some(release), Some(ReviewState::Approved)) => state.replace_with(
                    OUTPUTS,
                    output_id,
                    &record,
                    (RELEASED, &released_key(&record.grant, output_id), &release.cells),
                ),
                _ => state.replace(OUTPUTS, output_id, &record),
            }
        })?;
        Ok(record)
    }

    /// Runs the checks for release and seals the released version.
    fn release_version(&self, record: &OutputRecord, overrides: &[String]) -> Result<Release> {
        let inner = &self.inner;
        let policy = policy_store::load_current(&inner.domain)?;
        let gate = GateContext::new(
            &inner.domain,
            policy.as_ref().map(|(_, p)| p),
            &record.datasets,
            &record.grant,
            Some(&record.id),
        )?;
        let key = inner.keys.grant_key(&record.grant)?;
        let batches = output::read(&inner.domain, &key, record)?;
        let schema = batches
            .first()
            .map(|b| b.schema())
            .ok_or_else(|| Error::Internal(format!("output `{}` has no schema", record.id)))?;
        let table = gating::concat(&schema, &batches)?;
        let facts = gating::load_facts(&inner.domain, &key, &record.grant, &record.job_id)?;
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
        let (sha256, rows) = gating::seal_table(&inner.domain, &key, &record.grant, &released)?;
        Ok(Release {
            sha256,
            rows,
            report: outcome.report,
            cells: outcome.traced,
            approved_at_ms: inland_files::now_ms(),
        })
    }

    /// The released version of an approved output (inside the domain).
    pub fn released_table(&self, output_id: &str) -> Result<Vec<arrow::record_batch::RecordBatch>> {
        let record = self.output(output_id)?;
        let release = approved_release(&record)?;
        let key = self.inner.keys.grant_key(&record.grant)?;
        vault::read_sealed_table(&self.inner.domain, &key, &record.grant, &release.sha256)
    }

    /// Writes an approved output's released version to `to` as a signed bundle.
    /// Nothing that is not approved can leave, by this or any other command.
    pub fn export(&self, output_id: &str, to: &Path) -> Result<ExportOutcome> {
        let to_text = to.display().to_string();
        export::check_target(to)?;
        // Recorded first: a crash from here leaves a recorded export with
        // no files (safe: ask again), never files with no record.
        let (outcome, files) = self.release_bundle(output_id, &to_text)?;
        export::write_bundle(to, &files)?;
        Ok(outcome)
    }

    /// An approved output's signed bundle as files in memory, for a server
    /// to hand to `recipient` (recorded as where the export went). The
    /// export is recorded before a byte is returned.
    pub fn export_files(&self, output_id: &str, recipient: &str) -> Result<(ExportOutcome, BundleFiles)> {
        self.release_bundle(output_id, recipient)
    }

    /// Builds the bundle of an approved output and records the export, in
    /// the ledger and then the output's record, before any file of it exists.
    fn release_bundle(&self, output_id: &str, to: &str) -> Result<(ExportOutcome, BundleFiles)> {
        let inner = &self.inner;
        let _guard = self.review_lock()?;
        let mut record = self.output(output_id)?;
        let release = approved_release(&record)?.clone();
        if record.exports.len() >= MAX_EXPORTS {
            return Err(Error::Refused(format!(
                "output `{}` was exported {MAX_EXPORTS} times already; ask an admin for its bundle",
                record.id
            )));
        }
        let ledger = inner.ledger.as_ref().ok_or_else(|| {
            Error::Invalid("exports are signed with the domain's ledger key; open the domain with its ledger".into())
        })?;
        let key = inner.keys.grant_key(&record.grant)?;
        let table = vault::read_sealed_table(&inner.domain, &key, &record.grant, &release.sha256)?;
        let mut files = export::table_files(&table)?;
        let manifest = Manifest {
            format: export::FORMAT.into(),
            domain: inner.domain.config().name.clone(),
            output_id: record.id.clone(),
            job_id: record.job_id.clone(),
            operator: record.operator.clone(),
            grant: record.grant.clone(),
            module_sha256: record.module_sha256.clone(),
            label: record.label.as_ref().map(|(level, _)| *level),
            datasets: record.datasets.clone(),
            release_sha256: release.sha256.clone(),
            files: files
                .iter()
                .map(|(name, bytes)| ManifestFile {
                    name: name.clone(),
                    sha256: inland_files::sha256_hex(bytes),
                    bytes: bytes.len() as u64,
                })
                .collect(),
            checks: Some(export::CheckSummary::of(&release.report)),
            approvals: record
                .review
                .as_ref()
                .map(|r| {
                    r.votes
                        .iter()
                        .filter(|v| v.decision == review::Decision::Approve)
                        .map(export::Approval::from)
                        .collect()
                })
                .unwrap_or_default(),
            exported_at_ms: inland_files::now_ms(),
        };
        let (manifest_bytes, signature) = export::sign(&manifest, ledger)?;
        let manifest_sha256 = inland_files::sha256_hex(&manifest_bytes);
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
        let event = Event::OutputExported {
            output_id: record.id.clone(),
            manifest_sha256: manifest_sha256.clone(),
            files: listed.clone(),
        };
        record.exports.push(ExportRecord {
            manifest_sha256: manifest_sha256.clone(),
            to: to.to_string(),
            at_ms: manifest.exported_at_ms,
        });
        if let Some(r) = record.review.as_mut() {
            r.state = ReviewState::Released;
        }
        let state = &inner.domain.state;
        crate::order::announce(state, inner.events.as_ref(), event, || {
            state.replace(OUTPUTS, &record.id, &record)
        })?;
        inland_files::crash_point("export-recorded");
        self.inner.checkpoint()?;
        Ok((
            ExportOutcome {
                output_id: record.id,
                manifest_sha256,
                files: listed,
            },
            files,
        ))
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

/// Builds the index of released cells (the domain's differencing history)
/// from the approved outputs of a domain written before the index existed.
pub(crate) fn ensure_release_index(state: &State) -> Result<bool> {
    state.build_once(RELEASED, OUTPUTS, |_, o: OutputRecord| {
        let release = o.release?;
        Some((released_key(&o.grant, &o.id), release.cells))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{RELEASED, State, released_key};
    use inland_gate::{GateReport, ReleasedCell, Verdict};

    fn output(grant: &str, id: &str, released: Option<Vec<ReleasedCell>>) -> OutputRecord {
        OutputRecord {
            id: id.into(),
            name: "table".into(),
            job_id: id.split('/').next().unwrap_or(id).into(),
            operator: "op".into(),
            grant: grant.into(),
            module_sha256: "m".into(),
            sha256: "s".into(),
            rows: 1,
            bytes: 1,
            columns: Vec::new(),
            datasets: Vec::new(),
            queries: Vec::new(),
            created_at_ms: 0,
            label: None,
            destroyed: false,
            gate: None,
            review: None,
            release: released.map(|cells| Release {
                sha256: "r".into(),
                rows: 1,
                report: GateReport {
                    verdict: Verdict::Review,
                    approvals_required: 2,
                    row_level: false,
                    checks: Vec::new(),
                    traced_cells: cells.len() as u64,
                    untraced_cells: 0,
                    overrides: Vec::new(),
                },
                cells,
                approved_at_ms: 1,
            }),
            exports: Vec::new(),
        }
    }

    fn cell(source: &str, key: &str, entities: u64) -> ReleasedCell {
        ReleasedCell {
            source: source.into(),
            keys: vec![key.into()],
            entities,
            sketch: None,
            visible: true,
            complete: true,
            derived: Vec::new(),
        }
    }

    /// A domain written before the release index existed gets it on open,
    /// built from its approved outputs, so no grant loses its differencing history.
    #[test]
    fn a_domain_from_before_the_release_index_gets_it_built_from_its_outputs() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Internal(e.to_string()))?;
        let path = dir.path().join("state.redb");
        let (a, b) = (
            vec![cell("count(*)", "east", 12)],
            vec![cell("sum(income)", "west", 40)],
        );
        {
            // As an older version left it: outputs, and no index table at all.
            let state = State::open(&path)?;
            state.insert_new(OUTPUTS, "j1/t", &output("g1", "j1/t", Some(a.clone())), "output")?;
            state.insert_new(OUTPUTS, "j2/t", &output("g1", "j2/t", None), "output")?;
            state.insert_new(OUTPUTS, "j3/t", &output("g2", "j3/t", Some(b.clone())), "output")?;
        }
        let state = State::open(&path)?;
        assert!(ensure_release_index(&state)?);
        let g1: Vec<(String, Vec<ReleasedCell>)> = state.list_prefix(RELEASED, &released_key("g1", ""))?;
        assert_eq!(g1, vec![(released_key("g1", "j1/t"), a)]);
        let g2: Vec<(String, Vec<ReleasedCell>)> = state.list_prefix(RELEASED, &released_key("g2", ""))?;
        assert_eq!(g2, vec![(released_key("g2", "j3/t"), b)]);

        // Once built, it is not rebuilt: an entry removed on purpose stays removed.
        state.remove(RELEASED, &released_key("g2", "j3/t"))?;
        drop(state);
        let state = State::open(&path)?;
        assert!(!ensure_release_index(&state)?);
        let g2: Vec<(String, Vec<ReleasedCell>)> = state.list_prefix(RELEASED, &released_key("g2", ""))?;
        assert!(g2.is_empty());
        Ok(())
    }
}
