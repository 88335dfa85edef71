//! Operators and grants: each organization with its status, each grant with
//! its term, datasets, quota and status, and the termination of a grant.
//! Terminating destroys the grant's key and everything sealed under it, so
//! it takes a page of its own that says so and a confirmation box.

use super::i18n::{Msg, t};
use super::layout::{answer, page as shell, see_other};
use super::{Person, field, form};
use crate::api::word;
use crate::authz::{Action, Resource};
use crate::state::Shared;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use inland_runtime::{Grant, GrantStatus, Operator, Privacy, TerminationReason};
use maud::html;
use serde::Deserialize;

/// The reasons a termination may give, as the runtime names them.
const REASONS: [&str; 5] = ["expired", "breach", "incident", "law", "agreement"];

/// After a termination, the grant it ended.
#[derive(Debug, Deserialize)]
pub(crate) struct Done {
    terminated: Option<String>,
}

async fn registry(s: &Shared, person: &Person) -> Result<(Vec<Operator>, Vec<Grant>), Response> {
    person.authorize(s, Action::ViewDomain, Resource::Domain).await?;
    person
        .blocking(s, "reading operators and grants for the console", |rt| {
            Ok((rt.governance().operators()?, rt.governance().grants()?))
        })
        .await
}

fn privacy(p: &Privacy) -> String {
    match p {
        Privacy::Exact => "exact".into(),
        Privacy::Dp(b) => format!("dp ρ={}", b.budget_rho),
    }
}

/// The operators and grants page.
pub(crate) async fn page(State(s): State<Shared>, person: Person, Query(q): Query<Done>) -> Response {
    let lang = person.lang;
    let (operators, grants) = match registry(&s, &person).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let admin = person.who.role == inland_runtime::Role::Admin;
    let body = html! {
        @if let Some(id) = q.terminated.as_deref().filter(|id| grants.iter().any(|g| g.id == *id && g.status == GrantStatus::Terminated)) {
            p class="notice" id="terminated" role="status" { (t(lang, Msg::GrantTerminated)) " " (id) }
        }
        h2 { (t(lang, Msg::Operators)) }
        div class="scroll" {
            table id="operators" {
                thead { tr {
                    th scope="col" { (t(lang, Msg::Name)) }
                    th scope="col" { (t(lang, Msg::Type)) }
                    th scope="col" { (t(lang, Msg::Status)) }
                    th scope="col" { (t(lang, Msg::Reason)) }
                } }
                tbody { @for o in &operators { tr {
                    td { (o.name) }
                    td { (word(&o.kind)) }
                    td { (word(&o.status)) }
                    td { (o.status_reason.as_deref().unwrap_or("")) }
                } } }
            }
        }
        h2 { (t(lang, Msg::Grants)) }
        div class="scroll" {
            table id="grants" {
                thead { tr {
                    th scope="col" { (t(lang, Msg::Grant)) }
                    th scope="col" { (t(lang, Msg::Operator)) }
                    th scope="col" { (t(lang, Msg::Datasets)) }
                    th scope="col" { (t(lang, Msg::Term)) }
                    th scope="col" { (t(lang, Msg::Quota)) }
                    th scope="col" { (t(lang, Msg::Privacy)) }
                    th scope="col" { (t(lang, Msg::Status)) }
                } }
                tbody { @for g in &grants { tr {
                    td { (g.id) }
                    td { (g.operator) }
                    td { (g.datasets.join(", ")) }
                    td { (g.from) " – " (g.until) }
                    td { (g.quota.per_day.map(|n| n.to_string()).unwrap_or_else(|| "—".into())) " / "
                         (g.quota.per_term.map(|n| n.to_string()).unwrap_or_else(|| "—".into())) }
                    td { (privacy(&g.privacy)) }
                    td {
                        (word(&g.status))
                        @if admin && g.status == GrantStatus::Active {
                            " " a class="danger" href={ "/console/grants/" (g.id) "/terminate" } { (t(lang, Msg::Terminate)) }
                        }
                    }
                } } }
            }
        }
    };
    answer(
        StatusCode::OK,
        shell(lang, t(lang, Msg::Grants), Some(person.viewer()), body),
    )
}

/// The confirmation page of a termination.
pub(crate) async fn confirm(State(s): State<Shared>, person: Person, Path(id): Path<String>) -> Response {
    let lang = person.lang;
    if let Err(r) = person.authorize(&s, Action::ManageDomain, Resource::Domain).await {
        return r;
    }
    let (_, grants) = match registry(&s, &person).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(g) = grants
        .into_iter()
        .find(|g| g.id == id && g.status == GrantStatus::Active)
    else {
        return person.says(StatusCode::NOT_FOUND, Msg::NotFound);
    };
    let body = html! {
        p class="alarm" role="alert" { (t(lang, Msg::TerminateWarning)) }
        dl {
            dt { (t(lang, Msg::Grant)) } dd { (g.id) }
            dt { (t(lang, Msg::Operator)) } dd { (g.operator) }
            dt { (t(lang, Msg::Datasets)) } dd { (g.datasets.join(", ")) }
        }
        form method="post" action={ "/console/grants/" (g.id) "/terminate" } {
            input type="hidden" name="csrf" value=(person.session.csrf);
            label for="reason" { (t(lang, Msg::Reason)) }
            select id="reason" name="reason" required {
                @for r in REASONS { option value=(r) { (r) } }
            }
            label for="note" { (t(lang, Msg::Note)) }
            textarea id="note" name="note" rows="3" required maxlength=(inland_runtime::MAX_NOTE_CHARS) {}
            p {
                input id="confirm" name="confirm" type="checkbox" value="yes" required;
                " " label for="confirm" class="inline" { (t(lang, Msg::TerminateConfirm)) }
            }
            button type="submit" class="danger" { (t(lang, Msg::Terminate)) }
        }
    };
    answer(
        StatusCode::OK,
        shell(lang, t(lang, Msg::Terminate), Some(person.viewer()), body),
    )
}

/// Terminates a grant: the same runtime call as
/// `POST /api/admin/grants/{id}/terminate`, after the confirmation box.
pub(crate) async fn terminate(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let lang = person.lang;
    let fields = form(&body);
    if let Some(r) = person.forged(&fields) {
        return r;
    }
    if let Err(r) = person.authorize(&s, Action::ManageDomain, Resource::Domain).await {
        return r;
    }
    if field(&fields, "confirm") != Some("yes") {
        return person.says(StatusCode::UNPROCESSABLE_ENTITY, Msg::NotConfirmed);
    }
    let reason: TerminationReason = match field(&fields, "reason").unwrap_or_default().parse() {
        Ok(r) => r,
        Err(e) => {
            return person.notice(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("{}{e}", t(lang, Msg::Refusal)),
            );
        }
    };
    // Checked by the runtime (not empty, at most MAX_NOTE_CHARS, nothing hidden).
    let note = field(&fields, "note").unwrap_or_default().to_string();
    // Its own task: a browser that goes away does not cut the destruction short.
    let jobs = s.runtime.jobs();
    let grant = id.clone();
    let ended = tokio::spawn(async move { jobs.terminate_grant(&grant, reason, &note).await }).await;
    use inland_runtime::Error as E;
    match ended {
        Ok(Ok(_)) => see_other(&format!("/console/grants?terminated={id}")),
        Ok(Err(e @ (E::Invalid(_) | E::Refused(_) | E::NotFound(_) | E::Exists(_)))) => person.notice(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("{}{e}", t(lang, Msg::Refusal)),
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, grant = %id, "a console termination failed");
            person.says(StatusCode::INTERNAL_SERVER_ERROR, Msg::InternalError)
        }
        Err(e) => crate::problem::Problem::log_internal(&e).into_response(),
    }
}
