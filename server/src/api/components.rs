//! `/api/components/{sha256}/approval`: admins and reviewers approve a
//! component by hash, so it may run under grants that require approved
//! components (the code that reads the data is known before it does).

use crate::api::json_problem;
use crate::auth::Caller;
use crate::authz::{Action, Resource};
use crate::problem::Problem;
use crate::state::Shared;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why the component is approved.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    /// What was checked (its source, its queries), for the record.
    pub note: String,
}

/// A component's approval.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    /// SHA-256 of the component.
    pub sha256: String,
    /// Who approved it.
    pub approved_by: String,
    /// Why.
    pub note: String,
    /// When (ms since the Unix epoch).
    pub approved_at_ms: u64,
}

impl From<inland_runtime::ComponentApproval> for ApprovalView {
    fn from(a: inland_runtime::ComponentApproval) -> Self {
        ApprovalView {
            sha256: a.sha256,
            approved_by: a.approved_by,
            note: a.note,
            approved_at_ms: a.approved_at_ms,
        }
    }
}

/// Approves a component by the SHA-256 of its bytes (recorded in the ledger).
/// An approval covers the bytes, not the parameters a job passes them: a
/// component that runs SQL or code given as a parameter approves whatever
/// it is given, so approve one only if anything it could be given may run.
#[utoipa::path(post, path = "/api/components/{sha256}/approval", tag = "review",
    params(("sha256" = String, Path, description = "SHA-256 of the component, 64 lowercase hex digits")),
    request_body(content = ApprovalBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Approved", body = ApprovalView),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already approved", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a SHA-256, or no note", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn approve(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(sha256): Path<String>,
    body: Result<Json<ApprovalBody>, JsonRejection>,
) -> Result<(StatusCode, Json<ApprovalView>), Problem> {
    s.authorize(&who, Action::ApproveComponent, Resource::Domain).await?;
    let Json(body) = body.map_err(json_problem)?;
    if body.note.trim().is_empty() {
        return Err(Problem::invalid_body("say in `note` what was checked"));
    }
    let by = who.name.clone();
    let approval = s
        .blocking(move |rt| rt.governance().approve_component(&sha256, &by, &body.note))
        .await?
        .map_err(|e| match e {
            inland_runtime::Error::Invalid(why) => Problem::invalid_body(why),
            inland_runtime::Error::Exists(_) => Problem::conflict("this component is already approved"),
            other => Problem::log_internal(&other),
        })?;
    Ok((StatusCode::CREATED, Json(approval.into())))
}

/// Withdraws a component's approval (recorded in the ledger with the note):
/// grants that require approval run it no more.
#[utoipa::path(delete, path = "/api/components/{sha256}/approval", tag = "review",
    params(("sha256" = String, Path, description = "SHA-256 of the component, 64 lowercase hex digits")),
    request_body(content = ApprovalBody, content_type = "application/json"),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not approved", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a SHA-256, or no note", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn revoke(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(sha256): Path<String>,
    body: Result<Json<ApprovalBody>, JsonRejection>,
) -> Result<StatusCode, Problem> {
    s.authorize(&who, Action::ApproveComponent, Resource::Domain).await?;
    let Json(body) = body.map_err(json_problem)?;
    if body.note.trim().is_empty() {
        return Err(Problem::invalid_body("say in `note` why the approval is withdrawn"));
    }
    let by = who.name.clone();
    s.blocking(move |rt| rt.governance().revoke_component_approval(&sha256, &by, &body.note))
        .await?
        .map_err(|e| match e {
            inland_runtime::Error::Invalid(why) => Problem::invalid_body(why),
            inland_runtime::Error::NotFound(_) => Problem::not_found("approval of this component"),
            other => Problem::log_internal(&other),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
