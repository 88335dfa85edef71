//! Charging `dp` queries to their grant's budget. The cost of a query is
//! known when it is planned; it is checked and charged before the query runs,
//! in one write transaction of the state store (transactions never
//! interleave, so racing jobs cannot both spend the last part), with its
//! ledger event appended inside that transaction before it commits. A query
//! the budget cannot cover is refused and spends nothing.

use crate::error::{Error, Result};
use crate::events::{Event, EventRecord, EventSink};
use crate::governance::operators::Grant;
use crate::privacy::{BudgetView, DISPLAY_DELTA, DpBudget};
use crate::state::{PRIVACY_SPENT, State};
use inland_query::PrivacyCost;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a grant has spent, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Spent {
    /// ρ spent over all datasets.
    pub(crate) rho: f64,
    /// ρ spent per dataset.
    pub(crate) datasets: BTreeMap<String, f64>,
    /// Queries charged.
    pub(crate) queries: u64,
    /// δ added by the queries' choice of groups.
    #[serde(default)]
    pub(crate) delta: f64,
}

/// Why a charge was not made.
enum Declined {
    /// The budget cannot cover it: said to the job.
    Exhausted(String),
    /// The ledger failed: nothing was written.
    Ledger(Error),
}

/// A slack for adding up floating-point costs: a budget of 1.0 spent in ten
/// charges of 0.1 is spent, not short by one ulp.
const SLACK: f64 = 1e-9;

/// Charges `cost` to the grant (and its datasets with budgets), recording
/// `privacy_charged` in the ledger in the same transaction; or says why not.
pub(crate) fn charge(
    state: &State,
    events: &dyn EventSink,
    grant: &Grant,
    budget: &DpBudget,
    job_id: &str,
    cost: &PrivacyCost,
) -> Result<std::result::Result<(), String>> {
    // The event is appended inside the transaction, before it commits.
    let _changing = state.changing();
    let outcome = state.update(PRIVACY_SPENT, &grant.id, |old: Option<Spent>| {
        let mut spent = old.unwrap_or_default();
        let left = budget.budget_rho - spent.rho;
        if cost.rho > left + SLACK {
            return Err(Declined::Exhausted(format!(
                "privacy budget: this query costs ρ = {}, and grant `{}` has ρ = {:.6} left of {}",
                cost.rho,
                grant.id,
                left.max(0.0),
                budget.budget_rho
            )));
        }
        for d in &cost.datasets {
            if let Some(limit) = budget.datasets.get(d) {
                let used = spent.datasets.get(d).copied().unwrap_or(0.0);
                if cost.rho > limit - used + SLACK {
                    return Err(Declined::Exhausted(format!(
                        "privacy budget: this query costs ρ = {}, and dataset `{d}` has ρ = {:.6} left of {limit} \
                         under grant `{}`",
                        cost.rho,
                        (limit - used).max(0.0),
                        grant.id
                    )));
                }
            }
        }
        spent.rho += cost.rho;
        spent.queries += 1;
        spent.delta += cost.delta;
        for d in &cost.datasets {
            *spent.datasets.entry(d.clone()).or_default() += cost.rho;
        }
        events
            .record(Event::PrivacyCharged {
                job_id: job_id.to_string(),
                grant: grant.id.clone(),
                rho: cost.rho,
                datasets: cost.datasets.clone(),
                spent_rho: spent.rho,
                delta: cost.delta,
            })
            .map_err(Declined::Ledger)?;
        Ok(spent)
    })?;
    match outcome {
        Ok(()) => Ok(Ok(())),
        Err(Declined::Exhausted(why)) => Ok(Err(why)),
        Err(Declined::Ledger(e)) => Err(e),
    }
}

/// A `dp` grant's budget, spent and left.
pub(crate) fn view(state: &State, grant: &Grant, budget: &DpBudget) -> Result<BudgetView> {
    let spent: Spent = state.get(PRIVACY_SPENT, &grant.id)?.unwrap_or_default();
    Ok(BudgetView {
        budget_rho: budget.budget_rho,
        spent_rho: spent.rho,
        remaining_rho: (budget.budget_rho - spent.rho).max(0.0),
        query_rho: budget.query_rho,
        queries: spent.queries,
        budget_epsilon: inland_dp::epsilon_of(budget.budget_rho, DISPLAY_DELTA),
        spent_epsilon: if spent.rho > 0.0 {
            inland_dp::epsilon_of(spent.rho, DISPLAY_DELTA)
        } else {
            0.0
        },
        spent_delta: if spent.queries > 0 {
            DISPLAY_DELTA + spent.delta
        } else {
            0.0
        },
        datasets: budget
            .datasets
            .iter()
            .map(|(d, limit)| (d.clone(), (*limit, spent.datasets.get(d).copied().unwrap_or(0.0))))
            .collect(),
    })
}

/// The ρ the ledger shows spent per grant: the sum of its `privacy_charged` events.
pub fn spent_per_grant(entries: &[EventRecord]) -> BTreeMap<String, f64> {
    charged(entries).into_iter().map(|(g, s)| (g, s.rho)).collect()
}

/// What each grant's `privacy_charged` events add up to.
fn charged(entries: &[EventRecord]) -> BTreeMap<String, Spent> {
    let mut out: BTreeMap<String, Spent> = BTreeMap::new();
    for e in entries {
        if let Event::PrivacyCharged {
            grant,
            rho,
            datasets,
            delta,
            ..
        } = &e.event
        {
            let s = out.entry(grant.clone()).or_default();
            s.rho += rho;
            s.queries += 1;
            s.delta += delta;
            for d in datasets {
                *s.datasets.entry(d.clone()).or_default() += rho;
            }
        }
    }
    out
}

/// Adopts the ledger's figure for every grant whose `privacy_charged`
/// events add up to more than the state holds: a charge is appended inside
/// its state transaction before that commits, so a stop between the two
/// leaves the ledger ahead. Returns the grants adjusted.
pub(crate) fn reconcile(state: &State, entries: &[EventRecord]) -> Result<Vec<String>> {
    let mut adjusted = Vec::new();
    for (grant, from_ledger) in charged(entries) {
        let stored: Spent = state.get(PRIVACY_SPENT, &grant)?.unwrap_or_default();
        if from_ledger.queries > stored.queries {
            state.upsert(PRIVACY_SPENT, &grant, &from_ledger)?;
            tracing::warn!(
                grant,
                "a privacy charge recorded in the ledger but not stored was adopted"
            );
            adjusted.push(grant);
        }
    }
    Ok(adjusted)
}
