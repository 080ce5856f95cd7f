//! `fabric up`, `fabric dispatcher`, `fabric worker`, `fabric token`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use fabric_dispatcher::{Dispatcher, DispatcherConfig};
use fabric_net::mdns::Interfaces;
use fabric_net::{Identity, JoinToken, NetConfig, PublicKey};
use fabric_worker::WorkerConfig;
use serde::Deserialize;

use super::exec::data_dir;
use crate::cli::{DispatcherArgs, ServeOpts, TokenCommand, UpArgs, WorkerArgs};
use crate::profile::{self, Profile};
use crate::{output, units, usage};

/// Defaults from `--config FILE`; flags and `FABRIC_*` win over these.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    mdns_interface: Option<String>,
    no_mdns: Option<bool>,
    heartbeat: Option<String>,
    workers: Option<u32>,
    slots: Option<u32>,
    join: Option<String>,
    dispatcher: Option<String>,
    dispatcher_key: Option<String>,
    memory_total: Option<String>,
    name: Option<String>,
    labels: Option<Vec<String>>,
    worker_keys: Option<Vec<String>>,
}

fn file_config(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read --config {}: {e}", path.display())))?;
    toml::from_str(&text)
        .map_err(|e| usage(format!("config file {} is invalid: {e}", path.display())))
}

fn require_data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    data_dir(flag)
        .ok_or_else(|| usage("no --data-dir given and neither XDG_DATA_HOME nor HOME is set"))
}

/// Resolves when Ctrl-C or SIGTERM arrives.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // Store calls (sled) block briefly inside async code; a few threads
    // beyond the core count keep the network moving meanwhile.
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(4);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A started dispatcher with its admin profile and join token written.
pub(crate) struct Served {
    pub dispatcher: Dispatcher,
    pub data_dir: PathBuf,
    pub token: JoinToken,
    pub local_addr: SocketAddr,
}

pub(crate) async fn serve(
    opts: &ServeOpts,
    cluster: Option<&Path>,
    default_listen: SocketAddr,
    default_mdns: Option<&str>,
    print: bool,
) -> anyhow::Result<Served> {
    let file = file_config(opts.config.as_deref())?;
    let data_dir = require_data_dir(opts.data_dir.clone().or(file.data_dir))?;
    let listen = opts.listen.or(file.listen).unwrap_or(default_listen);
    let mdns = if opts.no_mdns || file.no_mdns == Some(true) {
        None
    } else {
        opts.mdns_interface
            .clone()
            .or(file.mdns_interface)
            .or(default_mdns.map(str::to_owned))
            .map(|s| s.parse::<Interfaces>().unwrap_or(Interfaces::All))
    };
    let mut cfg = DispatcherConfig::new(data_dir.clone(), listen);
    cfg.mdns = mdns;
    let heartbeat = match (opts.heartbeat, file.heartbeat) {
        (Some(d), _) => Some(d),
        (None, Some(s)) => {
            Some(units::parse_duration(&s).map_err(|e| usage(format!("config heartbeat: {e}")))?)
        }
        (None, None) => None,
    };
    if let Some(hb) = heartbeat {
        cfg.sched.heartbeat_ms = (hb.as_millis() as u64).max(10);
    }
    let dispatcher = Dispatcher::start(cfg)
        .await
        .with_context(|| format!("starting the dispatcher in {}", data_dir.display()))?;
    let local = dispatcher.local_addr();
    let local_addr = if local.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
    } else {
        local
    };
    let mut worker_keys = opts.worker_keys.clone();
    worker_keys.extend(file.worker_keys.unwrap_or_default());
    for k in &worker_keys {
        let key: PublicKey = k.parse().map_err(|e| usage(format!("--worker-key: {e}")))?;
        dispatcher.add_worker_key(&key, "allow-listed").await?;
    }
    let admin = Identity::load_or_create(&data_dir.join("admin.key"))?;
    dispatcher.add_client(&admin.public(), "admin").await?;
    let token_path = data_dir.join("join-token");
    let token = match std::fs::read_to_string(&token_path)
        .ok()
        .and_then(|t| t.trim().parse::<JoinToken>().ok())
        .filter(|t| t.dispatcher == dispatcher.public_key())
    {
        Some(t) => t,
        None => {
            let t = dispatcher.create_join_token().await?;
            fabric_net::write_private(&token_path, &t.to_string())
                .with_context(|| format!("writing {}", token_path.display()))?;
            t
        }
    };
    let profile_path = profile::path(cluster)?;
    profile::save(
        &profile_path,
        &Profile {
            dispatcher: local_addr.to_string(),
            dispatcher_key: dispatcher.public_key().to_string(),
            client_key: admin.secret_hex(),
        },
    )?;
    if print {
        output::served(&local, &dispatcher.public_key(), &token, &profile_path);
    }
    Ok(Served {
        dispatcher,
        data_dir,
        token,
        local_addr,
    })
}

pub(crate) fn dispatcher(args: DispatcherArgs, cluster: Option<PathBuf>) -> anyhow::Result<i32> {
    runtime()?.block_on(async {
        let served = serve(
            &args.serve,
            cluster.as_deref(),
            "0.0.0.0:7070".parse().expect("valid"),
            Some("all"),
            true,
        )
        .await?;
        output::ready();
        shutdown_signal().await;
        served.dispatcher.shutdown().await;
        Ok(0)
    })
}

/// Worker settings for a local worker of `fabric up` or `fabric demo`.
fn local_worker(dir: PathBuf, served: &Served, name: String, slots: u32) -> WorkerConfig {
    WorkerConfig {
        data_dir: dir,
        dispatcher: Some(served.local_addr),
        dispatcher_key: served.token.dispatcher,
        join_secret: Some(served.token.secret),
        name,
        slots,
        memory_bytes: u64::from(slots) * (1 << 30),
        labels: vec!["local".into()],
        net: NetConfig::default(),
        mdns: Interfaces::Loopback,
        discover_timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(30),
        max_reconnects: Some(3),
        clock: fabric_proto::SystemClock::shared(),
    }
}

/// Runs `n` in-process workers until `stop` resolves.
pub(crate) fn spawn_workers(
    served: &Served,
    n: u32,
    slots: u32,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<Result<(), fabric_worker::WorkerError>>> {
    (0..n)
        .map(|i| {
            let cfg = local_worker(
                served.data_dir.join(format!("workers/{i}")),
                served,
                format!("local-{i}"),
                slots,
            );
            let mut stop = stop.clone();
            tokio::spawn(fabric_worker::run(cfg, async move {
                let _ = stop.wait_for(|s| *s).await;
            }))
        })
        .collect()
}

pub(crate) fn up(args: UpArgs, cluster: Option<PathBuf>) -> anyhow::Result<i32> {
    let file = file_config(args.serve.config.as_deref())?;
    let n = args.workers.or(file.workers).unwrap_or(2);
    let slots = args.slots.or(file.slots).unwrap_or_else(default_slots);
    if slots == 0 {
        return Err(usage("--slots must be at least 1"));
    }
    runtime()?.block_on(async {
        let served = serve(
            &args.serve,
            cluster.as_deref(),
            "127.0.0.1:7070".parse().expect("valid"),
            None,
            true,
        )
        .await?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let workers = spawn_workers(&served, n, slots, stop_rx);
        output::ready();
        shutdown_signal().await;
        let _ = stop_tx.send(true);
        for w in workers {
            match w.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "local worker failed"),
                Err(e) => tracing::error!(error = %e, "local worker panicked"),
            }
        }
        served.dispatcher.shutdown().await;
        Ok(0)
    })
}

fn default_slots() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as u32)
}

fn default_memory_total() -> u64 {
    let kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    });
    kib.map_or(4 << 30, |k| k * 1024 / 2)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "worker".into())
}

pub(crate) fn worker(args: WorkerArgs) -> anyhow::Result<i32> {
    let file = file_config(args.config.as_deref())?;
    let join = args.join.or(file.join);
    let token = join
        .as_deref()
        .map(|t| {
            t.parse::<JoinToken>()
                .map_err(|e| usage(format!("--join: {e}")))
        })
        .transpose()?;
    let key_flag = args.dispatcher_key.or(file.dispatcher_key);
    let dispatcher_key: PublicKey = match (&token, key_flag) {
        (_, Some(k)) => {
            let k: PublicKey = k
                .parse()
                .map_err(|e| usage(format!("--dispatcher-key: {e}")))?;
            if let Some(t) = &token
                && t.dispatcher != k
            {
                return Err(usage(
                    "--dispatcher-key differs from the key in the --join token",
                ));
            }
            k
        }
        (Some(t), None) => t.dispatcher,
        (None, None) => {
            return Err(usage(
                "a worker needs --join TOKEN (from `fabric token create`) or --dispatcher-key KEY",
            ));
        }
    };
    let dispatcher = args
        .dispatcher
        .or(file.dispatcher)
        .map(|a| profile::resolve(&a))
        .transpose()?;
    let memory_total = match (args.memory_total, file.memory_total) {
        (Some(m), _) => m,
        (None, Some(s)) => {
            units::parse_size(&s).map_err(|e| usage(format!("config memory_total: {e}")))?
        }
        (None, None) => default_memory_total(),
    };
    let slots = args.slots.or(file.slots).unwrap_or_else(default_slots);
    if slots == 0 {
        return Err(usage("--slots must be at least 1"));
    }
    let data_dir = require_data_dir(args.data_dir.or(file.data_dir))?.join("worker");
    let mut labels = args.labels;
    labels.extend(file.labels.unwrap_or_default());
    let cfg = WorkerConfig {
        data_dir,
        dispatcher,
        dispatcher_key,
        join_secret: token.map(|t| t.secret),
        name: args.name.or(file.name).unwrap_or_else(host_name),
        slots,
        memory_bytes: memory_total,
        labels,
        net: NetConfig::default(),
        mdns: args
            .mdns_interface
            .or(file.mdns_interface)
            .map_or(Interfaces::All, |s| s.parse().unwrap_or(Interfaces::All)),
        discover_timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(60),
        max_reconnects: None,
        clock: fabric_proto::SystemClock::shared(),
    };
    runtime()?.block_on(async {
        fabric_worker::run(cfg, shutdown_signal())
            .await
            .context("worker stopped")?;
        Ok(0)
    })
}

pub(crate) fn token(cmd: TokenCommand, cluster: Option<PathBuf>) -> anyhow::Result<i32> {
    match cmd {
        TokenCommand::Create => runtime()?.block_on(async {
            let client = profile::connect(cluster.as_deref()).await?;
            let token = client.create_join_token().await?;
            output::line(&token);
            client.close();
            Ok(0)
        }),
    }
}

/// Blocks on `fut` in a fresh multi-threaded runtime.
pub(crate) fn block_on<T>(fut: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    runtime()?.block_on(fut)
}
