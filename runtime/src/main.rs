//! `inland`: the command line of an Inland trusted domain.
//!
//! Exit codes: 0 success; 1 the command failed (the message says why);
//! 2 bad usage; 3 the job was refused, failed or was stopped; 4 the ledger
//! or an export failed verification (tampering).

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use inland_runtime::{Domain, JobRequest, JobStatus, Runtime, demo};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc, as DataFusion's own benchmark runner can use: a query's large, short-
/// lived buffers cost glibc's allocator page faults and trims on every run
/// (the 1M-row aggregate ran in half the time with it; benches/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "inland",
    version,
    about = "Trusted-domain runtime: public data stays in, reviewed aggregates come out"
)]
struct Cli {
    /// The domain directory.
    #[arg(long, global = true, env = "INLAND_DOMAIN", default_value = "./domain")]
    domain: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new domain directory.
    Init {
        /// Where to create it (default: --domain).
        dir: Option<PathBuf>,
        /// A name for the domain.
        #[arg(long, default_value = "inland")]
        name: String,
    },
    /// Register and inspect datasets.
    #[command(subcommand)]
    Dataset(DatasetCmd),
    /// Register, approve and suspend operators.
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// Issue and inspect grants (authorization agreements).
    #[command(subcommand)]
    Grant(GrantCmd),
    /// Run and inspect jobs.
    #[command(subcommand)]
    Job(JobCmd),
    /// Inspect outputs held in quarantine.
    #[command(subcommand)]
    Output(OutputCmd),
    /// Check, apply and show the domain policy.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Register reviewers of the release gate.
    #[command(subcommand)]
    Reviewer(ReviewerCmd),
    /// Review quarantined outputs: the check report, lineage, votes.
    #[command(subcommand)]
    Review(ReviewCmd),
    /// Write an approved output to DIR as a signed bundle (Parquet, CSV, manifest).
    Export {
        /// Output id (`<job id>/<name>`).
        id: String,
        /// A new (or empty) directory for the bundle.
        #[arg(long)]
        to: PathBuf,
    },
    /// Check an export bundle offline: signature and every file's hash. Exits 4 on a mismatch.
    VerifyExport {
        /// The bundle directory.
        dir: PathBuf,
        /// The domain's public key (hex, or a file holding it); default: the bundle's own `public.key`.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Data quality feedback on datasets.
    #[command(subcommand)]
    Feedback(FeedbackCmd),
    /// Publish the public catalog.
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Usage and compliance reports from the evidence ledger.
    #[command(subcommand)]
    Report(ReportCmd),
    /// Read, prove and verify the evidence ledger.
    #[command(subcommand)]
    Ledger(LedgerCmd),
    /// Set up a temporary domain with the examples and run every example job.
    Demo {
        /// Rows per example dataset.
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// Keep the demo domain in this directory instead of a temporary one.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DatasetCmd {
    /// Register a CSV or Parquet file as a dataset.
    Add {
        /// Dataset name (lower-case letters, digits, `_`).
        name: String,
        /// The CSV (with a header row) or Parquet file.
        file: PathBuf,
        /// What the dataset holds.
        #[arg(long, default_value = "")]
        description: String,
        /// Catalog: the kind of data (e.g. registry, statistics).
        #[arg(long = "type", default_value = "")]
        kind: String,
        /// Catalog: the body the data comes from.
        #[arg(long, default_value = "")]
        source_org: String,
        /// Catalog: how often it is updated.
        #[arg(long, default_value = "")]
        update_frequency: String,
        /// Catalog: restrictions on its use.
        #[arg(long, default_value = "")]
        restrictions: String,
        /// Grade: general, important or core (core data can never be granted).
        #[arg(long, default_value = "general")]
        grade: String,
        /// Store the rows sorted by these columns (comma-separated, most
        /// significant first): queries filtering on them skip whole row groups.
        #[arg(long, value_delimiter = ',')]
        sort_by: Vec<String>,
    },
    /// An operator proposes its own (social) dataset; no job sees it until approved.
    Propose {
        /// The proposing operator.
        #[arg(long)]
        operator: String,
        /// Dataset name.
        name: String,
        /// The CSV or Parquet file.
        file: PathBuf,
        /// What the dataset holds.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Approve a proposed dataset: its operator's grants may then include it.
    Approve {
        /// Dataset name.
        name: String,
        /// Classify it at the same time with this policy file (it must have a
        /// `[datasets.NAME]` section); a bad file changes nothing.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// List datasets.
    List,
    /// Show one dataset and its schema.
    Show {
        /// Dataset name.
        name: String,
    },
}

#[derive(Subcommand)]
enum JobCmd {
    /// Run a job component under a grant and show its log and outputs.
    Run {
        /// The job's .wasm component.
        wasm: PathBuf,
        /// The submitting operator.
        #[arg(long, env = "INLAND_OPERATOR")]
        operator: String,
        /// The grant the job runs under.
        #[arg(long)]
        grant: String,
        /// A parameter for the job, as key=value (repeatable).
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// List jobs.
    List,
    /// Show one job's record.
    Show {
        /// Job id.
        id: String,
    },
}

#[derive(Subcommand)]
enum OperatorCmd {
    /// Register an operator (pending until approved).
    Add {
        /// Operator name (its identity).
        name: String,
        /// comprehensive, domain or scenario.
        #[arg(long = "type")]
        kind: String,
        /// A qualification statement (repeatable; pair each with --evidence).
        #[arg(long = "qualification")]
        statements: Vec<String>,
        /// The evidence document for the qualification at the same position.
        #[arg(long = "evidence")]
        evidence: Vec<PathBuf>,
    },
    /// Approve a pending or suspended operator.
    Approve {
        /// Operator name.
        name: String,
    },
    /// Suspend an operator: its jobs are refused.
    Suspend {
        /// Operator name.
        name: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// List operators.
    List,
    /// Show one operator.
    Show {
        /// Operator name.
        name: String,
    },
}

#[derive(Subcommand)]
enum GrantCmd {
    /// Issue a grant; refused when the term exceeds 5 years, a dataset is unknown, or the operator is not approved.
    Issue {
        /// The operator that will hold it.
        #[arg(long)]
        operator: String,
        /// Datasets, comma-separated.
        #[arg(long, value_delimiter = ',')]
        datasets: Vec<String>,
        /// The authorized purpose.
        #[arg(long)]
        purpose: String,
        /// The application scenario.
        #[arg(long)]
        scenario: String,
        /// First day in force (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Last day in force (YYYY-MM-DD).
        #[arg(long)]
        until: String,
        /// A product the agreement lists (repeatable).
        #[arg(long = "product")]
        products: Vec<String>,
    },
    /// List grants.
    List,
    /// Show one grant.
    Show {
        /// Grant id.
        id: String,
    },
    /// Terminate a grant: refuse and stop its jobs, destroy its key and files, record the destruction.
    Terminate {
        /// Grant id.
        id: String,
        /// expired, breach, incident, law or agreement.
        #[arg(long)]
        reason: String,
        /// What happened, for the record.
        #[arg(long)]
        note: String,
    },
    /// Replace the domain master key, re-wrapping every grant key under the new one.
    RotateMasterKey,
}

#[derive(Subcommand)]
enum ReviewerCmd {
    /// Register a reviewer. `--operator` names the operator they work for:
    /// they may not decide on its outputs.
    Add {
        /// Reviewer name.
        name: String,
        /// The operator the reviewer belongs to, if any.
        #[arg(long)]
        operator: Option<String>,
    },
    /// List reviewers.
    List,
}

#[derive(Subcommand)]
enum ReviewCmd {
    /// Outputs with a release request and their states.
    List,
    /// One output: content with flagged cells marked, check report, lineage, label, votes.
    Show {
        /// Output id.
        id: String,
    },
    /// Approve release. Overriding a failed cell check needs --justification.
    Approve {
        /// Output id.
        id: String,
        /// Who decides.
        #[arg(long)]
        reviewer: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// A cell check to override (min-cell-count, dominance, p-percent, differencing); repeatable.
        #[arg(long = "override")]
        overrides: Vec<String>,
        /// Written justification for the overrides (flagged in the record).
        #[arg(long)]
        justification: Option<String>,
    },
    /// Reject release.
    Reject {
        /// Output id.
        id: String,
        /// Who decides.
        #[arg(long)]
        reviewer: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Return the output to its operator for changes.
    Return {
        /// Output id.
        id: String,
        /// Who decides.
        #[arg(long)]
        reviewer: String,
        /// What to change.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum OutputCmd {
    /// List outputs in quarantine.
    List,
    /// Show an output's lineage and first rows (inside the domain only).
    Show {
        /// Output id (`<job id>/<name>`).
        id: String,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Check a policy file against the catalog; print every problem with its line and column.
    Check {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Apply a policy file; a file with any problem changes nothing.
    Apply {
        /// The policy file (TOML).
        file: PathBuf,
    },
    /// Show the applied versions and the policy in force.
    Show,
}

#[derive(Subcommand)]
enum FeedbackCmd {
    /// Report a data quality problem on a dataset.
    Add {
        /// The dataset.
        dataset: String,
        /// The reporting operator.
        #[arg(long)]
        operator: String,
        /// What is wrong.
        text: String,
    },
    /// List feedback (for admins).
    List,
}

#[derive(Subcommand)]
enum CatalogCmd {
    /// Write catalog.json and index.html describing the operable datasets (no data).
    Publish {
        /// Directory to write into.
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Subcommand)]
enum ReportCmd {
    /// Jobs run, datasets used, outputs and refusals over a period.
    Usage {
        /// Only this operator.
        #[arg(long)]
        operator: Option<String>,
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Last day (YYYY-MM-DD).
        #[arg(long)]
        until: String,
    },
    /// Each clause of the standard, its control, and the evidence for the period.
    Compliance {
        /// First day (YYYY-MM-DD); default: a year ago.
        #[arg(long)]
        from: Option<String>,
        /// Last day (YYYY-MM-DD); default: today.
        #[arg(long)]
        until: Option<String>,
    },
}

#[derive(Subcommand)]
enum LedgerCmd {
    /// Recompute every hash and checkpoint signature; exit 4 on tampering.
    Verify {
        /// The trusted public key (hex); default: the domain's own key.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print entries.
    Show {
        /// First entry to print.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Only entries about this job.
        #[arg(long)]
        job: Option<String>,
    },
    /// Sign a checkpoint now.
    Checkpoint,
    /// Inclusion proof of an entry in the current tree.
    Proof {
        /// Entry index.
        entry: u64,
    },
    /// Consistency proof between two tree sizes.
    Consistency {
        /// Older tree size.
        old: u64,
        /// Newer tree size.
        new: u64,
    },
    /// Export for audit systems: entries, checkpoint and public key (jsonl), or OpenLineage run events.
    Export {
        /// `jsonl` or `openlineage`.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Directory to write into.
        #[arg(long)]
        to: PathBuf,
    },
    /// Verify an export offline: only its files and a public key are used.
    VerifyExport {
        /// The export directory.
        dir: PathBuf,
        /// The trusted public key (hex); default: the export's own public.key.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Add a note to the record (for admins and auditors).
    Note {
        /// The note.
        text: String,
    },
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not key=value")),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("INLAND_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime(domain: &std::path::Path) -> Result<Runtime> {
    Runtime::open(domain).with_context(|| format!("opening the domain at {}", domain.display()))
}

fn tokio() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Init { dir, name } => {
            let dir = dir.unwrap_or(cli.domain);
            Domain::init(&dir, &name).with_context(|| format!("creating a domain at {}", dir.display()))?;
            println!("created domain `{name}` at {}", dir.display());
        }
        Command::Dataset(cmd) => {
            let rt = runtime(&cli.domain)?;
            match cmd {
                DatasetCmd::Add {
                    name,
                    file,
                    description,
                    kind,
                    source_org,
                    update_frequency,
                    restrictions,
                    grade,
                    sort_by,
                } => {
                    let meta = inland_runtime::DatasetMeta {
                        description,
                        catalog: inland_runtime::CatalogInfo {
                            kind,
                            source_org,
                            update_frequency,
                            usage_restrictions: restrictions,
                            grade: grade.parse()?,
                        },
                        sort_by,
                        ..Default::default()
                    };
                    let d = rt
                        .register_dataset_with(&name, &file, meta)
                        .with_context(|| format!("registering {} as `{name}`", file.display()))?;
                    println!(
                        "registered `{}`: {} rows, {} columns, sha256 {}",
                        d.name,
                        d.rows,
                        d.columns.len(),
                        d.sha256
                    );
                }
                DatasetCmd::Propose {
                    operator,
                    name,
                    file,
                    description,
                } => {
                    let d = rt.propose_dataset(&operator, &name, &file, &description)?;
                    println!(
                        "proposed `{}` ({} rows) for `{operator}`; pending an admin's approval",
                        d.name, d.rows
                    );
                }
                DatasetCmd::Approve {
                    name,
                    policy: Some(policy),
                } => match rt.approve_dataset_with_policy(&name, &policy)? {
                    Ok((d, v)) => println!(
                        "approved `{}` and applied {} as policy version {}; grants of `{}` may include it",
                        d.name,
                        policy.display(),
                        v.version,
                        d.owner.unwrap_or_default()
                    ),
                    Err(list) => {
                        for d in &list {
                            eprintln!("{d}");
                        }
                        anyhow::bail!("{} problem(s) in the policy; nothing was changed", list.len());
                    }
                },
                DatasetCmd::Approve { name, policy: None } => {
                    let d = rt.approve_dataset(&name)?;
                    println!(
                        "approved `{}`; grants of `{}` may include it",
                        d.name,
                        d.owner.unwrap_or_default()
                    );
                }
                DatasetCmd::List => {
                    for d in rt.datasets()? {
                        println!(
                            "{:<24} {:>10} rows  {:>3} columns  {}",
                            d.name,
                            d.rows,
                            d.columns.len(),
                            d.description
                        );
                    }
                }
                DatasetCmd::Show { name } => {
                    let d = rt.dataset(&name)?;
                    println!(
                        "name:        {}\ndescription: {}\nsource:      {} ({})\nrows:        {}\nsha256:      {}",
                        d.name, d.description, d.source, d.format, d.rows, d.sha256
                    );
                    if !d.sorted_by.is_empty() {
                        println!("sorted by:   {}", d.sorted_by.join(", "));
                    }
                    println!("columns:");
                    for c in &d.columns {
                        // Unique: every value once, none missing (an entity column
                        // like this lets suppression count rows).
                        println!(
                            "  {:<24} {}{}{}",
                            c.name,
                            c.data_type,
                            if c.nullable { " (nullable)" } else { "" },
                            if d.unique_columns.contains(&c.name) {
                                " (unique)"
                            } else {
                                ""
                            }
                        );
                    }
                }
            }
        }
        Command::Job(cmd) => {
            let rt = runtime(&cli.domain)?;
            match cmd {
                JobCmd::Run {
                    wasm,
                    operator,
                    grant,
                    params,
                } => {
                    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
                    let report = tokio()?.block_on(rt.run_job(JobRequest {
                        wasm: bytes,
                        params,
                        operator,
                        grant,
                    }))?;
                    let name = wasm
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    demo::print_report(&mut std::io::stdout(), &name, &rt, &report)?;
                    if report.job.status != JobStatus::Succeeded {
                        return Ok(ExitCode::from(3));
                    }
                }
                JobCmd::List => {
                    for j in rt.jobs()? {
                        let outcome = j
                            .error
                            .as_ref()
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| "succeeded".into());
                        println!(
                            "{}  {}  {:>2} outputs  {}",
                            j.id,
                            &j.module_sha256[..12],
                            j.outputs.len(),
                            outcome
                        );
                    }
                }
                JobCmd::Show { id } => {
                    let j = rt.job(&id)?;
                    println!("{}", serde_json::to_string_pretty(&j)?);
                }
            }
        }
        Command::Output(cmd) => {
            let rt = runtime(&cli.domain)?;
            match cmd {
                OutputCmd::List => {
                    for o in rt.outputs()? {
                        println!("{:<60} {:>8} rows  sha256 {}", o.id, o.rows, &o.sha256[..16]);
                    }
                }
                OutputCmd::Show { id } => {
                    let o = rt.output(&id)?;
                    println!("{}", serde_json::to_string_pretty(&o)?);
                    let batches = rt.output_table(&id)?;
                    let shown: Vec<_> = batches
                        .iter()
                        .map(|b| b.slice(0, b.num_rows().min(20)))
                        .take(1)
                        .collect();
                    println!("{}", arrow::util::pretty::pretty_format_batches(&shown)?);
                }
            }
        }
        Command::Ledger(cmd) => return ledger(&cli.domain, cmd),
        Command::Reviewer(cmd) => {
            let rt = runtime(&cli.domain)?;
            match cmd {
                ReviewerCmd::Add { name, operator } => {
                    let r = rt.add_reviewer(&name, operator.as_deref())?;
                    match r.operator {
                        Some(op) => println!("reviewer `{}` registered (works for `{op}`)", r.name),
                        None => println!("reviewer `{}` registered", r.name),
                    }
                }
                ReviewerCmd::List => {
                    for r in rt.reviewers()? {
                        println!("{:<24} {}", r.name, r.operator.unwrap_or_else(|| "-".into()));
                    }
                }
            }
        }
        Command::Review(cmd) => return review(&cli.domain, cmd),
        Command::Export { id, to } => {
            let rt = runtime(&cli.domain)?;
            let done = rt.export(&id, &to).with_context(|| format!("exporting `{id}`"))?;
            println!("exported `{}` to {}", done.output_id, to.display());
            for (name, sha) in &done.files {
                println!("  {name}  sha256 {sha}");
            }
            println!(
                "  manifest.json  sha256 {} (signed: manifest.sig)",
                done.manifest_sha256
            );
        }
        Command::VerifyExport { dir, public_key } => {
            let key = match public_key {
                Some(k) if std::path::Path::new(&k).is_file() => {
                    Some(std::fs::read_to_string(&k).with_context(|| format!("reading {k}"))?)
                }
                other => other,
            };
            let check = inland_runtime::verify_bundle(&dir, key.as_deref())
                .with_context(|| format!("checking the bundle in {}", dir.display()))?;
            match check.problem {
                None => {
                    println!(
                        "bundle OK: output `{}`, {} file(s) match the signed manifest",
                        check.output_id, check.files
                    );
                    if key.is_none() {
                        println!(
                            "(checked with the bundle's own public.key; pass --public-key to check who signed it)"
                        );
                    }
                }
                Some(p) => {
                    println!("bundle FAILED verification: {p}");
                    return Ok(ExitCode::from(4));
                }
            }
        }
        Command::Policy(cmd) => {
            let rt = runtime(&cli.domain)?;
            let problems = |list: Vec<inland_runtime::Diagnostic>| {
                for d in &list {
                    eprintln!("{d}");
                }
                anyhow::anyhow!("{} problem(s) in the policy; nothing was changed", list.len())
            };
            match cmd {
                PolicyCmd::Check { file } => match rt.check_policy(&file)? {
                    Ok(p) => println!("{}: valid; {} datasets", file.display(), p.datasets.len()),
                    Err(list) => return Err(problems(list)),
                },
                PolicyCmd::Apply { file } => match rt.apply_policy(&file)? {
                    Ok(v) => println!(
                        "applied {} as version {} (sha256 {})",
                        file.display(),
                        v.version,
                        v.sha256
                    ),
                    Err(list) => return Err(problems(list)),
                },
                PolicyCmd::Show => {
                    let (versions, text) = rt.policies()?;
                    for v in &versions {
                        println!("version {:<4} sha256 {}  {}", v.version, v.sha256, v.file);
                    }
                    match text {
                        Some(t) => println!("\n# in force:\n{t}"),
                        None => println!("no policy applied: jobs see every column of their grant's datasets"),
                    }
                }
            }
        }
        Command::Feedback(cmd) => {
            let rt = runtime(&cli.domain)?;
            match cmd {
                FeedbackCmd::Add {
                    dataset,
                    operator,
                    text,
                } => {
                    let fb = rt.add_feedback(&dataset, &operator, &text)?;
                    println!("recorded feedback {} on `{dataset}`", fb.id);
                }
                FeedbackCmd::List => {
                    for fb in rt.feedback()? {
                        println!("{}  {:<20} {:<20} {}", fb.id, fb.dataset, fb.operator, fb.text);
                    }
                }
            }
        }
        Command::Catalog(CatalogCmd::Publish { to }) => {
            let listed = runtime(&cli.domain)?.publish_catalog(&to)?;
            println!("published {} datasets to {}", listed.len(), to.display());
        }
        Command::Report(cmd) => {
            use inland_runtime::Date;
            let rt = runtime(&cli.domain)?;
            match cmd {
                ReportCmd::Usage { operator, from, until } => {
                    let r = rt.usage_report(operator.as_deref(), Date::parse(&from)?, Date::parse(&until)?)?;
                    println!("{}", serde_json::to_string_pretty(&r)?);
                }
                ReportCmd::Compliance { from, until } => {
                    let until = until.map(|u| Date::parse(&u)).transpose()?.unwrap_or_else(Date::today);
                    let from = from
                        .map(|f| Date::parse(&f))
                        .transpose()?
                        .unwrap_or_else(|| until.add_years(-1));
                    println!("Compliance report {from} to {until}\n");
                    for l in rt.compliance_report(from, until)? {
                        println!(
                            "{:<10} {}\n           control:  {}\n           evidence: {}\n",
                            l.clause, l.requirement, l.control, l.evidence
                        );
                    }
                }
            }
        }
        Command::Operator(cmd) => operator(&runtime(&cli.domain)?, cmd)?,
        Command::Grant(cmd) => grant(&runtime(&cli.domain)?, cmd)?,
        Command::Demo { rows, keep } => {
            let temp;
            let dir = match keep {
                Some(d) => d,
                None => {
                    temp = tempfile::tempdir().context("creating a temporary directory")?;
                    temp.path().join("domain")
                }
            };
            let options = demo::DemoOptions {
                rows,
                ..Default::default()
            };
            let summary = tokio()?.block_on(demo::run(&dir, &options, &mut std::io::stdout()))?;
            let ok = summary
                .jobs
                .iter()
                .filter(|(_, r)| r.job.status == JobStatus::Succeeded)
                .count();
            println!(
                "\n{} example jobs: {ok} succeeded, {} refused or stopped",
                summary.jobs.len(),
                summary.jobs.len() - ok
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn review(domain: &std::path::Path, cmd: ReviewCmd) -> Result<ExitCode> {
    let rt = runtime(domain)?;
    let vote = |id: &str, reviewer: String, decision, reason: String, overrides, justification| -> Result<()> {
        let o = rt.vote(
            id,
            inland_runtime::VoteRequest {
                reviewer,
                decision,
                reason,
                overrides,
                justification,
            },
        )?;
        let state = o.review.map(|r| r.state.to_string()).unwrap_or_default();
        println!("recorded; `{id}` is now {state}");
        Ok(())
    };
    match cmd {
        ReviewCmd::List => {
            for o in rt.review_queue()? {
                let r = o.review.as_ref();
                let findings = o
                    .gate
                    .as_ref()
                    .map(|g| g.findings().map(|c| c.check.clone()).collect::<Vec<_>>().join(","))
                    .unwrap_or_default();
                println!(
                    "{:<60} {:<19} {}/{} votes  label {:<11} {}",
                    o.id,
                    r.map(|r| r.state.to_string()).unwrap_or_default(),
                    r.map(|r| r.votes.len()).unwrap_or(0),
                    r.map(|r| r.required).unwrap_or(0),
                    o.label
                        .as_ref()
                        .map(|(l, _)| l.to_string())
                        .unwrap_or_else(|| "public".into()),
                    if findings.is_empty() {
                        "checks pass".to_string()
                    } else {
                        format!("findings: {findings}")
                    }
                );
            }
        }
        ReviewCmd::Show { id } => {
            let o = rt.output(&id)?;
            let table = rt.output_table(&id).unwrap_or_default();
            print!("{}", inland_runtime::review_view::render(&o, &table));
        }
        ReviewCmd::Approve {
            id,
            reviewer,
            reason,
            overrides,
            justification,
        } => vote(
            &id,
            reviewer,
            inland_runtime::Decision::Approve,
            reason,
            overrides,
            justification,
        )?,
        ReviewCmd::Reject { id, reviewer, reason } => {
            vote(&id, reviewer, inland_runtime::Decision::Reject, reason, vec![], None)?
        }
        ReviewCmd::Return { id, reviewer, reason } => {
            vote(&id, reviewer, inland_runtime::Decision::Return, reason, vec![], None)?
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ledger(domain: &std::path::Path, cmd: LedgerCmd) -> Result<ExitCode> {
    use inland_runtime::ledger;
    match cmd {
        LedgerCmd::Verify { public_key } => {
            // Verification reads the files directly, so it works on a ledger too damaged to open.
            let key = match public_key {
                Some(k) => hex::decode(k.trim()).context("--public-key is not hex")?,
                None => ledger::domain_public_key(domain)?,
            };
            let report = ledger::verify_dir(&domain.join("ledger"), &key)?;
            match report.problem {
                None => println!(
                    "ledger verified: {} entries, {} checkpoints",
                    report.entries, report.checkpoints
                ),
                Some(p) => {
                    println!("LEDGER TAMPERED: {p}");
                    return Ok(ExitCode::from(4));
                }
            }
        }
        LedgerCmd::VerifyExport { dir, public_key } => {
            let report = ledger::verify_export(&dir, public_key.as_deref())?;
            match report.problem {
                None => println!(
                    "export verified: {} entries match the signed checkpoint",
                    report.entries
                ),
                Some(p) => {
                    println!("EXPORT DOES NOT VERIFY: {p}");
                    return Ok(ExitCode::from(4));
                }
            }
        }
        other => {
            let rt = runtime(domain)?;
            let l = rt.ledger().context("this runtime has no ledger")?;
            match other {
                LedgerCmd::Show { since, job } => {
                    for e in l.entries()?.into_iter().skip(since as usize) {
                        let text = serde_json::to_string(&e)?;
                        if job
                            .as_ref()
                            .is_none_or(|j| text.contains(&format!("\"job_id\":\"{j}\"")))
                        {
                            println!("{text}");
                        }
                    }
                }
                LedgerCmd::Checkpoint => println!("{}", serde_json::to_string_pretty(&l.checkpoint()?)?),
                LedgerCmd::Proof { entry } => {
                    let p = l.inclusion_proof(entry, None)?;
                    let path: Vec<Vec<u8>> = p.path.iter().map(hex::decode).collect::<Result<_, _>>()?;
                    ledger::merkle::verify_inclusion(
                        p.index,
                        p.tree_size,
                        &hex::decode(&p.leaf_hash)?,
                        &path,
                        &hex::decode(&p.root)?,
                    )
                    .context("the proof the ledger produced does not verify")?;
                    println!("{}", serde_json::to_string_pretty(&p)?);
                }
                LedgerCmd::Consistency { old, new } => {
                    let p = l.consistency_proof(old, new)?;
                    let path: Vec<Vec<u8>> = p.path.iter().map(hex::decode).collect::<Result<_, _>>()?;
                    ledger::merkle::verify_consistency(
                        old,
                        new,
                        &path,
                        &hex::decode(&p.old_root)?,
                        &hex::decode(&p.new_root)?,
                    )
                    .context("the proof the ledger produced does not verify")?;
                    println!("{}", serde_json::to_string_pretty(&p)?);
                }
                LedgerCmd::Export { format, to } => match format.as_str() {
                    "jsonl" => {
                        let cp = l.export_jsonl(&to)?;
                        println!(
                            "exported {} entries with a signed checkpoint to {}",
                            cp.tree_size,
                            to.display()
                        );
                    }
                    "openlineage" => {
                        let name = rt.domain().config().name.clone();
                        let n = l.export_openlineage(&to, &format!("inland://{name}"))?;
                        println!("exported {n} OpenLineage run events to {}", to.display());
                    }
                    other => bail!("unknown export format `{other}`: use jsonl or openlineage"),
                },
                LedgerCmd::Note { text } => {
                    let seq = l.append(inland_runtime::Event::Note { text })?;
                    l.checkpoint()?;
                    println!("recorded as entry {seq}");
                }
                LedgerCmd::Verify { .. } | LedgerCmd::VerifyExport { .. } => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn operator(rt: &Runtime, cmd: OperatorCmd) -> Result<()> {
    use inland_runtime::{OperatorStatus, Qualification};
    match cmd {
        OperatorCmd::Add {
            name,
            kind,
            statements,
            evidence,
        } => {
            if statements.len() != evidence.len() {
                bail!(
                    "give one --evidence file for each --qualification ({} and {})",
                    statements.len(),
                    evidence.len()
                );
            }
            let mut quals = Vec::new();
            for (statement, file) in statements.into_iter().zip(evidence) {
                let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                use sha2::Digest;
                quals.push(Qualification {
                    statement,
                    evidence_sha256: hex::encode(sha2::Sha256::digest(&bytes)),
                });
            }
            let op = rt.add_operator(&name, kind.parse()?, quals)?;
            println!("registered operator `{}` ({:?}), pending approval", op.name, op.kind);
        }
        OperatorCmd::Approve { name } => {
            rt.set_operator_status(&name, OperatorStatus::Approved, None)?;
            println!("operator `{name}` approved");
        }
        OperatorCmd::Suspend { name, reason } => {
            rt.set_operator_status(&name, OperatorStatus::Suspended, Some(reason))?;
            println!("operator `{name}` suspended");
        }
        OperatorCmd::List => {
            for op in rt.operators()? {
                println!(
                    "{:<32} {:<14} {}",
                    op.name,
                    format!("{:?}", op.kind).to_lowercase(),
                    op.status.as_str()
                );
            }
        }
        OperatorCmd::Show { name } => println!("{}", serde_json::to_string_pretty(&rt.operator(&name)?)?),
    }
    Ok(())
}

fn grant(rt: &Runtime, cmd: GrantCmd) -> Result<()> {
    use inland_runtime::{Date, GrantRequest};
    match cmd {
        GrantCmd::Issue {
            operator,
            datasets,
            purpose,
            scenario,
            from,
            until,
            products,
        } => {
            let g = rt
                .issue_grant(GrantRequest {
                    operator,
                    datasets,
                    purpose,
                    scenario,
                    from: Date::parse(&from)?,
                    until: Date::parse(&until)?,
                    products,
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
            for g in rt.grants()? {
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
        GrantCmd::Show { id } => println!("{}", serde_json::to_string_pretty(&rt.grant(&id)?)?),
        GrantCmd::Terminate { id, reason, note } => {
            let record = tokio()?.block_on(rt.terminate_grant(&id, reason.parse()?, &note))?;
            println!(
                "grant {id} terminated; destruction record:\n{}",
                serde_json::to_string_pretty(&record)?
            );
        }
        GrantCmd::RotateMasterKey => {
            let n = rt.rotate_master_key()?;
            println!("master key rotated; {n} grant keys re-wrapped");
        }
    }
    Ok(())
}
