//! Issue #19: the `inland` binary as a client of a real server on a loopback
//! port. People act through the server as their token's holder; the
//! operator's terminal shows nothing a job read; without a server, the
//! commands that run jobs or decide on releases refuse.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use inland_runtime::{
    Date, Domain, DomainConfig, GrantRequest, IssuedToken, Limits, OperatorStatus, OperatorType, Role, Runtime,
};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

const ORG: &str = "org-a";

struct Fixture {
    dir: tempfile::TempDir,
    rt: Runtime,
    server: String,
    grant: String,
    operator: IssuedToken,
    reviewer: IssuedToken,
    auditor: IssuedToken,
    admin: IssuedToken,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(build)
}

fn build() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("domain");
    let sources = dir.path().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    let limits = Limits {
        timeout_secs: 5,
        memory_mib: 128,
        ..Limits::default()
    };
    Domain::init_with(
        &root,
        DomainConfig {
            name: "cli-test".into(),
            limits,
        },
    )
    .unwrap();
    let rt = Runtime::open(&root).unwrap();
    inland_examples::generate::write_examples(&sources, 3_000, 5).unwrap();
    for name in ["residents", "enterprises"] {
        rt.catalog()
            .register(name, &sources.join(format!("{name}.parquet")), name)
            .unwrap();
    }
    let policy = sources.join("policy.toml");
    std::fs::write(&policy, inland_examples::POLICY).unwrap();
    rt.policies().apply(&policy).unwrap().unwrap();
    let gov = rt.governance();
    gov.add_operator(ORG, OperatorType::Scenario, vec![]).unwrap();
    gov.set_operator_status(ORG, OperatorStatus::Approved, None).unwrap();
    let today = Date::today();
    let grant = gov
        .issue_grant(GrantRequest {
            operator: ORG.into(),
            datasets: vec!["residents".into()],
            purpose: "testing".into(),
            scenario: "tests".into(),
            from: today,
            until: today.add_years(1),
            products: vec![],
            quota: Default::default(),
            approved_components_only: false,
            privacy: Default::default(),
        })
        .unwrap()
        .id;
    rt.reviews().add_reviewer("chen", None).unwrap();
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 86_400_000;
    let access = rt.access();
    let operator = access.issue(Role::Operator, "li", Some(ORG), until).unwrap();
    let reviewer = access.issue(Role::Reviewer, "chen", None, until).unwrap();
    let auditor = access.issue(Role::Auditor, "regulator", None, until).unwrap();
    let admin = access.issue(Role::Admin, "root", None, until).unwrap();
    for job in ["district-stats", inland_examples::jobs::LEAK] {
        std::fs::write(
            dir.path().join(format!("{job}.wasm")),
            inland_examples::jobs::wasm(job).unwrap(),
        )
        .unwrap();
    }
    let server = inland_server::spawn_on_loopback(rt.clone()).unwrap();
    Fixture {
        dir,
        rt,
        server,
        grant,
        operator,
        reviewer,
        auditor,
        admin,
    }
}

/// Runs `inland ARGS` against the fixture's server as `token`'s holder
/// (or with no server at all), with a clean environment.
fn inland(token: Option<&IssuedToken>, server: bool, args: &[&str]) -> Output {
    let f = fixture();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_inland"));
    cmd.args(args)
        .current_dir(f.dir.path())
        .env_remove("INLAND_SERVER")
        .env_remove("INLAND_TOKEN")
        .env_remove("INLAND_CA_CERT")
        .env("INLAND_DOMAIN", f.dir.path().join("domain"));
    if server {
        cmd.env("INLAND_SERVER", &f.server);
    }
    if let Some(t) = token {
        cmd.env("INLAND_TOKEN", &t.secret);
    }
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn everything(o: &Output) -> String {
    format!("{}{}", stdout(o), String::from_utf8_lossy(&o.stderr))
}

fn wasm(job: &str) -> PathBuf {
    fixture().dir.path().join(format!("{job}.wasm"))
}

/// The job id in `job run`'s last line, `job <id> <state>…`.
fn job_id(o: &Output) -> String {
    let out = stdout(o);
    let line = out
        .lines()
        .find(|l| l.starts_with("job "))
        .unwrap_or_else(|| panic!("{}", everything(o)));
    line.split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn a_job_goes_from_the_operators_terminal_through_review_to_a_verified_bundle() {
    let f = fixture();
    let me = inland(Some(&f.operator), true, &["whoami"]);
    assert!(me.status.success(), "{}", everything(&me));
    assert!(stdout(&me).starts_with("li (operator of org-a)"), "{}", stdout(&me));

    std::fs::write(f.dir.path().join("src.tar.gz"), b"\x1f\x8b the job's sources").unwrap();
    let run = inland(
        Some(&f.operator),
        true,
        &[
            "job",
            "run",
            wasm("district-stats").to_str().unwrap(),
            "--grant",
            &f.grant,
            "--source",
            "src.tar.gz",
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{}", everything(&run));
    assert!(stdout(&run).contains("succeeded"), "{}", stdout(&run));
    let job = job_id(&run);
    let output =
        f.rt.reviews()
            .queue()
            .unwrap()
            .into_iter()
            .find(|o| o.job_id == job)
            .unwrap_or_else(|| panic!("no output of {job}"))
            .id;

    // The operator may not decide on its own output, nor read it before release.
    let vote = inland(
        Some(&f.operator),
        true,
        &["review", "approve", &output, "--reason", "mine"],
    );
    assert_eq!(vote.status.code(), Some(1));
    assert!(everything(&vote).contains("403"), "{}", everything(&vote));
    let early = inland(Some(&f.operator), true, &["export", &output, "--to", "early"]);
    assert_eq!(early.status.code(), Some(1), "{}", everything(&early));
    assert!(
        !f.dir.path().join("early").exists(),
        "a refused export wrote a directory"
    );

    // The reviewer reads the sources that came with the job.
    let source = inland(
        Some(&f.reviewer),
        true,
        &["job", "source", &job, "--to", "fetched.tar.gz"],
    );
    assert!(source.status.success(), "{}", everything(&source));
    assert_eq!(
        std::fs::read(f.dir.path().join("fetched.tar.gz")).unwrap(),
        b"\x1f\x8b the job's sources"
    );

    let rows = inland(Some(&f.reviewer), true, &["review", "rows", &output]);
    assert!(rows.status.success(), "{}", everything(&rows));
    assert!(stdout(&rows).starts_with("district\t"), "{}", stdout(&rows));
    assert!(stdout(&rows).lines().count() > 5, "{}", stdout(&rows));

    let queue = inland(Some(&f.reviewer), true, &["review", "list"]);
    assert!(stdout(&queue).contains(&output), "{}", everything(&queue));
    let approve = inland(
        Some(&f.reviewer),
        true,
        &["review", "approve", &output, "--reason", "district totals"],
    );
    assert!(approve.status.success(), "{}", everything(&approve));
    assert!(stdout(&approve).contains("approved"), "{}", stdout(&approve));

    let shown = inland(Some(&f.operator), true, &["job", "show", &job]);
    assert!(
        stdout(&shown).contains(&output),
        "released outputs are listed: {}",
        stdout(&shown)
    );
    let export = inland(Some(&f.operator), true, &["export", &output, "--to", "bundle"]);
    assert!(export.status.success(), "{}", everything(&export));
    let key = hex::encode(inland_runtime::ledger::domain_public_key(f.rt.domain().root()).unwrap());
    let check = inland_runtime::verify_bundle(&f.dir.path().join("bundle"), Some(&key)).unwrap();
    assert_eq!(check.problem, None);
    assert_eq!(check.output_id, output);

    let audit = inland(Some(&f.auditor), true, &["ledger", "export", "--to", "audit"]);
    assert!(audit.status.success(), "{}", everything(&audit));
    let offline = inland_runtime::ledger::verify_export(&f.dir.path().join("audit"), Some(&key)).unwrap();
    assert_eq!(offline.problem, None);
    assert!(offline.entries > 0);
}

/// A hostile job writes a value it read into its log, stdout, stderr, SQL
/// and error: the operator's terminal shows none of it, only that it failed.
#[test]
fn values_a_job_read_never_reach_the_operators_terminal() {
    let f = fixture();
    let sql = "SELECT CAST(sum(income) AS VARCHAR) AS v FROM residents";
    let param = format!("sql={sql}");
    let run = inland(
        Some(&f.operator),
        true,
        &[
            "job",
            "run",
            wasm(inland_examples::jobs::LEAK).to_str().unwrap(),
            "--grant",
            &f.grant,
            "--param",
            &param,
        ],
    );
    assert_eq!(run.status.code(), Some(3), "{}", everything(&run));
    let job = job_id(&run);
    let record = f.rt.jobs().get(&job).unwrap();
    let planted = record
        .log
        .iter()
        .find_map(|l| l.message.strip_prefix("planted in the log: "))
        .unwrap_or_else(|| panic!("the job read nothing: {:?}", record.log))
        .to_string();
    assert!(planted.chars().filter(char::is_ascii_digit).count() >= 4, "{planted}");
    for args in [vec!["job", "show", job.as_str()], vec!["job", "list"]] {
        let o = inland(Some(&f.operator), true, &args);
        assert!(o.status.success(), "{}", everything(&o));
        assert!(!everything(&o).contains(&planted), "{args:?} shows `{planted}`");
    }
    assert!(
        !everything(&run).contains(&planted),
        "`job run` shows `{planted}`: {}",
        everything(&run)
    );
}

#[test]
fn without_a_server_the_people_commands_refuse_and_change_nothing() {
    let f = fixture();
    // Other tests submit jobs to the same domain meanwhile: this one's job
    // is told apart by a parameter only it sends.
    let marker = "without-a-server";
    let submitted = || {
        f.rt.jobs()
            .list()
            .unwrap()
            .iter()
            .filter(|j| j.params.iter().any(|(k, _)| k == marker))
            .count()
    };
    for args in [
        vec![
            "job",
            "run",
            wasm("district-stats").to_str().unwrap(),
            "--grant",
            f.grant.as_str(),
            "--param",
            "without-a-server=1",
        ],
        vec!["review", "approve", "x/1", "--reason", "r"],
        vec!["output", "show", "x/1"],
        vec!["export", "x/1", "--to", "nowhere"],
    ] {
        let o = inland(Some(&f.operator), false, &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", everything(&o));
        assert!(everything(&o).contains("--server"), "{args:?}: {}", everything(&o));
    }
    assert_eq!(submitted(), 0, "no job was submitted");
    assert!(!Path::new(&f.dir.path().join("nowhere")).exists());
    // And with a server but no token, nothing is sent.
    let o = inland(None, true, &["job", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(everything(&o).contains("INLAND_TOKEN"), "{}", everything(&o));
}

/// An admin keeps the registry through the server while it runs; an
/// operator's token may not.
#[test]
fn an_admin_registers_an_operator_and_issues_it_a_grant_through_the_server() {
    let f = fixture();
    std::fs::write(f.dir.path().join("cert.pdf"), b"certificate").unwrap();
    let add = [
        "operator",
        "add",
        "org-cli",
        "--type",
        "scenario",
        "--qualification",
        "ISO 27001",
        "--evidence",
        "cert.pdf",
    ];
    let refused = inland(Some(&f.operator), true, &add);
    assert_eq!(refused.status.code(), Some(1));
    assert!(everything(&refused).contains("403"), "{}", everything(&refused));
    for args in [
        add.as_slice(),
        &["operator", "approve", "org-cli"],
        &["reviewer", "add", "rev-cli"],
    ] {
        let o = inland(Some(&f.admin), true, args);
        assert!(o.status.success(), "{args:?}: {}", everything(&o));
    }
    let today = Date::today();
    let (from, until) = (today.to_string(), today.add_years(1).to_string());
    let issue = inland(
        Some(&f.admin),
        true,
        &[
            "grant",
            "issue",
            "--operator",
            "org-cli",
            "--datasets",
            "residents",
            "--purpose",
            "p",
            "--scenario",
            "s",
            "--from",
            &from,
            "--until",
            &until,
        ],
    );
    assert!(issue.status.success(), "{}", everything(&issue));
    // A dp grant (#20), and its budget read back.
    let dp = inland(
        Some(&f.admin),
        true,
        &[
            "grant",
            "issue",
            "--operator",
            "org-cli",
            "--datasets",
            "residents",
            "--purpose",
            "p",
            "--scenario",
            "s",
            "--from",
            &from,
            "--until",
            &until,
            "--dp-budget-rho",
            "1.5",
            "--dp-query-rho",
            "0.1",
        ],
    );
    assert!(dp.status.success(), "{}", everything(&dp));
    let id = stdout(&dp).split_whitespace().nth(2).unwrap_or_default().to_string();
    let budget = inland(Some(&f.admin), true, &["grant", "budget", &id]);
    assert!(
        stdout(&budget).contains("dp, ρ 0.0 spent of 1.5"),
        "{}",
        everything(&budget)
    );
    let half = inland(
        Some(&f.admin),
        true,
        &[
            "grant",
            "issue",
            "--operator",
            "org-cli",
            "--datasets",
            "residents",
            "--purpose",
            "p",
            "--scenario",
            "s",
            "--from",
            &from,
            "--until",
            &until,
            "--dp-budget-rho",
            "1.5",
        ],
    );
    assert_eq!(
        half.status.code(),
        Some(2),
        "clap refuses half a budget: {}",
        everything(&half)
    );
    let listed = inland(Some(&f.admin), true, &["grant", "list"]);
    assert!(stdout(&listed).contains("org-cli"), "{}", everything(&listed));
    let ops = inland(Some(&f.admin), true, &["operator", "list"]);
    assert!(
        stdout(&ops).contains("org-cli") && stdout(&ops).contains("approved"),
        "{}",
        stdout(&ops)
    );
    // Host-only work says so.
    let rotate = inland(Some(&f.admin), true, &["grant", "rotate-master-key"]);
    assert_eq!(rotate.status.code(), Some(1));
    assert!(everything(&rotate).contains("domain host"), "{}", everything(&rotate));
}

/// #22: a SQL file runs as a job from the operator's terminal, and the same
/// file runs first under `inland dev` on dummy data made from the published
/// catalog, where a forbidden query is refused by the domain's rule.
#[test]
fn a_sql_job_runs_in_dev_on_dummy_data_and_then_in_the_domain() {
    let f = fixture();
    let sql = f.dir.path().join("report.sql");
    std::fs::write(
        &sql,
        "-- output: by_district\nSELECT district, count(*) AS n, avg(income) AS avg_income\n\
         FROM residents WHERE age >= $min_age GROUP BY district ORDER BY district\n",
    )
    .unwrap();
    let public = f.dir.path().join("public");
    // Published on the domain host (the server holds the domain here, so in-process).
    f.rt.evidence().publish_catalog(&public).unwrap();
    let tried = inland(
        None,
        false,
        &[
            "dev",
            "--catalog",
            public.to_str().unwrap(),
            "--sql",
            sql.to_str().unwrap(),
            "--param",
            "min_age=int:18",
            "--rows",
            "3000",
        ],
    );
    let said = everything(&tried);
    assert!(tried.status.success(), "{said}");
    assert!(
        said.contains("Succeeded") && said.contains("by_district") && said.contains("-- $min_age = int 18"),
        "{said}"
    );
    let forbidden = f.dir.path().join("forbidden.sql");
    std::fs::write(&forbidden, "-- output: incomes\nSELECT income FROM residents\n").unwrap();
    let refused = inland(
        None,
        false,
        &[
            "dev",
            "--catalog",
            public.to_str().unwrap(),
            "--sql",
            forbidden.to_str().unwrap(),
        ],
    );
    assert_eq!(refused.status.code(), Some(3), "{}", everything(&refused));
    assert!(
        everything(&refused).contains("refused by rule `aggregate-only`"),
        "{}",
        everything(&refused)
    );
    // The same file, unchanged, in the domain through the server.
    let ran = inland(
        Some(&f.operator),
        true,
        &[
            "job",
            "run",
            "--sql",
            sql.to_str().unwrap(),
            "--grant",
            &f.grant,
            "--param",
            "min_age=int:18",
        ],
    );
    assert!(ran.status.success(), "{}", everything(&ran));
}
