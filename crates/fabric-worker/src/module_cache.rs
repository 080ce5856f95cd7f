//! Modules by digest: fetched from the dispatcher once, checked against the
//! manifest, compiled once (concurrent assignments of the same module wait
//! for the first), and kept by the sandbox's in-memory and disk caches.
//!
//! The `loading` map holds only loads in flight: an entry is removed as soon
//! as its load ends (loaded or failed), so the map never outgrows the
//! assignments running at once; the sandbox's caches (bounded by count and
//! bytes) keep the results.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fabric_net::framed;
use fabric_proto::wire::{Request, Response};
use fabric_proto::{Manifest, Sha256, TaskKind};
use fabric_sandbox::{PreparedModule, WasmRuntime};
use quinn::Connection;
use tokio::sync::OnceCell;

use crate::verify::Refusal;

/// Modules that failed to load, remembered at most (oldest forgotten first).
const MAX_FAILED: usize = 1024;
/// Loads in flight, by digest.
type Loading = HashMap<Sha256, Arc<OnceCell<PreparedModule>>>;

/// The worker's modules.
pub(crate) struct ModuleCache {
    runtime: Arc<WasmRuntime>,
    loading: Mutex<Loading>,
    /// Why a module did not compile or link here: refused at once next time.
    failed: Mutex<FailedModules>,
    max_frame: usize,
}

/// A bounded memory of modules that did not load.
#[derive(Debug, Default)]
struct FailedModules {
    why: HashMap<Sha256, String>,
    order: std::collections::VecDeque<Sha256>,
}

impl FailedModules {
    fn remember(&mut self, sha: Sha256, why: String) {
        if self.why.insert(sha, why).is_none() {
            self.order.push_back(sha);
            if self.order.len() > MAX_FAILED
                && let Some(old) = self.order.pop_front()
            {
                self.why.remove(&old);
            }
        }
    }
}

impl ModuleCache {
    pub(crate) fn new(runtime: Arc<WasmRuntime>, max_frame: usize) -> Self {
        Self {
            runtime,
            loading: Mutex::new(HashMap::new()),
            failed: Mutex::default(),
            max_frame,
        }
    }

    /// The sandbox the modules are compiled for.
    pub(crate) fn runtime(&self) -> &Arc<WasmRuntime> {
        &self.runtime
    }

    /// The manifest's module, ready to instantiate.
    pub(crate) async fn module_for(
        &self,
        conn: &Connection,
        m: &Manifest,
    ) -> Result<PreparedModule, Refusal> {
        let TaskKind::Wasm { module: sha } = &m.kind else {
            return Err(Refusal::NotWasm);
        };
        if let Some(p) = self.runtime.cached(sha) {
            return Ok(p);
        }
        let known = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .why
            .get(sha)
            .cloned();
        if let Some(reason) = known {
            return Err(Refusal::ModuleLoad {
                sha: *sha,
                reason: format!("{reason} (remembered from an earlier try)"),
            });
        }
        let cell = self
            .loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(*sha)
            .or_default()
            .clone();
        let result = cell
            .get_or_try_init(|| self.load(conn, m, *sha))
            .await
            .cloned();
        release(
            &mut self.loading.lock().unwrap_or_else(|p| p.into_inner()),
            sha,
            &cell,
        );
        if let Err(Refusal::ModuleLoad { reason, .. }) = &result {
            self.failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remember(*sha, reason.clone());
        }
        result
    }

    async fn load(
        &self,
        conn: &Connection,
        m: &Manifest,
        sha: Sha256,
    ) -> Result<PreparedModule, Refusal> {
        let bytes = self.fetch(conn, sha).await?;
        m.check_module(&bytes)?;
        let runtime = self.runtime.clone();
        let load = |reason: String| Refusal::ModuleLoad { sha, reason };
        tokio::task::spawn_blocking(move || runtime.prepare(&bytes))
            .await
            .map_err(|e| load(format!("compilation panicked: {e}")))?
            .map_err(|e| load(e.to_string()))
    }

    async fn fetch(&self, conn: &Connection, sha: Sha256) -> Result<Vec<u8>, Refusal> {
        let fetch = |reason: String| Refusal::ModuleFetch { sha, reason };
        let (mut send, mut recv) = framed::open(conn, self.max_frame)
            .await
            .map_err(|e| fetch(e.to_string()))?;
        send.send(&Request::GetBlob { sha })
            .await
            .map_err(|e| fetch(e.to_string()))?;
        match recv.expect().await.map_err(|e| fetch(e.to_string()))? {
            Response::BlobBytes { bytes } => Ok(bytes),
            Response::Error(e) => Err(fetch(e.message)),
            other => Err(fetch(format!("unexpected answer {other:?}"))),
        }
    }
}

/// Forgets the load of `sha` once it ended, unless a newer load of the same
/// module already replaced it.
fn release(loading: &mut Loading, sha: &Sha256, cell: &Arc<OnceCell<PreparedModule>>) {
    if loading.get(sha).is_some_and(|c| Arc::ptr_eq(c, cell)) {
        loading.remove(sha);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_modules_are_remembered_within_a_bound() {
        let mut f = FailedModules::default();
        for n in 0..(MAX_FAILED as u32 + 5) {
            f.remember(Sha256::of(&n.to_be_bytes()), format!("bad {n}"));
        }
        assert_eq!(f.why.len(), MAX_FAILED);
        assert_eq!(f.order.len(), MAX_FAILED);
        assert!(!f.why.contains_key(&Sha256::of(&0u32.to_be_bytes())));
        let last = Sha256::of(&(MAX_FAILED as u32 + 4).to_be_bytes());
        assert_eq!(f.why.get(&last).map(String::as_str), Some("bad 1028"));
    }

    #[test]
    fn a_finished_load_is_forgotten_but_a_newer_one_kept() {
        let mut loading = Loading::new();
        let a = Sha256::of(b"a");
        let b = Sha256::of(b"b");
        let first: Arc<OnceCell<PreparedModule>> = Arc::default();
        loading.insert(a, first.clone());
        loading.insert(b, Arc::default());
        release(&mut loading, &a, &first);
        assert!(!loading.contains_key(&a));
        assert_eq!(loading.len(), 1);
        // A load of `b` that ended after a newer one began leaves the newer.
        let stale: Arc<OnceCell<PreparedModule>> = Arc::default();
        release(&mut loading, &b, &stale);
        assert!(loading.contains_key(&b));
        // Releasing twice is harmless.
        release(&mut loading, &a, &first);
        assert_eq!(loading.len(), 1);
    }
}
