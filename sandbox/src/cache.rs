//! The compiled-component cache: each component is compiled once, keyed by
//! its SHA-256, and kept on disk with an HMAC under the domain's secret over
//! the file's name and bytes, so an artifact is loaded only if this domain
//! wrote it for that component (a valid artifact renamed to another
//! component's hash, say an approved one, does not verify).

use ring::hmac;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled artifacts of one domain, authenticated with its key.
pub(crate) struct CompileCache {
    dir: PathBuf,
    key: hmac::Key,
}

/// Constant-time comparison of two tags.
fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn wasm_err(e: wasmtime::Error) -> String {
    format!("{e:#}")
}

impl CompileCache {
    pub(crate) fn new(dir: PathBuf, key: [u8; 32]) -> Self {
        CompileCache {
            dir,
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
        }
    }

    fn paths(&self, engine: &Engine, sha: &str) -> (PathBuf, PathBuf) {
        // Artifacts from another engine configuration or wasmtime version get other names.
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let stem = format!("{sha}-{:016x}", h.finish());
        (
            self.dir.join(format!("{stem}.cwasm")),
            self.dir.join(format!("{stem}.mac")),
        )
    }

    /// The tag of an artifact: its file name (component hash and engine) and its bytes.
    fn tag(&self, art: &std::path::Path, bytes: &[u8]) -> hmac::Tag {
        let name = art
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(name.len() as u64).to_le_bytes());
        ctx.update(name.as_bytes());
        ctx.update(bytes);
        ctx.sign()
    }

    /// Loads a compiled artifact from the cache if its keyed hash proves this domain wrote it.
    pub(crate) fn load(&self, engine: &Engine, sha: &str) -> Option<Component> {
        let (art, mac) = self.paths(engine, sha);
        let bytes = std::fs::read(&art).ok()?;
        let tag = hex::decode(std::fs::read_to_string(&mac).ok()?.trim()).ok()?;
        let expected = self.tag(&art, &bytes);
        if !ring_eq(expected.as_ref(), &tag) {
            tracing::warn!(artifact = %art.display(), "cached artifact failed its integrity check; recompiling");
            let _ = std::fs::remove_file(&art);
            let _ = std::fs::remove_file(&mac);
            return None;
        }
        // SAFETY: deserializing runs native code compiled earlier. The bytes are
        // exactly what this domain's engine serialized: the HMAC under the
        // domain's secret key was verified just above, so they were neither
        // altered nor planted by anyone without the key.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &bytes) };
        component.ok()
    }

    pub(crate) fn store(&self, engine: &Engine, sha: &str, component: &Component) {
        let (art, mac) = self.paths(engine, sha);
        let result = component.serialize().map_err(wasm_err).and_then(|bytes| {
            let tag = self.tag(&art, &bytes);
            inland_files::write_atomic(&art, &bytes)
                .and_then(|_| inland_files::write_atomic(&mac, hex::encode(tag.as_ref()).as_bytes()))
                .map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not cache the compiled component");
        }
    }
}
