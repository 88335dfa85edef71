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

/// The cells each approved output released, by `grant NUL output id`: the
/// grant's differencing history, read by prefix without reading every output.
pub(crate) const RELEASED: Table = TableDefinition::new("released");

/// The key of an output's entry in [`RELEASED`].
pub(crate) fn released_key(grant: &str, output: &str) -> String {
    format!("{grant}\u{0}{output}")
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
}

fn storage(e: impl Into<redb::Error>) -> Error {
    Error::Storage(e.into().to_string())
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Internal(e.to_string()))
}

fn decode<T: DeserializeOwned>(table: &Table, key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Storage(format!("record {key} in {}: {e}", table.name())))
}

impl State {
    pub(crate) fn open(path: &Path) -> Result<State> {
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                Error::Storage(format!("{} is in use by another inland process", path.display()))
            }
            other => storage(other),
        })?;
        let txn = db.begin_write().map_err(storage)?;
        let had_released = txn.list_tables().map_err(storage)?.any(|t| t.name() == RELEASED.name());
        for t in [
            DATASETS, JOBS, OUTPUTS, OPERATORS, GRANTS, FEEDBACK, POLICIES, REVIEWERS, RELEASED,
        ] {
            txn.open_table(t).map_err(storage)?;
        }
        if !had_released {
            // A domain from before the index: build it from the outputs, in the same transaction.
            let outputs = txn.open_table(OUTPUTS).map_err(storage)?;
            let mut released = txn.open_table(RELEASED).map_err(storage)?;
            for item in outputs.iter().map_err(storage)? {
                let (k, v) = item.map_err(storage)?;
                let o: crate::output::OutputRecord = decode(&OUTPUTS, k.value(), v.value())?;
                if let Some(r) = &o.release {
                    let cells = encode(&r.cells)?;
                    released
                        .insert(released_key(&o.grant, &o.id).as_str(), cells.as_slice())
                        .map_err(storage)?;
                }
            }
        }
        txn.commit().map_err(storage)?;
        Ok(State { db })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{OutputRecord, Release};
    use inland_gate::{GateReport, ReleasedCell, Verdict};

    fn output(grant: &str, id: &str, released: Option<Vec<ReleasedCell>>) -> OutputRecord {
        OutputRecord {
            id: id.into(),
            name: "table".into(),
            job_id: id.split('/').next().unwrap_or(id).into(),
            operator: "op".into(),
            grant: grant.into(),
            module_sha256: "m".into(),
            sha256: "s".into(),
            rows: 1,
            bytes: 1,
            columns: Vec::new(),
            datasets: Vec::new(),
            queries: Vec::new(),
            created_at_ms: 0,
            label: None,
            destroyed: false,
            gate: None,
            review: None,
            release: released.map(|cells| Release {
                sha256: "r".into(),
                rows: 1,
                report: GateReport {
                    verdict: Verdict::Review,
                    approvals_required: 2,
                    row_level: false,
                    checks: Vec::new(),
                    traced_cells: cells.len() as u64,
                    untraced_cells: 0,
                    overrides: Vec::new(),
                },
                cells,
                approved_at_ms: 1,
            }),
            exports: Vec::new(),
        }
    }

    fn cell(source: &str, key: &str, entities: u64) -> ReleasedCell {
        ReleasedCell {
            source: source.into(),
            keys: vec![key.into()],
            entities,
        }
    }

    /// A domain written before the release index existed gets it on open,
    /// built from its approved outputs, so no grant loses its differencing history.
    #[test]
    fn a_domain_from_before_the_release_index_gets_it_built_from_its_outputs() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Internal(e.to_string()))?;
        let path = dir.path().join("state.redb");
        let (a, b) = (
            vec![cell("count(*)", "east", 12)],
            vec![cell("sum(income)", "west", 40)],
        );
        {
            let state = State::open(&path)?;
            state.insert_new(OUTPUTS, "j1/t", &output("g1", "j1/t", Some(a.clone())), "output")?;
            state.insert_new(OUTPUTS, "j2/t", &output("g1", "j2/t", None), "output")?;
            state.insert_new(OUTPUTS, "j3/t", &output("g2", "j3/t", Some(b.clone())), "output")?;
            // As an older version left it: no index table at all.
            let txn = state.db.begin_write().map_err(storage)?;
            txn.delete_table(RELEASED).map_err(storage)?;
            txn.commit().map_err(storage)?;
        }
        let state = State::open(&path)?;
        let g1: Vec<(String, Vec<ReleasedCell>)> = state.list_prefix(RELEASED, &released_key("g1", ""))?;
        assert_eq!(g1, vec![(released_key("g1", "j1/t"), a)]);
        let g2: Vec<(String, Vec<ReleasedCell>)> = state.list_prefix(RELEASED, &released_key("g2", ""))?;
        assert_eq!(g2, vec![(released_key("g2", "j3/t"), b)]);

        // Once built, it is not rebuilt: an entry removed on purpose stays removed.
        let txn = state.db.begin_write().map_err(storage)?;
        txn.open_table(RELEASED)
            .map_err(storage)?
            .remove(released_key("g2", "j3/t").as_str())
            .map_err(storage)?;
        txn.commit().map_err(storage)?;
        drop(state);
        let state = State::open(&path)?;
        let g2: Vec<(String, Vec<ReleasedCell>)> = state.list_prefix(RELEASED, &released_key("g2", ""))?;
        assert!(g2.is_empty());
        Ok(())
    }
}
