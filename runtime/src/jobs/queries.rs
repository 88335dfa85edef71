//! The query side of a running job, as the sandbox reaches it: each SQL
//! string is planned, checked and executed by the engine under the grant's
//! policy, recorded as an event, and remembered for the job's record and its
//! outputs' lineage (label, facts for the gate).

use crate::events::{Event, EventSink, TextDigest};
use crate::release::output::QueryRecord;
use async_trait::async_trait;
use datafusion::common::ScalarValue;
use datafusion::common::runtime::SpawnedTask;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};
use inland_gate::FactIndex;
use inland_policies::Label;
use inland_query::{DatasetSource, PrivacyCost, QueryEngine, QueryError, QueryScope, RunError};
use inland_sandbox::{Answer, Bound, DatasetListing, QueryBackend, QueryFailure};
use std::sync::{Arc, Mutex, MutexGuard};

/// What a job's queries left behind: their records, the job's label (the
/// highest it has read) and the facts behind every aggregate value it got.
#[derive(Debug, Default)]
pub(crate) struct QueryTrail {
    pub(crate) queries: Vec<QueryRecord>,
    pub(crate) label: Option<(Label, String)>,
    pub(crate) facts: FactIndex,
    /// The engine's own messages of queries that failed over the data, by
    /// query index: they may quote values, so they are sealed, never shown.
    pub(crate) sealed_errors: Vec<(usize, String)>,
}

/// Why a query got no answer: a plan-level refusal or error (shown as it
/// is), or a failure while it ran over the data (shown without the engine's text).
enum Failed {
    Plan(QueryError),
    Run(RunError),
}

fn lock(trail: &Mutex<QueryTrail>) -> MutexGuard<'_, QueryTrail> {
    // A poisoned lock still holds a consistent trail: every update is one push or add.
    trail.lock().unwrap_or_else(|p| p.into_inner())
}

/// A `dp` grant's budget, charged by the job's queries.
pub(crate) struct Account {
    pub(crate) inner: Arc<crate::context::Inner>,
    pub(crate) grant: crate::governance::operators::Grant,
    pub(crate) budget: crate::privacy::DpBudget,
}

impl Account {
    /// Charges a planned query's cost, or refuses it naming what is left.
    fn charge(&self, job_id: &str, cost: &PrivacyCost) -> Result<(), QueryError> {
        match super::budget::charge(
            &self.inner.domain.state,
            self.inner.events.as_ref(),
            &self.grant,
            &self.budget,
            job_id,
            cost,
        ) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(QueryError::refused("privacy-budget", why)),
            Err(e) => Err(QueryError::Internal(format!(
                "the privacy budget could not be charged: {e}"
            ))),
        }
    }
}

/// One job's queries against the engine, under its grant's scope.
pub(crate) struct JobQueries {
    job_id: String,
    engine: Arc<QueryEngine>,
    session: SessionContext,
    scope: QueryScope,
    listing: Vec<DatasetListing>,
    events: Arc<dyn EventSink>,
    /// Names the job's texts in the events.
    digest: TextDigest,
    trail: Arc<Mutex<QueryTrail>>,
    /// The grant's budget, in the `dp` mode.
    account: Option<Arc<Account>>,
}

impl JobQueries {
    pub(crate) fn new(
        job_id: String,
        engine: Arc<QueryEngine>,
        session: SessionContext,
        scope: QueryScope,
        datasets: &[(DatasetSource, String)],
        events: Arc<dyn EventSink>,
        digest: TextDigest,
    ) -> Self {
        let listing = datasets
            .iter()
            .map(|(d, description)| DatasetListing {
                name: d.name.clone(),
                description: description.clone(),
                columns: d
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), c.data_type.clone(), c.nullable))
                    .collect(),
            })
            .collect();
        JobQueries {
            job_id,
            engine,
            session,
            scope,
            listing,
            events,
            digest,
            trail: Arc::new(Mutex::new(QueryTrail::default())),
            account: None,
        }
    }

    /// Charges `dp` queries to the grant's budget before they run.
    pub(crate) fn with_account(mut self, account: Option<Account>) -> Self {
        self.account = account.map(Arc::new);
        self
    }

    fn trail(&self) -> MutexGuard<'_, QueryTrail> {
        lock(&self.trail)
    }

    /// What the queries left, once the job has ended.
    pub(crate) fn into_trail(self) -> QueryTrail {
        // A stream the job never dropped may still hold the trail: take what it holds.
        std::mem::take(&mut *lock(&self.trail))
    }

    fn failure(e: QueryError) -> QueryFailure {
        match e {
            QueryError::Refused { .. } => QueryFailure::Refused(e.to_string()),
            QueryError::Invalid(m) => QueryFailure::Invalid(m),
            QueryError::Limit(m) => QueryFailure::Limit(m),
            QueryError::Internal(m) => QueryFailure::Internal(m),
            other => QueryFailure::Internal(other.to_string()),
        }
    }
}

/// A bound value as DataFusion takes it.
fn scalar(v: &Bound) -> ScalarValue {
    match v {
        Bound::Null => ScalarValue::Null,
        Bound::Boolean(b) => ScalarValue::Boolean(Some(*b)),
        Bound::Integer(i) => ScalarValue::Int64(Some(*i)),
        Bound::Float(f) => ScalarValue::Float64(Some(*f)),
        Bound::Text(s) => ScalarValue::Utf8(Some(s.clone())),
    }
}

/// A query as its record keeps it: the SQL and, after it, one comment line
/// per bound value (reviewers see what ran; the ledger digests all of it).
fn recorded_text(sql: &str, params: &[(String, Bound)]) -> String {
    let mut text = sql.to_string();
    for (name, value) in params {
        // Typed, so that `int 5` and `float 5` read apart; text quoted with
        // its line breaks and control characters escaped.
        let shown = match value {
            Bound::Null => "null".to_string(),
            Bound::Boolean(b) => format!("bool {b}"),
            Bound::Integer(i) => format!("int {i}"),
            Bound::Float(f) => format!("float {f:?}"),
            Bound::Text(s) => format!("text {s:?}"),
        };
        text.push_str(&format!("\n-- ${name} = {shown}"));
    }
    text
}

#[async_trait]
impl QueryBackend for JobQueries {
    fn datasets(&self) -> Vec<DatasetListing> {
        self.listing.clone()
    }

    async fn start(&self, sql: &str, params: &[(String, Bound)]) -> Result<Result<Answer, QueryFailure>, String> {
        // What reviewers read and the ledger digests: the SQL, then each bound value.
        let recorded = recorded_text(sql, params);
        let (original, sql) = (sql, recorded.as_str());
        let bound: Vec<(String, ScalarValue)> = params.iter().map(|(k, v)| (k.clone(), scalar(v))).collect();
        // Planned and started on the query runtime, not on the job's fiber:
        // DataFusion's planner recurses deeply under a stack guard made for
        // thread stacks, and on the fiber it ran 3x slower (TPC-H Q10: 50 ms
        // to plan in the sandbox, 16 ms here).
        let (engine, session, scope, text) = (
            self.engine.clone(),
            self.session.clone(),
            self.scope.clone(),
            original.to_string(),
        );
        let (account, job_id) = (self.account.clone(), self.job_id.clone());
        let outcome = SpawnedTask::spawn(async move {
            // Planning reads no data: its errors name the SQL and the rules.
            let planned = engine
                .plan_bound(&session, &scope, &text, bound)
                .await
                .map_err(Failed::Plan)?;
            // A noisy release is paid for before it runs; one the budget
            // cannot cover is refused and costs nothing.
            match (&planned.privacy, &account) {
                (Some(cost), Some(account)) => account.charge(&job_id, cost).map_err(Failed::Plan)?,
                (Some(_), None) => {
                    return Err(Failed::Plan(QueryError::Internal(
                        "a dp query without a budget to charge".into(),
                    )));
                }
                _ => {}
            }
            // From here on the engine touches data, and its messages may quote it.
            let stream = engine.execute(&session, &planned).await.map_err(|e| {
                Failed::Run(RunError {
                    shown: QueryError::Invalid(
                        "the query could not be started over the data; the engine's message is kept sealed \
                         for the reviewers"
                            .into(),
                    ),
                    original: e.to_string(),
                })
            })?;
            // The sandbox bounds this whole call by the job's deadline.
            if let Some(cost) = planned.privacy.clone() {
                // A noisy release is read whole (it is small) so that its
                // values are known to the gate before the job sees them; a
                // failure says nothing about why.
                let schema = stream.schema();
                let batches: Vec<_> = stream.try_collect().await.map_err(|e: DataFusionError| {
                    Failed::Run(RunError {
                        shown: QueryError::Invalid(
                            "the query failed while it ran over the data; in the dp mode the host says nothing \
                             more about why"
                                .into(),
                        ),
                        original: e.to_string(),
                    })
                })?;
                let memory =
                    MemoryStream::try_new(batches, schema, None).map_err(|e| Failed::Run(RunError::internal(e)))?;
                let stream: SendableRecordBatchStream = Box::pin(memory);
                return Ok::<_, Failed>((planned, stream, cost.facts.take()));
            }
            match planned.suppress_below {
                Some(k) => {
                    let (stream, notice, facts) =
                        inland_query::suppress(stream, k, planned.cells.as_ref(), planned.suppressed.clone())
                            .await
                            .map_err(Failed::Run)?;
                    let mut planned = planned;
                    planned.notices.extend(notice);
                    Ok::<_, Failed>((planned, stream, facts))
                }
                None => Ok((planned, stream, Vec::new())),
            }
        })
        .join()
        .await
        // A panic's message may quote the value it failed on: sealed, like any run error.
        .map_err(|e| {
            Failed::Run(RunError {
                shown: QueryError::Internal(
                    "the query task failed (a bug in Inland); its message is kept sealed".into(),
                ),
                original: format!("the query task failed: {e}"),
            })
        })
        .and_then(|r| r);
        match outcome {
            Ok((planned, stream, facts)) => {
                self.events
                    .record(Event::QueryRun {
                        job_id: self.job_id.clone(),
                        sql_hmac: self.digest.of(sql),
                        plan_hash: self.digest.of(&planned.plan_hash),
                        label: planned.label.as_ref().map(|(l, _)| *l),
                    })
                    .map_err(|e| e.to_string())?;
                let mut trail = self.trail();
                if let Some((l, why)) = &planned.label
                    && trail.label.as_ref().is_none_or(|(have, _)| l > have)
                {
                    // A job's label is the highest it has read; it never goes down.
                    trail.label = Some((*l, why.clone()));
                }
                let query = trail.queries.len() as u32;
                trail.facts.add_result(query, facts);
                trail.queries.push(QueryRecord {
                    sql: sql.to_string(),
                    plan_hash: Some(planned.plan_hash),
                    rows: 0,
                    error: None,
                    label: planned.label.as_ref().map(|(l, _)| *l),
                    rho: planned.privacy.as_ref().map(|c| c.rho),
                });
                let index = trail.queries.len() - 1;
                let schema = stream.schema();
                let kept = self.trail.clone();
                let batches = stream
                    .map(move |b| {
                        b.map_err(|e| {
                            let run = RunError::from_execution(&e);
                            let mut trail = lock(&kept);
                            if let Some(q) = trail.queries.get_mut(index) {
                                q.error = Some(run.shown.to_string());
                            }
                            trail.sealed_errors.push((index, run.original));
                            Self::failure(run.shown)
                        })
                    })
                    .boxed();
                Ok(Ok(Answer {
                    schema,
                    batches,
                    notices: planned.notices,
                    index,
                }))
            }
            Err(failed) => {
                let e = match failed {
                    Failed::Plan(e) => e,
                    Failed::Run(run) => {
                        let mut trail = self.trail();
                        let index = trail.queries.len();
                        trail.sealed_errors.push((index, run.original));
                        run.shown
                    }
                };
                if let QueryError::Refused { rule, message } = &e {
                    self.events
                        .record(Event::QueryRefused {
                            job_id: self.job_id.clone(),
                            sql_hmac: self.digest.of(sql),
                            rule: rule.clone(),
                            message_hmac: self.digest.of(message),
                        })
                        .map_err(|e| e.to_string())?;
                }
                self.trail().queries.push(QueryRecord {
                    sql: sql.to_string(),
                    plan_hash: None,
                    rows: 0,
                    error: Some(e.to_string()),
                    label: None,
                    rho: None,
                });
                Ok(Err(Self::failure(e)))
            }
        }
    }

    fn rows_read(&self, index: usize, rows: u64) {
        if let Some(q) = self.trail().queries.get_mut(index) {
            q.rows += rows;
        }
    }
}
