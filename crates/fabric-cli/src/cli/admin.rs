//! Flags of the admin commands: `fabric token ...` and
//! `fabric workers remove`.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::JsonArg;
use crate::units;

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Mint a join token for a new worker, or with --role a REST API token
    /// (asks the running dispatcher).
    #[command(
        after_help = "Examples:\n  fabric worker --join \"$(fabric token create)\"\n  fabric token create --ttl 1h --uses 1\n  TOKEN=$(fabric token create --role read --ttl 7d)\n  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:7080/api/v1/stats"
    )]
    Create(TokenCreateArgs),
    /// List join and REST tokens: id, kind, age, expiry, uses left (never
    /// the secret).
    #[command(after_help = "Example:\n  fabric token list --json")]
    List(JsonArg),
    /// Revoke a join or REST token by its id (or a unique prefix of it).
    #[command(after_help = "Example:\n  fabric token revoke 9c41e0d2a7b3")]
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TokenCreateArgs {
    /// How long the token is accepted.
    #[arg(long, value_name = "DUR", default_value = "24h", value_parser = units::parse_duration)]
    pub ttl: Duration,
    /// How many workers may join with it [default: unlimited].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "role")]
    pub uses: Option<u32>,
    /// Mint a REST API token with this role instead: `read` (look),
    /// `submit` (also upload, submit, cancel) or `admin` (everything).
    #[arg(long, value_name = "ROLE")]
    pub role: Option<fabric_proto::ApiRole>,
    /// Print one JSON object (the token and its id, expiry and uses).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TokenRevokeArgs {
    /// The token's id, as `fabric token list` shows it, or a unique prefix.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WorkersArgs {
    #[command(subcommand)]
    pub command: Option<WorkersCommand>,
    #[command(flatten)]
    pub list: JsonArg,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkersCommand {
    /// Forget a worker's key, close its connection and requeue its tasks
    /// (admin only). It must join again with a valid token to come back.
    #[command(after_help = "Example:\n  fabric workers remove 3f2a9c01b7d4")]
    Remove(WorkerRemoveArgs),
}

#[derive(Debug, Args)]
pub(crate) struct WorkerRemoveArgs {
    /// The worker's key (hex, as `fabric workers` shows it) or a unique
    /// prefix of it.
    #[arg(value_name = "KEY")]
    pub key: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}
