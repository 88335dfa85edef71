//! Tokens: every token's record (never its secret), a form to issue one
//! whose secret is shown once on the answer and nowhere after, and
//! revocation, which ends the token's API calls and console sessions at once.

use super::i18n::{Msg, t};
use super::layout::{answer, page as shell, see_other};
use super::{Person, field, form};
use crate::api::word;
use crate::authz::{Action, Resource};
use crate::state::Shared;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use inland_runtime::{Role, TokenRecord};
use maud::{Markup, html};
use serde::Deserialize;

/// Roles a token may be issued for.
const ROLES: [&str; 4] = ["reviewer", "auditor", "operator", "admin"];

/// After an issue or a revocation, the token it concerned.
#[derive(Debug, Deserialize)]
pub(crate) struct Done {
    issued: Option<String>,
    revoked: Option<String>,
}

use crate::api::admin::now_ms;

async fn list(s: &Shared, person: &Person) -> Result<Vec<TokenRecord>, Response> {
    person.authorize(s, Action::ManageTokens, Resource::Domain).await?;
    person
        .blocking(s, "listing tokens for the console", |rt| rt.access().list())
        .await
}

fn render(person: &Person, tokens: &[TokenRecord], top: Markup) -> Markup {
    let lang = person.lang;
    let now = now_ms();
    html! {
        (top)
        h2 { (t(lang, Msg::IssueToken)) }
        form method="post" action="/console/tokens" class="stacked" {
            input type="hidden" name="csrf" value=(person.session.csrf);
            label for="role" { (t(lang, Msg::Role)) }
            select id="role" name="role" { @for r in ROLES { option value=(r) { (r) } } }
            label for="name" { (t(lang, Msg::Name)) }
            input id="name" name="name" type="text" required maxlength="64" pattern="[a-z0-9._\\-]{1,64}";
            label for="organization" { (t(lang, Msg::OrganizationIfOperator)) }
            input id="organization" name="organization" type="text";
            label for="days" { (t(lang, Msg::ExpiresInDays)) }
            input id="days" name="days" type="number" min="1" max="366" value="90" required;
            button type="submit" { (t(lang, Msg::IssueToken)) }
        }
        h2 { (t(lang, Msg::Tokens)) }
        div class="scroll" {
            table id="tokens" {
                thead { tr {
                    th scope="col" { "ID" }
                    th scope="col" { (t(lang, Msg::Role)) }
                    th scope="col" { (t(lang, Msg::Name)) }
                    th scope="col" { (t(lang, Msg::Operator)) }
                    th scope="col" { (t(lang, Msg::Expires)) }
                    th scope="col" { (t(lang, Msg::Status)) }
                } }
                tbody { @for k in tokens { tr {
                    td { code { (k.id) } }
                    td { (word(&k.role)) }
                    td { (k.name) }
                    td { (k.operator.as_deref().unwrap_or("")) }
                    td { (inland_runtime::ledger::iso8601(k.expires_at_ms)) }
                    td {
                        @if k.revoked_at_ms.is_some() {
                            (t(lang, Msg::Revoked))
                        } @else if k.expires_at_ms <= now {
                            (t(lang, Msg::Expired))
                        } @else {
                            form class="inline" method="post" action={ "/console/tokens/" (k.id) "/revoke" } {
                                input type="hidden" name="csrf" value=(person.session.csrf);
                                button type="submit" class="danger" aria-label={ (t(lang, Msg::Revoke)) " " (k.id) } {
                                    (t(lang, Msg::Revoke))
                                }
                            }
                        }
                    }
                } } }
            }
        }
    }
}

/// The tokens page.
pub(crate) async fn page(State(s): State<Shared>, person: Person, Query(q): Query<Done>) -> Response {
    let lang = person.lang;
    let tokens = match list(&s, &person).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    // Said only of a token that is what the link claims: a crafted link
    // cannot put words in the console's mouth.
    let revoked = q
        .revoked
        .as_deref()
        .filter(|id| tokens.iter().any(|k| k.id == *id && k.revoked_at_ms.is_some()));
    // The secret of a token this session just issued, once: a reload shows it no more.
    let secret = s
        .console
        .take_issued(&person.session_id)
        .filter(|(id, _)| q.issued.as_deref() == Some(id.as_str()));
    let top = html! {
        @if let Some(id) = revoked {
            p class="notice" id="revoked" role="status" { (t(lang, Msg::TokenRevoked)) " " code { (id) } }
        }
        @if let Some((id, secret)) = &secret {
            div class="notice" role="status" {
                p { (t(lang, Msg::TokenIssued)) " " code { (id) } }
                p { (t(lang, Msg::SecretOnce)) }
                p { code id="secret" { (secret) } }
            }
        }
    };
    answer(
        StatusCode::OK,
        shell(
            lang,
            t(lang, Msg::Tokens),
            Some(person.viewer()),
            render(&person, &tokens, top),
        ),
    )
}

/// Issues a token, then sends the browser to the list (a reload repeats no
/// issue), where its secret is shown once.
pub(crate) async fn issue(State(s): State<Shared>, person: Person, body: String) -> Response {
    let lang = person.lang;
    let fields = form(&body);
    if let Some(r) = person.forged(&fields) {
        return r;
    }
    if let Err(r) = person.authorize(&s, Action::ManageTokens, Resource::Domain).await {
        return r;
    }
    let refuse = |why: String| {
        person.notice(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("{}{why}", t(lang, Msg::Refusal)),
        )
    };
    let role: Role = match field(&fields, "role").unwrap_or_default().parse() {
        Ok(r) => r,
        Err(e) => return refuse(format!("{e}")),
    };
    let days: u32 = match field(&fields, "days").and_then(|d| d.trim().parse().ok()) {
        Some(d) if (1..=366).contains(&d) => d,
        _ => return refuse(t(lang, Msg::ExpiresInDays).to_string() + ": 1–366"),
    };
    let name = field(&fields, "name").unwrap_or_default().trim().to_string();
    let organization = field(&fields, "organization")
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_string);
    let expires = now_ms() + u64::from(days) * 86_400_000;
    let by = person.who.name.clone();
    let issued = match person
        .change(&s, "issuing a token from the console", Msg::Refusal, move |rt| {
            rt.access()
                .issue_by(role, &name, organization.as_deref(), expires, Some(&by))
        })
        .await
    {
        Ok(i) => i,
        Err(r) => return r,
    };
    let id = issued.record.id.clone();
    s.console
        .keep_issued(&person.session_id, issued.record.id, issued.secret);
    see_other(&format!("/console/tokens?issued={id}"))
}

/// Revokes a token.
pub(crate) async fn revoke(State(s): State<Shared>, person: Person, Path(id): Path<String>, body: String) -> Response {
    let fields = form(&body);
    if let Some(r) = person.forged(&fields) {
        return r;
    }
    if let Err(r) = person.authorize(&s, Action::ManageTokens, Resource::Domain).await {
        return r;
    }
    let token = id.clone();
    match person
        .change(&s, "revoking a token from the console", Msg::Refusal, move |rt| {
            rt.access().revoke(&token)
        })
        .await
    {
        Ok(_) => see_other(&format!("/console/tokens?revoked={id}")),
        Err(r) => r,
    }
}
