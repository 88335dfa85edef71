//! `/api/jobs`: submit a component under a grant, list jobs, view one.
//!
//! What a job shows is the same for everyone allowed to see it and depends
//! on nothing the job read: its state, its grant, the reason admission
//! refused it (about the grant or the component, decided before it ran), and
//! the outputs that passed review. The guest's log, its error string, its
//! queries and their errors, row counts, suppression counts and unreleased
//! output names stay inside the domain (reviewers read them with the output).

use crate::api::page::PageQuery;
use crate::api::{job_id_shaped, query_problem};
use crate::auth::Caller;
use crate::authz::{Action, Resource};
use crate::problem::Problem;
use crate::state::{InFlight, Shared};
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use inland_runtime::{JobRecord, JobRequest, JobStatus, Jobs, ReviewState, Role, Runtime};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::{IntoParams, ToSchema};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, waiting for a slot.
    Queued,
    /// Running in the sandbox.
    Running,
    /// Ended well; its outputs are in quarantine.
    Succeeded,
    /// Ended with an error or was stopped (why is for reviewers).
    Failed,
    /// Admission refused it; it never ran.
    Refused,
}

/// A job as anyone allowed to see it sees it: nothing that depends on data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// The organization that submitted it.
    pub organization: String,
    /// The grant it was submitted under.
    pub grant: String,
    /// Where it stands.
    pub state: JobState,
    /// Why admission refused it (only for `refused`; about the grant or the component).
    pub refusal: Option<String>,
    /// Ids of its outputs that reviewers released.
    pub released_outputs: Vec<String>,
}

/// One page of jobs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobPage {
    /// Jobs, oldest first.
    pub items: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// A submission accepted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Submitted {
    /// The new job's id.
    pub job_id: String,
    /// `queued`.
    pub state: JobState,
}

/// The view of a finished job.
fn view_of(rt: &Runtime, record: &JobRecord) -> inland_runtime::Result<JobView> {
    let mut released = Vec::new();
    for id in &record.outputs {
        let o = rt.reviews().output(id)?;
        let state = o.review.as_ref().map(|r| r.state);
        if !o.destroyed && matches!(state, Some(ReviewState::Approved | ReviewState::Released)) {
            released.push(o.id);
        }
    }
    let (state, refusal) = match record.status {
        JobStatus::Succeeded => (JobState::Succeeded, None),
        JobStatus::Failed => (JobState::Failed, None),
        // Admission decides before the job runs: its reason depends on no data.
        JobStatus::Refused => (JobState::Refused, record.error.as_ref().map(|e| e.to_string())),
    };
    Ok(JobView {
        id: record.id.clone(),
        organization: record.operator.clone(),
        grant: record.grant.clone(),
        state,
        refusal,
        released_outputs: released,
    })
}

/// The view of a job the server accepted and the runtime has not recorded yet.
fn view_in_flight(id: &str, f: &InFlight, running: &HashSet<String>) -> JobView {
    JobView {
        id: id.to_string(),
        organization: f.organization.clone(),
        grant: f.grant.clone(),
        state: if f.lost {
            JobState::Failed
        } else if running.contains(id) {
            JobState::Running
        } else {
            JobState::Queued
        },
        refusal: None,
        released_outputs: Vec::new(),
    }
}

/// What a submission's query names.
struct Submission {
    grant: String,
    params: Vec<(String, String)>,
    source: Option<String>,
}

/// The grant, parameters and source archive of a submission, from
/// `?grant=G&param=k=v&param=…&source=SHA256`.
fn submission_query(raw: Option<&str>) -> Result<Submission, Problem> {
    let mut grant = None;
    let mut source = None;
    let mut params = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match &*k {
            "grant" if grant.is_none() => grant = Some(v.into_owned()),
            "grant" => return Err(Problem::bad_request("name one `grant`")),
            "source" if source.is_none() => source = Some(v.into_owned()),
            "source" => return Err(Problem::bad_request("name one `source`")),
            "param" => {
                let (key, value) = v
                    .split_once('=')
                    .filter(|(key, _)| !key.is_empty())
                    .ok_or_else(|| Problem::bad_request("each `param` is `key=value`"))?;
                params.push((key.to_string(), value.to_string()));
            }
            _ => {
                return Err(Problem::bad_request(
                    "unknown query parameter; use `grant`, `param` and `source`",
                ));
            }
        }
    }
    let grant = grant
        .filter(|g| !g.is_empty() && g.len() <= 64)
        .ok_or_else(|| Problem::bad_request("name the grant to run under: `?grant=g-…`"))?;
    Ok(Submission { grant, params, source })
}

/// Submits a component to run under one of the caller's grants. The body
/// is the component (`application/wasm`); one over the domain's limit is
/// refused before it is read whole, and one that is not a component of the
/// job world (or imports a denied capability) before it is queued. The job
/// runs in the background.
#[utoipa::path(post, path = "/api/jobs", tag = "jobs",
    params(
        ("grant" = String, Query, description = "The grant to run under"),
        ("param" = Option<Vec<String>>, Query, description = "A job parameter, `key=value`; repeat for more"),
        ("source" = Option<String>, Query, description = "SHA-256 of the component's source archive, submitted before (POST /api/sources)"),
    ),
    request_body(
        description = "The component (`application/wasm`), or a SQL file (`application/sql`): `-- output: NAME` before each SELECT, `param` values bound to its `$NAME` placeholders",
        content(
            (Vec<u8> = "application/wasm"),
            (String = "application/sql"),
        )
    ),
    responses(
        (status = 202, description = "Accepted; the job runs in the background", body = Submitted),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the caller's grant", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Component too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither application/wasm nor application/sql", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a component of the inland:job world, it imports a denied capability, or the SQL file has no named statements", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The grant's job quota is spent, or too many jobs are in flight", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn submit(
    State(s): State<Shared>,
    Caller(who): Caller,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.module_limit) {
        // Refused before a byte of the body is read.
        return Err(Problem::too_large(s.module_limit));
    }
    let (submission, organization) = match admit(&s, &who, raw.as_deref(), &headers).await {
        Ok(admitted) => admitted,
        Err(problem) => {
            // Read what the client is sending (within the limit) so it hears the answer.
            let _ = axum::body::to_bytes(body, s.module_limit as usize).await;
            return Err(problem);
        }
    };
    let mut submission = submission;
    let wasm = axum::body::to_bytes(body, s.module_limit as usize)
        .await
        .map_err(|_| Problem::too_large(s.module_limit))?;
    if wasm.is_empty() {
        return Err(Problem::bad_request(
            "the body is empty; send the component or the SQL file",
        ));
    }
    // A SQL file runs as the SQL job component, its statements and the
    // submission's parameters (bound values) as that component's parameters.
    let wasm = match body_kind(&headers) {
        Some(BodyKind::Sql) => {
            // The file is the whole job: an archive beside it would show
            // reviewers code that did not run.
            if submission.source.is_some() {
                return Err(Problem::bad_request(
                    "a SQL job takes no source archive: the file is its source",
                ));
            }
            let text = std::str::from_utf8(&wasm).map_err(|_| Problem::bad_request("the SQL file is not UTF-8"))?;
            submission.params = inland_runtime::sql_job::params(text, &submission.params).map_err(|e| {
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-sql-job",
                    "The SQL file cannot run",
                    e.to_string(),
                )
            })?;
            let component = inland_runtime::sql_job::component().map_err(|e| Problem::log_internal(&e))?;
            axum::body::Bytes::from_static(component)
        }
        _ => wasm,
    };
    // Not a component, the wrong world, or a denied import: refused here,
    // with the reason, and no job is recorded.
    let wasm = wasm.to_vec();
    let checked = {
        let wasm = wasm.clone();
        s.blocking(move |rt| rt.jobs().check_component(&wasm).map_err(|e| e.to_string()))
            .await?
    };
    if let Err(why) = checked {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-component",
            "The component cannot run in this domain",
            why,
        ));
    }
    start(&s, &who, submission, organization, wasm).await
}

/// What a submission's body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    /// A job component.
    Wasm,
    /// A SQL file for the SQL job Inland ships.
    Sql,
}

fn body_kind(headers: &HeaderMap) -> Option<BodyKind> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)?;
    match media {
        "application/wasm" => Some(BodyKind::Wasm),
        "application/sql" => Some(BodyKind::Sql),
        _ => None,
    }
}

/// Everything a submission is checked for before its body is read: the
/// query, the caller's right to the grant, the media type.
async fn admit(
    s: &Shared,
    who: &inland_runtime::Principal,
    raw: Option<&str>,
    headers: &HeaderMap,
) -> Result<(Submission, String), Problem> {
    let submission = submission_query(raw)?;
    let grant = submission.grant.clone();
    let resource = super::grant_resource(s, &grant).await?;
    s.authorize(who, Action::SubmitJob, resource).await?;
    let organization = who.operator.clone().ok_or_else(Problem::internal)?;
    if let Some(sha) = submission.source.clone() {
        let org = organization.clone();
        if let Some(why) = s
            .blocking(move |rt| rt.jobs().source_refusal(&org, &sha))
            .await?
            .map_err(|e| Problem::log_internal(&e))?
        {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-source",
                "The source archive cannot be used",
                why,
            ));
        }
    }
    // Bounds before the body is read: jobs waiting for a slot hold memory
    // and a thread, so one organization (or all) may only have so many in
    // flight, and a grant whose quota is spent takes no more.
    let inflight = s.inflight();
    let waiting = |org: Option<&str>| {
        inflight
            .values()
            .filter(|f| !f.lost && org.is_none_or(|o| f.organization == o))
            .count()
    };
    if waiting(Some(&organization)) >= s.inflight_per_organization {
        return Err(Problem::too_many(format!(
            "your organization has {} jobs queued or running; submit more when some have ended",
            s.inflight_per_organization
        )));
    }
    if waiting(None) >= 2 * s.inflight_per_organization {
        return Err(Problem::too_many(
            "the domain is running as many jobs as it queues; try again later",
        ));
    }
    let g = grant.clone();
    if let Some(reason) = s
        .blocking(move |rt| rt.jobs().quota_spent(&g))
        .await?
        .map_err(|e| Problem::log_internal(&e))?
    {
        return Err(Problem::too_many(reason));
    }
    if body_kind(headers).is_none() {
        return Err(Problem::unsupported_media_type("application/wasm or application/sql"));
    }
    Ok((submission, organization))
}

/// Records who submitted the job and starts it in the background.
async fn start(
    s: &Shared,
    who: &inland_runtime::Principal,
    submission: Submission,
    organization: String,
    wasm: Vec<u8>,
) -> Result<Response, Problem> {
    let Submission { grant, params, source } = submission;
    let id = Jobs::new_id();
    let (job, author) = (id.clone(), who.name.clone());
    s.blocking(move |rt| rt.access().record_author(&job, &author))
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    let done = std::sync::Arc::new(tokio::sync::Notify::new());
    if let Ok(mut m) = s.inflight.lock() {
        m.insert(
            id.clone(),
            InFlight {
                organization: organization.clone(),
                grant: grant.clone(),
                lost: false,
                done: done.clone(),
            },
        );
    }
    let request = JobRequest {
        wasm,
        params,
        operator: organization,
        grant,
        source_sha256: source,
    };
    let (state, job) = (s.clone(), id.clone());
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let span = tracing::info_span!("job", id = %job);
        let _enter = span.enter();
        let outcome = handle.block_on(state.runtime.jobs().run_with_id(job.clone(), request));
        if let Ok(mut m) = state.inflight.lock() {
            match outcome {
                Ok(_) => {
                    m.remove(&job);
                }
                Err(e) => {
                    tracing::error!(error = %e, "the domain failed while running a job");
                    if let Some(f) = m.get_mut(&job) {
                        f.lost = true;
                    }
                }
            }
        }
        done.notify_waiters();
    });
    let body = Json(Submitted {
        job_id: id.clone(),
        state: JobState::Queued,
    });
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/api/jobs/{id}"))],
        body,
    )
        .into_response())
}

/// Lists jobs, oldest first: an operator's own (the default for operators),
/// one organization's (`?operator=`), or the domain's.
#[utoipa::path(get, path = "/api/jobs", tag = "jobs",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(s): State<Shared>,
    Caller(who): Caller,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<JobPage>, Problem> {
    let Query(page) = query.map_err(query_problem)?;
    page.check()?;
    let scope = match (&page.operator, who.role) {
        (Some(o), _) => Some(o.clone()),
        (None, Role::Operator) => who.operator.clone(),
        (None, _) => None,
    };
    let resource = match &scope {
        Some(o) => Resource::Organization(o.clone()),
        None => Resource::Domain,
    };
    s.authorize(&who, Action::ListJobs, resource).await?;
    let inflight = s.inflight();
    let views = s
        .blocking(move |rt| -> inland_runtime::Result<Vec<(String, JobView)>> {
            let mine = |org: &str| scope.as_deref().is_none_or(|s| s == org);
            let running: HashSet<String> = rt.jobs().running().into_iter().map(|(id, _)| id).collect();
            let mut out = Vec::new();
            let mut recorded = HashSet::new();
            for r in rt.jobs().list_stored()?.iter().filter(|r| mine(&r.operator)) {
                recorded.insert(r.id.clone());
                out.push((r.id.clone(), view_of(&rt, r)?));
            }
            for (id, f) in inflight
                .iter()
                .filter(|(id, f)| mine(&f.organization) && !recorded.contains(*id))
            {
                out.push((id.clone(), view_in_flight(id, f, &running)));
            }
            Ok(out)
        })
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    let (items, next_cursor) = page.cut(views);
    Ok(Json(JobPage { items, next_cursor }))
}

/// The view of job `id` (recorded or in flight), if the domain has it.
async fn find(s: &Shared, id: &str) -> Result<Option<JobView>, Problem> {
    if !job_id_shaped(id) {
        return Err(Problem::bad_request("not a job id"));
    }
    let inflight = s.inflight().get(id).cloned();
    let job = id.to_string();
    s.blocking(move |rt| -> inland_runtime::Result<Option<JobView>> {
        match rt.jobs().find_stored(&job)? {
            Some(r) => view_of(&rt, &r).map(Some),
            None => {
                let running: HashSet<String> = rt.jobs().running().into_iter().map(|(id, _)| id).collect();
                Ok(inflight.map(|f| view_in_flight(&job, &f, &running)))
            }
        }
    })
    .await?
    .map_err(|e| Problem::log_internal(&e))
}

/// Stops a running job: it ends as failed and its outputs are discarded.
#[utoipa::path(post, path = "/api/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 202, description = "The job was asked to stop", body = JobView),
        (status = 400, description = "Not a job id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (or no such job)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is not running", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn cancel(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<JobView>), Problem> {
    let found = find(&s, &id).await?;
    let resource = Resource::Job {
        id: id.clone(),
        organization: found.as_ref().map(|v| v.organization.clone()),
    };
    s.authorize(&who, Action::CancelJob, resource).await?;
    let view = found.ok_or_else(|| Problem::not_found("job"))?;
    let job = id.clone();
    let stopped = s
        .blocking(move |rt| rt.jobs().cancel(&job))
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    if !stopped {
        return Err(Problem::conflict("the job is not running"));
    }
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// The longest a view waits for a job to end.
const MAX_WAIT_SECS: u32 = 60;
/// Views one organization (or person) may have waiting at once.
const MAX_WAITING_VIEWS: usize = 16;

/// Whether a view may wait for its job to end.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ViewQuery {
    /// Seconds to wait for a queued or running job to end before answering
    /// (0 to 60; default 0, answer at once). Saves a client polling.
    #[param(minimum = 0, maximum = 60)]
    wait: Option<u32>,
}

fn ended(view: &JobView) -> bool {
    !matches!(view.state, JobState::Queued | JobState::Running)
}

/// One job; with `?wait=N`, once it has ended or after N seconds,
/// whichever comes first.
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id"), ViewQuery),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 400, description = "Not a job id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed (or no such job)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn view(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(id): Path<String>,
    query: Result<Query<ViewQuery>, QueryRejection>,
) -> Result<Json<JobView>, Problem> {
    let Query(query) = query.map_err(query_problem)?;
    let wait = query.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(Problem::bad_request(format!(
            "`wait` must be 0 to {MAX_WAIT_SECS} seconds"
        )));
    }
    let mut found = find(&s, &id).await?;
    let resource = Resource::Job {
        id: id.clone(),
        organization: found.as_ref().map(|v| v.organization.clone()),
    };
    // Authorized first: nobody learns how long another's job runs.
    s.authorize(&who, Action::ViewJob, resource.clone()).await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(u64::from(wait));
    // Each waiting view holds a connection: past a few per organization (or
    // person), a view answers at once and the caller polls.
    let caller = who
        .operator
        .clone()
        .unwrap_or_else(|| format!("{:?}:{}", who.role, who.name));
    let slot = (wait > 0 && found.as_ref().is_some_and(|v| !ended(v)))
        .then(|| s.waiting.slot(&caller, MAX_WAITING_VIEWS))
        .flatten();
    while slot.is_some() && found.as_ref().is_some_and(|v| !ended(v)) {
        let Some(done) = s.inflight.lock().ok().and_then(|m| m.get(&id).map(|f| f.done.clone())) else {
            break;
        };
        // Listening before looking again, so an end in between is not missed.
        let notified = done.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        found = find(&s, &id).await?;
        if found.as_ref().is_none_or(ended) {
            break;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            break;
        }
        found = find(&s, &id).await?;
    }
    if slot.is_some() {
        // The caller's right may have been withdrawn while it waited.
        s.authorize(&who, Action::ViewJob, resource).await?;
    }
    found.map(Json).ok_or_else(|| Problem::not_found("job"))
}
