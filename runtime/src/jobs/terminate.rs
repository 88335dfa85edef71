//! What a grant's termination destroys (clause 8.6), as one step the
//! termination command and start-up share: a termination cut short by a
//! stop is finished at the next start (#24), since a destroyed key cannot
//! be rolled back.

use crate::context::Inner;
use crate::error::{Error, Result};
use crate::release::Reviews;
use crate::state::OUTPUTS;
use std::sync::Arc;

/// What was destroyed, for the closing `grant_terminated` event.
pub(crate) struct Destroyed {
    /// Outputs destroyed: (output id, keyed digest of its content's SHA-256).
    pub(crate) outputs: Vec<(String, String)>,
    /// Files deleted from the domain.
    pub(crate) files: u64,
    /// Bytes deleted.
    pub(crate) bytes: u64,
    /// Whether the grant's data key was destroyed.
    pub(crate) key: bool,
    /// Exported products, listed and not recalled.
    pub(crate) released: Vec<String>,
}

/// Destroys the grant's data key, its quarantine files and its live outputs'
/// records; what is already gone is skipped, so it may run again.
pub(crate) fn destroy(inner: &Arc<Inner>, id: &str) -> Result<Destroyed> {
    let key = inner.keys.destroy_grant_key(id)?;
    inland_files::crash_point("grant-key-destroyed");
    let dir = inner.domain.dir("quarantine").join(id);
    let (mut files, mut bytes) = (0u64, 0u64);
    if dir.exists() {
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            files += 1;
        }
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        inland_files::sync_dir(&inner.domain.dir("quarantine"))?;
    }
    let mut outputs = Vec::new();
    let mut released = Vec::new();
    for mut o in Reviews::new(inner.clone())
        .outputs()?
        .into_iter()
        .filter(|o| o.grant == id && !o.destroyed)
    {
        // Products already exported are listed, not recalled (clause 8.6).
        for e in &o.exports {
            released.push(format!("{} (manifest {})", o.id, e.manifest_sha256));
        }
        o.scrub();
        inner.domain.state.replace(OUTPUTS, &o.id, &o)?;
        outputs.push((o.id, inner.text_digest().of(&o.sha256)));
    }
    Ok(Destroyed {
        outputs,
        files,
        bytes,
        key,
        released,
    })
}
