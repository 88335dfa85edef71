//! Applied policies: every version kept with its SHA-256; applying is atomic
//! (a file with any problem changes nothing) and recorded in the ledger.

use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink};
use crate::governance::catalog::{self, DatasetRecord};
use crate::governance::id_index;
use crate::state::POLICIES;
use inland_policies::layout::{self, EntityLayout};
use inland_policies::policy::{CatalogView, Diagnostic, Policy};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One applied version of the domain policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// 1, 2, 3, ...
    pub version: u64,
    /// SHA-256 of the file as applied.
    pub sha256: String,
    /// Where the domain keeps it, relative to the domain directory.
    pub file: String,
    /// When it was applied (ms since the Unix epoch).
    pub applied_at_ms: u64,
}

const CURRENT: &str = "current";

fn catalog_view(datasets: &[DatasetRecord]) -> CatalogView {
    datasets
        .iter()
        .map(|d| (d.name.clone(), d.columns.iter().map(|c| c.name.clone()).collect()))
        .collect()
}

/// Parses and validates a policy file against the catalog.
pub(crate) fn check(domain: &Domain, path: &Path) -> Result<std::result::Result<Policy, Vec<Diagnostic>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    check_text(domain, &text, &path.display().to_string())
}

/// Parses and validates policy `text` (named `name` in problems) against the catalog.
fn check_text(domain: &Domain, text: &str, name: &str) -> Result<std::result::Result<Policy, Vec<Diagnostic>>> {
    Ok(Policy::load(text, name, &catalog_view(&catalog::list(domain)?)))
}

/// Notes on the policy file at `path` that the datasets' stored layout
/// calls for (records not keyed by their entity, see
/// `inland_policies::layout`); none for a file with problems.
pub(crate) fn layout_notes(domain: &Domain, path: &Path) -> Result<Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let name = path.display().to_string();
    let datasets = catalog::list(domain)?;
    let Ok(policy) = Policy::load(&text, &name, &catalog_view(&datasets)) else {
        return Ok(Vec::new());
    };
    let layouts = datasets
        .iter()
        .map(|d| {
            let stored = EntityLayout {
                unique: d.unique_columns.clone(),
                keyed_by: d.entity_key.as_ref().map(|k| k.column.clone()),
            };
            (d.name.clone(), stored)
        })
        .collect();
    Ok(layout::layout_notes(&policy, &text, &name, &layouts))
}

/// Applies a policy file if it is valid; otherwise returns its problems and changes nothing.
pub(crate) fn apply(
    domain: &Domain,
    events: &dyn EventSink,
    path: &Path,
) -> Result<std::result::Result<PolicyVersion, Vec<Diagnostic>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    apply_text(domain, events, &text, &path.display().to_string())
}

/// Applies policy `text` (named `name` in problems) if it is valid;
/// otherwise returns its problems and changes nothing.
pub(crate) fn apply_text(
    domain: &Domain,
    events: &dyn EventSink,
    text: &str,
    name: &str,
) -> Result<std::result::Result<PolicyVersion, Vec<Diagnostic>>> {
    let policy = match check_text(domain, text, name)? {
        Ok(p) => p,
        Err(problems) => return Ok(Err(problems)),
    };
    // The gate's identifier index follows the policy's identifier columns.
    let indexed = id_index::rebuild(domain, &policy)?;
    tracing::info!(values = indexed, "identifier index rebuilt");
    let bytes = text.as_bytes();
    let sha256 = inland_files::sha256_hex(bytes);
    let version = current(domain)?.map(|v| v.version + 1).unwrap_or(1);
    let file = format!("policies/v{version}-{}.toml", &sha256[..12]);
    inland_files::write_atomic(&domain.root().join(&file), bytes)?;
    let record = PolicyVersion {
        version,
        sha256: sha256.clone(),
        file,
        applied_at_ms: inland_files::now_ms(),
    };
    crate::order::announce(&domain.state, events, Event::PolicyApplied { version, sha256 }, || {
        domain.state.insert_new_with(
            POLICIES,
            &format!("v{version:08}"),
            &record,
            "policy version",
            (POLICIES, CURRENT, &record),
        )
    })?;
    Ok(Ok(record))
}

/// The policy in force, if one was applied.
pub(crate) fn current(domain: &Domain) -> Result<Option<PolicyVersion>> {
    domain.state.get(POLICIES, CURRENT)
}

/// Every applied version, oldest first.
pub(crate) fn versions(domain: &Domain) -> Result<Vec<PolicyVersion>> {
    let all: Vec<PolicyVersion> = domain.state.list(POLICIES)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out: Vec<PolicyVersion> = all.into_iter().filter(|v| seen.insert(v.version)).collect();
    out.sort_by_key(|v| v.version);
    Ok(out)
}

/// Loads the policy in force (re-validated against today's catalog).
pub(crate) fn load_current(domain: &Domain) -> Result<Option<(PolicyVersion, Policy)>> {
    let Some(v) = current(domain)? else { return Ok(None) };
    let path = domain.root().join(&v.file);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    if inland_files::sha256_hex(&bytes) != v.sha256 {
        return Err(Error::damaged(
            path.display().to_string(),
            "it does not match its recorded hash",
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| Error::damaged(path.display().to_string(), e))?;
    let policy = Policy::load(&text, &v.file, &catalog_view(&catalog::list(domain)?)).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|d| d.to_string()).collect();
        Error::Invalid(format!(
            "the policy in force no longer fits the catalog:\n{}",
            lines.join("\n")
        ))
    })?;
    Ok(Some((v, policy)))
}
