//! The registry through the server, with an admin's token: operators,
//! grants, reviewers and the domain policy. Datasets, the catalog,
//! feedback and key rotation stay on the domain host.

use crate::args::{GrantCmd, OperatorCmd, PolicyCmd, ReviewerCmd};
use crate::client::{Client, text};
use crate::commands::operator::qualifications;
use crate::render::print_json;
use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::{Value, json};

/// A value's serde word (`domain`, `breach`): what the API takes.
fn word<T: serde::Serialize>(value: T) -> Result<Value> {
    Ok(serde_json::to_value(value)?)
}

fn domain(client: &Client) -> Result<Value> {
    client.get(&["api", "admin", "domain"], &[])
}

/// `inland operator …` through the server.
pub fn operator(client: &Client, cmd: OperatorCmd) -> Result<()> {
    match cmd {
        OperatorCmd::Add {
            name,
            kind,
            statements,
            evidence,
        } => {
            let quals: Vec<Value> = qualifications(statements, evidence)?
                .into_iter()
                .map(|q| json!({ "statement": q.statement, "evidence_sha256": q.evidence_sha256 }))
                .collect();
            let kind = word(inland_runtime::OperatorType::from(kind))?;
            let body = json!({ "name": name, "type": kind, "qualifications": quals });
            let op = client.send_json(Method::POST, &["api", "admin", "operators"], &body)?;
            println!("registered operator `{}`, pending approval", text(&op, "name"));
        }
        OperatorCmd::Approve { name } => {
            let body = json!({ "status": "approved" });
            client.send_json(Method::POST, &["api", "admin", "operators", &name, "status"], &body)?;
            println!("operator `{name}` approved");
        }
        OperatorCmd::Suspend { name, reason } => {
            let body = json!({ "status": "suspended", "reason": reason });
            client.send_json(Method::POST, &["api", "admin", "operators", &name, "status"], &body)?;
            println!("operator `{name}` suspended");
        }
        OperatorCmd::List => {
            for op in domain(client)?["operators"].as_array().into_iter().flatten() {
                println!("{:<32} {}", text(op, "name"), text(op, "status"));
            }
        }
        OperatorCmd::Show { name } => {
            let d = domain(client)?;
            let op = d["operators"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["name"] == name.as_str())
                .with_context(|| format!("no operator `{name}`"))?;
            print_json(op)?;
        }
    }
    Ok(())
}

/// `inland grant …` through the server.
pub fn grant(client: &Client, cmd: GrantCmd) -> Result<()> {
    match cmd {
        GrantCmd::Issue {
            operator,
            datasets,
            purpose,
            scenario,
            from,
            until,
            products,
            jobs_per_day,
            jobs_per_term,
            approved_components_only,
            dp,
        } => {
            let budgets: serde_json::Map<String, serde_json::Value> = dp
                .dp_dataset_budgets
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let body = json!({
                "operator": operator, "datasets": datasets, "purpose": purpose, "scenario": scenario,
                "from": from, "until": until, "products": products, "jobs_per_day": jobs_per_day,
                "jobs_per_term": jobs_per_term, "approved_components_only": approved_components_only,
                "dp_budget_rho": dp.dp_budget_rho, "dp_query_rho": dp.dp_query_rho,
                "dp_dataset_budgets": budgets,
            });
            let g = client
                .send_json(Method::POST, &["api", "admin", "grants"], &body)
                .context("the grant was refused")?;
            println!(
                "issued grant {} to `{}` from {} until {}",
                text(&g, "id"),
                text(&g, "operator"),
                text(&g, "from"),
                text(&g, "until")
            );
        }
        GrantCmd::List => {
            for g in domain(client)?["grants"].as_array().into_iter().flatten() {
                println!(
                    "{}  {:<24} {} .. {}  {}",
                    text(g, "id"),
                    text(g, "operator"),
                    text(g, "from"),
                    text(g, "until"),
                    text(g, "status")
                );
            }
        }
        GrantCmd::Show { id } => {
            let d = domain(client)?;
            let g = d["grants"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|g| g["id"] == id.as_str())
                .with_context(|| format!("no grant `{id}`"))?;
            print_json(g)?;
        }
        GrantCmd::Budget { id } => {
            let b = client.get(&["api", "grants", &id, "budget"], &[])?;
            match b["mode"].as_str() {
                Some("dp") => println!(
                    "grant {id}: dp, ρ {} spent of {} ({} left; ε {:.3} of {:.3} at δ = 1e-6), {} queries at ρ {}",
                    b["spent_rho"],
                    b["budget_rho"],
                    b["remaining_rho"],
                    b["spent_epsilon"].as_f64().unwrap_or(0.0),
                    b["budget_epsilon"].as_f64().unwrap_or(0.0),
                    b["queries"],
                    b["query_rho"]
                ),
                _ => println!("grant {id}: exact (no privacy budget)"),
            }
        }
        GrantCmd::Terminate { id, reason, note } => {
            let reason = word(inland_runtime::TerminationReason::from(reason))?;
            let body = json!({ "reason": reason, "note": note });
            let record = client.send_json(Method::POST, &["api", "admin", "grants", &id, "termination"], &body)?;
            println!(
                "grant {id} terminated; destruction record:\n{}",
                serde_json::to_string_pretty(&record)?
            );
        }
        GrantCmd::RotateMasterKey => {
            bail!("the master key is rotated on the domain host with the server stopped: run it there without --server")
        }
    }
    Ok(())
}

/// `inland reviewer add` through the server.
pub fn reviewer(client: &Client, cmd: ReviewerCmd) -> Result<()> {
    match cmd {
        ReviewerCmd::Add { name, operator } => {
            let body = json!({ "name": name, "operator": operator });
            client.send_json(Method::POST, &["api", "admin", "reviewers"], &body)?;
            println!("reviewer `{name}` registered");
            Ok(())
        }
        ReviewerCmd::List => bail!("the reviewer list is read on the domain host: run it there without --server"),
    }
}

/// `inland policy apply` through the server.
pub fn policy(client: &Client, cmd: PolicyCmd) -> Result<()> {
    match cmd {
        PolicyCmd::Apply { file } => {
            let text_bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            match client.post_like(
                Method::PUT,
                &["api", "admin", "domain-policy"],
                "application/toml",
                text_bytes,
            ) {
                Ok(v) => {
                    println!(
                        "policy version {} applied (sha256 {})",
                        v["version"],
                        text(&v, "sha256")
                    );
                    Ok(())
                }
                Err(e) => {
                    if let Some(problems) = e.downcast_ref::<crate::client::Refusal>().map(|r| r.detail.clone()) {
                        for p in problems.split("; ") {
                            eprintln!("{}:{p}", file.display());
                        }
                    }
                    Err(e)
                }
            }
        }
        PolicyCmd::Check { .. } | PolicyCmd::Show => bail!(
            "`policy check` and `policy show` read the domain directory on the host: run them there without --server"
        ),
    }
}
