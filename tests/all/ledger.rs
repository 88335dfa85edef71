//! The evidence ledger: RFC 9162 proofs (against the published vectors),
//! tamper detection that names the entry, crash safety, offline export checks.

use base64::Engine as _;
use inland_runtime::EventLedger as Ledger;
use inland_runtime::ledger::{self, merkle};
use inland_runtime::{Event, JobStatus};
use std::path::{Path, PathBuf};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rfc9162-vectors")
}

fn b64(v: &serde_json::Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or(""))
        .unwrap_or_default()
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    crate::support::files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| dir.join(p))
        .collect()
}

#[test]
fn the_proof_verifier_agrees_with_every_rfc9162_vector() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in json_files(&vectors().join("inclusion")) {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let proof: Vec<Vec<u8>> = v["proof"]
            .as_array()
            .map(|a| a.iter().map(b64).collect())
            .unwrap_or_default();
        let got = merkle::verify_inclusion(
            v["leafIdx"].as_u64().unwrap(),
            v["treeSize"].as_u64().unwrap(),
            &b64(&v["leafHash"]),
            &proof,
            &b64(&v["root"]),
        );
        if got.is_err() != v["wantErr"].as_bool().unwrap() {
            wrong.push(format!("{}: {got:?}", file.display()));
        }
        checked += 1;
    }
    for file in json_files(&vectors().join("consistency")) {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let proof: Vec<Vec<u8>> = v["proof"]
            .as_array()
            .map(|a| a.iter().map(b64).collect())
            .unwrap_or_default();
        let got = merkle::verify_consistency(
            v["size1"].as_u64().unwrap(),
            v["size2"].as_u64().unwrap(),
            &proof,
            &b64(&v["root1"]),
            &b64(&v["root2"]),
        );
        if got.is_err() != v["wantErr"].as_bool().unwrap() {
            wrong.push(format!("{}: {got:?}", file.display()));
        }
        checked += 1;
    }
    assert!(checked >= 190, "only {checked} vectors found");
    assert!(
        wrong.is_empty(),
        "{} of {checked} vectors disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// A ledger with `n` notes and a checkpoint every 5 entries.
fn ledger_with(n: usize) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("ledger"), &dir.path().join("key")).unwrap();
    for i in 0..n {
        l.append(Event::Note {
            text: format!("note {i}"),
        })
        .unwrap();
        if i % 5 == 4 {
            l.checkpoint().unwrap();
        }
    }
    l.checkpoint().unwrap();
    (dir, l)
}

#[test]
fn proofs_the_ledger_produces_verify_and_match_its_checkpoints() {
    let (_dir, l) = ledger_with(37);
    let cps = l.checkpoints().unwrap();
    let last = cps.last().unwrap();
    for i in 0..37 {
        let p = l.inclusion_proof(i, None).unwrap();
        assert_eq!(p.root, last.root);
        let path: Vec<Vec<u8>> = p.path.iter().map(|h| hex::decode(h).unwrap()).collect();
        merkle::verify_inclusion(
            i,
            37,
            &hex::decode(&p.leaf_hash).unwrap(),
            &path,
            &hex::decode(&p.root).unwrap(),
        )
        .unwrap();
    }
    for old in &cps {
        if old.tree_size == 0 {
            continue;
        }
        let p = l.consistency_proof(old.tree_size, last.tree_size).unwrap();
        assert_eq!(p.old_root, old.root);
        let path: Vec<Vec<u8>> = p.path.iter().map(|h| hex::decode(h).unwrap()).collect();
        merkle::verify_consistency(
            old.tree_size,
            37,
            &path,
            &hex::decode(&old.root).unwrap(),
            &hex::decode(&last.root).unwrap(),
        )
        .unwrap();
    }
    assert!(cps.iter().all(|c| c.verify_signature(&l.public_key())));
}

fn entries_file(dir: &Path) -> PathBuf {
    dir.join("ledger").join("entries.log")
}

fn verify(dir: &Path, key: &[u8]) -> Option<String> {
    ledger::verify_dir(&dir.join("ledger"), key).unwrap().problem
}

/// Byte offsets of each record in the entries file.
fn record_offsets(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        out.push((off, len + 36));
        off += len + 36;
    }
    out
}

#[test]
fn flipping_any_byte_is_detected_and_located() {
    let (dir, l) = ledger_with(12);
    let key = l.public_key();
    drop(l);
    let path = entries_file(dir.path());
    let original = std::fs::read(&path).unwrap();
    let offsets = record_offsets(&original);
    assert_eq!(verify(dir.path(), &key), None);
    for i in 0..original.len() {
        let mut bytes = original.clone();
        bytes[i] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let problem = verify(dir.path(), &key).unwrap_or_else(|| panic!("flip at byte {i} not detected"));
        let entry = offsets.iter().position(|(o, n)| i >= *o && i < o + n).unwrap();
        assert!(
            problem.contains(&format!("entry {entry}")),
            "byte {i} (entry {entry}): {problem}"
        );
    }
    std::fs::write(&path, &original).unwrap();
}

#[test]
fn truncating_deleting_reordering_or_inserting_entries_is_detected_and_located() {
    let (dir, l) = ledger_with(12);
    let key = l.public_key();
    drop(l);
    let path = entries_file(dir.path());
    let original = std::fs::read(&path).unwrap();
    let recs: Vec<&[u8]> = record_offsets(&original)
        .iter()
        .map(|(o, n)| &original[*o..o + n])
        .collect();
    let join = |parts: Vec<&[u8]>| parts.concat();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated mid-entry",
            original[..original.len() - 10].to_vec(),
            "entry 11",
        ),
        ("last entry removed", join(recs[..11].to_vec()), "entries from 11"),
        ("entry 4 removed", join([&recs[..4], &recs[5..]].concat()), "entry 4"),
        (
            "entries 6 and 7 swapped",
            join([&recs[..6], &[recs[7], recs[6]][..], &recs[8..]].concat()),
            "entry 6",
        ),
        (
            "entry 3 inserted again",
            join([&recs[..9], &[recs[3]][..], &recs[9..]].concat()),
            "entry 9",
        ),
    ];
    for (what, bytes, expect) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let problem = verify(dir.path(), &key).unwrap_or_else(|| panic!("{what}: not detected"));
        assert!(problem.contains(expect), "{what}: {problem}");
    }
}

#[test]
fn a_forger_who_rewrites_an_entry_and_its_hash_is_caught_by_the_signed_checkpoints() {
    let (dir, l) = ledger_with(12);
    let key = l.public_key();
    drop(l);
    let path = entries_file(dir.path());
    let original = std::fs::read(&path).unwrap();
    let offs = record_offsets(&original);
    let (o, n) = offs[7];
    let entry = String::from_utf8(original[o + 4..o + n - 32].to_vec()).unwrap();
    let forged = entry.replace("note 7", "note X").into_bytes();
    let mut bytes = original[..o].to_vec();
    bytes.extend((forged.len() as u32).to_le_bytes());
    bytes.extend(&forged);
    bytes.extend(merkle::leaf_hash(&forged));
    bytes.extend(&original[o + n..]);
    std::fs::write(&path, &bytes).unwrap();
    let problem = verify(dir.path(), &key).unwrap();
    assert!(
        problem.contains("checkpoint") && problem.contains("between 5 and 9"),
        "{problem}"
    );
    // And with another key, no checkpoint verifies at all.
    let (other_dir, other) = ledger_with(1);
    std::fs::write(&path, &original).unwrap();
    let problem = verify(dir.path(), &other.public_key()).unwrap();
    assert!(problem.contains("bad signature"), "{problem}");
    drop(other_dir);
}

#[test]
fn the_writer_is_killed_at_random_moments_and_no_acknowledged_event_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let key = dir.path().join("key");
    let mut seed: u64 = 0x1234_5678;
    let mut acked_total = 0;
    for round in 0..100 {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ledger-stress"))
            .args([ledger_dir.to_str().unwrap(), key.to_str().unwrap(), "4"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let wait_ms = 5 + (seed >> 33) % 60;
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let acked: Vec<(u64, String)> = text
            .lines()
            .filter(|l| l.ends_with(|c: char| c.is_ascii_digit()))
            .filter_map(|l| {
                let mut parts = l.split(' ');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some("acked"), Some(seq), Some(t)) => Some((seq.parse().ok()?, t.to_string())),
                    _ => None,
                }
            })
            .collect();
        acked_total += acked.len();
        // Opening repairs a torn tail (and records that); then everything verifies.
        let l = Ledger::open(&ledger_dir, &key).unwrap();
        let report = l.verify().unwrap();
        assert_eq!(report.problem, None, "round {round}");
        let entries = l.entries().unwrap();
        for (seq, text) in &acked {
            match &entries.get(*seq as usize).map(|e| &e.event) {
                Some(Event::Note { text: t }) => assert_eq!(t, text, "round {round}, entry {seq}"),
                other => panic!("round {round}: acknowledged entry {seq} is {other:?}"),
            }
        }
    }
    assert!(acked_total > 100, "the writer acknowledged only {acked_total} events");
}

#[test]
fn an_export_verifies_offline_and_fails_when_altered_or_under_another_key() {
    let (dir, l) = ledger_with(20);
    let out = dir.path().join("export");
    let cp = l.export_jsonl(&out).unwrap();
    assert_eq!(cp.tree_size, 20);
    let key_hex = hex::encode(l.public_key());
    let ok = ledger::verify_export(&out, Some(&key_hex)).unwrap();
    assert_eq!(ok.problem, None);
    assert_eq!(ok.entries, 20);

    let entries = out.join("entries.jsonl");
    let original = std::fs::read(&entries).unwrap();
    let mut bytes = original.clone();
    let pos = bytes.len() / 2;
    bytes[pos] = if bytes[pos] == b'1' { b'2' } else { b'1' };
    std::fs::write(&entries, &bytes).unwrap();
    assert!(ledger::verify_export(&out, Some(&key_hex)).unwrap().problem.is_some());
    std::fs::write(&entries, &original).unwrap();

    let (_d2, other) = ledger_with(1);
    let problem = ledger::verify_export(&out, Some(&hex::encode(other.public_key())))
        .unwrap()
        .problem
        .unwrap();
    assert!(problem.contains("signature"), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_recorded_checkpointed_and_exported_as_openlineage() {
    let d = crate::support::new_domain(crate::support::test_limits());
    let report = crate::support::run(&d, "district-stats", &[]).await;
    assert_eq!(report.job.status, JobStatus::Succeeded);
    let l = d.rt.evidence().ledger().unwrap();
    let cps = l.checkpoints().unwrap();
    assert_eq!(
        cps.last().unwrap().tree_size,
        l.len(),
        "a checkpoint is signed at the end of every job"
    );
    assert_eq!(l.verify().unwrap().problem, None);
    let out = d.root.join("lineage");
    let n = l.export_openlineage(&out, "inland://test").unwrap();
    assert_eq!(n, 2);
    let text = std::fs::read_to_string(out.join("openlineage.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events[0]["eventType"], "START");
    assert_eq!(events[1]["eventType"], "COMPLETE");
    assert_eq!(events[1]["run"]["runId"], report.job.id.as_str());
    let inputs: Vec<&str> = events[1]["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(inputs, ["enterprises", "residents"]);
    assert_eq!(events[1]["outputs"][0]["name"], report.outputs[0].id.as_str());
}

#[test]
fn a_torn_final_record_is_cut_on_open_and_the_repair_is_recorded() {
    let (dir, l) = ledger_with(6);
    drop(l);
    let path = entries_file(dir.path());
    let whole = std::fs::read(&path).unwrap();
    // A crash in the middle of writing a seventh record, and of a checkpoint line.
    let mut torn = whole.clone();
    torn.extend_from_slice(&200u32.to_le_bytes());
    let fragment = b"{\"seq\":6,\"at_ms\":1,\"type\":\"no";
    torn.extend_from_slice(fragment);
    let cut = (4 + fragment.len()) as u64;
    std::fs::write(&path, &torn).unwrap();
    let cps = dir.path().join("ledger").join("checkpoints.jsonl");
    let mut cp_bytes = std::fs::read(&cps).unwrap();
    cp_bytes.extend_from_slice(b"{\"tree_size\":7,\"ro");
    std::fs::write(&cps, &cp_bytes).unwrap();

    let l = Ledger::open(&dir.path().join("ledger"), &dir.path().join("key")).unwrap();
    let entries = l.entries().unwrap();
    assert_eq!(entries.len(), 7);
    assert!(
        matches!(entries[6].event, Event::LedgerRepaired { at_entry: 6, cut_bytes } if cut_bytes == cut),
        "{:?}",
        entries[6]
    );
    assert_eq!(l.verify().unwrap().problem, None);
    assert_eq!(&std::fs::read(&path).unwrap()[..whole.len()], &whole[..]);
}

/// Issue #18: a domain just created has a ledger that verifies (empty, with
/// its signing key), so `inland ledger verify` works before anything happened.
#[test]
fn a_new_domains_ledger_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("domain");
    inland_runtime::Domain::init(&root, "fresh").unwrap();
    let key = ledger::domain_public_key(&root).unwrap();
    let report = ledger::verify_dir(&root.join("ledger"), &key).unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(report.entries, 0);
}

/// The state check (#24): after ordinary work the state and the ledger
/// agree; an event whose state change never happened (a crash between the
/// two: a job admitted and never recorded, a privacy charge never stored) is
/// reported by id, and the compliance report says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_check_finds_evidence_without_its_record() {
    let d = crate::support::new_domain(crate::support::test_limits());
    let r = crate::support::run(&d, "noop", &[]).await;
    assert_eq!(r.job.status, inland_runtime::JobStatus::Succeeded);
    let check = d.rt.evidence().check_state().unwrap();
    assert!(check.clean(), "{:#?}", check.differences);
    assert_eq!(check.checked["jobs"], 1);
    assert_eq!(check.checked["grants"], 1);
    assert_eq!(check.checked["datasets"], 2);

    let ledger = d.rt.evidence().ledger().unwrap();
    ledger
        .append(inland_runtime::Event::JobAdmitted {
            job_id: "job-lost-in-a-crash".into(),
            operator: d.operator.clone(),
            grant: d.grant.clone(),
            module_sha256: "00".repeat(32),
            params: vec![],
            datasets: vec![],
            source_sha256: None,
        })
        .unwrap();
    ledger
        .append(inland_runtime::Event::PrivacyCharged {
            job_id: "job-lost-in-a-crash".into(),
            grant: d.grant.clone(),
            rho: 0.25,
            datasets: vec!["residents".into()],
            spent_rho: 0.25,
            delta: 0.0,
        })
        .unwrap();
    // An announced change the state never got (a crash between the two).
    ledger
        .append(inland_runtime::Event::DatasetRegistered {
            name: "ghost".into(),
            sha256: "00".repeat(32),
            rows: 1,
        })
        .unwrap();
    let check = d.rt.evidence().check_state().unwrap();
    let found: Vec<(String, String)> = check
        .differences
        .iter()
        .map(|x| (x.kind.clone(), x.id.clone()))
        .collect();
    assert_eq!(
        found,
        [
            ("dataset".to_string(), "ghost".to_string()),
            ("job".to_string(), "job-lost-in-a-crash".to_string()),
            ("privacy".to_string(), d.grant.clone()),
        ],
        "{:#?}",
        check.differences
    );
    assert!(check.differences[0].problem.contains("not in the state"));
    assert!(check.differences[1].problem.contains("never recorded"));
    let today = inland_runtime::Date::today();
    let compliance = d.rt.evidence().compliance_report(today, today).unwrap();
    let last = compliance.last().unwrap();
    assert!(last.evidence.contains("3 difference(s)"), "{last:?}");
}

/// Start-up reconciliation (#24): a job the ledger admitted that never
/// finished and has no record (the domain was killed while it ran) is
/// recorded as interrupted on the next start, in the state and the ledger,
/// and the state check is clean again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cut_short_by_a_stop_is_recorded_as_interrupted_on_the_next_start() {
    let d = crate::support::new_domain(crate::support::test_limits());
    d.rt.evidence()
        .ledger()
        .unwrap()
        .append(Event::JobAdmitted {
            job_id: "job-killed-while-running".into(),
            operator: d.operator.clone(),
            grant: d.grant.clone(),
            module_sha256: "ab".repeat(32),
            params: vec![("sql".into(), "SELECT 1".into())],
            datasets: vec!["residents".into()],
            source_sha256: None,
        })
        .unwrap();
    assert!(!d.rt.evidence().check_state().unwrap().clean());
    let root = d.root.clone();
    drop(d.rt);
    let rt = inland_runtime::Runtime::open(&root).unwrap();
    let record = rt.jobs().get("job-killed-while-running").unwrap();
    assert_eq!(record.status, JobStatus::Failed);
    assert!(
        format!("{:?}", record.error).contains("interrupted"),
        "{:?}",
        record.error
    );
    assert_eq!(record.params, vec![("sql".to_string(), "SELECT 1".to_string())]);
    let check = rt.evidence().check_state().unwrap();
    assert!(check.clean(), "{:#?}", check.differences);
    // Once recorded, a second start changes nothing.
    let entries = rt.evidence().ledger().unwrap().len();
    drop(rt);
    let rt = inland_runtime::Runtime::open(&root).unwrap();
    assert_eq!(rt.evidence().ledger().unwrap().len(), entries);
}

/// #24: a domain from before the ordering rule registered a dataset first
/// and appended its event second, and a crash tore that event. On the next
/// open the cut is recorded, the registration is re-announced from the
/// catalog (and marked `reappended`), and the state check is clean.
#[test]
fn a_registration_whose_event_a_torn_tail_lost_is_reappended_from_the_state() {
    let d = crate::support::new_domain(crate::support::test_limits());
    let csv = d.sources.join("lost.csv");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    d.rt.catalog().register("lost", &csv, "a table").unwrap();
    let root = d.root.clone();
    drop(d.rt);
    // Tear the last record, the registration's event, in half.
    let path = entries_file(&root);
    let bytes = std::fs::read(&path).unwrap();
    let (off, n) = *record_offsets(&bytes).last().unwrap();
    std::fs::write(&path, &bytes[..off + n / 2]).unwrap();

    let rt = inland_runtime::Runtime::open(&root).unwrap();
    let entries = rt.evidence().ledger().unwrap().entries().unwrap();
    assert!(entries.iter().any(|e| matches!(e.event, Event::LedgerRepaired { .. })));
    let again = entries
        .iter()
        .find(|e| matches!(&e.event, Event::DatasetRegistered { name, .. } if name == "lost"))
        .expect("re-announced from the catalog");
    assert!(
        entries
            .iter()
            .any(|e| matches!(e.event, Event::Reappended { entry } if entry == again.seq)),
        "and marked as re-announced"
    );
    assert_eq!(rt.evidence().start_up_recovery().reappended, [again.seq]);
    let check = rt.evidence().check_state().unwrap();
    assert!(check.clean(), "{:#?}", check.differences);
}
