//! Governance: the catalog of datasets (with their uniqueness proofs and the
//! identifier index built from them), operators and grants, and the domain
//! policy with every version kept.

pub(crate) mod catalog;
pub(crate) mod components;
pub(crate) mod id_index;
pub(crate) mod ingest;
pub(crate) mod operators;
pub(crate) mod policy_store;
pub(crate) mod uniqueness;

use crate::context::Inner;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::state::{FEEDBACK, GRANTS, OPERATORS};
use catalog::{DatasetMeta, DatasetRecord, DatasetStatus, Feedback};
use inland_policies::{Diagnostic, Policy};
use operators::{Grant, GrantRequest, Operator, OperatorStatus, OperatorType, Qualification};
use policy_store::PolicyVersion;
use std::path::Path;
use std::sync::Arc;

/// Datasets: registration, proposals and approval (clause 10.3), and operators' feedback on them (10.6).
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

impl Catalog {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Catalog { inner }
    }

    /// Registers a CSV or Parquet file as a dataset.
    pub fn register(&self, name: &str, file: &Path, description: &str) -> Result<DatasetRecord> {
        let meta = DatasetMeta {
            description: description.to_string(),
            ..Default::default()
        };
        self.register_with(name, file, meta)
    }

    /// Registers a dataset with its catalog fields (or, with an owner and
    /// pending status, an operator's proposed social dataset).
    pub fn register_with(&self, name: &str, file: &Path, meta: DatasetMeta) -> Result<DatasetRecord> {
        if let Some(owner) = &meta.owner {
            operators::operator(&self.inner.domain, owner)?;
        }
        let entity_key = match meta.entity {
            Some(_) => Some(self.inner.keys.entity_key()?),
            None => None,
        };
        let record = catalog::register(
            &self.inner.domain,
            self.inner.events.as_ref(),
            name,
            file,
            meta,
            entity_key.as_ref(),
        )?;
        if record.status == DatasetStatus::Approved {
            self.refresh_identifier_index()?;
        }
        Ok(record)
    }

    /// An operator proposes its own dataset for fusion (clause 10.3): stored,
    /// visible to no job until an admin approves it.
    pub fn propose(&self, operator: &str, name: &str, file: &Path, description: &str) -> Result<DatasetRecord> {
        let meta = DatasetMeta {
            description: description.to_string(),
            owner: Some(operator.to_string()),
            status: DatasetStatus::Pending,
            ..Default::default()
        };
        self.register_with(name, file, meta)
    }

    /// Approves a proposed dataset.
    pub fn approve(&self, name: &str) -> Result<DatasetRecord> {
        let record = catalog::approve(&self.inner.domain, self.inner.events.as_ref(), name)?;
        self.refresh_identifier_index()?;
        Ok(record)
    }

    /// Approves a proposed dataset and classifies it in one step: the policy
    /// file must be valid and must classify the dataset, or nothing changes.
    pub fn approve_with_policy(
        &self,
        name: &str,
        policy: &Path,
    ) -> Result<std::result::Result<(DatasetRecord, PolicyVersion), Vec<Diagnostic>>> {
        let checked = match Policies::new(self.inner.clone()).check(policy)? {
            Ok(p) => p,
            Err(problems) => return Ok(Err(problems)),
        };
        if checked.entity(name).is_none() {
            return Err(Error::Invalid(format!(
                "{} does not classify `{name}`: add a [datasets.{name}] section",
                policy.display()
            )));
        }
        let current = catalog::get(&self.inner.domain, name)?;
        if current.status != DatasetStatus::Pending {
            return Err(Error::Invalid(format!("dataset `{name}` is not pending approval")));
        }
        let record = catalog::approve(&self.inner.domain, self.inner.events.as_ref(), name)?;
        match Policies::new(self.inner.clone()).apply(policy)? {
            Ok(version) => Ok(Ok((record, version))),
            Err(problems) => Ok(Err(problems)),
        }
    }

    /// Rebuilds the gate's identifier index when a policy is in force.
    fn refresh_identifier_index(&self) -> Result<()> {
        if let Some((_, p)) = policy_store::load_current(&self.inner.domain)? {
            id_index::rebuild(&self.inner.domain, &p)?;
        }
        Ok(())
    }

    /// Every dataset in the catalog.
    pub fn list(&self) -> Result<Vec<DatasetRecord>> {
        catalog::list(&self.inner.domain)
    }

    /// One dataset.
    pub fn get(&self, name: &str) -> Result<DatasetRecord> {
        catalog::get(&self.inner.domain, name)
    }

    /// Records an operator's data quality report on a dataset (clause 10.6).
    pub fn add_feedback(&self, dataset: &str, operator: &str, text: &str) -> Result<Feedback> {
        catalog::get(&self.inner.domain, dataset)?;
        operators::operator(&self.inner.domain, operator)?;
        if text.trim().is_empty() {
            return Err(Error::Invalid("feedback needs a text".into()));
        }
        let fb = Feedback {
            id: uuid::Uuid::now_v7().to_string(),
            dataset: dataset.to_string(),
            operator: operator.to_string(),
            text: text.to_string(),
            at_ms: inland_files::now_ms(),
        };
        let event = Event::FeedbackAdded {
            id: fb.id.clone(),
            dataset: fb.dataset.clone(),
            operator: fb.operator.clone(),
        };
        let state = &self.inner.domain.state;
        crate::order::announce(state, self.inner.events.as_ref(), event, || {
            state.insert_new(FEEDBACK, &fb.id, &fb, "feedback")
        })?;
        Ok(fb)
    }

    /// Every feedback report, oldest first.
    pub fn feedback(&self) -> Result<Vec<Feedback>> {
        self.inner.domain.state.list(FEEDBACK)
    }
}

/// Operators and grants: who may operate which data, for what, until when.
#[derive(Clone)]
pub struct Governance {
    inner: Arc<Inner>,
}

impl Governance {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Governance { inner }
    }

    /// Registers an operator (pending until approved).
    pub fn add_operator(&self, name: &str, kind: OperatorType, qualifications: Vec<Qualification>) -> Result<Operator> {
        operators::add_operator(
            &self.inner.domain,
            self.inner.events.as_ref(),
            name,
            kind,
            qualifications,
        )
    }

    /// Approves or suspends an operator.
    pub fn set_operator_status(&self, name: &str, status: OperatorStatus, reason: Option<String>) -> Result<Operator> {
        operators::set_operator_status(&self.inner.domain, self.inner.events.as_ref(), name, status, reason)
    }

    /// One operator.
    pub fn operator(&self, name: &str) -> Result<Operator> {
        operators::operator(&self.inner.domain, name)
    }

    /// Every operator.
    pub fn operators(&self) -> Result<Vec<Operator>> {
        self.inner.domain.state.list(OPERATORS)
    }

    /// Issues a grant after checking operator, datasets and term.
    pub fn issue_grant(&self, request: GrantRequest) -> Result<Grant> {
        operators::issue_grant(
            &self.inner.domain,
            &self.inner.keys,
            self.inner.events.as_ref(),
            request,
        )
    }

    /// One grant.
    pub fn grant(&self, id: &str) -> Result<Grant> {
        operators::grant(&self.inner.domain, id)
    }

    /// Approves a component by the SHA-256 of its bytes, so it may run under
    /// grants that require approved components; each hash is approved once.
    pub fn approve_component(&self, sha256: &str, by: &str, note: &str) -> Result<components::ComponentApproval> {
        components::approve(&self.inner.domain, self.inner.events.as_ref(), sha256, by, note)
    }

    /// Withdraws a component's approval (a bad component found, an
    /// approver's token stolen): its next job under a grant that requires
    /// approval is refused.
    pub fn revoke_component_approval(&self, sha256: &str, by: &str, note: &str) -> Result<()> {
        components::revoke(&self.inner.domain, self.inner.events.as_ref(), sha256, by, note)
    }

    /// The approval of a component, if it has one.
    pub fn component_approval(&self, sha256: &str) -> Result<Option<components::ComponentApproval>> {
        components::approval(&self.inner.domain, sha256)
    }

    /// Every grant.
    pub fn grants(&self) -> Result<Vec<Grant>> {
        self.inner.domain.state.list(GRANTS)
    }

    /// Replaces the domain's master key, re-wrapping every grant key.
    pub fn rotate_master_key(&self) -> Result<usize> {
        let inner = &self.inner;
        // The event before the commit point; a stop between the two is
        // undone by the key store and rolled back in the ledger at start.
        let _changing = inner.domain.state.changing();
        inner.keys.rotate_master_announced(|n, key_tag| {
            inner
                .events
                .record(Event::MasterKeyRotated {
                    grant_keys: n as u64,
                    key_tag,
                })
                .map(|_| ())
        })
    }
}

/// The domain policy: checked against the catalog, applied atomically, every version kept.
#[derive(Clone)]
pub struct Policies {
    inner: Arc<Inner>,
}

impl Policies {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Policies { inner }
    }

    /// Checks a policy file against the catalog: the policy, or every problem with its place.
    pub fn check(&self, path: &Path) -> Result<std::result::Result<Policy, Vec<Diagnostic>>> {
        policy_store::check(&self.inner.domain, path)
    }

    /// Notes on a valid policy file that only cost calls for: records whose
    /// entity column the policy names but whose rows are not stored keyed
    /// by it (`dataset add --entity`). Empty for a file with problems.
    pub fn layout_notes(&self, path: &Path) -> Result<Vec<Diagnostic>> {
        policy_store::layout_notes(&self.inner.domain, path)
    }

    /// Applies a policy file if it is valid; a file with problems changes nothing.
    pub fn apply(&self, path: &Path) -> Result<std::result::Result<PolicyVersion, Vec<Diagnostic>>> {
        policy_store::apply(&self.inner.domain, self.inner.events.as_ref(), path)
    }

    /// Applies policy `text` (named `name` in its problems) if it is valid,
    /// as [`Policies::apply`] does a file: for a policy sent to the server.
    pub fn apply_text(&self, text: &str, name: &str) -> Result<std::result::Result<PolicyVersion, Vec<Diagnostic>>> {
        policy_store::apply_text(&self.inner.domain, self.inner.events.as_ref(), text, name)
    }

    /// The policy in force, parsed and checked against today's catalog: what
    /// the console shows of each dataset's columns.
    pub fn in_force(&self) -> Result<Option<(PolicyVersion, Policy)>> {
        policy_store::load_current(&self.inner.domain)
    }

    /// Every applied policy version, oldest first, and the text of the one in force.
    pub fn versions(&self) -> Result<(Vec<PolicyVersion>, Option<String>)> {
        let versions = policy_store::versions(&self.inner.domain)?;
        let text = match policy_store::current(&self.inner.domain)? {
            Some(v) => {
                let path = self.inner.domain.root().join(&v.file);
                Some(std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?)
            }
            None => None,
        };
        Ok((versions, text))
    }
}
