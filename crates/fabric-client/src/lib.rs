//! Async client for a Fabric dispatcher over QUIC.
//!
//! ```no_run
//! # async fn demo(client: fabric_client::Client, wasm: Vec<u8>) -> Result<(), fabric_client::ClientError> {
//! use fabric_proto::TaskSpec;
//! let module = client.upload_module(&wasm).await?;
//! let id = client
//!     .submit(TaskSpec {
//!         input: b"hello".to_vec(),
//!         retries: 2,
//!         trace: Some("order-42".into()),
//!         ..TaskSpec::wasm(module)
//!     })
//!     .await?;
//! let done = client.wait(id, |_event| {}).await?;
//! println!("{}", done.status_word());
//! # Ok(()) }
//! ```
//!
//! An input over [`fabric_proto::INLINE_INPUT_MAX`] is uploaded as a
//! chunked blob first ([`Client::upload_input`]); the spec then names it.

mod admin;
mod at_rest;
mod blobs;
pub mod blocking;
mod jobs;
mod many;
mod route;
mod schedules;
mod views;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;

use fabric_net::framed::FramedRecv;
use fabric_net::{Identity, NetConfig, NetError, PublicKey};
use fabric_proto::wire::{ErrorBody, ErrorCode, Request, Response};
pub use fabric_proto::wire::{MAX_SUBMIT_BATCH, MAX_SUBMIT_BATCH_BYTES};
use fabric_proto::{GuestEvent, Sha256, TaskId, TaskInfo, TaskSpec};
pub use jobs::QueuedJob;

/// A client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The dispatcher could not be reached or the stream broke.
    #[error("cannot talk to the dispatcher at {addr}: {source}")]
    Net {
        /// Its address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: NetError,
    },
    /// The dispatcher answered with an error.
    #[error("dispatcher: {}", .0.message)]
    Remote(ErrorBody),
    /// The dispatcher answered something that does not fit the request.
    #[error("unexpected answer from the dispatcher: {0}")]
    Unexpected(String),
    /// The blocking client could not start its runtime.
    #[error("cannot start the client's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Writing what the dispatcher sent (a backup) failed.
    #[error("cannot write what the dispatcher sent: {0}")]
    Io(#[source] std::io::Error),
    /// More bytes of args, env and inputs than one [`Client::submit_many`]
    /// may carry.
    #[error(
        "{bytes} bytes of args, env and inputs in one submit_many; at most {max} go in one request"
    )]
    TooLarge {
        /// How many were given.
        bytes: usize,
        /// The most one request carries.
        max: usize,
    },
    /// More tasks than one [`Client::submit_many`] may carry.
    #[error("{count} tasks in one submit_many; at most {max} go in one request")]
    TooMany {
        /// How many were given.
        count: usize,
        /// The most one request carries ([`MAX_SUBMIT_BATCH`]).
        max: usize,
    },
}

impl ClientError {
    /// The dispatcher's error code, when it answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Remote(e) => Some(e.code),
            _ => None,
        }
    }

    /// Whether the connection to the dispatcher failed or was lost (as
    /// opposed to an answer the dispatcher gave).
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Self::Net { .. })
    }

    /// Whether the handshake failed because the dispatcher's key is not
    /// the one this client pinned (a stale profile, or another cluster).
    pub fn wrong_dispatcher_key(&self) -> bool {
        let Self::Net {
            source: NetError::Endpoint(fabric_net::EndpointError::Handshake { source, .. }),
            ..
        } = self
        else {
            return false;
        };
        matches!(source, quinn::ConnectionError::TransportError(t) if t.reason.contains(fabric_net::tls::NOT_PINNED))
    }
}

/// A task the dispatcher queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    /// Its id.
    pub id: TaskId,
    /// Why it may wait a long time (no registered worker offers what it
    /// needs), when that is so.
    pub warning: Option<String>,
}

/// A connection to one dispatcher, authenticated by this client's key and
/// pinned to the dispatcher's.
#[derive(Debug)]
pub struct Client {
    endpoint: quinn::Endpoint,
    route: Mutex<route::Route>,
    /// How to reach the other dispatchers of a group (`None`: one
    /// dispatcher).
    group: Option<route::Group>,
    /// One reconnect at a time; and the members that did not answer a
    /// handshake lately (a hint naming one is not followed for a while:
    /// the follower that gave it has not noticed yet that it is gone).
    reconnecting: tokio::sync::Mutex<Vec<(String, std::time::Instant)>>,
    max_frame: usize,
    known_blobs: Mutex<HashSet<Sha256>>,
}

/// The longest [`Client::close`] waits for the close to be delivered.
pub const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl Client {
    /// Connects to the dispatcher at `addr` whose key must be `dispatcher`,
    /// with [`NetConfig::for_clients`]: a dispatcher silent for 3 s is taken
    /// for gone (calls then fail with [`ClientError::Net`]).
    pub async fn connect(
        identity: &Identity,
        dispatcher: PublicKey,
        addr: SocketAddr,
    ) -> Result<Self, ClientError> {
        Self::connect_with(identity, dispatcher, addr, &NetConfig::for_clients()).await
    }

    /// [`Client::connect`] with transport settings of the caller's choice
    /// (a longer idle timeout over a slow link, say).
    pub async fn connect_with(
        identity: &Identity,
        dispatcher: PublicKey,
        addr: SocketAddr,
        net: &NetConfig,
    ) -> Result<Self, ClientError> {
        let (endpoint, conn) = fabric_net::connect_endpoint(identity, vec![dispatcher], addr, net)
            .await
            .map_err(|source| ClientError::Net {
                addr,
                source: source.into(),
            })?;
        Ok(Self {
            endpoint,
            route: Mutex::new(route::Route {
                conn,
                addr,
                generation: 0,
            }),
            group: None,
            reconnecting: tokio::sync::Mutex::new(Vec::new()),
            max_frame: net.max_frame,
            known_blobs: Mutex::new(HashSet::new()),
        })
    }

    /// The address of the dispatcher this client talks to now (in a
    /// group, the leader it last followed).
    pub fn dispatcher_addr(&self) -> SocketAddr {
        self.current().1
    }

    fn current(&self) -> (quinn::Connection, SocketAddr, u64) {
        let r = self.route.lock().unwrap_or_else(|p| p.into_inner());
        (r.conn.clone(), r.addr, r.generation)
    }

    fn net<E: Into<NetError>>(&self) -> impl FnOnce(E) -> ClientError + '_ {
        let addr = self.current().1;
        move |source| ClientError::Net {
            addr,
            source: source.into(),
        }
    }

    /// Sends one request and reads one answer; errors become
    /// [`ClientError::Remote`].
    async fn call(&self, req: &Request) -> Result<Response, ClientError> {
        Ok(self.first_answer(req).await?.0)
    }

    /// Uploads a module unless the dispatcher has it; returns its digest.
    pub async fn upload_module(&self, wasm: &[u8]) -> Result<Sha256, ClientError> {
        let sha = Sha256::of(wasm);
        if self
            .known_blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&sha)
        {
            return Ok(sha);
        }
        let has = match self.call(&Request::HasBlob { sha }).await? {
            Response::HasBlob(b) => b,
            other => return Err(unexpected(other)),
        };
        if !has {
            match self
                .call(&Request::PutBlob {
                    bytes: wasm.to_vec(),
                })
                .await?
            {
                Response::Blob { sha: stored } if stored == sha => {}
                other => return Err(unexpected(other)),
            }
        }
        self.known_blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sha);
        Ok(sha)
    }

    /// Queues a task; the id comes back once it is stored durably.
    pub async fn submit(&self, spec: TaskSpec) -> Result<TaskId, ClientError> {
        Ok(self.enqueue(spec).await?.id)
    }

    /// Queues a task; answers its id and, when no registered worker offers
    /// what it needs, a warning saying what is missing.
    pub async fn enqueue(&self, spec: TaskSpec) -> Result<Queued, ClientError> {
        let spec = self.prepare(spec).await?;
        match self
            .call(&Request::Submit {
                spec: Box::new(spec),
                wait: false,
            })
            .await?
        {
            Response::Submitted { id, warning } => Ok(Queued { id, warning }),
            other => Err(unexpected(other)),
        }
    }

    /// A task's state.
    pub async fn status(&self, id: TaskId) -> Result<TaskInfo, ClientError> {
        self.task(&Request::Status { id }).await
    }

    /// A task's state with its recorded outcome (if finished).
    pub async fn result(&self, id: TaskId) -> Result<TaskInfo, ClientError> {
        self.task(&Request::Result { id }).await
    }

    /// Cancels a queued or running task.
    pub async fn cancel(&self, id: TaskId) -> Result<TaskInfo, ClientError> {
        self.task(&Request::Cancel { id }).await
    }

    async fn task(&self, req: &Request) -> Result<TaskInfo, ClientError> {
        match self.call(req).await? {
            Response::Task(info) => Ok(*info),
            other => Err(unexpected(other)),
        }
    }

    /// Waits for a task to finish, passing its progress and log events to
    /// `on_event`; returns the task with its outcome.
    pub async fn wait(
        &self,
        id: TaskId,
        mut on_event: impl FnMut(GuestEvent),
    ) -> Result<TaskInfo, ClientError> {
        let mut tries = 0;
        loop {
            let waited = async {
                let (first, mut recv) = self.first_answer(&Request::Wait { id }).await?;
                self.follow(first, &mut recv, &mut on_event).await
            }
            .await;
            match waited {
                // The leader went away while the task ran: ask the next.
                Err(e)
                    if self.group.is_some()
                        && tries < route::hops()
                        && (e.is_connection_lost() || e.code() == Some(ErrorCode::NotLeader)) =>
                {
                    tries += 1;
                    tokio::time::sleep(route::no_leader_wait()).await;
                }
                other => return other,
            }
        }
    }

    /// Queues a task and waits for it on the same stream (one round trip
    /// fewer than [`Client::submit`] then [`Client::wait`]); `on_submitted`
    /// hears the id as soon as the task is stored.
    pub async fn submit_and_wait(
        &self,
        spec: TaskSpec,
        on_submitted: impl FnOnce(&Queued),
        on_event: impl FnMut(GuestEvent),
    ) -> Result<TaskInfo, ClientError> {
        let spec = self.prepare(spec).await?;
        let (first, mut recv) = self
            .first_answer(&Request::Submit {
                spec: Box::new(spec),
                wait: true,
            })
            .await?;
        let Response::Submitted { id, warning } = first else {
            return Err(unexpected(first));
        };
        on_submitted(&Queued { id, warning });
        let next = recv.expect().await.map_err(self.net())?;
        self.follow(next, &mut recv, on_event).await
    }

    /// Reads events (starting with `first`) until the task's final state.
    async fn follow(
        &self,
        first: Response,
        recv: &mut FramedRecv,
        mut on_event: impl FnMut(GuestEvent),
    ) -> Result<TaskInfo, ClientError> {
        let mut next = first;
        loop {
            match next {
                Response::Event(e) => on_event(e),
                Response::Task(info) => return Ok(*info),
                Response::Error(e) => return Err(ClientError::Remote(e)),
                other => return Err(unexpected(other)),
            }
            next = recv.expect().await.map_err(self.net())?;
        }
    }

    /// Closes the connection politely and waits (at most [`CLOSE_WAIT`])
    /// until the dispatcher has been told, so a process that exits next
    /// does not leave a connection behind that counts against its key's
    /// connection cap until it times out.
    pub async fn close(&self) {
        self.current().0.close(0u32.into(), b"bye");
        let _ = tokio::time::timeout(CLOSE_WAIT, self.endpoint.wait_idle()).await;
    }
}

fn unexpected(r: Response) -> ClientError {
    ClientError::Unexpected(format!("{r:?}").chars().take(200).collect())
}
