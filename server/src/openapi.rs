//! The OpenAPI 3.1 description, generated from the handlers' annotations
//! and served at `/openapi.json`.

use crate::api;
use crate::problem::Problem;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Every path and schema of the API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Inland domain server", description = "Jobs, reviews and evidence of one Inland trusted domain. Every request carries a bearer token; a Cedar policy decides what each role may do."),
    paths(
        api::whoami::whoami,
        api::jobs::submit,
        api::jobs::list,
        api::jobs::view,
        api::jobs::cancel,
        api::budget::budget,
        api::sources::submit,
        api::sources::job_source,
        api::outputs::queue,
        api::outputs::view,
        api::outputs::vote,
        api::outputs::bundle,
        api::outputs::rows,
        api::evidence::export,
        api::evidence::signed_export,
        api::evidence::usage,
        api::evidence::compliance,
        api::admin::access_policy,
        api::admin::set_access_policy,
        api::admin::tokens,
        api::admin::issue_token,
        api::admin::revoke_token,
        api::admin::domain,
        api::registry::add_operator,
        api::registry::operator_status,
        api::registry::issue_grant,
        api::registry::terminate_grant,
        api::registry::add_reviewer,
        api::registry::apply_policy,
        api::components::approve,
        api::components::revoke,
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
