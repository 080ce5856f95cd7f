//! `fabric completions SHELL` and `fabric man [SUBCOMMAND]`, generated from
//! the clap definitions, so they never drift from the flags.

use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::output;
use crate::usage;

pub(crate) fn completions(args: &CompletionsArgs) -> anyhow::Result<i32> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "fabric", &mut script);
    output::raw(&script);
    Ok(0)
}

pub(crate) fn man(args: &ManArgs) -> anyhow::Result<i32> {
    let mut cmd = Cli::command();
    cmd.build();
    let page = match &args.subcommand {
        None => cmd,
        Some(name) => {
            let Some(sub) = cmd.find_subcommand(name) else {
                let names: Vec<_> = cmd
                    .get_subcommands()
                    .map(|s| s.get_name().to_owned())
                    .collect();
                return Err(usage(format!(
                    "no subcommand {name:?}; there are: {}",
                    names.join(", ")
                )));
            };
            let title = format!("fabric-{}", sub.get_name());
            sub.clone().name(title)
        }
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page).render(&mut roff)?;
    output::raw(&roff);
    Ok(0)
}
