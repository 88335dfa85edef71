//! The auditor's reports for a period: usage and compliance (the same
//! reports as `/api/reports/*`), charts of jobs per day per operator, of
//! releases and rejections, and of the checks that fire most, all computed
//! from the ledger's effective entries; and the audit package, one file an
//! auditor takes away and verifies offline.

use super::chart::{daily_bars, ranked_bars};
use super::i18n::{Lang, Msg, t};
use super::layout::{answer, page as shell};
use super::{Person, field, form};
use crate::authz::{Action, Resource};
use crate::state::Shared;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use inland_runtime::{ComplianceLine, Date, Event, EventRecord, UsageReport};
use maud::html;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// The longest period a page charts, in days (a chart of more is unreadable).
const MAX_DAYS: i64 = 366;
/// The checks chart lists at most this many.
const TOP_CHECKS: usize = 12;

/// The period asked for (`YYYY-MM-DD`; the last 30 days if absent).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PeriodQuery {
    from: Option<String>,
    until: Option<String>,
    operator: Option<String>,
}

/// The period, checked: both days valid, in order, at most a year apart.
fn period(q: &PeriodQuery) -> Option<(Date, Date)> {
    let today = Date::today();
    let parse = |s: &Option<String>, default: Date| match s.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Date::parse(s).ok(),
        None => Some(default),
    };
    let until = parse(&q.until, today)?;
    let from = parse(&q.from, Date::from_days(until.days() - 29))?;
    (from <= until && until.days() - from.days() < MAX_DAYS).then_some((from, until))
}

fn day_of(e: &EventRecord) -> i64 {
    (e.at_ms / 86_400_000) as i64
}

/// What the charts show, counted from the entries of the period.
struct Figures {
    days: Vec<String>,
    jobs: Vec<(String, Vec<u64>)>,
    decisions: Vec<(String, Vec<u64>)>,
    checks: Vec<(String, u64)>,
}

fn figures(entries: &[EventRecord], from: Date, until: Date, operator: Option<&str>) -> Figures {
    let n = (until.days() - from.days() + 1) as usize;
    let days = (0..n)
        .map(|i| Date::from_days(from.days() + i as i64).to_string())
        .collect();
    let mut jobs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut decisions: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut checks: BTreeMap<String, u64> = BTreeMap::new();
    // Whose each job and output is, from the whole ledger (a job admitted
    // before the period may have its output decided within it).
    let mut job_operator: HashMap<&str, &str> = HashMap::new();
    let mut output_operator: HashMap<&str, &str> = HashMap::new();
    let mine = |op: Option<&&str>| operator.is_none_or(|o| op.is_some_and(|op| *op == o));
    for e in entries {
        let d = day_of(e) - from.days();
        let day = (d >= 0 && (d as usize) < n).then_some(d as usize);
        match &e.event {
            Event::JobAdmitted {
                job_id, operator: op, ..
            } => {
                job_operator.insert(job_id, op);
                if let Some(d) = day.filter(|_| operator.is_none_or(|o| o == op)) {
                    jobs.entry(op.clone()).or_insert_with(|| vec![0; n])[d] += 1;
                }
            }
            Event::OutputEmitted { job_id, output_id, .. } => {
                if let Some(op) = job_operator.get(job_id.as_str()) {
                    output_operator.insert(output_id, op);
                }
            }
            Event::ReviewDecided { output_id, state, .. } if mine(output_operator.get(output_id.as_str())) => {
                if let Some(d) = day {
                    let kind = if state == "approved" {
                        "released"
                    } else {
                        state.as_str()
                    };
                    decisions.entry(kind.to_string()).or_insert_with(|| vec![0; n])[d] += 1;
                }
            }
            Event::OutputChecked {
                output_id, findings, ..
            } if day.is_some() && mine(output_operator.get(output_id.as_str())) => {
                for f in findings {
                    // "check status" (older entries add a cell count): the check's name.
                    let name = f.split_whitespace().next().unwrap_or_default();
                    *checks.entry(name.to_string()).or_default() += 1;
                }
            }
            _ => {}
        }
    }
    let mut checks: Vec<(String, u64)> = checks.into_iter().collect();
    checks.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    checks.truncate(TOP_CHECKS);
    Figures {
        days,
        jobs: jobs.into_iter().collect(),
        decisions: decisions.into_iter().collect(),
        checks,
    }
}

type Reports = (UsageReport, Vec<ComplianceLine>, Vec<EventRecord>);

async fn reports(
    s: &Shared,
    person: &Person,
    from: Date,
    until: Date,
    operator: Option<String>,
    charts: bool,
) -> Result<Reports, Response> {
    person.authorize(s, Action::ViewReports, Resource::Ledger).await?;
    person
        .blocking(s, "computing reports for the console", move |rt| {
            let usage = rt.evidence().usage_report(operator.as_deref(), from, until)?;
            let compliance = rt.evidence().compliance_report(from, until)?;
            let entries = match rt.evidence().ledger() {
                Some(l) if charts => l.effective_entries()?,
                _ => Vec::new(),
            };
            Ok((usage, compliance, entries))
        })
        .await
}

fn usage_table(lang: Lang, u: &UsageReport) -> maud::Markup {
    html! {
        dl id="usage" {
            dt { (t(lang, Msg::JobsRun)) } dd { (u.jobs_run) }
            dt { (t(lang, Msg::JobsSucceeded)) } dd { (u.jobs_succeeded) }
            dt { (t(lang, Msg::JobsRefused)) } dd { (u.jobs_refused) }
            dt { (t(lang, Msg::QueriesRefused)) } dd { (u.queries_refused) }
            dt { (t(lang, Msg::OutputsQuarantined)) } dd { (u.outputs_quarantined) }
            dt { (t(lang, Msg::GrantsTerminated)) } dd { (u.grants_terminated) }
            dt { (t(lang, Msg::Datasets)) }
            dd { @for (d, n) in &u.datasets_used { (d) " (" (n) ") " } }
        }
    }
}

/// The reports page.
pub(crate) async fn page(State(s): State<Shared>, person: Person, Query(q): Query<PeriodQuery>) -> Response {
    let lang = person.lang;
    let Some((from, until)) = period(&q) else {
        return person.says(StatusCode::BAD_REQUEST, Msg::BadPeriod);
    };
    let operator = q.operator.clone().filter(|o| !o.trim().is_empty());
    let (usage, compliance, entries) = match reports(&s, &person, from, until, operator.clone(), true).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let f = figures(&entries, from, until, operator.as_deref());
    let may_export = s
        .policy()
        .1
        .allows(&person.who, Action::ExportLedger, &Resource::Ledger)
        .unwrap_or(false);
    let body = html! {
        form class="filters" method="get" action="/console/reports" {
            label for="from" { (t(lang, Msg::From)) }
            input id="from" name="from" type="date" value=(from.to_string());
            label for="until" { (t(lang, Msg::Until)) }
            input id="until" name="until" type="date" value=(until.to_string());
            label for="operator" { (t(lang, Msg::Operator)) }
            input id="operator" name="operator" type="text" value=(operator.clone().unwrap_or_default());
            " " button type="submit" { (t(lang, Msg::Apply)) }
        }
        @if may_export {
            // A POST: an export signs and keeps a new checkpoint, which no
            // link followed from elsewhere may cause.
            form id="package" method="post" action="/console/reports/package" {
                input type="hidden" name="csrf" value=(person.session.csrf);
                input type="hidden" name="from" value=(from.to_string());
                input type="hidden" name="until" value=(until.to_string());
                button type="submit" class="secondary" { (t(lang, Msg::AuditPackage)) }
            }
        }
        h2 { (t(lang, Msg::Usage)) }
        (usage_table(lang, &usage))
        h2 { (t(lang, Msg::Charts)) }
        (daily_bars("jobs-chart", t(lang, Msg::JobsPerDay), &f.days, &f.jobs))
        (daily_bars("decisions-chart", t(lang, Msg::ReleasesOverTime), &f.days, &f.decisions))
        (ranked_bars("checks-chart", t(lang, Msg::ChecksFired), &f.checks))
        h2 { (t(lang, Msg::Compliance)) }
        @if operator.is_some() { p class="muted" { (t(lang, Msg::AllOperators)) } }
        div class="scroll" {
            table id="compliance" {
                thead { tr {
                    th scope="col" { (t(lang, Msg::Clause)) }
                    th scope="col" { (t(lang, Msg::Requirement)) }
                    th scope="col" { (t(lang, Msg::Control)) }
                    th scope="col" { (t(lang, Msg::Evidence)) }
                } }
                tbody { @for l in &compliance { tr {
                    td { (l.clause) } td { (l.requirement) } td { (l.control) } td { (l.evidence) }
                } } }
            }
        }
    };
    answer(
        StatusCode::OK,
        shell(lang, t(lang, Msg::Reports), Some(person.viewer()), body),
    )
}

/// The audit package of a period: the signed ledger export (entries, a
/// fresh checkpoint, the public key: what `inland ledger verify-export`
/// checks) with the period's usage and compliance reports, as one JSON file.
/// The export is of the whole ledger: its checkpoint signs every entry.
pub(crate) async fn package(State(s): State<Shared>, person: Person, body: String) -> Response {
    let fields = form(&body);
    if let Some(r) = person.forged(&fields) {
        return r;
    }
    let q = PeriodQuery {
        from: field(&fields, "from").map(str::to_string),
        until: field(&fields, "until").map(str::to_string),
        operator: None,
    };
    let Some((from, until)) = period(&q) else {
        return person.says(StatusCode::BAD_REQUEST, Msg::BadPeriod);
    };
    if let Err(r) = person.authorize(&s, Action::ExportLedger, Resource::Ledger).await {
        return r;
    }
    let (usage, compliance, _) = match reports(&s, &person, from, until, None, false).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let export = person
        .blocking(&s, "exporting the ledger for an audit package", |rt| {
            let ledger = rt
                .evidence()
                .ledger()
                .ok_or_else(|| inland_runtime::Error::Invalid("this domain records into no ledger".into()))?;
            let (files, checkpoint) = ledger.export_files()?;
            let mut out = serde_json::Map::new();
            for (name, bytes) in files {
                let text = String::from_utf8(bytes)
                    .map_err(|_| inland_runtime::Error::Internal(format!("{name} is not UTF-8")))?;
                out.insert(name.to_string(), serde_json::Value::String(text));
            }
            Ok((out, checkpoint.tree_size))
        })
        .await;
    let (files, tree_size) = match export {
        Ok(v) => v,
        Err(r) => return r,
    };
    let package = serde_json::json!({
        "format": "inland-audit-package/1",
        "from": from.to_string(),
        "until": until.to_string(),
        "tree_size": tree_size,
        "files": files,
        "usage": usage,
        "compliance": compliance,
    });
    let name = format!("inland-audit-{from}-{until}.json");
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        package.to_string(),
    )
        .into_response()
}
