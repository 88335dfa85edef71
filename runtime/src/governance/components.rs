//! Components approved by hash. A grant may require that a job's component
//! be approved by an admin or a reviewer before it runs against the
//! grant's data, as an analysis template is approved before it runs in a
//! clean room: the code that reads the data is known before it does.

use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink};
use crate::state::COMPONENTS;
use serde::{Deserialize, Serialize};

/// An approval of one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentApproval {
    /// SHA-256 of the component, hex.
    pub sha256: String,
    /// Who approved it.
    pub approved_by: String,
    /// Why, for the record.
    pub note: String,
    /// When (ms since the Unix epoch).
    pub approved_at_ms: u64,
}

/// Whether `sha256` is 64 lowercase hex digits.
fn check_hash(sha256: &str) -> Result<()> {
    if sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "`{sha256}` is not a component hash: give the 64 lowercase hex digits of its SHA-256"
        )))
    }
}

/// Approves a component by hash, once; records the approval.
pub(crate) fn approve(
    domain: &Domain,
    events: &dyn EventSink,
    sha256: &str,
    by: &str,
    note: &str,
) -> Result<ComponentApproval> {
    check_hash(sha256)?;
    let approval = ComponentApproval {
        sha256: sha256.to_string(),
        approved_by: by.to_string(),
        note: note.to_string(),
        approved_at_ms: inland_files::now_ms(),
    };
    if approval_of(domain, sha256)?.is_some() {
        return Err(Error::Exists(format!("component approval `{sha256}`")));
    }
    let event = Event::ComponentApproved {
        sha256: sha256.to_string(),
        by: by.to_string(),
    };
    crate::order::announce(&domain.state, events, event, || {
        domain
            .state
            .insert_new(COMPONENTS, sha256, &approval, "component approval")
    })?;
    Ok(approval)
}

/// The approval of a component, if it has one.
pub(crate) fn approval(domain: &Domain, sha256: &str) -> Result<Option<ComponentApproval>> {
    domain.state.get(COMPONENTS, sha256)
}

/// Withdraws a component's approval: grants that require approval run it
/// no more (admission checks on every job); records who withdrew it and why.
pub(crate) fn revoke(domain: &Domain, events: &dyn EventSink, sha256: &str, by: &str, note: &str) -> Result<()> {
    check_hash(sha256)?;
    if approval_of(domain, sha256)?.is_none() {
        return Err(Error::NotFound(format!("an approval of component {sha256}")));
    }
    let event = Event::ComponentApprovalRevoked {
        sha256: sha256.to_string(),
        by: by.to_string(),
        note: note.to_string(),
    };
    crate::order::announce(&domain.state, events, event, || {
        match domain.state.remove(COMPONENTS, sha256)? {
            true => Ok(()),
            false => Err(Error::NotFound(format!("an approval of component {sha256}"))),
        }
    })
}

fn approval_of(domain: &Domain, sha256: &str) -> Result<Option<ComponentApproval>> {
    domain.state.get(COMPONENTS, sha256)
}
