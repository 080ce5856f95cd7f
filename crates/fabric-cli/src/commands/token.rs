//! `fabric token`: join and REST API tokens, minted, listed and revoked by
//! the running dispatcher (the admin profile's key only).

use std::path::Path;

use super::client::with_client;
use crate::cli::TokenCommand;
use crate::output::Output;

pub(crate) fn execute(cmd: &TokenCommand, cluster: Option<&Path>) -> anyhow::Result<i32> {
    match cmd {
        TokenCommand::Create(args) => {
            let (token, info) = with_client(cluster, async |c| {
                Ok(
                    c.create_token_with_role(Some(args.ttl), args.uses, args.role)
                        .await?,
                )
            })?;
            Output::new(args.json).token_created(&token, &info);
        }
        TokenCommand::List(args) => {
            let tokens = with_client(cluster, async |c| Ok(c.list_tokens().await?))?;
            Output::new(args.json).tokens(&tokens);
        }
        TokenCommand::Revoke(args) => {
            let info = with_client(cluster, async |c| Ok(c.revoke_token(&args.id).await?))?;
            Output::new(args.json).token_revoked(&info);
        }
    }
    Ok(0)
}
