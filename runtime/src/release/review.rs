//! Review of quarantined outputs: reviewers, votes and the states a release
//! request moves through. The rules live here; the runtime supplies storage.
//!
//! submitted → partially reviewed → approved / rejected / returned for
//! changes / conflicted → released (exported). An output the checks block
//! never enters review.

use crate::error::{Error, Result};
use inland_gate::OVERRIDABLE;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a release request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewState {
    /// Checked; waiting for reviewers.
    Submitted,
    /// The automated checks block it; it never leaves.
    Blocked,
    /// Some of the required votes are in (hidden until all are).
    PartiallyReviewed,
    /// Approved: may be exported.
    Approved,
    /// Rejected.
    Rejected,
    /// Sent back to the operator for changes.
    Returned,
    /// Reviewers disagreed; it does not leave.
    Conflicted,
    /// Exported at least once.
    Released,
}

impl ReviewState {
    /// Whether a reviewer may still vote.
    pub fn open(self) -> bool {
        matches!(self, ReviewState::Submitted | ReviewState::PartiallyReviewed)
    }
}

impl fmt::Display for ReviewState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReviewState::Submitted => "submitted",
            ReviewState::Blocked => "blocked",
            ReviewState::PartiallyReviewed => "partially-reviewed",
            ReviewState::Approved => "approved",
            ReviewState::Rejected => "rejected",
            ReviewState::Returned => "returned",
            ReviewState::Conflicted => "conflicted",
            ReviewState::Released => "released",
        })
    }
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Release it.
    Approve,
    /// Do not release it.
    Reject,
    /// Send it back for changes.
    Return,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
            Decision::Return => "return",
        })
    }
}

/// One reviewer's vote. Final once cast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The reviewer.
    pub reviewer: String,
    /// Approve, reject or return.
    pub decision: Decision,
    /// Why.
    pub reason: String,
    /// Checks overridden (flagged in the record).
    pub overrides: Vec<String>,
    /// The written justification required for overrides.
    pub justification: Option<String>,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
}

/// The review of one output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Where it stands.
    pub state: ReviewState,
    /// Independent approvals required (1, or 2 for row-level).
    pub required: u32,
    /// Votes cast, in order.
    pub votes: Vec<Vote>,
}

/// A registered reviewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reviewer {
    /// Name.
    pub name: String,
    /// The operator the reviewer works for, if any: they may not review its outputs.
    pub operator: Option<String>,
    /// When registered (ms since the Unix epoch).
    pub added_at_ms: u64,
}

/// A vote to cast.
#[derive(Debug, Clone)]
pub struct VoteRequest {
    /// The reviewer's name.
    pub reviewer: String,
    /// The decision.
    pub decision: Decision,
    /// Why (required).
    pub reason: String,
    /// Checks to override (approvals only).
    pub overrides: Vec<String>,
    /// Required with overrides.
    pub justification: Option<String>,
}

/// Checks a vote against the rules and returns the review with it added.
/// `operator` is the operator whose job made the output.
pub(crate) fn cast(
    review: &Review,
    output_id: &str,
    operator: &str,
    reviewer: &Reviewer,
    request: &VoteRequest,
) -> Result<Review> {
    if !review.state.open() {
        return Err(Error::Invalid(format!(
            "output `{output_id}` is {}: its review is final",
            review.state
        )));
    }
    if reviewer.operator.as_deref() == Some(operator) || reviewer.name == operator {
        return Err(Error::Refused(format!(
            "reviewer `{}` belongs to operator `{operator}` and may not decide on its outputs",
            reviewer.name
        )));
    }
    if review.votes.iter().any(|v| v.reviewer == reviewer.name) {
        return Err(Error::Invalid(format!(
            "reviewer `{}` has already voted on `{output_id}`; votes are final",
            reviewer.name
        )));
    }
    if request.reason.trim().is_empty() {
        return Err(Error::Invalid("a decision needs a reason (--reason)".into()));
    }
    if !request.overrides.is_empty() {
        if request.decision != Decision::Approve {
            return Err(Error::Invalid("only an approval can override a check".into()));
        }
        if request.justification.as_deref().is_none_or(|j| j.trim().is_empty()) {
            return Err(Error::Invalid(
                "overriding a failed check needs a written justification (--justification)".into(),
            ));
        }
        for o in &request.overrides {
            if !OVERRIDABLE.contains(&o.as_str()) {
                return Err(Error::Invalid(format!(
                    "`{o}` cannot be overridden: only {} can",
                    OVERRIDABLE.join(", ")
                )));
            }
        }
    }
    let mut next = review.clone();
    next.votes.push(Vote {
        reviewer: reviewer.name.clone(),
        decision: request.decision,
        reason: request.reason.trim().to_string(),
        overrides: request.overrides.clone(),
        justification: request.justification.clone(),
        at_ms: inland_files::now_ms(),
    });
    next.state = outcome(&next);
    Ok(next)
}

/// The state the votes lead to.
fn outcome(review: &Review) -> ReviewState {
    if (review.votes.len() as u32) < review.required.max(1) {
        return ReviewState::PartiallyReviewed;
    }
    let first = review.votes[0].decision;
    if review.votes.iter().any(|v| v.decision != first) {
        return ReviewState::Conflicted;
    }
    match first {
        Decision::Approve => ReviewState::Approved,
        Decision::Reject => ReviewState::Rejected,
        Decision::Return => ReviewState::Returned,
    }
}

/// Checks overridden by every approving vote (an override needs all approvers).
pub(crate) fn agreed_overrides(review: &Review) -> Vec<String> {
    let approvals: Vec<&Vote> = review
        .votes
        .iter()
        .filter(|v| v.decision == Decision::Approve)
        .collect();
    let Some(first) = approvals.first() else {
        return Vec::new();
    };
    first
        .overrides
        .iter()
        .filter(|o| approvals.iter().all(|v| v.overrides.contains(o)))
        .cloned()
        .collect()
}

/// The votes a reader may see: none while a multi-reviewer vote is still open.
pub fn visible_votes(review: &Review) -> &[Vote] {
    if review.state == ReviewState::PartiallyReviewed {
        &[]
    } else {
        &review.votes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reviewer(name: &str, operator: Option<&str>) -> Reviewer {
        Reviewer {
            name: name.into(),
            operator: operator.map(str::to_string),
            added_at_ms: 0,
        }
    }

    fn vote(name: &str, decision: Decision) -> VoteRequest {
        VoteRequest {
            reviewer: name.into(),
            decision,
            reason: "looked at every cell".into(),
            overrides: vec![],
            justification: None,
        }
    }

    fn submitted(required: u32) -> Review {
        Review {
            state: ReviewState::Submitted,
            required,
            votes: vec![],
        }
    }

    #[test]
    fn one_approval_approves_and_the_decision_is_final() {
        let r = cast(
            &submitted(1),
            "o",
            "op",
            &reviewer("ann", None),
            &vote("ann", Decision::Approve),
        )
        .unwrap();
        assert_eq!(r.state, ReviewState::Approved);
        let again = cast(&r, "o", "op", &reviewer("bob", None), &vote("bob", Decision::Reject));
        assert!(again.unwrap_err().to_string().contains("final"));
    }

    #[test]
    fn two_reviewers_vote_blind_and_disagreement_is_conflicted() {
        let r = cast(
            &submitted(2),
            "o",
            "op",
            &reviewer("ann", None),
            &vote("ann", Decision::Approve),
        )
        .unwrap();
        assert_eq!(r.state, ReviewState::PartiallyReviewed);
        assert!(visible_votes(&r).is_empty());
        let twice = cast(&r, "o", "op", &reviewer("ann", None), &vote("ann", Decision::Approve));
        assert!(twice.unwrap_err().to_string().contains("already voted"));
        let r = cast(&r, "o", "op", &reviewer("bob", None), &vote("bob", Decision::Reject)).unwrap();
        assert_eq!(r.state, ReviewState::Conflicted);
        assert_eq!(visible_votes(&r).len(), 2);
    }

    #[test]
    fn a_reviewer_may_not_decide_on_their_own_operators_output() {
        let e = cast(
            &submitted(1),
            "o",
            "op",
            &reviewer("ann", Some("op")),
            &vote("ann", Decision::Approve),
        );
        assert!(e.unwrap_err().to_string().contains("may not decide"));
    }

    #[test]
    fn an_override_needs_a_justification_and_an_overridable_check() {
        let mut v = vote("ann", Decision::Approve);
        v.overrides = vec!["min-cell-count".into()];
        let e = cast(&submitted(1), "o", "op", &reviewer("ann", None), &v);
        assert!(e.unwrap_err().to_string().contains("justification"));
        v.overrides = vec!["identifier-leakage".into()];
        v.justification = Some("public figures".into());
        let e = cast(&submitted(1), "o", "op", &reviewer("ann", None), &v);
        assert!(e.unwrap_err().to_string().contains("cannot be overridden"));
    }

    #[test]
    fn overrides_count_only_when_every_approver_makes_them() {
        let mut a = vote("ann", Decision::Approve);
        a.overrides = vec!["dominance".into(), "p-percent".into()];
        a.justification = Some("published elsewhere".into());
        let mut b = vote("bob", Decision::Approve);
        b.overrides = vec!["dominance".into()];
        b.justification = Some("published elsewhere".into());
        let r = cast(&submitted(2), "o", "op", &reviewer("ann", None), &a).unwrap();
        let r = cast(&r, "o", "op", &reviewer("bob", None), &b).unwrap();
        assert_eq!(r.state, ReviewState::Approved);
        assert_eq!(agreed_overrides(&r), vec!["dominance".to_string()]);
    }
}
