//! The web console (#21): reviewers (and next admins and auditors) work in
//! a browser, served by `inland serve` under `/console`. Pages are rendered
//! on the server with escaping by construction; no script runs (the CSP
//! forbids every script), nothing is loaded from outside the domain, and
//! every decision goes through the same runtime calls and the same Cedar
//! policy as the API, with the same denials recorded.
//!
//! - `session`: sign-in with an API token, the session cookie, CSRF tokens.
//! - `i18n`: every string, in Chinese (the default) and English.
//! - `layout`: the page shell and the security headers.
//! - `queue`, `output`: the reviewer's pages and the vote form.
//! - `datasets`, `policy`, `grants`, `tokens`: the admin's pages.
//! - `ledger`, `reports` (with `chart`): the auditor's pages.

mod chart;
mod datasets;
mod grants;
pub(crate) mod i18n;
mod layout;
mod ledger;
mod output;
mod policy;
mod queue;
mod reports;
pub(crate) mod session;
mod tokens;

use crate::authz::{Action, Resource};
use crate::state::Shared;
use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use i18n::{Lang, Msg, t};
use inland_runtime::{Principal, Runtime};
use layout::{Viewer, answer, notice, page, see_other};
use maud::html;
use session::{Session, cookie};

/// The console's routes, with its security headers.
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/console", get(|| async { see_other("/console/queue") }))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/lang/{code}", get(set_lang))
        .route("/console/queue", get(queue::page))
        .route("/console/outputs/{job}/{name}", get(output::page))
        .route("/console/outputs/{job}/{name}/vote", post(output::vote))
        .route("/console/ledger", get(ledger::page))
        .route("/console/ledger/verify", get(ledger::verify))
        .route("/console/ledger/entries/{seq}", get(ledger::entry))
        .route("/console/reports", get(reports::page))
        .route("/console/reports/package", post(reports::package))
        .route("/console/datasets", get(datasets::list))
        .route("/console/datasets/{name}", get(datasets::show))
        .route("/console/policy", get(policy::page).post(policy::apply))
        .route("/console/grants", get(grants::page))
        .route(
            "/console/grants/{id}/terminate",
            get(grants::confirm).post(grants::terminate),
        )
        .route("/console/tokens", get(tokens::page).post(tokens::issue))
        .route("/console/tokens/{id}/revoke", post(tokens::revoke))
        .route("/console/static/console.css", get(stylesheet))
        .layer(middleware::from_fn(same_origin_posts))
        .layer(middleware::from_fn(layout::security_headers))
}

/// A signed-in person: their session, verified token and language.
pub(crate) struct Person {
    pub(crate) who: Principal,
    pub(crate) session: Session,
    pub(crate) session_id: String,
    pub(crate) lang: Lang,
}

impl Person {
    fn viewer(&self) -> Viewer<'_> {
        Viewer {
            who: &self.who,
            csrf: &self.session.csrf,
        }
    }

    /// A page that says one thing to this person, under their header.
    pub(crate) fn notice(&self, status: StatusCode, message: &str) -> Response {
        notice(self.lang, status, message, Some(self.viewer()))
    }

    /// A page that says one thing from the catalogue.
    pub(crate) fn says(&self, status: StatusCode, msg: Msg) -> Response {
        self.notice(status, t(self.lang, msg))
    }

    /// The one authorization of a page: a denial (recorded by `authorize`)
    /// is answered as the console's refusal page, anything else as it is.
    pub(crate) async fn authorize(&self, s: &Shared, action: Action, resource: Resource) -> Result<(), Response> {
        match s.authorize(&self.who, action, resource).await {
            Ok(()) => Ok(()),
            Err(problem) if problem.status == 403 => Err(self.says(StatusCode::FORBIDDEN, Msg::Forbidden)),
            Err(problem) => Err(problem.into_response()),
        }
    }

    /// Runs `f` on a blocking thread. A failure is logged with `what` and
    /// shown only as "internal error": its text may name the domain's files.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        s: &Shared,
        what: &'static str,
        f: impl FnOnce(Runtime) -> inland_runtime::Result<T> + Send + 'static,
    ) -> Result<T, Response> {
        match s.blocking(f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "{what}");
                Err(self.says(StatusCode::INTERNAL_SERVER_ERROR, Msg::InternalError))
            }
            Err(problem) => Err(problem.into_response()),
        }
    }

    /// As [`Person::blocking`], for a change an insider (an admin, a
    /// reviewer) asked for: a refusal by the domain's rules is shown in its
    /// own words after `prefix` (422), any other failure as "internal error".
    pub(crate) async fn change<T: Send + 'static>(
        &self,
        s: &Shared,
        what: &'static str,
        prefix: Msg,
        f: impl FnOnce(Runtime) -> inland_runtime::Result<T> + Send + 'static,
    ) -> Result<T, Response> {
        use inland_runtime::Error as E;
        match s.blocking(f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e @ (E::Invalid(_) | E::Refused(_) | E::NotFound(_) | E::Exists(_)))) => {
                let message = format!("{}{e}", t(self.lang, prefix));
                Err(self.notice(StatusCode::UNPROCESSABLE_ENTITY, &message))
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "{what}");
                Err(self.says(StatusCode::INTERNAL_SERVER_ERROR, Msg::InternalError))
            }
            Err(problem) => Err(problem.into_response()),
        }
    }

    /// The refusal of a posted form that lacks this session's CSRF token, if it does.
    pub(crate) fn forged(&self, fields: &[(String, String)]) -> Option<Response> {
        (!session::csrf_matches(&self.session, field(fields, "csrf").unwrap_or_default()))
            .then(|| self.says(StatusCode::FORBIDDEN, Msg::CsrfFailed))
    }
}

impl FromRequestParts<Shared> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        let lang = session::lang(&parts.headers);
        let to_login = || see_other("/console/login");
        let Some(session_id) = cookie(&parts.headers, session::SESSION_COOKIE) else {
            return Err(to_login());
        };
        let Some(session) = state.console.get(&session_id) else {
            return Err(to_login());
        };
        // Checked on every request: a revoked or expired token ends the session.
        let token_id = session.token_id.clone();
        match state.blocking(move |rt| rt.access().verify_session(&token_id)).await {
            // Operators never hold a session (sign-in refuses them); should one
            // exist, it ends here rather than be trusted.
            Ok(Ok(Ok(who))) if who.role == inland_runtime::Role::Operator => {
                state.console.close(&session_id);
                Err(to_login())
            }
            Ok(Ok(Ok(who))) => Ok(Person {
                who,
                session,
                session_id,
                lang,
            }),
            Ok(Ok(Err(_))) => {
                state.console.close(&session_id);
                Err(to_login())
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "verifying a console session");
                Err(notice(lang, StatusCode::INTERNAL_SERVER_ERROR, "internal error", None))
            }
            Err(problem) => Err(problem.into_response()),
        }
    }
}

/// Refuses a form posted from another site, before anything reads it: the
/// session's CSRF token guards the forms of a signed-in person, and this
/// guards sign-in itself (no one may sign a reviewer in as someone else).
async fn same_origin_posts(request: axum::extract::Request, next: middleware::Next) -> Response {
    if request.method() == axum::http::Method::POST {
        let headers = request.headers();
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let cross_site = text("sec-fetch-site").is_some_and(|s| s != "same-origin" && s != "none");
        let fetch_site = text("sec-fetch-site");
        let foreign_origin = match (text("origin"), text("host")) {
            // An opaque origin counts only where the browser also says same-origin.
            (Some(origin), _) if origin == "null" => fetch_site.is_none(),
            (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) != Some(host.as_str()),
            (Some(_), None) => true,
            _ => false,
        };
        if cross_site || foreign_origin {
            let lang = session::lang(headers);
            return notice(lang, StatusCode::FORBIDDEN, t(lang, Msg::CsrfFailed), None);
        }
    }
    next.run(request).await
}

/// The fields of a form body (`application/x-www-form-urlencoded`).
pub(crate) fn form(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes()).into_owned().collect()
}

/// The first value of field `name`.
pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn login_page(headers: HeaderMap) -> Response {
    let lang = session::lang(&headers);
    answer(StatusCode::OK, login_form(lang, None))
}

fn login_form(lang: Lang, error: Option<&str>) -> maud::Markup {
    page(
        lang,
        t(lang, Msg::SignIn),
        None,
        html! {
            @if let Some(e) = error { p class="alarm" role="alert" { (e) } }
            form method="post" action="/console/login" {
                label for="token" { (t(lang, Msg::TokenLabel)) }
                input id="token" name="token" type="password" autocomplete="off" required;
                p class="muted" { (t(lang, Msg::TokenHelp)) }
                button type="submit" { (t(lang, Msg::SignIn)) }
            }
        },
    )
}

async fn login(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let lang = session::lang(&headers);
    let fields = form(&body);
    let checked = field(&fields, "token").unwrap_or_default().trim().to_string();
    let verified = match s.blocking(move |rt| rt.access().verify(&checked)).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "verifying a console sign-in");
            return notice(lang, StatusCode::INTERNAL_SERVER_ERROR, "internal error", None);
        }
        Err(problem) => return problem.into_response(),
    };
    let who = match verified {
        Ok(who) => who,
        Err(_) => return answer(StatusCode::UNAUTHORIZED, login_form(lang, Some(t(lang, Msg::BadToken)))),
    };
    // Operators have nothing to do here (they never read quarantine), and
    // must not hold sessions that could crowd out reviewers.
    if who.role == inland_runtime::Role::Operator {
        return answer(
            StatusCode::FORBIDDEN,
            login_form(lang, Some(t(lang, Msg::NotForOperators))),
        );
    }
    // A session id the browser brought is never reused: a fresh one each sign-in.
    if let Some(old) = cookie(&headers, session::SESSION_COOKIE) {
        s.console.close(&old);
    }
    let Some(id) = s.console.open(who.token_id.clone()) else {
        return notice(lang, StatusCode::SERVICE_UNAVAILABLE, t(lang, Msg::Busy), None);
    };
    // Auditors read the record, not the queue.
    let home = match who.role {
        inland_runtime::Role::Auditor => "/console/ledger",
        _ => "/console/queue",
    };
    let mut response = see_other(home);
    if let Ok(v) = session::session_cookie(&id, s.tls).parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn logout(State(s): State<Shared>, person: Person, body: String) -> Response {
    let fields = form(&body);
    if let Some(r) = person.forged(&fields) {
        return r;
    }
    s.console.close(&person.session_id);
    let mut response = see_other("/console/login");
    if let Ok(v) = session::cleared_cookie(s.tls).parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// Sets the language cookie and returns to the queue (a preference; no
/// state of the domain changes).
async fn set_lang(State(s): State<Shared>, Path(code): Path<String>) -> Response {
    let Some(lang) = Lang::parse(&code) else {
        return notice(
            Lang::default(),
            StatusCode::NOT_FOUND,
            t(Lang::default(), Msg::NotFound),
            None,
        );
    };
    let mut response = see_other("/console/queue");
    let value = format!(
        "{}={}; Path=/console; SameSite=Strict; Max-Age=31536000{}",
        session::LANG_COOKIE,
        lang.short(),
        session::secure(s.tls)
    );
    if let Ok(v) = value.parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("console.css"),
    )
        .into_response()
}
