//! A grant's privacy mode: `exact` (suppression, checks and review) or `dp`,
//! where every aggregate over protected data reaches the job with noise and
//! each query spends part of a budget fixed when the grant is issued.
//!
//! Accounting is in ρ-zCDP (Bun and Steinke 2016): the discrete Gaussian
//! noise of a release costs ρ exactly, costs add up, and the total is shown
//! to people as (ε, δ)-DP at δ = [`DISPLAY_DELTA`]. Summing pure ε would
//! overstate the loss of many small queries; zCDP composes as tightly as the
//! Gaussian allows and converts to (ε, δ) at the end.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The δ at which a ρ is shown as (ε, δ).
pub const DISPLAY_DELTA: f64 = 1e-6;

/// How a grant's jobs see protected data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Privacy {
    /// Exact aggregates, small groups suppressed, the gate's checks, review.
    #[default]
    Exact,
    /// Noisy aggregates under a budget.
    Dp(DpBudget),
}

/// The privacy budget of a `dp` grant, in ρ (zCDP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DpBudget {
    /// The whole budget over the grant's term.
    pub budget_rho: f64,
    /// What each query over protected data costs.
    pub query_rho: f64,
    /// Budgets of single datasets, within the whole (optional).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub datasets: BTreeMap<String, f64>,
}

impl Privacy {
    /// Whether the grant is in the `exact` mode.
    pub fn is_exact(&self) -> bool {
        matches!(self, Privacy::Exact)
    }

    /// The budget, for a `dp` grant.
    pub fn budget(&self) -> Option<&DpBudget> {
        match self {
            Privacy::Exact => None,
            Privacy::Dp(b) => Some(b),
        }
    }

    /// Checks a mode before a grant over `datasets` is issued with it.
    pub(crate) fn validate(&self, datasets: &[String]) -> Result<()> {
        let Privacy::Dp(b) = self else { return Ok(()) };
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !positive(b.budget_rho) || !positive(b.query_rho) {
            return Err(Error::Invalid(
                "a dp grant's budget and per-query cost are positive numbers (ρ, zCDP)".into(),
            ));
        }
        if b.query_rho > b.budget_rho {
            return Err(Error::Invalid(format!(
                "one query (ρ = {}) would cost more than the whole budget (ρ = {})",
                b.query_rho, b.budget_rho
            )));
        }
        for (name, rho) in &b.datasets {
            if !datasets.contains(name) {
                return Err(Error::Invalid(format!(
                    "the dataset budget names `{name}`, which the grant does not cover"
                )));
            }
            if !positive(*rho) || *rho > b.budget_rho {
                return Err(Error::Invalid(format!(
                    "the budget of dataset `{name}` is a positive ρ no larger than the grant's"
                )));
            }
        }
        Ok(())
    }
}

/// A `dp` grant's budget as people read it: spent and left, in ρ and as ε.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetView {
    /// The whole budget, ρ.
    pub budget_rho: f64,
    /// Spent so far, ρ.
    pub spent_rho: f64,
    /// Left, ρ.
    pub remaining_rho: f64,
    /// What each query costs, ρ.
    pub query_rho: f64,
    /// Queries charged so far.
    pub queries: u64,
    /// The whole budget as ε at δ = 1e-6.
    pub budget_epsilon: f64,
    /// What was spent as ε at δ = 1e-6.
    pub spent_epsilon: f64,
    /// The δ of that (ε, δ): 1e-6 for the conversion, plus what choosing
    /// groups by a threshold added.
    pub spent_delta: f64,
    /// Per dataset with a budget of its own: (budget, spent), ρ.
    pub datasets: BTreeMap<String, (f64, f64)>,
}
