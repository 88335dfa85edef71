//! Evidence for auditors and regulators: the ledger the domain records
//! into, the usage and compliance reports computed from it, and the public
//! catalog (names and descriptions, never data).

pub(crate) mod made;
pub(crate) mod publication;
pub(crate) mod state_check;

use crate::context::Inner;
use crate::date::Date;
use crate::error::{Error, Result};
use crate::events::{Event, EventRecord};
use crate::governance::Catalog;
use crate::governance::catalog::DatasetStatus;
use crate::ledger::EventLedger;
use publication::{ComplianceLine, UsageReport};
use std::path::Path;
use std::sync::Arc;

/// What auditors and regulators read: the ledger, the reports computed from it, and the public catalog.
#[derive(Clone)]
pub struct Evidence {
    inner: Arc<Inner>,
}

impl Evidence {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Evidence { inner }
    }

    /// The keyed digest the ledger names a text or content hash by, for
    /// those inside the domain to match a job's SQL, error or output to its
    /// entries (the key never leaves the domain).
    pub fn digest_of(&self, text: &str) -> String {
        self.inner.text_digest().of(text)
    }

    /// The evidence ledger, when the runtime records into one.
    pub fn ledger(&self) -> Option<Arc<EventLedger>> {
        self.inner.ledger.clone()
    }

    fn ledger_entries(&self) -> Result<Vec<EventRecord>> {
        self.ledger()
            .ok_or_else(|| Error::Invalid("reports are computed from the ledger, and this runtime has none".into()))?
            .entries()
    }

    /// The entries whose change happened, for reports.
    fn effective_entries(&self) -> Result<Vec<EventRecord>> {
        self.ledger()
            .ok_or_else(|| Error::Invalid("reports are computed from the ledger, and this runtime has none".into()))?
            .effective_entries()
    }

    /// Usage over a period, for one operator or all, computed from the ledger.
    pub fn usage_report(&self, operator: Option<&str>, from: Date, until: Date) -> Result<UsageReport> {
        Ok(publication::usage(&self.effective_entries()?, operator, from, until))
    }

    /// Each clause of the standard, its control, and the evidence for the
    /// period; the last line is the state check, run now.
    pub fn compliance_report(&self, from: Date, until: Date) -> Result<Vec<ComplianceLine>> {
        let ok = self
            .ledger()
            .map(|l| l.verify().map(|r| r.problem.is_none()))
            .transpose()?
            .unwrap_or(false);
        let entries = self.effective_entries()?;
        let check = self.check_state()?;
        let mut lines = publication::compliance(&entries, from, until, ok);
        lines.push(ComplianceLine {
            clause: "9.5".into(),
            requirement: "evidence of the whole process: nothing done without its record".into(),
            control: "the state check compares every job, grant, dataset, output and privacy budget with the ledger"
                .into(),
            evidence: if check.clean() {
                format!(
                    "state and ledger agree ({} records compared)",
                    check.checked.values().sum::<u64>()
                )
            } else {
                format!(
                    "{} difference(s) between state and ledger: run `inland ledger check-state`",
                    check.differences.len()
                )
            },
        });
        Ok(lines)
    }

    /// What the start-up pass finished or rolled back when this domain was
    /// opened: `inland doctor` shows it, so no repair is silent.
    pub fn start_up_recovery(&self) -> crate::recovery::Recovery {
        self.inner.recovery.get().cloned().unwrap_or_default()
    }

    /// Compares the domain's state with its ledger: every record has the
    /// event that announced it and every announcing event its record.
    pub fn check_state(&self) -> Result<state_check::StateCheck> {
        state_check::check(&self.inner, || self.ledger_entries())
    }

    /// Publishes the catalog of operable datasets (JSON and HTML, no data) into `dir`.
    pub fn publish_catalog(&self, dir: &Path) -> Result<Vec<String>> {
        let datasets = Catalog::new(self.inner.clone()).list()?;
        let policies = crate::governance::Policies::new(self.inner.clone());
        let in_force = policies.in_force()?;
        let text = policies.versions()?.1;
        let policy = in_force.as_ref().zip(text.as_deref()).map(|((_, p), t)| (p, t));
        let bytes = publication::write_catalog(&datasets, &self.inner.domain.config().name, policy, dir)?;
        let listed: Vec<String> = datasets
            .iter()
            .filter(|d| d.status == DatasetStatus::Approved && d.owner.is_none())
            .map(|d| d.name.clone())
            .collect();
        self.inner.events.record(Event::CatalogPublished {
            datasets: listed.clone(),
            sha256: inland_files::sha256_hex(&bytes),
        })?;
        Ok(listed)
    }
}
