//! Resolving what every task command takes (the module file, its limits,
//! env and input, a task id) into proto types.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use fabric_client::Client;
use fabric_proto::wire::ClusterCaps;
use fabric_proto::{LimitCaps, LimitError, Limits, Priority, format_size};

use crate::cli::{QueueOpts, TaskOpts};
use crate::usage;

/// Largest module a command will read, to fail fast on a wrong path.
const MAX_MODULE_BYTES: u64 = 256 << 20;

/// The module file's bytes.
pub(crate) fn read_module(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| usage(format!("cannot read module {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(usage(format!("module {} is not a file", path.display())));
    }
    if meta.len() > MAX_MODULE_BYTES {
        return Err(usage(format!(
            "module {} is {}, over the {} limit",
            path.display(),
            format_size(meta.len()),
            format_size(MAX_MODULE_BYTES)
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| usage(format!("cannot read module {}: {e}", path.display())))?;
    if !bytes.starts_with(b"\0asm") {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]);
        let hint = if text.trim_start().starts_with("(module") || text.contains("(func") {
            " (it looks like WAT text: compile it first, e.g. `wat2wasm job.wat`)"
        } else {
            " (build it with `cargo build --target wasm32-wasip1`)"
        };
        return Err(usage(format!(
            "{} is not a wasm module{hint}",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Resolved limits, validated against the cluster maxima.
/// `fuel` is `--fuel` where the command has it (wasm tasks).
pub(crate) fn limits(
    opts: &TaskOpts,
    fuel: Option<u64>,
    caps: &LimitCaps,
) -> anyhow::Result<Limits> {
    let defaults = Limits::default();
    let limits = Limits {
        fuel: fuel.unwrap_or(defaults.fuel),
        memory_bytes: opts.memory.unwrap_or(defaults.memory_bytes),
        timeout_ms: opts
            .timeout
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1))
            .unwrap_or(defaults.timeout_ms),
        output_bytes: opts.output_limit.unwrap_or(defaults.output_bytes),
        disk_bytes: opts.disk.unwrap_or(defaults.disk_bytes),
    };
    limits.check_within(caps).map_err(|e| usage(in_flags(&e)))?;
    Ok(limits)
}

/// A limit error in the flags' terms: `--memory 8 GiB is over the cluster
/// maximum of 4 GiB`.
fn in_flags(e: &LimitError) -> String {
    let flag = |field: &str| {
        match field {
            "fuel" => "--fuel",
            "memory_bytes" => "--memory",
            "timeout_ms" => "--timeout",
            "output_bytes" => "--output-limit",
            "disk_bytes" => "--disk",
            other => other,
        }
        .to_owned()
    };
    match e {
        LimitError::Zero { field } => format!("{} must be greater than zero", flag(field)),
        LimitError::AboveMaximum { field, value, max } => format!(
            "{} {} is over the cluster maximum of {}",
            flag(field),
            fabric_proto::show_limit(field, *value),
            fabric_proto::show_limit(field, *max)
        ),
        other => other.to_string(),
    }
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
            let pair = [(k, v)];
            fabric_proto::check_args_env(&[], &pair).map_err(|e| usage(format!("--{e}")))?;
            let [pair] = pair;
            Ok(pair)
        })
        .collect()
}

/// `--secret` and `--secret-file` values, checked against the env.
pub(crate) fn secrets(
    queue: &QueueOpts,
    env: &[(String, String)],
) -> anyhow::Result<fabric_proto::Secrets> {
    let mut out = fabric_proto::Secrets::new();
    for item in &queue.secrets {
        let (k, v) = match item.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => {
                let v = std::env::var(item).map_err(|_| {
                    usage(format!(
                        "--secret {item}: no `=` and no variable {item} in this environment; use --secret {item}=VALUE or --secret-file {item}=PATH"
                    ))
                })?;
                (item.clone(), v)
            }
        };
        out.push((k, fabric_proto::SecretValue::new(v)));
    }
    for item in &queue.secret_files {
        let Some((k, path)) = item.split_once('=') else {
            return Err(usage(format!("--secret-file {item}: expected NAME=PATH")));
        };
        let meta = std::fs::metadata(path)
            .map_err(|e| usage(format!("--secret-file {k}: cannot read {path}: {e}")))?;
        if meta.len() > fabric_proto::MAX_SECRET_BYTES as u64 {
            return Err(usage(format!(
                "--secret-file {k}: {path} is {}, over the {} all of a task's secrets may hold",
                format_size(meta.len()),
                format_size(fabric_proto::MAX_SECRET_BYTES as u64)
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            usage(format!(
                "--secret-file {k}: cannot read {path} as text: {e}"
            ))
        })?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        out.push((k.to_owned(), fabric_proto::SecretValue::new(text)));
    }
    fabric_proto::check_secrets(&out, env).map_err(|e| usage(format!("--{e}")))?;
    Ok(out)
}

/// This process's stdin, read up to one byte past `max` (refused past it).
pub(crate) fn input_from_stdin(max: u64) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .context("reading the input from stdin")?;
    if buf.len() as u64 > max {
        return Err(usage(format!(
            "--input - (stdin) is over the largest input the cluster takes ({})",
            format_size(max)
        )));
    }
    Ok(buf)
}

/// The task's stdin bytes: a file, this process's stdin for `-`, or
/// nothing. A file over `max` bytes is refused before it is read; stdin is
/// read up to one byte past `max`.
pub(crate) fn input(opts: &TaskOpts, max: u64) -> anyhow::Result<Vec<u8>> {
    let over = |what: &str, len: Option<u64>| {
        let size = len
            .map(|n| format!("{}, ", format_size(n)))
            .unwrap_or_default();
        usage(format!(
            "--input {what} is {size}over the largest input the cluster takes ({})",
            format_size(max)
        ))
    };
    match opts.input.as_deref() {
        None => Ok(Vec::new()),
        Some(p) if p == Path::new("-") => input_from_stdin(max),
        Some(p) => {
            let cannot =
                |e: std::io::Error| usage(format!("cannot read --input {}: {e}", p.display()));
            let len = std::fs::metadata(p).map_err(cannot)?.len();
            if len > max {
                return Err(over(&p.display().to_string(), Some(len)));
            }
            std::fs::read(p).map_err(cannot)
        }
    }
}

/// A file's bytes as a task's input (`--each`), within the cluster's cap.
pub(crate) fn file_input(path: &Path, max: u64) -> anyhow::Result<Vec<u8>> {
    let cannot = |e: std::io::Error| usage(format!("cannot read {}: {e}", path.display()));
    let len = std::fs::metadata(path).map_err(cannot)?.len();
    if len > max {
        return Err(usage(format!(
            "{} is {}, over the largest input the cluster takes ({})",
            path.display(),
            format_size(len),
            format_size(max)
        )));
    }
    std::fs::read(path).map_err(cannot)
}

/// What `submit` and `run` check against the cluster's caps before
/// uploading a byte, in the flags' terms.
pub(crate) struct Checked {
    pub caps: ClusterCaps,
    pub limits: Limits,
    pub retries: u32,
    pub input: Vec<u8>,
}

/// Asks the cluster for its caps and checks the limits, `--retries` and
/// the input against them.
pub(crate) async fn checked(
    client: &Client,
    task: &TaskOpts,
    fuel: Option<u64>,
    retries: u32,
) -> anyhow::Result<Checked> {
    let caps = client.caps().await?;
    Ok(Checked {
        limits: limits(task, fuel, &caps.limits)?,
        retries: retries_within(retries, caps.max_retries)?,
        input: input(task, caps.max_input_bytes)?,
        caps,
    })
}

/// `--require LABEL`s, checked.
pub(crate) fn require(labels: &[String]) -> anyhow::Result<Vec<String>> {
    fabric_proto::check_require(labels).map_err(|e| usage(format!("--require: {e}")))?;
    Ok(labels.to_vec())
}

/// `--after ID`s, each resolved to a whole task id.
pub(crate) async fn after(
    client: &Client,
    ids: &[String],
) -> anyhow::Result<Vec<fabric_proto::TaskId>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let resolved = client
            .resolve_task(id)
            .await
            .map_err(|e| usage(format!("--after {id}: {e}")))?;
        out.push(resolved);
    }
    Ok(out)
}

/// `--after` and `--input-from`, resolved: the tasks a new one runs
/// after, and the one whose stdout is its stdin.
pub(crate) async fn links(
    client: &Client,
    queue: &crate::cli::QueueOpts,
) -> anyhow::Result<(Vec<fabric_proto::TaskId>, Option<fabric_proto::TaskId>)> {
    let after = self::after(client, &queue.after).await?;
    let input_from = match &queue.input_from {
        Some(id) => self::after(client, std::slice::from_ref(id)).await?.pop(),
        None => None,
    };
    Ok((after, input_from))
}

/// `--trace ID`, checked.
pub(crate) fn trace(flag: Option<&str>) -> anyhow::Result<Option<String>> {
    match flag {
        Some(t) => {
            fabric_proto::check_trace(t).map_err(|e| usage(format!("--trace: {e}")))?;
            Ok(Some(t.to_owned()))
        }
        None => Ok(None),
    }
}

/// `--priority` as the flag gives it.
pub(crate) fn priority(flag: &str) -> anyhow::Result<Priority> {
    flag.parse().map_err(|e| usage(format!("--priority: {e}")))
}

/// `--retries N` within the cluster's maximum.
fn retries_within(n: u32, max: u32) -> anyhow::Result<u32> {
    if n > max {
        return Err(usage(format!(
            "--retries {n} is over the cluster maximum of {max}"
        )));
    }
    Ok(n)
}

/// The module's size within the cluster's maximum.
pub(crate) fn module_fits(path: &Path, len: usize, max: u64) -> anyhow::Result<()> {
    if len as u64 > max {
        return Err(usage(format!(
            "module {} is {}, over the largest module the cluster takes ({})",
            path.display(),
            format_size(len as u64),
            format_size(max)
        )));
    }
    Ok(())
}

/// `--delay` or `--at` as a time in ms since the epoch (a past `--at`
/// starts at once; one more than a year ahead is refused).
pub(crate) fn not_before(q: &QueueOpts) -> anyhow::Result<Option<u64>> {
    let now = fabric_proto::now_ms();
    let at = match (&q.delay, &q.at) {
        (Some(d), _) => now.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        (None, Some(text)) => {
            let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
                usage(format!(
                    "--at {text:?} is not an RFC 3339 time ({e}); e.g. 2026-12-07T03:00:00+01:00 or 2026-12-07T02:00:00Z"
                ))
            })?;
            u64::try_from(t.timestamp_millis()).unwrap_or(0)
        }
        (None, None) => return Ok(None),
    };
    if at > now.saturating_add(fabric_proto::MAX_DELAY_MS) {
        return Err(usage(
            "--delay/--at: at most a year ahead (a schedule repeats; see fabric schedule)",
        ));
    }
    Ok(Some(at))
}
