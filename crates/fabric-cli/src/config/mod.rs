//! Settings resolved once per command, before anything runs.
//!
//! Precedence: flags, then `FABRIC_*` environment variables (clap reads both
//! into the same `cli` fields), then the `--config` TOML file, then the
//! built-in defaults. The file is read here and nowhere else: commands get
//! the resolved structs below and never look at flags, environment or file
//! again. List settings (`--label`, `--worker-key`) take the flags' values
//! followed by the file's.

mod cluster;
pub(crate) use cluster::parse_peer;
mod file;
mod host;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use fabric_net::mdns::Interfaces;
use fabric_net::{JoinToken, PublicKey};

use fabric_api::{ApiConfig, RateLimit};
use fabric_dispatcher::{RetentionPolicy, WorkerCaps};
use fabric_worker::{NativeConfig, WorkerConfig};

use crate::cli::{DispatcherArgs, NativeOpts, ServeOpts, UpArgs, WorkerArgs};
use crate::{profile, usage};
use file::FileConfig;

/// How to run a dispatcher (`fabric dispatcher`, `up`, `demo`).
#[derive(Debug)]
pub(crate) struct ServeConfig {
    /// Keys, the store and the join token live here.
    pub data_dir: PathBuf,
    /// QUIC address to bind.
    pub listen: SocketAddr,
    /// Announce on mDNS on these interfaces; `None` does not announce.
    pub mdns: Option<Interfaces>,
    /// Worker heartbeat interval, when not the scheduler's default.
    pub heartbeat: Option<Duration>,
    /// Aging period, when not the scheduler's default (0: off).
    pub aging: Option<Duration>,
    /// Worker keys trusted without a join token.
    pub worker_keys: Vec<PublicKey>,
    /// The most slots and memory a worker may claim.
    pub worker_caps: WorkerCaps,
    /// How long events, finished tasks and modules are kept.
    pub retention: RetentionPolicy,
    /// Queue depth, when not the dispatcher's default.
    pub max_queued: Option<usize>,
    /// Overwrite a profile whose dispatcher still serves.
    pub replace_profile: bool,
    /// The REST API, unless `--no-api`.
    pub api: Option<ApiConfig>,
    /// The operator key that wraps the store's data keys.
    pub operator_key: Option<fabric_dispatcher::OperatorKey>,
    /// The group of dispatchers it belongs to (`fabric dispatcher --peer`).
    pub cluster: Option<fabric_dispatcher::ClusterConfig>,
}

/// The in-process workers of a local cluster.
#[derive(Debug, Clone)]
pub(crate) struct LocalWorkers {
    /// How many.
    pub count: u32,
    /// Task slots of each.
    pub slots: u32,
    /// Whether their notices (joined, draining, ...) are printed.
    pub speak: bool,
    /// Native commands they run, if any.
    pub native: Option<NativeConfig>,
}

/// `fabric up`: a dispatcher and its local workers.
#[derive(Debug)]
pub(crate) struct UpConfig {
    /// The dispatcher.
    pub serve: ServeConfig,
    /// Its in-process workers.
    pub workers: LocalWorkers,
}

/// Where the dispatcher commands differ when neither flag nor file says.
struct ServeDefaults {
    listen: SocketAddr,
    mdns: Option<Interfaces>,
}

/// `fabric dispatcher` serves the LAN: every interface, announced on mDNS.
fn dispatcher_defaults() -> ServeDefaults {
    ServeDefaults {
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7070),
        mdns: Some(Interfaces::All),
    }
}

/// `fabric up` serves this machine: loopback, not announced.
fn up_defaults() -> ServeDefaults {
    ServeDefaults {
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7070),
        mdns: None,
    }
}

/// Resolves `fabric dispatcher`.
pub(crate) fn dispatcher(args: &DispatcherArgs) -> anyhow::Result<ServeConfig> {
    let file = FileConfig::load(args.serve.config.as_deref())?;
    let mut cfg = ServeConfig::resolve(&args.serve, &file, dispatcher_defaults())?;
    cfg.cluster = cluster::resolve(
        &args.peers,
        args.advertise.as_deref(),
        file.cluster.as_ref(),
    )?;
    if let Some(c) = cfg.cluster.as_mut() {
        c.joining = args.joining;
    }
    if cfg.cluster.is_some()
        && cfg.listen.ip().is_unspecified()
        && cfg.cluster.as_ref().is_some_and(|c| c.advertise.is_none())
    {
        return Err(usage(format!(
            "a member of a group listening on {} needs --advertise HOST:PORT: the address the other dispatchers and the workers reach it at",
            cfg.listen
        )));
    }
    Ok(cfg)
}

/// Resolves `fabric up`.
pub(crate) fn up(args: &UpArgs) -> anyhow::Result<UpConfig> {
    let file = FileConfig::load(args.serve.config.as_deref())?;
    let workers = LocalWorkers {
        count: args.workers.or(file.workers).unwrap_or(2),
        slots: slots(args.slots, &file)?,
        speak: true,
        native: native(&args.native, &file)?,
    };
    let serve = ServeConfig::resolve(&args.serve, &file, up_defaults())?;
    Ok(UpConfig { serve, workers })
}

impl ServeConfig {
    fn resolve(
        opts: &ServeOpts,
        file: &FileConfig,
        defaults: ServeDefaults,
    ) -> anyhow::Result<Self> {
        let data_dir = require_data_dir(opts.data_dir.clone().or(file.data_dir.clone()))?;
        let listen = opts.listen.or(file.listen).unwrap_or(defaults.listen);
        let mdns = if opts.no_mdns || file.no_mdns == Some(true) {
            None
        } else {
            opts.mdns_interface
                .as_deref()
                .or(file.mdns_interface.as_deref())
                .map(interfaces)
                .or(defaults.mdns)
        };
        let heartbeat = match opts.heartbeat {
            Some(d) => Some(d),
            None => file.heartbeat()?,
        };
        let aging = match opts.aging {
            Some(d) => Some(d),
            None => file.aging()?,
        };
        let worker_keys = opts
            .worker_keys
            .iter()
            .chain(file.worker_keys.iter().flatten())
            .map(|k| {
                k.parse::<PublicKey>()
                    .map_err(|e| usage(format!("--worker-key: {e}")))
            })
            .collect::<anyhow::Result<_>>()?;
        let defaults = WorkerCaps::default();
        let worker_caps = WorkerCaps {
            max_slots: opts.max_worker_slots.unwrap_or(defaults.max_slots).max(1),
            max_memory_bytes: opts.max_worker_memory.unwrap_or(defaults.max_memory_bytes),
        };
        Ok(Self {
            data_dir,
            listen,
            mdns,
            heartbeat,
            aging,
            worker_keys,
            worker_caps,
            retention: retention(opts),
            max_queued: opts.max_queued.or(file.max_queued),
            replace_profile: opts.replace_profile,
            api: api(opts, file)?,
            operator_key: operator_key(opts, file)?,
            cluster: None,
        })
    }
}

/// `--key-file`, the file's `key_file`, else systemd's credential
/// `fabric.key` when the service was given one.
fn operator_key(
    opts: &ServeOpts,
    file: &FileConfig,
) -> anyhow::Result<Option<fabric_dispatcher::OperatorKey>> {
    let path = opts.key_file.clone().or(file.key_file.clone()).or_else(|| {
        std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(|d| PathBuf::from(d).join("fabric.key"))
            .filter(|p| p.exists())
    });
    path.map(|p| fabric_dispatcher::OperatorKey::from_file(&p).map_err(|e| usage(e.to_string())))
        .transpose()
}

/// The REST API's flags over the file and the defaults.
fn api(opts: &ServeOpts, file: &FileConfig) -> anyhow::Result<Option<ApiConfig>> {
    if opts.no_api || (opts.api.is_none() && file.no_api == Some(true)) {
        return Ok(None);
    }
    let d = ApiConfig::default();
    let rate = opts.api_rate_limit.or(file.api_rate_limit);
    if rate == Some(0) {
        return Err(usage(
            "--api-rate-limit must be at least 1 request per second",
        ));
    }
    let cors: Vec<String> = opts
        .api_cors
        .iter()
        .chain(file.api_cors.iter().flatten())
        .cloned()
        .collect();
    for origin in &cors {
        if !(origin.starts_with("http://") || origin.starts_with("https://"))
            || origin.ends_with('/')
        {
            return Err(usage(format!(
                "--api-cors {origin:?}: an origin is scheme://host[:port], e.g. https://ops.example.com"
            )));
        }
    }
    Ok(Some(ApiConfig {
        listen: opts.api.or(file.api).unwrap_or(d.listen),
        rate_limit: match rate {
            Some(n) => RateLimit {
                per_second: n,
                burst: n.saturating_mul(2),
            },
            None => d.rate_limit,
        },
        cors_origins: cors,
        max_connections: match opts.api_max_connections.or(file.api_max_connections) {
            Some(0) => return Err(usage("--api-max-connections must be at least 1")),
            n => n,
        },
        max_requests_per_token: match opts.api_token_requests.or(file.api_token_requests) {
            Some(0) => return Err(usage("--api-token-requests must be at least 1")),
            n => n.unwrap_or(d.max_requests_per_token),
        },
        header_timeout: positive(
            "--api-header-timeout",
            opts.api_header_timeout,
            FileConfig::duration("api_header_timeout", file.api_header_timeout.as_deref())?,
        )?
        .unwrap_or(d.header_timeout),
        body_timeout: positive(
            "--api-body-timeout",
            opts.api_body_timeout,
            FileConfig::duration("api_body_timeout", file.api_body_timeout.as_deref())?,
        )?
        .unwrap_or(d.body_timeout),
    }))
}

/// The flag's duration over the file's, refused when zero.
fn positive(
    flag: &str,
    from_flag: Option<Duration>,
    from_file: Option<Duration>,
) -> anyhow::Result<Option<Duration>> {
    match from_flag.or(from_file) {
        Some(d) if d.is_zero() => Err(usage(format!("{flag} must be more than 0s"))),
        d => Ok(d),
    }
}

/// The retention flags over the defaults.
fn retention(opts: &ServeOpts) -> RetentionPolicy {
    let ms = |d: Option<Duration>, default: u64| {
        d.map_or(default, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
        })
    };
    let d = RetentionPolicy::default();
    RetentionPolicy {
        events_keep: opts.keep_events.unwrap_or(d.events_keep),
        events_max_age_ms: ms(opts.event_retention, d.events_max_age_ms),
        results_max_age_ms: ms(opts.result_retention, d.results_max_age_ms),
        dead_letters_max_age_ms: ms(opts.dead_letter_retention, d.dead_letters_max_age_ms),
        blobs_unused_ms: ms(opts.blob_retention, d.blobs_unused_ms),
        uploads_stale_ms: d.uploads_stale_ms,
        max_per_pass: d.max_per_pass,
    }
}

/// Resolves `fabric worker`.
pub(crate) fn worker(args: WorkerArgs) -> anyhow::Result<WorkerConfig> {
    let file = FileConfig::load(args.config.as_deref())?;
    let native = native(&args.native, &file)?;
    let token = args
        .join
        .as_deref()
        .or(file.join.as_deref())
        .map(|t| {
            t.parse::<JoinToken>()
                .map_err(|e| usage(format!("--join: {e}")))
        })
        .transpose()?;
    let key = args
        .dispatcher_key
        .as_deref()
        .or(file.dispatcher_key.as_deref());
    let dispatcher_key = dispatcher_key(token.as_ref(), key)?;
    let dispatcher = args
        .dispatcher
        .as_deref()
        .or(file.dispatcher.as_deref())
        .map(profile::resolve)
        .transpose()?;
    let peers = cluster::worker_peers(&args.peers, file.cluster.as_ref())?;
    let memory_bytes = match args.memory_total {
        Some(m) => m,
        None => file
            .memory_total()?
            .unwrap_or_else(host::default_memory_total),
    };
    let slots = slots(args.slots, &file)?;
    let data_dir = require_data_dir(args.data_dir.or(file.data_dir))?.join("worker");
    let mut labels = args.labels;
    labels.extend(file.labels.unwrap_or_default());
    Ok(WorkerConfig {
        native,
        dispatcher,
        join_secret: token.map(|t| t.secret),
        name: args.name.or(file.name).unwrap_or_else(host::host_name),
        slots,
        memory_bytes,
        labels,
        mdns: args
            .mdns_interface
            .or(file.mdns_interface)
            .map_or(Interfaces::All, |s| interfaces(&s)),
        peers,
        ..WorkerConfig::new(data_dir, dispatcher_key)
    })
}

/// Native commands from `--allow` (and the file's `allow`): the programs
/// resolved now, so a typo fails at start; `None` when nothing is allowed.
fn native(opts: &NativeOpts, file: &FileConfig) -> anyhow::Result<Option<NativeConfig>> {
    let mut names = opts.allow.clone();
    names.extend(file.allow.clone().unwrap_or_default());
    if names.is_empty() {
        return Ok(None);
    }
    let path = std::env::var("PATH").ok();
    let allow = fabric_native::AllowList::resolve(&names, path.as_deref())
        .map_err(|e| usage(e.to_string()))?;
    let exe = std::env::current_exe().map_err(|e| {
        usage(format!(
            "cannot find the fabric binary for the native sandbox helper: {e}"
        ))
    })?;
    Ok(Some(NativeConfig {
        allow,
        helper: vec![exe.into_os_string(), fabric_native::HELPER_COMMAND.into()],
        network: opts.allow_network || file.allow_network == Some(true),
        exec_in_work: opts.allow_exec_in_work || file.allow_exec_in_work == Some(true),
        max_task_disk: match (opts.max_task_disk, &file.max_task_disk) {
            (Some(b), _) => b,
            (None, Some(s)) => crate::units::parse_size(s)
                .map_err(|e| usage(format!("max_task_disk in the config file: {e}")))?,
            (None, None) => fabric_worker::NativeConfig::DEFAULT_MAX_TASK_DISK,
        },
    }))
}

/// The key to pin: `--dispatcher-key`, which must then match the token's,
/// or else the one in the `--join` token.
fn dispatcher_key(token: Option<&JoinToken>, flag: Option<&str>) -> anyhow::Result<PublicKey> {
    match (token, flag) {
        (_, Some(k)) => {
            let k: PublicKey = k
                .parse()
                .map_err(|e| usage(format!("--dispatcher-key: {e}")))?;
            if let Some(t) = token
                && t.dispatcher != k
            {
                return Err(usage(
                    "--dispatcher-key differs from the key in the --join token",
                ));
            }
            Ok(k)
        }
        (Some(t), None) => Ok(t.dispatcher),
        (None, None) => Err(usage(
            "a worker needs --join TOKEN (from `fabric token create`) or --dispatcher-key KEY",
        )),
    }
}

/// `--slots`, else the file's, else one per CPU; never 0.
fn slots(flag: Option<u32>, file: &FileConfig) -> anyhow::Result<u32> {
    let slots = flag.or(file.slots).unwrap_or_else(host::default_slots);
    if slots == 0 {
        return Err(usage("--slots must be at least 1"));
    }
    Ok(slots)
}

/// An interface name as the flags take it: `all`, `loopback` or a name.
fn interfaces(name: &str) -> Interfaces {
    name.parse().unwrap_or(Interfaces::All)
}

/// `--data-dir`, else `$XDG_DATA_HOME/fabric`, else `~/.local/share/fabric`.
pub(crate) fn data_dir(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| {
        std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(|d| PathBuf::from(d).join("fabric"))
    })
    .or_else(|| {
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".local/share/fabric"))
    })
}

fn require_data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    data_dir(flag)
        .ok_or_else(|| usage("no --data-dir given and neither XDG_DATA_HOME nor HOME is set"))
}

#[cfg(test)]
mod tests;
