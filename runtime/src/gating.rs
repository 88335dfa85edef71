//! Glue between the runtime and the gate: builds the checks' inputs from the
//! policy in force, the catalog and the grant's release history; keeps each
//! job's cell facts sealed beside its outputs; seals released versions.

use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::keys::SealingKey;
use crate::output::GrantDir;
use crate::state::RELEASED;
use arrow::record_batch::RecordBatch;
use inland_gate::{FactIndex, GateInput, GateOutcome, KeyedIndex, ReleasedCell};
use inland_policies::Label;
use inland_policies::policy::{GateRules, Policy};

/// Everything the checks need besides the table and the job's facts.
pub(crate) struct GateContext {
    rules: GateRules,
    releasable: bool,
    source_rows: Option<u64>,
    index: Option<KeyedIndex>,
    released: Vec<ReleasedCell>,
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
            .filter_map(|d| crate::catalog::get(domain, d).ok())
            .map(|d| d.rows)
            .min();
        // The grant's history alone, by key prefix: not every output in the domain.
        let skip = except.map(|o| crate::state::released_key(grant, o));
        let released = domain
            .state
            .list_prefix::<Vec<ReleasedCell>>(RELEASED, &crate::state::released_key(grant, ""))?
            .into_iter()
            .filter(|(key, _)| Some(key) != skip.as_ref())
            .flat_map(|(_, cells)| cells)
            .collect();
        Ok(GateContext {
            rules: policy.map(|p| p.gate.clone()).unwrap_or_default(),
            releasable: policy.is_some_and(|p| p.row_level_releasable(datasets)),
            source_rows,
            index: crate::id_index::load(domain)?,
            released,
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

fn facts_name(job_id: &str) -> String {
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
    let bytes = serde_json::to_vec(facts).map_err(|e| Error::Internal(e.to_string()))?;
    GrantDir::open(domain, grant)?.seal_named(key, &facts_name(job_id), &format!("facts:{job_id}"), &bytes)
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
        serde_json::from_slice(&bytes).map_err(|e| Error::Storage(format!("{}: {e}", path.display())))?;
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
