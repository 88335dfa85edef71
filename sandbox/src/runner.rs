//! The sandbox: wasmtime configured for hostile, multi-tenant code. Each
//! component is compiled once (and cached, integrity-checked, on disk); each
//! job gets a fresh store with memory, time, stack and instance limits, and
//! exactly the imports of the `inland:job` world plus the bits of WASI that
//! Rust's std needs.

use crate::cache::CompileCache;
use crate::clock::{CoarseMonotonicClock, CoarseWallClock};
use crate::collector::OutputCollector;
use crate::error::{JobError, SandboxError};
use crate::host::{HostCtx, JobLimiter, JobState, QueryBackend, bindings};
use crate::imports::check_import;
use crate::limits::Limits;
use crate::log::{JobLog, LogLine};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasData, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Strategy, Trap, UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// How often the epoch advances; a job overrunning its deadline stops within one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

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

/// A compiled, linked job ready to instantiate: admission's result, reused
/// across jobs of the same component.
#[derive(Clone)]
pub struct Prepared(bindings::JobPre<JobState>);

/// What to run a prepared job with.
pub struct JobSetup {
    /// The grant the job runs under, named if a termination stops it.
    pub grant: String,
    /// The submission's `key=value` parameters.
    pub params: Vec<(String, String)>,
    /// The query side the job's `query` calls reach.
    pub backend: Arc<dyn QueryBackend>,
    /// Set to stop the job at its next epoch tick (grant terminated).
    pub cancel: Arc<AtomicBool>,
    /// The job sees no time pass (its clocks stand still): for jobs whose
    /// queries' duration could tell them something about one person.
    pub frozen_clock: bool,
}

/// What a job left when it ended.
pub struct JobRun {
    /// `Ok` when `run` returned `Ok`.
    pub outcome: Result<(), JobError>,
    /// Its log lines, then captured stdout and stderr.
    pub log: Vec<LogLine>,
    /// Log lines dropped because the log was full.
    pub log_dropped: u64,
    /// The tables it emitted.
    pub outputs: OutputCollector,
    /// Time in the sandbox (instantiation and run), in microseconds.
    pub run_us: u64,
}

/// The wasmtime engine, linker and compiled-component cache of one domain.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<JobState>,
    cache: CompileCache,
    compiled: Mutex<HashMap<String, Prepared>>,
    /// One lock per component being prepared: submissions of the same new
    /// component wait for the first compile instead of each compiling it
    /// (50 at once held the cores for seconds; an operator could repeat that).
    preparing: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Components compiled (not loaded from the cache), for metrics and tests.
    compiles: std::sync::atomic::AtomicU64,
    limits: Limits,
    _ticker: Ticker,
}

fn wasm_err(e: wasmtime::Error) -> String {
    format!("{e:#}")
}

impl Sandbox {
    /// The sandbox of one domain: its limits, and its compile cache keyed by the domain's secret.
    pub fn new(limits: &Limits, cache_dir: PathBuf, cache_key: [u8; 32]) -> Result<Sandbox, SandboxError> {
        let jobs = limits.max_concurrent_jobs;
        let mut pool = PoolingAllocationConfig::default();
        let instances = crate::host::MAX_INSTANCES as u32;
        let tables = crate::host::MAX_TABLES as u32;
        pool.total_component_instances(jobs)
            .total_core_instances(jobs.saturating_mul(instances))
            .max_core_instances_per_component(instances)
            .total_memories(jobs.saturating_mul(4))
            .total_tables(jobs.saturating_mul(tables))
            .total_stacks(jobs)
            .max_memories_per_component(4)
            .max_tables_per_component(tables)
            .max_memory_size(limits.memory_bytes() as usize);
        let mut config = Config::new();
        config
            .strategy(Strategy::Cranelift)
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(limits.stack_kib as usize * 1024)
            .async_stack_size(limits.stack_kib as usize * 1024 + (1 << 20))
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| SandboxError(format!("wasm engine: {}", wasm_err(e))))?;
        let mut linker = Linker::new(&engine);
        add_wasi(&mut linker).map_err(|e| SandboxError(format!("linking WASI: {}", wasm_err(e))))?;
        bindings::Job::add_to_linker::<JobState, wasmtime::component::HasSelf<JobState>>(&mut linker, |s| s)
            .map_err(|e| SandboxError(format!("linking inland:job: {}", wasm_err(e))))?;
        let ticker = Ticker::start(engine.clone()).map_err(|e| SandboxError(format!("epoch ticker: {e}")))?;
        Ok(Sandbox {
            engine,
            linker,
            cache: CompileCache::new(cache_dir, cache_key),
            compiled: Mutex::new(HashMap::new()),
            preparing: Mutex::new(HashMap::new()),
            compiles: std::sync::atomic::AtomicU64::new(0),
            limits: limits.clone(),
            _ticker: ticker,
        })
    }

    /// Validates, compiles (or loads from the cache), checks imports and links
    /// a component. Returns its SHA-256 and the pre-linked job.
    pub fn prepare(&self, wasm: &[u8]) -> Result<(String, Prepared), JobError> {
        let max = self.limits.max_module_bytes();
        if wasm.len() as u64 > max {
            return Err(JobError::InvalidModule {
                message: format!("the component is larger than {max} bytes"),
            });
        }
        let sha = inland_files::sha256_hex(wasm);
        if let Some(pre) = self.compiled.lock().ok().and_then(|m| m.get(&sha).cloned()) {
            return Ok((sha, pre));
        }
        let lock = self
            .preparing
            .lock()
            .map(|mut m| m.entry(sha.clone()).or_default().clone())
            .unwrap_or_default();
        let _one_at_a_time = lock.lock();
        // Whoever held the lock may have prepared it meanwhile.
        if let Some(pre) = self.compiled.lock().ok().and_then(|m| m.get(&sha).cloned()) {
            return Ok((sha, pre));
        }
        let prepared = self.prepare_new(wasm, &sha);
        if let Ok(mut m) = self.preparing.lock() {
            m.remove(&sha);
        }
        prepared.map(|pre| (sha, pre))
    }

    /// How many components this sandbox compiled rather than loaded from its cache.
    pub fn compiles(&self) -> u64 {
        self.compiles.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Checks, compiles (or loads) and links a component not prepared yet.
    fn prepare_new(&self, wasm: &[u8], sha: &str) -> Result<Prepared, JobError> {
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
        // Before anything is compiled: a denied capability is refused in
        // milliseconds, whatever the component's size.
        refuse_denied(crate::imports::declared_imports(wasm)?)?;
        let component = match self.cache.load(&self.engine, sha) {
            Some(c) => c,
            None => {
                let started = Instant::now();
                let c = Component::new(&self.engine, wasm).map_err(|e| JobError::InvalidModule {
                    message: format!("not a valid component: {}", wasm_err(e)),
                })?;
                tracing::info!(module = %&sha[..12], ms = started.elapsed().as_millis() as u64, "compiled component");
                self.compiles.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.cache.store(&self.engine, sha, &c);
                c
            }
        };
        // And as wasmtime reads the compiled component.
        refuse_denied(
            component
                .component_type()
                .imports(&self.engine)
                .map(|(name, _)| name.to_string())
                .collect(),
        )?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| JobError::WrongWorld { message: wasm_err(e) })?;
        let pre = bindings::JobPre::new(instance_pre).map_err(|e| JobError::WrongWorld {
            message: format!("the component does not implement the inland:job world: {}", wasm_err(e)),
        })?;
        let pre = Prepared(pre);
        if let Ok(mut m) = self.compiled.lock() {
            m.insert(sha.to_string(), pre.clone());
        }
        Ok(pre)
    }

    /// Runs a prepared job to completion or until a limit stops it, with a
    /// fresh store, coarse clocks, no environment and captured stdio.
    pub async fn run(&self, pre: &Prepared, setup: JobSetup) -> JobRun {
        let log_cap = self.limits.log_bytes();
        let stdout = MemoryOutputPipe::new(log_cap);
        let stderr = MemoryOutputPipe::new(log_cap);
        let wasi = wasmtime_wasi::WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(CoarseWallClock::new(setup.frozen_clock))
            .monotonic_clock(CoarseMonotonicClock::new(setup.frozen_clock))
            .build();
        let state = JobState {
            wasi,
            table: ResourceTable::new(),
            random: Default::default(),
            limiter: JobLimiter::new(self.limits.memory_bytes()),
            host: HostCtx::new(
                self.limits.timeout(),
                setup.backend,
                OutputCollector::new(self.limits.max_output_bytes()),
                JobLog::new(log_cap),
                setup.grant,
                setup.cancel,
            ),
        };
        let ran = Instant::now();
        let (outcome, state) = self.run_store(&pre.0, state, &setup.params).await;
        let run_us = ran.elapsed().as_micros() as u64;
        let stderr_text = String::from_utf8_lossy(&stderr.contents()).into_owned();
        let outcome = outcome.map_err(|e| with_panic_message(e, &stderr_text));
        let host = state.host;
        let mut log = host.log.lines;
        for (level, text) in [
            ("stdout", String::from_utf8_lossy(&stdout.contents()).into_owned()),
            ("stderr", stderr_text),
        ] {
            log.extend(text.lines().map(|l| LogLine {
                level: level.into(),
                message: l.to_string(),
            }));
        }
        JobRun {
            outcome,
            log,
            log_dropped: host.log.dropped,
            outputs: host.outputs,
            run_us,
        }
    }

    async fn run_store(
        &self,
        pre: &bindings::JobPre<JobState>,
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

/// A Rust guest prints its panic message to stderr before it aborts; name it.
fn with_panic_message(e: JobError, stderr: &str) -> JobError {
    match e {
        JobError::Trapped { .. } => match stderr.lines().position(|l| l.contains("panicked at")) {
            Some(i) => {
                let message: Vec<&str> = stderr
                    .lines()
                    .skip(i)
                    .take_while(|l| !l.starts_with("note:"))
                    .take(4)
                    .collect();
                JobError::Panicked {
                    message: message.join(" "),
                }
            }
            None => e,
        },
        other => other,
    }
}

/// The most serious refusal among `imports`, if any: the network before
/// files before the rest.
fn refuse_denied(imports: Vec<String>) -> Result<(), JobError> {
    let mut denied: Vec<JobError> = imports.iter().filter_map(|name| check_import(name).err()).collect();
    denied.sort_by_key(|e| match e {
        JobError::CapabilityDenied { import, .. } if import.starts_with("wasi:sockets") => 0,
        JobError::CapabilityDenied { import, .. } if import.starts_with("wasi:filesystem") => 1,
        _ => 2,
    });
    match denied.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(()),
    }
}
