//! Keys: one AES-256-GCM data key per grant, stored wrapped by the domain's
//! master key. Everything a grant's jobs leave in the domain is sealed with
//! its key, so destroying the key destroys the data — copies included.
//!
//! Rotating the master key re-wraps every grant key: new files are written
//! beside the old ones, the new master key is renamed into place (the commit
//! point), then the new wrapped keys are. An interrupted rotation is finished
//! or rolled back when the key store is next opened.

use crate::error::{Error, Result};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::{Path, PathBuf};

const MASTER: &str = "master.key";
const GRANTS: &str = "grants";
const NEXT: &str = "next";
/// The file name (among the grant keys, so that a master rotation re-wraps
/// it) of the domain's entity key. Grant ids start with `g-`: no clash.
const ENTITY: &str = "domain-entities";

/// The tag of a master key: an HMAC of a fixed text under it, 16 bytes.
fn tag_of(key: &[u8; 32]) -> String {
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        b"inland master key tag/v1",
    );
    hex::encode(&tag.as_ref()[..16])
}

fn random32() -> Result<[u8; 32]> {
    let mut k = [0u8; 32];
    SystemRandom::new()
        .fill(&mut k)
        .map_err(|_| Error::Internal("the system random generator failed".into()))?;
    Ok(k)
}

/// A 256-bit AES-GCM key.
pub(crate) struct SealingKey(LessSafeKey);

impl SealingKey {
    fn new(bytes: &[u8; 32]) -> Result<SealingKey> {
        let k = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| Error::Internal("AES key".into()))?;
        Ok(SealingKey(LessSafeKey::new(k)))
    }

    /// `nonce || ciphertext || tag`, bound to `aad`.
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &str) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Error::Internal("the system random generator failed".into()))?;
        let mut data = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut data,
            )
            .map_err(|_| Error::Internal("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend(data);
        Ok(out)
    }

    /// Opens what [`SealingKey::seal`] produced with the same `aad`.
    pub(crate) fn open(&self, sealed: &[u8], aad: &str) -> Result<Vec<u8>> {
        let fail = || {
            Error::Invalid(format!(
                "sealed data for {aad} does not open: altered, or sealed under another key"
            ))
        };
        if sealed.len() < NONCE_LEN {
            return Err(fail());
        }
        let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).map_err(|_| fail())?;
        let mut data = sealed[NONCE_LEN..].to_vec();
        let n = self
            .0
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut data)
            .map_err(|_| fail())?
            .len();
        data.truncate(n);
        Ok(data)
    }
}

/// The domain's key store (the `keys/` directory).
pub(crate) struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    /// Opens the key store, creating the master key if there is none and
    /// finishing or undoing an interrupted rotation.
    pub(crate) fn open(dir: &Path) -> Result<KeyStore> {
        let grants = dir.join(GRANTS);
        std::fs::create_dir_all(grants.join(NEXT)).map_err(|e| Error::io(&grants, e))?;
        let store = KeyStore { dir: dir.to_path_buf() };
        store.recover()?;
        if !dir.join(MASTER).exists() {
            inland_files::write_private(&dir.join(MASTER), hex::encode(random32()?).as_bytes())?;
        }
        Ok(store)
    }

    fn read_key(path: &Path) -> Result<[u8; 32]> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        hex::decode(text.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::Invalid(format!("{} is not a 32-byte hex key", path.display())))
    }

    fn master(&self) -> Result<SealingKey> {
        SealingKey::new(&KeyStore::read_key(&self.dir.join(MASTER))?)
    }

    /// A tag naming the master key in force without revealing it: the
    /// ledger's `master_key_rotated` carries the new key's tag, and start-up
    /// compares it with this to tell whether that rotation committed.
    pub(crate) fn master_tag(&self) -> Result<String> {
        Ok(tag_of(&KeyStore::read_key(&self.dir.join(MASTER))?))
    }

    fn grant_path(&self, grant: &str) -> PathBuf {
        self.dir.join(GRANTS).join(format!("{grant}.key"))
    }

    /// Creates the data key of a new grant.
    pub(crate) fn create_grant_key(&self, grant: &str) -> Result<()> {
        let wrapped = self
            .master()?
            .seal(hex::encode(random32()?).as_bytes(), &format!("grant-key:{grant}"))?;
        Ok(inland_files::write_private(
            &self.grant_path(grant),
            hex::encode(wrapped).as_bytes(),
        )?)
    }

    /// The data key of a grant; an error if it was destroyed.
    pub(crate) fn grant_key(&self, grant: &str) -> Result<SealingKey> {
        SealingKey::new(&self.grant_key_bytes(grant)?)
    }

    /// The grant's pseudonym key, derived from its data key: pseudonyms never
    /// link across grants, and die with the grant.
    pub(crate) fn pseudonym_key(&self, grant: &str) -> Result<[u8; 32]> {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.grant_key_bytes(grant)?);
        let tag = ring::hmac::sign(&key, b"inland-pseudonym/v1");
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// The domain's entity key, created on first use: it keys the hidden
    /// entity hash, which must be the same under every grant so that the
    /// entity sketches of cells released under different grants compare.
    /// Jobs never see the hash; it never leaves the host.
    pub(crate) fn entity_key(&self) -> Result<[u8; 32]> {
        if !self.grant_path(ENTITY).exists() {
            // Two processes may race to create it: the loser reads the winner's.
            if let Err(e) = self.create_grant_key(ENTITY)
                && !self.grant_path(ENTITY).exists()
            {
                return Err(e);
            }
        }
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.grant_key_bytes(ENTITY)?);
        let tag = ring::hmac::sign(&key, b"inland-entity/v1");
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn grant_key_bytes(&self, grant: &str) -> Result<[u8; 32]> {
        let path = self.grant_path(grant);
        let wrapped = match std::fs::read_to_string(&path) {
            Ok(t) => hex::decode(t.trim()).map_err(|_| Error::Invalid(format!("{} is not hex", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(format!(
                    "the data key of grant `{grant}` (destroyed or never created)"
                )));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let hexkey = self.master()?.open(&wrapped, &format!("grant-key:{grant}"))?;
        hex::decode(&hexkey)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::Invalid(format!("the key of grant `{grant}` is malformed")))
    }

    /// The ids of the grants that have a data key (the domain's own keys
    /// among them are not listed).
    pub(crate) fn grant_key_ids(&self) -> Result<Vec<String>> {
        let dir = self.dir.join(GRANTS);
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let name = entry.map_err(|e| Error::io(&dir, e))?.file_name();
            if let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".key"))
                && id.starts_with("g-")
            {
                ids.push(id.to_string());
            }
        }
        Ok(ids)
    }

    /// Destroys a grant's data key: overwritten, synced, removed. Returns
    /// whether there was a key to destroy.
    pub(crate) fn destroy_grant_key(&self, grant: &str) -> Result<bool> {
        use std::io::Write;
        let path = self.grant_path(grant);
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len() as usize,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        f.write_all(&vec![0u8; len])
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(&path, e))?;
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        inland_files::sync_dir(&self.dir.join(GRANTS))?;
        Ok(true)
    }

    /// Replaces the master key and re-wraps every grant key under it.
    #[cfg(test)]
    pub(crate) fn rotate_master(&self) -> Result<usize> {
        self.rotate_master_announced(|_, _| Ok(()))
    }

    /// [`KeyStore::rotate_master`], calling `announce` with the number of
    /// keys re-wrapped and the new key's tag once everything is written and
    /// before the commit point: if it fails, the rotation is undone.
    pub(crate) fn rotate_master_announced(&self, announce: impl FnOnce(usize, String) -> Result<()>) -> Result<usize> {
        let old = self.master()?;
        let new_bytes = random32()?;
        let new = SealingKey::new(&new_bytes)?;
        let next_dir = self.dir.join(GRANTS).join(NEXT);
        // The uncommitted new key is written first: while it is there, the
        // keys under `next/` are a rotation in progress, which a start-up
        // throws away. (Written last, a stop while re-wrapping left keys
        // under `next/` with no `master.next`, which reads as committed:
        // they replaced the good keys, sealed under a key never kept.)
        inland_files::write_atomic(
            &self.dir.join(format!("{MASTER}.next")),
            hex::encode(new_bytes).as_bytes(),
        )?;
        let mut count = 0;
        for entry in std::fs::read_dir(self.dir.join(GRANTS)).map_err(|e| Error::io(&self.dir, e))? {
            let path = entry.map_err(|e| Error::io(&self.dir, e))?.path();
            let Some(grant) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".key"))
            else {
                continue;
            };
            let aad = format!("grant-key:{grant}");
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let wrapped =
                hex::decode(text.trim()).map_err(|_| Error::Invalid(format!("{} is not hex", path.display())))?;
            let rewrapped = new.seal(&old.open(&wrapped, &aad)?, &aad)?;
            inland_files::write_atomic(
                &next_dir.join(format!("{grant}.key")),
                hex::encode(rewrapped).as_bytes(),
            )?;
            count += 1;
            inland_files::crash_point("rotation-rewrapping");
        }
        if let Err(e) = announce(count, tag_of(&new_bytes)) {
            self.recover()?;
            return Err(e);
        }
        inland_files::crash_point("rotation-announced");
        // The commit point: from here on the new key is the master key.
        std::fs::rename(self.dir.join(format!("{MASTER}.next")), self.dir.join(MASTER))
            .map_err(|e| Error::io(self.dir.join(MASTER), e))?;
        inland_files::sync_dir(&self.dir)?;
        self.recover()?;
        Ok(count)
    }

    /// Finishes a rotation whose master key was committed, or undoes one that was not.
    fn recover(&self) -> Result<()> {
        let next_dir = self.dir.join(GRANTS).join(NEXT);
        let uncommitted = self.dir.join(format!("{MASTER}.next"));
        let committed = !uncommitted.exists();
        for entry in std::fs::read_dir(&next_dir).map_err(|e| Error::io(&next_dir, e))? {
            let path = entry.map_err(|e| Error::io(&next_dir, e))?.path();
            let result = match (committed, path.file_name()) {
                (true, Some(name)) => std::fs::rename(&path, self.dir.join(GRANTS).join(name)),
                _ => std::fs::remove_file(&path),
            };
            result.map_err(|e| Error::io(&path, e))?;
        }
        if !committed {
            std::fs::remove_file(&uncommitted).map_err(|e| Error::io(&uncommitted, e))?;
        }
        Ok(inland_files::sync_dir(&self.dir.join(GRANTS))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rotation stopped while re-wrapping (its new master key written
    /// first, some keys re-wrapped under it) is undone at the next open:
    /// every grant key still opens under the master key in force.
    #[test]
    fn a_rotation_stopped_while_rewrapping_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let ks = KeyStore::open(dir.path()).unwrap();
        ks.create_grant_key("g-1").unwrap();
        ks.create_grant_key("g-2").unwrap();
        let sealed = ks.grant_key("g-1").unwrap().seal(b"district table", "out-1").unwrap();
        // What a stop after the first re-wrap leaves behind.
        let lost = random32().unwrap();
        let rewrapped = SealingKey::new(&lost)
            .unwrap()
            .seal(&[7u8; 32], "grant-key:g-1")
            .unwrap();
        std::fs::write(dir.path().join(format!("{MASTER}.next")), hex::encode(lost)).unwrap();
        std::fs::write(
            dir.path().join(GRANTS).join(NEXT).join("g-1.key"),
            hex::encode(rewrapped),
        )
        .unwrap();
        let reopened = KeyStore::open(dir.path()).unwrap();
        assert_eq!(
            reopened.grant_key("g-1").unwrap().open(&sealed, "out-1").unwrap(),
            b"district table"
        );
        assert!(reopened.grant_key("g-2").is_ok());
        assert!(!dir.path().join(format!("{MASTER}.next")).exists());
        assert_eq!(
            std::fs::read_dir(dir.path().join(GRANTS).join(NEXT)).unwrap().count(),
            0
        );
    }

    #[test]
    fn grant_keys_survive_rotation_and_die_with_destruction() {
        let dir = tempfile::tempdir().unwrap();
        let ks = KeyStore::open(dir.path()).unwrap();
        ks.create_grant_key("g-1").unwrap();
        ks.create_grant_key("g-2").unwrap();
        let sealed = ks.grant_key("g-1").unwrap().seal(b"district table", "out-1").unwrap();
        assert!(
            ks.grant_key("g-2").unwrap().open(&sealed, "out-1").is_err(),
            "another grant's key"
        );
        assert!(
            ks.grant_key("g-1").unwrap().open(&sealed, "out-2").is_err(),
            "bound to its name"
        );
        assert_eq!(ks.rotate_master().unwrap(), 2);
        let reopened = KeyStore::open(dir.path()).unwrap();
        assert_eq!(
            reopened.grant_key("g-1").unwrap().open(&sealed, "out-1").unwrap(),
            b"district table"
        );
        assert!(reopened.destroy_grant_key("g-1").unwrap());
        assert!(matches!(reopened.grant_key("g-1"), Err(Error::NotFound(_))));
        assert!(!reopened.destroy_grant_key("g-1").unwrap());
    }
}
