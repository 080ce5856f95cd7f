//! Checks a submission must pass before anything is stored.

use fabric_proto::wire::{ErrorBody, ErrorCode};
use fabric_proto::{LimitCaps, TaskKind, TaskSpec};

/// Cluster-wide caps on what a task may ask for.
#[derive(Clone, Debug)]
pub struct AdmissionCaps {
    /// Maximum limits.
    pub limits: LimitCaps,
    /// Largest stdin, bytes (inputs over [`fabric_proto::INLINE_INPUT_MAX`]
    /// are stored as chunked blobs, not held in memory).
    pub max_input_bytes: usize,
    /// Most tasks waiting in the queue; a submit beyond it is refused with
    /// [`ErrorCode::QueueFull`].
    pub max_queued: usize,
    /// Largest module, bytes.
    pub max_module_bytes: usize,
    /// Most bytes of args plus env.
    pub max_args_bytes: usize,
    /// Most retries a task may ask for.
    pub max_retries: u32,
}

impl Default for AdmissionCaps {
    fn default() -> Self {
        Self {
            limits: LimitCaps::default(),
            max_input_bytes: fabric_proto::DEFAULT_MAX_INPUT_BYTES as usize,
            max_queued: 100_000,
            max_module_bytes: 15 << 20,
            max_args_bytes: 64 << 10,
            max_retries: 20,
        }
    }
}

fn bad(message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, message)
}

/// Validates a task spec against the caps. Whether its module is stored is
/// checked by the caller.
pub fn check_spec(spec: &TaskSpec, caps: &AdmissionCaps) -> Result<(), ErrorBody> {
    if let Some(trace) = &spec.trace {
        fabric_proto::check_trace(trace).map_err(bad)?;
    }
    fabric_proto::check_require(&spec.require).map_err(|e| bad(format!("require: {e}")))?;
    let mut returns_files = false;
    if let TaskKind::Command {
        program,
        files,
        outputs,
    } = &spec.kind
    {
        check_command(program, files, outputs, caps)?;
        returns_files = !outputs.is_empty();
    }
    spec.limits
        .check_within(&caps.limits)
        .map_err(|e| bad(format!("limits: {e}")))?;
    // stdout and stderr (and a native task's output files) travel back in
    // one frame.
    let files_budget = if returns_files {
        fabric_proto::MAX_OUTPUT_FILES_BYTES
    } else {
        0
    };
    let frame_budget = (fabric_proto::DEFAULT_MAX_FRAME as u64 - (1 << 20) - files_budget) / 2;
    if spec.limits.output_bytes > frame_budget {
        return Err(bad(format!(
            "limits: output_bytes {} is over what a result can carry ({frame_budget} bytes per stream)",
            spec.limits.output_bytes
        )));
    }
    if spec.input_blob.is_some() && !spec.input.is_empty() {
        return Err(bad(
            "a task has either an inline input or an input blob, not both",
        ));
    }
    check_input_len(spec.input_len(), caps)?;
    let args_bytes: usize = spec.args.iter().map(String::len).sum::<usize>()
        + spec
            .env
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
    if args_bytes > caps.max_args_bytes {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!(
                "args and env are {args_bytes} bytes; the cluster allows at most {}",
                caps.max_args_bytes
            ),
        ));
    }
    fabric_proto::check_args_env(&spec.args, &spec.env).map_err(|e| bad(e.to_string()))?;
    fabric_proto::check_secrets(&spec.secrets, &spec.env).map_err(|e| bad(e.to_string()))?;
    if spec.retries > caps.max_retries {
        return Err(bad(format!(
            "retries {} is over the cluster maximum {}",
            spec.retries, caps.max_retries
        )));
    }
    Ok(())
}

/// Most files one native task stages.
pub const MAX_STAGED_FILES: usize = 10_000;
/// Most bytes one native task stages in all.
pub const MAX_STAGED_BYTES: u64 = 1 << 30;
/// Most output globs of one native task.
pub const MAX_OUTPUT_GLOBS: usize = 64;

/// A native task's program, staged files and output globs.
fn check_command(
    program: &str,
    files: &[fabric_proto::StagedFile],
    outputs: &[String],
    caps: &AdmissionCaps,
) -> Result<(), ErrorBody> {
    if program.is_empty() || program.len() > 4096 || program.contains('\0') {
        return Err(bad(
            "a native task names its program: non-empty, at most 4096 bytes, no NUL",
        ));
    }
    if files.len() > MAX_STAGED_FILES {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!("{} files staged; at most {MAX_STAGED_FILES}", files.len()),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    for f in files {
        fabric_proto::check_relative_path(&f.path).map_err(|e| bad(format!("file {e}")))?;
        if !seen.insert(f.path.as_str()) {
            return Err(bad(format!("file {:?} is staged twice", f.path)));
        }
        check_input_len(f.blob.len, caps)?;
        total = total.saturating_add(f.blob.len);
    }
    if total > MAX_STAGED_BYTES {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!(
                "staged files are {} in all; at most {}",
                fabric_proto::format_size(total),
                fabric_proto::format_size(MAX_STAGED_BYTES)
            ),
        ));
    }
    if outputs.len() > MAX_OUTPUT_GLOBS {
        return Err(bad(format!(
            "{} output globs; at most {MAX_OUTPUT_GLOBS}",
            outputs.len()
        )));
    }
    for g in outputs {
        fabric_proto::check_relative_path(g).map_err(|e| bad(format!("output {e}")))?;
    }
    Ok(())
}

/// Checks an input's (or an input blob's) length against the cap.
pub fn check_input_len(len: u64, caps: &AdmissionCaps) -> Result<(), ErrorBody> {
    if len > caps.max_input_bytes as u64 {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!(
                "input is {} MiB ({len} bytes); the cluster allows at most {} MiB",
                len.div_ceil(1 << 20),
                caps.max_input_bytes >> 20
            ),
        ));
    }
    Ok(())
}

/// The refusal of a submit while the queue holds `max` tasks.
pub fn queue_full(max: usize) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::QueueFull,
        format!(
            "the queue is full ({} {}); try again later",
            fabric_proto::format_count(max as u64),
            if max == 1 { "task" } else { "tasks" }
        ),
    )
}

/// Validates a module upload.
pub fn check_module(bytes: &[u8], caps: &AdmissionCaps) -> Result<(), ErrorBody> {
    if bytes.len() > caps.max_module_bytes {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!(
                "module is {} bytes; the cluster allows at most {}",
                bytes.len(),
                caps.max_module_bytes
            ),
        ));
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(bad(
            "module is not a WebAssembly binary (it does not start with \\0asm)",
        ));
    }
    fabric_sandbox::inspect_module(bytes).map_err(|e| bad(format!("module cannot run: {e}")))
}

#[cfg(test)]
mod tests {
    use fabric_proto::Sha256;

    use super::*;

    fn spec() -> TaskSpec {
        TaskSpec::wasm(Sha256::of(b"m"))
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let caps = AdmissionCaps::default();
        assert!(check_spec(&spec(), &caps).is_ok());
        let mut s = spec();
        s.limits.fuel = u64::MAX;
        assert!(check_spec(&s, &caps).unwrap_err().message.contains("fuel"));
        let mut s = spec();
        s.input = vec![0; caps.max_input_bytes + 1];
        assert_eq!(check_spec(&s, &caps).unwrap_err().code, ErrorCode::TooLarge);
        let mut s = spec();
        s.env = vec![("A=B".into(), "x".into())];
        assert!(check_spec(&s, &caps).unwrap_err().message.contains("A=B"));
        // What QUIC clients send is checked as REST's is: loader variables
        // and NUL bytes are refused before anything is stored.
        let mut s = spec();
        s.env = vec![("LD_PRELOAD".into(), "/work/x.so".into())];
        let err = check_spec(&s, &caps).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest);
        assert!(err.message.contains("LD_PRELOAD"), "{}", err.message);
        let mut s = spec();
        s.args = vec!["ok".into(), "a\0b".into()];
        let err = check_spec(&s, &caps).unwrap_err();
        assert!(
            err.message.contains("argument 2 contains a NUL byte"),
            "{}",
            err.message
        );
        let mut s = spec();
        s.env = vec![("A".into(), "x\0y".into())];
        assert!(check_spec(&s, &caps).unwrap_err().message.contains("NUL"));
        let mut s = spec();
        s.limits.output_bytes = 32 << 20;
        assert!(
            check_spec(&s, &caps)
                .unwrap_err()
                .message
                .contains("output_bytes")
        );
        let mut s = spec();
        s.retries = 1000;
        assert!(
            check_spec(&s, &caps)
                .unwrap_err()
                .message
                .contains("retries")
        );
        assert!(
            check_module(b"hello", &caps)
                .unwrap_err()
                .message
                .contains("\\0asm")
        );
        // Valid wasm, but nothing to run: refused at admission.
        let empty = check_module(b"\0asm\x01\0\0\0", &caps).unwrap_err();
        assert!(empty.message.contains("_start"), "{}", empty.message);
    }

    #[test]
    fn input_blobs_are_capped_and_exclusive() {
        let caps = AdmissionCaps::default();
        let mut s = spec();
        s.input_blob = Some(fabric_proto::BlobRef {
            sha: Sha256::of(b"x"),
            len: caps.max_input_bytes as u64 + 1,
        });
        let err = check_spec(&s, &caps).unwrap_err();
        assert_eq!(err.code, ErrorCode::TooLarge);
        assert!(err.message.contains("64 MiB"), "{}", err.message);
        s.input_blob = Some(fabric_proto::BlobRef::of(b"x"));
        assert!(check_spec(&s, &caps).is_ok());
        s.input = b"x".to_vec();
        assert!(
            check_spec(&s, &caps)
                .unwrap_err()
                .message
                .contains("not both")
        );
    }

    #[test]
    fn a_full_queue_says_so_in_plain_numbers() {
        let err = queue_full(100_000);
        assert_eq!(err.code, ErrorCode::QueueFull);
        assert_eq!(
            err.message,
            "the queue is full (100,000 tasks); try again later"
        );
        assert!(queue_full(1).message.contains("(1 task)"));
    }
}
