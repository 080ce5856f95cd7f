//! Resolving the shared task flags (limits, env, input) into proto types.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use fabric_proto::{LimitCaps, Limits};

use crate::cli::TaskOpts;
use crate::usage;

/// Resolved limits, validated against the cluster maxima.
pub(crate) fn limits(opts: &TaskOpts, caps: &LimitCaps) -> anyhow::Result<Limits> {
    let defaults = Limits::default();
    let limits = Limits {
        fuel: opts.fuel.unwrap_or(defaults.fuel),
        memory_bytes: opts.memory.unwrap_or(defaults.memory_bytes),
        timeout_ms: opts
            .timeout
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1))
            .unwrap_or(defaults.timeout_ms),
        output_bytes: opts.output_limit.unwrap_or(defaults.output_bytes),
    };
    limits
        .check_within(caps)
        .map_err(|e| usage(format!("{e}")))?;
    Ok(limits)
}

/// `--env` values as pairs; `K` alone takes this process's value.
pub(crate) fn env(opts: &TaskOpts) -> anyhow::Result<Vec<(String, String)>> {
    opts.env
        .iter()
        .map(|item| {
            let (k, v) = match item.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => {
                    let v = std::env::var(item).map_err(|_| {
                        usage(format!(
                            "--env {item}: no `=` and no variable {item} in this environment; use --env {item}=VALUE"
                        ))
                    })?;
                    (item.clone(), v)
                }
            };
            if k.is_empty() || k.contains('\0') || v.contains('\0') {
                return Err(usage(format!(
                    "--env {item:?}: the name must be non-empty and neither part may contain NUL"
                )));
            }
            Ok((k, v))
        })
        .collect()
}

/// The task's stdin bytes: a file, this process's stdin for `-`, or nothing.
pub(crate) fn input(opts: &TaskOpts) -> anyhow::Result<Vec<u8>> {
    match opts.input.as_deref() {
        None => Ok(Vec::new()),
        Some(p) if p == Path::new("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading --input from stdin")?;
            Ok(buf)
        }
        Some(p) => {
            std::fs::read(p).map_err(|e| usage(format!("cannot read --input {}: {e}", p.display())))
        }
    }
}
