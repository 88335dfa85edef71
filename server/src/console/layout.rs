//! The page shell every console page shares, and how pages are answered:
//! HTML escaped by construction (maud), one stylesheet from this server,
//! and headers that forbid scripts, framing and loading anything from
//! elsewhere.

use super::i18n::{Lang, Msg, t};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use inland_runtime::Principal;
use maud::{DOCTYPE, Markup, html};

/// The Content-Security-Policy of every console answer: nothing runs, and
/// nothing is loaded but this server's stylesheet.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// Adds the console's security headers to every answer under `/console`.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Same-origin: nothing leaks to other sites, and the browser keeps
    // sending the page's own Origin with its forms (checked on every POST).
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Who is looking, for the header: their name and role, and the form that signs them out.
pub struct Viewer<'a> {
    /// The person.
    pub who: &'a Principal,
    /// Their session's CSRF token.
    pub csrf: &'a str,
}

/// A whole page: header (title, navigation, language, who is signed in), then `body`.
pub fn page(lang: Lang, heading: &str, viewer: Option<Viewer<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (heading) " · " (t(lang, Msg::Title)) }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                header class="top" {
                    span class="brand" { (t(lang, Msg::Title)) }
                    nav aria-label=(t(lang, Msg::Title)) {
                        @if let Some(v) = &viewer {
                            @if v.who.role != inland_runtime::Role::Auditor {
                                a href="/console/queue" { (t(lang, Msg::Queue)) }
                            }
                            @if v.who.role == inland_runtime::Role::Admin {
                                a href="/console/datasets" { (t(lang, Msg::Datasets)) }
                                a href="/console/policy" { (t(lang, Msg::Policy)) }
                                a href="/console/grants" { (t(lang, Msg::Grants)) }
                                a href="/console/tokens" { (t(lang, Msg::Tokens)) }
                            }
                            @if matches!(v.who.role, inland_runtime::Role::Admin | inland_runtime::Role::Auditor) {
                                a href="/console/ledger" { (t(lang, Msg::Ledger)) }
                                a href="/console/reports" { (t(lang, Msg::Reports)) }
                            }
                        }
                        span class="lang" {
                            (t(lang, Msg::Language)) ": "
                            a href="/console/lang/zh" lang="zh-CN" { "中文" }
                            " · "
                            a href="/console/lang/en" lang="en" { "English" }
                        }
                    }
                    @if let Some(v) = &viewer {
                        form class="who" method="post" action="/console/logout" {
                            span { (t(lang, Msg::SignedInAs)) ": " (v.who.name) " (" (v.who.role.to_string()) ")" }
                            input type="hidden" name="csrf" value=(v.csrf);
                            button type="submit" { (t(lang, Msg::SignOut)) }
                        }
                    }
                }
                main { h1 { (heading) } (body) }
            }
        }
    }
}

/// An HTML answer.
pub fn answer(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A page that says one thing (a refusal, a stale form), with `status`.
pub fn notice(lang: Lang, status: StatusCode, message: &str, viewer: Option<Viewer<'_>>) -> Response {
    answer(
        status,
        page(
            lang,
            message,
            viewer,
            html! { p class="notice" role="alert" { (message) } },
        ),
    )
}

/// A redirect after a form (303: the browser follows with GET).
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}
