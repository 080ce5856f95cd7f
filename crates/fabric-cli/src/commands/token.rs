//! `fabric token`: join tokens, minted by the running dispatcher.

use std::path::Path;

use super::client::with_client;
use crate::cli::TokenCommand;
use crate::output;

pub(crate) fn execute(cmd: &TokenCommand, cluster: Option<&Path>) -> anyhow::Result<i32> {
    match cmd {
        TokenCommand::Create => {
            let token = with_client(cluster, async |c| Ok(c.create_join_token().await?))?;
            output::line(&token);
            Ok(0)
        }
    }
}
