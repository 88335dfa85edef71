//! The domain directory: configuration, layout, and the domain's secret.

use crate::error::{Error, Result};
use crate::state::State;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The configuration file at the top of a domain directory.
pub const CONFIG_FILE: &str = "inland.toml";

/// Limits that bound every job; set in `inland.toml` under `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear memory a job may use, in MiB.
    pub memory_mib: u64,
    /// Wall-clock time a job may run, in seconds.
    pub timeout_secs: u64,
    /// Total bytes of output tables a job may emit, in MiB.
    pub max_output_mib: u64,
    /// WebAssembly stack a job may use, in KiB.
    pub stack_kib: u64,
    /// Memory all running queries may use together, in MiB.
    pub query_memory_mib: u64,
    /// Jobs that may run at once; sizes the instance pool.
    pub max_concurrent_jobs: u32,
    /// Bytes of stdout, stderr and log lines kept per job, in KiB.
    pub log_kib: u64,
    /// Largest component accepted, in MiB.
    pub max_module_mib: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 256,
            timeout_secs: 60,
            max_output_mib: 64,
            stack_kib: 1024,
            query_memory_mib: 2048,
            max_concurrent_jobs: 16,
            log_kib: 256,
            max_module_mib: 64,
        }
    }
}

impl Limits {
    /// The job's memory limit in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib << 20
    }
    /// The job's wall-clock limit.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
    /// The job's output limit in bytes.
    pub fn max_output_bytes(&self) -> u64 {
        self.max_output_mib << 20
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: &str| {
            Err(Error::Invalid(format!(
                "{CONFIG_FILE}: limits.{what} must be greater than zero"
            )))
        };
        if self.memory_mib == 0 {
            return bad("memory_mib");
        }
        if self.timeout_secs == 0 {
            return bad("timeout_secs");
        }
        if self.max_concurrent_jobs == 0 {
            return bad("max_concurrent_jobs");
        }
        if self.stack_kib < 64 {
            return Err(Error::Invalid(format!(
                "{CONFIG_FILE}: limits.stack_kib must be at least 64"
            )));
        }
        if self.memory_mib > 4096 {
            return Err(Error::Invalid(format!(
                "{CONFIG_FILE}: limits.memory_mib must be at most 4096 (wasm32)"
            )));
        }
        Ok(())
    }
}

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
        config.limits.validate()?;
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
        write_private(&root.join(SECRET_FILE), hex::encode(secret).as_bytes())?;
        let text = toml::to_string_pretty(&config).map_err(|e| Error::Internal(e.to_string()))?;
        let header = "# Inland domain configuration. Limits apply to every job.\n";
        crate::fsutil::write_atomic(&root.join(CONFIG_FILE), format!("{header}{text}").as_bytes())?;
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
        config.limits.validate()?;
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

/// Creates a file only its owner can read, failing if it exists.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(path, e))
}
