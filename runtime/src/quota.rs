//! The job quota a grant sets: how many jobs it may run. Counted in
//! `jobs::quota`; kept here, apart, because grants and events name it.

use serde::{Deserialize, Serialize};

/// How many jobs a grant may run (none: no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobQuota {
    /// Jobs per calendar day (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
    /// Jobs over the whole term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_term: Option<u32>,
}

impl JobQuota {
    /// Whether the quota sets no limit.
    pub fn is_unlimited(&self) -> bool {
        self.per_day.is_none() && self.per_term.is_none()
    }
}
