//! What every service of an open domain shares: the domain, its sandbox,
//! query engine, event sink, keys, the jobs running now and the review lock.
//! The services are narrow views over it.

use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::events::EventSink;
use crate::keys::KeyStore;
use crate::ledger::EventLedger;
use inland_query::QueryEngine;
use inland_sandbox::Sandbox;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Semaphore;

/// Jobs running now: id -> (grant, the flag that stops it).
pub(crate) type Running = HashMap<String, (String, Arc<AtomicBool>)>;

/// The state one open domain's services share.
pub(crate) struct Inner {
    pub(crate) domain: Domain,
    /// Started by the first job (see [`Inner::sandbox`]).
    pub(crate) sandbox: std::sync::OnceLock<Sandbox>,
    pub(crate) sandbox_start: Mutex<()>,
    pub(crate) engine: Arc<QueryEngine>,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) ledger: Option<Arc<EventLedger>>,
    pub(crate) keys: KeyStore,
    /// Running jobs: id -> (grant, cancel flag).
    pub(crate) running: Mutex<Running>,
    pub(crate) slots: Semaphore,
    /// Serializes review decisions and exports (read-modify-write of output records).
    pub(crate) review_lock: Mutex<()>,
    /// One grant termination at a time: a second request for the same grant
    /// (a reload, a double click) waits and then finds it terminated.
    pub(crate) terminations: tokio::sync::Mutex<()>,
    /// What the start-up pass finished or rolled back when this runtime opened.
    pub(crate) recovery: std::sync::OnceLock<crate::recovery::Recovery>,
}

impl Inner {
    /// The sandbox, started the first time a job needs it: bootstrap and
    /// admin commands (registering a dataset, issuing a grant) never reserve
    /// wasmtime's pools, which count against a process's memory limits.
    pub(crate) fn sandbox(&self) -> std::result::Result<&Sandbox, inland_sandbox::JobError> {
        if let Some(s) = self.sandbox.get() {
            return Ok(s);
        }
        // One start at a time: two would each reserve the pools.
        let _one = self.sandbox_start.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = self.sandbox.get() {
            return Ok(s);
        }
        let made = Sandbox::new(
            &self.domain.config().limits,
            self.domain.dir("cache"),
            self.domain.derived_key("component-cache"),
        )
        .map_err(|e| inland_sandbox::JobError::Busy {
            message: format!("the sandbox could not start: {e}"),
        })?;
        Ok(self.sandbox.get_or_init(|| made))
    }

    /// How the ledger names texts and content a job chose.
    pub(crate) fn text_digest(&self) -> crate::events::TextDigest {
        crate::events::TextDigest::new(&self.domain.derived_key(crate::events::TextDigest::PURPOSE))
    }

    /// Signs a ledger checkpoint, if the domain records into a ledger.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        if let Some(l) = &self.ledger {
            l.checkpoint()?;
        }
        Ok(())
    }

    /// The running-jobs registry.
    pub(crate) fn running(&self) -> Result<MutexGuard<'_, Running>> {
        self.running
            .lock()
            .map_err(|_| Error::Internal("job registry poisoned".into()))
    }
}
