//! `inland export` and `inland verify-export`: write an approved output as a
//! signed bundle, and check a bundle offline.

use crate::exit;
use anyhow::{Context, Result};
use inland_runtime::{Runtime, verify_bundle};
use std::path::Path;
use std::process::ExitCode;

/// Writes the approved output `id` to `to` as a signed bundle and lists its files.
pub fn export(rt: &Runtime, id: &str, to: &Path) -> Result<()> {
    let done = rt
        .reviews()
        .export(id, to)
        .with_context(|| format!("exporting `{id}`"))?;
    println!("exported `{}` to {}", done.output_id, to.display());
    for (name, sha) in &done.files {
        println!("  {name}  sha256 {sha}");
    }
    println!(
        "  manifest.json  sha256 {} (signed: manifest.sig)",
        done.manifest_sha256
    );
    Ok(())
}

/// Checks the bundle in `dir` against `public_key` (hex, or a file holding
/// it) or, without one, its own `public.key`; exits 4 when it does not verify.
pub fn verify(dir: &Path, public_key: Option<String>) -> Result<ExitCode> {
    let key = match public_key {
        Some(k) if Path::new(&k).is_file() => {
            Some(std::fs::read_to_string(&k).with_context(|| format!("reading {k}"))?)
        }
        other => other,
    };
    let check =
        verify_bundle(dir, key.as_deref()).with_context(|| format!("checking the bundle in {}", dir.display()))?;
    match check.problem {
        None => {
            println!(
                "bundle OK: output `{}`, {} file(s) match the signed manifest",
                check.output_id, check.files
            );
            if key.is_none() {
                println!("(checked with the bundle's own public.key; pass --public-key to check who signed it)");
            }
        }
        Some(p) => {
            println!("bundle FAILED verification: {p}");
            return Ok(ExitCode::from(exit::TAMPERED));
        }
    }
    Ok(ExitCode::SUCCESS)
}
