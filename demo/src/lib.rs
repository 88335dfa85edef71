//! `inland-demo` (`make demo`): a fresh domain with the example datasets and jobs, showing
//! what each job produced or why it was stopped.

use anyhow::{Context, Result, anyhow};
use inland_cli::render::print_report;
use inland_runtime::{
    Date, Decision, Domain, DomainConfig, Event, GrantRequest, JobReport, JobRequest, Limits, OperatorStatus,
    OperatorType, OutputRecord, Qualification, Runtime, TerminationReason, VoteRequest, review_view, verify_bundle,
};
use std::io::Write;
use std::path::Path;

/// Options of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Rows per generated dataset.
    pub rows: usize,
    /// Wall-clock limit per job in the demo domain, in seconds.
    pub timeout_secs: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            rows: 100_000,
            timeout_secs: 3,
        }
    }
}

/// What the demo did: one report per example job, in the order run.
pub struct DemoSummary {
    /// (job name, report).
    pub jobs: Vec<(String, JobReport)>,
}

fn w(out: &mut dyn Write, text: std::fmt::Arguments<'_>) -> Result<()> {
    out.write_fmt(text).context("writing demo output")
}

fn io<P: AsRef<Path>>(path: P) -> impl FnOnce(std::io::Error) -> anyhow::Error {
    move |e| anyhow!("{}: {e}", path.as_ref().display())
}

/// Sets up a domain in `dir` (which must be empty or absent), registers the
/// example datasets, runs every example job and writes what happened to `out`.
pub async fn run(dir: &Path, options: &DemoOptions, out: &mut dyn Write) -> Result<DemoSummary> {
    let limits = Limits {
        timeout_secs: options.timeout_secs,
        ..Limits::default()
    };
    Domain::init_with(
        dir,
        DomainConfig {
            name: "inland-demo".into(),
            limits,
        },
    )?;
    let runtime = Runtime::open(dir)?;
    w(out, format_args!("== Domain created at {}\n", dir.display()))?;

    let sources = tempfile::tempdir().map_err(io(std::env::temp_dir()))?;
    inland_examples::generate::write_examples(sources.path(), options.rows, 2026).map_err(|e| anyhow!("{e}"))?;
    for (name, description) in [
        ("residents", "Residents who used public services (synthetic)"),
        ("enterprises", "Enterprise registry (synthetic)"),
    ] {
        let d = runtime
            .catalog()
            .register(name, &sources.path().join(format!("{name}.parquet")), description)?;
        let cols: Vec<&str> = d.columns.iter().map(|c| c.name.as_str()).collect();
        w(
            out,
            format_args!("== Dataset `{name}`: {} rows; columns {}\n", d.rows, cols.join(", ")),
        )?;
    }

    // An approved operator and its grant: every job runs under an authorization agreement.
    let operator = "city-data-ops";
    runtime.governance().add_operator(
        operator,
        OperatorType::Domain,
        vec![Qualification {
            statement: "Information security management certificate (synthetic)".into(),
            evidence_sha256: inland_files::sha256_hex(b"demo qualification evidence"),
        }],
    )?;
    runtime
        .governance()
        .set_operator_status(operator, OperatorStatus::Approved, None)?;
    let today = Date::today();
    let grant = runtime.governance().issue_grant(GrantRequest {
        operator: operator.into(),
        datasets: vec!["residents".into(), "enterprises".into()],
        purpose: "District-level public service statistics".into(),
        scenario: "Urban planning dashboard".into(),
        from: today,
        until: today.add_years(2),
        products: vec!["district-dashboard".into()],
        quota: Default::default(),
        approved_components_only: false,
    })?;
    w(
        out,
        format_args!(
            "== Operator `{operator}` approved; grant {} covers {} until {}\n",
            grant.id,
            grant.datasets.join(", "),
            grant.until
        ),
    )?;

    let mut summary = DemoSummary { jobs: Vec::new() };
    let names = inland_examples::jobs::USEFUL
        .iter()
        .copied()
        .chain(inland_examples::jobs::HOSTILE.iter().map(|(n, _)| *n));
    for name in names {
        let wasm = inland_examples::jobs::wasm(name)
            .ok_or_else(|| anyhow!("example job `{name}` not found"))?
            .to_vec();
        let report = runtime
            .jobs()
            .run(JobRequest {
                wasm,
                params: Vec::new(),
                operator: operator.into(),
                grant: grant.id.clone(),
            })
            .await?;
        print_report(out, name, &runtime, &report)?;
        summary.jobs.push((name.to_string(), report));
    }
    // The domain policy: what a job sees of the residents once it is in force.
    let policy_path = sources.path().join("policy.toml");
    std::fs::write(&policy_path, inland_examples::POLICY).map_err(io(&policy_path))?;
    match runtime.policies().apply(&policy_path)? {
        Ok(v) => w(
            out,
            format_args!(
                "\n== Policy version {} applied (sha256 {})\n",
                v.version,
                &v.sha256[..16]
            ),
        )?,
        Err(problems) => {
            let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            return Err(anyhow!("the example policy does not fit:\n{}", lines.join("\n")));
        }
    }
    let probe = inland_examples::jobs::wasm(inland_examples::jobs::SQL_PROBE)
        .ok_or_else(|| anyhow!("example job `sql-probe` not found"))?
        .to_vec();
    let runs = [
        (
            "sql-probe: masked columns",
            probe.clone(),
            "SELECT resident_id, mobile, district, age FROM residents LIMIT 5",
        ),
        (
            "sql-probe: a refused query",
            probe.clone(),
            "SELECT district, max(income) FROM residents GROUP BY district",
        ),
        (
            "district-stats under the policy: a suppressed group",
            district_stats_wasm()?,
            "",
        ),
        (
            "sql-probe: residents by service type",
            probe.clone(),
            "SELECT service_type, count(*) AS residents, sum(income) AS total_income FROM residents GROUP BY service_type",
        ),
    ];
    let mut under_policy = Vec::new();
    for (title, wasm, sql) in runs {
        let params = if sql.is_empty() {
            vec![]
        } else {
            vec![("sql".to_string(), sql.to_string())]
        };
        let report = runtime
            .jobs()
            .run(JobRequest {
                wasm,
                params,
                operator: operator.into(),
                grant: grant.id.clone(),
            })
            .await?;
        print_report(out, title, &runtime, &report)?;
        under_policy.push(report);
    }

    let exported = release_gate(out, dir, &runtime, operator, &under_policy)?;

    // The agreement ends: the grant is terminated and everything derived under it destroyed.
    let record = runtime
        .jobs()
        .terminate_grant(&grant.id, TerminationReason::Agreement, "demo: the agreement ended")
        .await?;
    if let Event::GrantTerminated {
        outputs_destroyed,
        files_deleted,
        bytes_deleted,
        key_destroyed,
        ..
    } = &record
    {
        w(
            out,
            format_args!(
                "\n== Grant {} terminated: data key destroyed: {key_destroyed}; {files_deleted} files ({bytes_deleted} bytes) deleted; {} outputs destroyed\n",
                grant.id,
                outputs_destroyed.len()
            ),
        )?;
        for (id, sha) in outputs_destroyed {
            w(out, format_args!("   destroyed {id} (digest {})\n", &sha[..16]))?;
        }
    }
    if let Event::GrantTerminated { released, .. } = &record {
        for r in released {
            w(out, format_args!("   already released, listed and not recalled: {r}\n"))?;
        }
    }
    print_evidence(out, &runtime, exported.as_ref())?;
    Ok(summary)
}

/// The release gate in action: one output approved and exported, one
/// blocked by the checks, one rejected by a reviewer. Returns the exported output.
fn release_gate(
    out: &mut dyn Write,
    dir: &Path,
    runtime: &Runtime,
    operator: &str,
    reports: &[JobReport],
) -> Result<Option<OutputRecord>> {
    w(out, format_args!("\n== Release gate\n"))?;
    runtime.reviews().add_reviewer("reviewer-li", None)?;
    runtime.reviews().add_reviewer("reviewer-wang", None)?;
    runtime.reviews().add_reviewer("ops-zhao", Some(operator))?;
    w(
        out,
        format_args!("   reviewers: reviewer-li, reviewer-wang (domain), ops-zhao (works for `{operator}`)\n"),
    )?;
    for o in runtime.reviews().queue()? {
        let state = o.review.as_ref().map(|r| r.state.to_string()).unwrap_or_default();
        w(out, format_args!("   {:<58} {state}\n", o.id))?;
    }
    let output_of = |i: usize| reports.get(i).and_then(|r| r.outputs.first()).cloned();
    let vote = |id: &str, reviewer: &str, decision, reason: &str| {
        runtime.reviews().vote(
            id,
            VoteRequest {
                reviewer: reviewer.into(),
                decision,
                reason: reason.into(),
                overrides: vec![],
                justification: None,
            },
        )
    };

    // Blocked: the masked view carries (pseudonymous) direct identifiers.
    if let Some(o) = output_of(0) {
        let o = runtime.reviews().output(&o.id)?;
        let why = o
            .gate
            .as_ref()
            .map(|g| g.blocked_because().join("; "))
            .unwrap_or_default();
        w(out, format_args!("\n-- {} is BLOCKED by the checks: {why}\n", o.id))?;
        if let Err(e) = vote(&o.id, "reviewer-li", Decision::Approve, "looks fine") {
            w(out, format_args!("   reviewer-li tries to approve it: {e}\n"))?;
        }
    }

    // Approved and exported: district statistics.
    let mut exported = None;
    if let Some(o) = output_of(2) {
        w(out, format_args!("\n-- inland review show {}\n", o.id))?;
        let table = runtime.reviews().output_table(&o.id)?;
        for line in review_view::render(&runtime.reviews().output(&o.id)?, &table).lines() {
            w(out, format_args!("   {line}\n"))?;
        }
        if let Err(e) = vote(&o.id, "ops-zhao", Decision::Approve, "ours, looks fine") {
            w(out, format_args!("   ops-zhao tries to approve it: {e}\n"))?;
        }
        let approved = vote(
            &o.id,
            "reviewer-li",
            Decision::Approve,
            "district-level aggregates; small groups suppressed by the host",
        )?;
        let state = approved
            .review
            .as_ref()
            .map(|r| r.state.to_string())
            .unwrap_or_default();
        w(out, format_args!("   reviewer-li approves: {} is {state}\n", o.id))?;
        let to = dir.join("exported").join("district_stats");
        let done = runtime.reviews().export(&o.id, &to)?;
        w(out, format_args!("   inland export {} --to {}\n", o.id, to.display()))?;
        for (name, sha) in &done.files {
            w(out, format_args!("     {name}  sha256 {}\n", &sha[..16]))?;
        }
        w(
            out,
            format_args!("     manifest.json  sha256 {} (signed)\n", &done.manifest_sha256[..16]),
        )?;
        let check = verify_bundle(&to, None)?;
        w(
            out,
            format_args!(
                "   inland verify-export: {}\n",
                check
                    .problem
                    .as_deref()
                    .unwrap_or("bundle OK, every file matches the signed manifest")
            ),
        )?;
        // A copy with one byte changed no longer verifies.
        let tampered = dir.join("exported").join("tampered");
        std::fs::create_dir_all(&tampered).map_err(io(&tampered))?;
        for entry in std::fs::read_dir(&to).map_err(io(&to))? {
            let entry = entry.map_err(io(&to))?;
            let mut bytes = std::fs::read(entry.path()).map_err(io(entry.path()))?;
            if entry.file_name().to_string_lossy().ends_with(".csv")
                && let Some(b) = bytes.last_mut()
            {
                *b ^= 0x01;
            }
            let target = tampered.join(entry.file_name());
            std::fs::write(&target, bytes).map_err(io(&target))?;
        }
        let check = verify_bundle(&tampered, None)?;
        w(
            out,
            format_args!(
                "   the same bundle with one byte changed: {}\n",
                check.problem.as_deref().unwrap_or("(not detected!)")
            ),
        )?;
        exported = Some(runtime.reviews().output(&o.id)?);
    }

    // Rejected by a reviewer.
    if let Some(o) = output_of(3) {
        let rejected = vote(
            &o.id,
            "reviewer-wang",
            Decision::Reject,
            "a service-type breakdown is outside the grant's purpose (district statistics)",
        )?;
        let state = rejected
            .review
            .as_ref()
            .map(|r| r.state.to_string())
            .unwrap_or_default();
        w(
            out,
            format_args!("\n-- reviewer-wang rejects {}: it is {state}\n", o.id),
        )?;
        if let Err(e) = runtime.reviews().export(&o.id, &dir.join("exported").join("rejected")) {
            w(out, format_args!("   inland export {}: {e}\n", o.id))?;
        }
    }
    Ok(exported)
}

fn district_stats_wasm() -> Result<Vec<u8>> {
    inland_examples::jobs::wasm("district-stats")
        .map(<[u8]>::to_vec)
        .ok_or_else(|| anyhow!("example job `district-stats` not found"))
}

/// Verifies the ledger and shows the lineage of the exported output, from the record alone.
fn print_evidence(out: &mut dyn Write, runtime: &Runtime, exported: Option<&OutputRecord>) -> Result<()> {
    let Some(ledger) = runtime.evidence().ledger() else {
        return Ok(());
    };
    let report = ledger.verify()?;
    let verdict = match &report.problem {
        None => "verified: every hash and checkpoint signature checks out".to_string(),
        Some(p) => format!("VERIFICATION FAILED: {p}"),
    };
    w(
        out,
        format_args!(
            "\n== Evidence ledger: {} entries, {} checkpoints; {verdict}\n",
            report.entries, report.checkpoints
        ),
    )?;
    let Some(output) = exported else {
        return Ok(());
    };
    w(
        out,
        format_args!("== Lineage of exported output {} (from the ledger)\n", output.id),
    )?;
    for e in ledger.entries()? {
        let line = match &e.event {
            Event::DatasetRegistered { name, sha256, rows } if output.datasets.contains(name) => {
                format!("dataset {name} registered ({rows} rows, sha256 {})", &sha256[..16])
            }
            Event::JobAdmitted {
                job_id,
                module_sha256,
                datasets,
                ..
            } if *job_id == output.job_id => {
                format!(
                    "job admitted: module {} may read {}",
                    &module_sha256[..16],
                    datasets.join(", ")
                )
            }
            Event::QueryRun { job_id, plan_hash, .. } if *job_id == output.job_id => {
                format!("query run, plan {}", &plan_hash[..16])
            }
            Event::OutputEmitted {
                output_id,
                content_digest,
                rows,
                ..
            } if *output_id == output.id => {
                format!("output quarantined: {rows} rows, digest {}", &content_digest[..16])
            }
            Event::JobFinished { job_id, outcome } if *job_id == output.job_id => {
                format!("job finished: {outcome}")
            }
            Event::OutputChecked {
                output_id,
                verdict,
                findings,
                ..
            } if *output_id == output.id => {
                format!(
                    "gate checks: {verdict}; findings: {}",
                    if findings.is_empty() {
                        "none".to_string()
                    } else {
                        findings.join(", ")
                    }
                )
            }
            Event::ReviewVoted {
                output_id,
                reviewer,
                decision,
                ..
            } if *output_id == output.id => format!("review: {reviewer} voted {decision}"),
            Event::ReviewDecided { output_id, state, .. } if *output_id == output.id => {
                format!("review decided: {state}")
            }
            Event::OutputExported {
                output_id,
                manifest_sha256,
                ..
            } if *output_id == output.id => format!("exported: signed manifest sha256 {}", &manifest_sha256[..16]),
            _ => continue,
        };
        let proof = ledger.inclusion_proof(e.seq, None)?;
        w(
            out,
            format_args!(
                "   #{:<4} {line}  [inclusion proof: {} hashes]\n",
                e.seq,
                proof.path.len()
            ),
        )?;
    }
    Ok(())
}
