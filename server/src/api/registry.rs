//! `/api/admin/{operators,grants,reviewers,domain-policy}`: the domain's
//! registry, kept by admins through the server while jobs run. Datasets are
//! registered on the domain host (`inland dataset add`): raw data reaches
//! the domain through its own pipelines, never through this API.

use crate::api::json_problem;
use crate::auth::Caller;
use crate::authz::{Action, Resource};
use crate::problem::Problem;
use crate::state::Shared;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use inland_runtime::{Date, DpBudget, GrantRequest, JobQuota, OperatorStatus, Privacy, Qualification};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A qualification record of an operator: the statement and the SHA-256 of
/// its evidence (the evidence itself stays with the admin).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QualificationBody {
    /// What the evidence shows.
    pub statement: String,
    /// SHA-256 of the evidence document, hex.
    pub evidence_sha256: String,
}

/// A new operator organization.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorBody {
    /// Its name (its identity in grants and tokens).
    pub name: String,
    /// comprehensive, domain or scenario.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its qualifications.
    #[serde(default)]
    pub qualifications: Vec<QualificationBody>,
}

/// An operator's new status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorStatusBody {
    /// approved or suspended.
    pub status: String,
    /// Why (required to suspend).
    pub reason: Option<String>,
}

/// A grant to issue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// The operator that will hold it.
    pub operator: String,
    /// Datasets it covers.
    pub datasets: Vec<String>,
    /// Purpose.
    pub purpose: String,
    /// Scenario.
    pub scenario: String,
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, `YYYY-MM-DD`.
    pub until: String,
    /// Products it may make.
    #[serde(default)]
    pub products: Vec<String>,
    /// Jobs per day, if limited.
    pub jobs_per_day: Option<u32>,
    /// Jobs over the term, if limited.
    pub jobs_per_term: Option<u32>,
    /// Run only components approved by hash.
    #[serde(default)]
    pub approved_components_only: bool,
    /// A `dp` grant: its privacy budget over the term (ρ, zCDP). Absent: exact.
    pub dp_budget_rho: Option<f64>,
    /// A `dp` grant: what each query over protected data costs (ρ).
    pub dp_query_rho: Option<f64>,
    /// A `dp` grant: budgets of single datasets within the whole (ρ).
    #[serde(default)]
    pub dp_dataset_budgets: std::collections::BTreeMap<String, f64>,
}

/// Why a grant ends.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminationBody {
    /// expired, breach, incident, law or agreement.
    pub reason: String,
    /// A note for the record.
    pub note: String,
}

/// A reviewer to register.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewerBody {
    /// The reviewer's name (tokens of role reviewer carry it).
    pub name: String,
    /// The operator organization the reviewer works for, if any (never decides on its outputs).
    pub operator: Option<String>,
}

async fn authorized(s: &Shared, who: &inland_runtime::Principal) -> Result<(), Problem> {
    s.authorize(who, Action::ManageDomain, Resource::Domain).await
}

fn to_json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response, Problem> {
    let value = serde_json::to_value(value).map_err(|e| Problem::log_internal(&e))?;
    Ok((status, Json(value)).into_response())
}

/// Registers an operator organization (pending until approved).
#[utoipa::path(post, path = "/api/admin/operators", tag = "admin",
    request_body(content = OperatorBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered", body = Object),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already registered", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad name, type or qualification", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn add_operator(
    State(s): State<Shared>,
    Caller(who): Caller,
    body: Result<Json<OperatorBody>, JsonRejection>,
) -> Result<Response, Problem> {
    authorized(&s, &who).await?;
    let Json(body) = body.map_err(json_problem)?;
    let kind: inland_runtime::OperatorType = body
        .kind
        .parse()
        .map_err(|e: inland_runtime::Error| Problem::invalid_body(e.to_string()))?;
    let qualifications = body
        .qualifications
        .into_iter()
        .map(|q| Qualification {
            statement: q.statement,
            evidence_sha256: q.evidence_sha256,
        })
        .collect();
    let name = body.name;
    let op = s
        .blocking(move |rt| rt.governance().add_operator(&name, kind, qualifications))
        .await?
        .map_err(Problem::from_runtime_for_insider)?;
    to_json(StatusCode::CREATED, &op)
}

/// Approves or suspends an operator.
#[utoipa::path(post, path = "/api/admin/operators/{name}/status", tag = "admin",
    params(("name" = String, Path, description = "Operator name")),
    request_body(content = OperatorStatusBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed", body = Object),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such operator", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown status, or a suspension without a reason", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn operator_status(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(name): Path<String>,
    body: Result<Json<OperatorStatusBody>, JsonRejection>,
) -> Result<Response, Problem> {
    authorized(&s, &who).await?;
    let Json(body) = body.map_err(json_problem)?;
    let status = match body.status.as_str() {
        "approved" => OperatorStatus::Approved,
        "suspended" if body.reason.as_deref().is_some_and(|r| !r.trim().is_empty()) => OperatorStatus::Suspended,
        "suspended" => return Err(Problem::invalid_body("a suspension needs a `reason`")),
        other => {
            return Err(Problem::invalid_body(format!(
                "`{other}` is not a status: approved or suspended"
            )));
        }
    };
    let reason = body.reason;
    let op = s
        .blocking(move |rt| rt.governance().set_operator_status(&name, status, reason))
        .await?
        .map_err(Problem::from_runtime_for_insider)?;
    to_json(StatusCode::OK, &op)
}

/// Issues a grant (an authorization agreement) after checking its operator,
/// datasets and term.
#[utoipa::path(post, path = "/api/admin/grants", tag = "admin",
    request_body(content = GrantBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Issued", body = Object),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown operator or dataset", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused (operator not approved, …)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad dates or fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn issue_grant(
    State(s): State<Shared>,
    Caller(who): Caller,
    body: Result<Json<GrantBody>, JsonRejection>,
) -> Result<Response, Problem> {
    authorized(&s, &who).await?;
    let Json(b) = body.map_err(json_problem)?;
    let date = |d: &str, field: &str| {
        Date::parse(d).map_err(|_| Problem::invalid_body(format!("`{field}` is not a date (YYYY-MM-DD)")))
    };
    let request = GrantRequest {
        from: date(&b.from, "from")?,
        until: date(&b.until, "until")?,
        operator: b.operator,
        datasets: b.datasets,
        purpose: b.purpose,
        scenario: b.scenario,
        products: b.products,
        quota: JobQuota {
            per_day: b.jobs_per_day,
            per_term: b.jobs_per_term,
        },
        approved_components_only: b.approved_components_only,
        privacy: match (b.dp_budget_rho, b.dp_query_rho) {
            (Some(budget_rho), Some(query_rho)) => Privacy::Dp(DpBudget {
                budget_rho,
                query_rho,
                datasets: b.dp_dataset_budgets,
            }),
            (None, None) if b.dp_dataset_budgets.is_empty() => Privacy::Exact,
            _ => {
                return Err(Problem::invalid_body(
                    "a dp grant gives both dp_budget_rho and dp_query_rho (and dataset budgets only with them)",
                ));
            }
        },
    };
    let grant = s
        .blocking(move |rt| rt.governance().issue_grant(request))
        .await?
        .map_err(Problem::from_runtime_for_insider)?;
    to_json(StatusCode::CREATED, &grant)
}

/// Terminates a grant: its running jobs stop, new ones are refused, its key
/// and files are destroyed; the destruction record is returned.
#[utoipa::path(post, path = "/api/admin/grants/{id}/termination", tag = "admin",
    params(("id" = String, Path, description = "Grant id")),
    request_body(content = TerminationBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Terminated: the destruction record", body = Object),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such grant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown reason, or already terminated", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn terminate_grant(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
    body: Result<Json<TerminationBody>, JsonRejection>,
) -> Result<Response, Problem> {
    authorized(&s, &who).await?;
    let Json(b) = body.map_err(json_problem)?;
    let reason: inland_runtime::TerminationReason = b
        .reason
        .parse()
        .map_err(|e: inland_runtime::Error| Problem::invalid_body(e.to_string()))?;
    // Its own task: a client that goes away does not cut the destruction
    // short (and one cut short by a crash is finished by asking again).
    let jobs = s.runtime.jobs();
    let note = b.note;
    let record = tokio::spawn(async move { jobs.terminate_grant(&id, reason, &note).await })
        .await
        .map_err(|e| Problem::log_internal(&e))?
        .map_err(Problem::from_runtime_for_insider)?;
    to_json(StatusCode::OK, &record)
}

/// Registers a reviewer of the release gate.
#[utoipa::path(post, path = "/api/admin/reviewers", tag = "admin",
    request_body(content = ReviewerBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered", body = Object),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already registered", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad name or unknown operator", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn add_reviewer(
    State(s): State<Shared>,
    Caller(who): Caller,
    body: Result<Json<ReviewerBody>, JsonRejection>,
) -> Result<Response, Problem> {
    authorized(&s, &who).await?;
    let Json(b) = body.map_err(json_problem)?;
    let reviewer = s
        .blocking(move |rt| rt.reviews().add_reviewer(&b.name, b.operator.as_deref()))
        .await?
        .map_err(Problem::from_runtime_for_insider)?;
    to_json(StatusCode::CREATED, &reviewer)
}

/// A policy that does not check: every problem, with its line and column.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyProblems {
    /// RFC 9457 fields.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub problem: serde_json::Value,
    /// `line:column: message`, one per problem.
    pub problems: Vec<String>,
}

/// Applies a new domain policy (TOML: column classes, access modes,
/// masking, the gate's thresholds) atomically; the version and its SHA-256
/// are recorded. A policy with problems changes nothing: 422 lists them.
#[utoipa::path(put, path = "/api/admin/domain-policy", tag = "admin",
    request_body(content = String, content_type = "application/toml", description = "The policy"),
    responses(
        (status = 200, description = "In force: its version", body = Object),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not TOML", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The policy has problems", body = PolicyProblems, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn apply_policy(
    State(s): State<Shared>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    authorized(&s, &who).await?;
    let toml = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| matches!(m.trim(), "application/toml" | "text/plain"));
    if !toml {
        return Err(Problem::unsupported_media_type("application/toml"));
    }
    let bytes = body.map_err(|_| Problem::too_large(crate::JSON_LIMIT as u64))?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| Problem::bad_request("the policy is not UTF-8"))?;
    let applied = s
        .blocking(move |rt| rt.policies().apply_text(&text, "domain-policy.toml"))
        .await?
        .map_err(Problem::from_runtime_for_insider)?;
    match applied {
        Ok(version) => to_json(StatusCode::OK, &version),
        Err(problems) => {
            let list: Vec<String> = problems
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect();
            let problem = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-domain-policy",
                "The domain policy has problems; nothing was changed",
                list.join("; "),
            );
            let mut body = serde_json::to_value(&problem).map_err(|e| Problem::log_internal(&e))?;
            body["problems"] = serde_json::json!(list);
            let mut response = (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/problem+json"),
            );
            Ok(response)
        }
    }
}
