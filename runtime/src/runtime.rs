//! The facade: an open domain, handing each caller the one service it needs
//! — the CLI today, the server next — rather than one object that can do
//! everything.

use crate::access::Access;
use crate::context::Inner;
use crate::domain::Domain;
use crate::error::Result;
use crate::events::EventSink;
use crate::evidence::Evidence;
use crate::governance::{Catalog, Governance, Policies};
use crate::jobs::Jobs;
use crate::keys::KeyStore;
use crate::ledger::{EventLedger, KEY_FILE};
use crate::release::{Reviews, ensure_release_index};
use inland_query::QueryEngine;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// An open domain with its sandbox and query engine. Cheap to clone; jobs run concurrently.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Runtime {
    /// The shared context, for the crate's own tests.
    #[cfg(test)]
    pub(crate) fn inner_for_tests(&self) -> Arc<Inner> {
        self.inner.clone()
    }

    /// Opens the domain at `root`, recording every event in its evidence ledger.
    pub fn open(root: &Path) -> Result<Runtime> {
        let domain = Domain::open(root)?;
        let ledger = Arc::new(EventLedger::open(
            &domain.dir("ledger"),
            &domain.dir("keys").join(KEY_FILE),
        )?);
        Runtime::build(domain, ledger.clone(), Some(ledger))
    }

    /// Opens a domain that sends events to another sink instead of its ledger
    /// (for embedders that keep evidence elsewhere, and for tests).
    pub fn with_sink(domain: Domain, events: Arc<dyn EventSink>) -> Result<Runtime> {
        Runtime::build(domain, events, None)
    }

    fn build(domain: Domain, events: Arc<dyn EventSink>, ledger: Option<Arc<EventLedger>>) -> Result<Runtime> {
        ensure_release_index(&domain.state)?;
        let limits = domain.config().limits.clone();
        let keys = KeyStore::open(&domain.dir("keys"))?;
        let engine = Arc::new(QueryEngine::new((limits.query_memory_mib << 20) as usize)?);
        let runtime = Runtime {
            inner: Arc::new(Inner {
                terminations: Default::default(),
                slots: Semaphore::new(limits.max_concurrent_jobs as usize),
                domain,
                sandbox: Default::default(),
                sandbox_start: Default::default(),
                engine,
                events,
                ledger,
                keys,
                running: Default::default(),
                review_lock: Default::default(),
                recovery: Default::default(),
            }),
        };
        // What a stop left half done is finished or rolled back before anything else runs.
        let recovery = crate::jobs::recover::at_start(&runtime.inner)?;
        let _ = runtime.inner.recovery.set(recovery);
        Ok(runtime)
    }

    /// The domain.
    pub fn domain(&self) -> &Domain {
        &self.inner.domain
    }

    /// Datasets and feedback on them (admins; operators propose).
    pub fn catalog(&self) -> Catalog {
        Catalog::new(self.inner.clone())
    }

    /// Operators and grants (admins).
    pub fn governance(&self) -> Governance {
        Governance::new(self.inner.clone())
    }

    /// The domain policy (admins).
    pub fn policies(&self) -> Policies {
        Policies::new(self.inner.clone())
    }

    /// Jobs: submit, list, stop (operators submit; admins terminate grants).
    pub fn jobs(&self) -> Jobs {
        Jobs::new(self.inner.clone())
    }

    /// Outputs, reviews, releases and exports (reviewers).
    pub fn reviews(&self) -> Reviews {
        Reviews::new(self.inner.clone())
    }

    /// Tokens and who they prove (admins issue; the server verifies every request).
    pub fn access(&self) -> Access {
        Access::new(self.inner.clone())
    }

    /// The ledger and reports (auditors).
    pub fn evidence(&self) -> Evidence {
        Evidence::new(self.inner.clone())
    }
}
