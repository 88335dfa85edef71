//! `/api/outputs`: the release queue, one output's review view, and votes.
//! Reviewers (and admins, who do not vote) are inside the domain: they see
//! the content, the check report, lineage, the job's SQL and log.

use crate::api::json_problem;
use crate::auth::Caller;
use crate::authz::{Action, Resource};
use crate::problem::Problem;
use crate::state::Shared;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use base64::Engine as _;
use inland_runtime::{Decision, OutputRecord, ReviewState, VoteRequest, review_view};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use utoipa::{IntoParams, ToSchema};

/// A release request in the queue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueItem {
    /// Output id, `<job id>/<name>`.
    pub id: String,
    /// The job that made it.
    pub job_id: String,
    /// The organization whose job it was.
    pub organization: String,
    /// Review state.
    pub state: String,
    /// Votes cast.
    pub votes: u32,
    /// Approvals required.
    pub required: u32,
    /// Checks that failed or need review.
    pub findings: Vec<String>,
}

/// What a reviewer reads about one output.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutputView {
    /// The review page: content with flagged cells, checks, lineage, votes.
    pub page: String,
    /// The output's record (lineage, label, gate report, review, release).
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
    /// The job's log lines, captured stdout and stderr.
    #[schema(value_type = Vec<Object>)]
    pub job_log: serde_json::Value,
    /// Why the job failed, if it did.
    pub job_error: Option<String>,
    /// SHA-256 of the component's source archive, if one came with it
    /// (GET /api/jobs/{id}/source).
    pub source_sha256: Option<String>,
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoteDecision {
    /// Release it.
    Approve,
    /// Do not release it.
    Reject,
    /// Send it back for changes.
    Return,
}

/// A vote. The reviewer is the caller; no field names them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteBody {
    /// approve, reject or return.
    pub decision: VoteDecision,
    /// Why (required).
    pub reason: String,
    /// Checks to override (approvals only).
    #[serde(default)]
    pub overrides: Vec<String>,
    /// Required with overrides.
    pub justification: Option<String>,
}

/// One file of a release bundle.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BundleFile {
    /// File name inside the bundle (`<output>.parquet`, `manifest.json`, …).
    pub name: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// The bytes, base64 (standard alphabet, padded).
    pub content_base64: String,
}

/// The signed bundle of a released output: write the files to one directory
/// and check it offline with `inland verify-export`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseBundle {
    /// Output id.
    pub output_id: String,
    /// SHA-256 of the signed manifest.
    pub manifest_sha256: String,
    /// Every file of the bundle, the manifest and its signature included.
    pub files: Vec<BundleFile>,
}

/// Where the review stands after a vote.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VoteResult {
    /// Output id.
    pub output_id: String,
    /// Its review state now.
    pub state: String,
}

fn queue_item(o: &OutputRecord) -> QueueItem {
    let review = o.review.as_ref();
    QueueItem {
        id: o.id.clone(),
        job_id: o.job_id.clone(),
        organization: o.operator.clone(),
        state: review.map(|r| r.state.to_string()).unwrap_or_default(),
        votes: review.map(|r| r.votes.len() as u32).unwrap_or(0),
        required: review.map(|r| r.required).unwrap_or(0),
        findings: o
            .gate
            .as_ref()
            .map(|g| g.findings().map(|c| c.check.clone()).collect())
            .unwrap_or_default(),
    }
}

/// The release queue, newest first.
#[utoipa::path(get, path = "/api/outputs", tag = "review",
    responses(
        (status = 200, description = "Release requests", body = Vec<QueueItem>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn queue(State(s): State<Shared>, Caller(who): Caller) -> Result<Json<Vec<QueueItem>>, Problem> {
    s.authorize(&who, Action::ListOutputs, Resource::Domain).await?;
    let queue = s
        .blocking(|rt| rt.reviews().queue())
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    Ok(Json(queue.iter().map(queue_item).collect()))
}

/// The output and who submitted its job, described for the access policy.
pub(crate) async fn described(s: &Shared, id: &str) -> Result<(Option<OutputRecord>, Resource), Problem> {
    let output = id.to_string();
    let (record, author) = s
        .blocking(
            move |rt| -> inland_runtime::Result<(Option<OutputRecord>, Option<String>)> {
                let record = match rt.reviews().output(&output) {
                    Ok(r) => Some(r),
                    Err(inland_runtime::Error::NotFound(_)) => None,
                    Err(e) => return Err(e),
                };
                let author = match &record {
                    Some(r) => rt.access().author(&r.job_id)?,
                    None => None,
                };
                Ok((record, author))
            },
        )
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    let resource = Resource::Output {
        id: id.to_string(),
        organization: record.as_ref().map(|r| r.operator.clone()),
        author,
    };
    Ok((record, resource))
}

fn output_id(job: &str, name: &str) -> Result<String, Problem> {
    if !crate::api::job_id_shaped(job) || name.is_empty() || name.len() > 128 {
        return Err(Problem::bad_request("not an output id (`<job id>/<name>`)"));
    }
    Ok(format!("{job}/{name}"))
}

/// One output as a reviewer reads it.
#[utoipa::path(get, path = "/api/outputs/{job}/{name}", tag = "review",
    params(("job" = String, Path, description = "Job id"), ("name" = String, Path, description = "Output name")),
    responses(
        (status = 200, description = "The review view", body = OutputView),
        (status = 400, description = "Not an output id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such output", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn view(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path((job, name)): Path<(String, String)>,
) -> Result<Json<OutputView>, Problem> {
    let id = output_id(&job, &name)?;
    let (record, resource) = described(&s, &id).await?;
    s.authorize(&who, Action::ViewOutput, resource).await?;
    let record = record.ok_or_else(|| Problem::not_found("output"))?;
    let view = s
        .blocking(move |rt| -> inland_runtime::Result<OutputView> {
            let table = rt.reviews().output_table(&record.id).unwrap_or_default();
            let (job, names) = rt.jobs().get_with_output_names(&record.job_id)?;
            // The lineage's queries and the output's name, from the job's
            // sealed record (this copy is only shown, never stored).
            let mut record = record;
            record.queries = job.queries.clone();
            if let Some((_, name)) = names.into_iter().find(|(id, _)| *id == record.id) {
                record.name = name;
            }
            // The released rows' entity sketches add up what each entity
            // contributed: a sketch of a few dozen people peels into their
            // values. They stay in the domain's history, never in a view.
            if let Some(release) = record.release.as_mut() {
                release.cells.clear();
            }
            Ok(OutputView {
                page: review_view::render(&record, &table),
                record: serde_json::to_value(&record)?,
                job_log: serde_json::to_value(&job.log)?,
                job_error: job.error.map(|e| e.to_string()),
                source_sha256: job.source_sha256,
            })
        })
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    Ok(Json(view))
}

/// Which rows of an output to read.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RowsQuery {
    /// First row (0-based); default 0.
    offset: Option<u64>,
    /// Rows to return, 1 to 1000; default 100.
    limit: Option<u64>,
}

/// One page of an output's rows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RowsView {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows from `offset`, each cell as text (null for a null).
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows in the whole output.
    pub total: u64,
    /// Pass as `offset` for the next page; absent on the last.
    pub next_offset: Option<u64>,
}

/// Every row of an output, page by page: the review page shows the first
/// rows, and every row is released on approval, so reviewers read them all.
#[utoipa::path(get, path = "/api/outputs/{job}/{name}/rows", tag = "review",
    params(("job" = String, Path, description = "Job id"), ("name" = String, Path, description = "Output name"), RowsQuery),
    responses(
        (status = 200, description = "A page of rows", body = RowsView),
        (status = 400, description = "Not an output id, or a bad page", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such output", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn rows(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path((job, name)): Path<(String, String)>,
    query: Result<Query<RowsQuery>, QueryRejection>,
) -> Result<Json<RowsView>, Problem> {
    let id = output_id(&job, &name)?;
    let (record, resource) = described(&s, &id).await?;
    s.authorize(&who, Action::ViewOutput, resource).await?;
    let Query(q) = query.map_err(crate::api::query_problem)?;
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request("`limit` is 1 to 1000"));
    }
    let record = record.ok_or_else(|| Problem::not_found("output"))?;
    let page = s
        .blocking(move |rt| -> inland_runtime::Result<review_view::RowsPage> {
            let table = rt.reviews().output_table(&record.id)?;
            review_view::rows(&table, usize::try_from(offset).unwrap_or(usize::MAX), limit as usize)
        })
        .await?
        .map_err(Problem::from_runtime_for_insider)?;
    let end = offset.saturating_add(page.rows.len() as u64);
    Ok(Json(RowsView {
        next_offset: (end < page.total).then_some(end),
        columns: page.columns,
        rows: page.rows,
        total: page.total,
    }))
}

/// Whether reviewers released `record`: approved (or already exported) and
/// not destroyed with its grant.
fn released(record: &OutputRecord) -> bool {
    let state = record.review.as_ref().map(|r| r.state);
    !record.destroyed && matches!(state, Some(ReviewState::Approved | ReviewState::Released))
}

/// The signed bundle of a released output, for its organization. An output
/// that was not released is described to the policy as belonging to no one:
/// its organization cannot tell it from a name no job used, so output names
/// a job chose are no channel out.
#[utoipa::path(get, path = "/api/outputs/{job}/{name}/bundle", tag = "releases",
    params(("job" = String, Path, description = "Job id"), ("name" = String, Path, description = "Output name")),
    responses(
        (status = 200, description = "The bundle's files", body = ReleaseBundle),
        (status = 400, description = "Not an output id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a released output of the caller's organization", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No released output with this id", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn bundle(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path((job, name)): Path<(String, String)>,
) -> Result<Json<ReleaseBundle>, Problem> {
    let id = output_id(&job, &name)?;
    let (record, resource) = described(&s, &id).await?;
    let record = record.filter(released);
    let resource = match (&record, resource) {
        (Some(_), r) => r,
        (None, _) => Resource::Output {
            id: id.clone(),
            organization: None,
            author: None,
        },
    };
    s.authorize(&who, Action::DownloadRelease, resource).await?;
    let record = record.ok_or_else(|| Problem::not_found("released output"))?;
    let recipient = format!("api: {} (token {})", who.name, who.token_id);
    let (outcome, files) = s
        .blocking(move |rt| rt.reviews().export_files(&record.id, &recipient))
        .await?
        .map_err(|e| match e {
            inland_runtime::Error::NotFound(_) | inland_runtime::Error::Refused(_) => {
                Problem::not_found("released output")
            }
            other => Problem::log_internal(&other),
        })?;
    Ok(Json(ReleaseBundle {
        output_id: outcome.output_id,
        manifest_sha256: outcome.manifest_sha256,
        files: files
            .into_iter()
            .map(|(name, bytes)| BundleFile {
                sha256: hex::encode(sha2::Sha256::digest(&bytes)),
                content_base64: base64::engine::general_purpose::STANDARD.encode(&bytes),
                name,
            })
            .collect(),
    }))
}

/// Casts the caller's vote on an output's release.
#[utoipa::path(post, path = "/api/outputs/{job}/{name}/votes", tag = "review",
    params(("job" = String, Path, description = "Job id"), ("name" = String, Path, description = "Output name")),
    request_body = VoteBody,
    responses(
        (status = 200, description = "Recorded", body = VoteResult),
        (status = 400, description = "Malformed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such output", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The review rules refuse it", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid vote", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn vote(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path((job, name)): Path<(String, String)>,
    body: Result<Json<VoteBody>, JsonRejection>,
) -> Result<Json<VoteResult>, Problem> {
    let id = output_id(&job, &name)?;
    let (record, resource) = described(&s, &id).await?;
    s.authorize(&who, Action::Vote, resource).await?;
    // Only a reviewer's token votes, as that reviewer, whatever a policy
    // permits: an admin's token named like a reviewer is not one.
    if who.role != inland_runtime::Role::Reviewer {
        return Err(Problem::forbidden(Action::Vote.name()));
    }
    let Json(body) = body.map_err(json_problem)?;
    if record.is_none() {
        return Err(Problem::not_found("output"));
    }
    let request = VoteRequest {
        reviewer: who.name.clone(),
        decision: match body.decision {
            VoteDecision::Approve => Decision::Approve,
            VoteDecision::Reject => Decision::Reject,
            VoteDecision::Return => Decision::Return,
        },
        reason: body.reason,
        overrides: body.overrides,
        justification: body.justification,
    };
    let output = id.clone();
    let record = s
        .blocking(move |rt| rt.reviews().vote_with_token(&output, request, Some(&who.token_id)))
        .await?
        .map_err(Problem::from_runtime_for_insider)?;
    Ok(Json(VoteResult {
        output_id: id,
        state: record.review.map(|r| r.state.to_string()).unwrap_or_default(),
    }))
}
