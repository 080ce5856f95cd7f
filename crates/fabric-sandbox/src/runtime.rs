//! The per-process wasm runtime: engine, linker, pooling allocator, epoch
//! ticker and the compiled-module cache.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fabric_proto::Sha256;
use tokio::sync::Semaphore;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig,
};

use crate::error::SandboxError;
use crate::run::TaskState;
use crate::ticker::EpochTicker;

/// How a [`WasmRuntime`] is set up. The defaults suit a worker on a small
/// machine; `fabric exec` lowers `max_concurrent`.
#[derive(Clone, Debug)]
pub struct WasmRuntimeConfig {
    /// Tasks that may run at once (pooling allocator slots).
    pub max_concurrent: u32,
    /// Largest linear memory any task may have, whatever its limits say.
    pub max_memory_bytes: u64,
    /// Largest table any task may have, in elements.
    pub max_table_elements: usize,
    /// Wasm stack size; deeper recursion traps with a stack overflow.
    pub max_wasm_stack: usize,
    /// Where compiled modules are serialized so a restart need not
    /// recompile; `None` keeps the cache in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Compiled modules kept in memory.
    pub max_cached_modules: usize,
    /// Most bytes of compiled artifacts kept in `cache_dir`; the least
    /// recently used are removed past it.
    pub max_disk_cache_bytes: u64,
    /// Epoch tick: the granularity of timeouts and of cooperative yields.
    pub epoch_tick: Duration,
    /// Guest log calls kept per task (empty ones count too); the task's
    /// `output_bytes` limit is its budget of log bytes.
    pub max_log_lines: usize,
    /// Least time between two progress events of a task; updates in
    /// between are coalesced to the latest value.
    pub progress_interval: Duration,
}

impl Default for WasmRuntimeConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 32,
            max_memory_bytes: 4 << 30,
            max_table_elements: 100_000,
            max_wasm_stack: 512 << 10,
            cache_dir: None,
            max_cached_modules: 256,
            max_disk_cache_bytes: crate::disk_cache::DEFAULT_MAX_DISK_CACHE_BYTES,
            epoch_tick: Duration::from_millis(10),
            max_log_lines: 10_000,
            progress_interval: Duration::from_millis(200),
        }
    }
}

/// A module compiled and linked against the sandbox's imports, ready to
/// instantiate cheaply. Cloning is cheap.
#[derive(Clone)]
pub struct PreparedModule {
    pub(crate) sha256: Sha256,
    pub(crate) pre: Arc<InstancePre<TaskState>>,
}

impl PreparedModule {
    /// Digest of the module's wasm bytes.
    pub fn sha256(&self) -> Sha256 {
        self.sha256
    }
}

impl std::fmt::Debug for PreparedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedModule")
            .field("sha256", &self.sha256)
            .finish()
    }
}

#[derive(Default)]
struct ModuleCache {
    modules: HashMap<Sha256, PreparedModule>,
    order: VecDeque<Sha256>,
}

/// One per process: runs many tasks, concurrently, from cached modules.
pub struct WasmRuntime {
    pub(crate) engine: Engine,
    linker: Linker<TaskState>,
    cache: Mutex<ModuleCache>,
    pub(crate) config: WasmRuntimeConfig,
    pub(crate) slots: Semaphore,
    _ticker: EpochTicker,
}

impl WasmRuntime {
    /// Builds the engine and starts the epoch ticker.
    pub fn new(config: WasmRuntimeConfig) -> Result<Self, SandboxError> {
        let engine_err = |e: wasmtime::Error| SandboxError::Engine(format!("{e:#}"));
        let slots = config.max_concurrent.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .total_stacks(slots)
            .total_component_instances(0)
            .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX))
            .table_elements(config.max_table_elements);
        let mut wasm = Config::new();
        wasm.consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack)
            .async_stack_size(config.max_wasm_stack + (1 << 20))
            .memory_init_cow(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(engine_err)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut TaskState| &mut s.wasi)
            .map_err(engine_err)?;
        crate::host::add_to_linker(&mut linker).map_err(engine_err)?;
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir).map_err(|source| SandboxError::Cache {
                path: dir.clone(),
                source,
            })?;
        }
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)
            .map_err(|e| SandboxError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Self {
            engine,
            linker,
            cache: Mutex::new(ModuleCache::default()),
            slots: Semaphore::new(slots as usize),
            config,
            _ticker: ticker,
        })
    }

    /// The runtime's configuration.
    pub fn config(&self) -> &WasmRuntimeConfig {
        &self.config
    }

    /// A module already prepared in this process, by digest.
    pub fn cached(&self, sha256: &Sha256) -> Option<PreparedModule> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.modules.get(sha256).cloned()
    }

    /// Validates, compiles (or loads from the disk cache) and links `wasm`.
    /// Returns the cached module when these bytes were prepared before.
    pub fn prepare(&self, wasm: &[u8]) -> Result<PreparedModule, SandboxError> {
        let sha256 = Sha256::of(wasm);
        if let Some(hit) = self.cached(&sha256) {
            return Ok(hit);
        }
        let module = match self.load_from_disk(&sha256) {
            Some(module) => module,
            None => {
                let module = Module::new(&self.engine, wasm)
                    .map_err(|e| SandboxError::InvalidModule(format!("{e:#}")))?;
                self.store_to_disk(&sha256, &module);
                module
            }
        };
        if module.get_export("_start").is_none() {
            return Err(SandboxError::NoEntryPoint);
        }
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| SandboxError::Link(format!("{e:#}")))?;
        let prepared = PreparedModule {
            sha256,
            pre: Arc::new(pre),
        };
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.modules.insert(sha256, prepared.clone()).is_none() {
            cache.order.push_back(sha256);
        }
        while cache.order.len() > self.config.max_cached_modules.max(1) {
            if let Some(old) = cache.order.pop_front() {
                cache.modules.remove(&old);
            }
        }
        Ok(prepared)
    }

    fn cache_path(&self, sha256: &Sha256) -> Option<PathBuf> {
        let dir = self.config.cache_dir.as_ref()?;
        Some(dir.join(format!("{sha256}.cwasm")))
    }

    fn load_from_disk(&self, sha256: &Sha256) -> Option<Module> {
        let path = self.cache_path(sha256)?;
        if !path.exists() {
            return None;
        }
        match deserialize_own_artifact(&self.engine, &path) {
            Ok(module) => {
                crate::disk_cache::touch(&path);
                tracing::debug!(module = %sha256, "loaded compiled module from disk cache");
                Some(module)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding unusable cached module");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    fn store_to_disk(&self, sha256: &Sha256, module: &Module) {
        let Some(path) = self.cache_path(sha256) else {
            return;
        };
        let result = module
            .serialize()
            .map_err(|e| std::io::Error::other(format!("{e:#}")))
            .and_then(|bytes| {
                let dir = path.parent().unwrap_or(Path::new("."));
                let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
                std::io::Write::write_all(&mut tmp, &bytes)?;
                tmp.persist(&path).map_err(|e| e.error)?;
                Ok(())
            });
        if result.is_ok()
            && let Some(dir) = path.parent()
        {
            crate::disk_cache::evict(dir, self.config.max_disk_cache_bytes, &path);
        }
        if let Err(e) = result {
            // The cache is an optimisation: a failure to write it is logged,
            // never a task failure.
            tracing::warn!(path = %path.display(), error = %e, "cannot write compiled module cache");
        }
    }
}

/// Loads a compiled artifact that this runtime wrote itself.
#[allow(unsafe_code)]
fn deserialize_own_artifact(engine: &Engine, path: &Path) -> wasmtime::Result<Module> {
    // SAFETY: wasmtime requires that deserialized bytes were produced by
    // `Module::serialize` of a compatible engine. The cache directory is the
    // runtime's own (under the node's data dir, which only this node writes),
    // files are named by the SHA-256 of the wasm they came from and written
    // atomically via rename, and wasmtime itself rejects artifacts from
    // incompatible engine versions or settings (we then recompile).
    // Untrusted peers only ever send wasm bytes, which are compiled, never
    // deserialized.
    unsafe { Module::deserialize_file(engine, path) }
}
