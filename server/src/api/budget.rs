//! `GET /api/grants/{id}/budget`: a `dp` grant's privacy budget, spent and
//! left, for the operator that holds it, admins and reviewers.

use crate::auth::Caller;
use crate::authz::{Action, Resource};
use crate::problem::Problem;
use crate::state::Shared;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A grant's privacy mode and, for `dp`, its budget.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BudgetAnswer {
    /// The grant.
    pub grant: String,
    /// `exact` or `dp`.
    pub mode: String,
    /// The whole budget (ρ, zCDP); `dp` only.
    pub budget_rho: Option<f64>,
    /// Spent so far (ρ).
    pub spent_rho: Option<f64>,
    /// Left (ρ).
    pub remaining_rho: Option<f64>,
    /// What each query over protected data costs (ρ).
    pub query_rho: Option<f64>,
    /// Queries charged.
    pub queries: Option<u64>,
    /// The whole budget as ε at δ = 1e-6.
    pub budget_epsilon: Option<f64>,
    /// What was spent as ε at δ = 1e-6.
    pub spent_epsilon: Option<f64>,
    /// The δ of the spent (ε, δ): 1e-6 plus what thresholded groups added.
    pub spent_delta: Option<f64>,
    /// Datasets with budgets of their own: [budget, spent] (ρ).
    #[serde(default)]
    pub datasets: BTreeMap<String, (f64, f64)>,
}

/// The grant's privacy budget. An unknown grant answers as one that is not
/// the caller's (403), so ids cannot be probed.
#[utoipa::path(get, path = "/api/grants/{id}/budget", tag = "jobs",
    params(("id" = String, Path, description = "Grant id")),
    responses(
        (status = 200, description = "The grant's mode and budget", body = BudgetAnswer),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (or no such grant)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such grant (told only to roles allowed every grant)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn budget(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<BudgetAnswer>, Problem> {
    let resource = super::grant_resource(&s, &id).await?;
    let known = matches!(
        &resource,
        Resource::Grant {
            organization: Some(_),
            ..
        }
    );
    s.authorize(&who, Action::ViewBudget, resource).await?;
    if !known {
        return Err(Problem::not_found("grant"));
    }
    let g = id.clone();
    let view = s
        .blocking(move |rt| rt.jobs().privacy_budget(&g))
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    Ok(Json(match view {
        None => BudgetAnswer {
            grant: id,
            mode: "exact".into(),
            budget_rho: None,
            spent_rho: None,
            remaining_rho: None,
            query_rho: None,
            queries: None,
            budget_epsilon: None,
            spent_epsilon: None,
            spent_delta: None,
            datasets: BTreeMap::new(),
        },
        Some(b) => BudgetAnswer {
            grant: id,
            mode: "dp".into(),
            budget_rho: Some(b.budget_rho),
            spent_rho: Some(b.spent_rho),
            remaining_rho: Some(b.remaining_rho),
            query_rho: Some(b.query_rho),
            queries: Some(b.queries),
            budget_epsilon: Some(b.budget_epsilon),
            spent_epsilon: Some(b.spent_epsilon),
            spent_delta: Some(b.spent_delta),
            datasets: b.datasets,
        },
    }))
}
