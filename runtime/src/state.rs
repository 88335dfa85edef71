//! The domain's state database (redb): catalog, jobs and outputs, each a
//! table of JSON records keyed by name or id. Every write is one transaction.

use crate::error::{Error, Result};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use serde::{Serialize, de::DeserializeOwned};
use std::path::Path;

pub(crate) type Table = TableDefinition<'static, &'static str, &'static [u8]>;

/// Registered datasets, by name.
pub(crate) const DATASETS: Table = TableDefinition::new("datasets");
/// Job records, by job id.
pub(crate) const JOBS: Table = TableDefinition::new("jobs");
/// Quarantined outputs, by output id.
pub(crate) const OUTPUTS: Table = TableDefinition::new("outputs");
/// Registered operators, by name.
pub(crate) const OPERATORS: Table = TableDefinition::new("operators");
/// Grants (authorization agreements), by id.
pub(crate) const GRANTS: Table = TableDefinition::new("grants");
/// Applied policy versions, by `v00000001`..., and `current`.
pub(crate) const POLICIES: Table = TableDefinition::new("policies");
/// Reviewers of the release gate, by name.
pub(crate) const REVIEWERS: Table = TableDefinition::new("reviewers");
/// Data quality feedback, by id.
pub(crate) const FEEDBACK: Table = TableDefinition::new("feedback");
/// Bearer tokens (their hashes, never the tokens), by token id.
pub(crate) const TOKENS: Table = TableDefinition::new("tokens");
/// Who submitted each job through the server, by job id.
pub(crate) const AUTHORS: Table = TableDefinition::new("authors");

/// Versions of the server's access policy, by zero-padded version number.
pub(crate) const ACCESS_POLICIES: Table = TableDefinition::new("access-policies");
/// Components approved by hash, for grants that require approval.
pub(crate) const COMPONENTS: Table = TableDefinition::new("components");
/// Jobs each grant has run, for its quota, by grant id.
pub(crate) const QUOTA_USE: Table = TableDefinition::new("quota-use");
/// ρ each `dp` grant has spent, by grant id.
pub(crate) const PRIVACY_SPENT: Table = TableDefinition::new("privacy-spent");
/// Source archives submitted with components: SHA-256 → record.
pub(crate) const SOURCES: Table = TableDefinition::new("sources");
/// The rows each approved output released, with their entity sketches, by
/// `grant NUL output id`: the domain's differencing history, read whole
/// (a release is public whoever made it) without reading every output.
pub(crate) const RELEASED: Table = TableDefinition::new("released");

/// Start-up's mark: how many ledger entries are reconciled with the state.
pub(crate) const RECOVERED: Table = TableDefinition::new("recovered");

/// The key of an output's entry in [`RELEASED`].
pub(crate) fn released_key(grant: &str, output: &str) -> String {
    format!("{grant}\u{0}{output}")
}

/// The output id of a [`RELEASED`] key, which names the table in messages.
pub(crate) fn released_name(key: &str) -> String {
    key.split_once('\u{0}').map(|(_, o)| o).unwrap_or(key).to_string()
}

/// What a write expects to find under its key.
enum Expect<'a> {
    /// Nothing (the record is new); the text names the kind of record.
    Absent(&'a str),
    /// A record to replace.
    Present,
    /// Either.
    Anything,
}

pub(crate) struct State {
    db: Database,
    /// Held by every announced change from its event to its commit (the
    /// ordering rule's `announce`) and by the state check: announced changes
    /// commit in the order of their events, and the check never reads an
    /// event whose change is still being made.
    changes: std::sync::Mutex<()>,
}

fn storage(e: impl Into<redb::Error>) -> Error {
    Error::Database(e.into())
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

fn decode<T: DeserializeOwned>(table: &Table, key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::damaged(format!("record {key} in {}", table.name()), e))
}

impl State {
    pub(crate) fn open(path: &Path) -> Result<State> {
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::InUse(path.to_path_buf()),
            other => storage(other),
        })?;
        let txn = db.begin_write().map_err(storage)?;
        // Derived tables (the release index) are built by their owners with
        // [`State::build_once`], so a domain from before them gets them whole.
        for t in [
            DATASETS,
            JOBS,
            OUTPUTS,
            OPERATORS,
            GRANTS,
            FEEDBACK,
            POLICIES,
            REVIEWERS,
            TOKENS,
            AUTHORS,
            ACCESS_POLICIES,
            QUOTA_USE,
            PRIVACY_SPENT,
            SOURCES,
            COMPONENTS,
            RECOVERED,
        ] {
            txn.open_table(t).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(State {
            db,
            changes: std::sync::Mutex::new(()),
        })
    }

    /// The guard an announced change holds from its event to its commit,
    /// and the state check while it reads both sides. It guards no data, so
    /// a panic while it was held leaves nothing to distrust.
    pub(crate) fn changing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Inserts a record that must not exist yet and, in the same
    /// transaction, sets `key` in a second table.
    pub(crate) fn insert_new_with<T: Serialize, U: Serialize>(
        &self,
        table: Table,
        key: &str,
        value: &T,
        what: &str,
        also: (Table, &str, &U),
    ) -> Result<()> {
        let (bytes, also_bytes) = (encode(value)?, encode(also.2)?);
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut t = txn.open_table(table).map_err(storage)?;
            if t.insert(key, bytes.as_slice()).map_err(storage)?.is_some() {
                return Err(Error::Exists(format!("{what} `{key}`")));
            }
            // A table is opened once per transaction.
            if also.0.name() == table.name() {
                t.insert(also.1, also_bytes.as_slice()).map_err(storage)?;
            } else {
                let mut a = txn.open_table(also.0).map_err(storage)?;
                a.insert(also.1, also_bytes.as_slice()).map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)
    }

    /// Creates `target` from the records of `source`, in one transaction, if
    /// `target` does not exist yet: how a table added in a later version is
    /// built from what older versions kept. Returns whether it was built.
    pub(crate) fn build_once<T: DeserializeOwned, U: Serialize>(
        &self,
        target: Table,
        source: Table,
        derive: impl Fn(&str, T) -> Option<(String, U)>,
    ) -> Result<bool> {
        let txn = self.db.begin_write().map_err(storage)?;
        if txn.list_tables().map_err(storage)?.any(|t| t.name() == target.name()) {
            return Ok(false);
        }
        {
            let from = txn.open_table(source).map_err(storage)?;
            let mut to = txn.open_table(target).map_err(storage)?;
            for item in from.iter().map_err(storage)? {
                let (k, v) = item.map_err(storage)?;
                let record: T = decode(&source, k.value(), v.value())?;
                if let Some((key, value)) = derive(k.value(), record) {
                    to.insert(key.as_str(), encode(&value)?.as_slice()).map_err(storage)?;
                }
            }
        }
        txn.commit().map_err(storage)?;
        Ok(true)
    }

    /// Replaces a record that must exist and, in the same transaction, sets
    /// `key` in a second table: the two never disagree.
    pub(crate) fn replace_with<T: Serialize, U: Serialize>(
        &self,
        table: Table,
        key: &str,
        value: &T,
        also: (Table, &str, &U),
    ) -> Result<()> {
        let (bytes, also_bytes) = (encode(value)?, encode(also.2)?);
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut t = txn.open_table(table).map_err(storage)?;
            if t.insert(key, bytes.as_slice()).map_err(storage)?.is_none() {
                return Err(Error::NotFound(format!("`{key}` in {}", table.name())));
            }
            let mut a = txn.open_table(also.0).map_err(storage)?;
            a.insert(also.1, also_bytes.as_slice()).map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }

    /// The records whose keys start with `prefix`, with their keys, in key order.
    pub(crate) fn list_prefix<T: DeserializeOwned>(&self, table: Table, prefix: &str) -> Result<Vec<(String, T)>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let t = txn.open_table(table).map_err(storage)?;
        let mut out = Vec::new();
        for item in t.range(prefix..).map_err(storage)? {
            let (k, v) = item.map_err(storage)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_string(), decode(&table, k.value(), v.value())?));
        }
        Ok(out)
    }

    /// Inserts a record that must not exist yet.
    pub(crate) fn insert_new<T: Serialize>(&self, table: Table, key: &str, value: &T, what: &str) -> Result<()> {
        self.write(table, key, value, Expect::Absent(what))
    }

    /// Inserts or replaces a record.
    pub(crate) fn upsert<T: Serialize>(&self, table: Table, key: &str, value: &T) -> Result<()> {
        self.write(table, key, value, Expect::Anything)
    }

    /// Replaces a record that must exist.
    pub(crate) fn replace<T: Serialize>(&self, table: Table, key: &str, value: &T) -> Result<()> {
        self.write(table, key, value, Expect::Present)
    }

    /// One write transaction; it commits only if the key was as expected.
    fn write<T: Serialize>(&self, table: Table, key: &str, value: &T, expect: Expect<'_>) -> Result<()> {
        let bytes = encode(value)?;
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut t = txn.open_table(table).map_err(storage)?;
            let existed = t.insert(key, bytes.as_slice()).map_err(storage)?.is_some();
            match expect {
                // Returning before commit drops the transaction: nothing is written.
                Expect::Absent(what) if existed => return Err(Error::Exists(format!("{what} `{key}`"))),
                Expect::Present if !existed => return Err(Error::NotFound(format!("`{key}` in {}", table.name()))),
                _ => {}
            }
        }
        txn.commit().map_err(storage)
    }

    /// Removes a record; whether it was there.
    pub(crate) fn remove(&self, table: Table, key: &str) -> Result<bool> {
        let txn = self.db.begin_write().map_err(storage)?;
        let was = txn
            .open_table(table)
            .map_err(storage)?
            .remove(key)
            .map_err(storage)?
            .is_some();
        txn.commit().map_err(storage)?;
        Ok(was)
    }

    /// Reads a record and writes what `change` makes of it, in one write
    /// transaction (write transactions never interleave); `change` may
    /// decline with a reason, and then nothing is written.
    pub(crate) fn update<T: DeserializeOwned + Serialize, R>(
        &self,
        table: Table,
        key: &str,
        change: impl FnOnce(Option<T>) -> std::result::Result<T, R>,
    ) -> Result<std::result::Result<(), R>> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut t = txn.open_table(table).map_err(storage)?;
            let old = match t.get(key).map_err(storage)? {
                Some(v) => Some(decode(&table, key, v.value())?),
                None => None,
            };
            let new = match change(old) {
                Ok(new) => new,
                Err(why) => return Ok(Err(why)),
            };
            t.insert(key, encode(&new)?.as_slice()).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(Ok(()))
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let t = txn.open_table(table).map_err(storage)?;
        match t.get(key).map_err(storage)? {
            Some(v) => Ok(Some(decode(&table, key, v.value())?)),
            None => Ok(None),
        }
    }

    /// Every record of a table, in key order.
    pub(crate) fn list<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<T>> {
        let txn = self.db.begin_read().map_err(storage)?;
        let t = txn.open_table(table).map_err(storage)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(storage)? {
            let (k, v) = item.map_err(storage)?;
            out.push(decode(&table, k.value(), v.value())?);
        }
        Ok(out)
    }
}
