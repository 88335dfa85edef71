//! `inland token`: issue, list and revoke bearer tokens: through the server
//! with an admin's token, or on the directory for bootstrap (the first admin
//! token, with the server stopped).

use crate::args::TokenCmd;
use crate::client::{Client, text};
use anyhow::Result;
use inland_runtime::Runtime;
use reqwest::Method;
use serde_json::json;

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

/// Runs one token subcommand through the server.
pub fn run_remote(client: &Client, cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::Issue {
            role,
            name,
            operator,
            expires_in,
        } => {
            let role = inland_runtime::Role::from(role).to_string();
            let body = json!({
                "role": role,
                "name": name,
                "organization": operator,
                "expires_in_days": expires_in,
            });
            let issued = client.send_json(Method::POST, &["api", "admin", "tokens"], &body)?;
            let record = &issued["record"];
            eprintln!(
                "token {} issued to {} ({}); it is shown only now:",
                text(record, "id"),
                text(record, "name"),
                text(record, "role")
            );
            println!("{}", text(&issued, "token"));
        }
        TokenCmd::List { json } => {
            for t in client
                .get(&["api", "admin", "tokens"], &[])?
                .as_array()
                .into_iter()
                .flatten()
            {
                if json {
                    println!("{}", serde_json::to_string(t)?);
                    continue;
                }
                let state = if !t["revoked_at_ms"].is_null() {
                    "revoked"
                } else if t["expires_at_ms"].as_u64().unwrap_or(0) <= now_ms() {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<14} {:<9} {:<24} {:<24} {state}",
                    text(t, "id"),
                    text(t, "role"),
                    text(t, "name"),
                    text(t, "organization")
                );
            }
        }
        TokenCmd::Revoke { id } => {
            let t = client.call(Method::DELETE, &["api", "admin", "tokens", &id])?;
            println!("token {} of {} revoked", text(&t, "id"), text(&t, "name"));
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
