//! `inland review`: the release queue, one output's review view, and votes.

use crate::args::ReviewCmd;
use anyhow::Result;
use inland_runtime::{Decision, OutputRecord, Reviews, Runtime, VoteRequest, review_view};

/// Runs one review subcommand.
pub fn run(rt: &Runtime, cmd: ReviewCmd) -> Result<()> {
    let reviews = rt.reviews();
    match cmd {
        ReviewCmd::List => {
            for o in reviews.queue()? {
                println!("{}", queue_line(&o));
            }
        }
        ReviewCmd::Show { id } => {
            let o = reviews.output(&id)?;
            let table = reviews.output_table(&id).unwrap_or_default();
            print!("{}", review_view::render(&o, &table));
        }
        ReviewCmd::Approve {
            id,
            reviewer,
            reason,
            overrides,
            justification,
        } => vote(
            &reviews,
            &id,
            VoteRequest {
                reviewer,
                decision: Decision::Approve,
                reason,
                overrides: overrides.into_iter().map(|o| o.as_str().to_string()).collect(),
                justification,
            },
        )?,
        ReviewCmd::Reject { id, reviewer, reason } => vote(&reviews, &id, plain(reviewer, Decision::Reject, reason))?,
        ReviewCmd::Return { id, reviewer, reason } => vote(&reviews, &id, plain(reviewer, Decision::Return, reason))?,
    }
    Ok(())
}

/// A vote without overrides (rejections and returns).
fn plain(reviewer: String, decision: Decision, reason: String) -> VoteRequest {
    VoteRequest {
        reviewer,
        decision,
        reason,
        overrides: vec![],
        justification: None,
    }
}

/// Casts a vote and says which state the review is in now.
fn vote(reviews: &Reviews, id: &str, request: VoteRequest) -> Result<()> {
    let o = reviews.vote(id, request)?;
    let state = o.review.map(|r| r.state.to_string()).unwrap_or_default();
    println!("recorded; `{id}` is now {state}");
    Ok(())
}

/// One release request in the queue: state, votes, label and the checks' findings.
fn queue_line(o: &OutputRecord) -> String {
    let r = o.review.as_ref();
    let findings = o
        .gate
        .as_ref()
        .map(|g| g.findings().map(|c| c.check.clone()).collect::<Vec<_>>().join(","))
        .unwrap_or_default();
    format!(
        "{:<60} {:<19} {}/{} votes  label {:<11} {}",
        o.id,
        r.map(|r| r.state.to_string()).unwrap_or_default(),
        r.map(|r| r.votes.len()).unwrap_or(0),
        r.map(|r| r.required).unwrap_or(0),
        o.label
            .as_ref()
            .map(|(l, _)| l.to_string())
            .unwrap_or_else(|| "public".into()),
        if findings.is_empty() {
            "checks pass".to_string()
        } else {
            format!("findings: {findings}")
        }
    )
}
