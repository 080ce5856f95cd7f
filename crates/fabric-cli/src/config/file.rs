//! The `--config` TOML file: defaults for the long flags, each key spelled
//! as its flag with `_` (`listen = "0.0.0.0:7070"`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::{units, usage};

/// The file's contents, one optional value per flag. Unknown keys are an
/// error so that a typo does not silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub mdns_interface: Option<String>,
    pub no_mdns: Option<bool>,
    pub heartbeat: Option<String>,
    pub aging: Option<String>,
    pub max_queued: Option<usize>,
    pub workers: Option<u32>,
    pub slots: Option<u32>,
    pub join: Option<String>,
    pub dispatcher: Option<String>,
    pub dispatcher_key: Option<String>,
    pub memory_total: Option<String>,
    pub name: Option<String>,
    pub labels: Option<Vec<String>>,
    pub allow: Option<Vec<String>>,
    pub allow_network: Option<bool>,
    pub allow_exec_in_work: Option<bool>,
    pub max_task_disk: Option<String>,
    pub worker_keys: Option<Vec<String>>,
    pub api: Option<SocketAddr>,
    pub no_api: Option<bool>,
    pub api_rate_limit: Option<u32>,
    pub api_cors: Option<Vec<String>>,
    pub api_max_connections: Option<usize>,
    pub api_token_requests: Option<u32>,
    pub api_header_timeout: Option<String>,
    pub api_body_timeout: Option<String>,
    /// `[cluster]`: the other dispatchers of a group.
    pub cluster: Option<super::cluster::ClusterSection>,
}

impl FileConfig {
    /// Reads `path`; no path gives an empty file.
    pub(super) fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read --config {}: {e}", path.display())))?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> anyhow::Result<Self> {
        toml::from_str(text)
            .map_err(|e| usage(format!("config file {} is invalid: {e}", path.display())))
    }

    /// `aging`, parsed like the flag.
    pub(super) fn aging(&self) -> anyhow::Result<Option<Duration>> {
        self.aging
            .as_deref()
            .map(|s| units::parse_duration(s).map_err(|e| usage(format!("config aging: {e}"))))
            .transpose()
    }

    /// `heartbeat`, parsed like the flag.
    pub(super) fn heartbeat(&self) -> anyhow::Result<Option<Duration>> {
        self.heartbeat
            .as_deref()
            .map(|s| units::parse_duration(s).map_err(|e| usage(format!("config heartbeat: {e}"))))
            .transpose()
    }

    /// A duration key (`api_header_timeout`, ...), parsed like its flag.
    pub(super) fn duration(key: &str, value: Option<&str>) -> anyhow::Result<Option<Duration>> {
        value
            .map(|s| units::parse_duration(s).map_err(|e| usage(format!("config {key}: {e}"))))
            .transpose()
    }

    /// `memory_total`, parsed like the flag.
    pub(super) fn memory_total(&self) -> anyhow::Result<Option<u64>> {
        self.memory_total
            .as_deref()
            .map(|s| units::parse_size(s).map_err(|e| usage(format!("config memory_total: {e}"))))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = FileConfig::parse(
            "listen = \"127.0.0.1:1\"\nlisten_addr = 1\n",
            Path::new("f.toml"),
        )
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("config file f.toml is invalid"), "{text}");
        assert!(text.contains("listen_addr"), "{text}");
    }

    #[test]
    fn values_parse_like_the_flags() {
        let file = FileConfig::parse(
            "heartbeat = \"250ms\"\nmemory_total = \"2GiB\"\n",
            Path::new("f"),
        )
        .unwrap();
        assert_eq!(file.heartbeat().unwrap(), Some(Duration::from_millis(250)));
        assert_eq!(file.memory_total().unwrap(), Some(2 << 30));
        let bad = FileConfig::parse("heartbeat = \"soon\"\n", Path::new("f")).unwrap();
        assert!(format!("{:#}", bad.heartbeat().unwrap_err()).starts_with("config heartbeat: "));
    }
}
