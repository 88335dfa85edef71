//! Operators and grants: who may run jobs, on which datasets, for what
//! purpose and for how long (clauses 7, 8.4 and 10.2 of the standard). Every
//! job runs under exactly one grant of the operator that submits it.

use crate::date::Date;
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::events::{Event, EventSink};
use crate::governance::catalog::DatasetRecord;
use crate::governance::catalog::{DatasetStatus, Grade};
use crate::keys::KeyStore;
use crate::privacy::Privacy;
use crate::quota::JobQuota;
use crate::state::{DATASETS, GRANTS, OPERATORS};
use inland_policies::{Name, NameKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The longest term an authorization agreement may have (clause 8.4).
pub const MAX_TERM_YEARS: i32 = 5;

/// The kinds of operator the standard recognises (clause 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorType {
    /// Operates across domains.
    Comprehensive,
    /// Operates within one field.
    Domain,
    /// Operates for one scenario.
    Scenario,
}

impl std::str::FromStr for OperatorType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "comprehensive" => Ok(OperatorType::Comprehensive),
            "domain" => Ok(OperatorType::Domain),
            "scenario" => Ok(OperatorType::Scenario),
            _ => Err(Error::Invalid(format!(
                "operator type `{s}`: use comprehensive, domain or scenario"
            ))),
        }
    }
}

/// Where an operator stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorStatus {
    /// Registered; qualifications under review. Cannot hold grants or run jobs.
    Pending,
    /// Qualified: may hold grants and run jobs.
    Approved,
    /// Suspended: its jobs are refused.
    Suspended,
}

impl OperatorStatus {
    /// The status as written in records and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorStatus::Pending => "pending",
            OperatorStatus::Approved => "approved",
            OperatorStatus::Suspended => "suspended",
        }
    }
}

/// A qualification record: what the operator claims and the hash of the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qualification {
    /// The statement, e.g. "ISO 27001 certificate no. ...".
    pub statement: String,
    /// SHA-256 of the evidence document.
    pub evidence_sha256: String,
}

/// A registered operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// Name, used as its identity.
    pub name: String,
    /// Its kind.
    pub kind: OperatorType,
    /// Its status.
    pub status: OperatorStatus,
    /// Its qualification records.
    pub qualifications: Vec<Qualification>,
    /// Why it was last suspended, if it was.
    pub status_reason: Option<String>,
}

/// Whether a grant is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    /// Issued; in force between its dates.
    Active,
    /// Terminated; its jobs are refused for good.
    Terminated,
}

/// An authorization agreement: one operator, its datasets, purpose, scenario and term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// Grant id.
    pub id: String,
    /// The one operator that holds it; grants are not transferable (clause 10.2).
    pub operator: String,
    /// Datasets its jobs may read.
    pub datasets: Vec<String>,
    /// The authorized purpose.
    pub purpose: String,
    /// The application scenario.
    pub scenario: String,
    /// First day in force.
    pub from: Date,
    /// Last day in force.
    pub until: Date,
    /// Products the agreement lists.
    pub products: Vec<String>,
    /// In force or terminated.
    pub status: GrantStatus,
    /// How many jobs it may run (grants from before quotas have none).
    #[serde(default)]
    pub quota: JobQuota,
    /// Whether its jobs may run only components approved by hash.
    #[serde(default)]
    pub approved_components_only: bool,
    /// Exact aggregates under review, or noisy ones under a privacy budget.
    #[serde(default)]
    pub privacy: Privacy,
}

/// What `grant issue` asks for.
#[derive(Debug, Clone)]
pub struct GrantRequest {
    /// The operator that will hold it.
    pub operator: String,
    /// Datasets.
    pub datasets: Vec<String>,
    /// Purpose.
    pub purpose: String,
    /// Scenario.
    pub scenario: String,
    /// First day.
    pub from: Date,
    /// Last day.
    pub until: Date,
    /// Products.
    pub products: Vec<String>,
    /// How many jobs it may run, per day and over the term.
    pub quota: JobQuota,
    /// Whether its jobs may run only components an admin or reviewer approved by hash.
    pub approved_components_only: bool,
    /// Its privacy mode.
    pub privacy: Privacy,
}

fn validate_operator_name(name: &str) -> Result<()> {
    Name::parse(NameKind::Operator, name)
        .map(|_| ())
        .map_err(|e| Error::Invalid(e.to_string()))
}

pub(crate) fn add_operator(
    domain: &Domain,
    events: &dyn EventSink,
    name: &str,
    kind: OperatorType,
    qualifications: Vec<Qualification>,
) -> Result<Operator> {
    validate_operator_name(name)?;
    let op = Operator {
        name: name.to_string(),
        kind,
        status: OperatorStatus::Pending,
        qualifications,
        status_reason: None,
    };
    if domain.state.get::<Operator>(OPERATORS, name)?.is_some() {
        return Err(Error::Exists(format!("operator `{name}`")));
    }
    let event = Event::OperatorRegistered {
        name: name.to_string(),
        kind: format!("{kind:?}").to_lowercase(),
        qualifications: op.qualifications.iter().map(|q| q.evidence_sha256.clone()).collect(),
    };
    crate::order::announce(&domain.state, events, event, || {
        domain.state.insert_new(OPERATORS, name, &op, "operator")
    })?;
    Ok(op)
}

pub(crate) fn operator(domain: &Domain, name: &str) -> Result<Operator> {
    domain
        .state
        .get(OPERATORS, name)?
        .ok_or_else(|| Error::NotFound(format!("operator `{name}`")))
}

pub(crate) fn set_operator_status(
    domain: &Domain,
    events: &dyn EventSink,
    name: &str,
    status: OperatorStatus,
    reason: Option<String>,
) -> Result<Operator> {
    let mut op = operator(domain, name)?;
    op.status = status;
    op.status_reason = reason.clone();
    let event = Event::OperatorStatusChanged {
        name: name.to_string(),
        status: status.as_str().to_string(),
        reason,
    };
    crate::order::announce(&domain.state, events, event, || {
        domain.state.replace(OPERATORS, name, &op)
    })?;
    Ok(op)
}

pub(crate) fn issue_grant(
    domain: &Domain,
    keys: &KeyStore,
    events: &dyn EventSink,
    req: GrantRequest,
) -> Result<Grant> {
    let op = operator(domain, &req.operator)?;
    if op.status != OperatorStatus::Approved {
        return Err(Error::Invalid(format!(
            "operator `{}` is {}: only approved operators can hold grants",
            op.name,
            op.status.as_str()
        )));
    }
    if req.until < req.from {
        return Err(Error::Invalid(format!(
            "the term ends ({}) before it starts ({})",
            req.until, req.from
        )));
    }
    let limit = req.from.add_years(MAX_TERM_YEARS);
    if req.until > limit {
        return Err(Error::Invalid(format!(
            "the term {} to {} exceeds {MAX_TERM_YEARS} years (clause 8.4): it may run until {limit} at the latest",
            req.from, req.until
        )));
    }
    if req.datasets.is_empty() {
        return Err(Error::Invalid("a grant names at least one dataset".into()));
    }
    if req.purpose.trim().is_empty() || req.scenario.trim().is_empty() {
        return Err(Error::Invalid("a grant states its purpose and scenario".into()));
    }
    req.privacy.validate(&req.datasets)?;
    let mut datasets = BTreeSet::new();
    for name in &req.datasets {
        let d: DatasetRecord = domain
            .state
            .get(DATASETS, name)?
            .ok_or_else(|| Error::Invalid(format!("dataset `{name}` is not in the catalog")))?;
        if d.catalog.grade == Grade::Core {
            return Err(Error::Invalid(format!(
                "dataset `{name}` is core data, which no job may read"
            )));
        }
        if d.status == DatasetStatus::Pending {
            return Err(Error::Invalid(format!(
                "dataset `{name}` is awaiting an admin's approval"
            )));
        }
        if let Some(owner) = d.owner.as_ref().filter(|o| **o != req.operator) {
            return Err(Error::Invalid(format!(
                "dataset `{name}` is social data of operator `{owner}`; only its own grants may include it (clause 10.3)"
            )));
        }
        datasets.insert(d.name);
    }
    let grant = Grant {
        id: format!("g-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
        operator: req.operator,
        datasets: datasets.into_iter().collect(),
        purpose: req.purpose,
        scenario: req.scenario,
        from: req.from,
        until: req.until,
        products: req.products,
        status: GrantStatus::Active,
        quota: req.quota,
        approved_components_only: req.approved_components_only,
        privacy: req.privacy,
    };
    // The key first: a grant never exists without the key its data is sealed
    // with. A key a crash left without its grant is destroyed at start-up.
    keys.create_grant_key(&grant.id)?;
    inland_files::crash_point("grant-key-created");
    let event = Event::GrantIssued {
        grant: grant.id.clone(),
        operator: grant.operator.clone(),
        datasets: grant.datasets.clone(),
        purpose: grant.purpose.clone(),
        from: grant.from.to_string(),
        until: grant.until.to_string(),
        quota: grant.quota,
        approved_components_only: grant.approved_components_only,
        privacy: grant.privacy.clone(),
    };
    let stored = crate::order::announce(&domain.state, events, event, || {
        domain.state.insert_new(GRANTS, &grant.id, &grant, "grant")
    });
    if let Err(e) = stored {
        let _ = keys.destroy_grant_key(&grant.id);
        return Err(e);
    }
    Ok(grant)
}

/// Why an agreement ends (clause 8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminationReason {
    /// The term ended.
    Expired,
    /// The operator breached the agreement.
    Breach,
    /// A security incident.
    Incident,
    /// Required by law.
    Law,
    /// Ended by agreement.
    Agreement,
}

impl std::str::FromStr for TerminationReason {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "expired" => Ok(TerminationReason::Expired),
            "breach" => Ok(TerminationReason::Breach),
            "incident" => Ok(TerminationReason::Incident),
            "law" => Ok(TerminationReason::Law),
            "agreement" => Ok(TerminationReason::Agreement),
            _ => Err(Error::Invalid(format!(
                "reason `{s}`: use expired, breach, incident, law or agreement"
            ))),
        }
    }
}

/// Marks a grant terminated, so that no new job is admitted under it;
/// `Ok(false)` when it was terminated already (its cleanup may still be due).
pub(crate) fn mark_terminated(domain: &Domain, id: &str) -> Result<bool> {
    let mut g = grant(domain, id)?;
    if g.status == GrantStatus::Terminated {
        return Ok(false);
    }
    g.status = GrantStatus::Terminated;
    domain.state.replace(GRANTS, id, &g)?;
    Ok(true)
}

pub(crate) fn grant(domain: &Domain, id: &str) -> Result<Grant> {
    domain
        .state
        .get(GRANTS, id)?
        .ok_or_else(|| Error::NotFound(format!("grant `{id}`")))
}

/// Decides whether `operator` may run a job under `grant_id` today; returns
/// the grant. The reason for a refusal is for the submitter.
pub(crate) fn admit(
    domain: &Domain,
    operator_name: &str,
    grant_id: &str,
    today: Date,
) -> std::result::Result<Grant, String> {
    let op = match domain.state.get::<Operator>(OPERATORS, operator_name) {
        Ok(Some(op)) => op,
        Ok(None) => return Err(format!("operator `{operator_name}` is not registered")),
        Err(e) => return Err(e.to_string()),
    };
    match op.status {
        OperatorStatus::Approved => {}
        OperatorStatus::Pending => return Err(format!("operator `{operator_name}` is not approved yet")),
        OperatorStatus::Suspended => return Err(format!("operator `{operator_name}` is suspended")),
    }
    // Another operator's grant is refused exactly like a missing one: grant ids are not disclosed.
    let g = match domain.state.get::<Grant>(GRANTS, grant_id) {
        Ok(Some(g)) if g.operator == operator_name => g,
        Ok(_) => return Err(format!("operator `{operator_name}` holds no grant `{grant_id}`")),
        Err(e) => return Err(e.to_string()),
    };
    if g.status == GrantStatus::Terminated {
        return Err(format!("grant `{grant_id}` was terminated"));
    }
    if today < g.from {
        return Err(format!("grant `{grant_id}` is not in force until {}", g.from));
    }
    if today > g.until {
        return Err(format!("grant `{grant_id}` expired on {}", g.until));
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::catalog::Grade;

    #[test]
    fn words_parse_as_records_spell_them_and_errors_list_the_choices() {
        assert_eq!(
            "breach".parse::<TerminationReason>().unwrap(),
            TerminationReason::Breach
        );
        assert_eq!("scenario".parse::<OperatorType>().unwrap(), OperatorType::Scenario);
        assert_eq!("core".parse::<Grade>().unwrap(), Grade::Core);
        let err = "Breach".parse::<TerminationReason>().unwrap_err().to_string();
        assert_eq!(err, "reason `Breach`: use expired, breach, incident, law or agreement");
    }
}
