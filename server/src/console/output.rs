//! One output as a reviewer decides on it: the table with every flagged
//! cell marked in place and its reason beside it, the check report, the
//! lineage, the job's log and SQL (quarantined text, shown only here), the
//! votes once all are in, and the forms to approve, return or reject. An
//! output whose sealed file does not open is an alarm, never an empty table.

use super::i18n::{Lang, Msg, t};
use super::layout::{answer, page as shell, see_other};
use super::{Person, field, form, session};
use crate::authz::{Action, Resource};
use crate::state::Shared;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use inland_runtime::review_view::{RowsPage, rows};
use inland_runtime::{Decision, JobRecord, OVERRIDABLE, OutputRecord, Role, Status, VoteRequest, visible_votes};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Rows on one page of an output.
const SHOWN_ROWS: usize = 200;
/// Characters of one cell shown; the rest is counted, never dropped silently.
const CELL_CHARS: usize = 500;
/// Columns shown.
const SHOWN_COLUMNS: usize = 100;

/// `?offset=N` pages through the rows; `?done=1` after a vote.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    done: Option<String>,
    offset: Option<usize>,
}

/// How many pages an output of `rows` rows has.
fn pages(rows: u64) -> usize {
    (rows as usize).div_ceil(SHOWN_ROWS).max(1)
}

/// The first page of `output` this session has not been shown (counting
/// `now`, the page being shown), if any: an approval releases every row.
fn read_all(session: &session::Session, output: &str, rows: u64, now: Option<usize>) -> Option<usize> {
    let seen = session.seen.get(output);
    (0..pages(rows)).find(|p| Some(*p) != now && !seen.is_some_and(|s| s.contains(p)))
}

/// A cell as a reviewer must see it: control, format and bidi characters
/// (which hide or reorder text) as visible escapes, and at most
/// [`CELL_CHARS`] characters, the rest counted.
/// Text from outside the console's control (a job, a registration), as a
/// page shows it: hidden characters as escapes, long text cut with the rest counted.
pub(crate) fn plain(text: &str) -> String {
    match visible(text) {
        (shown, 0) => shown,
        (shown, more) => format!("{shown} … (+{more})"),
    }
}

fn visible(text: &str) -> (String, usize) {
    let mut out = String::new();
    let total = text.chars().count();
    for (shown, c) in text.chars().enumerate() {
        if shown == CELL_CHARS {
            return (out, total - shown);
        }
        if inland_runtime::review_view::hidden(c) {
            out.push_str(&format!("⟨U+{:04X}⟩", c as u32));
        } else {
            out.push(c);
        }
    }
    (out, 0)
}

/// What the page can show of the table.
enum Shown {
    Rows(RowsPage),
    /// The sealed file does not open: tampered, or its key destroyed.
    Unreadable,
    /// It opens, but cannot be turned into text.
    Unrenderable,
}

/// The flags on one cell: (check, status, detail).
type Flags = BTreeMap<(u32, String), Vec<(String, Status, String)>>;

fn flags(record: &OutputRecord) -> Flags {
    let mut out: Flags = BTreeMap::new();
    for c in record.gate.iter().flat_map(|g| &g.checks) {
        if c.status == Status::Pass {
            continue;
        }
        for cell in &c.cells {
            out.entry((cell.row, cell.column.clone())).or_default().push((
                c.check.clone(),
                c.status,
                cell.detail.clone(),
            ));
        }
    }
    out
}

/// What the page needs, read in one blocking call.
struct Loaded {
    record: OutputRecord,
    table: Shown,
    job: Option<JobRecord>,
    page: usize,
}

/// The output id of a path, if it has the shape of one.
fn output_id(job: &str, name: &str) -> Option<String> {
    (crate::api::job_id_shaped(job) && !name.is_empty() && name.len() <= 128).then(|| format!("{job}/{name}"))
}

/// Whether this person may vote on this output now: the policy allows it,
/// they hold a reviewer's token, the review is open and they have not voted.
fn may_vote(s: &Shared, person: &Person, record: &OutputRecord, resource: &Resource) -> bool {
    let allowed = s
        .policy()
        .1
        .allows(&person.who, Action::Vote, resource)
        .unwrap_or(false);
    allowed
        && person.who.role == Role::Reviewer
        && record
            .review
            .as_ref()
            .is_some_and(|r| r.state.open() && !r.votes.iter().any(|v| v.reviewer == person.who.name))
}

/// The output page.
pub(crate) async fn page(
    State(s): State<Shared>,
    person: Person,
    Path((job, name)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Response {
    let lang = person.lang;
    let Some(id) = output_id(&job, &name) else {
        return person.says(StatusCode::NOT_FOUND, Msg::NotFound);
    };
    let (record, resource) = match crate::api::outputs::described(&s, &id).await {
        Ok(d) => d,
        Err(problem) => return problem.into_response(),
    };
    if let Err(r) = person.authorize(&s, Action::ViewOutput, resource.clone()).await {
        return r;
    }
    let Some(record) = record else {
        return person.says(StatusCode::NOT_FOUND, Msg::NotFound);
    };
    if record.destroyed {
        return person.says(StatusCode::OK, Msg::Destroyed);
    }
    let page = q.offset.unwrap_or(0) / SHOWN_ROWS;
    let reader = person.who.name.clone();
    let first_alarm = s.console.first_alarm(&record.id, &reader);
    let loaded = person
        .blocking(
            &s,
            "reading an output for the console",
            move |rt| -> inland_runtime::Result<Loaded> {
                let table = match rt.reviews().output_table(&record.id) {
                    Ok(batches) => match rows(&batches, page * SHOWN_ROWS, SHOWN_ROWS) {
                        Ok(r) => Shown::Rows(r),
                        Err(e) => {
                            tracing::error!(output = %record.id, error = %e, "an output could not be rendered");
                            Shown::Unrenderable
                        }
                    },
                    Err(e) => {
                        // Tampered, or its key destroyed: an alarm, and on the
                        // record (once per reader, however often it is opened).
                        tracing::warn!(output = %record.id, error = %e, "a quarantined output does not open");
                        if first_alarm {
                            rt.reviews().record_unreadable(&record.id, &reader)?;
                        }
                        Shown::Unreadable
                    }
                };
                let mut record = record;
                let job = match rt.jobs().get_with_output_names(&record.job_id) {
                    Ok((job, names)) => {
                        record.queries = job.queries.clone();
                        if let Some((_, name)) = names.into_iter().find(|(i, _)| *i == record.id) {
                            record.name = name;
                        }
                        Some(job)
                    }
                    Err(inland_runtime::Error::NotFound(_)) => None,
                    Err(e) => return Err(e),
                };
                Ok(Loaded {
                    record,
                    table,
                    job,
                    page,
                })
            },
        )
        .await;
    let loaded = match loaded {
        Ok(l) => l,
        Err(r) => return r,
    };
    if matches!(loaded.table, Shown::Rows(_)) {
        s.console.saw(&person.session_id, &loaded.record.id, page);
    }
    let can_vote = may_vote(&s, &person, &loaded.record, &resource);
    let body = render(lang, &person, &loaded, can_vote, q.done.is_some());
    answer(
        StatusCode::OK,
        shell(lang, &loaded.record.id, Some(person.viewer()), body),
    )
}

fn render(lang: Lang, person: &Person, l: &Loaded, can_vote: bool, done: bool) -> Markup {
    let r = &l.record;
    let flagged = flags(r);
    let state = r.review.as_ref().map(|v| v.state);
    html! {
        @if done { p class="notice" role="status" { (t(lang, Msg::VoteRecorded)) } }
        p {
            (t(lang, Msg::State)) ": " span class="badge" id="state" { (state.map(|s| s.to_string()).unwrap_or_default()) }
            " · " (t(lang, Msg::Label)) ": "
            (r.label.as_ref().map(|(l, why)| format!("{l} — {why}")).unwrap_or_else(|| "public".into()))
            " · " (t(lang, Msg::Waiting)) ": " (super::queue::waited(lang, r.created_at_ms))
            @if let Some(v) = &r.review { " · " (t(lang, Msg::Votes)) ": " (v.votes.len()) "/" (v.required) }
        }

        h2 { (t(lang, Msg::Content)) }
        @match &l.table {
            Shown::Unreadable => {
                div class="alarm" role="alert" id="alarm" {
                    p { (t(lang, Msg::Tampered)) }
                    p { (t(lang, Msg::TamperedHelp)) }
                }
            }
            Shown::Unrenderable => {
                div class="alarm" role="alert" id="unrenderable" { p { (t(lang, Msg::Unrenderable)) } }
            }
            Shown::Rows(table) => {
                @let first_row = l.page * SHOWN_ROWS;
                @let columns = table.columns.len().min(SHOWN_COLUMNS);
                p class="muted" { (t(lang, Msg::ContentLegend)) }
                @if pages(table.total) > 1 {
                    p id="pages" {
                        (t(lang, Msg::PageOf)) " " (l.page + 1) " / " (pages(table.total))
                        @if l.page > 0 {
                            " · " a href={ "/console/outputs/" (r.id) "?offset=" ((l.page - 1) * SHOWN_ROWS) } { (t(lang, Msg::Previous)) }
                        }
                        @if l.page + 1 < pages(table.total) {
                            " · " a id="next" href={ "/console/outputs/" (r.id) "?offset=" ((l.page + 1) * SHOWN_ROWS) } { (t(lang, Msg::Next)) }
                        }
                    }
                }
                div class="scroll" {
                    table id="content" {
                        thead { tr {
                            @for c in &table.columns[..columns] {
                                @let f = flagged.get(&(u32::MAX, c.clone()));
                                th scope="col" class=[f.map(|f| cell_class(f))] title=[f.map(|f| reasons(lang, f))] { (visible(c).0) }
                            }
                        } }
                        tbody {
                            @for (i, row) in table.rows.iter().enumerate() {
                                tr {
                                    @for (c, cell) in table.columns[..columns].iter().zip(row) {
                                        @let f = flagged.get(&((first_row + i) as u32, c.clone()));
                                        td class=[f.map(|f| cell_class(f))] title=[f.map(|f| reasons(lang, f))] {
                                            @match cell {
                                                None => { span class="null" { (t(lang, Msg::Null)) } }
                                                Some(text) => {
                                                    @let (shown, more) = visible(text);
                                                    (shown)
                                                    @if more > 0 { span class="muted" { " … " (more) " " (t(lang, Msg::MoreChars)) } }
                                                }
                                            }
                                            @if let Some(f) = f {
                                                span class="mark" aria-hidden="true" { (if cell_class(f) == "cell-fail" { "✗" } else { "?" }) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if table.columns.len() > columns {
                    p class="muted" { (table.columns.len() - columns) " " (t(lang, Msg::MoreColumns)) }
                }
                @if !flagged.is_empty() {
                    h2 { (t(lang, Msg::FlaggedCells)) }
                    ul id="flagged" {
                        @for ((row, col), f) in &flagged {
                            li {
                                @if *row == u32::MAX { (t(lang, Msg::Header)) } @else { (t(lang, Msg::Row)) " " (row + 1) }
                                ", " code { (visible(col).0) } ": " (reasons(lang, f))
                            }
                        }
                    }
                }
            }
        }

        h2 { (t(lang, Msg::Checks)) }
        @if let Some(g) = &r.gate {
            div class="scroll" {
                table id="checks" {
                    thead { tr {
                        th scope="col" { (t(lang, Msg::Check)) }
                        th scope="col" { (t(lang, Msg::Status)) }
                        th scope="col" { (t(lang, Msg::Remedy)) }
                        th scope="col" { (t(lang, Msg::Cells)) }
                        th scope="col" { (t(lang, Msg::Summary)) }
                    } }
                    tbody {
                        @for c in &g.checks {
                            tr {
                                td { (c.check) }
                                td { (c.status.to_string()) }
                                td { (c.cell_count) }
                                td { (format!("{:?}", c.remedy).to_lowercase()) }
                                td { (c.summary) " " span class="muted" { "[" (c.parameter) "]" } }
                            }
                        }
                    }
                }
            }
        }

        h2 { (t(lang, Msg::Lineage)) }
        dl {
            dt { (t(lang, Msg::Job)) } dd { (r.job_id) }
            dt { (t(lang, Msg::Operator)) } dd { (r.operator) }
            dt { (t(lang, Msg::Grant)) } dd { (r.grant) }
            dt { (t(lang, Msg::Module)) } dd { code { (r.module_sha256) } }
            dt { (t(lang, Msg::Datasets)) } dd { (r.datasets.join(", ")) }
        }
        h2 { (t(lang, Msg::Queries)) }
        @for q in &r.queries {
            p class="muted" {
                (q.label.map(|l| l.to_string()).unwrap_or_else(|| "-".into()))
                " · plan " (q.plan_hash.as_deref().map(|h| &h[..h.len().min(16)]).unwrap_or(t(lang, Msg::Refused)))
            }
            pre { (q.sql) }
        }
        @if let Some(job) = &l.job {
            h2 { (t(lang, Msg::JobLog)) }
            pre id="log" { @for line in &job.log { (line.level) " " (line.message) "\n" } }
            @if let Some(e) = &job.error {
                h2 { (t(lang, Msg::JobError)) }
                pre { (e.to_string()) }
            }
        }

        h2 { (t(lang, Msg::Votes)) }
        @if let Some(review) = &r.review {
            @let shown = visible_votes(review);
            @if shown.is_empty() && !review.votes.is_empty() {
                p { (t(lang, Msg::VotesHidden)) }
            }
            ul id="votes" {
                @for v in shown {
                    li {
                        (v.decision.to_string()) " " (t(lang, Msg::VoteBy)) " " (v.reviewer) ": " (v.reason)
                        @if !v.overrides.is_empty() {
                            " — " (t(lang, Msg::Override)) ": " (v.overrides.join(", "))
                            " — " (v.justification.as_deref().unwrap_or(""))
                        }
                    }
                }
            }
        }
        @if can_vote && matches!(l.table, Shown::Rows(_)) {
            @let unread = read_all(&person.session, &r.id, r.rows, Some(l.page));
            (vote_forms(lang, person, r, unread))
        } @else if person.who.role == Role::Reviewer && state.is_some_and(|s| s.open()) {
            p class="notice" id="no-vote" { (t(lang, Msg::NoVoteHere)) }
        }
    }
}

/// The reason(s) a cell is flagged, as one line.
fn reasons(lang: Lang, f: &[(String, Status, String)]) -> String {
    let _ = lang;
    f.iter()
        .map(|(check, status, detail)| format!("{check} ({status}): {detail}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn cell_class(f: &[(String, Status, String)]) -> &'static str {
    if f.iter().any(|(_, s, _)| *s == Status::Fail) {
        "cell-fail"
    } else {
        "cell-review"
    }
}

fn vote_forms(lang: Lang, person: &Person, r: &OutputRecord, unread: Option<usize>) -> Markup {
    let action = format!("/console/outputs/{}/vote", r.id);
    let overridable: Vec<&str> = r
        .gate
        .iter()
        .flat_map(|g| &g.checks)
        .filter(|c| c.status == Status::Fail && OVERRIDABLE.contains(&c.check.as_str()))
        .map(|c| c.check.as_str())
        .collect();
    html! {
        h2 { (t(lang, Msg::Decide)) }
        @if let Some(p) = unread {
            p class="notice" id="read-all" {
                (t(lang, Msg::ReadAllFirst))
                a href={ "/console/outputs/" (r.id) "?offset=" (p * SHOWN_ROWS) } { (t(lang, Msg::PageOf)) " " (p + 1) }
            }
        } @else {
        form method="post" action=(action) id="approve" {
            input type="hidden" name="csrf" value=(person.session.csrf);
            input type="hidden" name="decision" value="approve";
            label for="approve-reason" { (t(lang, Msg::Reason)) }
            textarea id="approve-reason" name="reason" required rows="2" {}
            @for (i, check) in overridable.iter().enumerate() {
                @let id = format!("override-{i}");
                div {
                    input type="checkbox" id=(id) name="override" value=(check);
                    label for=(id) class="inline" { (t(lang, Msg::Override)) ": " (check) }
                }
            }
            @if !overridable.is_empty() {
                label for="justification" { (t(lang, Msg::Justification)) }
                textarea id="justification" name="justification" rows="2" {}
            }
            button type="submit" { (t(lang, Msg::Approve)) }
        }
        }
        @for (decision, label, id) in [("return", Msg::Return, "return"), ("reject", Msg::Reject, "reject")] {
            form method="post" action=(action) id=(id) {
                input type="hidden" name="csrf" value=(person.session.csrf);
                input type="hidden" name="decision" value=(decision);
                label for={ (id) "-reason" } { (t(lang, Msg::Reason)) }
                textarea id={ (id) "-reason" } name="reason" required rows="2" {}
                button type="submit" class="secondary" { (t(lang, label)) }
            }
        }
    }
}

/// A vote from the page's forms: the CSRF token first, then the same
/// authorization and runtime call as `POST /api/outputs/{id}/votes`.
pub(crate) async fn vote(
    State(s): State<Shared>,
    person: Person,
    Path((job, name)): Path<(String, String)>,
    body: String,
) -> Response {
    let fields = form(&body);
    if let Some(r) = person.forged(&fields) {
        return r;
    }
    let Some(id) = output_id(&job, &name) else {
        return person.says(StatusCode::NOT_FOUND, Msg::NotFound);
    };
    let (record, resource) = match crate::api::outputs::described(&s, &id).await {
        Ok(d) => d,
        Err(problem) => return problem.into_response(),
    };
    if let Err(r) = person.authorize(&s, Action::Vote, resource).await {
        return r;
    }
    // Only a reviewer's token votes, as that reviewer, whatever a policy permits.
    if person.who.role != Role::Reviewer {
        return person.says(StatusCode::FORBIDDEN, Msg::Forbidden);
    }
    let Some(record) = record else {
        return person.says(StatusCode::NOT_FOUND, Msg::NotFound);
    };
    let decision = match field(&fields, "decision") {
        Some("approve") => Decision::Approve,
        Some("reject") => Decision::Reject,
        Some("return") => Decision::Return,
        _ => {
            return person.says(StatusCode::BAD_REQUEST, Msg::CsrfFailed);
        }
    };
    // An approval releases every row: this person must have been shown them all.
    if decision == Decision::Approve && read_all(&person.session, &record.id, record.rows, None).is_some() {
        return person.says(StatusCode::CONFLICT, Msg::NotAllPages);
    }
    let justification = field(&fields, "justification")
        .map(str::trim)
        .filter(|j| !j.is_empty())
        .map(str::to_string);
    let request = VoteRequest {
        reviewer: person.who.name.clone(),
        decision,
        reason: field(&fields, "reason").unwrap_or_default().to_string(),
        overrides: fields
            .iter()
            .filter(|(k, _)| k == "override")
            .map(|(_, v)| v.clone())
            .collect(),
        justification,
    };
    let (output, token) = (id.clone(), person.who.token_id.clone());
    // Reviewers are inside the domain: a refusal is shown in the review rule's own words.
    match person
        .change(&s, "a console vote failed", Msg::VoteRefused, move |rt| {
            rt.reviews().vote_with_token(&output, request, Some(&token))
        })
        .await
    {
        Ok(_) => see_other(&format!("/console/outputs/{id}?done=1")),
        Err(r) => r,
    }
}
