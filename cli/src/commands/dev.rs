//! `inland dev`: a job run on this machine against dummy data made from a
//! domain's published catalog. The same host, policy, suppression and gate
//! code as the domain; everything is printed, because nothing is real.

use crate::args::DevArgs;
use crate::commands::async_runtime;
use crate::exit;
use anyhow::{Context, Result};
use inland_runtime::dev::{DEV_OPERATOR, DevDomain};
use inland_runtime::{JobRequest, JobStatus, review_view, sql_job};
use std::process::ExitCode;

/// Builds the dev domain, runs the job, prints what the domain would keep.
pub fn run(args: DevArgs) -> Result<ExitCode> {
    let (wasm, params) = match (&args.wasm, &args.sql) {
        (_, Some(sql)) => {
            let text = std::fs::read_to_string(sql).with_context(|| format!("reading {}", sql.display()))?;
            let params = sql_job::params(&text, &args.params).with_context(|| format!("in {}", sql.display()))?;
            (sql_job::component()?.to_vec(), params)
        }
        (Some(wasm), None) => (
            std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?,
            args.params.clone(),
        ),
        (None, None) => anyhow::bail!("name the job's .wasm component or a --sql file"),
    };
    let dev = DevDomain::from_catalog(&args.catalog, args.rows, args.seed)
        .with_context(|| format!("making dummy data from the catalog in {}", args.catalog.display()))?;
    eprintln!(
        "dummy data: {} ({} rows each, seed {}); policy: {}",
        dev.datasets
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        args.rows,
        args.seed,
        if dev.policy {
            "the published one"
        } else {
            "none published"
        }
    );
    let report = async_runtime()?
        .block_on(dev.rt.jobs().run(JobRequest {
            wasm,
            params,
            operator: DEV_OPERATOR.into(),
            grant: dev.grant.clone(),
            source_sha256: None,
        }))
        .context("running the job")?;
    let job = &report.job;
    println!("job {}: {:?}", job.id, job.status);
    if let Some(e) = &job.error {
        println!("error: {e}");
    }
    for (i, q) in job.queries.iter().enumerate() {
        println!("\nquery {i}: {}", q.sql.replace('\n', "\n    "));
        match &q.error {
            Some(e) => println!("  refused or failed: {e}"),
            None => println!(
                "  rows read: {}; label: {}",
                q.rows,
                q.label.map(|l| l.to_string()).unwrap_or_else(|| "-".into())
            ),
        }
    }
    if !job.log.is_empty() {
        println!("\nlog:");
        for l in &job.log {
            println!("  [{}] {}", l.level, l.message);
        }
    }
    // Names as the job chose them (the domain keeps them from the ledger, not from reviewers).
    let names = dev
        .rt
        .jobs()
        .get_with_output_names(&job.id)
        .map(|(_, names)| names)
        .unwrap_or_default();
    for output in &report.outputs {
        let table = dev
            .rt
            .reviews()
            .output_table(&output.id)
            .with_context(|| format!("reading output {}", output.id))?;
        let name = names.iter().find(|(id, _)| *id == output.id).map(|(_, n)| n.as_str());
        println!("\n== output {}", name.unwrap_or("?"));
        println!("{}", review_view::render(output, &table));
    }
    Ok(if job.status == JobStatus::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::JOB_NOT_SUCCEEDED)
    })
}
