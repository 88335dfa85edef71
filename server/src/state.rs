//! What every handler shares: the runtime, the access policy, the jobs
//! submitted and not yet recorded, and the two steps each request takes
//! through them (a blocking call into the domain; one authorization).

use crate::authz::{AccessPolicy, Action, Resource};
use crate::problem::Problem;
use inland_runtime::{Principal, Runtime};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

/// A job accepted by the server whose record the runtime has not written yet.
#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    /// The organization that submitted it.
    pub(crate) organization: String,
    /// The grant named.
    pub(crate) grant: String,
    /// The domain failed while running it (no record will appear).
    pub(crate) lost: bool,
    /// Woken when it ends, for views that wait for that (`?wait=`).
    pub(crate) done: std::sync::Arc<tokio::sync::Notify>,
}

/// Views waiting for a job to end (`?wait=`), counted per organization or
/// person: each holds a connection, so one caller may hold only a few.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    counts: Mutex<BTreeMap<String, usize>>,
}

impl Waiters {
    /// A place among `who`'s waiting views, if fewer than `most` are taken.
    pub(crate) fn slot(self: &Arc<Self>, who: &str, most: usize) -> Option<WaitSlot> {
        let mut m = self.counts.lock().ok()?;
        let n = m.entry(who.to_string()).or_insert(0);
        if *n >= most {
            return None;
        }
        *n += 1;
        Some(WaitSlot {
            waiters: self.clone(),
            who: who.to_string(),
        })
    }
}

/// One waiting view's place, given back when the view answers.
pub(crate) struct WaitSlot {
    waiters: Arc<Waiters>,
    who: String,
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.waiters.counts.lock()
            && let Some(n) = m.get_mut(&self.who)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.who);
            }
        }
    }
}

/// The server's shared state.
pub(crate) struct AppState {
    pub(crate) runtime: Runtime,
    /// The access policy in force and its version (0: the shipped default);
    /// an admin may replace it while the server runs.
    pub(crate) policy: RwLock<(u64, Arc<AccessPolicy>)>,
    pub(crate) inflight: Mutex<BTreeMap<String, InFlight>>,
    /// Views waiting for a job to end.
    pub(crate) waiting: Arc<Waiters>,
    /// The largest component accepted, in bytes.
    pub(crate) module_limit: u64,
    /// Jobs one organization may have queued or running (twice the domain's
    /// job slots); the domain as a whole holds twice as many again.
    pub(crate) inflight_per_organization: usize,
    /// Held across storing a new access policy and putting it in force, so
    /// the policy in force is always the last one stored.
    pub(crate) policy_change: tokio::sync::Mutex<()>,
    /// Source archives being read at once: each may hold the component
    /// limit in memory, so only a few are read at a time.
    pub(crate) uploads: tokio::sync::Semaphore,
    /// The console's signed-in sessions.
    pub(crate) console: crate::console::session::Sessions,
    /// Served over TLS: the console's cookies are `Secure`.
    pub(crate) tls: bool,
}

pub(crate) type Shared = Arc<AppState>;

impl AppState {
    /// Runs `f` on a blocking thread: the domain's calls touch files and the state database.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Runtime) -> T + Send + 'static,
    ) -> Result<T, Problem> {
        let rt = self.runtime.clone();
        tokio::task::spawn_blocking(move || f(rt))
            .await
            .map_err(|e| Problem::log_internal(&e))
    }

    /// The one authorization of a request. A denial is recorded in the
    /// ledger (who, what, on what) before it is answered; if it cannot be
    /// recorded the request fails closed.
    pub(crate) async fn authorize(&self, who: &Principal, action: Action, resource: Resource) -> Result<(), Problem> {
        let policy = self.policy().1;
        match policy.allows(who, action, &resource) {
            Ok(true) => Ok(()),
            Ok(false) => {
                let (who, described) = (who.clone(), resource.describe());
                tracing::info!(token = %who.token_id, action = action.name(), resource = %described, "access denied");
                self.blocking(move |rt| rt.access().record_denial(&who, action.name(), &described))
                    .await?
                    .map_err(|e| Problem::log_internal(&e))?;
                Err(Problem::forbidden(action.name()))
            }
            Err(e) => Err(Problem::log_internal(&e)),
        }
    }

    /// The access policy in force, and its version.
    pub(crate) fn policy(&self) -> (u64, Arc<AccessPolicy>) {
        match self.policy.read() {
            Ok(p) => (p.0, p.1.clone()),
            Err(poisoned) => {
                let p = poisoned.into_inner();
                (p.0, p.1.clone())
            }
        }
    }

    /// Puts a new access policy in force.
    pub(crate) fn set_policy(&self, version: u64, policy: AccessPolicy) {
        let mut p = match self.policy.write() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        *p = (version, Arc::new(policy));
    }

    /// The jobs in flight (a copy).
    pub(crate) fn inflight(&self) -> BTreeMap<String, InFlight> {
        self.inflight.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One caller holds at most `most` waiting views; a view that answers
    /// gives its place back, and other callers are not affected.
    #[test]
    fn waiting_views_are_bounded_per_caller_and_given_back() {
        let w = Arc::new(Waiters::default());
        let held: Vec<WaitSlot> = (0..3).filter_map(|_| w.slot("org-a", 3)).collect();
        assert_eq!(held.len(), 3);
        assert!(w.slot("org-a", 3).is_none());
        assert!(w.slot("org-b", 3).is_some());
        drop(held);
        assert!(w.slot("org-a", 3).is_some());
        assert!(w.counts.lock().unwrap().is_empty());
    }
}
