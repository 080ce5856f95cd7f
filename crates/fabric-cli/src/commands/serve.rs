//! Starting a dispatcher the way `fabric dispatcher`, `up` and `demo` all
//! do: trusted worker keys added, an admin client key made and allowed, a
//! join token kept in the data dir, and the cluster profile written so the
//! client commands find it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fabric_dispatcher::{Dispatcher, DispatcherConfig};
use fabric_net::{Identity, JoinToken, PublicKey};
use fabric_proto::ApiRole;

use crate::config::ServeConfig;
use crate::output;
use crate::profile::{self, Profile};

/// A started dispatcher with its admin profile and join token written.
pub(crate) struct Served {
    pub dispatcher: Dispatcher,
    /// The address as bound (may be unspecified, e.g. `0.0.0.0:7070`).
    pub bound: SocketAddr,
    /// An address this machine reaches it on (loopback for an unspecified
    /// bind); the profile names this one.
    pub local_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub token: JoinToken,
    /// Where the cluster profile was written.
    pub profile: PathBuf,
    /// The REST API's base URL, when served.
    pub api_url: Option<String>,
    /// The admin REST token the profile carries.
    pub api_token: Option<String>,
}

impl Served {
    /// Starts the dispatcher and writes the profile to `--cluster` (or the
    /// default place).
    pub(crate) async fn start(cfg: &ServeConfig, cluster: Option<&Path>) -> anyhow::Result<Self> {
        let profile = profile::path(cluster)?;
        if !cfg.replace_profile
            && let Some(addr) = profile::still_serving(&profile).await
        {
            return Err(crate::usage(format!(
                "cluster profile {} belongs to a dispatcher still serving at {addr}; stop it first, or write this cluster's profile elsewhere with --cluster FILE (or overwrite it with --replace-profile)",
                profile.display()
            )));
        }
        let mut dcfg = DispatcherConfig::new(cfg.data_dir.clone(), cfg.listen);
        dcfg.mdns = cfg.mdns.clone();
        dcfg.worker_caps = cfg.worker_caps;
        dcfg.retention.policy = cfg.retention.clone();
        dcfg.operator_key.clone_from(&cfg.operator_key);
        dcfg.cluster.clone_from(&cfg.cluster);
        if let (Some(c), Some(api)) = (dcfg.cluster.as_mut(), &cfg.api) {
            // Where the others' REST APIs send clients while this one leads.
            let host = c
                .advertise
                .as_deref()
                .and_then(|a| a.rsplit_once(':').map(|(h, _)| h.to_owned()))
                .unwrap_or_else(|| cfg.listen.ip().to_string());
            let host = if api.listen.ip().is_unspecified() {
                host
            } else {
                api.listen.ip().to_string()
            };
            c.api_url = Some(format!("http://{host}:{}", api.listen.port()));
        }
        if let Some(hb) = cfg.heartbeat {
            dcfg.sched.heartbeat_ms = (hb.as_millis() as u64).max(10);
        }
        if let Some(a) = cfg.aging {
            dcfg.sched.aging_ms = u64::try_from(a.as_millis()).unwrap_or(u64::MAX);
        }
        if let Some(n) = cfg.max_queued {
            dcfg.caps.max_queued = n;
        }
        let dispatcher = Dispatcher::start(dcfg)
            .await
            .with_context(|| format!("starting the dispatcher in {}", cfg.data_dir.display()))?;
        let bound = dispatcher.local_addr();
        let local_addr = if bound.ip().is_unspecified() {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), bound.port())
        } else {
            bound
        };
        for key in &cfg.worker_keys {
            dispatcher.add_worker_key(key, "allow-listed").await?;
        }
        let admin = Identity::load_or_create(&cfg.data_dir.join("admin.key"))?;
        dispatcher.add_admin(&admin.public(), "admin").await?;
        let token = join_token(&dispatcher, &cfg.data_dir).await?;
        // The REST API is a front end of its own over the dispatcher.
        let api_addr = match &cfg.api {
            Some(api) => Some(fabric_api::start(dispatcher.front(), api).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot serve the REST API on {}: {e} (pick another with --api ADDR, or --no-api)",
                    api.listen
                )
            })?),
            None => None,
        };
        let (api_url, api_token) = match api_addr {
            Some(addr) => {
                let addr = if addr.ip().is_unspecified() {
                    SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
                } else {
                    addr
                };
                let token = api_token(&dispatcher, &cfg.data_dir).await?;
                (Some(format!("http://{addr}")), Some(token))
            }
            None => (None, None),
        };
        profile::save(
            &profile,
            &Profile {
                dispatcher: local_addr.to_string(),
                dispatcher_key: dispatcher.public_key().to_string(),
                client_key: admin.secret_hex(),
                api_url: api_url.clone(),
                api_token: api_token.clone(),
                peers: cfg
                    .cluster
                    .iter()
                    .flat_map(|c| &c.peers)
                    .filter_map(|m| Some(format!("{}@{}", PublicKey::from_bytes(&m.key)?, m.addr)))
                    .collect(),
            },
        )?;
        Ok(Self {
            dispatcher,
            bound,
            local_addr,
            data_dir: cfg.data_dir.clone(),
            token,
            profile,
            api_url,
            api_token,
        })
    }

    /// Tells the operator where it listens, its key and join token, and
    /// the dashboard's address: with the admin token in its `#token=`
    /// fragment for `fabric up` (a person's own machine), without it for
    /// `fabric dispatcher` (whose output often goes to a service log).
    pub(crate) fn announce(&self, dashboard_token: bool) {
        output::served(
            &self.bound,
            &self.dispatcher.public_key(),
            &self.token,
            &self.profile,
            self.api_url.as_deref(),
            self.api_token.as_deref().filter(|_| dashboard_token),
        );
        output::at_rest(&self.dispatcher.key_state(), &self.data_dir.join("store"));
    }
}

/// The token in `<data-dir>/join-token` if it is this dispatcher's and
/// still accepted (not expired, used up or revoked), else a new one (24 h,
/// unlimited uses), saved there.
async fn join_token(dispatcher: &Dispatcher, data_dir: &Path) -> anyhow::Result<JoinToken> {
    let path = data_dir.join("join-token");
    let saved = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse::<JoinToken>().ok())
        .filter(|t| t.dispatcher == dispatcher.public_key());
    if let Some(t) = saved
        && dispatcher.join_token_is_valid(&t)?
    {
        return Ok(t);
    }
    let t = dispatcher.create_join_token().await?;
    fabric_net::write_private(&path, &t.to_string())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(t)
}

/// The admin REST token in `<data-dir>/api-token` if this dispatcher still
/// accepts it, else a new one (no expiry), saved there. The profile carries
/// it for scripts; mint narrower ones with `fabric token create --role`.
async fn api_token(dispatcher: &Dispatcher, data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("api-token");
    if let Ok(saved) = std::fs::read_to_string(&path)
        && dispatcher.api_token_role(saved.trim())? == Some(ApiRole::Admin)
    {
        return Ok(saved.trim().to_owned());
    }
    let t = dispatcher.create_api_token(ApiRole::Admin, None).await?;
    fabric_net::write_private(&path, &t).with_context(|| format!("writing {}", path.display()))?;
    Ok(t)
}
