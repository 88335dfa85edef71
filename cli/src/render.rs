//! How the CLI shows things to a person: job reports, the first rows of a
//! table, JSON records, hashes in lists and policy problems. Shared by the
//! commands and the demo.

use anyhow::{Context, Result, anyhow};
use arrow::record_batch::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use inland_runtime::{Diagnostic, JobReport, JobStatus, Runtime};
use serde::Serialize;
use std::io::Write;

/// Writes a job report as a person reads it: outcome, log, queries, outputs.
pub fn print_report(out: &mut dyn Write, name: &str, runtime: &Runtime, report: &JobReport) -> Result<()> {
    let job = &report.job;
    let outcome = match (&job.status, &job.error) {
        (JobStatus::Succeeded, _) => "succeeded".to_string(),
        (JobStatus::Refused, Some(e)) => format!("REFUSED — {e}"),
        (_, Some(e)) => format!("STOPPED — {e}"),
        (_, None) => format!("{:?}", job.status),
    };
    writeln!(out, "\n== Job {name} ({})\n   {outcome}", job.id)?;
    for line in job.log.iter().take(8) {
        writeln!(out, "   [{}] {}", line.level, line.message)?;
    }
    for q in &job.queries {
        let what = match &q.error {
            Some(e) => format!("error: {e}"),
            None => format!("{} rows", q.rows),
        };
        let sql = q.sql.split_whitespace().collect::<Vec<_>>().join(" ");
        writeln!(out, "   query: {sql} -> {what}")?;
    }
    let reviews = runtime.reviews();
    for o in &report.outputs {
        writeln!(
            out,
            "   output {} -> quarantine ({} rows, sha256 {})",
            o.name,
            o.rows,
            short(&o.sha256, 16)
        )?;
        let batches = reviews
            .output_table(&o.id)
            .with_context(|| format!("reading output {}", o.id))?;
        for line in first_rows(&batches, 6)?.lines() {
            writeln!(out, "     {line}")?;
        }
    }
    Ok(())
}

/// The first `rows` rows of a table (of its first batch) as a text table:
/// enough to see what an output holds without printing all of it.
pub fn first_rows(batches: &[RecordBatch], rows: usize) -> Result<String> {
    let shown: Vec<RecordBatch> = batches
        .iter()
        .take(1)
        .map(|b| b.slice(0, b.num_rows().min(rows)))
        .collect();
    Ok(pretty_format_batches(&shown)?.to_string())
}

/// Prints a record as indented JSON: what `show` commands, proofs and
/// reports give, complete and readable by tools.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints every policy problem on stderr (each with its file, line and
/// column) and returns the error the command then fails with.
pub fn policy_problems(list: &[Diagnostic]) -> anyhow::Error {
    for d in list {
        eprintln!("{d}");
    }
    anyhow!("{} problem(s) in the policy; nothing was changed", list.len())
}

/// The first `chars` characters of a hex hash, as lists show it (all of it
/// if shorter), so that a short or odd value never stops a listing.
pub fn short(hash: &str, chars: usize) -> &str {
    hash.get(..chars).unwrap_or(hash)
}
