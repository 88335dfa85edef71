//! # inland-ledger: tamper-evident evidence for an Inland domain
//!
//! An append-only Merkle tree log as in RFC 9162, with Ed25519-signed
//! checkpoints, inclusion and consistency proofs, full verification that
//! names the first bad entry, and exports that a regulator can verify offline
//! with only the entries, a checkpoint and the domain's public key.
//!
//! Entries are JSON objects with a `seq` field equal to their position; the
//! ledger assigns it, so removed, inserted or reordered entries are located
//! exactly. What else an entry says is the caller's business (the runtime
//! records its events).
//!
//! Durability: an append returns only after its record is on disk. Appends
//! that arrive together share one `fsync` (group commit). A crash can only
//! leave a torn final record, which is cut off when the ledger is next opened;
//! [`Ledger::open`] reports the repair so the caller can record it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod export;
pub mod merkle;
mod store;

pub use export::{EXPORT_CHECKPOINT, EXPORT_ENTRIES, EXPORT_PUBLIC_KEY, ExportFiles, OfflineReport, verify_export};

use inland_files::{sync_dir, write_atomic, write_private};
use merkle::Hash;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use store::{Frontier, Stop};

const ENTRIES: &str = "entries.log";
const CHECKPOINTS: &str = "checkpoints.jsonl";
const PUBLIC_KEY: &str = "public.key";

/// A signed statement of the ledger's size and root at a moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Entries covered.
    pub tree_size: u64,
    /// Merkle root over them, hex.
    pub root: String,
    /// When it was signed (ms since the Unix epoch).
    pub at_ms: u64,
    /// Ed25519 signature over [`Checkpoint::signed_bytes`], hex.
    pub signature: String,
}

impl Checkpoint {
    /// The exact bytes that are signed.
    pub fn signed_bytes(tree_size: u64, root: &str, at_ms: u64) -> Vec<u8> {
        format!("inland-ledger-checkpoint/v1\n{tree_size}\n{root}\n{at_ms}\n").into_bytes()
    }

    /// Checks the signature with a public key (32 raw Ed25519 bytes).
    pub fn verify_signature(&self, public_key: &[u8]) -> bool {
        let Ok(sig) = hex::decode(&self.signature) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(&Checkpoint::signed_bytes(self.tree_size, &self.root, self.at_ms), &sig)
            .is_ok()
    }
}

/// An inclusion proof for one entry against a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The entry's index.
    pub index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The entry's leaf hash, hex.
    pub leaf_hash: String,
    /// The audit path, hex.
    pub path: Vec<String>,
    /// The root it leads to, hex.
    pub root: String,
}

/// A consistency proof between two tree sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The older size.
    pub old_size: u64,
    /// The newer size.
    pub new_size: u64,
    /// Root at the older size, hex.
    pub old_root: String,
    /// Root at the newer size, hex.
    pub new_root: String,
    /// The proof, hex.
    pub path: Vec<String>,
}

/// What a full verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
    /// The first problem found, naming the entry; `None` when all is well.
    pub problem: Option<String>,
}

struct Writer {
    file: File,
    leaves: Vec<Hash>,
    frontier: Frontier,
    end: u64,
    broken: bool,
}

struct Sync {
    synced: u64,
    syncing: bool,
}

/// The domain's evidence ledger.
pub struct Ledger {
    dir: PathBuf,
    key: Ed25519KeyPair,
    writer: Mutex<Writer>,
    sync_file: File,
    sync: Mutex<Sync>,
    synced: Condvar,
    /// Serializes checkpoints so that they are stored in tree-size order.
    checkpointing: Mutex<()>,
}

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a ledger file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The ledger is damaged in a way that is not a torn tail: it will not append.
    #[error("{0}")]
    Corrupt(String),
    /// The request is wrong (an index or size out of range, a bad key).
    #[error("{0}")]
    Invalid(String),
    /// A bug or an environment failure.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result with the ledger's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<inland_files::FileError> for Error {
    fn from(e: inland_files::FileError) -> Self {
        Error::Io {
            path: e.path,
            source: e.source,
        }
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// The sequence number every entry carries.
#[derive(Deserialize)]
struct Seq {
    seq: u64,
}

fn seq_of(entry: &[u8]) -> std::result::Result<u64, String> {
    serde_json::from_slice::<Seq>(entry)
        .map(|s| s.seq)
        .map_err(|e| e.to_string())
}

/// A torn final record cut off when the ledger was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repair {
    /// Index of the entry that was cut (the ledger's size after the cut).
    pub at_entry: u64,
    /// Bytes cut.
    pub cut_bytes: u64,
}

fn lock_err<T>(_: T) -> Error {
    Error::Internal("ledger lock poisoned".into())
}

impl Ledger {
    /// Opens the ledger in `dir`, creating it (and its signing key, kept at
    /// `key_path`) if needed, and cutting a torn final record; the cut is
    /// returned so that the caller can record it.
    pub fn open(dir: &Path, key_path: &Path) -> Result<(Ledger, Option<Repair>)> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let key = load_or_create_key(key_path, &dir.join(PUBLIC_KEY))?;
        let path = dir.join(ENTRIES);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let (records, stop) = store::scan(&bytes);
        let mut repair = None;
        let keep = match stop {
            None => bytes.len(),
            Some(Stop::Incomplete { offset }) => {
                repair = Some((records.len(), bytes.len() - offset));
                offset
            }
            Some(Stop::Altered { offset }) => {
                // Only a final record can be torn; an altered record with whole
                // records after it is tampering, and nothing is appended to that.
                let len = bytes
                    .get(offset..offset + 4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                    .unwrap_or(usize::MAX);
                let next = offset.saturating_add(len).saturating_add(store::FRAME);
                if len <= store::MAX_ENTRY && next < bytes.len() {
                    return Err(Error::Corrupt(format!(
                        "ledger entry {} is corrupt; run `inland ledger verify`",
                        records.len()
                    )));
                }
                repair = Some((records.len(), bytes.len() - offset));
                offset
            }
        };
        let mut leaves = Vec::with_capacity(records.len());
        let mut frontier = Frontier::default();
        for (i, r) in records.iter().enumerate() {
            let seq =
                seq_of(r.entry).map_err(|e| Error::Corrupt(format!("ledger entry {i} is not a valid record: {e}")))?;
            if seq != i as u64 {
                return Err(Error::Corrupt(format!(
                    "ledger entry {i} has sequence number {seq}; run `inland ledger verify`"
                )));
            }
            leaves.push(r.stored);
            frontier.push(r.stored);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        if keep < bytes.len() {
            file.set_len(keep as u64).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
        }
        repair_checkpoints(&dir.join(CHECKPOINTS))?;
        sync_dir(dir)?;
        let sync_file = file.try_clone().map_err(io(&path))?;
        let ledger = Ledger {
            dir: dir.to_path_buf(),
            key,
            writer: Mutex::new(Writer {
                file,
                leaves,
                frontier,
                end: keep as u64,
                broken: false,
            }),
            sync_file,
            sync: Mutex::new(Sync {
                synced: keep as u64,
                syncing: false,
            }),
            synced: Condvar::new(),
            checkpointing: Mutex::new(()),
        };
        let repair = repair.map(|(at_entry, cut_bytes)| {
            tracing::warn!(at_entry, cut_bytes, "ledger: cut a torn final record");
            Repair {
                at_entry: at_entry as u64,
                cut_bytes: cut_bytes as u64,
            }
        });
        Ok((ledger, repair))
    }

    /// The domain's public key (32 raw bytes), for offline verification.
    pub fn public_key(&self) -> Vec<u8> {
        self.key.public_key().as_ref().to_vec()
    }

    /// Signs a document (an export manifest) with the domain's key, so that
    /// whoever holds the public key can check where it came from.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).as_ref().to_vec()
    }

    /// Entries in the ledger.
    pub fn len(&self) -> u64 {
        self.writer.lock().map(|w| w.leaves.len() as u64).unwrap_or(0)
    }

    /// Whether the ledger has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the entry `make(seq)` builds for its sequence number, and
    /// returns that number once the entry is durable. The entry must be a JSON
    /// object whose `seq` field is `seq`.
    pub fn append_with(&self, make: impl FnOnce(u64) -> Result<Vec<u8>>) -> Result<u64> {
        let path = self.dir.join(ENTRIES);
        let (seq, end) = {
            let mut w = self.writer.lock().map_err(lock_err)?;
            if w.broken {
                return Err(Error::Corrupt(
                    "an earlier ledger write failed; reopen the ledger to repair it".into(),
                ));
            }
            let seq = w.leaves.len() as u64;
            let entry = make(seq)?;
            if seq_of(&entry) != Ok(seq) {
                return Err(Error::Invalid(format!(
                    "an entry must be a JSON object with \"seq\": {seq}"
                )));
            }
            if entry.contains(&b'\n') || entry.len() > store::MAX_ENTRY {
                return Err(Error::Invalid("an entry must be one line of at most 16 MiB".into()));
            }
            let framed = store::encode(&entry);
            if let Err(e) = w.file.write_all(&framed) {
                w.broken = true;
                return Err(Error::io(&path, e));
            }
            let leaf = merkle::leaf_hash(&entry);
            w.leaves.push(leaf);
            w.frontier.push(leaf);
            w.end += framed.len() as u64;
            (seq, w.end)
        };
        self.wait_durable(end)?;
        Ok(seq)
    }

    /// Group commit: one caller syncs for everyone whose record was written before it started.
    fn wait_durable(&self, end: u64) -> Result<()> {
        let mut s = self.sync.lock().map_err(lock_err)?;
        while s.synced < end {
            if s.syncing {
                s = self.synced.wait(s).map_err(lock_err)?;
                continue;
            }
            s.syncing = true;
            drop(s);
            let upto = self.writer.lock().map_err(lock_err)?.end;
            let result = self.sync_file.sync_data();
            s = self.sync.lock().map_err(lock_err)?;
            s.syncing = false;
            if result.is_ok() {
                s.synced = s.synced.max(upto);
            }
            self.synced.notify_all();
            result.map_err(io(&self.dir.join(ENTRIES)))?;
        }
        Ok(())
    }

    /// Signs and stores a checkpoint of everything appended so far.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        let _order = self.checkpointing.lock().map_err(lock_err)?;
        let (size, root, end) = {
            let w = self.writer.lock().map_err(lock_err)?;
            (w.frontier.size(), w.frontier.root(), w.end)
        };
        self.wait_durable(end)?;
        let at_ms = now_ms();
        let root = hex::encode(root);
        let sig = self.key.sign(&Checkpoint::signed_bytes(size, &root, at_ms));
        let cp = Checkpoint {
            tree_size: size,
            root,
            at_ms,
            signature: hex::encode(sig.as_ref()),
        };
        let path = self.dir.join(CHECKPOINTS);
        let mut line = serde_json::to_vec(&cp).map_err(|e| Error::Internal(e.to_string()))?;
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(&line).and_then(|_| f.sync_data()).map_err(io(&path))?;
        Ok(cp)
    }

    /// Every stored checkpoint, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        read_checkpoints(&self.dir.join(CHECKPOINTS)).map(|(cps, _)| cps)
    }

    /// The bytes of every entry, exactly as hashed.
    pub fn raw_entries(&self) -> Result<Vec<Vec<u8>>> {
        let path = self.dir.join(ENTRIES);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        Ok(store::scan(&bytes).0.iter().map(|r| r.entry.to_vec()).collect())
    }

    /// An inclusion proof of entry `index` in the tree of `tree_size` entries
    /// (the whole ledger when `None`).
    pub fn inclusion_proof(&self, index: u64, tree_size: Option<u64>) -> Result<InclusionProof> {
        let w = self.writer.lock().map_err(lock_err)?;
        let size = tree_size.unwrap_or(w.leaves.len() as u64);
        if size > w.leaves.len() as u64 || index >= size {
            return Err(Error::Invalid(format!(
                "entry {index} is not in a tree of {size} entries (the ledger has {})",
                w.leaves.len()
            )));
        }
        let leaves = &w.leaves[..size as usize];
        let path =
            merkle::inclusion_proof(leaves, index as usize).ok_or_else(|| Error::Internal("inclusion proof".into()))?;
        Ok(InclusionProof {
            index,
            tree_size: size,
            leaf_hash: hex::encode(leaves[index as usize]),
            path: path.iter().map(hex::encode).collect(),
            root: hex::encode(merkle::root(leaves)),
        })
    }

    /// A consistency proof between two tree sizes.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<ConsistencyProof> {
        let w = self.writer.lock().map_err(lock_err)?;
        if old_size == 0 || old_size > new_size || new_size > w.leaves.len() as u64 {
            return Err(Error::Invalid(format!(
                "sizes must satisfy 0 < OLD <= NEW <= {} (got {old_size} and {new_size})",
                w.leaves.len()
            )));
        }
        let leaves = &w.leaves[..new_size as usize];
        let path = merkle::consistency_proof(leaves, old_size as usize)
            .ok_or_else(|| Error::Internal("consistency proof".into()))?;
        Ok(ConsistencyProof {
            old_size,
            new_size,
            old_root: hex::encode(merkle::root(&leaves[..old_size as usize])),
            new_root: hex::encode(merkle::root(leaves)),
            path: if old_size == new_size {
                Vec::new()
            } else {
                path.iter().map(hex::encode).collect()
            },
        })
    }

    /// Recomputes every hash and checks every checkpoint signature.
    pub fn verify(&self) -> Result<VerifyReport> {
        verify_dir(&self.dir, &self.public_key())
    }
}

fn load_or_create_key(key_path: &Path, public_path: &Path) -> Result<Ed25519KeyPair> {
    let pkcs8 = match std::fs::read(key_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let rng = ring::rand::SystemRandom::new();
            let doc = Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| Error::Internal("generating the ledger key failed".into()))?;
            write_private(key_path, doc.as_ref())?;
            doc.as_ref().to_vec()
        }
        Err(e) => return Err(Error::io(key_path, e)),
    };
    let key = Ed25519KeyPair::from_pkcs8(&pkcs8)
        .map_err(|_| Error::Invalid(format!("{} is not an Ed25519 key", key_path.display())))?;
    let public_hex = hex::encode(key.public_key().as_ref());
    if std::fs::read_to_string(public_path).ok().as_deref().map(str::trim) != Some(public_hex.as_str()) {
        write_atomic(public_path, format!("{public_hex}\n").as_bytes())?;
    }
    Ok(key)
}

/// Checks a signature made by [`Ledger::sign`] with the domain's public key (32 raw bytes).
pub fn verify_signature(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

/// The public key (32 raw bytes) of the signing key stored at `path`.
pub fn public_key_of(path: &Path) -> Result<Vec<u8>> {
    let pkcs8 = std::fs::read(path).map_err(io(path))?;
    let key = Ed25519KeyPair::from_pkcs8(&pkcs8)
        .map_err(|_| Error::Invalid(format!("{} is not an Ed25519 key", path.display())))?;
    Ok(key.public_key().as_ref().to_vec())
}

/// Cuts a checkpoint line torn by a crash (the last line, unterminated).
fn repair_checkpoints(path: &Path) -> Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
    tracing::warn!(cut_bytes = bytes.len() - keep, "ledger: cut a torn checkpoint line");
    let f = std::fs::OpenOptions::new().write(true).open(path).map_err(io(path))?;
    f.set_len(keep as u64).and_then(|_| f.sync_all()).map_err(io(path))
}

fn read_checkpoints(path: &Path) -> Result<(Vec<Checkpoint>, Option<String>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match serde_json::from_str(line) {
            Ok(cp) => out.push(cp),
            Err(e) => return Ok((out, Some(format!("checkpoint {i} is not valid: {e}")))),
        }
    }
    Ok((out, None))
}

/// Verifies a ledger directory: every record, every sequence number, every
/// checkpoint's signature and root. Reads only; repairs nothing.
pub fn verify_dir(dir: &Path, public_key: &[u8]) -> Result<VerifyReport> {
    let path = dir.join(ENTRIES);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let (records, stop) = store::scan(&bytes);
    let mut report = VerifyReport {
        entries: 0,
        checkpoints: 0,
        problem: None,
    };
    let (checkpoints, cp_problem) = read_checkpoints(&dir.join(CHECKPOINTS))?;

    let mut frontier = Frontier::default();
    let mut cps = checkpoints.iter().enumerate().peekable();
    let mut last_good_cp: u64 = 0;
    while let Some((k, cp)) = cps.peek() {
        if cp.tree_size != 0 {
            break;
        }
        if let Some(p) = check_checkpoint(*k, cp, &frontier, public_key, 0) {
            report.problem = Some(p);
            return Ok(report);
        }
        report.checkpoints += 1;
        cps.next();
    }
    for (i, r) in records.iter().enumerate() {
        match seq_of(r.entry) {
            Ok(s) if s == i as u64 => {}
            Ok(s) => {
                report.problem = Some(format!(
                    "entry {i}: expected sequence number {i}, found {s}: entries were removed, inserted or reordered here"
                ));
                return Ok(report);
            }
            Err(e) => {
                report.problem = Some(format!("entry {i} is not a valid record: {e}"));
                return Ok(report);
            }
        }
        frontier.push(r.stored);
        report.entries += 1;
        while let Some((k, cp)) = cps.peek() {
            if cp.tree_size != frontier.size() {
                break;
            }
            if let Some(p) = check_checkpoint(*k, cp, &frontier, public_key, last_good_cp) {
                report.problem = Some(p);
                return Ok(report);
            }
            last_good_cp = cp.tree_size;
            report.checkpoints += 1;
            cps.next();
        }
    }
    if let Some(stop) = stop {
        let i = records.len();
        report.problem = Some(match stop {
            Stop::Incomplete { offset } => {
                format!("entry {i} (at byte {offset}) is incomplete: the ledger was truncated or a write was torn")
            }
            Stop::Altered { offset } => {
                format!("entry {i} (at byte {offset}) was altered: its content does not match its hash")
            }
        });
        return Ok(report);
    }
    if let Some((k, cp)) = cps.next() {
        report.problem = Some(format!(
            "checkpoint {k} covers {} entries but the ledger has {}: entries from {} on were removed, or checkpoints are out of order",
            cp.tree_size,
            frontier.size(),
            frontier.size()
        ));
        return Ok(report);
    }
    report.problem = cp_problem;
    Ok(report)
}

fn check_checkpoint(
    k: usize,
    cp: &Checkpoint,
    frontier: &Frontier,
    public_key: &[u8],
    last_good: u64,
) -> Option<String> {
    if !cp.verify_signature(public_key) {
        return Some(format!("checkpoint {k} (size {}) has a bad signature", cp.tree_size));
    }
    if cp.root != hex::encode(frontier.root()) {
        return Some(format!(
            "checkpoint {k} (size {}) does not match the entries: an entry between {} and {} was altered after it was signed",
            cp.tree_size,
            last_good,
            cp.tree_size.saturating_sub(1)
        ));
    }
    None
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
