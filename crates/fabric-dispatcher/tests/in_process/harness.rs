//! A cluster in this process: dispatcher, workers and a client, on a
//! manual clock.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_client::Client;
use fabric_dispatcher::{Dispatcher, DispatcherConfig, SchedConfig};
use fabric_net::mdns::Interfaces;
use fabric_net::{Identity, JoinToken};
use fabric_proto::{Limits, ManualClock, Sha256, TaskId, TaskInfo, TaskSpec, WorkerKey};
use fabric_worker::WorkerConfig;
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A module whose `_start` returns at once.
pub const TRIVIAL_WAT: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

/// A module that exits with code 1.
pub const EXIT_1_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 1))))"#;

/// A module that spins until a limit or a cancel stops it.
pub const SPIN_WAT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))"#;

/// How long any wait in these tests may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A worker running in this process.
pub struct LocalWorker {
    /// Its key, as task records name it.
    pub key: WorkerKey,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), fabric_worker::WorkerError>>,
}

impl LocalWorker {
    /// Drains and stops it; fails the test when it does not stop within
    /// [`PATIENCE`], panicked, or ended with an error.
    pub async fn stop(self) {
        let key = self.key;
        // The worker may have ended already (its receiver is gone then):
        // what it returned is checked below either way.
        let _ = self.stop.send(true);
        match tokio::time::timeout(PATIENCE, self.task).await {
            Err(_) => panic!("worker {key} did not stop within {PATIENCE:?} of being asked to"),
            Ok(Err(join)) => panic!("worker {key} panicked or was aborted: {join}"),
            Ok(Ok(Err(e))) => panic!("worker {key} ended with an error: {e}"),
            Ok(Ok(Ok(()))) => {}
        }
    }
}

/// A dispatcher with a client, on a manual clock.
pub struct Cluster {
    /// The clock the dispatcher and the workers read.
    pub clock: Arc<ManualClock>,
    /// The dispatcher.
    pub dispatcher: Dispatcher,
    /// A client with the client role.
    pub client: Client,
    token: JoinToken,
    dir: TempDir,
    workers: u32,
}

impl Cluster {
    /// Starts a dispatcher with these scheduling knobs.
    pub async fn start(sched: SchedConfig) -> Self {
        Self::start_with(sched, |_| {}).await
    }

    /// Starts a dispatcher with these scheduling knobs and `tune` applied to
    /// the rest of its configuration.
    pub async fn start_with(sched: SchedConfig, tune: impl FnOnce(&mut DispatcherConfig)) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("FABRIC_LOG")
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = ManualClock::new();
        let mut cfg = DispatcherConfig::new(
            dir.path().join("dispatcher"),
            "127.0.0.1:0".parse().expect("addr"),
        );
        cfg.sched = sched;
        cfg.clock = clock.clone();
        tune(&mut cfg);
        let dispatcher = Dispatcher::start(cfg).await.expect("dispatcher starts");
        let me = Identity::generate().expect("client key");
        dispatcher
            .add_client(&me.public(), "test")
            .await
            .expect("client trusted");
        let client = Client::connect(&me, dispatcher.public_key(), dispatcher.local_addr())
            .await
            .expect("client connects");
        let token = dispatcher.create_join_token().await.expect("join token");
        Self {
            clock,
            dispatcher,
            client,
            token,
            dir,
            workers: 0,
        }
    }

    /// Starts a worker with `slots` slots and waits until it registered.
    pub async fn add_worker(&mut self, slots: u32) -> LocalWorker {
        self.add_worker_with(slots, |_| {}).await
    }

    /// [`Cluster::add_worker`] with `tune` applied to its configuration.
    pub async fn add_worker_with(
        &mut self,
        slots: u32,
        tune: impl FnOnce(&mut WorkerConfig),
    ) -> LocalWorker {
        self.workers += 1;
        let data_dir = self.dir.path().join(format!("worker-{}", self.workers));
        let identity = Identity::load_or_create(&data_dir.join("node.key")).expect("worker key");
        let key = WorkerKey(identity.public().to_bytes());
        let cfg = WorkerConfig {
            dispatcher: Some(self.dispatcher.local_addr()),
            join_secret: Some(self.token.secret),
            name: format!("w{}", self.workers),
            slots,
            memory_bytes: u64::from(slots) << 30,
            mdns: Interfaces::Loopback,
            drain_timeout: Duration::from_secs(5),
            // Keeps coming back: tests move the clock far enough to have
            // it declared dead, and it must register afresh.
            max_reconnects: None,
            clock: self.clock.clone(),
            ..WorkerConfig::new(data_dir, self.dispatcher.public_key())
        };
        let mut cfg = cfg;
        tune(&mut cfg);
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(fabric_worker::run(cfg, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
        let client = &self.client;
        eventually("the worker registers", || async {
            client
                .workers()
                .await
                .expect("workers")
                .iter()
                .any(|w| w.key == key)
        })
        .await;
        LocalWorker { key, stop, task }
    }

    /// The join token workers use.
    pub fn token(&self) -> &JoinToken {
        &self.token
    }

    /// A raw QUIC connection to the dispatcher with key `me` (which may
    /// have no role), for tests that speak the protocol themselves.
    pub async fn connect_as(&self, me: &Identity) -> quinn::Connection {
        fabric_net::connect(
            me,
            vec![self.dispatcher.public_key()],
            self.dispatcher.local_addr(),
            &fabric_net::NetConfig::default(),
        )
        .await
        .expect("connects")
    }

    /// Uploads a module given as WAT text.
    pub async fn module(&self, wat_text: &str) -> Sha256 {
        let wasm = wat::parse_str(wat_text).expect("valid WAT");
        self.client.upload_module(&wasm).await.expect("upload")
    }

    /// Submits a task of `module` with these limits and retries.
    pub async fn submit(&self, module: Sha256, limits: Limits, retries: u32) -> TaskId {
        let mut spec = TaskSpec::wasm(module);
        spec.limits = limits;
        spec.retries = retries;
        self.client.submit(spec).await.expect("submit")
    }

    /// Waits until the task's status passes `check`; returns that status.
    pub async fn wait_until(
        &self,
        id: TaskId,
        what: &str,
        check: impl Fn(&TaskInfo) -> bool,
    ) -> TaskInfo {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let info = self.client.status(id).await.expect("status");
            if check(&info) {
                return info;
            }
            assert!(
                Instant::now() < deadline,
                "task {id}: {what} did not happen within {PATIENCE:?}; last seen {info:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Moves the clock forward by `by` in steps of `step`, waiting after
    /// each step until every worker in `alive` heartbeated at the new time:
    /// those stay alive, silent ones fall behind.
    pub async fn advance_keeping(&self, by: Duration, step: Duration, alive: &[WorkerKey]) {
        let mut moved = Duration::ZERO;
        while moved < by {
            self.clock.advance(step);
            moved += step;
            let now = fabric_proto::Clock::now_ms(&*self.clock);
            let client = &self.client;
            eventually("the live workers heartbeat at the new time", || async {
                let workers = client.workers().await.expect("workers");
                alive
                    .iter()
                    .all(|k| workers.iter().any(|w| w.key == *k && w.last_seen_ms >= now))
            })
            .await;
        }
    }

    /// Waits for the task's final state with its outcome.
    pub async fn finished(&self, id: TaskId) -> TaskInfo {
        tokio::time::timeout(PATIENCE, self.client.wait(id, |_| {}))
            .await
            .expect("the task finishes in time")
            .expect("wait")
    }
}

/// Polls `check` (briefly yielding in between) until it holds.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Limits for a task that should be stopped by something else first.
pub fn long_limits() -> Limits {
    Limits {
        timeout_ms: 60_000,
        fuel: 1_000_000_000_000,
        ..Limits::default()
    }
}

/// Knobs with fast heartbeats.
pub fn fast_heartbeats() -> SchedConfig {
    SchedConfig {
        heartbeat_ms: 100,
        ..SchedConfig::default()
    }
}
