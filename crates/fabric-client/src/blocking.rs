//! The same client for callers without an async runtime: each call blocks
//! until its answer. The connection is driven by a runtime of its own (one
//! background thread), so it stays alive between calls.
//!
//! ```no_run
//! use fabric_client::blocking::Client;
//! use fabric_net::{Identity, PublicKey};
//! use fabric_proto::TaskSpec;
//!
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // The keys and address a cluster profile holds (`fabric up` writes one).
//! let identity = Identity::load_or_create("client.key".as_ref())?;
//! let dispatcher: PublicKey = "3f2a9c01b7d4...".parse()?;
//! let client = Client::connect(&identity, dispatcher, "127.0.0.1:7070".parse()?)?;
//!
//! let module = client.upload_module(&std::fs::read("wordfreq.wasm")?)?;
//! let books = ["a.txt", "b.txt", "c.txt"];
//! let specs = books
//!     .iter()
//!     .map(|b| Ok(TaskSpec { input: std::fs::read(b)?, ..TaskSpec::wasm(module) }))
//!     .collect::<std::io::Result<Vec<_>>>()?;
//! // One request, one flush on the dispatcher, for all of them.
//! for queued in client.submit_many(specs)? {
//!     let done = client.wait(queued.id, |_event| {})?;
//!     println!("{}: {}", done.id, done.status_word());
//! }
//! # Ok(()) }
//! ```
//!
//! Calling it from inside an async runtime panics, as any blocking call
//! there would stall it: use [`crate::Client`] there.

use std::net::SocketAddr;

use fabric_net::{Identity, PublicKey};
use fabric_proto::wire::{ClusterCaps, TaskCounts, TokenSummary, WorkerSummary};
use fabric_proto::{BlobRef, GuestEvent, Sha256, TaskId, TaskInfo, TaskSpec, TaskState, WorkerKey};

use crate::{ClientError, Queued};

/// A blocking connection to one dispatcher; see [`crate::Client`] for what
/// each call does.
#[derive(Debug)]
pub struct Client {
    inner: crate::Client,
    rt: tokio::runtime::Runtime,
}

impl Client {
    /// Connects to the dispatcher at `addr` whose key must be `dispatcher`.
    pub fn connect(
        identity: &Identity,
        dispatcher: PublicKey,
        addr: SocketAddr,
    ) -> Result<Self, ClientError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fabric-client")
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        let inner = rt.block_on(crate::Client::connect(identity, dispatcher, addr))?;
        Ok(Self { inner, rt })
    }

    /// The async client underneath.
    pub fn get_ref(&self) -> &crate::Client {
        &self.inner
    }

    /// [`crate::Client::upload_module`].
    pub fn upload_module(&self, wasm: &[u8]) -> Result<Sha256, ClientError> {
        self.rt.block_on(self.inner.upload_module(wasm))
    }

    /// [`crate::Client::upload_input`].
    pub fn upload_input(&self, input: &[u8]) -> Result<BlobRef, ClientError> {
        self.rt.block_on(self.inner.upload_input(input))
    }

    /// [`crate::Client::submit`].
    pub fn submit(&self, spec: TaskSpec) -> Result<TaskId, ClientError> {
        self.rt.block_on(self.inner.submit(spec))
    }

    /// [`crate::Client::enqueue`].
    pub fn enqueue(&self, spec: TaskSpec) -> Result<Queued, ClientError> {
        self.rt.block_on(self.inner.enqueue(spec))
    }

    /// [`crate::Client::submit_many`]: many tasks in one request.
    pub fn submit_many(&self, specs: Vec<TaskSpec>) -> Result<Vec<Queued>, ClientError> {
        self.rt.block_on(self.inner.submit_many(specs))
    }

    /// [`crate::Client::status`].
    pub fn status(&self, id: TaskId) -> Result<TaskInfo, ClientError> {
        self.rt.block_on(self.inner.status(id))
    }

    /// [`crate::Client::result`].
    pub fn result(&self, id: TaskId) -> Result<TaskInfo, ClientError> {
        self.rt.block_on(self.inner.result(id))
    }

    /// [`crate::Client::cancel`].
    pub fn cancel(&self, id: TaskId) -> Result<TaskInfo, ClientError> {
        self.rt.block_on(self.inner.cancel(id))
    }

    /// [`crate::Client::wait`].
    pub fn wait(
        &self,
        id: TaskId,
        on_event: impl FnMut(GuestEvent),
    ) -> Result<TaskInfo, ClientError> {
        self.rt.block_on(self.inner.wait(id, on_event))
    }

    /// [`crate::Client::submit_and_wait`].
    pub fn submit_and_wait(
        &self,
        spec: TaskSpec,
        on_submitted: impl FnOnce(&Queued),
        on_event: impl FnMut(GuestEvent),
    ) -> Result<TaskInfo, ClientError> {
        self.rt
            .block_on(self.inner.submit_and_wait(spec, on_submitted, on_event))
    }

    /// [`crate::Client::list`].
    pub fn list(
        &self,
        state: Option<TaskState>,
        limit: u32,
        before: Option<TaskId>,
    ) -> Result<Vec<TaskInfo>, ClientError> {
        self.rt.block_on(self.inner.list(state, limit, before))
    }

    /// [`crate::Client::list_traced`].
    pub fn list_traced(
        &self,
        trace: &str,
        limit: u32,
        before: Option<TaskId>,
    ) -> Result<Vec<TaskInfo>, ClientError> {
        self.rt
            .block_on(self.inner.list_traced(trace, limit, before))
    }

    /// [`crate::Client::resolve_task`].
    pub fn resolve_task(&self, prefix: &str) -> Result<TaskId, ClientError> {
        self.rt.block_on(self.inner.resolve_task(prefix))
    }

    /// [`crate::Client::workers`].
    pub fn workers(&self) -> Result<Vec<WorkerSummary>, ClientError> {
        self.rt.block_on(self.inner.workers())
    }

    /// [`crate::Client::caps`].
    pub fn caps(&self) -> Result<ClusterCaps, ClientError> {
        self.rt.block_on(self.inner.caps())
    }

    /// [`crate::Client::counts`].
    pub fn counts(&self) -> Result<TaskCounts, ClientError> {
        self.rt.block_on(self.inner.counts())
    }

    /// [`crate::Client::create_join_token`].
    pub fn create_join_token(&self) -> Result<String, ClientError> {
        self.rt.block_on(self.inner.create_join_token())
    }

    /// [`crate::Client::create_token_with_role`].
    pub fn create_token_with_role(
        &self,
        ttl: Option<std::time::Duration>,
        uses: Option<u32>,
        role: Option<fabric_proto::ApiRole>,
    ) -> Result<(String, TokenSummary), ClientError> {
        self.rt
            .block_on(self.inner.create_token_with_role(ttl, uses, role))
    }

    /// [`crate::Client::retry`].
    pub fn retry(&self, id: TaskId) -> Result<TaskId, ClientError> {
        self.rt.block_on(self.inner.retry(id))
    }

    /// [`crate::Client::list_tokens`].
    pub fn list_tokens(&self) -> Result<Vec<TokenSummary>, ClientError> {
        self.rt.block_on(self.inner.list_tokens())
    }

    /// [`crate::Client::revoke_token`].
    pub fn revoke_token(&self, id: &str) -> Result<TokenSummary, ClientError> {
        self.rt.block_on(self.inner.revoke_token(id))
    }

    /// [`crate::Client::remove_worker`].
    pub fn remove_worker(&self, key: &str) -> Result<(WorkerKey, bool, u32), ClientError> {
        self.rt.block_on(self.inner.remove_worker(key))
    }
}

impl Drop for Client {
    /// Closes the connection politely (at most [`crate::CLOSE_WAIT`]).
    fn drop(&mut self) {
        self.rt.block_on(self.inner.close());
    }
}
