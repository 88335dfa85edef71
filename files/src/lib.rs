//! # inland-files: the few ways Inland writes a file
//!
//! A crash or a bad input must never leave a half-written file in a domain:
//! replacements go through a synced temporary file and a durable rename, and
//! secrets are created readable by their owner only. The ledger and the
//! domain share these, so both follow the same rules.
#![deny(unsafe_code)]
#![deny(missing_docs)]

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable naming the crash point a test wants the
/// process to stop at.
pub const CRASH_AT: &str = "INLAND_CRASH_AT";

/// A named point between two durable steps where the crash suite (#24) may
/// stop the process as a power cut would: when `INLAND_CRASH_AT` names it,
/// the process aborts there, running no destructor and flushing nothing.
/// Only whoever starts the domain's processes sets their environment, so
/// this gives a job or an API client nothing.
pub fn crash_point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT.get_or_init(|| std::env::var(CRASH_AT).ok()).as_deref() == Some(name) {
        std::process::abort();
    }
}

/// A file operation that failed, with the file it concerned.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// The operating system's error.
    #[source]
    pub source: std::io::Error,
}

impl FileError {
    /// Wraps an I/O error with the path it happened on.
    pub fn new(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FileError {
            path: path.into(),
            source,
        }
    }
}

/// Maps an I/O error on `path` to a [`FileError`], for `map_err`.
pub fn at(path: &Path) -> impl Fn(std::io::Error) -> FileError + '_ {
    move |e| FileError::new(path, e)
}

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// synced and renamed into place, so readers see the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let dir = parent(path)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(at(dir))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| FileError::new(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| FileError::new(path, e.error))?;
    sync_dir(dir)
}

/// Creates a file only its owner can read, failing if it exists: for keys
/// and secrets, which are never replaced in place.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(at(path))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(at(path))
}

/// Replaces `path` atomically with a file only its owner can read: for
/// secrets derived from others (an index of identifier digests) that are
/// rebuilt when their inputs change.
pub fn replace_private(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let dir = parent(path)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(at(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| FileError::new(tmp.path(), e))?;
    }
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| FileError::new(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| FileError::new(path, e.error))?;
    sync_dir(dir)
}

/// Makes a rename or a new entry in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), FileError> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))?;
    Ok(())
}

/// Hex SHA-256 of bytes: how the domain names contents in its records.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn parent(path: &Path) -> Result<&Path, FileError> {
    path.parent().ok_or_else(|| {
        FileError::new(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path has no parent directory"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_whole_file_and_leaves_no_temporary() -> Result<(), FileError> {
        let dir = tempfile::tempdir().map_err(at(Path::new(".")))?;
        let path = dir.path().join("f");
        write_atomic(&path, b"first version, longer")?;
        write_atomic(&path, b"second")?;
        assert_eq!(std::fs::read(&path).map_err(at(&path))?, b"second");
        let entries = std::fs::read_dir(dir.path()).map_err(at(dir.path()))?.count();
        assert_eq!(entries, 1, "no temporary file is left beside it");
        Ok(())
    }

    #[test]
    fn a_private_replacement_replaces_and_stays_private() -> Result<(), FileError> {
        let dir = tempfile::tempdir().map_err(at(Path::new(".")))?;
        let path = dir.path().join("index");
        replace_private(&path, b"first")?;
        replace_private(&path, b"second")?;
        assert_eq!(std::fs::read(&path).map_err(at(&path))?, b"second");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map_err(at(&path))?.permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        Ok(())
    }

    #[test]
    fn a_private_file_is_never_overwritten_and_only_its_owner_reads_it() -> Result<(), FileError> {
        let dir = tempfile::tempdir().map_err(at(Path::new(".")))?;
        let path = dir.path().join("key");
        write_private(&path, b"secret")?;
        assert!(write_private(&path, b"other").is_err());
        assert_eq!(std::fs::read(&path).map_err(at(&path))?, b"secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map_err(at(&path))?.permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        Ok(())
    }
}
