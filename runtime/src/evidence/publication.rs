//! What the domain tells the public and its overseers: the published catalog
//! (clauses 6.2, 9.4), operators' data quality feedback (10.6), and usage and
//! compliance reports computed from the evidence ledger (12.1, 12.2).

use crate::date::Date;
use crate::error::{Error, Result};
use crate::events::{Event, EventRecord};
use crate::governance::catalog::Grade;
use crate::governance::catalog::{DatasetRecord, DatasetStatus};
use inland_policies::Policy;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The public part of a column's policy: its class, access mode, its
/// published values, and whether registration proved it unique, which is
/// said only where the domain's rules use it (the entity column, and
/// columns a job sees as stored: a join on them is allowed when it repeats
/// no row) of a dataset jobs may read. Without a policy nothing is said.
fn column_rules(policy: Option<&Policy>, d: &DatasetRecord, column: &str) -> serde_json::Value {
    let Some(policy) = policy else {
        return json!({});
    };
    let Some(p) = policy.column(&d.name, column) else {
        return json!({ "class": null, "access": "deny" });
    };
    let access = serde_json::to_value(&p.access).unwrap_or_default();
    let tag = access.get("access").and_then(|a| a.as_str()).unwrap_or_default();
    let method = access
        .get("method")
        .and_then(|m| m.get("method"))
        .and_then(|m| m.as_str());
    let as_stored = matches!(tag, "plaintext" | "dimension" | "join-key-only") || method == Some("pseudonym");
    let used = policy.readable(&d.name) && (as_stored || policy.entity(&d.name) == Some(column));
    json!({
        "class": p.class,
        "access": tag,
        "mask": access.get("method").cloned(),
        "values": p.public_values,
        "unique": used && d.unique_columns.iter().any(|u| u == column),
    })
}

/// The policy in force, cut to what the public may read: the domain and
/// gate rules and the sections of the published datasets. `inland dev`
/// applies it to dummy data, so that a query refused in the domain is
/// refused there by the same rule.
fn public_policy(text: &str, policy: &Policy, listed: &[&DatasetRecord]) -> Result<String> {
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e| Error::Internal(format!("the policy in force does not parse: {e}")))?;
    if let Some(toml::Value::Table(datasets)) = doc.get_mut("datasets") {
        // Only datasets the public catalog lists and jobs may read.
        datasets.retain(|name, _| listed.iter().any(|d| d.name == *name) && policy.readable(name));
        for (_, section) in datasets.iter_mut() {
            let Some(columns) = section.get_mut("columns").and_then(|c| c.as_table_mut()) else {
                continue;
            };
            for (_, column) in columns.iter_mut() {
                let Some(column) = column.as_table_mut() else { continue };
                // Bounds an admin may have taken from the data stay in the domain.
                column.remove("dp_bounds");
                // An override's reason is the admin's own text: that there is one is enough.
                if column.contains_key("override_reason") {
                    column.insert(
                        "override_reason".into(),
                        toml::Value::String("(given in the domain)".into()),
                    );
                }
            }
        }
    }
    toml::to_string(&doc).map_err(|e| Error::Internal(format!("writing the public policy: {e}")))
}

/// Writes `catalog.json` and `index.html` describing the approved, operable
/// datasets — descriptions and schemas only, never data — and, with a policy
/// in force, `policy.toml`, its public part. Returns the JSON bytes.
pub(crate) fn write_catalog(
    datasets: &[DatasetRecord],
    domain_name: &str,
    policy: Option<(&Policy, &str)>,
    dir: &Path,
) -> Result<Vec<u8>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let listed: Vec<&DatasetRecord> = datasets
        .iter()
        .filter(|d| d.status == DatasetStatus::Approved && d.owner.is_none())
        .collect();
    let entries: Vec<serde_json::Value> = listed
        .iter()
        .map(|d| {
            json!({
                "name": d.name,
                "description": d.description,
                "type": d.catalog.kind,
                "source": d.catalog.source_org,
                "format": d.format,
                "update_frequency": d.catalog.update_frequency,
                "usage_restrictions": d.catalog.usage_restrictions,
                "grade": d.catalog.grade,
                "operable": d.catalog.grade != Grade::Core,
                "rows": d.rows,
                "registered": Date::from_days((d.registered_at_ms / 86_400_000) as i64).to_string(),
                "entity": policy.and_then(|(p, _)| p.entity(&d.name)),
                "columns": d.columns.iter().map(|c| {
                    let mut column = json!({"name": c.name, "type": c.data_type, "nullable": c.nullable});
                    if let (Some(map), serde_json::Value::Object(rules)) =
                        (column.as_object_mut(), column_rules(policy.map(|(p, _)| p), d, &c.name))
                    {
                        map.extend(rules);
                    }
                    column
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    // The public policy is named by its hash in the catalog, so a reader
    // (`inland dev`) knows it has the one that goes with these columns.
    let public = policy.map(|(p, text)| public_policy(text, p, &listed)).transpose()?;
    let policy_sha = public.as_deref().map(|t| inland_files::sha256_hex(t.as_bytes()));
    let doc = json!({ "domain": domain_name, "policy_sha256": policy_sha, "datasets": entries });
    let bytes = serde_json::to_vec_pretty(&doc)?;
    match &public {
        Some(text) => inland_files::write_atomic(&dir.join("policy.toml"), text.as_bytes())?,
        None => match std::fs::remove_file(dir.join("policy.toml")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(dir.join("policy.toml"), e)),
        },
    }
    inland_files::write_atomic(&dir.join("catalog.json"), &bytes)?;

    let mut html = format!(
        "<!doctype html>\n<html lang=\"zh\"><head><meta charset=\"utf-8\"><title>{0} — public data catalog</title>\n\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}</style></head><body>\n\
         <h1>{0}: operable public data</h1>\n<table>\n<tr><th>Dataset</th><th>Description</th><th>Type</th><th>Source</th>\
         <th>Format</th><th>Updated</th><th>Usage restrictions</th><th>Grade</th><th>Rows</th><th>Columns</th></tr>\n",
        escape(domain_name)
    );
    for d in &listed {
        let cols: Vec<String> = d.columns.iter().map(|c| escape(&c.name)).collect();
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&d.name),
            escape(&d.description),
            escape(&d.catalog.kind),
            escape(&d.catalog.source_org),
            escape(&d.format),
            escape(&d.catalog.update_frequency),
            escape(&d.catalog.usage_restrictions),
            d.catalog.grade,
            d.rows,
            cols.join(", ")
        ));
    }
    html.push_str("</table>\n</body></html>\n");
    inland_files::write_atomic(&dir.join("index.html"), html.as_bytes())?;
    Ok(bytes)
}

/// Usage of the domain over a period, from the ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    /// First day covered.
    pub from: String,
    /// Last day covered.
    pub until: String,
    /// The operator reported on, or all.
    pub operator: Option<String>,
    /// Jobs admitted.
    pub jobs_run: u64,
    /// Jobs that succeeded.
    pub jobs_succeeded: u64,
    /// Jobs refused at admission.
    pub jobs_refused: u64,
    /// Queries refused by a domain rule.
    pub queries_refused: u64,
    /// Datasets used, with how many jobs read them.
    pub datasets_used: BTreeMap<String, u64>,
    /// Outputs placed in quarantine.
    pub outputs_quarantined: u64,
    /// Grants terminated.
    pub grants_terminated: u64,
    /// ρ (zCDP) charged in the period per `dp` grant, from `privacy_charged` events.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub privacy_rho: BTreeMap<String, f64>,
}

fn in_period(e: &EventRecord, from: Date, until: Date) -> bool {
    let day = Date::from_days((e.at_ms / 86_400_000) as i64);
    day >= from && day <= until
}

/// Computes a usage report from the recorded events.
pub(crate) fn usage(entries: &[EventRecord], operator: Option<&str>, from: Date, until: Date) -> UsageReport {
    let mut r = UsageReport {
        from: from.to_string(),
        until: until.to_string(),
        operator: operator.map(str::to_string),
        ..Default::default()
    };
    let mut jobs: BTreeSet<&str> = BTreeSet::new();
    let mine = |op: &str| operator.is_none_or(|o| o == op);
    for e in entries.iter().filter(|e| in_period(e, from, until)) {
        match &e.event {
            Event::JobAdmitted {
                job_id,
                operator: op,
                datasets,
                ..
            } if mine(op) => {
                jobs.insert(job_id);
                r.jobs_run += 1;
                for d in datasets {
                    *r.datasets_used.entry(d.clone()).or_default() += 1;
                }
            }
            Event::JobRefused { operator: op, .. } if mine(op) => r.jobs_refused += 1,
            Event::JobFinished { job_id, outcome } if jobs.contains(job_id.as_str()) && outcome.succeeded() => {
                r.jobs_succeeded += 1
            }
            Event::QueryRefused { job_id, .. } if jobs.contains(job_id.as_str()) => r.queries_refused += 1,
            Event::PrivacyCharged { job_id, grant, rho, .. } if jobs.contains(job_id.as_str()) => {
                *r.privacy_rho.entry(grant.clone()).or_default() += rho;
            }
            Event::OutputEmitted { job_id, .. } if jobs.contains(job_id.as_str()) => r.outputs_quarantined += 1,
            Event::GrantTerminated { .. } if operator.is_none() => r.grants_terminated += 1,
            _ => {}
        }
    }
    r
}

/// One line of the compliance report: a clause, its control, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceLine {
    /// The clause(s) of the standard.
    pub clause: String,
    /// The requirement, paraphrased.
    pub requirement: String,
    /// The control in Inland that implements it.
    pub control: String,
    /// The evidence recorded in the period.
    pub evidence: String,
}

/// The compliance report: each clause, its control, and the evidence for the period.
pub(crate) fn compliance(entries: &[EventRecord], from: Date, until: Date, ledger_ok: bool) -> Vec<ComplianceLine> {
    let mut count: BTreeMap<&str, u64> = BTreeMap::new();
    for e in entries.iter().filter(|e| in_period(e, from, until)) {
        let kind = match &e.event {
            Event::DatasetRegistered { .. } => "datasets registered",
            Event::DatasetProposed { .. } => "social datasets proposed",
            Event::DatasetApproved { .. } => "social datasets approved",
            Event::OperatorRegistered { .. } => "operators registered",
            Event::OperatorStatusChanged { .. } => "operator status changes",
            Event::GrantIssued { .. } => "grants issued",
            Event::GrantTerminated { .. } => "grants terminated with destruction records",
            Event::JobAdmitted { .. } => "jobs admitted",
            Event::JobRefused { .. } => "jobs refused",
            Event::QueryRun { .. } => "queries recorded",
            Event::QueryRefused { .. } => "queries refused",
            Event::OutputEmitted { .. } => "outputs quarantined",
            Event::FeedbackAdded { .. } => "feedback reports",
            Event::CatalogPublished { .. } => "catalog publications",
            _ => "other events",
        };
        *count.entry(kind).or_default() += 1;
    }
    let n = |k: &str| count.get(k).copied().unwrap_or(0);
    let line = |clause: &str, requirement: &str, control: &str, evidence: String| ComplianceLine {
        clause: clause.into(),
        requirement: requirement.into(),
        control: control.into(),
        evidence,
    };
    vec![
        line(
            "3.1, 6.1",
            "classification and grading; some data never operated",
            "dataset grade; core data cannot be granted",
            format!("{} datasets registered", n("datasets registered")),
        ),
        line(
            "6.2, 9.4",
            "published, traceable catalog",
            "inland catalog publish; catalog changes are ledger events",
            format!("{} catalog publications", n("catalog publications")),
        ),
        line(
            "7.1, 7.2",
            "qualified operators",
            "operator registry with qualification records and approval",
            format!(
                "{} operators registered, {} status changes",
                n("operators registered"),
                n("operator status changes")
            ),
        ),
        line(
            "8.4",
            "agreement fixes scope, term (≤ 5 years), purpose",
            "grants; every job admitted only under its operator's grant in term",
            format!(
                "{} grants issued; {} jobs admitted, {} refused",
                n("grants issued"),
                n("jobs admitted"),
                n("jobs refused")
            ),
        ),
        line(
            "8.6",
            "destruction on termination",
            "grant termination: per-grant key destroyed, files deleted, record kept",
            format!(
                "{} destruction records",
                n("grants terminated with destruction records")
            ),
        ),
        line(
            "9.3, 9.5",
            "full-process audit; tamper-proof evidence",
            "evidence ledger (RFC 9162 Merkle log, signed checkpoints)",
            format!(
                "{} queries recorded; ledger verification {}",
                n("queries recorded"),
                if ledger_ok { "passed" } else { "FAILED" }
            ),
        ),
        line(
            "10.1",
            "development only inside the domain",
            "wasm sandbox: no files, no network, only the release gate out",
            format!("{} outputs quarantined", n("outputs quarantined")),
        ),
        line(
            "10.2",
            "no sub-licensing",
            "grants bound to one operator; jobs bound to the submitter's identity",
            format!("{} jobs refused at admission", n("jobs refused")),
        ),
        line(
            "10.3",
            "social data fused only after approval",
            "dataset propose / approve; only the owner's grants include it",
            format!(
                "{} proposed, {} approved",
                n("social datasets proposed"),
                n("social datasets approved")
            ),
        ),
        line(
            "10.6",
            "operators report data quality problems",
            "inland feedback",
            format!("{} feedback reports", n("feedback reports")),
        ),
        line(
            "12.1, 12.2",
            "yearly evaluation; disclosure of use",
            "inland report usage / compliance, computed from the ledger",
            "this report".into(),
        ),
    ]
}
