//! `inland export` and `inland verify-export`: download a released output
//! as its signed bundle through the server, and check a bundle offline.

use crate::client::{Client, text};
use crate::commands::review::output_path;
use crate::exit;
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use inland_runtime::{verify_bundle, write_bundle};
use std::path::Path;
use std::process::ExitCode;

/// Downloads the released output `id` into `to` (new or empty), checks it
/// against its own signature, and lists its files.
pub fn export(client: &Client, id: &str, to: &Path) -> Result<()> {
    let mut path = output_path(id)?;
    path.push("bundle");
    let bundle = client.get(&path, &[]).with_context(|| format!("downloading `{id}`"))?;
    let mut files = Vec::new();
    for f in bundle["files"].as_array().into_iter().flatten() {
        let name = text(f, "name");
        // The names become paths here: one plain file name each, on any system.
        let plain = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if name.is_empty() || name.len() > 64 || name.starts_with('.') || !plain {
            bail!("the server sent a bundle file named `{name}`; nothing was written");
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text(f, "content_base64"))
            .with_context(|| format!("bundle file `{name}` is not base64"))?;
        files.push((name.to_string(), bytes));
    }
    write_bundle(to, &files).with_context(|| format!("writing the bundle to {}", to.display()))?;
    let check = verify_bundle(to, None).with_context(|| format!("checking the bundle in {}", to.display()))?;
    if let Some(p) = check.problem {
        let _ = std::fs::remove_dir_all(to);
        bail!(
            "the downloaded bundle does not verify ({p}); nothing was kept in {}",
            to.display()
        );
    }
    println!("exported `{}` to {}", text(&bundle, "output_id"), to.display());
    for f in bundle["files"].as_array().into_iter().flatten() {
        println!("  {}  sha256 {}", text(f, "name"), text(f, "sha256"));
    }
    println!(
        "signature checked with the bundle's public.key; check who signed it with `inland verify-export DIR --public-key HEX`"
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
