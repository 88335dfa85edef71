//! The state check (#24): the domain's records and its ledger must tell
//! the same story. Every change an event announced is in the state (or was
//! rolled back by a `not_made`), every record has the event that announced
//! it, every admitted job that is not running has finished and is recorded,
//! and every `dp` grant's stored spend is the sum of its ledger charges. A
//! crash between a state change and its evidence, or an edit of either
//! side, shows up here by id.

use crate::context::Inner;
use crate::error::Result;
use crate::events::{Event, EventRecord};
use crate::evidence::made::{self, Announcements};
use crate::governance::catalog::{DatasetRecord, DatasetStatus};
use crate::governance::components::ComponentApproval;
use crate::governance::operators::{Grant, GrantStatus, Operator};
use crate::governance::policy_store::PolicyVersion;
use crate::jobs::run::{JobRecord, JobStatus};
use crate::jobs::sources::SourceRecord;
use crate::release::output::OutputRecord;
use crate::release::review::Reviewer;
use crate::state::{
    ACCESS_POLICIES, COMPONENTS, DATASETS, FEEDBACK, GRANTS, JOBS, OPERATORS, OUTPUTS, POLICIES, PRIVACY_SPENT,
    REVIEWERS, SOURCES, State, TOKENS,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One disagreement between the state and the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDifference {
    /// What kind of record: job, grant, dataset, output, privacy, …
    pub kind: String,
    /// The record's id.
    pub id: String,
    /// What disagrees.
    pub problem: String,
}

/// The result of comparing the state with the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCheck {
    /// Records compared, by kind.
    pub checked: BTreeMap<String, u64>,
    /// Ledger entries read.
    #[serde(default)]
    pub entries: u64,
    /// Every disagreement found.
    pub differences: Vec<StateDifference>,
}

impl StateCheck {
    /// Whether the state and the ledger agree.
    pub fn clean(&self) -> bool {
        self.differences.is_empty()
    }

    fn differ(&mut self, kind: &str, id: &str, problem: impl Into<String>) {
        self.differences.push(StateDifference {
            kind: kind.into(),
            id: id.into(),
            problem: problem.into(),
        });
    }
}

/// The record an event announces, as (kind, id): the kinds name the
/// state's records in differences.
fn subject(event: &Event) -> Option<(&'static str, String)> {
    Some(match event {
        Event::DatasetRegistered { name, .. } | Event::DatasetProposed { name, .. } => ("dataset", name.clone()),
        Event::DatasetApproved { name, .. } => ("dataset approval", name.clone()),
        Event::OperatorRegistered { name, .. } => ("operator", name.clone()),
        Event::OperatorStatusChanged { name, .. } => ("operator status", name.clone()),
        Event::GrantIssued { grant, .. } => ("grant", grant.clone()),
        Event::GrantTerminating { grant, .. } | Event::GrantTerminated { grant, .. } => {
            ("grant termination", grant.clone())
        }
        Event::FeedbackAdded { id, .. } => ("feedback", id.clone()),
        Event::PolicyApplied { version, .. } => ("policy", format!("v{version:08}")),
        Event::JobAdmitted { job_id, .. } => ("job admission", job_id.clone()),
        Event::JobRefused { job_id, .. } => ("job refusal", job_id.clone()),
        Event::JobFinished { job_id, .. } => ("job end", job_id.clone()),
        Event::OutputEmitted { output_id, .. } => ("output", output_id.clone()),
        Event::ReviewVoted {
            output_id, reviewer, ..
        } => ("vote", format!("{output_id} by {reviewer}")),
        Event::ReviewDecided { output_id, .. } => ("review decision", output_id.clone()),
        Event::OutputExported {
            output_id,
            manifest_sha256,
            ..
        } => ("export", format!("{output_id} manifest {manifest_sha256}")),
        Event::ReviewerAdded { name, .. } => ("reviewer", name.clone()),
        Event::TokenIssued { id, .. } => ("token", id.clone()),
        Event::TokenRevoked { id } => ("token revocation", id.clone()),
        Event::ComponentApproved { sha256, .. } => ("component approval", sha256.clone()),
        Event::ComponentApprovalRevoked { sha256, .. } => ("component approval", sha256.clone()),
        Event::AccessPolicySet { version, .. } => ("access policy", format!("{version:020}")),
        Event::SourceSubmitted {
            sha256, organization, ..
        } => ("source", format!("{sha256} of {organization}")),
        Event::MasterKeyRotated { .. } => ("master key", String::new()),
        _ => return None,
    })
}

/// Compares the state with the ledger's entries, skipping the jobs running
/// now. Holds the state's change guard, so no change is caught half made.
pub(crate) fn check(inner: &Inner, entries_of: impl FnOnce() -> Result<Vec<EventRecord>>) -> Result<StateCheck> {
    let state = &inner.domain.state;
    let _quiet = state.changing();
    let entries = entries_of()?;
    let running: BTreeSet<String> = inner.running()?.keys().cloned().collect();
    let seen = Announcements::of(&entries);
    let tag = || inner.keys.master_tag();
    let mut c = StateCheck {
        entries: entries.len() as u64,
        ..Default::default()
    };

    // Ledger → state: every change announced and not rolled back is made.
    let mut announced: BTreeSet<(&'static str, String)> = BTreeSet::new();
    let mut admitted: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &entries {
        if seen.rolled_back.contains(&e.seq) {
            continue;
        }
        if let Some(s) = subject(&e.event) {
            announced.insert(s);
        }
        if let Event::JobAdmitted { job_id, .. } = &e.event {
            admitted.insert(job_id, e.seq);
        }
        if made::made(state, &tag, &seen, e)? == Some(false)
            && let Some((kind, id)) = subject(&e.event)
        {
            c.differ(kind, &id, format!("announced at entry {} and not in the state", e.seq));
        }
    }
    for (id, seq) in &admitted {
        if !running.contains(*id) && !made::job_recorded(state, id)? {
            c.differ(
                "job",
                id,
                format!("admitted (entry {seq}), not running, and never recorded"),
            );
        }
    }
    let has = |kind: &'static str, id: &str| announced.contains(&(kind, id.to_string()));

    // State → ledger: every record has the event that announced it.
    let jobs: Vec<JobRecord> = state.list(JOBS)?;
    c.checked.insert("jobs".into(), jobs.len() as u64);
    for j in &jobs {
        let (kind, problem) = match j.status {
            JobStatus::Refused => ("job refusal", "a refused job the ledger never recorded refusing"),
            _ if !has("job admission", &j.id) => ("job admission", "a job record the ledger never admitted"),
            _ => ("job end", "a job record whose end the ledger never recorded"),
        };
        if !has(kind, &j.id) {
            c.differ("job", &j.id, problem);
        }
    }
    let grants: Vec<Grant> = state.list(GRANTS)?;
    c.checked.insert("grants".into(), grants.len() as u64);
    for g in &grants {
        if !has("grant", &g.id) {
            c.differ("grant", &g.id, "a grant the ledger never recorded issuing");
        }
        if g.status == GrantStatus::Terminated && !has("grant termination", &g.id) {
            c.differ("grant", &g.id, "terminated, and the ledger never recorded it");
        }
    }
    let datasets: Vec<DatasetRecord> = state.list(DATASETS)?;
    c.checked.insert("datasets".into(), datasets.len() as u64);
    for d in &datasets {
        if !has("dataset", &d.name) {
            c.differ("dataset", &d.name, "a dataset the ledger never recorded registering");
        }
        // A proposed dataset becomes visible to jobs only by an approval.
        if d.owner.is_some() && d.status == DatasetStatus::Approved && !has("dataset approval", &d.name) {
            c.differ(
                "dataset",
                &d.name,
                "approved, and the ledger never recorded the approval",
            );
        }
    }
    let outputs: Vec<OutputRecord> = state.list(OUTPUTS)?;
    c.checked.insert("outputs".into(), outputs.len() as u64);
    for o in &outputs {
        if !has("output", &o.id) {
            c.differ("output", &o.id, "an output in quarantine the ledger never recorded");
        }
        if o.release.is_some() && !has("review decision", &o.id) {
            c.differ("output", &o.id, "released, and the ledger never recorded the decision");
        }
        for x in &o.exports {
            if !has("export", &format!("{} manifest {}", o.id, x.manifest_sha256)) {
                c.differ("export", &o.id, "an export the ledger never recorded");
            }
        }
    }
    let simple = |kind: &'static str, label: &str, ids: Vec<String>, c: &mut StateCheck| {
        c.checked.insert(label.into(), ids.len() as u64);
        for id in ids {
            if !has(kind, &id) {
                c.differ(kind, &id, format!("a {kind} the ledger never recorded"));
            }
        }
    };
    let names = |v: Vec<Operator>| v.into_iter().map(|o| o.name).collect();
    simple("operator", "operators", names(state.list(OPERATORS)?), &mut c);
    let reviewers: Vec<Reviewer> = state.list(REVIEWERS)?;
    simple(
        "reviewer",
        "reviewers",
        reviewers.into_iter().map(|r| r.name).collect(),
        &mut c,
    );
    let tokens: Vec<(String, serde_json::Value)> = state.list_prefix(TOKENS, "")?;
    simple("token", "tokens", tokens.into_iter().map(|(k, _)| k).collect(), &mut c);
    let feedback: Vec<(String, serde_json::Value)> = state.list_prefix(FEEDBACK, "")?;
    simple(
        "feedback",
        "feedback",
        feedback.into_iter().map(|(k, _)| k).collect(),
        &mut c,
    );
    let policies: Vec<(String, PolicyVersion)> = state.list_prefix(POLICIES, "v")?;
    simple(
        "policy",
        "policy versions",
        policies.into_iter().map(|(k, _)| k).collect(),
        &mut c,
    );
    let access: Vec<(String, serde_json::Value)> = state.list_prefix(ACCESS_POLICIES, "")?;
    simple(
        "access policy",
        "access policy versions",
        access.into_iter().map(|(k, _)| k).collect(),
        &mut c,
    );
    let components: Vec<ComponentApproval> = state.list(COMPONENTS)?;
    simple(
        "component approval",
        "component approvals",
        components.into_iter().map(|a| a.sha256).collect(),
        &mut c,
    );
    let sources: Vec<SourceRecord> = state.list(SOURCES)?;
    let pairs = sources
        .into_iter()
        .flat_map(|s| {
            let sha = s.sha256;
            s.organizations.into_iter().map(move |o| format!("{sha} of {o}"))
        })
        .collect();
    simple("source", "sources", pairs, &mut c);

    privacy(state, &entries, &mut c)?;
    Ok(c)
}

/// Each `dp` grant's stored spend against its ledger charges.
fn privacy(state: &State, entries: &[EventRecord], c: &mut StateCheck) -> Result<()> {
    let charged = crate::jobs::budget::spent_per_grant(entries);
    let spent: Vec<(String, crate::jobs::budget::Spent)> = state.list_prefix(PRIVACY_SPENT, "")?;
    c.checked.insert("privacy budgets".into(), spent.len() as u64);
    let stored: BTreeMap<&str, f64> = spent.iter().map(|(g, s)| (g.as_str(), s.rho)).collect();
    for (grant, rho) in &charged {
        let have = stored.get(grant.as_str()).copied().unwrap_or(0.0);
        if (have - rho).abs() > 1e-9 {
            c.differ(
                "privacy",
                grant,
                format!("the ledger charges ρ = {rho}, the state holds ρ = {have}"),
            );
        }
    }
    for (grant, rho) in &stored {
        if !charged.contains_key(*grant) && *rho > 0.0 {
            c.differ(
                "privacy",
                grant,
                format!("the state holds ρ = {rho} the ledger never charged"),
            );
        }
    }
    Ok(())
}
