//! The domain's identifier index for the gate: keyed hashes of every value of
//! every direct-identifier column, rebuilt when a policy is applied or a
//! dataset changes. The file holds digests and value shapes, never values.

use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::governance::catalog;
use inland_gate::index::{Shape, StoredIndex};
use inland_gate::{KeyedIndex, canon};
use inland_policies::policy::Policy;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const FILE: &str = "identifier-index.bin";
const MAGIC: &[u8; 8] = b"INLIDX01";

fn key(domain: &Domain) -> [u8; 32] {
    domain.derived_key("identifier-index")
}

/// Rebuilds the index from the catalog under a policy; returns how many values it holds.
pub(crate) fn rebuild(domain: &Domain, policy: &Policy) -> Result<usize> {
    let mut index = KeyedIndex::new(&key(domain));
    for d in catalog::list(domain)? {
        let columns = policy.direct_identifiers(&d.name);
        if columns.is_empty() {
            continue;
        }
        let path = domain.root().join(d.relative_path());
        let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| Error::damaged(path.display().to_string(), e))?;
        let schema = builder.schema().clone();
        let wanted: Vec<usize> = columns.iter().filter_map(|c| schema.index_of(c).ok()).collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| Error::damaged(path.display().to_string(), e))?;
        for batch in reader {
            let batch = batch.map_err(|e| Error::damaged(path.display().to_string(), e))?;
            for col in batch.columns() {
                for v in canon::column(col)
                    .map_err(|e| Error::Internal(e.to_string()))?
                    .into_iter()
                    .flatten()
                {
                    index.insert(&v);
                }
            }
        }
    }
    let stored = index.to_stored();
    let mut bytes = Vec::with_capacity(16 + stored.digests.len() * 16 + stored.shapes.len() * 5);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(stored.digests.len() as u64).to_le_bytes());
    for d in &stored.digests {
        bytes.extend_from_slice(d);
    }
    for s in &stored.shapes {
        bytes.extend_from_slice(&s.len.to_le_bytes());
        bytes.push(u8::from(s.digits));
    }
    // Rebuilt whenever the policy or the catalog changes: replaced, never appended to.
    inland_files::replace_private(&domain.dir("policies").join(FILE), &bytes)?;
    Ok(stored.digests.len())
}

/// The index in force, if a policy built one.
pub(crate) fn load(domain: &Domain) -> Result<Option<KeyedIndex>> {
    let path = domain.dir("policies").join(FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let bad = || Error::damaged(path.display().to_string(), "not an identifier index");
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err(bad());
    }
    let n = u64::from_le_bytes(bytes[8..16].try_into().map_err(|_| bad())?) as usize;
    let digests_end = n.checked_mul(16).and_then(|x| x.checked_add(16)).ok_or_else(bad)?;
    let (digest_bytes, shape_bytes) = (bytes.get(16..digests_end).ok_or_else(bad)?, &bytes[digests_end..]);
    if !shape_bytes.len().is_multiple_of(5) {
        return Err(bad());
    }
    let digests = digest_bytes
        .chunks_exact(16)
        .map(|c| c.try_into().map_err(|_| bad()))
        .collect::<Result<Vec<[u8; 16]>>>()?;
    let shapes = shape_bytes
        .chunks_exact(5)
        .map(|c| Shape {
            len: u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            digits: c[4] == 1,
        })
        .collect();
    Ok(Some(KeyedIndex::from_stored(
        &key(domain),
        StoredIndex { digests, shapes },
    )))
}
