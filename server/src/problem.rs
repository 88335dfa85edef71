//! Errors as RFC 9457 problem documents (`application/problem+json`). A
//! problem names what was wrong with the request; its text is fixed or comes
//! from the request itself, never from the domain's data. Errors of the
//! domain itself are logged inside the domain and answered with a generic
//! problem.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document (RFC 9457).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong with this request.
    pub detail: String,
}

impl Problem {
    /// A problem of kind `slug` with `status`.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// No valid token: missing, malformed, unknown, expired or revoked.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Not authenticated", detail)
    }

    /// The access policy refuses this action (the refusal is recorded).
    pub fn forbidden(action: &str) -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed",
            format!("the domain's access policy does not allow {action} here; the refusal was recorded"),
        )
    }

    /// The request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request", detail)
    }

    /// Nothing has this id.
    pub fn not_found(what: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no such {what}"),
        )
    }

    /// The body is well-formed but asks for something invalid, named in `detail`.
    pub fn invalid_body(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "Invalid request body",
            detail,
        )
    }

    /// A bound on how much may be asked was reached (a quota, jobs in flight).
    pub fn too_many(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::TOO_MANY_REQUESTS, "too-many", "Too many requests", detail)
    }

    /// The body is larger than allowed; it was not read whole.
    pub fn too_large(limit_bytes: u64) -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request body too large",
            format!("the body exceeds the limit of {limit_bytes} bytes"),
        )
    }

    /// The body is not of the media type expected.
    pub fn unsupported_media_type(expected: &str) -> Self {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            format!("send the body as {expected}"),
        )
    }

    /// The request is well-formed but the domain's rules refuse it.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            "Refused by the domain's rules",
            detail,
        )
    }

    /// The domain failed; details are in its own log.
    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the domain could not complete the request; the details are in its log",
        )
    }

    /// A runtime error answered to someone inside the domain (reviewers,
    /// admins): its text may name records, so it is never used for operators.
    pub fn from_runtime_for_insider(e: inland_runtime::Error) -> Self {
        use inland_runtime::Error as E;
        match e {
            E::Invalid(m) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Invalid request", m),
            E::NotFound(what) => Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("{what} not found"),
            ),
            E::Refused(m) => Problem::conflict(m),
            E::Exists(what) => Problem::conflict(format!("{what} already exists")),
            other => Problem::log_internal(&other),
        }
    }

    /// Logs a failure of the domain inside it and answers generically.
    pub fn log_internal(e: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %e, "request failed");
        Problem::internal()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
