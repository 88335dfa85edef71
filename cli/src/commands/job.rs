//! `inland job`: run a job component under a grant, and inspect jobs.

use super::async_runtime;
use crate::args::JobCmd;
use crate::exit;
use crate::render::{print_json, print_report, short};
use anyhow::{Context, Result};
use inland_runtime::{JobRequest, JobStatus, Runtime};
use std::io::stdout;
use std::process::ExitCode;

/// Runs one job subcommand; `job run` exits 3 when the job did not succeed.
pub fn run(rt: &Runtime, cmd: JobCmd) -> Result<ExitCode> {
    let jobs = rt.jobs();
    match cmd {
        JobCmd::Run {
            wasm,
            operator,
            grant,
            params,
        } => {
            let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
            let report = async_runtime()?.block_on(jobs.run(JobRequest {
                wasm: bytes,
                params,
                operator,
                grant,
            }))?;
            let name = wasm
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            print_report(&mut stdout(), &name, rt, &report)?;
            if report.job.status != JobStatus::Succeeded {
                return Ok(ExitCode::from(exit::JOB_NOT_SUCCEEDED));
            }
        }
        JobCmd::List => {
            for j in jobs.list()? {
                let outcome = j
                    .error
                    .as_ref()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "succeeded".into());
                println!(
                    "{}  {}  {:>2} outputs  {}",
                    j.id,
                    short(&j.module_sha256, 12),
                    j.outputs.len(),
                    outcome
                );
            }
        }
        JobCmd::Show { id } => print_json(&jobs.get(&id)?)?,
    }
    Ok(ExitCode::SUCCESS)
}
