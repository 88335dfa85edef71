//! Glue between the runtime and the gate: builds the checks' inputs from the
//! policy in force, the catalog and the grant's release history; puts a
//! job's tables in quarantine with the checks' report; keeps each job's cell
//! facts sealed beside its outputs; seals released versions.

use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::governance::catalog;
use crate::governance::id_index;
use crate::keys::SealingKey;
use crate::release::output::{OutputOrigin, OutputRecord};
use crate::release::review::{Review, ReviewState};
use crate::release::vault::GrantDir;
use crate::state;
use crate::state::{OUTPUTS, RELEASED};
use arrow::record_batch::RecordBatch;
use inland_gate::{FactIndex, GateInput, GateOutcome, KeyedIndex, ReleaseHistory, ReleasedCell, Verdict};
use inland_policies::Label;
use inland_policies::policy::{GateRules, Policy};
use inland_query::ColumnInfo;
use inland_sandbox::OutputCollector;

/// Everything the checks need besides the table and the job's facts.
pub(crate) struct GateContext {
    rules: GateRules,
    releasable: bool,
    source_rows: Option<u64>,
    index: Option<KeyedIndex>,
    released: ReleaseHistory,
    /// The grant is in the `dp` mode.
    dp: bool,
}

impl GateContext {
    /// The context for outputs of a grant whose jobs could read `datasets`.
    /// `except` leaves one output out of the history (the one being approved).
    pub(crate) fn new(
        domain: &Domain,
        policy: Option<&Policy>,
        datasets: &[String],
        grant: &str,
        except: Option<&str>,
    ) -> Result<GateContext> {
        let source_rows = datasets
            .iter()
            .filter_map(|d| catalog::get(domain, d).ok())
            .map(|d| d.rows)
            .min();
        // A released table is public: every release of the domain, under
        // any grant, is history (but the output being approved itself).
        let skip = except.map(|o| state::released_key(grant, o));
        let released = ReleaseHistory::new(
            domain
                .state
                .list_prefix::<Vec<ReleasedCell>>(RELEASED, "")?
                .into_iter()
                .filter(|(key, _)| Some(key) != skip.as_ref())
                .map(|(key, cells)| (state::released_name(&key), cells)),
        );
        Ok(GateContext {
            rules: policy.map(|p| p.gate.clone()).unwrap_or_default(),
            releasable: policy.is_some_and(|p| p.row_level_releasable(datasets)),
            source_rows,
            index: id_index::load(domain)?,
            released,
            // Unknown grants are judged as exact: every rule runs.
            dp: crate::governance::operators::grant(domain, grant).is_ok_and(|g| !g.privacy.is_exact()),
        })
    }

    /// Runs every check on one table.
    pub(crate) fn check(
        &self,
        table: &RecordBatch,
        facts: &FactIndex,
        label: Label,
        overrides: &[String],
    ) -> Result<GateOutcome> {
        inland_gate::check(&GateInput {
            table,
            facts,
            label,
            row_level_releasable: self.releasable,
            source_rows: self.source_rows,
            rules: &self.rules,
            identifiers: self.index.as_ref(),
            released: &self.released,
            overrides,
            dp: self.dp,
        })
        .map_err(|e| match e {
            inland_gate::GateError::NotOverridable(_) => Error::Invalid(e.to_string()),
            other => Error::Internal(other.to_string()),
        })
    }
}

/// One table from its batches (an empty table keeps its schema).
pub(crate) fn concat(schema: &arrow::datatypes::SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch> {
    arrow::compute::concat_batches(schema, batches).map_err(|e| Error::Internal(format!("output table: {e}")))
}

pub(crate) fn facts_name(job_id: &str) -> String {
    format!("facts-{job_id}.sealed")
}

/// Keeps a job's cell facts sealed with its grant's key, beside its outputs.
pub(crate) fn store_facts(
    domain: &Domain,
    key: &SealingKey,
    grant: &str,
    job_id: &str,
    facts: &FactIndex,
) -> Result<()> {
    seal_json(
        domain,
        key,
        grant,
        &facts_name(job_id),
        &format!("facts:{job_id}"),
        facts,
    )
}

/// Seals a record of a job as JSON in its grant's quarantine directory.
fn seal_json<T: serde::Serialize + ?Sized>(
    domain: &Domain,
    key: &SealingKey,
    grant: &str,
    name: &str,
    aad: &str,
    value: &T,
) -> Result<()> {
    let bytes = serde_json::to_vec(value)?;
    GrantDir::open(domain, grant)?.seal_named(key, name, aad, &bytes)
}

/// Keeps the engine's own messages of a job's failed queries sealed with
/// its grant's key, beside its outputs: they may quote values, so the job and
/// its operator never see them; reviewers may.
pub(crate) fn store_query_errors(
    domain: &Domain,
    key: &SealingKey,
    grant: &str,
    job_id: &str,
    errors: &[(usize, String)],
) -> Result<()> {
    let name = format!("{job_id}.query-errors.sealed");
    seal_json(domain, key, grant, &name, &format!("query-errors:{job_id}"), errors)
}

/// A job's cell facts, opened with its grant's key (empty if it recorded none).
pub(crate) fn load_facts(domain: &Domain, key: &SealingKey, grant: &str, job_id: &str) -> Result<FactIndex> {
    let path = domain.dir("quarantine").join(grant).join(facts_name(job_id));
    let sealed = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FactIndex::default()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let bytes = key.open(&sealed, &format!("facts:{job_id}"))?;
    let mut facts: FactIndex =
        serde_json::from_slice(&bytes).map_err(|e| Error::damaged(path.display().to_string(), e))?;
    facts.reindex();
    Ok(facts)
}

/// Seals a table into a grant's quarantine; returns its SHA-256 and rows.
pub(crate) fn seal_table(domain: &Domain, key: &SealingKey, grant: &str, table: &RecordBatch) -> Result<(String, u64)> {
    let qdir = GrantDir::open(domain, grant)?;
    let (sha256, _) = qdir.seal_table(key, &table.schema(), std::slice::from_ref(table))?;
    qdir.sync()?;
    Ok((sha256, table.num_rows() as u64))
}

/// Writes every collected table into quarantine, sealed with the grant's
/// key, and records it: `output_emitted` first, then its record (the
/// ordering rule), so no one can review an output the ledger never saw.
pub(crate) fn quarantine(
    domain: &Domain,
    events: &dyn crate::events::EventSink,
    key: &SealingKey,
    collected: OutputCollector,
    origin: &OutputOrigin<'_>,
    gate: &GateContext,
    facts: &FactIndex,
) -> Result<Vec<OutputRecord>> {
    let digest = crate::events::TextDigest::new(&domain.derived_key(crate::events::TextDigest::PURPOSE));
    let label = origin.label.as_ref().map(|(l, _)| *l).unwrap_or(Label::Public);
    let qdir = GrantDir::open(domain, origin.grant)?;
    let mut records = Vec::new();
    // Ids are random: the job chose the names, maybe after reading data,
    // and ids travel further than the sealed record (the ledger, its
    // export, the operator's view, a bundle). Numbering them would tell how
    // many outputs the job emitted before a released one.
    let mut ids = std::collections::HashSet::new();
    for (name, table) in collected {
        let (sha256, stored_bytes) = qdir.seal_table(key, &table.schema, &table.batches)?;
        let id = loop {
            let id = output_id(origin.job_id)?;
            if ids.insert(id.clone()) {
                break id;
            }
        };
        let record = OutputRecord {
            id,
            name,
            job_id: origin.job_id.to_string(),
            operator: origin.operator.to_string(),
            grant: origin.grant.to_string(),
            module_sha256: origin.module_sha256.to_string(),
            sha256,
            rows: table.batches.iter().map(|b| b.num_rows() as u64).sum(),
            bytes: stored_bytes,
            columns: ColumnInfo::of(&table.schema),
            datasets: origin.datasets.clone(),
            // The job's queries are in its record, sealed with the grant's
            // key; the server shows them to reviewers from there.
            queries: Vec::new(),
            created_at_ms: inland_files::now_ms(),
            label: origin.label.clone(),
            destroyed: false,
            gate: None,
            review: None,
            release: None,
            exports: Vec::new(),
        };
        // The automated checks run as the output is emitted.
        let whole = concat(&table.schema, &table.batches)?;
        let report = gate.check(&whole, facts, label, &[])?.report;
        let mut record = record;
        record.review = Some(Review {
            state: match report.verdict {
                Verdict::Blocked => ReviewState::Blocked,
                Verdict::Review => ReviewState::Submitted,
            },
            required: report.approvals_required,
            votes: Vec::new(),
        });
        record.gate = Some(report);
        // The name the job chose is sealed with the job's texts, not stored here.
        let stored = OutputRecord {
            name: String::new(),
            ..record.clone()
        };
        qdir.sync()?;
        let emitted = crate::events::Event::OutputEmitted {
            job_id: origin.job_id.to_string(),
            output_id: record.id.clone(),
            content_digest: digest.of(&record.sha256),
            rows: None,
        };
        crate::order::announce(&domain.state, events, emitted, || {
            domain.state.insert_new(OUTPUTS, &record.id, &stored, "output")
        })?;
        records.push(record);
    }
    Ok(records)
}

/// A fresh output id, `<job id>/<12 random hex digits>`.
fn output_id(job_id: &str) -> Result<String> {
    let mut bytes = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| Error::Internal("no randomness for an output id".into()))?;
    Ok(format!("{job_id}/{}", hex::encode(bytes)))
}
