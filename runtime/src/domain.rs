//! The domain directory: configuration, layout, and the domain's secret.

use crate::error::{Error, Result};
use crate::ledger::{EventLedger, KEY_FILE};
use crate::state::State;
pub use inland_sandbox::Limits;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The configuration file at the top of a domain directory.
pub const CONFIG_FILE: &str = "inland.toml";

/// The contents of `inland.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// A name for people: which domain this is.
    pub name: String,
    /// Job limits.
    #[serde(default)]
    pub limits: Limits,
}

/// An open domain directory. Holds the state database open.
pub struct Domain {
    root: PathBuf,
    config: DomainConfig,
    pub(crate) state: State,
    secret: [u8; 32],
}

const DIRS: [&str; 8] = [
    "datasets",
    "quarantine",
    "state",
    "cache",
    "spill",
    "keys",
    "ledger",
    "policies",
];
const SECRET_FILE: &str = "keys/domain.secret";

impl Domain {
    /// Creates a new domain directory (which must be empty or absent) with
    /// default limits, and opens it.
    pub fn init(root: &Path, name: &str) -> Result<Domain> {
        Domain::init_with(
            root,
            DomainConfig {
                name: name.to_string(),
                limits: Limits::default(),
            },
        )
    }

    /// Creates a new domain directory with the given configuration, and opens it.
    pub fn init_with(root: &Path, config: DomainConfig) -> Result<Domain> {
        validate_limits(&config.limits)?;
        if root.join(CONFIG_FILE).exists() {
            return Err(Error::Exists(format!("a domain at {}", root.display())));
        }
        if root.exists() {
            let mut entries = std::fs::read_dir(root).map_err(|e| Error::io(root, e))?;
            if entries.next().is_some() {
                return Err(Error::Invalid(format!(
                    "{} is not empty; a domain is created in an empty or new directory",
                    root.display()
                )));
            }
        }
        for dir in DIRS {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| Error::Internal("the system random generator failed".into()))?;
        inland_files::write_private(&root.join(SECRET_FILE), hex::encode(secret).as_bytes())?;
        let text = toml::to_string_pretty(&config).map_err(|e| Error::Internal(e.to_string()))?;
        let header = "# Inland domain configuration. Limits apply to every job.\n";
        inland_files::write_atomic(&root.join(CONFIG_FILE), format!("{header}{text}").as_bytes())?;
        // The ledger and its signing key exist from the start, so a new domain's
        // (empty) ledger verifies like any other.
        EventLedger::open(&root.join("ledger"), &root.join("keys").join(KEY_FILE))?;
        Domain::open(root)
    }

    /// Opens an existing domain directory.
    pub fn open(root: &Path) -> Result<Domain> {
        let config_path = root.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&config_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(format!(
                    "a domain at {} (no {CONFIG_FILE}; run `inland init`)",
                    root.display()
                ))
            } else {
                Error::io(&config_path, e)
            }
        })?;
        let config: DomainConfig =
            toml::from_str(&text).map_err(|e| Error::Invalid(format!("{}: {e}", config_path.display())))?;
        validate_limits(&config.limits)?;
        for dir in DIRS {
            let path = root.join(dir);
            if !path.is_dir() {
                return Err(Error::Invalid(format!(
                    "{} is missing: not a complete domain",
                    path.display()
                )));
            }
        }
        let secret_path = root.join(SECRET_FILE);
        let secret_hex = std::fs::read_to_string(&secret_path).map_err(|e| Error::io(&secret_path, e))?;
        let secret: [u8; 32] = hex::decode(secret_hex.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::Invalid(format!("{} is not a 32-byte hex secret", secret_path.display())))?;
        let state = State::open(&root.join("state").join("inland.redb"))?;
        let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        Ok(Domain {
            root,
            config,
            state,
            secret,
        })
    }

    /// The domain's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The domain's configuration.
    pub fn config(&self) -> &DomainConfig {
        &self.config
    }
    /// A subdirectory of the domain.
    pub(crate) fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    /// A key derived from the domain secret for one purpose, so that keys for
    /// different purposes never coincide.
    pub(crate) fn derived_key(&self, purpose: &str) -> [u8; 32] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.secret);
        let tag = ring::hmac::sign(&key, purpose.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// Checks the limits read from the configuration: none may be zero.
fn validate_limits(limits: &Limits) -> Result<()> {
    let bad = |what: &str| {
        Err(Error::Invalid(format!(
            "{CONFIG_FILE}: limits.{what} must be greater than zero"
        )))
    };
    if limits.memory_mib == 0 {
        return bad("memory_mib");
    }
    if limits.timeout_secs == 0 {
        return bad("timeout_secs");
    }
    if limits.max_concurrent_jobs == 0 {
        return bad("max_concurrent_jobs");
    }
    if limits.stack_kib < 64 {
        return Err(Error::Invalid(format!(
            "{CONFIG_FILE}: limits.stack_kib must be at least 64"
        )));
    }
    if limits.memory_mib > 4096 {
        return Err(Error::Invalid(format!(
            "{CONFIG_FILE}: limits.memory_mib must be at most 4096 (wasm32)"
        )));
    }
    Ok(())
}
