//! The one ordering rule of every state change and its evidence (#24).
//!
//! 1. Everything that can refuse is checked first; nothing is written.
//! 2. The announcing event is appended to the ledger and synced.
//! 3. The state change is made, in one transaction of the state database.
//! 4. Only then is the operation reported done.
//!
//! A change that fails at 3 is followed at once by [`Event::NotMade`]
//! naming the announcing entry. A crash between 2 and 3 leaves an event
//! whose change the state lacks: start-up (`jobs::recover`) finds it with
//! the predicate of `evidence::made` and rolls it back with the same event. A crash
//! before 2 leaves nothing (files written ahead of the event, like a
//! dataset's Parquet, are invisible until the state names them, and
//! start-up deletes them). So neither side ever holds what the other lacks
//! once start-up is done, and an operation reported done is in both.
//!
//! Long operations (a job, a grant's termination) are announced when they
//! begin and closed by a second event when they end; start-up closes the
//! ones a stop left open.

use crate::error::{Error, Result};
use crate::events::{Event, EventSink};
use crate::state::State;

/// Appends `event`, then makes `change`: the rule above. Holds the state's
/// change guard throughout: announced changes commit in the order of their
/// events, and the state check never sees the gap. `change` must not
/// announce (the guard is not reentrant).
pub(crate) fn announce<T>(
    state: &State,
    events: &dyn EventSink,
    event: Event,
    change: impl FnOnce() -> Result<T>,
) -> Result<T> {
    announce_all(state, events, vec![event], change)
}

/// [`announce`] for a change that several events announce together (a vote
/// and the decision it makes).
pub(crate) fn announce_all<T>(
    state: &State,
    events: &dyn EventSink,
    announcing: Vec<Event>,
    change: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let _changing = state.changing();
    let mut entries = Vec::with_capacity(announcing.len());
    for event in announcing {
        match events.record(event) {
            Ok(entry) => entries.push(entry),
            Err(e) => {
                // The ones already appended announce a change not made.
                for entry in entries {
                    events.record(Event::NotMade {
                        entry,
                        reason: format!("failed: {}", kind(&e)),
                    })?;
                }
                return Err(e);
            }
        }
    }
    inland_files::crash_point("announced");
    match change() {
        Ok(done) => Ok(done),
        Err(e) => {
            for entry in entries {
                events.record(Event::NotMade {
                    entry,
                    reason: format!("failed: {}", kind(&e)),
                })?;
            }
            Err(e)
        }
    }
}

/// What kind of failure stopped a change, without its text: a message may
/// quote what the change was about, and the ledger leaves the domain.
pub(crate) fn kind(e: &Error) -> &'static str {
    match e {
        Error::Invalid(_) => "invalid",
        Error::NotFound(_) => "not found",
        Error::Refused(_) => "refused",
        Error::Exists(_) => "exists",
        Error::Job(_) => "job",
        Error::Query(_) => "query",
        Error::Sandbox(_) => "sandbox",
        Error::Io { .. } => "i/o",
        Error::Database(_) => "state database",
        Error::InUse(_) => "in use",
        Error::Ledger(_) => "ledger",
        Error::Damaged { .. } => "damaged",
        Error::Arrow(_) => "table",
        Error::Encode(_) => "encoding",
        Error::Internal(_) => "internal",
    }
}

/// The reason [`Event::NotMade`] gives when start-up rolls a change back.
pub(crate) const STOPPED: &str = "stopped: the domain stopped before the change was made; rolled back at start-up";
