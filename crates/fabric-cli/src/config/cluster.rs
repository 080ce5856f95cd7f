//! `fabric dispatcher --peer KEY@ADDR ...`: one of a group of dispatchers
//! (flags, then the config file's `[cluster]` table).

use fabric_dispatcher::{ClusterConfig, GroupMember, RaftConfig};
use fabric_net::PublicKey;
use serde::Deserialize;

use crate::usage;

/// The config file's `[cluster]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterSection {
    /// The other members, `KEY@HOST:PORT[,http://HOST:PORT]`.
    pub peers: Option<Vec<String>>,
    /// The address the other members reach this one at.
    pub advertise: Option<String>,
}

/// Parses one `--peer`: `KEY@HOST:PORT`, with an optional `,URL` of its
/// REST API (where this member's REST API sends clients while that one
/// leads).
pub(crate) fn parse_peer(s: &str) -> anyhow::Result<GroupMember> {
    let bad = |why: &str| {
        usage(format!(
            "--peer {s:?}: {why}; write KEY@HOST:PORT (the key `fabric dispatcher` prints at start), optionally ,http://HOST:PORT for its REST API"
        ))
    };
    let (key, rest) = s.split_once('@').ok_or_else(|| bad("no @"))?;
    let key: PublicKey = key
        .parse()
        .map_err(|_| bad("the key is not 64 hex digits"))?;
    let (addr, api_url) = match rest.split_once(',') {
        Some((a, u)) => {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(bad("the REST URL must start with http:// or https://"));
            }
            (a, Some(u.trim_end_matches('/').to_owned()))
        }
        None => (rest, None),
    };
    if addr
        .rsplit_once(':')
        .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
    {
        return Err(bad("the address is not HOST:PORT"));
    }
    Ok(GroupMember {
        addr: addr.to_owned(),
        key: key.to_bytes(),
        api_url,
    })
}

/// The group this dispatcher belongs to, if `--peer` or `[cluster]` names
/// other members.
pub(crate) fn resolve(
    peers: &[String],
    advertise: Option<&str>,
    file: Option<&ClusterSection>,
) -> anyhow::Result<Option<ClusterConfig>> {
    let listed: Vec<&String> = if peers.is_empty() {
        file.and_then(|f| f.peers.as_ref())
            .into_iter()
            .flatten()
            .collect()
    } else {
        peers.iter().collect()
    };
    let advertise = advertise
        .map(str::to_owned)
        .or_else(|| file.and_then(|f| f.advertise.clone()));
    if listed.is_empty() {
        if advertise.is_some() {
            return Err(usage(
                "--advertise is for a member of a group; name the other members with --peer KEY@HOST:PORT",
            ));
        }
        return Ok(None);
    }
    let peers = listed
        .into_iter()
        .map(|p| parse_peer(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut keys: Vec<[u8; 32]> = peers.iter().map(|p| p.key).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() != peers.len() {
        return Err(usage("--peer names one key twice"));
    }
    if peers.len() > 6 {
        return Err(usage(format!(
            "a group has 3 or 5 dispatchers (7 at most): name the others with --peer (got {})",
            peers.len()
        )));
    }
    Ok(Some(ClusterConfig {
        peers,
        advertise,
        api_url: None,
        joining: false,
        raft: RaftConfig::default(),
    }))
}

/// A worker's other dispatchers of a group: `--peer` flags, else the
/// config file's `[cluster] peers` (`KEY@HOST:PORT`; a REST URL after a
/// comma is allowed and unused).
pub(crate) fn worker_peers(
    flags: &[String],
    file: Option<&ClusterSection>,
) -> anyhow::Result<Vec<(std::net::SocketAddr, PublicKey)>> {
    let listed: &[String] = if flags.is_empty() {
        file.and_then(|f| f.peers.as_deref()).unwrap_or_default()
    } else {
        flags
    };
    listed
        .iter()
        .map(|p| {
            let m = parse_peer(p)?;
            let key = PublicKey::from_bytes(&m.key)
                .ok_or_else(|| usage(format!("--peer {p:?}: the key is not valid")))?;
            Ok((crate::profile::resolve(&m.addr)?, key))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";

    #[test]
    fn a_peer_is_key_at_address_with_an_optional_rest_url() {
        let p = parse_peer(&format!("{KEY}@10.0.0.2:7070")).unwrap();
        assert_eq!(p.addr, "10.0.0.2:7070");
        assert_eq!(p.api_url, None);
        let p = parse_peer(&format!("{KEY}@h:7070,http://h:8080/")).unwrap();
        assert_eq!(p.api_url.as_deref(), Some("http://h:8080"));
        for bad in [
            "nokey",
            "abc@h:1",
            &format!("{KEY}@h"),
            &format!("{KEY}@h:1,ftp://x"),
        ] {
            let e = parse_peer(bad).unwrap_err().to_string();
            assert!(e.contains("--peer"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_worker_takes_its_dispatchers_from_flags_else_from_the_config_file() {
        let file = ClusterSection {
            peers: Some(vec![
                format!("{KEY}@127.0.0.1:7071"),
                format!("{KEY}@127.0.0.1:7072,http://127.0.0.1:8080"),
            ]),
            advertise: None,
        };
        let from_file = worker_peers(&[], Some(&file)).unwrap();
        assert_eq!(
            from_file.iter().map(|(a, _)| a.port()).collect::<Vec<_>>(),
            [7071, 7072]
        );
        let flags = [format!("{KEY}@127.0.0.1:7073")];
        let from_flags = worker_peers(&flags, Some(&file)).unwrap();
        assert_eq!(from_flags.len(), 1, "flags win over the file");
        assert_eq!(from_flags[0].0.port(), 7073);
        assert!(worker_peers(&[], None).unwrap().is_empty());
        let bad = ClusterSection {
            peers: Some(vec!["nokey".into()]),
            advertise: None,
        };
        let e = worker_peers(&[], Some(&bad)).unwrap_err().to_string();
        assert!(e.contains("--peer"), "{e}");
    }

    #[test]
    fn a_group_names_its_other_members_once_each() {
        assert!(resolve(&[], None, None).unwrap().is_none());
        let twice = vec![format!("{KEY}@h:1"), format!("{KEY}@h:2")];
        let e = resolve(&twice, None, None).unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
        let e = resolve(&[], Some("h:1"), None).unwrap_err().to_string();
        assert!(e.contains("--peer"), "{e}");
    }
}
