//! The release queue: every output awaiting or past review, with its state,
//! operator, grant, label, the checks that fired and how long it has
//! waited; filtered by state and sorted by age.

use super::Person;
use super::i18n::{Lang, Msg, t};
use super::layout::{answer, page as shell};
use crate::authz::{Action, Resource};
use crate::state::Shared;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use inland_runtime::{OutputRecord, Status};
use maud::html;
use serde::Deserialize;

/// The queue's filter and order.
#[derive(Debug, Deserialize)]
pub(crate) struct QueueQuery {
    state: Option<String>,
    sort: Option<String>,
}

/// The review states a filter may name.
const STATES: [&str; 8] = [
    "submitted",
    "partially-reviewed",
    "blocked",
    "approved",
    "released",
    "rejected",
    "returned",
    "conflicted",
];

/// How long ago `ms`, in the person's words.
pub(crate) fn waited(lang: Lang, created_ms: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let minutes = now.saturating_sub(created_ms) / 60_000;
    match minutes {
        m if m < 60 => format!("{m} {}", t(lang, Msg::Minutes)),
        m if m < 48 * 60 => format!("{} {}", m / 60, t(lang, Msg::Hours)),
        m => format!("{} {}", m / (24 * 60), t(lang, Msg::Days)),
    }
}

/// The checks that failed or need review, by name.
pub(crate) fn fired(o: &OutputRecord) -> Vec<String> {
    o.gate
        .as_ref()
        .map(|g| {
            g.checks
                .iter()
                .filter(|c| c.status != Status::Pass)
                .map(|c| format!("{} {}", c.check, c.status))
                .collect()
        })
        .unwrap_or_default()
}

/// The queue page.
pub(crate) async fn page(State(s): State<Shared>, person: Person, Query(q): Query<QueueQuery>) -> Response {
    let lang = person.lang;
    if let Err(r) = person.authorize(&s, Action::ListOutputs, Resource::Domain).await {
        return r;
    }
    let queue = match person
        .blocking(&s, "reading the release queue", |rt| rt.reviews().queue())
        .await
    {
        Ok(q) => q,
        Err(r) => return r,
    };
    let wanted = q.state.as_deref().filter(|s| STATES.contains(s));
    let mut items: Vec<&OutputRecord> = queue
        .iter()
        .filter(|o| wanted.is_none_or(|w| o.review.as_ref().is_some_and(|r| r.state.to_string() == w)))
        .collect();
    let oldest_first = q.sort.as_deref() == Some("oldest");
    if oldest_first {
        items.sort_by_key(|o| o.created_at_ms);
    }
    let body = html! {
        form class="filters" method="get" action="/console/queue" {
            label for="state" { (t(lang, Msg::FilterState)) }
            select id="state" name="state" {
                option value="" { (t(lang, Msg::AllStates)) }
                @for st in STATES {
                    option value=(st) selected[wanted == Some(st)] { (st) }
                }
            }
            label for="sort" { (t(lang, Msg::SortBy)) }
            select id="sort" name="sort" {
                option value="newest" { (t(lang, Msg::Newest)) }
                option value="oldest" selected[oldest_first] { (t(lang, Msg::Oldest)) }
            }
            " " button type="submit" { (t(lang, Msg::Apply)) }
        }
        @if items.is_empty() {
            p { (t(lang, Msg::QueueEmpty)) }
        } @else {
            div class="scroll" {
                table id="queue" {
                    thead { tr {
                        th scope="col" { (t(lang, Msg::Output)) }
                        th scope="col" { (t(lang, Msg::State)) }
                        th scope="col" { (t(lang, Msg::Organization)) }
                        th scope="col" { (t(lang, Msg::Grant)) }
                        th scope="col" { (t(lang, Msg::Label)) }
                        th scope="col" { (t(lang, Msg::Checks)) }
                        th scope="col" { (t(lang, Msg::Waiting)) }
                        th scope="col" { (t(lang, Msg::Votes)) }
                    } }
                    tbody {
                        @for o in &items {
                            tr {
                                td { a href={ "/console/outputs/" (o.id) } { (o.id) } }
                                td { span class="badge" { (o.review.as_ref().map(|r| r.state.to_string()).unwrap_or_default()) } }
                                td { (o.operator) }
                                td { (o.grant) }
                                td { (o.label.as_ref().map(|(l, _)| l.to_string()).unwrap_or_else(|| "public".into())) }
                                td { (fired(o).join(", ")) }
                                td { (waited(lang, o.created_at_ms)) }
                                td { (o.review.as_ref().map(|r| format!("{}/{}", r.votes.len(), r.required)).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
    };
    answer(
        StatusCode::OK,
        shell(lang, t(lang, Msg::Queue), Some(person.viewer()), body),
    )
}
