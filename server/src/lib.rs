//! # inland-server: the domain server
//!
//! The one long-running process that owns a domain directory. People reach
//! it over HTTP with bearer tokens issued by an admin; a Cedar policy decides
//! what each role may do, one decision per request, and every denial is
//! recorded in the evidence ledger. Operators are outside the domain: what
//! they are shown depends on no data that has not passed review.
//!
//! ## Architecture
//! - `auth`: the bearer-token extractor; identity comes only from the token.
//! - `authz`: the Cedar schema, the default policy, and the one call that decides.
//! - `api`: the handlers under `/api/`, one module per noun.
//! - `problem`: errors as RFC 9457 problem documents.
//! - `openapi`: the OpenAPI 3.1 description served at `/openapi.json`.
//!
//! ## Example
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = inland_runtime::Runtime::open(std::path::Path::new("./domain"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7878").await?;
//! inland_server::serve(runtime, listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod api;
mod auth;
pub mod authz;
mod console;
pub mod limit;
mod openapi;
mod problem;
mod state;
pub mod tls;

pub use api::evidence::NDJSON;
pub use api::jobs::{JobPage, JobState, JobView, Submitted};
pub use api::outputs::{OutputView, QueueItem, VoteBody, VoteDecision, VoteResult};
pub use api::whoami::WhoAmI;
pub use authz::{AccessPolicy, Action, AuthzError, Resource};
pub use openapi::ApiDoc;
pub use problem::{PROBLEM_JSON, Problem};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use inland_runtime::Runtime;
use state::AppState;
use std::future::Future;
use std::sync::Arc;
use utoipa::OpenApi;

/// The largest JSON body accepted (votes and the like).
pub const JSON_LIMIT: usize = 64 * 1024;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The access policy did not load.
    #[error(transparent)]
    Policy(#[from] AuthzError),
    /// The TLS certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The domain could not be read.
    #[error(transparent)]
    Domain(#[from] inland_runtime::Error),
    /// Serving the listener failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Source archives read at once, server-wide.
const UPLOADS_AT_ONCE: usize = 4;

/// The API over `runtime`, with the default access policy; for [`serve`]
/// and for tests that drive it in-process.
pub fn router(runtime: Runtime) -> Result<Router, ServerError> {
    router_for(runtime, false)
}

/// The API over `runtime`, served over TLS or not (the console's cookies
/// are `Secure` over TLS).
fn router_for(runtime: Runtime, tls: bool) -> Result<Router, ServerError> {
    let module_limit = runtime.domain().config().limits.max_module_mib << 20;
    let inflight_per_organization = 2 * runtime.domain().config().limits.max_concurrent_jobs as usize;
    // The policy an admin set last, or the shipped default. A stored policy
    // was validated when it was set; one that no longer validates (a newer
    // schema) stops the server rather than fall back to other rules.
    let policy = match runtime.access().access_policy()? {
        Some(v) => (v.version, AccessPolicy::new(&v.text)?),
        None => (0, AccessPolicy::default_policy()?),
    };
    let state = Arc::new(AppState {
        runtime,
        policy: std::sync::RwLock::new((policy.0, Arc::new(policy.1))),
        inflight: Default::default(),
        waiting: Default::default(),
        module_limit,
        inflight_per_organization,
        policy_change: Default::default(),
        uploads: tokio::sync::Semaphore::new(UPLOADS_AT_ONCE),
        console: Default::default(),
        tls,
    });
    Ok(Router::new()
        .route("/api/whoami", get(api::whoami::whoami))
        .route("/api/jobs", get(api::jobs::list).post(api::jobs::submit))
        .route("/api/jobs/{id}", get(api::jobs::view))
        .route("/api/jobs/{id}/cancel", post(api::jobs::cancel))
        .route("/api/grants/{id}/budget", get(api::budget::budget))
        .route("/api/jobs/{id}/source", get(api::sources::job_source))
        .route("/api/sources", post(api::sources::submit))
        .route("/api/outputs", get(api::outputs::queue))
        .route("/api/outputs/{job}/{name}", get(api::outputs::view))
        .route("/api/outputs/{job}/{name}/votes", post(api::outputs::vote))
        .route("/api/outputs/{job}/{name}/bundle", get(api::outputs::bundle))
        .route("/api/outputs/{job}/{name}/rows", get(api::outputs::rows))
        .route("/api/ledger/export", get(api::evidence::export))
        .route("/api/ledger/signed-export", get(api::evidence::signed_export))
        .route("/api/reports/usage", get(api::evidence::usage))
        .route("/api/reports/compliance", get(api::evidence::compliance))
        .route(
            "/api/admin/access-policy",
            get(api::admin::access_policy).put(api::admin::set_access_policy),
        )
        .route(
            "/api/admin/tokens",
            get(api::admin::tokens).post(api::admin::issue_token),
        )
        .route(
            "/api/admin/tokens/{id}",
            axum::routing::delete(api::admin::revoke_token),
        )
        .route("/api/admin/domain", get(api::admin::domain))
        .route("/api/admin/operators", post(api::registry::add_operator))
        .route(
            "/api/admin/operators/{name}/status",
            post(api::registry::operator_status),
        )
        .route("/api/admin/grants", post(api::registry::issue_grant))
        .route(
            "/api/admin/grants/{id}/termination",
            post(api::registry::terminate_grant),
        )
        .route("/api/admin/reviewers", post(api::registry::add_reviewer))
        .route(
            "/api/admin/domain-policy",
            axum::routing::put(api::registry::apply_policy),
        )
        .route(
            "/api/components/{sha256}/approval",
            post(api::components::approve).delete(api::components::revoke),
        )
        .route("/openapi.json", get(openapi_json))
        .merge(console::routes())
        .route_layer(middleware::from_fn(trace))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .with_state(state))
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    runtime: Runtime,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let app = router(runtime)?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving the domain");
    }
    let listener = limit::Limited::new(listener, limit::MAX_CONNECTIONS);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// Serves `runtime` on a free loopback port from a thread and async runtime
/// of its own, until the process ends; returns the base URL. For the demo,
/// tests and benchmarks that drive a real server in-process.
pub fn spawn_on_loopback(runtime: Runtime) -> Result<String, ServerError> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let tokio_runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    std::thread::spawn(move || {
        tokio_runtime.block_on(async move {
            let served = match tokio::net::TcpListener::from_std(std_listener) {
                Ok(listener) => serve(runtime, listener, std::future::pending()).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = served {
                tracing::error!(error = %e, "the in-process server stopped");
            }
        });
    });
    Ok(format!("http://{addr}"))
}

/// Serves the API over TLS on `listener` until `shutdown` completes.
pub async fn serve_tls(
    runtime: Runtime,
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // Browsers that reached the console over TLS keep to it (HSTS).
    let app = router_for(runtime, true)?.layer(middleware::from_fn(strict_transport));
    let listener = tls::TlsListener::new(listener, acceptor)?;
    if let Ok(addr) = axum::serve::Listener::local_addr(&listener) {
        tracing::info!(%addr, "serving the domain over TLS");
    }
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// Adds `Strict-Transport-Security` to every answer served over TLS.
async fn strict_transport(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static("max-age=31536000"),
    );
    response
}

async fn openapi_json() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(text) => ([(axum::http::header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => Problem::log_internal(&e).into_response(),
    }
}

async fn not_found() -> Problem {
    Problem::not_found("resource at this path")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this path does not accept that method",
    )
}

/// One span per request: the method and the route, never the query or a token.
async fn trace(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "-".into());
    let span = tracing::info_span!("request", method = %request.method(), route = %route);
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "answered"));
    response
}
