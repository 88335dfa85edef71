//! The domain policy page: the version in force with its hash and text,
//! every earlier version, and a form to apply a new one. A policy with
//! problems changes nothing; the page shows each problem at its line and
//! column, beside the text the admin sent.

use super::i18n::{Lang, Msg, t};
use super::layout::{answer, page as shell, see_other};
use super::{Person, field, form};
use crate::authz::{Action, Resource};
use crate::state::Shared;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use inland_runtime::{Diagnostic, PolicyVersion};
use maud::{Markup, html};
use serde::Deserialize;

/// After a successful apply, the version that went into force.
#[derive(Debug, Deserialize)]
pub(crate) struct Applied {
    applied: Option<u64>,
}

type Versions = (Vec<PolicyVersion>, Option<String>);

async fn versions(s: &Shared, person: &Person) -> Result<Versions, Response> {
    person
        .blocking(s, "reading the domain policy for the console", |rt| {
            rt.policies().versions()
        })
        .await
}

/// `text` with line numbers, the lines that have problems marked and their
/// problems beneath them.
fn annotated(lang: Lang, text: &str, problems: &[Diagnostic]) -> Markup {
    html! {
        ol class="source" id="policy-source" aria-label=(t(lang, Msg::PolicyText)) {
            @for (i, line) in text.lines().enumerate() {
                @let here: Vec<&Diagnostic> = problems.iter().filter(|d| d.line == i + 1).collect();
                li class=[(!here.is_empty()).then_some("bad")] {
                    code { (line) " " }
                    @for d in here {
                        span class="problem" role="note" {
                            (d.line) ":" (d.column) " " (d.message)
                        }
                    }
                }
            }
        }
    }
}

fn render(
    lang: Lang,
    person: &Person,
    (versions, text): &Versions,
    submitted: Option<(&str, &[Diagnostic])>,
) -> Markup {
    let current = versions.last();
    html! {
        @if let Some((sent, problems)) = submitted {
            div class="alarm" id="policy-problems" role="alert" {
                p { (t(lang, Msg::PolicyHasProblems)) }
                ul { @for d in problems { li { (d.line) ":" (d.column) ": " (d.message) } } }
            }
            (annotated(lang, sent, problems))
        }
        @if let Some(v) = current {
            dl id="policy-version" {
                dt { (t(lang, Msg::Version)) } dd { (v.version) }
                dt { "SHA-256" } dd { code { (v.sha256) } }
                dt { (t(lang, Msg::Time)) } dd { (inland_runtime::ledger::iso8601(v.applied_at_ms)) }
            }
        } @else {
            p { (t(lang, Msg::NoPolicy)) }
        }
        @if person.who.role == inland_runtime::Role::Admin {
            h2 { (t(lang, Msg::ApplyPolicy)) }
            form method="post" action="/console/policy" {
                input type="hidden" name="csrf" value=(person.session.csrf);
                label for="policy" { (t(lang, Msg::PolicyText)) }
                textarea id="policy" name="policy" rows="16" spellcheck="false" required {
                    (submitted.map(|(sent, _)| sent).or(text.as_deref()).unwrap_or_default())
                }
                button type="submit" { (t(lang, Msg::ApplyPolicy)) }
            }
        }
        @if let Some(text) = text {
            h2 { (t(lang, Msg::PolicyInForce)) }
            (annotated(lang, text, &[]))
        }
        @if versions.len() > 1 {
            h2 { (t(lang, Msg::EarlierVersions)) }
            ul { @for v in versions.iter().rev().skip(1) {
                li { (v.version) " · " code { (v.sha256) } " · " (inland_runtime::ledger::iso8601(v.applied_at_ms)) }
            } }
        }
    }
}

/// The policy page.
pub(crate) async fn page(State(s): State<Shared>, person: Person, Query(q): Query<Applied>) -> Response {
    let lang = person.lang;
    if let Err(r) = person.authorize(&s, Action::ViewDomain, Resource::Domain).await {
        return r;
    }
    let v = match versions(&s, &person).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body = html! {
        @if let Some(n) = q.applied {
            p class="notice" id="applied" role="status" { (t(lang, Msg::PolicyApplied)) " " (n) }
        }
        (render(lang, &person, &v, None))
    };
    answer(
        StatusCode::OK,
        shell(lang, t(lang, Msg::Policy), Some(person.viewer()), body),
    )
}

/// Applies the policy from the form: the same checks and the same one
/// transaction as `PUT /api/admin/domain-policy`.
pub(crate) async fn apply(State(s): State<Shared>, person: Person, body: String) -> Response {
    let lang = person.lang;
    let fields = form(&body);
    if let Some(r) = person.forged(&fields) {
        return r;
    }
    if let Err(r) = person.authorize(&s, Action::ManageDomain, Resource::Domain).await {
        return r;
    }
    // Browsers send CR LF in text areas; the policy is kept as the admin wrote it otherwise.
    let text = field(&fields, "policy").unwrap_or_default().replace("\r\n", "\n");
    let sent = text.clone();
    let applied = person
        .change(&s, "applying a policy from the console", Msg::Refusal, move |rt| {
            rt.policies().apply_text(&sent, "domain-policy.toml")
        })
        .await;
    match applied {
        Ok(Ok(v)) => see_other(&format!("/console/policy?applied={}", v.version)),
        Ok(Err(problems)) => {
            let v = match versions(&s, &person).await {
                Ok(v) => v,
                Err(r) => return r,
            };
            let body = render(lang, &person, &v, Some((&text, &problems)));
            answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                shell(lang, t(lang, Msg::Policy), Some(person.viewer()), body),
            )
        }
        Err(r) => r,
    }
}
