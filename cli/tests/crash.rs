//! Issue #24: the crash suite. Every mutating command — dataset add, policy
//! apply, operator and reviewer registration, token issue, grant issue and
//! terminate, master key rotation, and through the server job run, review
//! vote and export — is killed with SIGKILL at a random point. The domain is
//! then restarted by `inland doctor` (start-up reconciliation, ledger
//! verification, the state check), which must find nothing wrong, and every
//! operation a command reported done must be in the state and the ledger.
//!
//! `INLAND_CRASH_KILLS` sets how many kills (50 by default, as CI runs it;
//! `scripts/crash-suite.sh` runs 220) and `INLAND_CRASH_SEED` replays a run.
//! A random kill rarely lands in the few instructions between an event and
//! its state change, so the second test stops the process exactly there, at
//! each named crash point.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use inland_runtime::{
    Date, Domain, DomainConfig, Event, GrantRequest, GrantStatus, JobRequest, Limits, OperatorStatus, OperatorType,
    Role, Runtime, VoteRequest,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ORG: &str = "org-a";
const REVIEWERS: [&str; 2] = ["chen", "wang"];

/// A domain prepared for the suite, closed (the commands open it).
struct World {
    _dir: tempfile::TempDir,
    root: PathBuf,
    files: PathBuf,
    /// The grant jobs run under.
    grant: String,
    operator_token: String,
    reviewer_tokens: BTreeMap<String, String>,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("domain");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    Domain::init_with(
        &root,
        DomainConfig {
            name: "crash-test".into(),
            limits: Limits {
                timeout_secs: 20,
                memory_mib: 128,
                ..Limits::default()
            },
        },
    )
    .unwrap();
    let rt = Runtime::open(&root).unwrap();
    inland_examples::generate::write_examples(&files, 2_000, 7).unwrap();
    for name in ["residents", "enterprises"] {
        rt.catalog()
            .register(name, &files.join(format!("{name}.parquet")), name)
            .unwrap();
    }
    std::fs::write(files.join("policy.toml"), inland_examples::POLICY).unwrap();
    rt.policies().apply(&files.join("policy.toml")).unwrap().unwrap();
    std::fs::write(files.join("small.csv"), "district,n\n东城区,1\n西城区,2\n").unwrap();
    std::fs::write(
        files.join("district-stats.wasm"),
        inland_examples::jobs::wasm("district-stats").unwrap(),
    )
    .unwrap();
    let gov = rt.governance();
    gov.add_operator(ORG, OperatorType::Scenario, vec![]).unwrap();
    gov.set_operator_status(ORG, OperatorStatus::Approved, None).unwrap();
    let grant = issue_grant(&rt);
    let until = now_ms() + 86_400_000;
    let access = rt.access();
    let operator_token = access.issue(Role::Operator, "li", Some(ORG), until).unwrap().secret;
    let mut reviewer_tokens = BTreeMap::new();
    for name in REVIEWERS {
        rt.reviews().add_reviewer(name, None).unwrap();
        let t = access.issue(Role::Reviewer, name, None, until).unwrap();
        reviewer_tokens.insert(name.to_string(), t.secret);
    }
    World {
        _dir: dir,
        root,
        files,
        grant,
        operator_token,
        reviewer_tokens,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn issue_grant(rt: &Runtime) -> String {
    let today = Date::today();
    rt.governance()
        .issue_grant(GrantRequest {
            operator: ORG.into(),
            datasets: vec!["residents".into()],
            purpose: "statistics".into(),
            scenario: "crash tests".into(),
            from: today,
            until: today.add_years(1),
            products: vec![],
            quota: Default::default(),
            approved_components_only: false,
            privacy: Default::default(),
        })
        .unwrap()
        .id
}

/// The mutating commands, each run as its own process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    DatasetAdd,
    PolicyApply,
    OperatorAdd,
    ReviewerAdd,
    TokenIssue,
    GrantIssue,
    GrantTerminate,
    RotateKey,
    JobRun,
    Vote,
    Export,
}

const OPS: [Op; 11] = [
    Op::DatasetAdd,
    Op::PolicyApply,
    Op::OperatorAdd,
    Op::ReviewerAdd,
    Op::TokenIssue,
    Op::GrantIssue,
    Op::GrantTerminate,
    Op::RotateKey,
    Op::JobRun,
    Op::Vote,
    Op::Export,
];

impl Op {
    /// Whether it goes through `inland serve` (the server is what is killed).
    fn through_server(self) -> bool {
        matches!(self, Op::JobRun | Op::Vote | Op::Export)
    }
}

/// One operation to run: its arguments, its token, and what must hold if
/// the command reports it done.
struct Planned {
    args: Vec<String>,
    token: Option<String>,
    expect: Expect,
}

/// What an acknowledged operation left, to be found after every restart.
#[derive(Debug, Clone)]
enum Expect {
    Dataset(String),
    PolicyVersion,
    Operator(String),
    Reviewer(String),
    /// A token: its id comes from the command's output.
    Token,
    /// A grant: its id comes from the command's output.
    Grant,
    Terminated(String),
    Rotation,
    /// A job: its id comes from the command's output.
    Job,
    Vote {
        output: String,
        reviewer: String,
    },
    Export {
        output: String,
        dir: PathBuf,
    },
}

/// What acknowledged operations the suite has seen, to check after each restart.
#[derive(Default)]
struct Ledgered {
    done: Vec<Acked>,
    policies: usize,
    rotations: usize,
}

#[derive(Debug, Clone)]
enum Acked {
    Dataset(String),
    Operator(String),
    Reviewer(String),
    Token(String),
    Grant(String),
    Terminated(String),
    Job(String),
    Vote { output: String, reviewer: String },
    Export { output: String, dir: PathBuf },
}

/// A small deterministic generator (SplitMix64), seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn inland(w: &World, args: &[String]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inland"));
    cmd.args(args)
        .current_dir(&w.files)
        .env_remove("INLAND_SERVER")
        .env_remove("INLAND_TOKEN")
        .env_remove("INLAND_CA_CERT")
        .env_remove(inland_files::CRASH_AT)
        .env("INLAND_DOMAIN", &w.root)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `inland doctor` must find the domain whole.
fn doctor(w: &World, context: &str) {
    let out = inland(w, &["doctor".to_string()]).output().unwrap();
    assert!(
        out.status.success(),
        "after {context}, `inland doctor` found a difference:\n{}",
        text(&out)
    );
}

/// A running `inland serve` on a free loopback port.
struct Server {
    child: Child,
    url: String,
}

fn serve(w: &World, crash_at: Option<&str>) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = inland(w, &["serve".into(), "--listen".into(), format!("127.0.0.1:{port}")]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(point) = crash_at {
        cmd.env(inland_files::CRASH_AT, point);
    }
    let mut child = cmd.spawn().unwrap();
    // Wait until it listens (or fails to start).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("inland serve exited before listening: {status}");
        }
        assert!(Instant::now() < deadline, "inland serve did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// `inland grant issue` of a one-year grant over `residents` to the organization.
fn grant_issue_args() -> Vec<String> {
    let today = Date::today();
    [
        "grant",
        "issue",
        "--operator",
        ORG,
        "--datasets",
        "residents",
        "--purpose",
        "statistics",
        "--scenario",
        "crash tests",
        "--from",
        &today.to_string(),
        "--until",
        &today.add_years(1).to_string(),
    ]
    .iter()
    .map(|x| x.to_string())
    .collect()
}

/// Plans the next operation of kind `op`, preparing what it needs in the
/// domain (opened in this process, then closed).
fn plan(w: &World, rt: &Runtime, op: Op, i: usize) -> Planned {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match op {
        Op::DatasetAdd => {
            let name = format!("d{i}");
            Planned {
                args: s(&["dataset", "add", &name, "small.csv"]),
                token: None,
                expect: Expect::Dataset(name),
            }
        }
        Op::PolicyApply => Planned {
            args: s(&["policy", "apply", "policy.toml"]),
            token: None,
            expect: Expect::PolicyVersion,
        },
        Op::OperatorAdd => {
            let name = format!("op-{i}");
            Planned {
                args: s(&["operator", "add", &name, "--type", "scenario"]),
                token: None,
                expect: Expect::Operator(name),
            }
        }
        Op::ReviewerAdd => {
            let name = format!("rev-{i}");
            Planned {
                args: s(&["reviewer", "add", &name]),
                token: None,
                expect: Expect::Reviewer(name),
            }
        }
        Op::TokenIssue => Planned {
            args: s(&["token", "issue", "--role", "auditor", "--name", &format!("aud-{i}")]),
            token: None,
            expect: Expect::Token,
        },
        Op::GrantIssue => Planned {
            args: grant_issue_args(),
            token: None,
            expect: Expect::Grant,
        },
        Op::GrantTerminate => {
            let spare = rt
                .governance()
                .grants()
                .unwrap()
                .into_iter()
                .find(|g| g.id != w.grant && g.status == GrantStatus::Active)
                .map(|g| g.id)
                .unwrap_or_else(|| issue_grant(rt));
            Planned {
                args: s(&[
                    "grant",
                    "terminate",
                    &spare,
                    "--reason",
                    "agreement",
                    "--note",
                    "crash suite",
                ]),
                token: None,
                expect: Expect::Terminated(spare),
            }
        }
        Op::RotateKey => Planned {
            args: s(&["grant", "rotate-master-key"]),
            token: None,
            expect: Expect::Rotation,
        },
        Op::JobRun => Planned {
            args: s(&["job", "run", "district-stats.wasm", "--grant", &w.grant]),
            token: Some(w.operator_token.clone()),
            expect: Expect::Job,
        },
        Op::Vote => {
            let (output, reviewer) = open_review(rt, w);
            Planned {
                args: s(&["review", "approve", &output, "--reason", "checked"]),
                token: Some(w.reviewer_tokens[&reviewer].clone()),
                expect: Expect::Vote { output, reviewer },
            }
        }
        Op::Export => {
            let output = approved_output(rt, w);
            let dir = w.files.join(format!("bundle-{i}"));
            Planned {
                args: s(&["export", &output, "--to", dir.to_str().unwrap()]),
                token: Some(w.operator_token.clone()),
                expect: Expect::Export { output, dir },
            }
        }
    }
}

/// Runs a job in this process; returns its output's id.
fn run_job(rt: &Runtime, w: &World) -> String {
    let report = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(rt.jobs().run(JobRequest {
            wasm: inland_examples::jobs::wasm("district-stats").unwrap().to_vec(),
            params: vec![],
            operator: ORG.into(),
            grant: w.grant.clone(),
            source_sha256: None,
        }))
        .unwrap();
    report
        .outputs
        .first()
        .unwrap_or_else(|| panic!("district-stats made no output: {:?}", report.job.error))
        .id
        .clone()
}

/// An output awaiting a vote and a reviewer who has not cast one.
fn open_review(rt: &Runtime, w: &World) -> (String, String) {
    for o in rt.reviews().queue().unwrap() {
        let Some(review) = o.review.as_ref().filter(|r| r.state.open()) else {
            continue;
        };
        if let Some(r) = REVIEWERS
            .iter()
            .find(|r| !review.votes.iter().any(|v| v.reviewer == **r))
        {
            return (o.id, r.to_string());
        }
    }
    (run_job(rt, w), REVIEWERS[0].to_string())
}

/// An approved output that may be exported again.
fn approved_output(rt: &Runtime, w: &World) -> String {
    let ready = rt
        .reviews()
        .outputs()
        .unwrap()
        .into_iter()
        .find(|o| o.release.is_some() && !o.destroyed && o.exports.len() < 8 && o.grant == w.grant);
    if let Some(o) = ready {
        return o.id;
    }
    let id = run_job(rt, w);
    for r in REVIEWERS {
        let o = rt.reviews().output(&id).unwrap();
        if o.release.is_some() {
            break;
        }
        rt.reviews()
            .vote(
                &id,
                VoteRequest {
                    reviewer: r.into(),
                    decision: inland_runtime::Decision::Approve,
                    reason: "fine".into(),
                    overrides: vec![],
                    justification: None,
                },
            )
            .unwrap();
    }
    assert!(
        rt.reviews().output(&id).unwrap().release.is_some(),
        "{id} was not approved"
    );
    id
}

/// What the command's output says it did, when it reports success.
fn acknowledged(expect: &Expect, out: &Output) -> Option<Acked> {
    if !out.status.success() {
        return None;
    }
    let all = text(out);
    let word_after = |marker: &str| {
        all.split(marker)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(|w| {
                w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                    .to_string()
            })
    };
    Some(match expect {
        Expect::Dataset(n) => Acked::Dataset(n.clone()),
        Expect::Operator(n) => Acked::Operator(n.clone()),
        Expect::Reviewer(n) => Acked::Reviewer(n.clone()),
        Expect::Token => Acked::Token(word_after("token ")?),
        Expect::Grant => Acked::Grant(word_after("issued grant ")?),
        Expect::Terminated(g) => Acked::Terminated(g.clone()),
        Expect::Job => Acked::Job(word_after("job ")?),
        Expect::Vote { output, reviewer } => Acked::Vote {
            output: output.clone(),
            reviewer: reviewer.clone(),
        },
        Expect::Export { output, dir } => Acked::Export {
            output: output.clone(),
            dir: dir.clone(),
        },
        Expect::PolicyVersion | Expect::Rotation => return None,
    })
}

/// Every operation a command reported done is in the state and the ledger.
fn check_acknowledged(w: &World, rt: &Runtime, seen: &Ledgered, context: &str) {
    let entries = rt.evidence().ledger().unwrap().entries().unwrap();
    let rolled_back: std::collections::BTreeSet<u64> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::NotMade { entry, .. } => Some(*entry),
            _ => None,
        })
        .collect();
    let in_ledger = |f: &dyn Fn(&Event) -> bool| entries.iter().any(|e| !rolled_back.contains(&e.seq) && f(&e.event));
    for a in &seen.done {
        let found = match a {
            Acked::Dataset(n) => {
                rt.catalog().get(n).is_ok()
                    && in_ledger(&|e| matches!(e, Event::DatasetRegistered { name, .. } if name == n))
            }
            Acked::Operator(n) => {
                rt.governance().operator(n).is_ok()
                    && in_ledger(&|e| matches!(e, Event::OperatorRegistered { name, .. } if name == n))
            }
            Acked::Reviewer(n) => {
                rt.reviews().reviewers().unwrap().iter().any(|r| r.name == *n)
                    && in_ledger(&|e| matches!(e, Event::ReviewerAdded { name, .. } if name == n))
            }
            Acked::Token(id) => {
                rt.access().list().unwrap().iter().any(|t| t.id == *id)
                    && in_ledger(&|e| matches!(e, Event::TokenIssued { id: t, .. } if t == id))
            }
            Acked::Grant(id) => {
                rt.governance().grant(id).is_ok()
                    && in_ledger(&|e| matches!(e, Event::GrantIssued { grant, .. } if grant == id))
            }
            Acked::Terminated(id) => {
                rt.governance().grant(id).unwrap().status == GrantStatus::Terminated
                    && in_ledger(&|e| matches!(e, Event::GrantTerminated { grant, .. } if grant == id))
            }
            Acked::Job(id) => {
                rt.jobs().get(id).is_ok()
                    && in_ledger(&|e| matches!(e, Event::JobFinished { job_id, .. } if job_id == id))
            }
            Acked::Vote { output, reviewer } => {
                let o = rt.reviews().output(output).unwrap();
                (o.destroyed
                    || o.review
                        .as_ref()
                        .is_some_and(|r| r.votes.iter().any(|v| v.reviewer == *reviewer)))
                    && in_ledger(&|e| {
                        matches!(e, Event::ReviewVoted { output_id, reviewer: r, .. }
                            if output_id == output && r == reviewer)
                    })
            }
            Acked::Export { output, dir } => {
                let verified = inland(w, &["verify-export".into(), dir.display().to_string()])
                    .output()
                    .unwrap()
                    .status
                    .success();
                let manifest = std::fs::read(dir.join("manifest.json")).unwrap_or_default();
                let sha = inland_files::sha256_hex(&manifest);
                verified
                    && rt
                        .reviews()
                        .output(output)
                        .unwrap()
                        .exports
                        .iter()
                        .any(|x| x.manifest_sha256 == sha)
                    && in_ledger(&|e| {
                        matches!(e, Event::OutputExported { output_id, manifest_sha256, .. }
                            if output_id == output && *manifest_sha256 == sha)
                    })
            }
        };
        assert!(found, "after {context}, an acknowledged operation is missing: {a:?}");
    }
    let versions = rt.policies().versions().unwrap().0.len();
    assert!(
        versions > seen.policies,
        "after {context}: {versions} policy versions, {} acknowledged applications after the first",
        seen.policies
    );
    let rotations = entries
        .iter()
        .filter(|e| !rolled_back.contains(&e.seq) && matches!(e.event, Event::MasterKeyRotated { .. }))
        .count();
    assert!(
        rotations >= seen.rotations,
        "after {context}: {rotations} rotations in the ledger, {} acknowledged",
        seen.rotations
    );
}

/// Runs one planned operation, killing it (or the server it goes through)
/// after `delay`, or never; returns its output if it finished first.
fn run(w: &World, op: Op, planned: &Planned, delay: Option<Duration>) -> (Output, bool) {
    let server = op.through_server().then(|| serve(w, None));
    let mut cmd = inland(w, &planned.args);
    if let Some(s) = &server {
        cmd.env("INLAND_SERVER", &s.url);
    }
    if let Some(t) = &planned.token {
        cmd.env("INLAND_TOKEN", t);
    }
    let mut child = cmd.spawn().unwrap();
    let mut killed = false;
    if let Some(delay) = delay {
        std::thread::sleep(delay);
        match server {
            Some(mut s) => {
                if child.try_wait().unwrap().is_none() {
                    let _ = s.child.kill();
                    killed = true;
                }
                let _ = s.child.kill();
                s.child.wait().unwrap();
                return (child.wait_with_output().unwrap(), killed);
            }
            None => {
                if child.try_wait().unwrap().is_none() {
                    let _ = child.kill();
                    killed = true;
                }
            }
        }
    }
    let out = child.wait_with_output().unwrap();
    if let Some(mut s) = server {
        let _ = s.child.kill();
        s.child.wait().unwrap();
    }
    (out, killed)
}

#[test]
fn every_mutating_command_killed_at_random_leaves_a_whole_domain() {
    let kills: usize = std::env::var("INLAND_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("INLAND_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(now_ms);
    eprintln!("crash suite: {kills} kills, INLAND_CRASH_SEED={seed}");
    let w = world();
    let mut rng = Rng(seed);
    let mut seen = Ledgered::default();
    // How long each command takes when left alone: kills land within it.
    let mut took: BTreeMap<Op, Duration> = BTreeMap::new();
    let mut landed = 0;
    let mut i = 0;
    while landed < kills {
        let op = OPS[i % OPS.len()];
        let planned = {
            let rt = Runtime::open(&w.root).unwrap();
            plan(&w, &rt, op, i)
        };
        let delay = took
            .get(&op)
            .map(|d| Duration::from_micros(rng.below(d.as_micros() as u64 * 11 / 10 + 1)));
        let started = Instant::now();
        let (out, killed) = run(&w, op, &planned, delay);
        if delay.is_none() {
            // Calibration: this run must succeed on its own.
            assert!(out.status.success(), "{op:?} failed unkilled:\n{}", text(&out));
            took.insert(op, started.elapsed());
        }
        landed += usize::from(killed);
        match (&planned.expect, out.status.success()) {
            (Expect::PolicyVersion, true) => seen.policies += 1,
            (Expect::Rotation, true) => seen.rotations += 1,
            (expect, _) => seen.done.extend(acknowledged(expect, &out)),
        }
        let context = format!("{op:?} (run {i}, killed: {killed}, delay {delay:?}, seed {seed})");
        doctor(&w, &context);
        let rt = Runtime::open(&w.root).unwrap();
        check_acknowledged(&w, &rt, &seen, &context);
        i += 1;
    }
    eprintln!(
        "crash suite: {landed} kills over {i} runs; {} acknowledged operations all present",
        seen.done.len() + seen.policies + seen.rotations
    );
}

/// Stops `args` (through a server when `server`) at crash point `point`.
fn crash_at(w: &World, point: &str, args: &[String], token: Option<&str>, server: bool) -> Output {
    let s = server.then(|| serve(w, Some(point)));
    let mut cmd = inland(w, args);
    if let Some(s) = &s {
        cmd.env("INLAND_SERVER", &s.url);
    } else {
        cmd.env(inland_files::CRASH_AT, point);
    }
    if let Some(t) = token {
        cmd.env("INLAND_TOKEN", t);
    }
    let out = cmd.output().unwrap();
    if let Some(mut s) = s {
        // The request that reached the point stopped the server; wait for it.
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = s.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = s.child.kill();
                panic!("the server never reached {point}:\n{}", text(&out));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.code().is_none(), "the server did not stop at {point}: {status}");
    } else {
        assert!(
            out.status.code().is_none(),
            "the command did not stop at {point}:\n{}",
            text(&out)
        );
    }
    out
}

#[test]
fn a_stop_between_an_event_and_its_change_is_rolled_back_or_finished() {
    let w = world();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    // Event appended, catalog record not written: rolled back, the file gone.
    crash_at(
        &w,
        "announced",
        &s(&["dataset", "add", "cut", "small.csv"]),
        None,
        false,
    );
    doctor(&w, "a dataset cut after its event");
    let rt = Runtime::open(&w.root).unwrap();
    assert!(rt.catalog().get("cut").is_err());
    let entries = rt.evidence().ledger().unwrap().entries().unwrap();
    let announced = entries
        .iter()
        .find(|e| matches!(&e.event, Event::DatasetRegistered { name, .. } if name == "cut"))
        .expect("the event was appended before the stop")
        .seq;
    assert!(
        entries
            .iter()
            .any(|e| matches!(&e.event, Event::NotMade { entry, .. } if *entry == announced)),
        "the cut registration is rolled back in the ledger"
    );
    assert!(!w.root.join("datasets/cut.parquet").exists());
    drop(rt);
    // The name is free again, and the second time it works.
    let again = inland(&w, &s(&["dataset", "add", "cut", "small.csv"]))
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));

    // The file stored, no event yet: nothing in the ledger, the file deleted.
    crash_at(
        &w,
        "dataset-file-stored",
        &s(&["dataset", "add", "early", "small.csv"]),
        None,
        false,
    );
    doctor(&w, "a dataset file stored before its event");
    assert!(!w.root.join("datasets/early.parquet").exists());

    // A grant key created, no event: the key is destroyed at start.
    let grant_args = grant_issue_args();
    let grants_before = Runtime::open(&w.root).unwrap().governance().grants().unwrap().len();
    crash_at(&w, "grant-key-created", &grant_args, None, false);
    doctor(&w, "a grant key created before its event");
    let keys: Vec<String> = std::fs::read_dir(w.root.join("keys/grants"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str().map(String::from))
        .filter(|n| n.starts_with("g-"))
        .collect();
    let rt = Runtime::open(&w.root).unwrap();
    assert_eq!(rt.governance().grants().unwrap().len(), grants_before);
    assert_eq!(keys.len(), grants_before, "one key per grant: {keys:?}");

    // A termination stopped after the key was destroyed: finished at start.
    let victim = issue_grant(&rt);
    drop(rt);
    crash_at(
        &w,
        "grant-key-destroyed",
        &s(&["grant", "terminate", &victim, "--reason", "breach", "--note", "n"]),
        None,
        false,
    );
    doctor(&w, "a termination cut short");
    let rt = Runtime::open(&w.root).unwrap();
    assert_eq!(rt.governance().grant(&victim).unwrap().status, GrantStatus::Terminated);
    let entries = rt.evidence().ledger().unwrap().entries().unwrap();
    assert!(entries.iter().any(|e| matches!(&e.event,
        Event::GrantTerminated { grant, note, key_destroyed: false, .. }
            if *grant == victim && note.contains("finished at start-up"))));
    drop(rt);

    // A rotation announced and not committed: the old key stays, rolled back.
    crash_at(
        &w,
        "rotation-announced",
        &s(&["grant", "rotate-master-key"]),
        None,
        false,
    );
    doctor(&w, "a rotation stopped before its commit point");
    let rt = Runtime::open(&w.root).unwrap();
    let entries = rt.evidence().ledger().unwrap().entries().unwrap();
    let rotated = entries
        .iter()
        .find(|e| matches!(e.event, Event::MasterKeyRotated { .. }))
        .expect("announced")
        .seq;
    assert!(
        entries
            .iter()
            .any(|e| matches!(&e.event, Event::NotMade { entry, .. } if *entry == rotated))
    );
    // The grant keys still open under the master key in force.
    run_job(&rt, &w);

    // A rotation stopped while re-wrapping the grant keys, before it was
    // announced: undone, and every grant key still opens.
    drop(rt);
    crash_at(
        &w,
        "rotation-rewrapping",
        &s(&["grant", "rotate-master-key"]),
        None,
        false,
    );
    doctor(&w, "a rotation stopped while re-wrapping");
    let rt = Runtime::open(&w.root).unwrap();
    run_job(&rt, &w);

    // A revocation and a termination's mark announced and not stored: made
    // at start, never undone (a crash must not bring back what an admin
    // took away).
    let token = rt
        .access()
        .issue(Role::Auditor, "temp", None, now_ms() + 86_400_000)
        .unwrap()
        .record
        .id;
    let doomed = issue_grant(&rt);
    drop(rt);
    crash_at(&w, "announced", &s(&["token", "revoke", &token]), None, false);
    doctor(&w, "a revocation stopped after its event");
    crash_at(
        &w,
        "announced",
        &s(&["grant", "terminate", &doomed, "--reason", "breach", "--note", "n"]),
        None,
        false,
    );
    doctor(&w, "a termination stopped after its first event");
    let rt = Runtime::open(&w.root).unwrap();
    assert!(
        rt.access()
            .list()
            .unwrap()
            .iter()
            .any(|t| t.id == token && t.revoked_at_ms.is_some()),
        "the revocation was made at start-up"
    );
    assert_eq!(rt.governance().grant(&doomed).unwrap().status, GrantStatus::Terminated);
    let entries = rt.evidence().ledger().unwrap().entries().unwrap();
    assert!(entries.iter().any(|e| matches!(&e.event,
        Event::GrantTerminated { grant, key_destroyed: true, .. } if *grant == doomed)));
    drop(rt);

    // A job stopped right after its admission: recorded as interrupted.
    let job = s(&["job", "run", "district-stats.wasm", "--grant", &w.grant]);
    crash_at(&w, "job-admitted", &job, Some(&w.operator_token), true);
    doctor(&w, "a job stopped after its admission");
    let rt = Runtime::open(&w.root).unwrap();
    let entries = rt.evidence().ledger().unwrap().entries().unwrap();
    let admitted = entries
        .iter()
        .rev()
        .find_map(|e| match &e.event {
            Event::JobAdmitted { job_id, .. } => Some(job_id.clone()),
            _ => None,
        })
        .unwrap();
    let record = rt.jobs().get(&admitted).unwrap();
    assert!(
        format!("{:?}", record.error).contains("interrupted"),
        "{:?}",
        record.error
    );

    // An export recorded and its files not yet written: recorded, no bundle.
    let output = approved_output(&rt, &w);
    let exports_before = rt.reviews().output(&output).unwrap().exports.len();
    drop(rt);
    let bundle = w.files.join("bundle-cut");
    crash_at(
        &w,
        "export-recorded",
        &s(&["export", &output, "--to", bundle.to_str().unwrap()]),
        Some(&w.operator_token),
        true,
    );
    doctor(&w, "an export stopped before its files were written");
    let rt = Runtime::open(&w.root).unwrap();
    assert!(!bundle.join("manifest.json").exists());
    // Recorded all the same: an export is counted before its files exist.
    let exports_after = rt.reviews().output(&output).unwrap().exports.len();
    assert_eq!(exports_after, exports_before + 1);
}
