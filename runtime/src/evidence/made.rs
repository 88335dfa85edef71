//! Whether the change an event announced is in the state (#24): the one
//! predicate that start-up's roll-back and the state check share, so the
//! two never disagree on what a crash left.

use crate::error::Result;
use crate::events::{Event, EventRecord};
use crate::governance::catalog::{DatasetRecord, DatasetStatus};
use crate::governance::components::ComponentApproval;
use crate::governance::operators::{Grant, GrantStatus, Operator};
use crate::governance::policy_store::PolicyVersion;
use crate::jobs::run::JobRecord;
use crate::jobs::sources::SourceRecord;
use crate::release::output::OutputRecord;
use crate::release::review::{ReviewState, Reviewer};
use crate::state::{
    ACCESS_POLICIES, COMPONENTS, DATASETS, FEEDBACK, GRANTS, JOBS, OPERATORS, OUTPUTS, POLICIES, REVIEWERS, SOURCES,
    State, TOKENS,
};
use std::collections::{BTreeMap, BTreeSet};

/// What the ledger says happened: the entries rolled back, and for things
/// whose state a later event overtakes (a status, an approval), which
/// entry is the last that counts.
pub(crate) struct Announcements {
    /// Entries a `not_made` event rolled back.
    pub(crate) rolled_back: BTreeSet<u64>,
    latest: BTreeMap<(&'static str, String), u64>,
}

impl Announcements {
    /// Reads the ledger's entries once.
    pub(crate) fn of(entries: &[EventRecord]) -> Announcements {
        let rolled_back: BTreeSet<u64> = entries
            .iter()
            .filter_map(|e| match &e.event {
                Event::NotMade { entry, .. } => Some(*entry),
                _ => None,
            })
            .collect();
        let mut latest = BTreeMap::new();
        for e in entries.iter().filter(|e| !rolled_back.contains(&e.seq)) {
            if let Some(key) = overtaken_by(&e.event) {
                latest.insert(key, e.seq);
            }
        }
        Announcements { rolled_back, latest }
    }

    /// Whether a later event about the same thing overtook this one: its
    /// own change may then no longer show, and needs no checking (a later
    /// event is appended only after the earlier change was made or rolled back).
    fn overtaken(&self, e: &EventRecord) -> bool {
        overtaken_by(&e.event).is_some_and(|key| self.latest.get(&key).is_some_and(|last| *last != e.seq))
    }
}

/// The thing whose current state an event describes, for those a later
/// event may change again.
fn overtaken_by(event: &Event) -> Option<(&'static str, String)> {
    Some(match event {
        Event::OperatorStatusChanged { name, .. } => ("operator status", name.clone()),
        Event::ComponentApproved { sha256, .. } | Event::ComponentApprovalRevoked { sha256, .. } => {
            ("component", sha256.clone())
        }
        Event::ReviewDecided { output_id, .. } => ("review", output_id.clone()),
        Event::MasterKeyRotated { .. } => ("master key", String::new()),
        _ => return None,
    })
}

/// Whether the change `e` announced is in the state: `None` for an event
/// that announces no change of its own (a query, a note, a job's admission:
/// a job is closed by its own rule), or one that was rolled back or overtaken.
pub(crate) fn made(
    state: &State,
    master_tag: &dyn Fn() -> Result<String>,
    seen: &Announcements,
    e: &EventRecord,
) -> Result<Option<bool>> {
    if seen.rolled_back.contains(&e.seq) || seen.overtaken(e) {
        return Ok(None);
    }
    let output = |id: &str| state.get::<OutputRecord>(OUTPUTS, id);
    Ok(Some(match &e.event {
        Event::DatasetRegistered { name, sha256, .. } | Event::DatasetProposed { name, sha256, .. } => state
            .get::<DatasetRecord>(DATASETS, name)?
            .is_some_and(|d| d.sha256 == *sha256),
        Event::DatasetApproved { name, .. } => state
            .get::<DatasetRecord>(DATASETS, name)?
            .is_some_and(|d| d.status == DatasetStatus::Approved),
        Event::OperatorRegistered { name, .. } => state.get::<Operator>(OPERATORS, name)?.is_some(),
        Event::OperatorStatusChanged { name, status, .. } => state
            .get::<Operator>(OPERATORS, name)?
            .is_some_and(|o| o.status.as_str() == status),
        Event::GrantIssued { grant, .. } => state.get::<Grant>(GRANTS, grant)?.is_some(),
        Event::GrantTerminating { grant, .. } => state
            .get::<Grant>(GRANTS, grant)?
            .is_some_and(|g| g.status == GrantStatus::Terminated),
        Event::FeedbackAdded { id, .. } => state.get::<serde_json::Value>(FEEDBACK, id)?.is_some(),
        Event::PolicyApplied { version, sha256 } => state
            .get::<PolicyVersion>(POLICIES, &format!("v{version:08}"))?
            .is_some_and(|p| p.sha256 == *sha256),
        Event::JobRefused { job_id, .. } | Event::JobFinished { job_id, .. } => {
            state.get::<serde_json::Value>(JOBS, job_id)?.is_some()
        }
        Event::OutputEmitted { output_id, .. } => output(output_id)?.is_some(),
        Event::ReviewVoted {
            output_id, reviewer, ..
        } => output(output_id)?.is_some_and(|o| {
            o.destroyed
                || o.review
                    .is_some_and(|r| r.votes.iter().any(|v| v.reviewer == *reviewer))
        }),
        Event::ReviewDecided {
            output_id, state: s, ..
        } => output(output_id)?.is_some_and(|o| {
            o.destroyed
                || o.review
                    .is_some_and(|r| r.state.to_string() == *s || (r.state == ReviewState::Released && s == "approved"))
        }),
        Event::OutputExported {
            output_id,
            manifest_sha256,
            ..
        } => output(output_id)?
            .is_some_and(|o| o.destroyed || o.exports.iter().any(|x| x.manifest_sha256 == *manifest_sha256)),
        Event::ReviewerAdded { name, .. } => state.get::<Reviewer>(REVIEWERS, name)?.is_some(),
        Event::TokenIssued { id, .. } => state.get::<serde_json::Value>(TOKENS, id)?.is_some(),
        Event::TokenRevoked { id } => state
            .get::<crate::access::TokenRecord>(TOKENS, id)?
            .is_some_and(|t| t.revoked_at_ms.is_some()),
        Event::ComponentApproved { sha256, .. } => state.get::<ComponentApproval>(COMPONENTS, sha256)?.is_some(),
        Event::ComponentApprovalRevoked { sha256, .. } => state.get::<ComponentApproval>(COMPONENTS, sha256)?.is_none(),
        Event::AccessPolicySet { version, .. } => state
            .get::<serde_json::Value>(ACCESS_POLICIES, &format!("{version:020}"))?
            .is_some(),
        Event::SourceSubmitted {
            sha256, organization, ..
        } => state
            .get::<SourceRecord>(SOURCES, sha256)?
            .is_some_and(|s| s.organizations.iter().any(|o| o == organization)),
        Event::MasterKeyRotated { key_tag, .. } => master_tag()? == *key_tag,
        _ => return Ok(None),
    }))
}

/// Whether a job record exists, for the job rule.
pub(crate) fn job_recorded(state: &State, id: &str) -> Result<bool> {
    Ok(state.get::<JobRecord>(JOBS, id)?.is_some())
}
