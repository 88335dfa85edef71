//! `inland job`: submit a component under a grant, follow it, list, show and
//! cancel jobs, all through the server. What the server shows an operator
//! depends on no data: the state, the admission refusal, released outputs.

use crate::args::JobCmd;
use crate::client::{Client, text};
use crate::exit;
use crate::render::print_json;
use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::Value;
use std::process::ExitCode;

/// How often a running job is asked after, in milliseconds.
const POLL_MS: u64 = 250;
/// How long one view of a running job waits for it to end (`?wait=`).
const WAIT_SECS: &str = "30";

/// Runs one job subcommand; `job run` exits 3 when the job did not succeed.
pub fn run(client: &Client, cmd: JobCmd) -> Result<ExitCode> {
    match cmd {
        JobCmd::Run {
            wasm,
            sql,
            grant,
            params,
            source,
            no_wait,
        } => {
            // A SQL file goes as it is: the server runs it as the SQL job component.
            let (file, media) = match (&wasm, &sql) {
                (_, Some(sql)) => (sql, "application/sql"),
                (Some(wasm), None) => (wasm, "application/wasm"),
                (None, None) => anyhow::bail!("name the job's .wasm component or a --sql file"),
            };
            let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let source_sha = match &source {
                Some(path) => {
                    let archive = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                    let stored = client
                        .post_bytes(&["api", "sources"], &[], archive_type(path), archive)
                        .with_context(|| format!("submitting the source archive {}", path.display()))?;
                    Some(text(&stored, "sha256").to_string())
                }
                None => None,
            };
            let pairs: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut query = vec![("grant", grant.as_str())];
            query.extend(pairs.iter().map(|p| ("param", p.as_str())));
            query.extend(source_sha.as_deref().map(|s| ("source", s)));
            let submitted = client
                .post_bytes(&["api", "jobs"], &query, media, bytes)
                .with_context(|| format!("submitting {}", file.display()))?;
            let id = text(&submitted, "job_id").to_string();
            if no_wait {
                println!("{id}");
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!("job {id} submitted under {grant}");
            let view = follow(client, &id)?;
            print_view(&view);
            if text(&view, "state") != "succeeded" {
                return Ok(ExitCode::from(exit::JOB_NOT_SUCCEEDED));
            }
        }
        JobCmd::List => {
            let mut cursor: Option<String> = None;
            loop {
                let query: Vec<(&str, &str)> = cursor.iter().map(|c| ("cursor", c.as_str())).collect();
                let page = client.get(&["api", "jobs"], &query)?;
                for j in page["items"].as_array().into_iter().flatten() {
                    println!(
                        "{}  {:<10} {:<24} {:>2} released",
                        text(j, "id"),
                        text(j, "state"),
                        text(j, "grant"),
                        j["released_outputs"].as_array().map_or(0, Vec::len)
                    );
                }
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_string()),
                    None => break,
                }
            }
        }
        JobCmd::Show { id } => print_json(&client.get(&["api", "jobs", &id], &[])?)?,
        JobCmd::Source { id, to } => {
            let bytes = client.get_bytes(&["api", "jobs", &id, "source"])?;
            std::fs::write(&to, &bytes).with_context(|| format!("writing {}", to.display()))?;
            println!(
                "source archive of job {id} ({} bytes) written to {}",
                bytes.len(),
                to.display()
            );
        }
        JobCmd::Cancel { id } => {
            let view = client.call(Method::POST, &["api", "jobs", &id, "cancel"])?;
            println!("job {id} is {}", text(&view, "state"));
        }
        JobCmd::Fingerprint { sql } => fingerprint(&sql)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a SQL file's fingerprint (what an approval of it names).
pub fn fingerprint(sql: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(sql).with_context(|| format!("reading {}", sql.display()))?;
    let fingerprint = inland_runtime::sql_job::file_fingerprint(&text)
        .with_context(|| format!("reading the statements of {}", sql.display()))?;
    println!("{fingerprint}");
    Ok(())
}

/// The media type to send an archive as, from its file name.
fn archive_type(path: &std::path::Path) -> &'static str {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".zip") {
        "application/zip"
    } else if name.ends_with(".tar") {
        "application/x-tar"
    } else if name.ends_with(".gz") || name.ends_with(".tgz") {
        "application/gzip"
    } else {
        "application/octet-stream"
    }
}

/// Asks after job `id` until it ends, saying on stderr when its state changes.
fn follow(client: &Client, id: &str) -> Result<Value> {
    let mut last = String::new();
    loop {
        // The server answers when the job ends, or after WAIT_SECS.
        let asked = std::time::Instant::now();
        let view = client.get(&["api", "jobs", id], &[("wait", WAIT_SECS)])?;
        let state = text(&view, "state").to_string();
        if !matches!(state.as_str(), "queued" | "running") {
            return Ok(view);
        }
        if state != last {
            eprintln!("  {state}…");
            last = state;
        }
        // A server that answered at once (one that does not wait) is polled.
        if asked.elapsed() < std::time::Duration::from_secs(1) {
            client.pause(POLL_MS);
        }
    }
}

/// A finished job as its operator sees it.
fn print_view(view: &Value) {
    let id = text(view, "id");
    match text(view, "state") {
        "succeeded" => println!("job {id} succeeded; its outputs wait in quarantine for review"),
        "refused" => println!("job {id} REFUSED — {}", text(view, "refusal")),
        other => println!("job {id} {other} (why is recorded for the reviewers)"),
    }
    for o in view["released_outputs"].as_array().into_iter().flatten() {
        println!("  released: {}", o.as_str().unwrap_or("-"));
    }
}
