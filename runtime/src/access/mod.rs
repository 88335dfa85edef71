//! Access: the people who use the domain and the bearer tokens they prove
//! who they are with. A token is issued by an admin for one role and name,
//! shown once, kept only as its SHA-256, expires, and can be revoked; each
//! issue, revocation and refused request is recorded in the ledger. What a
//! principal may do is decided elsewhere (the server's policy); this module
//! only says who is asking.

pub(crate) mod policy;
mod secret;

pub use secret::TOKEN_PREFIX;

use crate::context::Inner;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::governance::operators;
use crate::release::review::Reviewer;
use crate::state::{AUTHORS, REVIEWERS, TOKENS};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The roles people have in a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Registers data, operators and grants; issues tokens.
    Admin,
    /// A user of a registered operator organization: submits jobs under its grants.
    Operator,
    /// Decides on the release of quarantined outputs.
    Reviewer,
    /// Reads the ledger, proofs and reports (the regulator's read-only view).
    Auditor,
}

impl Role {
    /// The role as written in records and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Reviewer => "reviewer",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "reviewer" => Ok(Role::Reviewer),
            "auditor" => Ok(Role::Auditor),
            _ => Err(Error::Invalid(format!(
                "role `{s}`: use admin, operator, reviewer or auditor"
            ))),
        }
    }
}

/// What the domain keeps about a token: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The token's id (also written inside the token).
    pub id: String,
    /// The role it carries.
    pub role: Role,
    /// The person's name.
    pub name: String,
    /// For operators, the organization they act for.
    pub operator: Option<String>,
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// When issued (ms since the Unix epoch).
    pub issued_at_ms: u64,
    /// When it stops working.
    pub expires_at_ms: u64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<u64>,
}

/// A token just issued: the secret is here and nowhere else.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The record the domain keeps.
    pub record: TokenRecord,
    /// The token to hand to its holder; it cannot be shown again.
    pub secret: String,
}

/// Who is asking, as proven by a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token used.
    pub token_id: String,
    /// The role it carries.
    pub role: Role,
    /// The person's name.
    pub name: String,
    /// Operators: their organization. Reviewers: the organization they work
    /// for, if any (they may not decide on its outputs).
    pub operator: Option<String>,
}

/// Why a presented token does not prove anyone. A holder may learn which,
/// except that an unknown id and a wrong secret read the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// Not a token of this domain.
    #[error("the token is not valid")]
    Invalid,
    /// Past its expiry.
    #[error("the token has expired")]
    Expired,
    /// Revoked by an admin.
    #[error("the token was revoked")]
    Revoked,
}

/// Tokens and the principals they prove; the record of refused requests.
#[derive(Clone)]
pub struct Access {
    inner: Arc<Inner>,
}

/// Names of people: short, plain, so they can sit in records and policies.
fn validate_person(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "name `{name}`: use 1 to 64 of a-z, 0-9, `-`, `_`, `.`"
        )))
    }
}

impl Access {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Access { inner }
    }

    /// Issues a token for `name` in `role`, valid until `expires_at_ms`.
    /// Operators name a registered organization; reviewers must be
    /// registered reviewers (the organization they work for comes from that
    /// record); admins and auditors name none.
    pub fn issue(&self, role: Role, name: &str, operator: Option<&str>, expires_at_ms: u64) -> Result<IssuedToken> {
        self.issue_by(role, name, operator, expires_at_ms, None)
    }

    /// [`Access::issue`] on behalf of `by`, the admin asking through the
    /// server, who is named in the ledger (`None`: whoever holds the domain
    /// directory, at bootstrap).
    pub fn issue_by(
        &self,
        role: Role,
        name: &str,
        operator: Option<&str>,
        expires_at_ms: u64,
        by: Option<&str>,
    ) -> Result<IssuedToken> {
        validate_person(name)?;
        let domain = &self.inner.domain;
        match (role, operator) {
            (Role::Operator, Some(org)) => {
                operators::operator(domain, org)?;
            }
            (Role::Operator, None) => {
                return Err(Error::Invalid(
                    "an operator token names the organization it acts for (--operator)".into(),
                ));
            }
            (Role::Reviewer, None) => {
                domain
                    .state
                    .get::<Reviewer>(REVIEWERS, name)?
                    .ok_or_else(|| Error::Invalid(format!("`{name}` is not a registered reviewer")))?;
            }
            (_, Some(_)) => {
                return Err(Error::Invalid(format!(
                    "a {role} token names no organization (reviewers work for the one they were registered with)"
                )));
            }
            (Role::Admin | Role::Auditor, None) => {}
        }
        let now = inland_files::now_ms();
        if expires_at_ms <= now {
            return Err(Error::Invalid("a token's expiry must be in the future".into()));
        }
        let new = secret::generate()?;
        let record = TokenRecord {
            id: new.id,
            role,
            name: name.to_string(),
            operator: operator.map(str::to_string),
            sha256: hex::encode(secret::hash(&new.token)),
            issued_at_ms: now,
            expires_at_ms,
            revoked_at_ms: None,
        };
        let event = Event::TokenIssued {
            id: record.id.clone(),
            role: role.to_string(),
            name: record.name.clone(),
            operator: record.operator.clone(),
            expires_at_ms,
            by: by.map(str::to_string),
        };
        crate::order::announce(&domain.state, self.inner.events.as_ref(), event, || {
            domain.state.insert_new(TOKENS, &record.id, &record, "token")
        })?;
        self.inner.checkpoint()?;
        tracing::info!(token = %record.id, %role, "token issued");
        Ok(IssuedToken {
            record,
            secret: new.token,
        })
    }

    /// Every token record, by id.
    pub fn list(&self) -> Result<Vec<TokenRecord>> {
        self.inner.domain.state.list(TOKENS)
    }

    /// Revokes a token: it stops working at once.
    pub fn revoke(&self, id: &str) -> Result<TokenRecord> {
        let state = &self.inner.domain.state;
        let mut record: TokenRecord = state
            .get(TOKENS, id)?
            .ok_or_else(|| Error::NotFound(format!("token `{id}`")))?;
        if record.revoked_at_ms.is_some() {
            return Err(Error::Invalid(format!("token `{id}` is already revoked")));
        }
        record.revoked_at_ms = Some(inland_files::now_ms());
        crate::order::announce(
            state,
            self.inner.events.as_ref(),
            Event::TokenRevoked { id: id.to_string() },
            || state.replace(TOKENS, id, &record),
        )?;
        self.inner.checkpoint()?;
        tracing::info!(token = %id, "token revoked");
        Ok(record)
    }

    /// Who `token` proves, or why it proves no one. `Err` is the domain failing.
    pub fn verify(&self, token: &str) -> Result<std::result::Result<Principal, Rejected>> {
        let Some(id) = secret::claimed_id(token) else {
            return Ok(Err(Rejected::Invalid));
        };
        let state = &self.inner.domain.state;
        let Some(record) = state.get::<TokenRecord>(TOKENS, id)? else {
            return Ok(Err(Rejected::Invalid));
        };
        let stored = hex::decode(&record.sha256).map_err(|e| Error::damaged(format!("token `{id}`"), e))?;
        if !secret::matches(token, &stored) {
            return Ok(Err(Rejected::Invalid));
        }
        self.in_force(record)
    }

    /// Who token `token_id` proves, for a console session whose token was
    /// verified at sign-in: the session keeps the id, never the token, and
    /// a revoked or expired token ends it at once.
    pub fn verify_session(&self, token_id: &str) -> Result<std::result::Result<Principal, Rejected>> {
        match self.inner.domain.state.get::<TokenRecord>(TOKENS, token_id)? {
            Some(record) => self.in_force(record),
            None => Ok(Err(Rejected::Invalid)),
        }
    }

    /// The principal of a token record, unless it was revoked or expired.
    fn in_force(&self, record: TokenRecord) -> Result<std::result::Result<Principal, Rejected>> {
        let state = &self.inner.domain.state;
        if record.revoked_at_ms.is_some() {
            return Ok(Err(Rejected::Revoked));
        }
        if inland_files::now_ms() >= record.expires_at_ms {
            return Ok(Err(Rejected::Expired));
        }
        let operator = match record.role {
            // Whom a reviewer works for is read now, so a change applies at once.
            Role::Reviewer => state.get::<Reviewer>(REVIEWERS, &record.name)?.and_then(|r| r.operator),
            _ => record.operator,
        };
        Ok(Ok(Principal {
            token_id: record.id,
            role: record.role,
            name: record.name,
            operator,
        }))
    }

    /// Records that `principal` was refused `action` on `resource`.
    pub fn record_denial(&self, principal: &Principal, action: &str, resource: &str) -> Result<()> {
        self.inner.events.record(Event::AccessDenied {
            token: principal.token_id.clone(),
            role: principal.role.to_string(),
            name: principal.name.clone(),
            action: action.to_string(),
            resource: resource.to_string(),
        })?;
        Ok(())
    }

    /// Remembers who submitted a job, so no one votes on their own request.
    pub fn record_author(&self, job_id: &str, name: &str) -> Result<()> {
        self.inner.domain.state.insert_new(AUTHORS, job_id, &name, "job author")
    }

    /// The person who submitted a job, if it was submitted through the server.
    pub fn author(&self, job_id: &str) -> Result<Option<String>> {
        self.inner.domain.state.get(AUTHORS, job_id)
    }
}
