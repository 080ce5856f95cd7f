//! What a client asks the cluster to run.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{BlobRef, Limits, Sha256};

/// The two kinds of work Fabric runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A wasm32-wasip1 module, identified by the SHA-256 of its bytes.
    Wasm {
        /// Digest of the module's bytes.
        module: Sha256,
    },
    /// An allow-listed native program, run in the process sandbox.
    Command {
        /// Program name or path; the worker resolves it against its allow-list.
        program: String,
        /// Files placed in the scratch dir before it runs.
        #[serde(default)]
        files: Vec<StagedFile>,
        /// Globs (relative to the scratch dir) of files brought back.
        #[serde(default)]
        outputs: Vec<String>,
    },
}

impl TaskKind {
    /// A native task of `program` with no files.
    pub fn command(program: impl Into<String>) -> Self {
        Self::Command {
            program: program.into(),
            files: Vec::new(),
            outputs: Vec::new(),
        }
    }
}

/// A file a native task finds in its scratch dir: its content is a blob
/// the dispatcher holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedFile {
    /// Where, relative to the scratch dir (`/`-separated, no `..`).
    pub path: String,
    /// Its content.
    pub blob: crate::BlobRef,
    /// Whether it is made executable.
    #[serde(default)]
    pub executable: bool,
}

/// Checks a path relative to a task's scratch dir: non-empty, relative,
/// `/`-separated, at most 4096 bytes, and no `.`/`..` parts or empty parts
/// (so it never leaves the scratch dir).
pub fn check_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > 4096 || path.contains('\0') {
        return Err(format!("{path:?}: a path must be 1 to 4096 bytes, no NUL"));
    }
    if path.starts_with('/') {
        return Err(format!(
            "{path:?} is absolute; paths are relative to the task's dir"
        ));
    }
    if path
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(format!("{path:?} has an empty, `.` or `..` part"));
    }
    Ok(())
}

/// Scheduling priority; FIFO within one priority.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Runs before everything else.
    High,
    /// The default.
    #[default]
    Normal,
    /// Runs when nothing else waits.
    Low,
}

impl Priority {
    /// Queue rank: lower runs first. The scheduler's queue and the store's
    /// `live` index both order by it.
    pub fn rank(self) -> u8 {
        match self {
            Self::High => 0,
            Self::Normal => 1,
            Self::Low => 2,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
        })
    }
}

/// A string is not a priority name.
#[derive(Debug, thiserror::Error)]
#[error("invalid priority {0:?}: expected high, normal or low")]
pub struct PriorityParseError(String);

impl FromStr for Priority {
    type Err = PriorityParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "high" => Ok(Self::High),
            "normal" => Ok(Self::Normal),
            "low" => Ok(Self::Low),
            _ => Err(PriorityParseError(s.to_owned())),
        }
    }
}

/// A task as submitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// What to run.
    pub kind: TaskKind,
    /// Arguments after the program name (`argv[1..]`).
    pub args: Vec<String>,
    /// Environment, exactly as given: nothing is inherited.
    pub env: Vec<(String, String)>,
    /// Secrets, given to the task as env: never shown, dropped from the
    /// store when the task ends (see [`crate::SecretValue`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: crate::Secrets,
    /// Bytes fed to the task's stdin, when small enough to travel inline
    /// (see [`crate::INLINE_INPUT_MAX`]); empty when `input_blob` is set.
    #[serde(with = "serde_bytes")]
    pub input: Vec<u8>,
    /// The task's stdin as a stored blob, for inputs over the inline size.
    /// The dispatcher keeps only this reference in memory; the worker
    /// fetches the bytes by digest. Absent in records written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_blob: Option<BlobRef>,
    /// Resource limits.
    pub limits: Limits,
    /// Scheduling priority.
    pub priority: Priority,
    /// How many times a failed attempt is retried.
    pub retries: u32,
    /// The correlation id that follows the task from its submitter through
    /// queue, manifest and worker to its result (given, or generated at
    /// admission). See [`check_trace`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Labels the worker must carry, every one (`fabric worker --label`);
    /// see [`check_require`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<String>,
    /// Tasks that must succeed before this one is queued (`--after`); if
    /// one ends any other way, this one ends `skipped`. At most
    /// [`MAX_PARENTS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<crate::TaskId>,
    /// A task (also in `after`) whose stdout becomes this one's stdin when
    /// it is queued (`--input-from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_from: Option<crate::TaskId>,
    /// Native tasks (also in `after`) whose output files are staged into
    /// this one's dir when it is queued (`--files-from`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files_from: Vec<crate::TaskId>,
    /// Tasks (also in `after`) whose stdouts, concatenated in this order
    /// after `input_from`'s, become this one's stdin when it is queued (a
    /// job step's `input_from`: fan-in).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fan_in: Vec<crate::TaskId>,
    /// Not to start before this time (ms since the epoch; `--delay`,
    /// `--at`): the task is `scheduled` until then. A time already past
    /// queues it at once. At most [`MAX_DELAY_MS`] ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before_ms: Option<u64>,
}

/// The furthest ahead a task may be scheduled: one year.
pub const MAX_DELAY_MS: u64 = 366 * 24 * 3600 * 1000;

/// Most tasks one task may run after.
pub const MAX_PARENTS: usize = 32;

/// Most labels a task may require.
pub const MAX_REQUIRE: usize = 16;
/// The longest label a task may require.
pub const MAX_LABEL_LEN: usize = 64;

/// Checks a task's required labels: at most [`MAX_REQUIRE`], each 1 to
/// [`MAX_LABEL_LEN`] characters of `A-Z a-z 0-9 . _ : = -`.
pub fn check_require(require: &[String]) -> Result<(), String> {
    if require.len() > MAX_REQUIRE {
        return Err(format!(
            "{} required labels; at most {MAX_REQUIRE}",
            require.len()
        ));
    }
    for label in require {
        let ok = !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '=' | '-'));
        if !ok {
            return Err(format!(
                "label {label:?}: 1 to {MAX_LABEL_LEN} characters of A-Z a-z 0-9 . _ : = -"
            ));
        }
    }
    Ok(())
}

/// The longest correlation id.
pub const MAX_TRACE_LEN: usize = 128;

/// Checks a correlation id: 1 to [`MAX_TRACE_LEN`] characters of
/// `A-Z a-z 0-9 . _ : -`, so it is safe in log lines and URLs.
pub fn check_trace(trace: &str) -> Result<(), String> {
    if trace.is_empty() || trace.len() > MAX_TRACE_LEN {
        return Err(format!(
            "a trace id is 1 to {MAX_TRACE_LEN} characters, not {}",
            trace.len()
        ));
    }
    if let Some(c) = trace
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(format!(
            "trace id {trace:?} has {c:?}: use letters, digits and . _ : -"
        ));
    }
    Ok(())
}

impl TaskSpec {
    /// A wasm task for `module` with no args, env or input, default limits,
    /// normal priority and no retries.
    pub fn wasm(module: Sha256) -> Self {
        Self::new(TaskKind::Wasm { module })
    }

    /// Bytes of its args plus env, as admission counts them.
    pub fn args_env_bytes(&self) -> usize {
        self.args.iter().map(String::len).sum::<usize>()
            + self
                .env
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }

    /// A task of `kind` with no args, env or input, default limits, normal
    /// priority and no retries.
    pub fn new(kind: TaskKind) -> Self {
        Self {
            kind,
            args: Vec::new(),
            env: Vec::new(),
            secrets: Vec::new(),
            input: Vec::new(),
            input_blob: None,
            limits: Limits::default(),
            priority: Priority::Normal,
            retries: 0,
            trace: None,
            require: Vec::new(),
            after: Vec::new(),
            input_from: None,
            files_from: Vec::new(),
            fan_in: Vec::new(),
            not_before_ms: None,
        }
    }

    /// SHA-256 of the task's stdin, whether inline or a blob.
    pub fn input_digest(&self) -> Sha256 {
        match &self.input_blob {
            Some(b) => b.sha,
            None => Sha256::of(&self.input),
        }
    }

    /// Length of the task's stdin, whether inline or a blob.
    pub fn input_len(&self) -> u64 {
        match &self.input_blob {
            Some(b) => b.len,
            None => self.input.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec as written before `input_blob` existed.
    #[derive(Serialize)]
    struct OldSpec {
        kind: TaskKind,
        args: Vec<String>,
        env: Vec<(String, String)>,
        #[serde(with = "serde_bytes")]
        input: Vec<u8>,
        limits: Limits,
        priority: Priority,
        retries: u32,
    }

    #[test]
    fn old_specs_still_decode_and_inline_specs_do_not_grow() {
        let module = Sha256::of(b"m");
        let old = OldSpec {
            kind: TaskKind::Wasm { module },
            args: vec![],
            env: vec![],
            input: b"hi".to_vec(),
            limits: Limits::default(),
            priority: Priority::Normal,
            retries: 0,
        };
        let old_bytes = crate::to_cbor(&old).unwrap();
        let spec: TaskSpec = crate::from_cbor(&old_bytes).unwrap();
        assert_eq!(spec.input, b"hi");
        assert_eq!(spec.input_blob, None);
        assert_eq!(spec.input_digest(), Sha256::of(b"hi"));
        assert_eq!(crate::to_cbor(&spec).unwrap(), old_bytes);
    }

    #[test]
    fn blob_input_names_its_digest_and_length() {
        let mut spec = TaskSpec::wasm(Sha256::of(b"m"));
        let blob = BlobRef::of(&[7; 10_000]);
        spec.input_blob = Some(blob);
        assert_eq!(spec.input_digest(), blob.sha);
        assert_eq!(spec.input_len(), 10_000);
        let back: TaskSpec = crate::from_cbor(&crate::to_cbor(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }
}
