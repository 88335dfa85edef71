//! Authorization as data: a Cedar schema and policy set decide what each
//! principal may do. Handlers describe the request as an [`Action`] on a
//! [`Resource`] and make one call; the rules about people (an operator acts
//! on its own things, reviewers never decide for their own organization,
//! authors never vote) live in `policies/default.cedar`, not in handlers.

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet,
    RestrictedExpression, Schema, ValidationMode, Validator,
};
use inland_runtime::{Principal, Role};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

/// The schema of principals, actions and resources, shipped with the product.
pub const SCHEMA: &str = include_str!("../policies/inland.cedarschema");
/// The default policy set, shipped with the product; an admin may replace it.
pub const DEFAULT_POLICY: &str = include_str!("../policies/default.cedar");
/// Forbids evaluated beside whatever policy is in force: no replacement can
/// let operators read quarantine or reviewers decide for themselves.
pub const INVARIANTS: &str = include_str!("../policies/invariants.cedar");

/// Why a policy could not be loaded or a decision not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthzError {
    /// The schema does not parse.
    #[error("access schema: {0}")]
    Schema(String),
    /// The policy set does not parse or does not validate against the schema.
    #[error("access policy: {0}")]
    Policy(String),
    /// A request could not be described to Cedar: a bug in Inland.
    #[error("describing a request for the access policy: {0}")]
    Request(String),
}

/// What a request does, named as the schema's actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ask who a token proves.
    Whoami,
    /// List jobs (of the domain, or of one organization).
    ListJobs,
    /// Submit a job under a grant.
    SubmitJob,
    /// View one job.
    ViewJob,
    /// Stop a running job.
    CancelJob,
    /// List the release queue.
    ListOutputs,
    /// View one output in quarantine.
    ViewOutput,
    /// Vote on an output's release.
    Vote,
    /// Read the ledger.
    ViewLedger,
    /// Export the ledger.
    ExportLedger,
    /// Read reports computed from the ledger.
    ViewReports,
    /// Issue, list and revoke tokens.
    ManageTokens,
    /// Read and replace the access policy.
    ManageAccessPolicy,
    /// List the domain's datasets, operators and grants.
    ViewDomain,
    /// Approve a component by hash for grants that require approval.
    ApproveComponent,
    /// Download the signed bundle of a released output.
    DownloadRelease,
    /// Submit a source archive for the organization's components.
    SubmitSource,
    /// Read the source archive submitted with a job.
    ViewSource,
    /// Keep the registry: operators, grants, reviewers, the domain policy.
    ManageDomain,
    /// Read a `dp` grant's privacy budget, spent and left.
    ViewBudget,
}

impl Action {
    /// The action's name in the schema.
    pub fn name(self) -> &'static str {
        match self {
            Action::Whoami => "Whoami",
            Action::ListJobs => "ListJobs",
            Action::SubmitJob => "SubmitJob",
            Action::ViewJob => "ViewJob",
            Action::CancelJob => "CancelJob",
            Action::ListOutputs => "ListOutputs",
            Action::ViewOutput => "ViewOutput",
            Action::Vote => "Vote",
            Action::ViewLedger => "ViewLedger",
            Action::ExportLedger => "ExportLedger",
            Action::ViewReports => "ViewReports",
            Action::ManageTokens => "ManageTokens",
            Action::ManageAccessPolicy => "ManageAccessPolicy",
            Action::ViewDomain => "ViewDomain",
            Action::ApproveComponent => "ApproveComponent",
            Action::DownloadRelease => "DownloadRelease",
            Action::SubmitSource => "SubmitSource",
            Action::ViewSource => "ViewSource",
            Action::ManageDomain => "ManageDomain",
            Action::ViewBudget => "ViewBudget",
        }
    }
}

/// What a request acts on. `organization` is `None` for an id the domain
/// does not know: such a resource belongs to no one, so only roles allowed
/// everywhere pass, and the others cannot tell "unknown" from "not yours".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The domain as a whole.
    Domain,
    /// One operator organization (its jobs, as a list).
    Organization(String),
    /// A grant, with the organization holding it.
    Grant {
        /// Grant id.
        id: String,
        /// Holder.
        organization: Option<String>,
    },
    /// A job, with the organization that submitted it.
    Job {
        /// Job id.
        id: String,
        /// Submitter.
        organization: Option<String>,
    },
    /// An output, with its organization and the person who submitted its job.
    Output {
        /// Output id.
        id: String,
        /// The organization whose job made it.
        organization: Option<String>,
        /// The person who submitted the job, when known.
        author: Option<String>,
    },
    /// The evidence ledger.
    Ledger,
}

impl Resource {
    fn uid(&self) -> Result<EntityUid, AuthzError> {
        match self {
            Resource::Domain => uid("Domain", "domain"),
            Resource::Organization(o) => uid("Organization", o),
            Resource::Grant { id, .. } => uid("Grant", id),
            Resource::Job { id, .. } => uid("Job", id),
            Resource::Output { id, .. } => uid("Output", id),
            Resource::Ledger => uid("Ledger", "ledger"),
        }
    }

    /// How the resource is named in records: `Type::"id"`.
    pub fn describe(&self) -> String {
        self.uid().map(|u| u.to_string()).unwrap_or_else(|_| "?".into())
    }
}

fn uid(kind: &str, id: &str) -> Result<EntityUid, AuthzError> {
    let name = EntityTypeName::from_str(&format!("Inland::{kind}")).map_err(|e| AuthzError::Request(e.to_string()))?;
    Ok(EntityUid::from_type_name_and_id(name, EntityId::new(id)))
}

fn action_uid(action: Action) -> Result<EntityUid, AuthzError> {
    let name = EntityTypeName::from_str("Inland::Action").map_err(|e| AuthzError::Request(e.to_string()))?;
    Ok(EntityUid::from_type_name_and_id(name, EntityId::new(action.name())))
}

/// The loaded, validated policy: one [`AccessPolicy::allows`] call per request.
pub struct AccessPolicy {
    schema: Schema,
    policies: PolicySet,
    authorizer: Authorizer,
    text: String,
}

impl AccessPolicy {
    /// The policy set that ships with Inland.
    pub fn default_policy() -> Result<Self, AuthzError> {
        Self::new(DEFAULT_POLICY)
    }

    /// Parses `policy_text` and validates it, with the [`INVARIANTS`] beside
    /// it, against the schema; a policy that does not validate never takes
    /// effect. Errors name the line and column in `policy_text`.
    pub fn new(policy_text: &str) -> Result<Self, AuthzError> {
        let (schema, _warnings) =
            Schema::from_cedarschema_str(SCHEMA).map_err(|e| AuthzError::Schema(e.to_string()))?;
        let own = PolicySet::from_str(policy_text).map_err(|e| AuthzError::Policy(diagnose(policy_text, &e)))?;
        let problems = validate(&schema, &own, policy_text);
        if !problems.is_empty() {
            return Err(AuthzError::Policy(problems.join("; ")));
        }
        let policies = PolicySet::from_str(&format!("{policy_text}\n{INVARIANTS}"))
            .map_err(|e| AuthzError::Policy(format!("together with the invariants: {e}")))?;
        let problems = validate(&schema, &policies, INVARIANTS);
        if !problems.is_empty() {
            return Err(AuthzError::Policy(problems.join("; ")));
        }
        Ok(AccessPolicy {
            schema,
            policies,
            authorizer: Authorizer::new(),
            text: policy_text.to_string(),
        })
    }

    /// The policy's own text (without the invariants).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the policy allows `who` to do `action` on `resource`.
    pub fn allows(&self, who: &Principal, action: Action, resource: &Resource) -> Result<bool, AuthzError> {
        let principal = principal_entity(who)?;
        let principal_uid = principal.uid();
        let mut entities = vec![
            principal,
            Entity::new_no_attrs(uid("Domain", "domain")?, HashSet::new()),
        ];
        let mut organizations: HashSet<String> = who.operator.iter().cloned().collect();
        let resource_entity = match resource {
            Resource::Domain => None,
            Resource::Organization(o) => {
                organizations.insert(o.clone());
                None
            }
            Resource::Grant { organization, .. } | Resource::Job { organization, .. } => {
                organizations.extend(organization.iter().cloned());
                Some(Entity::new_no_attrs(resource.uid()?, parents(organization)?))
            }
            Resource::Output {
                organization, author, ..
            } => {
                organizations.extend(organization.iter().cloned());
                let attrs: HashMap<String, RestrictedExpression> = author
                    .iter()
                    .map(|a| ("author".to_string(), RestrictedExpression::new_string(a.clone())))
                    .collect();
                Some(
                    Entity::new(resource.uid()?, attrs, parents(organization)?)
                        .map_err(|e| AuthzError::Request(e.to_string()))?,
                )
            }
            Resource::Ledger => Some(Entity::new_no_attrs(resource.uid()?, HashSet::new())),
        };
        entities.extend(resource_entity);
        for o in &organizations {
            entities.push(Entity::new_no_attrs(
                uid("Organization", o)?,
                HashSet::from([uid("Domain", "domain")?]),
            ));
        }
        let entities =
            Entities::from_entities(entities, Some(&self.schema)).map_err(|e| AuthzError::Request(e.to_string()))?;
        let request = cedar_policy::Request::new(
            principal_uid,
            action_uid(action)?,
            resource.uid()?,
            Context::empty(),
            Some(&self.schema),
        )
        .map_err(|e| AuthzError::Request(e.to_string()))?;
        let response = self.authorizer.is_authorized(&request, &self.policies, &entities);
        for e in response.diagnostics().errors() {
            tracing::warn!(error = %e, "a policy could not be evaluated and was skipped");
        }
        Ok(response.decision() == Decision::Allow)
    }
}

/// Strict validation against the schema, each problem with its place in `text`.
fn validate(schema: &Schema, policies: &PolicySet, text: &str) -> Vec<String> {
    let result = Validator::new(schema.clone()).validate(policies, ValidationMode::Strict);
    result
        .validation_errors()
        .map(|e| {
            let at = miette::Diagnostic::labels(e)
                .and_then(|mut l| l.next())
                .map(|l| place(text, l.offset()))
                .unwrap_or_default();
            format!("{at}{e}")
        })
        .collect()
}

/// A parse error with the places it names.
fn diagnose(text: &str, e: &cedar_policy::ParseErrors) -> String {
    let at = miette::Diagnostic::labels(e)
        .and_then(|mut l| l.next())
        .map(|l| place(text, l.offset()))
        .unwrap_or_default();
    format!("{at}{e}")
}

/// `line L, column C: ` of a byte offset in `text`.
fn place(text: &str, offset: usize) -> String {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: ")
}

fn parents(organization: &Option<String>) -> Result<HashSet<EntityUid>, AuthzError> {
    organization.iter().map(|o| uid("Organization", o)).collect()
}

fn principal_entity(who: &Principal) -> Result<Entity, AuthzError> {
    let name = ("name".to_string(), RestrictedExpression::new_string(who.name.clone()));
    let (kind, id, extra) = match who.role {
        Role::Admin => ("Admin", who.name.clone(), None),
        Role::Auditor => ("Auditor", who.name.clone(), None),
        Role::Operator => {
            let org = who
                .operator
                .as_deref()
                .ok_or_else(|| AuthzError::Request("an operator principal without an organization".into()))?;
            (
                "Operator",
                format!("{org}/{}", who.name),
                Some((
                    "organization".to_string(),
                    RestrictedExpression::new_entity_uid(uid("Organization", org)?),
                )),
            )
        }
        Role::Reviewer => {
            let orgs = who
                .operator
                .iter()
                .map(|o| uid("Organization", o).map(RestrictedExpression::new_entity_uid))
                .collect::<Result<Vec<_>, _>>()?;
            (
                "Reviewer",
                who.name.clone(),
                Some(("works_for".to_string(), RestrictedExpression::new_set(orgs))),
            )
        }
    };
    let attrs: HashMap<String, RestrictedExpression> = std::iter::once(name).chain(extra).collect();
    Entity::new(uid(kind, &id)?, attrs, HashSet::new()).map_err(|e| AuthzError::Request(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role, name: &str, operator: Option<&str>) -> Principal {
        Principal {
            token_id: "t".into(),
            role,
            name: name.into(),
            operator: operator.map(str::to_string),
        }
    }

    fn output(org: &str, author: Option<&str>) -> Resource {
        Resource::Output {
            id: "j/o".into(),
            organization: Some(org.into()),
            author: author.map(str::to_string),
        }
    }

    #[test]
    fn the_default_policy_validates_against_the_schema() -> Result<(), AuthzError> {
        AccessPolicy::default_policy().map(|_| ())
    }

    #[test]
    fn a_policy_permitting_everything_still_keeps_the_invariants() -> Result<(), AuthzError> {
        let p = AccessPolicy::new("permit (principal, action, resource);")?;
        let op = who(Role::Operator, "li", Some("org-a"));
        let admin = who(Role::Admin, "root", None);
        let reviewer = who(Role::Reviewer, "wang", Some("org-a"));
        let auditor = who(Role::Auditor, "audit", None);
        assert!(!p.allows(&op, Action::ViewOutput, &output("org-a", None))?);
        assert!(!p.allows(&op, Action::ExportLedger, &Resource::Ledger)?);
        // Reports count other organizations' jobs.
        assert!(!p.allows(&op, Action::ViewReports, &Resource::Ledger)?);
        assert!(!p.allows(&admin, Action::Vote, &output("org-b", None))?);
        assert!(!p.allows(&reviewer, Action::Vote, &output("org-a", None))?);
        assert!(!p.allows(&reviewer, Action::ManageTokens, &Resource::Domain)?);
        assert!(!p.allows(&reviewer, Action::ManageAccessPolicy, &Resource::Domain)?);
        assert!(!p.allows(&auditor, Action::Vote, &output("org-b", None))?);
        assert!(!p.allows(&auditor, Action::ManageTokens, &Resource::Domain)?);
        assert!(!p.allows(&auditor, Action::DownloadRelease, &output("org-b", None))?);
        assert!(!p.allows(&auditor, Action::ViewOutput, &output("org-b", None))?);
        assert!(!p.allows(&auditor, Action::ListOutputs, &Resource::Domain)?);
        let job = Resource::Job {
            id: "j".into(),
            organization: Some("org-b".into()),
        };
        assert!(!p.allows(&auditor, Action::ViewSource, &job)?);
        assert!(!p.allows(&reviewer, Action::ApproveComponent, &Resource::Domain)?);
        assert!(!p.allows(&op, Action::ApproveComponent, &Resource::Domain)?);
        let independent = who(Role::Reviewer, "zhao", None);
        assert!(p.allows(&independent, Action::ApproveComponent, &Resource::Domain)?);
        // What the invariants leave to the policy, it permits.
        assert!(p.allows(&reviewer, Action::Vote, &output("org-b", None))?);
        assert!(p.allows(&admin, Action::ManageAccessPolicy, &Resource::Domain)?);
        Ok(())
    }

    #[test]
    fn a_policy_that_names_an_unknown_action_never_takes_effect() {
        let bad = r#"permit (principal, action == Inland::Action::"Exfiltrate", resource);"#;
        assert!(matches!(AccessPolicy::new(bad), Err(AuthzError::Policy(_))));
    }

    #[test]
    fn operators_act_only_on_their_own_organization() -> Result<(), AuthzError> {
        let p = AccessPolicy::default_policy()?;
        let a = who(Role::Operator, "li", Some("org-a"));
        let own = Resource::Grant {
            id: "g-1".into(),
            organization: Some("org-a".into()),
        };
        let other = Resource::Grant {
            id: "g-2".into(),
            organization: Some("org-b".into()),
        };
        let unknown = Resource::Job {
            id: "x".into(),
            organization: None,
        };
        assert!(p.allows(&a, Action::SubmitJob, &own)?);
        assert!(!p.allows(&a, Action::SubmitJob, &other)?);
        assert!(!p.allows(&a, Action::ViewJob, &unknown)?);
        assert!(!p.allows(&a, Action::CancelJob, &unknown)?);
        assert!(p.allows(&a, Action::ListJobs, &Resource::Organization("org-a".into()))?);
        assert!(!p.allows(&a, Action::ListJobs, &Resource::Organization("org-b".into()))?);
        assert!(!p.allows(&a, Action::ListJobs, &Resource::Domain)?);
        assert!(!p.allows(&a, Action::ViewOutput, &output("org-a", None))?);
        assert!(!p.allows(&a, Action::ExportLedger, &Resource::Ledger)?);
        // Released bundles: its own organization's only (the handler describes
        // an unreleased output as belonging to no one).
        assert!(p.allows(&a, Action::DownloadRelease, &output("org-a", None))?);
        assert!(!p.allows(&a, Action::DownloadRelease, &output("org-b", None))?);
        let unowned = Resource::Output {
            id: "j/o".into(),
            organization: None,
            author: None,
        };
        assert!(!p.allows(&a, Action::DownloadRelease, &unowned)?);
        Ok(())
    }

    #[test]
    fn reviewers_never_decide_for_their_organization_nor_on_their_own_request() -> Result<(), AuthzError> {
        let p = AccessPolicy::default_policy()?;
        let r = who(Role::Reviewer, "wang", Some("org-a"));
        assert!(p.allows(&r, Action::Vote, &output("org-b", None))?);
        assert!(p.allows(&r, Action::ViewOutput, &output("org-a", None))?);
        assert!(!p.allows(&r, Action::Vote, &output("org-a", None))?);
        assert!(!p.allows(&r, Action::Vote, &output("org-b", Some("wang")))?);
        let free = who(Role::Reviewer, "zhao", None);
        assert!(p.allows(&free, Action::Vote, &output("org-a", Some("li")))?);
        Ok(())
    }

    #[test]
    fn auditors_read_the_record_only_and_admins_do_not_vote() -> Result<(), AuthzError> {
        let p = AccessPolicy::default_policy()?;
        let au = who(Role::Auditor, "audit", None);
        assert!(p.allows(&au, Action::ExportLedger, &Resource::Ledger)?);
        assert!(!p.allows(&au, Action::ListJobs, &Resource::Domain)?);
        assert!(!p.allows(&au, Action::ViewOutput, &output("org-a", None))?);
        let ad = who(Role::Admin, "root", None);
        assert!(p.allows(&ad, Action::ListJobs, &Resource::Domain)?);
        assert!(!p.allows(&ad, Action::Vote, &output("org-a", None))?);
        assert!(!p.allows(
            &ad,
            Action::SubmitJob,
            &Resource::Grant {
                id: "g".into(),
                organization: Some("org-a".into())
            }
        )?);
        Ok(())
    }
}
