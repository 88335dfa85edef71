//! The hidden entity key stored beside a dataset's rows (`dataset add
//! --entity`). Over records (several rows per person) most of what the
//! policy adds to a query was hashing each row's entity and sorting each
//! group's entities; a key computed once at registration, with the rows
//! stored in its order, leaves a read of one integer column and runs that
//! arrive sorted.
//!
//! The stored key must be exactly the key a query would compute (sketches of
//! cells released from stored and computed keys are compared), and the
//! computed key depends on the Arrow type the scan reads the column as. So
//! registration hashes the column as the scan will read it and records that
//! type; a query uses the stored key only when the scan's type is the one
//! recorded, and computes it otherwise.

use crate::guard::QueryError;
use crate::hidden::ENTITY;
use arrow::array::{Array, ArrayRef, UInt64Array};
use arrow::datatypes::{DataType, Schema};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The stored column's name: the same as the hidden column a policy table
/// adds, and reserved (no source column or policy may use it).
pub const STORED_ENTITY_KEY: &str = ENTITY;

/// Which column a dataset's stored entity key was made from, and the Arrow
/// type it was hashed as (the type a query's scan reads that column as).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntityKey {
    /// The entity column the key is of.
    pub column: String,
    /// The Arrow type (as Arrow prints it) the column was hashed as.
    pub hashed_as: String,
    /// Which entity key it was made with (a tag derived from the key, which
    /// tells nothing of it): a query under another key computes its own.
    pub key_check: String,
}

/// The tag that tells which entity key a stored key was made with.
fn key_check(entity_key: &[u8; 32]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, entity_key);
    hex::encode(&ring::hmac::sign(&key, b"inland stored entity key check").as_ref()[..8])
}

/// Whether a column name is the host's own: stored hidden columns and the
/// rewrite's columns all start so, and no dataset or policy may name one.
pub fn reserved_column(name: &str) -> bool {
    crate::hidden::reserved(name)
}

/// The type a query's scan reads a stored column of type `t` as: DataFusion
/// reads text and bytes as views.
pub fn scan_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 => DataType::Utf8View,
        DataType::Binary | DataType::LargeBinary => DataType::BinaryView,
        other => other.clone(),
    }
}

/// The hidden key of each value: a keyed 64-bit hash, nulls kept. Not a
/// full MAC: it never leaves the host, and only needs to be unguessable
/// enough that a job cannot choose entities that collide.
pub(crate) fn hash_entities(array: &ArrayRef, seed: u64) -> datafusion::common::Result<UInt64Array> {
    let state = foldhash::quality::FixedState::with_seed(seed);
    let mut hashes = vec![0u64; array.len()];
    datafusion::common::hash_utils::create_hashes([array], &state, &mut hashes)?;
    Ok(UInt64Array::new(hashes.into(), array.logical_nulls()))
}

/// The seed of the hidden entity key, derived from the domain's entity key.
pub(crate) fn entity_seed(entity_key: &[u8; 32]) -> u64 {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, entity_key);
    let tag = ring::hmac::sign(&key, b"inland entity key");
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&tag.as_ref()[..8]);
    u64::from_le_bytes(seed)
}

/// Makes the stored key of one entity column at registration, batch by
/// batch, exactly as a query over the stored file would compute it.
#[derive(Debug, Clone)]
pub struct EntityKeyer {
    seed: u64,
    check: String,
    column: String,
    as_read: DataType,
}

impl EntityKeyer {
    /// For the column `column` of type `stored` (as the source holds it and
    /// the stored file will), under the domain's `entity_key`.
    pub fn new(column: &str, stored: &DataType, entity_key: &[u8; 32]) -> Self {
        EntityKeyer {
            seed: entity_seed(entity_key),
            check: key_check(entity_key),
            column: column.to_string(),
            as_read: scan_type(stored),
        }
    }

    /// The keys of one batch's values of the column: cast first to the type
    /// the scan will read it as, then hashed as a query hashes it.
    pub fn keys(&self, values: &ArrayRef) -> Result<UInt64Array, QueryError> {
        let cast: ArrayRef = if &self.as_read == values.data_type() {
            Arc::clone(values)
        } else {
            arrow::compute::cast(values, &self.as_read)
                .map_err(|e| QueryError::Internal(format!("reading `{}` as {}: {e}", self.column, self.as_read)))?
        };
        hash_entities(&cast, self.seed)
            .map_err(|e| QueryError::Internal(format!("hashing the entity column `{}`: {e}", self.column)))
    }

    /// What the catalog records about the key.
    pub fn record(&self) -> StoredEntityKey {
        StoredEntityKey {
            column: self.column.clone(),
            hashed_as: self.as_read.to_string(),
            key_check: self.check.clone(),
        }
    }
}

/// Whether a query under the domain's `entity_key` may read `stored`
/// instead of computing the key of `entity` (and where): the key is of that
/// column, made with that key, held as 64-bit keys, and the scan reads the
/// column as the type it was hashed as.
pub(crate) fn usable(
    stored: Option<&StoredEntityKey>,
    entity: &str,
    scan: &Schema,
    entity_key: &[u8; 32],
) -> Option<usize> {
    let stored = stored?;
    if stored.column != entity || stored.key_check != key_check(entity_key) {
        return None;
    }
    let column = scan.field_with_name(entity).ok()?;
    if column.data_type().to_string() != stored.hashed_as {
        return None;
    }
    let (i, key) = scan.column_with_name(ENTITY)?;
    (key.data_type() == &DataType::UInt64).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, LargeStringArray, StringArray, StringViewArray};
    use arrow::datatypes::Field;

    /// What registration stores is what a query over the stored file would
    /// compute: text read as views, short and long values, nulls kept.
    #[test]
    fn the_stored_key_is_the_key_a_query_computes_from_the_column_as_read() {
        let key = [7u8; 32];
        let values = [
            Some("r-1"),
            None,
            Some("a resident id longer than twelve bytes"),
            Some(""),
        ];
        let utf8: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
        let large: ArrayRef = Arc::new(LargeStringArray::from(values.to_vec()));
        let view: ArrayRef = Arc::new(StringViewArray::from(values.to_vec()));
        let at_query = hash_entities(&view, entity_seed(&key)).unwrap();
        for source in [&utf8, &large] {
            let keyer = EntityKeyer::new("resident_id", source.data_type(), &key);
            assert_eq!(keyer.keys(source).unwrap(), at_query);
            assert_eq!(
                keyer.record(),
                StoredEntityKey {
                    column: "resident_id".into(),
                    hashed_as: "Utf8View".into(),
                    key_check: key_check(&key),
                }
            );
        }
        let keyer = EntityKeyer::new("resident_id", &DataType::Utf8, &key);
        assert!(keyer.keys(&utf8).unwrap().is_null(1));
        // Hashing the text as stored (not as read) gives other keys: the
        // cast is what makes them agree.
        assert_ne!(hash_entities(&utf8, entity_seed(&key)).unwrap(), at_query);
        // Another domain's key gives other keys.
        let other = EntityKeyer::new("resident_id", &DataType::Utf8, &[8u8; 32]);
        assert_ne!(other.keys(&utf8).unwrap(), at_query);
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let keyer = EntityKeyer::new("id", &DataType::Int64, &key);
        assert_eq!(
            keyer.keys(&ints).unwrap(),
            hash_entities(&ints, entity_seed(&key)).unwrap()
        );
        assert_eq!(keyer.record().hashed_as, "Int64");
    }

    /// The stored key is used only for the entity it is of, read as the
    /// type it was hashed as, and held as 64-bit keys.
    #[test]
    fn a_stored_key_is_used_only_where_it_is_the_key_a_query_would_compute() {
        let scan = |entity: DataType, key: DataType| {
            Schema::new(vec![
                Field::new("resident_id", entity, true),
                Field::new("amount", DataType::Float64, true),
                Field::new(ENTITY, key, true),
            ])
        };
        let key = [5u8; 32];
        let stored = EntityKeyer::new("resident_id", &DataType::Utf8, &key).record();
        let good = scan(DataType::Utf8View, DataType::UInt64);
        assert_eq!(usable(Some(&stored), "resident_id", &good, &key), Some(2));
        assert_eq!(usable(None, "resident_id", &good, &key), None);
        assert_eq!(usable(Some(&stored), "amount", &good, &key), None);
        assert_eq!(usable(Some(&stored), "resident_id", &good, &[6u8; 32]), None);
        assert_eq!(
            usable(
                Some(&stored),
                "resident_id",
                &scan(DataType::Utf8, DataType::UInt64),
                &key
            ),
            None
        );
        assert_eq!(
            usable(
                Some(&stored),
                "resident_id",
                &scan(DataType::Utf8View, DataType::Int64),
                &key
            ),
            None
        );
    }
}
