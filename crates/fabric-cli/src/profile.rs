//! The cluster profile: where the dispatcher is and which keys to use.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fabric_client::Client;
use fabric_net::{Identity, PublicKey};
use serde::{Deserialize, Serialize};

use crate::usage;

/// `cluster.toml`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    /// Dispatcher QUIC address, host:port.
    pub dispatcher: String,
    /// The dispatcher's public key (hex), pinned.
    pub dispatcher_key: String,
    /// This client's secret key (hex); the dispatcher knows its public half.
    pub client_key: String,
    /// The REST API's base URL, when the dispatcher serves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// An admin REST token (`Authorization: Bearer ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token: Option<String>,
    /// The other dispatchers of its group, `KEY@HOST:PORT`: a client
    /// tries them when the one above does not answer, and follows the
    /// leader wherever it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}

/// `--cluster`, else `$XDG_CONFIG_HOME/fabric/cluster.toml`, else
/// `~/.config/fabric/cluster.toml`.
pub(crate) fn path(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_owned());
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })
        .ok_or_else(|| usage("no --cluster given and neither XDG_CONFIG_HOME nor HOME is set"))?;
    Ok(base.join("fabric/cluster.toml"))
}

/// Writes the profile with mode 0600; a directory made for it is 0700.
pub(crate) fn save(path: &Path, profile: &Profile) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        fabric_net::create_private_dir(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = toml::to_string(profile).context("encoding the cluster profile")?;
    fabric_net::write_private(
        path,
        &format!("# Fabric cluster profile (written by the dispatcher; keep it private)\n{text}"),
    )
    .with_context(|| format!("writing {}", path.display()))
}

/// Reads and checks the profile.
pub(crate) fn load(flag: Option<&Path>) -> anyhow::Result<(Profile, PathBuf)> {
    let path = path(flag)?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(usage(format!(
                "no cluster profile at {}: start a cluster with `fabric up` (it writes one), or pass --cluster FILE",
                path.display()
            )));
        }
        Err(e) => {
            return Err(usage(format!(
                "cannot read cluster profile {}: {e}",
                path.display()
            )));
        }
    };
    let profile: Profile = toml::from_str(&text).map_err(|e| {
        usage(format!(
            "cluster profile {} is invalid: {e}",
            path.display()
        ))
    })?;
    Ok((profile, path))
}

/// Resolves host:port.
pub(crate) fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .map_err(|e| usage(format!("cannot resolve dispatcher address {addr:?}: {e}")))?
        .next()
        .ok_or_else(|| usage(format!("dispatcher address {addr:?} resolves to nothing")))
}

/// Connects with the profile's keys.
pub(crate) async fn connect(flag: Option<&Path>) -> anyhow::Result<Client> {
    let (profile, path) = load(flag)?;
    let bad = |what: &str| {
        usage(format!(
            "cluster profile {}: {what} is not valid",
            path.display()
        ))
    };
    let key: PublicKey = profile
        .dispatcher_key
        .parse()
        .map_err(|_| bad("dispatcher_key"))?;
    let me = Identity::from_secret_hex(&profile.client_key).ok_or_else(|| bad("client_key"))?;
    let shown = path.display();
    if !profile.peers.is_empty() {
        let mut members = vec![(key, profile.dispatcher.clone())];
        for p in &profile.peers {
            let m = crate::config::parse_peer(p).map_err(|_| bad("peers"))?;
            let k = PublicKey::from_bytes(&m.key).ok_or_else(|| bad("peers"))?;
            members.push((k, m.addr));
        }
        let n = members.len();
        let net = fabric_net::NetConfig::for_clients();
        return match tokio::time::timeout(
            CONNECT_TIMEOUT * n as u32,
            Client::connect_group(&me, members, &net),
        )
        .await
        {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(anyhow::Error::new(e).context(format!(
                "cannot reach any of the {n} dispatchers of cluster profile {shown}"
            ))),
            Err(_) => Err(anyhow::anyhow!(
                "cannot reach any of the {n} dispatchers of cluster profile {shown}: no answer"
            )),
        };
    }
    let addr = resolve(&profile.dispatcher)?;
    match tokio::time::timeout(CONNECT_TIMEOUT, Client::connect(&me, key, addr)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) if e.wrong_dispatcher_key() => Err(anyhow::anyhow!(
            "the dispatcher at {addr} is not the one in cluster profile {shown} (its key differs): the profile is stale; run `fabric up` again, or pass --cluster FILE"
        )),
        Ok(Err(e)) => Err(anyhow::Error::new(e).context(format!(
            "cannot reach the dispatcher at {addr} (cluster profile {shown}); is `fabric up` running?"
        ))),
        Err(_) => Err(anyhow::anyhow!(
            "cannot reach the dispatcher at {addr} (cluster profile {shown}): no answer within {} s; is `fabric up` running?",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// The address of the dispatcher the profile at `path` names, when one
/// answers there with its key (checked briefly, before a new dispatcher
/// would overwrite the profile).
pub(crate) async fn still_serving(path: &Path) -> Option<SocketAddr> {
    if !path.exists() {
        return None;
    }
    let (profile, _) = load(Some(path)).ok()?;
    let key: PublicKey = profile.dispatcher_key.parse().ok()?;
    let me = Identity::from_secret_hex(&profile.client_key)?;
    let addr = resolve(&profile.dispatcher).ok()?;
    let probe = Client::connect(&me, key, addr);
    match tokio::time::timeout(std::time::Duration::from_millis(500), probe).await {
        Ok(Ok(client)) => {
            client.close().await;
            Some(addr)
        }
        _ => None,
    }
}

/// How long a client command waits for the dispatcher's handshake.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
