//! Versions of the server's access policy. The server validates a policy
//! against its schema before it comes here; the domain keeps every version
//! with its hash, and the ledger records each change, so an auditor can tell
//! which rules decided a request at any time.

use super::Access;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::state::ACCESS_POLICIES;
use serde::{Deserialize, Serialize};

/// One version of the access policy, as an admin set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessPolicyVersion {
    /// 1 for the first policy an admin set; the shipped default has none.
    pub version: u64,
    /// SHA-256 of the text, as recorded in the ledger.
    pub sha256: String,
    /// The Cedar policy text.
    pub text: String,
    /// The admin who set it.
    pub set_by: String,
    /// When (ms since the Unix epoch).
    pub set_at_ms: u64,
}

/// Policies larger than this are refused: a policy is read on every start.
pub const MAX_POLICY_BYTES: usize = 256 << 10;

fn key(version: u64) -> String {
    format!("{version:020}")
}

impl Access {
    /// The policy in force, if an admin ever set one (else the shipped default applies).
    pub fn access_policy(&self) -> Result<Option<AccessPolicyVersion>> {
        Ok(self.access_policy_versions()?.pop())
    }

    /// Every version, oldest first.
    pub fn access_policy_versions(&self) -> Result<Vec<AccessPolicyVersion>> {
        self.inner.domain.state.list(ACCESS_POLICIES)
    }

    /// Keeps `text` as the next version and records the change. The caller
    /// (the server) has validated it; this only refuses what cannot be kept.
    pub fn set_access_policy(&self, text: &str, by: &str) -> Result<AccessPolicyVersion> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(Error::Invalid(format!(
                "the access policy is {} bytes; at most {MAX_POLICY_BYTES} are kept",
                text.len()
            )));
        }
        let version = self.access_policy()?.map_or(1, |v| v.version + 1);
        let record = AccessPolicyVersion {
            version,
            sha256: inland_files::sha256_hex(text.as_bytes()),
            text: text.to_string(),
            set_by: by.to_string(),
            set_at_ms: inland_files::now_ms(),
        };
        let event = Event::AccessPolicySet {
            version,
            sha256: record.sha256.clone(),
            by: by.to_string(),
        };
        let state = &self.inner.domain.state;
        crate::order::announce(state, self.inner.events.as_ref(), event, || {
            state.insert_new(ACCESS_POLICIES, &key(version), &record, "access policy version")
        })?;
        self.inner.checkpoint()?;
        tracing::info!(version, "access policy replaced");
        Ok(record)
    }
}
