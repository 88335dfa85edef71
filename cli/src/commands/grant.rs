//! `inland grant`: issue, inspect and terminate grants; rotate the master key.

use super::async_runtime;
use crate::args::GrantCmd;
use crate::render::print_json;
use anyhow::{Context, Result};
use inland_runtime::{Date, GrantRequest, JobQuota, Runtime};

/// Runs one grant subcommand.
pub fn run(rt: &Runtime, cmd: GrantCmd) -> Result<()> {
    let governance = rt.governance();
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
            let g = governance
                .issue_grant(GrantRequest {
                    operator,
                    datasets,
                    purpose,
                    scenario,
                    from: Date::parse(&from)?,
                    until: Date::parse(&until)?,
                    products,
                    quota: JobQuota {
                        per_day: jobs_per_day,
                        per_term: jobs_per_term,
                    },
                    approved_components_only,
                    privacy: dp.privacy(),
                })
                .context("the grant was refused")?;
            println!(
                "issued grant {} to `{}`: {} from {} until {}",
                g.id,
                g.operator,
                g.datasets.join(", "),
                g.from,
                g.until
            );
        }
        GrantCmd::List => {
            for g in governance.grants()? {
                println!(
                    "{}  {:<24} {} .. {}  {:?}  {}",
                    g.id,
                    g.operator,
                    g.from,
                    g.until,
                    g.status,
                    g.datasets.join(",")
                );
            }
        }
        GrantCmd::Budget { id } => match rt.jobs().privacy_budget(&id)? {
            Some(b) => println!(
                "grant {id}: dp, ρ {:.6} spent of {} ({:.6} left; ε {:.3} of {:.3} at δ = 1e-6), {} queries at ρ {}",
                b.spent_rho, b.budget_rho, b.remaining_rho, b.spent_epsilon, b.budget_epsilon, b.queries, b.query_rho
            ),
            None => println!("grant {id}: exact (no privacy budget)"),
        },
        GrantCmd::Show { id } => {
            print_json(&governance.grant(&id)?)?;
            if let Some(b) = rt.jobs().privacy_budget(&id)? {
                println!(
                    "privacy budget: ρ {:.6} spent of {} ({:.6} left; ε {:.3} of {:.3} at δ = 1e-6), {} queries at ρ {}",
                    b.spent_rho,
                    b.budget_rho,
                    b.remaining_rho,
                    b.spent_epsilon,
                    b.budget_epsilon,
                    b.queries,
                    b.query_rho
                );
            }
        }
        GrantCmd::Terminate { id, reason, note } => {
            let record = async_runtime()?.block_on(rt.jobs().terminate_grant(&id, reason.into(), &note))?;
            println!(
                "grant {id} terminated; destruction record:\n{}",
                serde_json::to_string_pretty(&record)?
            );
        }
        GrantCmd::RotateMasterKey => {
            let n = governance.rotate_master_key()?;
            println!("master key rotated; {n} grant keys re-wrapped");
        }
    }
    Ok(())
}
