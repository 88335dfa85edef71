//! The admin's datasets: the catalog with each dataset's grade, status and
//! stored layout, and one dataset's schema beside what the policy in force
//! says of every column (class, access mode), its sort order and the
//! columns registration proved unique.

use super::Person;
use super::i18n::{Msg, t};
use super::layout::{answer, page as shell};
use super::output::plain;
use crate::authz::{Action, Resource};
use crate::state::Shared;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use inland_runtime::{DatasetRecord, Policy, PolicyVersion};
use maud::html;

use crate::api::word;

/// An access mode in a few words: its tag, and a mask's method.
fn access(value: &serde_json::Value) -> String {
    let tag = value.get("access").and_then(|v| v.as_str()).unwrap_or("deny");
    let Some(method) = value.get("method") else {
        return tag.to_string();
    };
    // `{"method": "keep-last", "n": 4}` reads as `keep-last n=4`.
    let mut words = vec![
        method
            .get("method")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_string(),
    ];
    if let Some(fields) = method.as_object() {
        words.extend(fields.iter().filter(|(k, _)| *k != "method").map(|(k, v)| {
            format!(
                "{k}={}",
                v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
            )
        }));
    }
    format!("{tag} ({})", words.join(" "))
}

async fn load(s: &Shared, person: &Person) -> Result<(Vec<DatasetRecord>, Option<(PolicyVersion, Policy)>), Response> {
    person.authorize(s, Action::ViewDomain, Resource::Domain).await?;
    person
        .blocking(s, "reading the catalog for the console", |rt| {
            Ok((rt.catalog().list()?, rt.policies().in_force()?))
        })
        .await
}

/// Every dataset of the catalog.
pub(crate) async fn list(State(s): State<Shared>, person: Person) -> Response {
    let lang = person.lang;
    let (datasets, policy) = match load(&s, &person).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body = html! {
        @if datasets.is_empty() {
            p { (t(lang, Msg::NoDatasets)) }
        } @else {
            div class="scroll" {
                table id="datasets" {
                    thead { tr {
                        th scope="col" { (t(lang, Msg::Name)) }
                        th scope="col" { (t(lang, Msg::Description)) }
                        th scope="col" { (t(lang, Msg::Grade)) }
                        th scope="col" { (t(lang, Msg::Status)) }
                        th scope="col" { (t(lang, Msg::Rows)) }
                        th scope="col" { (t(lang, Msg::InPolicy)) }
                    } }
                    tbody {
                        @for d in &datasets {
                            tr {
                                td { a href={ "/console/datasets/" (d.name) } { (d.name) } }
                                td { (plain(&d.description)) }
                                td { (word(&d.catalog.grade)) }
                                td { (word(&d.status)) }
                                td { (d.rows) }
                                td { (policy.as_ref().is_some_and(|(_, p)| p.datasets.keys().any(|k| k.get_ref() == &d.name))) }
                            }
                        }
                    }
                }
            }
        }
    };
    answer(
        StatusCode::OK,
        shell(lang, t(lang, Msg::Datasets), Some(person.viewer()), body),
    )
}

/// One dataset: its record, layout and columns under the policy in force.
pub(crate) async fn show(State(s): State<Shared>, person: Person, Path(name): Path<String>) -> Response {
    let lang = person.lang;
    let (datasets, policy) = match load(&s, &person).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(d) = datasets.into_iter().find(|d| d.name == name) else {
        return person.says(StatusCode::NOT_FOUND, Msg::NotFound);
    };
    let rules = policy
        .as_ref()
        .and_then(|(_, p)| p.datasets.iter().find(|(k, _)| k.get_ref() == &d.name).map(|(_, r)| r));
    let column = |c: &str| policy.as_ref().and_then(|(_, p)| p.column(&d.name, c));
    let body = html! {
        dl id="dataset" {
            dt { (t(lang, Msg::Description)) } dd { (plain(&d.description)) }
            dt { (t(lang, Msg::Grade)) } dd { (word(&d.catalog.grade)) }
            dt { (t(lang, Msg::Status)) } dd { (word(&d.status)) }
            dt { (t(lang, Msg::SourceOrg)) } dd { (plain(&d.catalog.source_org)) }
            dt { (t(lang, Msg::Rows)) } dd { (d.rows) }
            dt { "SHA-256" } dd { code { (d.sha256) } }
            dt { (t(lang, Msg::SortOrder)) }
            dd {
                @if let Some(k) = &d.entity_key { (t(lang, Msg::KeyedByEntity)) " " code { (k.column) } }
                @else if d.sorted_by.is_empty() { (t(lang, Msg::NotSorted)) }
                @else { (d.sorted_by.join(", ")) }
            }
            dt { (t(lang, Msg::UniqueColumns)) }
            dd id="unique" { @if d.unique_columns.is_empty() { "—" } @else { (d.unique_columns.join(", ")) } }
            @if let Some(r) = rules {
                dt { (t(lang, Msg::EntityColumn)) } dd { (r.entity.get_ref()) }
                dt { (t(lang, Msg::PersonalInformation)) } dd { (r.personal_information) }
                dt { (t(lang, Msg::Operable)) } dd { (r.operable) }
            } @else {
                dt { (t(lang, Msg::InPolicy)) } dd { (t(lang, Msg::NotInPolicy)) }
            }
        }
        h2 { (t(lang, Msg::Columns)) }
        div class="scroll" {
            table id="columns" {
                thead { tr {
                    th scope="col" { (t(lang, Msg::Name)) }
                    th scope="col" { (t(lang, Msg::Type)) }
                    th scope="col" { (t(lang, Msg::Class)) }
                    th scope="col" { (t(lang, Msg::AccessMode)) }
                } }
                tbody {
                    @for c in &d.columns {
                        tr {
                            td { (plain(&c.name)) }
                            td { code { (c.data_type) } }
                            @match column(&c.name) {
                                Some(p) => {
                                    td { (word(&p.class)) }
                                    td { (serde_json::to_value(&p.access).map(|v| access(&v)).unwrap_or_default()) }
                                }
                                None => { td { "—" } td { "deny" } }
                            }
                        }
                    }
                }
            }
        }
    };
    answer(StatusCode::OK, shell(lang, &d.name, Some(person.viewer()), body))
}
