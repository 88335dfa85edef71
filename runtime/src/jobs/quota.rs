//! Per-grant job quotas. Whether a job succeeded is one bit that depends on
//! the data and reaches its operator; a quota bounds how many such bits a
//! grant can collect, per day and over its term.

use crate::date::Date;
use crate::error::Result;
use crate::governance::operators::Grant;
use crate::quota::JobQuota;
use crate::state::{QUOTA_USE, State};
use serde::{Deserialize, Serialize};

/// Jobs a grant has run so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Used {
    /// The day `today` counts.
    day: String,
    today: u32,
    term: u32,
}

/// Why the grant may run no more jobs now, if its quota is spent.
fn exhausted(grant: &Grant, quota: JobQuota, used: &Used, day: &str) -> Option<String> {
    let today = if used.day == day { used.today } else { 0 };
    if let Some(limit) = quota.per_term
        && used.term >= limit
    {
        return Some(format!(
            "quota: grant `{}` has run all {limit} jobs of its term",
            grant.id
        ));
    }
    if let Some(limit) = quota.per_day
        && today >= limit
    {
        return Some(format!(
            "quota: grant `{}` has run its {limit} jobs for {day} (UTC); it may run more tomorrow",
            grant.id
        ));
    }
    None
}

/// Whether the grant's quota is spent, without counting anything: the
/// server refuses a submission before it queues the job.
pub(crate) fn spent(state: &State, grant: &Grant, today: Date) -> Result<Option<String>> {
    if grant.quota.is_unlimited() {
        return Ok(None);
    }
    let used: Used = state.get(QUOTA_USE, &grant.id)?.unwrap_or_default();
    Ok(exhausted(grant, grant.quota, &used, &today.to_string()))
}

/// Counts one more job against the grant's quota, or says why it may not
/// run. The count is taken when the job is admitted, refused jobs do not
/// count, and the reason names only the quota (nothing about data).
pub(crate) fn take(state: &State, grant: &Grant, today: Date) -> Result<std::result::Result<(), String>> {
    if grant.quota.is_unlimited() {
        return Ok(Ok(()));
    }
    let day = today.to_string();
    let quota = grant.quota;
    state.update(QUOTA_USE, &grant.id, |used: Option<Used>| {
        let mut used = used.unwrap_or_default();
        if let Some(why) = exhausted(grant, quota, &used, &day) {
            return Err(why);
        }
        if used.day != day {
            used.day = day.clone();
            used.today = 0;
        }
        used.today += 1;
        used.term += 1;
        Ok(used)
    })
}
