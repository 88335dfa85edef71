//! The limits that bound every job, as the domain configures them in
//! `inland.toml` under `[limits]`.

use serde::{Deserialize, Serialize};
use std::time::Duration;

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
    /// The log kept per job, in bytes.
    pub fn log_bytes(&self) -> usize {
        (self.log_kib << 10) as usize
    }
    /// The largest component accepted, in bytes.
    pub fn max_module_bytes(&self) -> u64 {
        self.max_module_mib << 20
    }
}
