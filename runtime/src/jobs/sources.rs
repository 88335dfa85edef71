//! Source archives: the code behind a component, submitted with it so that
//! reviewers read what ran (code accountability). Stored by SHA-256 under
//! `sources/`, with the organizations that submitted it; a job names its
//! archive by hash, and admission checks the archive is its organization's.
//! An archive is the operator's claim of what the component was built
//! from: nothing ties its bytes to the component's, so reviewers read it as
//! that claim (a reproducible build would make it a proof).

use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink};
use crate::state::SOURCES;
use serde::{Deserialize, Serialize};

/// Archives one organization may hold: uploads are bounded like jobs are.
pub const MAX_PER_ORGANIZATION: usize = 256;
/// Bytes of archives one organization may hold (2 GiB).
pub const MAX_BYTES_PER_ORGANIZATION: u64 = 2 << 30;

/// One stored archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// SHA-256 of the archive, hex.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
    /// The organizations that submitted it.
    pub organizations: Vec<String>,
    /// When it was first stored (ms since the Unix epoch).
    pub stored_at_ms: u64,
}

/// Whether `sha256` is 64 lowercase hex digits (it becomes a file name).
pub(crate) fn check_hash(sha256: &str) -> Result<()> {
    if sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "`{sha256}` is not a source archive hash: give the 64 lowercase hex digits of its SHA-256"
        )))
    }
}

/// Stores `archive` for `organization` (once per content), recording who
/// submitted it; returns its record.
pub(crate) fn store(
    domain: &Domain,
    events: &dyn EventSink,
    organization: &str,
    by: &str,
    archive: &[u8],
) -> Result<SourceRecord> {
    if archive.is_empty() {
        return Err(Error::Invalid("the source archive is empty".into()));
    }
    let operator = crate::governance::operators::operator(domain, organization)?;
    if operator.status != crate::governance::operators::OperatorStatus::Approved {
        return Err(Error::Refused(format!(
            "operator `{organization}` is {}: only an approved operator submits sources",
            operator.status.as_str()
        )));
    }
    let mine: Vec<SourceRecord> = domain
        .state
        .list::<SourceRecord>(SOURCES)?
        .into_iter()
        .filter(|r| r.organizations.iter().any(|o| o == organization))
        .collect();
    let held: u64 = mine.iter().map(|r| r.bytes).sum();
    if mine.len() >= MAX_PER_ORGANIZATION || held.saturating_add(archive.len() as u64) > MAX_BYTES_PER_ORGANIZATION {
        return Err(Error::Refused(format!(
            "`{organization}` holds {} source archives ({held} bytes); at most {MAX_PER_ORGANIZATION} and \
             {MAX_BYTES_PER_ORGANIZATION} bytes: ask an admin to clear old ones",
            mine.len()
        )));
    }
    let sha256 = inland_files::sha256_hex(archive);
    let dir = domain.dir("sources");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    // Written every time, stored or not: how long an upload takes must not
    // tell whether another organization stored the same bytes.
    inland_files::write_atomic(&dir.join(&sha256), archive)?;
    // One transaction: two organizations storing the same bytes at once both
    // stay listed. The event is appended inside it, before it commits.
    let _changing = domain.state.changing();
    let mut record = None;
    let added = domain.state.update(SOURCES, &sha256, |old: Option<SourceRecord>| {
        let mut r = old.unwrap_or_else(|| SourceRecord {
            sha256: sha256.clone(),
            bytes: archive.len() as u64,
            organizations: Vec::new(),
            stored_at_ms: inland_files::now_ms(),
        });
        if r.organizations.iter().any(|o| o == organization) {
            record = Some(r);
            return Err(None);
        }
        r.organizations.push(organization.to_string());
        record = Some(r.clone());
        events
            .record(Event::SourceSubmitted {
                sha256: sha256.clone(),
                organization: organization.to_string(),
                by: by.to_string(),
                bytes: r.bytes,
            })
            .map_err(Some)?;
        Ok(r)
    })?;
    if let Err(Some(e)) = added {
        return Err(e);
    }
    record.ok_or_else(|| Error::Internal("a source record was not read".into()))
}

/// The record of archive `sha256`, if it is stored.
pub(crate) fn record(domain: &Domain, sha256: &str) -> Result<Option<SourceRecord>> {
    check_hash(sha256)?;
    domain.state.get(SOURCES, sha256)
}

/// The archive's bytes, checked against its hash.
pub(crate) fn read(domain: &Domain, sha256: &str) -> Result<Vec<u8>> {
    check_hash(sha256)?;
    let path = domain.dir("sources").join(sha256);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    if inland_files::sha256_hex(&bytes) != sha256 {
        return Err(Error::Internal(format!(
            "source archive {sha256} does not match its hash"
        )));
    }
    Ok(bytes)
}

/// Why `organization` may not name `sha256` as its job's source, if not.
pub(crate) fn refusal(domain: &Domain, organization: &str, sha256: &str) -> Result<Option<String>> {
    if check_hash(sha256).is_err() {
        return Ok(Some(format!("`{sha256}` is not a source archive hash")));
    }
    Ok(match record(domain, sha256)? {
        Some(r) if r.organizations.iter().any(|o| o == organization) => None,
        _ => Some(format!(
            "source archive {sha256} was not submitted by `{organization}`: submit it first (POST /api/sources)"
        )),
    })
}
