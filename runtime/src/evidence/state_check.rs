//! The state check (#24, first part): the domain's records and its ledger
//! must tell the same story. Every job, grant, dataset and quarantined
//! output the state holds has the event that announced it, every such event
//! has its record, every admitted job has finished, and every `dp` grant's
//! stored spend is the sum of its ledger charges. A crash between a state
//! change and its evidence shows up here, by id.

use crate::error::Result;
use crate::events::{Event, EventRecord};
use crate::governance::catalog::DatasetRecord;
use crate::governance::operators::Grant;
use crate::jobs::JobRecord;
use crate::jobs::JobStatus;
use crate::release::output::OutputRecord;
use crate::state::{DATASETS, GRANTS, JOBS, OUTPUTS, PRIVACY_SPENT, State};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One disagreement between the state and the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDifference {
    /// job, grant, dataset, output or privacy.
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

/// The ids the ledger announced, by kind of event.
#[derive(Default)]
struct Announced<'a> {
    admitted: BTreeMap<&'a str, u64>,
    refused: BTreeSet<&'a str>,
    finished: BTreeSet<&'a str>,
    grants: BTreeSet<&'a str>,
    datasets: BTreeSet<&'a str>,
    outputs: BTreeSet<&'a str>,
    spent: BTreeMap<String, f64>,
}

fn announced(entries: &[EventRecord]) -> Announced<'_> {
    let mut a = Announced {
        spent: crate::jobs::budget::spent_per_grant(entries),
        ..Default::default()
    };
    for e in entries {
        match &e.event {
            Event::JobAdmitted { job_id, .. } => {
                a.admitted.insert(job_id, e.seq);
            }
            Event::JobRefused { job_id, .. } => {
                a.refused.insert(job_id);
            }
            Event::JobFinished { job_id, .. } => {
                a.finished.insert(job_id);
            }
            Event::GrantIssued { grant, .. } => {
                a.grants.insert(grant);
            }
            Event::DatasetRegistered { name, .. } | Event::DatasetProposed { name, .. } => {
                a.datasets.insert(name);
            }
            Event::OutputEmitted { output_id, .. } => {
                a.outputs.insert(output_id);
            }
            _ => {}
        }
    }
    a
}

/// Compares the state with the ledger's entries.
pub(crate) fn check(state: &State, entries: &[EventRecord]) -> Result<StateCheck> {
    let a = announced(entries);
    let mut c = StateCheck::default();

    let jobs: Vec<JobRecord> = state.list(JOBS)?;
    c.checked.insert("jobs".into(), jobs.len() as u64);
    let recorded: BTreeSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    for j in &jobs {
        let announced = match j.status {
            JobStatus::Refused => a.refused.contains(j.id.as_str()),
            _ => a.admitted.contains_key(j.id.as_str()),
        };
        if !announced {
            c.differ("job", &j.id, "a job record the ledger never announced");
        }
    }
    for (id, seq) in &a.admitted {
        if !recorded.contains(id) {
            c.differ("job", id, format!("admitted (entry {seq}) with no job record"));
        }
        if !a.finished.contains(id) {
            c.differ("job", id, format!("admitted (entry {seq}) and never finished"));
        }
    }

    let grants: Vec<Grant> = state.list(GRANTS)?;
    c.checked.insert("grants".into(), grants.len() as u64);
    let held: BTreeSet<&str> = grants.iter().map(|g| g.id.as_str()).collect();
    for g in &grants {
        if !a.grants.contains(g.id.as_str()) {
            c.differ("grant", &g.id, "a grant the ledger never recorded issuing");
        }
    }
    for id in a.grants.difference(&held) {
        c.differ("grant", id, "issued in the ledger, with no grant record");
    }

    let datasets: Vec<DatasetRecord> = state.list(DATASETS)?;
    c.checked.insert("datasets".into(), datasets.len() as u64);
    let names: BTreeSet<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
    for d in &datasets {
        if !a.datasets.contains(d.name.as_str()) {
            c.differ("dataset", &d.name, "a dataset the ledger never recorded registering");
        }
    }
    for name in a.datasets.difference(&names) {
        c.differ("dataset", name, "registered in the ledger, with no catalog record");
    }

    let outputs: Vec<OutputRecord> = state.list(OUTPUTS)?;
    c.checked.insert("outputs".into(), outputs.len() as u64);
    let kept: BTreeSet<&str> = outputs.iter().map(|o| o.id.as_str()).collect();
    for o in &outputs {
        if !a.outputs.contains(o.id.as_str()) {
            c.differ("output", &o.id, "an output in quarantine the ledger never recorded");
        }
    }
    for id in a.outputs.difference(&kept) {
        c.differ("output", id, "emitted in the ledger, with no output record");
    }

    let spent: Vec<(String, crate::jobs::budget::Spent)> = state.list_prefix(PRIVACY_SPENT, "")?;
    c.checked.insert("privacy budgets".into(), spent.len() as u64);
    let stored: BTreeMap<&str, f64> = spent.iter().map(|(g, s)| (g.as_str(), s.rho)).collect();
    for (grant, rho) in &a.spent {
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
        if !a.spent.contains_key(*grant) && *rho > 0.0 {
            c.differ(
                "privacy",
                grant,
                format!("the state holds ρ = {rho} the ledger never charged"),
            );
        }
    }
    Ok(c)
}
