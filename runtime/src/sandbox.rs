//! The sandbox: wasmtime configured for hostile, multi-tenant code. Each
//! component is compiled once (and cached, integrity-checked, on disk); each
//! job gets a fresh store with memory, time, stack and instance limits, and
//! exactly the imports of the `inland:job` world plus the bits of WASI that
//! Rust's std needs.

use crate::domain::Limits;
use crate::error::{Error, JobError};
use crate::host::{JobState, bindings};
use ring::hmac;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasData, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Strategy, Trap, UpdateDeadline,
};

/// How often the epoch advances; a job overrunning its deadline stops within one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The interfaces a job may import, by name without version.
const ALLOWED_IMPORTS: [&str; 19] = [
    "inland:job/host",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// Refuses imports outside the allow-list, naming the capability.
pub(crate) fn check_import(name: &str) -> Result<(), JobError> {
    let interface = name.split('@').next().unwrap_or(name);
    if ALLOWED_IMPORTS.contains(&interface) {
        return Ok(());
    }
    let why = if interface.starts_with("wasi:filesystem") {
        "jobs have no access to files (wasi:filesystem); read data with query()"
    } else if interface.starts_with("wasi:sockets") || interface.starts_with("wasi:http") {
        "jobs have no network access (wasi:sockets); outputs leave only through the release gate"
    } else {
        "it is not part of the inland:job world"
    };
    Err(JobError::CapabilityDenied {
        import: name.to_string(),
        why: why.to_string(),
    })
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine) -> std::io::Result<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new().name("inland-epoch".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })?;
        Ok(Ticker {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct HasIo;
impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}
struct HasRandom;
impl HasData for HasRandom {
    type Data<'a> = &'a mut wasmtime_wasi::random::WasiRandomCtx;
}

/// Adds the WASI interfaces std needs — and nothing that reaches files or the network.
fn add_wasi(linker: &mut Linker<JobState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, random};
    use wasmtime_wasi_io::bindings::wasi::io;
    let l = linker;
    io::error::add_to_linker::<JobState, HasIo>(l, |t| &mut t.table)?;
    io::poll::add_to_linker::<JobState, HasIo>(l, |t| &mut t.table)?;
    io::streams::add_to_linker::<JobState, HasIo>(l, |t| &mut t.table)?;
    clocks::wall_clock::add_to_linker::<JobState, WasiClocks>(l, JobState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<JobState, WasiClocks>(l, JobState::clocks)?;
    random::random::add_to_linker::<JobState, HasRandom>(l, |t| &mut t.random)?;
    random::insecure::add_to_linker::<JobState, HasRandom>(l, |t| &mut t.random)?;
    random::insecure_seed::add_to_linker::<JobState, HasRandom>(l, |t| &mut t.random)?;
    cli::exit::add_to_linker::<JobState, WasiCli>(l, JobState::cli)?;
    cli::environment::add_to_linker::<JobState, WasiCli>(l, JobState::cli)?;
    cli::stdin::add_to_linker::<JobState, WasiCli>(l, JobState::cli)?;
    cli::stdout::add_to_linker::<JobState, WasiCli>(l, JobState::cli)?;
    cli::stderr::add_to_linker::<JobState, WasiCli>(l, JobState::cli)?;
    cli::terminal_input::add_to_linker::<JobState, WasiCli>(l, JobState::cli)?;
    cli::terminal_output::add_to_linker::<JobState, WasiCli>(l, JobState::cli)?;
    cli::terminal_stdin::add_to_linker::<JobState, WasiCli>(l, JobState::cli)?;
    cli::terminal_stdout::add_to_linker::<JobState, WasiCli>(l, JobState::cli)?;
    cli::terminal_stderr::add_to_linker::<JobState, WasiCli>(l, JobState::cli)?;
    Ok(())
}

/// A compiled, linked job ready to instantiate.
pub(crate) type Prepared = bindings::JobPre<JobState>;

/// The wasmtime engine, linker and compiled-component cache of one domain.
pub(crate) struct Sandbox {
    engine: Engine,
    linker: Linker<JobState>,
    cache_dir: PathBuf,
    cache_key: hmac::Key,
    compiled: Mutex<HashMap<String, Prepared>>,
    limits: Limits,
    _ticker: Ticker,
}

fn wasm_err(e: wasmtime::Error) -> String {
    format!("{e:#}")
}

impl Sandbox {
    pub(crate) fn new(limits: &Limits, cache_dir: PathBuf, cache_key: [u8; 32]) -> Result<Sandbox, Error> {
        let jobs = limits.max_concurrent_jobs;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(jobs)
            .total_core_instances(jobs.saturating_mul(16))
            .total_memories(jobs.saturating_mul(4))
            .total_tables(jobs.saturating_mul(16))
            .total_stacks(jobs)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_memory_size(limits.memory_bytes() as usize);
        let mut config = Config::new();
        config
            .strategy(Strategy::Cranelift)
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(limits.stack_kib as usize * 1024)
            .async_stack_size(limits.stack_kib as usize * 1024 + (1 << 20))
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| Error::Internal(format!("wasm engine: {}", wasm_err(e))))?;
        let mut linker = Linker::new(&engine);
        add_wasi(&mut linker).map_err(|e| Error::Internal(format!("linking WASI: {}", wasm_err(e))))?;
        bindings::Job::add_to_linker::<JobState, wasmtime::component::HasSelf<JobState>>(&mut linker, |s| s)
            .map_err(|e| Error::Internal(format!("linking inland:job: {}", wasm_err(e))))?;
        let ticker = Ticker::start(engine.clone()).map_err(|e| Error::Internal(format!("epoch ticker: {e}")))?;
        Ok(Sandbox {
            engine,
            linker,
            cache_dir,
            cache_key: hmac::Key::new(hmac::HMAC_SHA256, &cache_key),
            compiled: Mutex::new(HashMap::new()),
            limits: limits.clone(),
            _ticker: ticker,
        })
    }

    fn cache_paths(&self, sha: &str) -> (PathBuf, PathBuf) {
        use std::hash::{Hash, Hasher};
        // Artifacts from another engine configuration or wasmtime version get other names.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        let stem = format!("{sha}-{:016x}", h.finish());
        (
            self.cache_dir.join(format!("{stem}.cwasm")),
            self.cache_dir.join(format!("{stem}.mac")),
        )
    }

    /// Loads a compiled artifact from the cache if its keyed hash proves this domain wrote it.
    fn load_cached(&self, sha: &str) -> Option<Component> {
        let (art, mac) = self.cache_paths(sha);
        let bytes = std::fs::read(&art).ok()?;
        let tag = hex::decode(std::fs::read_to_string(&mac).ok()?.trim()).ok()?;
        if hmac::verify(&self.cache_key, &bytes, &tag).is_err() {
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
        let component = unsafe { Component::deserialize(&self.engine, &bytes) };
        component.ok()
    }

    fn store_cached(&self, sha: &str, component: &Component) {
        let (art, mac) = self.cache_paths(sha);
        let result = component.serialize().map_err(wasm_err).and_then(|bytes| {
            let tag = hmac::sign(&self.cache_key, &bytes);
            crate::fsutil::write_atomic(&art, &bytes)
                .and_then(|_| crate::fsutil::write_atomic(&mac, hex::encode(tag.as_ref()).as_bytes()))
                .map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not cache the compiled component");
        }
    }

    /// Validates, compiles (or loads from the cache), checks imports and links
    /// a component. Returns its SHA-256 and the pre-linked job.
    pub(crate) fn prepare(&self, wasm: &[u8]) -> Result<(String, Prepared), JobError> {
        let max = self.limits.max_module_mib << 20;
        if wasm.len() as u64 > max {
            return Err(JobError::InvalidModule {
                message: format!("the component is larger than {max} bytes"),
            });
        }
        let sha = crate::fsutil::sha256_hex(wasm);
        if let Some(pre) = self.compiled.lock().ok().and_then(|m| m.get(&sha).cloned()) {
            return Ok((sha, pre));
        }
        if !wasm.starts_with(b"\0asm") {
            return Err(JobError::InvalidModule {
                message: "not a WebAssembly file (it does not start with \\0asm)".into(),
            });
        }
        if wasm.get(4..8) == Some(&[1, 0, 0, 0]) {
            return Err(JobError::InvalidModule {
                message: "this is a core WebAssembly module, not a component: build the job for wasm32-wasip2".into(),
            });
        }
        let component = match self.load_cached(&sha) {
            Some(c) => c,
            None => {
                let started = Instant::now();
                let c = Component::new(&self.engine, wasm).map_err(|e| JobError::InvalidModule {
                    message: format!("not a valid component: {}", wasm_err(e)),
                })?;
                tracing::info!(module = %&sha[..12], ms = started.elapsed().as_millis() as u64, "compiled component");
                self.store_cached(&sha, &c);
                c
            }
        };
        // Report the most serious refusal: the network before files before the rest.
        let mut denied: Vec<JobError> = component
            .component_type()
            .imports(&self.engine)
            .filter_map(|(name, _)| check_import(name).err())
            .collect();
        denied.sort_by_key(|e| match e {
            JobError::CapabilityDenied { import, .. } if import.starts_with("wasi:sockets") => 0,
            JobError::CapabilityDenied { import, .. } if import.starts_with("wasi:filesystem") => 1,
            _ => 2,
        });
        if let Some(first) = denied.into_iter().next() {
            return Err(first);
        }
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| JobError::WrongWorld { message: wasm_err(e) })?;
        let pre = Prepared::new(instance_pre).map_err(|e| JobError::WrongWorld {
            message: format!("the component does not implement the inland:job world: {}", wasm_err(e)),
        })?;
        if let Ok(mut m) = self.compiled.lock() {
            m.insert(sha.clone(), pre.clone());
        }
        Ok((sha, pre))
    }

    /// Runs a prepared job to completion or until a limit stops it. Returns the
    /// outcome and the job's state (its log, queries and outputs).
    pub(crate) async fn run(
        &self,
        pre: &Prepared,
        state: JobState,
        params: &[(String, String)],
    ) -> (Result<(), JobError>, JobState) {
        let mut store = Store::new(&self.engine, state);
        // The clock starts now: admission and compilation do not count against the job.
        let host = &mut store.data_mut().host;
        host.deadline = Instant::now() + host.timeout;
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            let host = &ctx.data().host;
            if host.cancel.load(Ordering::Relaxed) {
                Err(wasmtime::Error::new(JobError::GrantTerminated {
                    grant: host.grant.clone(),
                }))
            } else if Instant::now() >= host.deadline {
                Err(wasmtime::Error::new(JobError::Timeout { limit: host.timeout }))
            } else {
                // Yield to the executor every tick, so a busy job never starves others.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let outcome = match pre.instantiate_async(&mut store).await {
            Ok(job) => match job.call_run(&mut store, params).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(message)) => Err(JobError::Failed { message }),
                Err(e) => Err(classify(e)),
            },
            Err(e) => Err(match e.downcast_ref::<JobError>() {
                Some(j) => j.clone(),
                None => {
                    let message = wasm_err(e);
                    if message.contains("concurrent") || message.contains("pool") {
                        JobError::Busy { message }
                    } else {
                        JobError::Trapped {
                            message: format!("instantiation failed: {message}"),
                        }
                    }
                }
            }),
        };
        (outcome, store.into_data())
    }
}

/// Turns what wasmtime reports into what the job's author can act on.
fn classify(e: wasmtime::Error) -> JobError {
    if let Some(j) = e.downcast_ref::<JobError>() {
        return j.clone();
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::StackOverflow => JobError::StackOverflow,
            Trap::UnreachableCodeReached => JobError::Trapped {
                message: "the job aborted (wasm `unreachable`)".into(),
            },
            other => JobError::Trapped {
                message: other.to_string(),
            },
        };
    }
    JobError::Trapped { message: wasm_err(e) }
}
