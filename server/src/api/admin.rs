//! `/api/admin/…`: what admins manage — the access policy (replaced only by
//! a version that validates, every version kept and recorded), bearer
//! tokens, and the lists of datasets, operators and grants.

use crate::api::json_problem;
use crate::api::word;
use crate::auth::Caller;
use crate::authz::{AccessPolicy, Action, DEFAULT_POLICY, Resource};
use crate::problem::Problem;
use crate::state::Shared;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use inland_runtime::{Role, TokenRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The access policy in force.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccessPolicyView {
    /// 0 for the shipped default; each replacement adds one.
    pub version: u64,
    /// SHA-256 of the text (as the ledger records it).
    pub sha256: String,
    /// The Cedar policy text; the invariants apply beside it.
    pub text: String,
    /// The admin who set it (none for the default).
    pub set_by: Option<String>,
}

/// Problems an admin can act on.
fn invalid_policy(detail: String) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-access-policy",
        "The access policy does not validate",
        detail,
    )
}

/// The access policy in force.
#[utoipa::path(get, path = "/api/admin/access-policy", tag = "admin",
    responses(
        (status = 200, description = "The policy in force", body = AccessPolicyView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn access_policy(
    State(s): State<Shared>,
    Caller(who): Caller,
) -> Result<Json<AccessPolicyView>, Problem> {
    s.authorize(&who, Action::ManageAccessPolicy, Resource::Domain).await?;
    let stored = s
        .blocking(|rt| rt.access().access_policy())
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    Ok(Json(match stored {
        Some(v) => AccessPolicyView {
            version: v.version,
            sha256: v.sha256,
            text: v.text,
            set_by: Some(v.set_by),
        },
        None => AccessPolicyView {
            version: 0,
            sha256: sha256_hex(DEFAULT_POLICY),
            text: DEFAULT_POLICY.to_string(),
            set_by: None,
        },
    }))
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Replaces the access policy. The text (`text/plain`, Cedar) must parse and
/// validate against the schema; a policy under which the admin setting it
/// could not manage the policy again is refused, so no one locks the domain
/// out. The invariants (operators never read quarantine, no one votes on
/// their own request or for their own organization) apply whatever it says.
#[utoipa::path(put, path = "/api/admin/access-policy", tag = "admin",
    request_body(content = String, content_type = "text/plain", description = "The Cedar policy set"),
    responses(
        (status = 200, description = "The new policy is in force", body = AccessPolicyView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another admin replaced the policy at the same time", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not text/plain", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Does not parse or validate, or would lock the admin out", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn set_access_policy(
    State(s): State<Shared>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AccessPolicyView>, Problem> {
    s.authorize(&who, Action::ManageAccessPolicy, Resource::Domain).await?;
    let plain = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim() == "text/plain"));
    if !plain {
        return Err(Problem::unsupported_media_type("text/plain"));
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::too_large(crate::JSON_LIMIT as u64)
        } else {
            Problem::bad_request(e.body_text())
        }
    })?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| Problem::bad_request("the policy is not UTF-8 text"))?;
    let policy = AccessPolicy::new(&text).map_err(|e| invalid_policy(e.to_string()))?;
    if !policy
        .allows(&who, Action::ManageAccessPolicy, &Resource::Domain)
        .map_err(|e| Problem::log_internal(&e))?
    {
        return Err(invalid_policy(
            "under this policy you could not manage the access policy again: no admin could undo it".into(),
        ));
    }
    let by = who.name.clone();
    let _one_at_a_time = s.policy_change.lock().await;
    let stored = s
        .blocking(move |rt| rt.access().set_access_policy(&text, &by))
        .await?
        .map_err(|e| match e {
            inland_runtime::Error::Exists(_) => {
                Problem::conflict("another admin replaced the policy at the same time; read it and try again")
            }
            inland_runtime::Error::Invalid(why) => invalid_policy(why),
            other => Problem::log_internal(&other),
        })?;
    s.set_policy(stored.version, policy);
    Ok(Json(AccessPolicyView {
        version: stored.version,
        sha256: stored.sha256,
        text: stored.text,
        set_by: Some(stored.set_by),
    }))
}

/// A bearer token as the domain keeps it: never the secret, nor its hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// The token's id.
    pub id: String,
    /// admin, operator, reviewer or auditor.
    pub role: String,
    /// The person.
    pub name: String,
    /// Operators: their organization.
    pub organization: Option<String>,
    /// When it stops working (ms since the Unix epoch).
    pub expires_at_ms: u64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<u64>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        TokenView {
            id: t.id,
            role: t.role.to_string(),
            name: t.name,
            organization: t.operator,
            expires_at_ms: t.expires_at_ms,
            revoked_at_ms: t.revoked_at_ms,
        }
    }
}

/// Every token the domain issued.
#[utoipa::path(get, path = "/api/admin/tokens", tag = "admin",
    responses(
        (status = 200, description = "The tokens", body = Vec<TokenView>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn tokens(State(s): State<Shared>, Caller(who): Caller) -> Result<Json<Vec<TokenView>>, Problem> {
    s.authorize(&who, Action::ManageTokens, Resource::Domain).await?;
    let list = s
        .blocking(|rt| rt.access().list())
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    Ok(Json(list.into_iter().map(TokenView::from).collect()))
}

/// What to issue a token for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// admin, operator, reviewer or auditor.
    pub role: String,
    /// The person (1 to 64 of a-z, 0-9, `-`, `_`, `.`).
    pub name: String,
    /// Operators: the registered organization they act for.
    pub organization: Option<String>,
    /// Days until it expires, 1 to 366.
    pub expires_in_days: u32,
}

/// A token just issued: the secret is shown here once and never again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedTokenView {
    /// The token's record.
    pub record: TokenView,
    /// The bearer token to hand to its holder.
    pub token: String,
}

/// Issues a token; the secret is in this answer only.
#[utoipa::path(post, path = "/api/admin/tokens", tag = "admin",
    request_body(content = TokenRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Issued", body = IssuedTokenView),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown role, bad name, unregistered organization or expiry out of range", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn issue_token(
    State(s): State<Shared>,
    Caller(who): Caller,
    body: Result<Json<TokenRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<IssuedTokenView>), Problem> {
    s.authorize(&who, Action::ManageTokens, Resource::Domain).await?;
    let Json(req) = body.map_err(json_problem)?;
    let role: Role = req
        .role
        .parse()
        .map_err(|e: inland_runtime::Error| Problem::invalid_body(e.to_string()))?;
    if !(1..=366).contains(&req.expires_in_days) {
        return Err(Problem::invalid_body("`expires_in_days` must be 1 to 366"));
    }
    let expires = now_ms() + u64::from(req.expires_in_days) * 86_400_000;
    let by = who.name.clone();
    let issued = s
        .blocking(move |rt| {
            rt.access()
                .issue_by(role, &req.name, req.organization.as_deref(), expires, Some(&by))
        })
        .await?
        .map_err(|e| match e {
            inland_runtime::Error::Invalid(why) | inland_runtime::Error::NotFound(why) => Problem::invalid_body(why),
            other => Problem::log_internal(&other),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedTokenView {
            record: issued.record.into(),
            token: issued.secret,
        }),
    ))
}

/// Revokes a token: it stops working at once.
#[utoipa::path(delete, path = "/api/admin/tokens/{id}", tag = "admin",
    params(("id" = String, Path, description = "The token's id")),
    responses(
        (status = 200, description = "Revoked", body = TokenView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already revoked", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn revoke_token(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, Problem> {
    s.authorize(&who, Action::ManageTokens, Resource::Domain).await?;
    let revoked = s
        .blocking(move |rt| rt.access().revoke(&id))
        .await?
        .map_err(|e| match e {
            inland_runtime::Error::NotFound(_) => Problem::not_found("token"),
            inland_runtime::Error::Invalid(why) => Problem::conflict(why),
            other => Problem::log_internal(&other),
        })?;
    Ok(Json(revoked.into()))
}

/// One dataset of the catalog, as admins list them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DatasetView {
    /// Its name.
    pub name: String,
    /// Rows stored.
    pub rows: u64,
    /// SHA-256 of the stored file.
    pub sha256: String,
    /// approved or pending.
    pub status: String,
    /// The operator that proposed it, for social datasets.
    pub owner: Option<String>,
}

/// An operator organization.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorView {
    /// Its name.
    pub name: String,
    /// pending, approved or suspended.
    pub status: String,
}

/// A grant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrantView {
    /// Grant id.
    pub id: String,
    /// The operator holding it.
    pub operator: String,
    /// Datasets it covers.
    pub datasets: Vec<String>,
    /// First and last day in force.
    pub from: String,
    /// Last day in force.
    pub until: String,
    /// active or terminated.
    pub status: String,
    /// Jobs per day, if limited.
    pub jobs_per_day: Option<u32>,
    /// Jobs over the term, if limited.
    pub jobs_per_term: Option<u32>,
}

/// The domain as admins see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DomainView {
    /// The catalog.
    pub datasets: Vec<DatasetView>,
    /// Operator organizations.
    pub operators: Vec<OperatorView>,
    /// Grants.
    pub grants: Vec<GrantView>,
}

/// Datasets, operators and grants.
#[utoipa::path(get, path = "/api/admin/domain", tag = "admin",
    responses(
        (status = 200, description = "The domain's records", body = DomainView),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn domain(State(s): State<Shared>, Caller(who): Caller) -> Result<Json<DomainView>, Problem> {
    s.authorize(&who, Action::ViewDomain, Resource::Domain).await?;
    let view = s
        .blocking(|rt| -> inland_runtime::Result<DomainView> {
            Ok(DomainView {
                datasets: rt
                    .catalog()
                    .list()?
                    .into_iter()
                    .map(|d| DatasetView {
                        status: word(&d.status),
                        name: d.name,
                        rows: d.rows,
                        sha256: d.sha256,
                        owner: d.owner,
                    })
                    .collect(),
                operators: rt
                    .governance()
                    .operators()?
                    .into_iter()
                    .map(|o| OperatorView {
                        status: word(&o.status),
                        name: o.name,
                    })
                    .collect(),
                grants: rt
                    .governance()
                    .grants()?
                    .into_iter()
                    .map(|g| GrantView {
                        status: word(&g.status),
                        from: g.from.to_string(),
                        until: g.until.to_string(),
                        jobs_per_day: g.quota.per_day,
                        jobs_per_term: g.quota.per_term,
                        id: g.id,
                        operator: g.operator,
                        datasets: g.datasets,
                    })
                    .collect(),
            })
        })
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    Ok(Json(view))
}

/// Milliseconds since the Unix epoch (token expiry is counted from it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
