//! `GET /api/whoami`: who the token proves.

use crate::auth::Caller;
use crate::authz::{Action, Resource};
use crate::problem::Problem;
use crate::state::Shared;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The caller, as its token proves it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// The token's id.
    pub token_id: String,
    /// admin, operator, reviewer or auditor.
    pub role: String,
    /// The person's name.
    pub name: String,
    /// Operators: their organization; reviewers: the one they work for.
    pub organization: Option<String>,
}

/// Who the presented token proves.
#[utoipa::path(get, path = "/api/whoami", tag = "access",
    responses(
        (status = 200, description = "The caller", body = WhoAmI),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn whoami(State(s): State<Shared>, Caller(who): Caller) -> Result<Json<WhoAmI>, Problem> {
    s.authorize(&who, Action::Whoami, Resource::Domain).await?;
    Ok(Json(WhoAmI {
        token_id: who.token_id,
        role: who.role.to_string(),
        name: who.name,
        organization: who.operator,
    }))
}
