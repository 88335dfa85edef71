//! Authentication: every request proves who it is with a bearer token. The
//! identity comes only from the token, never from a field of the request.

use crate::problem::Problem;
use crate::state::Shared;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use inland_runtime::Principal;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<Shared> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Problem> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| Problem::unauthorized("send a token: `Authorization: Bearer inl_…`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| Problem::unauthorized("the Authorization header is not `Bearer <token>`"))?
            .to_string();
        match state.blocking(move |rt| rt.access().verify(&token)).await? {
            Ok(Ok(principal)) => Ok(Caller(principal)),
            Ok(Err(rejected)) => Err(Problem::unauthorized(rejected.to_string())),
            Err(e) => Err(Problem::log_internal(&e)),
        }
    }
}
