//! `inland ledger`: read, prove, verify and export the evidence ledger.

use super::open;
use crate::args::{LedgerCmd, LedgerFormat};
use crate::exit;
use crate::render::print_json;
use anyhow::{Context, Result};
use inland_runtime::ledger::{domain_public_key, merkle, verify_dir, verify_export};
use inland_runtime::{Event, EventLedger, Runtime};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs one ledger subcommand; the verifications exit 4 on tampering.
pub fn run(domain: &Path, cmd: LedgerCmd) -> Result<ExitCode> {
    match cmd {
        LedgerCmd::Verify { public_key } => return verify(domain, public_key.as_deref()),
        LedgerCmd::VerifyExport { dir, public_key } => return verify_offline(&dir, public_key.as_deref()),
        LedgerCmd::Show { since, job } => show(&open_ledger(domain)?.1, since, job.as_deref())?,
        LedgerCmd::Checkpoint => print_json(&open_ledger(domain)?.1.checkpoint()?)?,
        LedgerCmd::Proof { entry } => inclusion(&open_ledger(domain)?.1, entry)?,
        LedgerCmd::Consistency { old, new } => consistency(&open_ledger(domain)?.1, old, new)?,
        LedgerCmd::Export { format, to } => {
            let (rt, ledger) = open_ledger(domain)?;
            export(&rt, &ledger, format, &to)?;
        }
        LedgerCmd::CheckState => return check_state(&open(domain)?),
        LedgerCmd::Note { text } => {
            let ledger = open_ledger(domain)?.1;
            let seq = ledger.append(Event::Note { text })?;
            ledger.checkpoint()?;
            println!("recorded as entry {seq}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `inland ledger export` through the server (auditors, admins): the signed
/// export, written to `to` and verified against its own key before it is
/// reported. The other ledger commands work on the directory (recovery).
pub fn run_remote(client: &crate::client::Client, cmd: LedgerCmd) -> Result<ExitCode> {
    match cmd {
        LedgerCmd::Export {
            format: LedgerFormat::Jsonl,
            to,
        } => {
            let export = client.get(&["api", "ledger", "signed-export"], &[])?;
            let mut files = Vec::new();
            for f in export["files"].as_array().into_iter().flatten() {
                let name = crate::client::text(f, "name");
                if ![
                    inland_runtime::ledger::EXPORT_ENTRIES,
                    inland_runtime::ledger::EXPORT_CHECKPOINT,
                    inland_runtime::ledger::EXPORT_PUBLIC_KEY,
                ]
                .contains(&name)
                {
                    anyhow::bail!("the server sent an export file named `{name}`; nothing was written");
                }
                files.push((name.to_string(), crate::client::text(f, "content").to_string()));
            }
            std::fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
            for (name, content) in &files {
                inland_files::write_atomic(&to.join(name), content.as_bytes())?;
            }
            let report = verify_export(&to, None)?;
            if let Some(p) = report.problem {
                println!("the downloaded export does NOT verify: {p}");
                return Ok(ExitCode::from(exit::TAMPERED));
            }
            println!(
                "exported {} entries with a signed checkpoint to {} (verified with its public.key)",
                report.tree_size,
                to.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        LedgerCmd::VerifyExport { dir, public_key } => verify_offline(&dir, public_key.as_deref()),
        _ => anyhow::bail!(
            "this ledger command reads the domain directory on the domain host; through the server, \
             auditors use `inland ledger export --to DIR` and verify it offline"
        ),
    }
}

/// Opens the domain and its ledger.
fn open_ledger(domain: &Path) -> Result<(Runtime, Arc<EventLedger>)> {
    let rt = open(domain)?;
    let ledger = rt.evidence().ledger().context("this runtime has no ledger")?;
    Ok((rt, ledger))
}

/// Recomputes every hash and checkpoint signature of the domain's ledger
/// against `public_key` (hex) or the domain's own key.
/// `inland doctor`: opening the domain runs its start-up reconciliation;
/// then the ledger is verified and the state compared with it.
pub fn doctor(domain: &Path) -> Result<ExitCode> {
    let rt = open(domain)?;
    let repaired = rt.evidence().start_up_recovery();
    if repaired.is_empty() {
        println!("start-up found nothing half done");
    } else {
        let entries = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        if !repaired.rolled_back.is_empty() {
            println!(
                "start-up rolled back the changes of entries {} (the domain stopped before they were made)",
                entries(&repaired.rolled_back)
            );
        }
        if !repaired.finished.is_empty() {
            println!(
                "start-up made the restrictions of entries {} (announced before a stop)",
                entries(&repaired.finished)
            );
        }
        for job in &repaired.interrupted {
            println!("start-up recorded job {job} as interrupted and destroyed its outputs");
        }
        for grant in &repaired.terminations {
            println!("start-up finished the termination of grant {grant}");
        }
        if !repaired.reappended.is_empty() {
            println!(
                "start-up re-announced from the state, as entries {}, changes whose events a torn ledger tail lost",
                entries(&repaired.reappended)
            );
        }
        for file in &repaired.orphans {
            println!("start-up deleted {file}, written ahead of an event that never came");
        }
    }
    let verified = verify(domain, None)?;
    let checked = check_state(&rt)?;
    Ok(if verified == ExitCode::SUCCESS {
        checked
    } else {
        verified
    })
}

/// Prints the state check; exit 4 on a difference.
fn check_state(rt: &Runtime) -> Result<ExitCode> {
    let check = rt.evidence().check_state()?;
    let counts: Vec<String> = check.checked.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!("compared {} with {} ledger entries", counts.join(", "), check.entries);
    if check.clean() {
        println!("the state and the ledger agree");
        return Ok(ExitCode::SUCCESS);
    }
    for d in &check.differences {
        println!("{} {}: {}", d.kind, d.id, d.problem);
    }
    println!("{} difference(s)", check.differences.len());
    Ok(ExitCode::from(exit::TAMPERED))
}

fn verify(domain: &Path, public_key: Option<&str>) -> Result<ExitCode> {
    // Verification reads the files directly, so it works on a ledger too damaged to open.
    let key = match public_key {
        Some(k) => hex::decode(k.trim()).context("--public-key is not hex")?,
        None => domain_public_key(domain)?,
    };
    let report = verify_dir(&domain.join("ledger"), &key)?;
    match report.problem {
        None => println!(
            "ledger verified: {} entries, {} checkpoints",
            report.entries, report.checkpoints
        ),
        Some(p) => {
            println!("LEDGER TAMPERED: {p}");
            return Ok(ExitCode::from(exit::TAMPERED));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Verifies a ledger export with only its files and a public key.
fn verify_offline(dir: &Path, public_key: Option<&str>) -> Result<ExitCode> {
    let report = verify_export(dir, public_key)?;
    match report.problem {
        None => println!(
            "export verified: {} entries match the signed checkpoint",
            report.entries
        ),
        Some(p) => {
            println!("EXPORT DOES NOT VERIFY: {p}");
            return Ok(ExitCode::from(exit::TAMPERED));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints entries from `since` on, one JSON line each, or only those about `job`.
fn show(ledger: &EventLedger, since: u64, job: Option<&str>) -> Result<()> {
    let about_job = job.map(|j| format!("\"job_id\":\"{j}\""));
    for e in ledger.entries()?.into_iter().skip(since as usize) {
        let text = serde_json::to_string(&e)?;
        if about_job.as_ref().is_none_or(|needle| text.contains(needle.as_str())) {
            println!("{text}");
        }
    }
    Ok(())
}

/// Prints the inclusion proof of entry `entry`, checked before it is shown.
fn inclusion(ledger: &EventLedger, entry: u64) -> Result<()> {
    let p = ledger.inclusion_proof(entry, None)?;
    let path = decode_path(&p.path)?;
    merkle::verify_inclusion(
        p.index,
        p.tree_size,
        &hex::decode(&p.leaf_hash)?,
        &path,
        &hex::decode(&p.root)?,
    )
    .context("the proof the ledger produced does not verify")?;
    print_json(&p)
}

/// Prints the consistency proof between tree sizes `old` and `new`, checked before it is shown.
fn consistency(ledger: &EventLedger, old: u64, new: u64) -> Result<()> {
    let p = ledger.consistency_proof(old, new)?;
    let path = decode_path(&p.path)?;
    merkle::verify_consistency(old, new, &path, &hex::decode(&p.old_root)?, &hex::decode(&p.new_root)?)
        .context("the proof the ledger produced does not verify")?;
    print_json(&p)
}

/// A proof's path of hex hashes, as bytes.
fn decode_path(path: &[String]) -> Result<Vec<Vec<u8>>> {
    Ok(path.iter().map(hex::decode).collect::<Result<_, _>>()?)
}

/// Writes the ledger for audit systems in `format` to `to`.
fn export(rt: &Runtime, ledger: &EventLedger, format: LedgerFormat, to: &Path) -> Result<()> {
    match format {
        LedgerFormat::Jsonl => {
            let cp = ledger.export_jsonl(to)?;
            println!(
                "exported {} entries with a signed checkpoint to {}",
                cp.tree_size,
                to.display()
            );
        }
        LedgerFormat::Openlineage => {
            let name = &rt.domain().config().name;
            let n = ledger.export_openlineage(to, &format!("inland://{name}"))?;
            println!("exported {n} OpenLineage run events to {}", to.display());
        }
    }
    Ok(())
}
