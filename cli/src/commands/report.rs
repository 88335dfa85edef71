//! `inland report`: usage and compliance reports from the evidence ledger,
//! through the server (auditors, admins) or, on the domain host, from the
//! directory.

use crate::args::ReportCmd;
use crate::client::Client;
use crate::render::print_json;
use anyhow::Result;
use inland_runtime::{ComplianceLine, Date, Runtime};

/// Runs one report subcommand on the domain directory.
pub fn run(rt: &Runtime, cmd: ReportCmd) -> Result<()> {
    let evidence = rt.evidence();
    match cmd {
        ReportCmd::Usage { operator, from, until } => {
            let r = evidence.usage_report(operator.as_deref(), Date::parse(&from)?, Date::parse(&until)?)?;
            print_json(&r)?;
        }
        ReportCmd::Compliance { from, until } => {
            let (from, until) = period(from, until)?;
            print_compliance(from, until, &evidence.compliance_report(from, until)?);
        }
    }
    Ok(())
}

/// Runs one report subcommand through the server.
pub fn run_remote(client: &Client, cmd: ReportCmd) -> Result<()> {
    match cmd {
        ReportCmd::Usage { operator, from, until } => {
            let mut query = vec![("from", from.as_str()), ("until", until.as_str())];
            query.extend(operator.as_deref().map(|o| ("operator", o)));
            print_json(&client.get(&["api", "reports", "usage"], &query)?)?;
        }
        ReportCmd::Compliance { from, until } => {
            let (from, until) = period(from, until)?;
            let (f, u) = (from.to_string(), until.to_string());
            let lines = client.get(&["api", "reports", "compliance"], &[("from", &f), ("until", &u)])?;
            let lines: Vec<ComplianceLine> = serde_json::from_value(lines)?;
            print_compliance(from, until, &lines);
        }
    }
    Ok(())
}

/// The compliance period: `until` defaults to today, `from` to a year before it.
fn period(from: Option<String>, until: Option<String>) -> Result<(Date, Date)> {
    let until = until.map(|u| Date::parse(&u)).transpose()?.unwrap_or_else(Date::today);
    let from = from
        .map(|f| Date::parse(&f))
        .transpose()?
        .unwrap_or_else(|| until.add_years(-1));
    Ok((from, until))
}

fn print_compliance(from: Date, until: Date, lines: &[ComplianceLine]) {
    println!("Compliance report {from} to {until}\n");
    for l in lines {
        println!(
            "{:<10} {}\n           control:  {}\n           evidence: {}\n",
            l.clause, l.requirement, l.control, l.evidence
        );
    }
}
