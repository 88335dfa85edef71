//! The auditor's pages: the evidence ledger searched by job, grant,
//! operator and event type, one entry with its inclusion proof, and the
//! verification of the whole log. Read-only; the same Cedar decision as
//! the API's ledger export (operators never read the ledger).

use super::Person;
use super::i18n::{Lang, Msg, t};
use super::layout::{answer, page as shell};
use crate::authz::{Action, Resource};
use crate::state::Shared;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use inland_runtime::EventRecord;
use maud::html;
use serde::Deserialize;

/// Entries on one page, newest first.
const PAGE: usize = 100;
/// Characters of an entry's details shown in the list.
const DETAILS: usize = 400;

/// The search.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LedgerQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    job: Option<String>,
    grant: Option<String>,
    operator: Option<String>,
    /// First day (`YYYY-MM-DD`, UTC).
    from: Option<String>,
    /// Last day.
    until: Option<String>,
    offset: Option<usize>,
}

impl LedgerQuery {
    /// The days asked for, as day numbers; an empty field is no bound, a bad one is `Err`.
    fn days(&self) -> Result<(i64, i64), ()> {
        let day = |s: &Option<String>, open: i64| match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => inland_runtime::Date::parse(s).map(|d| d.days()).map_err(|_| ()),
            None => Ok(open),
        };
        Ok((day(&self.from, i64::MIN)?, day(&self.until, i64::MAX)?))
    }
}

/// Whether the person may read the ledger; answers the refusal if not.
async fn allowed(s: &Shared, person: &Person) -> Result<(), Response> {
    person.authorize(s, Action::ViewLedger, Resource::Ledger).await
}

/// The entries, read on a blocking thread.
pub(crate) async fn entries(s: &Shared, person: &Person) -> Result<Vec<EventRecord>, Response> {
    person
        .blocking(s, "reading the ledger for the console", |rt| {
            rt.evidence()
                .ledger()
                .ok_or_else(|| inland_runtime::Error::Invalid("no ledger".into()))
                .and_then(|l| l.entries())
        })
        .await
}

/// An event as (type, its other fields as JSON).
fn fields(e: &EventRecord) -> (String, serde_json::Map<String, serde_json::Value>) {
    let mut map = match serde_json::to_value(&e.event) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let kind = map
        .remove("type")
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    (kind, map)
}

fn matches(q: &LedgerQuery, kind: &str, f: &serde_json::Map<String, serde_json::Value>) -> bool {
    let field_is = |names: &[&str], wanted: &Option<String>| {
        wanted.as_deref().filter(|w| !w.is_empty()).is_none_or(|w| {
            names
                .iter()
                .any(|n| f.get(*n).and_then(|v| v.as_str()).is_some_and(|v| v == w))
        })
    };
    q.kind.as_deref().filter(|k| !k.is_empty()).is_none_or(|k| k == kind)
        && field_is(&["job_id"], &q.job)
        && field_is(&["grant"], &q.grant)
        && field_is(&["operator", "organization"], &q.operator)
}

fn details(f: &serde_json::Map<String, serde_json::Value>) -> String {
    let text = serde_json::Value::Object(f.clone()).to_string();
    match text.char_indices().nth(DETAILS) {
        Some((at, _)) => format!("{} …", &text[..at]),
        None => text,
    }
}

/// The ledger page: a search and the matching entries, newest first.
pub(crate) async fn page(State(s): State<Shared>, person: Person, Query(q): Query<LedgerQuery>) -> Response {
    let lang = person.lang;
    if let Err(r) = allowed(&s, &person).await {
        return r;
    }
    let all = match entries(&s, &person).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let Ok((first_day, last_day)) = q.days() else {
        return person.says(StatusCode::BAD_REQUEST, Msg::BadPeriod);
    };
    let mut kinds: Vec<String> = all.iter().map(|e| fields(e).0).collect();
    kinds.sort();
    kinds.dedup();
    let found: Vec<(&EventRecord, String, serde_json::Map<String, serde_json::Value>)> = all
        .iter()
        .rev()
        .map(|e| {
            let (kind, f) = fields(e);
            (e, kind, f)
        })
        .filter(|(e, kind, f)| {
            let day = (e.at_ms / 86_400_000) as i64;
            day >= first_day && day <= last_day && matches(&q, kind, f)
        })
        .collect();
    let offset = q.offset.unwrap_or(0).min(found.len());
    let shown = &found[offset..(offset + PAGE).min(found.len())];
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    // The next page's link: the same search, each value URL-encoded.
    let older = form_urlencoded::Serializer::new(String::new())
        .append_pair("offset", &(offset + PAGE).to_string())
        .append_pair("type", &value(&q.kind))
        .append_pair("job", &value(&q.job))
        .append_pair("grant", &value(&q.grant))
        .append_pair("operator", &value(&q.operator))
        .append_pair("from", &value(&q.from))
        .append_pair("until", &value(&q.until))
        .finish();
    let body = html! {
        p { a id="verify" href="/console/ledger/verify" { (t(lang, Msg::VerifyLedger)) } }
        form class="filters" method="get" action="/console/ledger" {
            label for="type" { (t(lang, Msg::EventType)) }
            select id="type" name="type" {
                option value="" { (t(lang, Msg::AnyType)) }
                @for k in &kinds { option value=(k) selected[q.kind.as_deref() == Some(k.as_str())] { (k) } }
            }
            label for="job" { (t(lang, Msg::Job)) }
            input id="job" name="job" type="text" value=(value(&q.job));
            label for="grant" { (t(lang, Msg::Grant)) }
            input id="grant" name="grant" type="text" value=(value(&q.grant));
            label for="operator" { (t(lang, Msg::Operator)) }
            input id="operator" name="operator" type="text" value=(value(&q.operator));
            label for="from" { (t(lang, Msg::From)) }
            input id="from" name="from" type="date" value=(value(&q.from));
            label for="until" { (t(lang, Msg::Until)) }
            input id="until" name="until" type="date" value=(value(&q.until));
            " " button type="submit" { (t(lang, Msg::Search)) }
        }
        @if shown.is_empty() {
            p { (t(lang, Msg::NoEntries)) }
        } @else {
            p class="muted" { (offset + 1) "–" (offset + shown.len()) " / " (found.len()) }
            div class="scroll" {
                table id="entries" {
                    thead { tr {
                        th scope="col" { (t(lang, Msg::Entry)) }
                        th scope="col" { (t(lang, Msg::Time)) }
                        th scope="col" { (t(lang, Msg::EventType)) }
                        th scope="col" { (t(lang, Msg::Details)) }
                    } }
                    tbody {
                        @for (e, kind, f) in shown {
                            tr {
                                td { a href={ "/console/ledger/entries/" (e.seq) } { (e.seq) } }
                                td { (inland_runtime::ledger::iso8601(e.at_ms)) }
                                td { (kind) }
                                td { code { (details(f)) } }
                            }
                        }
                    }
                }
            }
            @if offset + PAGE < found.len() {
                p { a id="older" href={ "/console/ledger?" (older) } { "→" } }
            }
        }
    };
    answer(
        StatusCode::OK,
        shell(lang, t(lang, Msg::Ledger), Some(person.viewer()), body),
    )
}

/// One entry, in full, with its inclusion proof in the current tree.
pub(crate) async fn entry(State(s): State<Shared>, person: Person, Path(seq): Path<u64>) -> Response {
    let lang = person.lang;
    if let Err(r) = allowed(&s, &person).await {
        return r;
    }
    let read = person
        .blocking(
            &s,
            "reading a ledger entry for the console",
            move |rt| -> inland_runtime::Result<Option<(EventRecord, inland_runtime::ledger::InclusionProof)>> {
                let Some(ledger) = rt.evidence().ledger() else {
                    return Ok(None);
                };
                let Some(e) = ledger.entries()?.into_iter().find(|e| e.seq == seq) else {
                    return Ok(None);
                };
                Ok(Some((e, ledger.inclusion_proof(seq, None)?)))
            },
        )
        .await;
    let (e, proof) = match read {
        Ok(Some(found)) => found,
        Ok(None) => return person.says(StatusCode::NOT_FOUND, Msg::NotFound),
        Err(r) => return r,
    };
    let json = serde_json::to_string_pretty(&e).unwrap_or_default();
    let heading = format!("{} {}", t(lang, Msg::Entry), e.seq);
    let body = html! {
        p { (inland_runtime::ledger::iso8601(e.at_ms)) }
        pre id="entry" { (json) }
        h2 { (t(lang, Msg::InclusionProof)) }
        dl id="proof" {
            dt { (t(lang, Msg::TreeSize)) } dd { (proof.tree_size) }
            dt { (t(lang, Msg::LeafHash)) } dd { code { (proof.leaf_hash) } }
            dt { (t(lang, Msg::Root)) } dd { code { (proof.root) } }
            dt { (t(lang, Msg::ProofPath)) }
            dd { ol { @for h in &proof.path { li { code { (h) } } } } }
        }
    };
    answer(StatusCode::OK, shell(lang, &heading, Some(person.viewer()), body))
}

/// Verifies the whole ledger now: every hash and signature.
pub(crate) async fn verify(State(s): State<Shared>, person: Person) -> Response {
    let lang: Lang = person.lang;
    if let Err(r) = allowed(&s, &person).await {
        return r;
    }
    let report = person
        .blocking(&s, "verifying the ledger for the console", |rt| {
            rt.evidence()
                .ledger()
                .ok_or_else(|| inland_runtime::Error::Invalid("no ledger".into()))
                .and_then(|l| l.verify().map_err(inland_runtime::Error::from))
        })
        .await;
    let report = match report {
        Ok(r) => r,
        Err(r) => return r,
    };
    let body = html! {
        @match &report.problem {
            None => p class="notice" id="verified" role="status" {
                (t(lang, Msg::Verified)) " (" (report.entries) " / " (report.checkpoints) ")"
            },
            Some(problem) => div class="alarm" id="tampered" role="alert" { (t(lang, Msg::LedgerTampered)) (problem) },
        }
        p { a href="/console/ledger" { (t(lang, Msg::Ledger)) } }
    };
    answer(
        StatusCode::OK,
        shell(lang, t(lang, Msg::VerifyLedger), Some(person.viewer()), body),
    )
}
