//! Flags of `fabric admin`: the data at rest (keys, backups) and the audit
//! trail.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::JsonArg;

pub(super) const ADMIN_EXAMPLES: &str = "\
Examples:
  fabric admin gen-key > /etc/fabric/fabric.key && chmod 600 /etc/fabric/fabric.key
  fabric admin keys --census          # data keys, and what each one seals
  fabric admin rotate-key --rewrap    # a new data key; old values re-sealed with it
  fabric admin backup fabric-$(date +%F).fbk
  fabric admin restore fabric-2026-12-07.fbk --data-dir /var/lib/fabric-restored
  fabric admin audit --limit 20
  fabric admin node-key --data-dir /var/lib/fabric   # this dispatcher's key, for the others' --peer
  fabric admin members                # the group of dispatchers: who leads, log positions";

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Print a new operator key (64 hex digits) for --key-file. Keep it
    /// apart from the data dir: it is what makes a copy of the data dir
    /// unreadable.
    GenKey,
    /// The data keys everything a task brings is encrypted with, what
    /// wraps them, and a rewrap's progress (asks the running dispatcher).
    Keys(KeysArgs),
    /// Start a new data key for new writes; old keys stay for reading.
    /// --rewrap re-encrypts the old values with it, in the background
    /// (resumed after a restart), and follows its progress.
    RotateKey(RotateArgs),
    /// Take a consistent backup while the dispatcher serves and write it
    /// to FILE (refused if FILE exists); says what it holds.
    Backup(BackupArgs),
    /// Restore a backup into an empty data dir (no dispatcher needed);
    /// start `fabric dispatcher --data-dir DIR` on it afterwards, with the
    /// same --key-file the backup's dispatcher had.
    Restore(RestoreArgs),
    /// The admin actions: who (a client key or REST token) created or
    /// revoked a token, removed a worker, retried or cancelled a task,
    /// rotated a key or took a backup, and when.
    Audit(AuditArgs),
    /// The dispatchers of the group (`fabric dispatcher --peer`): who
    /// leads, who votes, and how far each one's log goes, as the
    /// dispatcher asked sees it.
    Members(MembersArgs),
    /// Print the public key of the dispatcher whose data dir is DIR,
    /// making the key if there is none yet: what the other dispatchers of
    /// a group name in their --peer KEY@HOST:PORT.
    NodeKey(NodeKeyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct MembersArgs {
    /// Add or remove a member; without one, list them.
    #[command(subcommand)]
    pub change: Option<MembersChange>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MembersChange {
    /// Add a dispatcher started with --joining and --peer for this group:
    /// it copies the log (or a snapshot), then votes.
    Add {
        /// KEY@HOST:PORT[,http://HOST:PORT] (its key: `fabric admin
        /// node-key --data-dir DIR` on its machine).
        #[arg(value_name = "KEY@HOST:PORT")]
        member: String,
    },
    /// Remove a dispatcher from the group (stop it afterwards).
    Remove {
        /// Its key (hex), as `fabric admin members` lists it.
        #[arg(value_name = "KEY")]
        key: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct NodeKeyArgs {
    /// The dispatcher's data dir.
    #[arg(long, env = "FABRIC_DATA_DIR", value_name = "DIR")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    /// Also count the values and files each key seals (scans the store).
    #[arg(long)]
    pub census: bool,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// Re-encrypt what older keys sealed with the new key, and follow it.
    #[arg(long)]
    pub rewrap: bool,
    /// With --rewrap: start it and return at once.
    #[arg(long, requires = "rewrap")]
    pub no_wait: bool,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// Where to write the backup.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The data dir to restore into: new, or empty.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// The newest this many actions.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    #[command(flatten)]
    pub json: JsonArg,
}
