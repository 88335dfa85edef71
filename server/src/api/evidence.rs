//! `/api/ledger` and `/api/reports`: what auditors read — the evidence
//! ledger and the reports computed from it.

use crate::api::query_problem;
use crate::auth::Caller;
use crate::authz::{Action, Resource};
use crate::problem::Problem;
use crate::state::Shared;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use inland_runtime::Date;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The media type of the ledger export: one JSON entry per line.
pub const NDJSON: &str = "application/x-ndjson";

/// Every ledger entry, one JSON object per line, in order.
#[utoipa::path(get, path = "/api/ledger/export", tag = "evidence",
    responses(
        (status = 200, description = "The ledger's entries", content_type = "application/x-ndjson", body = String),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn export(State(s): State<Shared>, Caller(who): Caller) -> Result<Response, Problem> {
    s.authorize(&who, Action::ExportLedger, Resource::Ledger).await?;
    let body = s
        .blocking(|rt| -> inland_runtime::Result<Vec<u8>> {
            let ledger = rt
                .evidence()
                .ledger()
                .ok_or_else(|| inland_runtime::Error::Invalid("this domain records into no ledger".into()))?;
            let mut out = Vec::new();
            for e in ledger.entries()? {
                out.extend(serde_json::to_vec(&e)?);
                out.push(b'\n');
            }
            Ok(out)
        })
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    Ok(([(header::CONTENT_TYPE, NDJSON)], body).into_response())
}

/// One text file of a signed ledger export.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportFile {
    /// `entries.jsonl`, `checkpoint.json` or `public.key`.
    pub name: String,
    /// The file's text, exactly as hashed and signed.
    pub content: String,
}

/// A ledger export a regulator verifies offline: the entries exactly as
/// hashed, a fresh signed checkpoint over them, and the domain's public key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignedExport {
    /// Entries covered by the checkpoint.
    pub tree_size: u64,
    /// The three files; write them to one directory and run `inland ledger verify-export`.
    pub files: Vec<ExportFile>,
}

/// The ledger as a signed export: what `inland ledger export` writes.
#[utoipa::path(get, path = "/api/ledger/signed-export", tag = "evidence",
    responses(
        (status = 200, description = "Entries, a signed checkpoint and the public key", body = SignedExport),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn signed_export(State(s): State<Shared>, Caller(who): Caller) -> Result<Json<SignedExport>, Problem> {
    s.authorize(&who, Action::ExportLedger, Resource::Ledger).await?;
    let export = s
        .blocking(|rt| -> inland_runtime::Result<SignedExport> {
            let ledger = rt
                .evidence()
                .ledger()
                .ok_or_else(|| inland_runtime::Error::Invalid("this domain records into no ledger".into()))?;
            let (files, checkpoint) = ledger.export_files()?;
            let mut out = Vec::new();
            for (name, bytes) in files {
                let content = String::from_utf8(bytes)
                    .map_err(|_| inland_runtime::Error::Internal(format!("{name} is not UTF-8")))?;
                out.push(ExportFile {
                    name: name.to_string(),
                    content,
                });
            }
            Ok(SignedExport {
                tree_size: checkpoint.tree_size,
                files: out,
            })
        })
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    Ok(Json(export))
}

/// The period of a report, and optionally one organization.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Period {
    /// First day, `YYYY-MM-DD`.
    from: String,
    /// Last day, `YYYY-MM-DD`.
    until: String,
    /// One organization only (usage report).
    operator: Option<String>,
}

fn dates(p: &Period) -> Result<(Date, Date), Problem> {
    let parse = |s: &str| Date::parse(s).map_err(|_| Problem::bad_request("dates are `YYYY-MM-DD`"));
    Ok((parse(&p.from)?, parse(&p.until)?))
}

/// The path both reports share: the period, the one authorization, then
/// the report built off the async threads, as JSON.
async fn report<R: serde::Serialize>(
    s: &Shared,
    who: &inland_runtime::Principal,
    query: Result<Query<Period>, QueryRejection>,
    make: impl FnOnce(inland_runtime::Runtime, Period, Date, Date) -> inland_runtime::Result<R> + Send + 'static,
) -> Result<Json<serde_json::Value>, Problem> {
    let Query(period) = query.map_err(query_problem)?;
    let (from, until) = dates(&period)?;
    s.authorize(who, Action::ViewReports, Resource::Ledger).await?;
    let report = s
        .blocking(move |rt| -> inland_runtime::Result<serde_json::Value> {
            Ok(serde_json::to_value(&make(rt, period, from, until)?)?)
        })
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    Ok(Json(report))
}

/// Usage over a period, computed from the ledger.
#[utoipa::path(get, path = "/api/reports/usage", tag = "evidence",
    params(Period),
    responses(
        (status = 200, description = "The usage report", body = Object),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn usage(
    State(s): State<Shared>,
    Caller(who): Caller,
    query: Result<Query<Period>, QueryRejection>,
) -> Result<Json<serde_json::Value>, Problem> {
    report(&s, &who, query, |rt, period, from, until| {
        rt.evidence().usage_report(period.operator.as_deref(), from, until)
    })
    .await
}

/// Each clause of the standard, its control and the evidence for a period.
#[utoipa::path(get, path = "/api/reports/compliance", tag = "evidence",
    params(Period),
    responses(
        (status = 200, description = "The compliance report", body = Vec<Object>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn compliance(
    State(s): State<Shared>,
    Caller(who): Caller,
    query: Result<Query<Period>, QueryRejection>,
) -> Result<Json<serde_json::Value>, Problem> {
    report(&s, &who, query, |rt, _, from, until| {
        rt.evidence().compliance_report(from, until)
    })
    .await
}
