//! Job files: TOML `[[step]]` tables read into a [`JobSpec`]. Everything a
//! step names on disk (modules, inputs, `each` globs, `files`) is relative
//! to the job's `dir` (by default the file's own directory). The DAG is
//! checked here, before anything is uploaded; the cluster checks it again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fabric_client::Client;
use fabric_proto::{
    BlobRef, EachItem, JobSpec, Limits, MAX_JOB_FILE_BYTES, StepSpec, TaskKind, check_relative_path,
};
use serde::Deserialize;

use super::super::{crate_build, each, output_files, task_opts};
use crate::{units, usage};

/// A job file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    /// A name for people; the file's stem when absent.
    name: Option<String>,
    /// Where the steps' paths start (relative to the file).
    dir: Option<PathBuf>,
    #[serde(rename = "step", default)]
    steps: Vec<StepFile>,
}

/// A step's `secrets`: each from this process's environment (`env:VAR`)
/// or a file (`file:PATH`, relative to the job file; one trailing newline
/// cut). A value written in the job file itself is refused: job files are
/// shared and checked in.
fn secrets(dir: &Path, table: &BTreeMap<String, String>) -> Result<fabric_proto::Secrets, String> {
    let mut out = fabric_proto::Secrets::new();
    for (name, source) in table {
        let value = if let Some(var) = source.strip_prefix("env:") {
            std::env::var(var)
                .map_err(|_| format!("secret {name}: no variable {var} in this environment"))?
        } else if let Some(path) = source.strip_prefix("file:") {
            let path = dir.join(path);
            let len = std::fs::metadata(&path)
                .map_err(|e| format!("secret {name}: cannot read {}: {e}", path.display()))?
                .len();
            if len > fabric_proto::MAX_SECRET_BYTES as u64 {
                return Err(format!(
                    "secret {name}: {} is {len} bytes, over the {} all of a task's secrets may hold",
                    path.display(),
                    fabric_proto::MAX_SECRET_BYTES
                ));
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("secret {name}: cannot read {}: {e}", path.display()))?;
            text.strip_suffix('\n').unwrap_or(&text).to_owned()
        } else {
            return Err(format!(
                "secret {name}: give \"env:VAR\" or \"file:PATH\", not the value itself (a job file is shared; its secrets come from where you run it)"
            ));
        };
        out.push((name.clone(), fabric_proto::SecretValue::new(value)));
    }
    fabric_proto::check_secrets(&out, &[]).map_err(|e| e.to_string())?;
    Ok(out)
}

/// One `[[step]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    name: String,
    module: Option<PathBuf>,
    bin: Option<String>,
    command: Option<Vec<String>>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// `NAME = "env:VAR"` or `NAME = "file:PATH"`: never a value written
    /// in the job file itself.
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    input: Option<PathBuf>,
    each: Option<String>,
    #[serde(default)]
    after: Vec<String>,
    #[serde(default)]
    input_from: Vec<String>,
    #[serde(default)]
    files_from: Vec<String>,
    #[serde(default)]
    files: Vec<PathBuf>,
    #[serde(default)]
    outputs: Vec<String>,
    #[serde(default)]
    require: Vec<String>,
    priority: Option<String>,
    #[serde(default)]
    retries: u32,
    timeout: Option<String>,
    memory: Option<String>,
    fuel: Option<String>,
    disk: Option<String>,
    output_limit: Option<String>,
}

/// What a job file needs uploaded before it is submitted.
#[derive(Default)]
struct Uploads {
    /// Module files.
    modules: Vec<PathBuf>,
    /// Inputs and `each` files, by content.
    blobs: BTreeMap<fabric_proto::Sha256, PathBuf>,
    /// Native steps' `files`, by step.
    files: Vec<(usize, Vec<PathBuf>)>,
}

/// A job file read and checked: its spec (modules and files not yet
/// uploaded) and where its paths start.
pub(crate) struct Loaded {
    pub spec: JobSpec,
    dir: PathBuf,
    uploads: Uploads,
}

/// Reads and checks `path`: TOML errors, unknown steps and cycles are
/// usage errors (exit 2), found before anything is uploaded.
pub(crate) fn load(path: &Path) -> anyhow::Result<Loaded> {
    let meta = std::fs::metadata(path)
        .map_err(|e| usage(format!("cannot read job file {}: {e}", path.display())))?;
    if meta.len() > MAX_JOB_FILE_BYTES as u64 {
        return Err(usage(format!(
            "job file {} is {} bytes; a job file has at most {MAX_JOB_FILE_BYTES}",
            path.display(),
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read job file {}: {e}", path.display())))?;
    let file: JobFile =
        toml::from_str(&text).map_err(|e| usage(format!("job file {}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let dir = base.join(file.dir.as_deref().unwrap_or(Path::new("")));
    if !dir.is_dir() {
        return Err(usage(format!(
            "job file {}: dir {} is not a directory",
            path.display(),
            dir.display()
        )));
    }
    let name = file.name.unwrap_or_else(|| {
        path.file_stem()
            .map_or_else(|| "job".into(), |s| s.to_string_lossy().into_owned())
    });
    let mut uploads = Uploads::default();
    let mut steps = Vec::with_capacity(file.steps.len());
    for (i, s) in file.steps.into_iter().enumerate() {
        let step_name = s.name.clone();
        let step = step(s, i, &dir, &mut uploads).map_err(|e| {
            usage(format!(
                "job file {}: step {step_name:?}: {e}",
                path.display()
            ))
        })?;
        steps.push(step);
    }
    let spec = JobSpec { name, steps };
    spec.check()
        .map_err(|e| usage(format!("job file {}: {e}", path.display())))?;
    Ok(Loaded { spec, dir, uploads })
}

fn step(s: StepFile, i: usize, dir: &Path, up: &mut Uploads) -> Result<StepSpec, String> {
    let (kind, args) = match (s.module, s.command) {
        (Some(module), None) => {
            if !s.files.is_empty() || !s.outputs.is_empty() {
                return Err(
                    "files and outputs are a native command's; this step runs a module".into(),
                );
            }
            let path = crate_build::module_path(&dir.join(&module), s.bin.as_deref())
                .map_err(|e| format!("module: {e:#}"))?;
            let wasm = task_opts::read_module(&path).map_err(|e| format!("{e:#}"))?;
            up.modules.push(path);
            let module = fabric_proto::Sha256::of(&wasm);
            (TaskKind::Wasm { module }, s.args)
        }
        (None, Some(command)) => {
            let Some((program, rest)) = command.split_first() else {
                return Err("command is empty: give the program and its args".into());
            };
            if !s.args.is_empty() {
                return Err("a command step gives its args in command".into());
            }
            for g in &s.outputs {
                check_relative_path(g).map_err(|e| format!("outputs: {e}"))?;
            }
            if !s.files.is_empty() {
                up.files.push((i, s.files));
            }
            let kind = TaskKind::Command {
                program: program.clone(),
                files: Vec::new(),
                outputs: s.outputs,
            };
            (kind, rest.to_vec())
        }
        (Some(_), Some(_)) => return Err("give a module or a command, not both".into()),
        (None, None) => return Err("give a module (a .wasm file or crate dir) or a command".into()),
    };
    let input = s.input.map(|p| blob(dir, &p, up)).transpose()?;
    let each = match &s.each {
        Some(pattern) => items(dir, pattern, up)?,
        None => Vec::new(),
    };
    let secrets = secrets(dir, &s.secrets)?;
    Ok(StepSpec {
        name: s.name,
        kind,
        args,
        env: s.env.into_iter().collect(),
        secrets,
        input,
        limits: Some(limits(
            s.timeout.as_deref(),
            s.memory.as_deref(),
            s.fuel.as_deref(),
            s.disk.as_deref(),
            s.output_limit.as_deref(),
        )?),
        priority: match &s.priority {
            Some(p) => p.parse().map_err(|e| format!("{e}"))?,
            None => fabric_proto::Priority::Normal,
        },
        retries: s.retries,
        after: s.after,
        input_from: s.input_from,
        files_from: s.files_from,
        require: s.require,
        each,
    })
}

fn limits(
    timeout: Option<&str>,
    memory: Option<&str>,
    fuel: Option<&str>,
    disk: Option<&str>,
    output: Option<&str>,
) -> Result<Limits, String> {
    let d = Limits::default();
    let size = |v: Option<&str>, key: &str, default: u64| {
        v.map_or(Ok(default), |v| {
            units::parse_size(v).map_err(|e| format!("{key}: {e}"))
        })
    };
    Ok(Limits {
        fuel: fuel.map_or(Ok(d.fuel), |v| {
            units::parse_fuel(v).map_err(|e| format!("fuel: {e}"))
        })?,
        memory_bytes: size(memory, "memory", d.memory_bytes)?,
        timeout_ms: match timeout {
            Some(t) => {
                let t = units::parse_duration(t).map_err(|e| format!("timeout: {e}"))?;
                u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
            }
            None => d.timeout_ms,
        },
        output_bytes: size(output, "output_limit", d.output_bytes)?,
        disk_bytes: size(disk, "disk", d.disk_bytes)?,
    })
}

/// A file's blob reference (hashed here; uploaded later).
fn blob(dir: &Path, rel: &Path, up: &mut Uploads) -> Result<BlobRef, String> {
    let path = dir.join(rel);
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let r = BlobRef::of(&bytes);
    up.blobs.entry(r.sha).or_insert(path);
    Ok(r)
}

/// One item per file `pattern` matches under `dir`, named by its path
/// there.
fn items(dir: &Path, pattern: &str, up: &mut Uploads) -> Result<Vec<EachItem>, String> {
    let full = dir.join(pattern);
    let files = each::files(&full.to_string_lossy()).map_err(|e| format!("each: {e:#}"))?;
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(dir).unwrap_or(&f);
            let name = rel.to_string_lossy().into_owned();
            check_relative_path(&name)
                .map_err(|e| format!("each: {e}: the files must be under the job's dir"))?;
            Ok(EachItem {
                blob: blob(dir, rel, up)?,
                name,
            })
        })
        .collect()
}

impl Loaded {
    /// Uploads the job's modules, inputs and files; the spec to submit.
    pub(crate) async fn upload(self, client: &Client) -> anyhow::Result<JobSpec> {
        let Self {
            mut spec,
            dir,
            uploads,
        } = self;
        let caps = client.caps().await?;
        for path in &uploads.modules {
            let wasm = task_opts::read_module(path)?;
            task_opts::module_fits(path, wasm.len(), caps.max_module_bytes)?;
            client.upload_module(&wasm).await?;
        }
        for path in uploads.blobs.values() {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            client.upload_input(&bytes).await?;
        }
        // Native files are staged as `--file` stages them, from the job's
        // dir, keeping their paths.
        let back = std::env::current_dir().context("cannot read the current directory")?;
        std::env::set_current_dir(&dir)
            .with_context(|| format!("cannot enter {}", dir.display()))?;
        let mut staged = Vec::new();
        for (i, paths) in uploads.files {
            let files = output_files::stage(client, &paths, caps.max_input_bytes).await;
            staged.push((i, files));
        }
        std::env::set_current_dir(&back).context("cannot go back to the current directory")?;
        for (i, files) in staged {
            if let TaskKind::Command { files: f, .. } = &mut spec.steps[i].kind {
                *f = files?;
            }
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests;
