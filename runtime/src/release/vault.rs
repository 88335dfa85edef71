//! The sealed quarantine: each grant's directory, opened as a capability,
//! holding content-addressed files sealed with the grant's key. Nothing is
//! written there but through this module.

use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::keys::SealingKey;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use std::io::{Cursor, Write};
use std::path::PathBuf;

/// A grant's quarantine directory, opened as a capability: writes go through
/// it to that directory alone.
pub(crate) struct GrantDir {
    path: PathBuf,
    dir: Dir,
}

impl GrantDir {
    /// Opens (creating if needed) the quarantine directory of `grant`.
    pub(crate) fn open(domain: &Domain, grant: &str) -> Result<GrantDir> {
        let path = domain.dir("quarantine").join(grant);
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        let dir = Dir::open_ambient_dir(&path, ambient_authority()).map_err(|e| Error::io(&path, e))?;
        Ok(GrantDir { path, dir })
    }

    /// Seals a table as an Arrow IPC file, content-addressed; returns its
    /// SHA-256 and its size before sealing.
    pub(crate) fn seal_table(
        &self,
        key: &SealingKey,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(String, u64)> {
        let mut bytes = Vec::new();
        {
            let mut w = FileWriter::try_new(&mut bytes, schema)?;
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        let sha256 = inland_files::sha256_hex(&bytes);
        self.seal_named(key, &format!("{sha256}.sealed"), &sha256, &bytes)?;
        Ok((sha256, bytes.len() as u64))
    }

    /// Seals bytes under `name`, bound to `aad`.
    pub(crate) fn seal_named(&self, key: &SealingKey, name: &str, aad: &str, bytes: &[u8]) -> Result<()> {
        let sealed = key.seal(bytes, aad)?;
        store_in(&self.dir, name, &sealed).map_err(|e| Error::io(self.path.join(name), e))
    }

    /// Makes what was stored durable.
    pub(crate) fn sync(&self) -> Result<()> {
        Ok(inland_files::sync_dir(&self.path)?)
    }
}

/// Stores content-addressed bytes under `name` in `dir`, atomically and read-only.
/// Content already there is left as it is: same name, same bytes.
fn store_in(dir: &Dir, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    if dir.exists(name) {
        return Ok(());
    }
    let tmp = format!(".incoming-{}", uuid::Uuid::now_v7());
    let result = (|| {
        let mut f = dir.create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            dir.set_permissions(
                &tmp,
                cap_std::fs::Permissions::from_std(std::fs::Permissions::from_mode(0o440)),
            )?;
        }
        dir.rename(&tmp, dir, name)
    })();
    if result.is_err() {
        let _ = dir.remove_file(&tmp);
    }
    result
}

/// Reads a sealed, content-addressed table of a grant from quarantine.
pub(crate) fn read_sealed_table(
    domain: &Domain,
    key: &SealingKey,
    grant: &str,
    sha256: &str,
) -> Result<Vec<RecordBatch>> {
    let path = domain.root().join(format!("quarantine/{grant}/{sha256}.sealed"));
    let sealed = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let bytes = key.open(&sealed, sha256)?;
    if inland_files::sha256_hex(&bytes) != sha256 {
        return Err(Error::Invalid(format!(
            "{} does not match its recorded hash: quarantine was altered",
            path.display()
        )));
    }
    let reader = FileReader::try_new(Cursor::new(bytes), None)?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    // An empty table still has its columns: readers always get at least one batch.
    Ok(if batches.is_empty() {
        vec![RecordBatch::new_empty(schema)]
    } else {
        batches
    })
}
