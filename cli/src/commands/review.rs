//! `inland review` and `inland output`: the release queue, one output's
//! review view, and votes, through the server. The reviewer is the token's
//! holder; no flag names them.

use crate::args::{OutputCmd, ReviewCmd};
use crate::client::{Client, text};
use crate::render::print_json;
use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::{Value, json};

/// Runs one review subcommand.
pub fn run(client: &Client, cmd: ReviewCmd) -> Result<()> {
    match cmd {
        ReviewCmd::List => list(client)?,
        ReviewCmd::Show { id } => show(client, &id)?,
        ReviewCmd::Rows { id } => rows(client, &id)?,
        ReviewCmd::Approve {
            id,
            reason,
            overrides,
            justification,
        } => {
            let overrides: Vec<&str> = overrides.iter().map(|o| o.as_str()).collect();
            vote(
                client,
                &id,
                json!({ "decision": "approve", "reason": reason, "overrides": overrides, "justification": justification }),
            )?
        }
        ReviewCmd::Reject { id, reason } => vote(client, &id, json!({ "decision": "reject", "reason": reason }))?,
        ReviewCmd::Return { id, reason } => vote(client, &id, json!({ "decision": "return", "reason": reason }))?,
    }
    Ok(())
}

/// `inland output list | show`: the same queue and view, by their older names.
pub fn run_output(client: &Client, cmd: OutputCmd) -> Result<()> {
    match cmd {
        OutputCmd::List => list(client),
        OutputCmd::Show { id } => {
            let view = client.get(&output_path(&id)?, &[])?;
            print_json(&view["record"])?;
            print!("{}", text(&view, "page"));
            Ok(())
        }
    }
}

/// The path segments of output `id` (`<job id>/<name>`).
pub fn output_path(id: &str) -> Result<Vec<&str>> {
    let (job, name) = id
        .split_once('/')
        .with_context(|| format!("`{id}` is not an output id (`<job id>/<name>`)"))?;
    Ok(vec!["api", "outputs", job, name])
}

/// The release queue, one request a line.
fn list(client: &Client) -> Result<()> {
    let queue = client.get(&["api", "outputs"], &[])?;
    for o in queue.as_array().into_iter().flatten() {
        let findings: Vec<&str> = o["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "{:<60} {:<19} {}/{} votes  {}",
            text(o, "id"),
            text(o, "state"),
            o["votes"].as_u64().unwrap_or(0),
            o["required"].as_u64().unwrap_or(0),
            if findings.is_empty() {
                "checks pass".to_string()
            } else {
                format!("findings: {}", findings.join(","))
            }
        );
    }
    Ok(())
}

/// One output as a reviewer reads it: the page, then the job's log and error.
fn show(client: &Client, id: &str) -> Result<()> {
    let view = client.get(&output_path(id)?, &[])?;
    print!("{}", text(&view, "page"));
    let log = view["job_log"].as_array().cloned().unwrap_or_default();
    if !log.is_empty() {
        println!("\njob log ({} lines):", log.len());
        for line in &log {
            println!("  [{}] {}", text(line, "level"), text(line, "message"));
        }
    }
    if let Some(e) = view["job_error"].as_str() {
        println!("\njob error: {e}");
    }
    Ok(())
}

/// Every row of output `id`, tab-separated, with a header line.
fn rows(client: &Client, id: &str) -> Result<()> {
    let mut path = output_path(id)?;
    path.push("rows");
    let mut offset = 0u64;
    loop {
        let from = offset.to_string();
        let page = client.get(&path, &[("offset", &from), ("limit", "1000")])?;
        if offset == 0 {
            let names: Vec<&str> = page["columns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!("{}", names.join("\t"));
        }
        for row in page["rows"].as_array().into_iter().flatten() {
            let cells: Vec<&str> = row
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c.as_str().unwrap_or("∅"))
                .collect();
            println!("{}", cells.join("\t"));
        }
        match page["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => return Ok(()),
        }
    }
}

/// Casts the caller's vote and says which state the review is in now.
fn vote(client: &Client, id: &str, body: Value) -> Result<()> {
    let mut path = output_path(id)?;
    path.push("votes");
    let done = client.send_json(Method::POST, &path, &body)?;
    println!("recorded; `{id}` is now {}", text(&done, "state"));
    Ok(())
}
