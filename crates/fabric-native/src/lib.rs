//! Allow-listed native commands in a Linux process sandbox.
//!
//! A worker resolves its allow-list at start ([`AllowList`]), probes the
//! isolation layers this host offers ([`Layers`], logged at start), and runs
//! each native task through a helper process ([`NativeRunner`]): the
//! `fabric` binary re-executed in a hidden mode ([`helper_main`]) whose
//! launcher joins the task's cgroups, drops to an unprivileged uid and sets
//! up the sandbox with [hakoniwa](https://docs.rs/hakoniwa); in the sandbox, a small init
//! of Fabric's own (`init`) is pid 1 and starts the program.
//!
//! hakoniwa was chosen over hand-assembling landlock + seccompiler + rustix:
//! it does namespaces, the new root (pivot_root), rlimits, landlock and
//! seccomp in one audited sequence in the child. Nothing of a task outlives
//! it: at its end, whatever the reason (exit, timeout, cancel, a lost lease,
//! the worker stopping), every process in its cgroups is killed before the
//! groups and its dir go (`cgroup`, `scratch`), and a worker sweeps at start
//! what a killed predecessor left.
//!
//! | room | holds |
//! | --- | --- |
//! | `allow` | the operator's allow-list, resolved at start |
//! | `layers` | which isolation layers this host has |
//! | `run` | the worker's side of one task: dirs, groups, helper, its end |
//! | `output` | stdout and stderr, streamed in chunks and kept, capped |
//! | `remains` | what a task leaves until cleared, cleared even when dropped |
//! | `sweep` | what a dead or stopping worker's tasks left, cleared |
//! | `scratch` | the task's host dir and its disk (a size-limited tmpfs) |
//! | `cgroup` | memory and pids groups; killing everything in them |
//! | `uids` | the block of host uids tasks run as, never reused while in use |
//! | `helper` | the helper process: cgroups, uid, the sandbox's mounts |
//! | `filter` | the seccomp filter (calls and socket families) |
//! | `init` | pid 1 in the sandbox, the program its child |
//! | `files` | files staged in and collected out |
//! | `outcome` | how a run ended, as a task status |

mod allow;
mod cgroup;
mod files;
mod filter;
mod helper;
mod init;
mod layers;
mod outcome;
mod output;
mod remains;
mod run;
mod scratch;
mod spec;
mod sweep;
mod uids;

pub use allow::{AllowError, AllowList};
pub use cgroup::CgroupLayout;
pub use files::Staged;
pub use helper::helper_main;
pub use layers::Layers;
pub use output::OUTPUT_CHUNK;
pub use run::{NativeRunner, NativeTask, RunnerConfig};
pub use sweep::stop_all;

/// The hidden `fabric` subcommand that runs the helper.
pub const HELPER_COMMAND: &str = "__native-helper";
