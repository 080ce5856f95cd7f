//! Allow-listed native commands in a Linux process sandbox.
//!
//! A worker resolves its allow-list at start ([`AllowList`]), probes the
//! isolation layers this host offers ([`Layers`], logged at start), and runs
//! each native task through a helper process ([`NativeRunner`]): the
//! `fabric` binary re-executed in a hidden mode ([`helper_main`]) that joins
//! the task's cgroups, drops to an unprivileged uid and sets up the sandbox
//! with [hakoniwa](https://docs.rs/hakoniwa) before it execs the program.
//!
//! hakoniwa was chosen over hand-assembling landlock + seccompiler + rustix:
//! it does namespaces, the new root (pivot_root), rlimits, landlock and
//! seccomp in one audited sequence in the child, and sets a parent-death
//! signal so the task cannot outlive its helper.

mod allow;
mod cgroup;
mod files;
mod helper;
mod layers;
mod outcome;
mod run;
mod spec;
mod uids;

pub use allow::{AllowError, AllowList};
pub use cgroup::CgroupLayout;
pub use files::Staged;
pub use helper::helper_main;
pub use layers::Layers;
pub use run::{NativeRunner, NativeTask, OUTPUT_CHUNK, RunnerConfig};

/// The hidden `fabric` subcommand that runs the helper.
pub const HELPER_COMMAND: &str = "__native-helper";
