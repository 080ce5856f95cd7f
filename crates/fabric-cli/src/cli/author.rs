//! Flags of the commands for task authors and shells: `new`,
//! `completions` and `man`.

use std::path::PathBuf;

use clap::Args;

pub(super) const NEW_EXAMPLES: &str = "\
Examples:
  fabric new word-count
  cd word-count && fabric exec . --input input.json
  fabric submit . --input input.json --wait

The crate carries a copy of the guest SDK (fabric-guest/) as a path
dependency, so it builds with the Rust toolchain and crates.io alone; the
wasm32-wasip1 target must be installed (rustup target add wasm32-wasip1).";

#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// The crate's dir, made here; its last part is the crate's name.
    #[arg(value_name = "NAME")]
    pub path: PathBuf,
}

pub(super) const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  fabric completions bash > ~/.local/share/bash-completion/completions/fabric
  fabric completions zsh > \"${fpath[1]}/_fabric\"
  fabric completions fish > ~/.config/fish/completions/fabric.fish";

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub(super) const MAN_EXAMPLES: &str = "\
Examples:
  fabric man | man -l -
  fabric man submit > fabric-submit.1";

#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// A subcommand's page instead of fabric's (e.g. `submit`).
    #[arg(value_name = "SUBCOMMAND")]
    pub subcommand: Option<String>,
}
