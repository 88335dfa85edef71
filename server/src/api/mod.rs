//! The HTTP API under `/api/`, one module per noun. Each handler
//! authenticates the caller (the [`crate::auth::Caller`] extractor),
//! describes the request as one action on one resource for the access
//! policy, calls the domain's service and shapes the answer.

pub(crate) mod admin;
pub(crate) mod budget;
pub(crate) mod components;
pub(crate) mod evidence;
pub(crate) mod jobs;
pub(crate) mod outputs;
pub(crate) mod page;
pub(crate) mod registry;
pub(crate) mod sources;
pub(crate) mod whoami;

use crate::problem::Problem;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;

/// A query string that does not parse, as a problem naming the parameter.
pub(crate) fn query_problem(e: QueryRejection) -> Problem {
    Problem::bad_request(format!("the query string is not valid: {}", e.body_text()))
}

/// A JSON body that is not acceptable, as a problem naming why.
pub(crate) fn json_problem(e: JsonRejection) -> Problem {
    match e {
        JsonRejection::MissingJsonContentType(_) => Problem::unsupported_media_type("application/json"),
        JsonRejection::JsonSyntaxError(_) => Problem::bad_request("the body is not valid JSON"),
        JsonRejection::JsonDataError(e) => Problem::invalid_body(e.body_text()),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Problem::too_large(crate::JSON_LIMIT as u64),
        other => Problem::bad_request(other.body_text()),
    }
}

/// A grant as the access policy sees it: its id and the organization that
/// holds it (`None` for an unknown id, which then belongs to no one).
/// A value's serde name (`"aggregate-only"`), or its JSON where it has
/// fields: how records' enums are shown by the API and the console.
pub(crate) fn word<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => String::new(),
    }
}

pub(crate) async fn grant_resource(s: &crate::state::Shared, id: &str) -> Result<crate::authz::Resource, Problem> {
    let g = id.to_string();
    let holder = s
        .blocking(move |rt| match rt.governance().grant(&g) {
            Ok(g) => Ok(Some(g.operator)),
            Err(inland_runtime::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        })
        .await?
        .map_err(|e| Problem::log_internal(&e))?;
    Ok(crate::authz::Resource::Grant {
        id: id.to_string(),
        organization: holder,
    })
}

/// Whether `id` is shaped like a job id (a UUID), before anything is looked up.
pub(crate) fn job_id_shaped(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}
