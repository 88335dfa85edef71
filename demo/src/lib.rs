//! `inland-demo` (`make demo`): a fresh domain with the example datasets and
//! jobs, driven the way people use it: bootstrap on the directory (datasets,
//! operator, grant, reviewers, tokens), then everything else through the
//! domain server, started in-process on a loopback port. Each job is shown
//! as its operator sees it and as a reviewer sees it.

mod api;

use anyhow::{Context, Result, anyhow};
use api::Api;
use inland_runtime::{
    Date, Domain, DomainConfig, Event, GrantRequest, IssuedToken, Limits, OperatorStatus, OperatorType, OutputRecord,
    Qualification, Role, Runtime, TerminationReason, verify_bundle,
};
use serde_json::{Value, json};
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

/// What the demo did: each example job and the state it ended in, in the order run.
pub struct DemoSummary {
    /// (job name, state as the operator saw it: `succeeded`, `failed`, `refused`).
    pub jobs: Vec<(String, String)>,
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
        privacy: Default::default(),
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

    // Reviewers, and a token for each person (bootstrap: on the directory).
    runtime.reviews().add_reviewer("reviewer-li", None)?;
    runtime.reviews().add_reviewer("reviewer-wang", None)?;
    runtime.reviews().add_reviewer("ops-zhao", Some(operator))?;
    let people = People::issue(&runtime, operator)?;
    let api = Api::start(runtime.clone())?;
    w(
        out,
        format_args!(
            "== Server at {}; tokens issued to li (operator), reviewer-li, reviewer-wang, ops-zhao (works for `{operator}`), regulator (auditor)\n",
            api.base()
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
        let view = api.run_job(&people.operator, &grant.id, wasm, &[]).await?;
        show_job(out, &api, &people, name, &view).await?;
        summary
            .jobs
            .push((name.to_string(), view["state"].as_str().unwrap_or("").to_string()));
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
        let params: Vec<(&str, &str)> = if sql.is_empty() { vec![] } else { vec![("sql", sql)] };
        let view = api.run_job(&people.operator, &grant.id, wasm, &params).await?;
        show_job(out, &api, &people, title, &view).await?;
        under_policy.push(view["id"].as_str().unwrap_or("").to_string());
    }

    let exported = release_gate(out, dir, &runtime, &api, &people, &under_policy).await?;

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

/// The people of the demo, each with a bearer token.
struct People {
    operator: IssuedToken,
    reviewer_li: IssuedToken,
    reviewer_wang: IssuedToken,
    ops_zhao: IssuedToken,
    auditor: IssuedToken,
}

impl People {
    fn issue(runtime: &Runtime, operator: &str) -> Result<People> {
        let until = inland_files::now_ms() + 86_400_000;
        let access = runtime.access();
        Ok(People {
            operator: access.issue(Role::Operator, "li", Some(operator), until)?,
            reviewer_li: access.issue(Role::Reviewer, "reviewer-li", None, until)?,
            reviewer_wang: access.issue(Role::Reviewer, "reviewer-wang", None, until)?,
            ops_zhao: access.issue(Role::Reviewer, "ops-zhao", None, until)?,
            auditor: access.issue(Role::Auditor, "regulator", None, until)?,
        })
    }
}

/// A finished job as its operator sees it (state, refusal) and then as a
/// reviewer reads its outputs inside the domain (page, log).
async fn show_job(out: &mut dyn Write, api: &Api, people: &People, name: &str, view: &Value) -> Result<()> {
    let id = view["id"].as_str().unwrap_or("");
    let outcome = match view["state"].as_str().unwrap_or("") {
        "refused" => format!("REFUSED — {}", view["refusal"].as_str().unwrap_or("")),
        other => other.to_string(),
    };
    w(
        out,
        format_args!("\n== Job {name} ({id})\n   the operator sees: {outcome}\n"),
    )?;
    let queue = api.get(&people.reviewer_li, "/api/outputs").await?;
    let mine: Vec<String> = queue
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["job_id"] == id)
        .filter_map(|o| o["id"].as_str().map(str::to_string))
        .collect();
    let mut log_shown = false;
    for output in &mine {
        let page = api.get(&people.reviewer_li, &format!("/api/outputs/{output}")).await?;
        if !log_shown {
            for line in page.body["job_log"].as_array().into_iter().flatten().take(4) {
                w(
                    out,
                    format_args!(
                        "   the reviewer reads in its log: [{}] {}\n",
                        line["level"].as_str().unwrap_or(""),
                        line["message"].as_str().unwrap_or("")
                    ),
                )?;
            }
            log_shown = true;
        }
        w(out, format_args!("   output {output} -> quarantine, for review\n"))?;
        for line in page.body["page"].as_str().unwrap_or("").lines().take(14) {
            w(out, format_args!("     {line}\n"))?;
        }
    }
    if mine.is_empty() && view["state"] == "failed" {
        w(
            out,
            format_args!("   (why it stopped is recorded for the reviewers, not shown to the operator)\n"),
        )?;
    }
    Ok(())
}

/// The first output of job `job`, from the reviewers' queue.
async fn first_output(api: &Api, people: &People, job: &str) -> Result<Option<String>> {
    let queue = api.get(&people.reviewer_li, "/api/outputs").await?;
    Ok(queue
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["job_id"] == job)
        .filter_map(|o| o["id"].as_str().map(str::to_string))
        .min())
}

/// Votes through the server as `who`.
async fn vote(api: &Api, who: &IssuedToken, id: &str, decision: &str, reason: &str) -> Result<api::Reply> {
    api.post_json(
        who,
        &format!("/api/outputs/{id}/votes"),
        &json!({ "decision": decision, "reason": reason }),
    )
    .await
}

/// The release gate in action, through the server: one output blocked by
/// the checks, one approved and downloaded by its operator as a signed
/// bundle, one rejected by a reviewer. Returns the exported output.
async fn release_gate(
    out: &mut dyn Write,
    dir: &Path,
    runtime: &Runtime,
    api: &Api,
    people: &People,
    jobs: &[String],
) -> Result<Option<OutputRecord>> {
    w(out, format_args!("\n== Release gate\n"))?;
    let queue = api.get(&people.reviewer_li, "/api/outputs").await?;
    for o in queue.body.as_array().into_iter().flatten() {
        w(
            out,
            format_args!(
                "   {:<58} {}\n",
                o["id"].as_str().unwrap_or(""),
                o["state"].as_str().unwrap_or("")
            ),
        )?;
    }
    let output_of = |i: usize| jobs.get(i).cloned();

    // Blocked: the masked view carries (pseudonymous) direct identifiers.
    if let Some(job) = output_of(0)
        && let Some(id) = first_output(api, people, &job).await?
    {
        let o = runtime.reviews().output(&id)?;
        let why = o
            .gate
            .as_ref()
            .map(|g| g.blocked_because().join("; "))
            .unwrap_or_default();
        w(out, format_args!("\n-- {id} is BLOCKED by the checks: {why}\n"))?;
        let tried = vote(api, &people.reviewer_li, &id, "approve", "looks fine").await?;
        w(
            out,
            format_args!(
                "   reviewer-li tries to approve it: {} {}\n",
                tried.status,
                tried.detail()
            ),
        )?;
    }

    // Approved, then downloaded by the operator as a signed bundle.
    let mut exported = None;
    if let Some(job) = output_of(2)
        && let Some(id) = first_output(api, people, &job).await?
    {
        let early = api.get(&people.operator, &format!("/api/outputs/{id}/bundle")).await?;
        w(
            out,
            format_args!(
                "\n-- the operator asks for {id} before review: {} {}\n",
                early.status,
                early.detail()
            ),
        )?;
        let tried = vote(api, &people.ops_zhao, &id, "approve", "ours, looks fine").await?;
        w(
            out,
            format_args!(
                "   ops-zhao (works for the operator) tries to approve it: {} {}\n",
                tried.status,
                tried.detail()
            ),
        )?;
        let approved = vote(
            api,
            &people.reviewer_li,
            &id,
            "approve",
            "district-level aggregates; small groups suppressed by the host",
        )
        .await?;
        w(
            out,
            format_args!(
                "   reviewer-li approves: {id} is {}\n",
                approved.body["state"].as_str().unwrap_or("?")
            ),
        )?;
        let to = dir.join("exported").join("district_stats");
        let bundle = api.get(&people.operator, &format!("/api/outputs/{id}/bundle")).await?;
        if bundle.status != 200 {
            return Err(anyhow!("the released bundle was refused: {}", bundle.detail()));
        }
        let mut files = Vec::new();
        for f in bundle.body["files"].as_array().into_iter().flatten() {
            let name = f["name"].as_str().unwrap_or("").to_string();
            let bytes = base64_decode(f["content_base64"].as_str().unwrap_or(""))?;
            w(
                out,
                format_args!("     {name}  sha256 {}\n", &f["sha256"].as_str().unwrap_or("")[..16]),
            )?;
            files.push((name, bytes));
        }
        inland_runtime::write_bundle(&to, &files)?;
        w(
            out,
            format_args!("   inland export {id} --to {} (through the server)\n", to.display()),
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
        for (name, bytes) in &files {
            let mut bytes = bytes.clone();
            if name.ends_with(".csv")
                && let Some(b) = bytes.last_mut()
            {
                *b ^= 0x01;
            }
            let target = tampered.join(name);
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
        exported = Some(runtime.reviews().output(&id)?);
    }

    // Rejected by a reviewer: its operator gets nothing.
    if let Some(job) = output_of(3)
        && let Some(id) = first_output(api, people, &job).await?
    {
        let rejected = vote(
            api,
            &people.reviewer_wang,
            &id,
            "reject",
            "a service-type breakdown is outside the grant's purpose (district statistics)",
        )
        .await?;
        w(
            out,
            format_args!(
                "\n-- reviewer-wang rejects {id}: it is {}\n",
                rejected.body["state"].as_str().unwrap_or("?")
            ),
        )?;
        let tried = api.get(&people.operator, &format!("/api/outputs/{id}/bundle")).await?;
        w(
            out,
            format_args!("   the operator asks for it: {} {}\n", tried.status, tried.detail()),
        )?;
    }

    // The regulator's copy of the record, verified offline.
    let export = api.get(&people.auditor, "/api/ledger/signed-export").await?;
    let audit = dir.join("audit");
    std::fs::create_dir_all(&audit).map_err(io(&audit))?;
    for f in export.body["files"].as_array().into_iter().flatten() {
        let target = audit.join(f["name"].as_str().unwrap_or("unnamed"));
        std::fs::write(&target, f["content"].as_str().unwrap_or("")).map_err(io(&target))?;
    }
    let offline = inland_runtime::ledger::verify_export(&audit, None)?;
    w(
        out,
        format_args!(
            "\n-- the regulator's signed ledger export ({} entries): {}\n",
            offline.entries,
            offline.problem.as_deref().unwrap_or("verified offline")
        ),
    )?;
    Ok(exported)
}

fn base64_decode(text: &str) -> Result<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .context("a bundle file is not base64")
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
                ..
            } if *output_id == output.id => {
                format!("output quarantined, digest {}", &content_digest[..16])
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
