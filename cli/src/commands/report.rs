//! `inland report`: usage and compliance reports from the evidence ledger.

use crate::args::ReportCmd;
use crate::render::print_json;
use anyhow::Result;
use inland_runtime::{Date, Runtime};

/// Runs one report subcommand.
pub fn run(rt: &Runtime, cmd: ReportCmd) -> Result<()> {
    let evidence = rt.evidence();
    match cmd {
        ReportCmd::Usage { operator, from, until } => {
            let r = evidence.usage_report(operator.as_deref(), Date::parse(&from)?, Date::parse(&until)?)?;
            print_json(&r)?;
        }
        ReportCmd::Compliance { from, until } => {
            let until = until.map(|u| Date::parse(&u)).transpose()?.unwrap_or_else(Date::today);
            let from = from
                .map(|f| Date::parse(&f))
                .transpose()?
                .unwrap_or_else(|| until.add_years(-1));
            println!("Compliance report {from} to {until}\n");
            for l in evidence.compliance_report(from, until)? {
                println!(
                    "{:<10} {}\n           control:  {}\n           evidence: {}\n",
                    l.clause, l.requirement, l.control, l.evidence
                );
            }
        }
    }
    Ok(())
}
