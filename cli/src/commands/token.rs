//! `inland token`: issue, list and revoke bearer tokens (bootstrap: on the directory).

use crate::args::TokenCmd;
use anyhow::Result;
use inland_runtime::Runtime;

const DAY_MS: u64 = 86_400_000;

/// Runs one token subcommand.
pub fn run(rt: &Runtime, cmd: TokenCmd) -> Result<()> {
    let access = rt.access();
    match cmd {
        TokenCmd::Issue {
            role,
            name,
            operator,
            expires_in,
        } => {
            let expires = now_ms().saturating_add(expires_in.saturating_mul(DAY_MS));
            let issued = access.issue(role.into(), &name, operator.as_deref(), expires)?;
            eprintln!(
                "token {} issued to {} ({}); it is shown only now:",
                issued.record.id, issued.record.name, issued.record.role
            );
            println!("{}", issued.secret);
        }
        TokenCmd::List { json } => {
            for t in access.list()? {
                if json {
                    println!("{}", serde_json::to_string(&t)?);
                    continue;
                }
                let state = if t.revoked_at_ms.is_some() {
                    "revoked"
                } else if t.expires_at_ms <= now_ms() {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<14} {:<9} {:<24} {:<24} {state}",
                    t.id,
                    t.role,
                    t.name,
                    t.operator.as_deref().unwrap_or("-")
                );
            }
        }
        TokenCmd::Revoke { id } => {
            let t = access.revoke(&id)?;
            println!("token {} of {} revoked", t.id, t.name);
        }
    }
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
