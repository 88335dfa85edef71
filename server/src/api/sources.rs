//! `/api/sources` and `/api/jobs/{id}/source`: code accountability. An
//! operator submits the source archive of a component before the job that
//! runs it (`POST /api/jobs?…&source=SHA256`); the hash is recorded with
//! the job and in the ledger, and reviewers read the archive.

use crate::auth::Caller;
use crate::authz::{Action, Resource};
use crate::problem::Problem;
use crate::state::Shared;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media types an archive may be sent as.
const ARCHIVE_TYPES: [&str; 4] = [
    "application/gzip",
    "application/x-tar",
    "application/zip",
    "application/octet-stream",
];

/// A stored source archive.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourceView {
    /// SHA-256 of the archive: name it as `source` when submitting the job.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

/// Stores a source archive for the caller's organization. An archive over
/// the domain's component limit is refused before it is read whole.
#[utoipa::path(post, path = "/api/sources", tag = "jobs",
    request_body(content = Vec<u8>, content_type = "application/gzip", description = "The archive (tar.gz, tar or zip)"),
    responses(
        (status = 201, description = "Stored", body = SourceView),
        (status = 400, description = "Empty", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The operator is not approved, or holds as many archives as it may", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not an archive type", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many archives being received at once", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn submit(
    State(s): State<Shared>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let organization = who.operator.clone();
    let resource = match (&who.role, &organization) {
        (inland_runtime::Role::Operator, Some(o)) => Resource::Organization(o.clone()),
        _ => Resource::Domain,
    };
    s.authorize(&who, Action::SubmitSource, resource).await?;
    let organization = organization.ok_or_else(|| Problem::forbidden(Action::SubmitSource.name()))?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.module_limit) {
        return Err(Problem::too_large(s.module_limit));
    }
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    if !ARCHIVE_TYPES.contains(&media) {
        return Err(Problem::unsupported_media_type(&ARCHIVE_TYPES.join(", ")));
    }
    let _reading = s
        .uploads
        .try_acquire()
        .map_err(|_| Problem::too_many("other source archives are being received; try again shortly"))?;
    let bytes = axum::body::to_bytes(body, s.module_limit as usize)
        .await
        .map_err(|_| Problem::too_large(s.module_limit))?;
    if bytes.is_empty() {
        return Err(Problem::bad_request("the body is empty; send the archive"));
    }
    let by = who.name.clone();
    let record = s
        .blocking(move |rt| rt.jobs().store_source(&organization, &by, &bytes))
        .await?
        .map_err(|e| match e {
            // About the operator's own standing and quota, not about data.
            inland_runtime::Error::Refused(m) => Problem::conflict(m),
            inland_runtime::Error::Invalid(m) => Problem::invalid_body(m),
            other => Problem::log_internal(&other),
        })?;
    let view = SourceView {
        sha256: record.sha256,
        bytes: record.bytes,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// The source archive submitted with a job's component: for reviewers (and
/// the job's own organization), as it was stored. It is the operator's
/// claim of what the component was built from; nothing ties the two.
#[utoipa::path(get, path = "/api/jobs/{id}/source", tag = "review",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The archive", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "Not a job id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job, or it came without a source archive", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn job_source(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    if !crate::api::job_id_shaped(&id) {
        return Err(Problem::bad_request("not a job id"));
    }
    let job = id.clone();
    let found = s
        .blocking(move |rt| {
            rt.jobs()
                .find_stored(&job)
                .map(|r| r.map(|r| (r.operator, r.source_sha256)))
        })
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    let resource = Resource::Job {
        id: id.clone(),
        organization: found.as_ref().map(|(o, _)| o.clone()),
    };
    s.authorize(&who, Action::ViewSource, resource).await?;
    let (found_org, sha) = found
        .and_then(|(org, sha)| sha.map(|s| (org, s)))
        .ok_or_else(|| Problem::not_found("source archive of this job"))?;
    let organization = found_org;
    let (record, bytes) = s
        .blocking(move |rt| rt.jobs().source(&sha))
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    if !record.organizations.contains(&organization) {
        return Err(Problem::not_found("source archive of this job"));
    }
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}
