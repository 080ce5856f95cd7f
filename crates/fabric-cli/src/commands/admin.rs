//! `fabric admin`: operator and data keys, rotation and rewrap, backups
//! and restores, and the audit trail.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use super::client::with_client;
use crate::cli::{AdminCommand, BackupArgs, MembersChange, RotateArgs};
use crate::output::{self, Output};
use crate::usage;

pub(crate) fn execute(cmd: &AdminCommand, cluster: Option<&Path>) -> anyhow::Result<i32> {
    match cmd {
        AdminCommand::GenKey => {
            output::raw(format!("{}\n", fabric_dispatcher::generate_key_hex()).as_bytes())
        }
        AdminCommand::Keys(args) => {
            let keys = with_client(cluster, async |c| Ok(c.keys(args.census).await?))?;
            Output::new(args.json.json).keys(&keys);
        }
        AdminCommand::RotateKey(args) => rotate(args, cluster)?,
        AdminCommand::Backup(args) => backup(args, cluster)?,
        AdminCommand::Restore(args) => {
            let summary = fabric_dispatcher::restore_backup(&args.file, &args.data_dir).map_err(
                |e| match e {
                    fabric_dispatcher::RestoreError::NotEmpty(_)
                    | fabric_dispatcher::RestoreError::Bad { .. } => usage(e.to_string()),
                    other => anyhow::Error::new(other),
                },
            )?;
            Output::new(args.json.json).restored(&summary, &args.data_dir);
        }
        AdminCommand::Audit(args) => {
            let entries = with_client(cluster, async |c| Ok(c.audit(args.limit).await?))?;
            Output::new(args.json.json).audit(&entries);
        }
        AdminCommand::Members(args) => {
            let members = match &args.change {
                None => with_client(cluster, async |c| Ok(c.members().await?))?,
                Some(MembersChange::Add { member }) => {
                    let m = crate::config::parse_peer(member)?;
                    with_client(cluster, async |c| {
                        Ok(c.add_member(m.key, m.addr.clone(), m.api_url.clone())
                            .await?)
                    })?
                }
                Some(MembersChange::Remove { key }) => {
                    let key: fabric_net::PublicKey = key
                        .parse()
                        .map_err(|_| usage(format!("{key:?} is not a key (64 hex digits)")))?;
                    with_client(cluster, async |c| {
                        Ok(c.remove_member(key.to_bytes()).await?)
                    })?
                }
            };
            Output::new(args.json.json).members(&members);
        }
        AdminCommand::NodeKey(args) => {
            fabric_net::create_private_dir(&args.data_dir)
                .with_context(|| format!("making {}", args.data_dir.display()))?;
            let id = fabric_net::Identity::load_or_create(&args.data_dir.join("node.key"))?;
            output::raw(format!("{}\n", id.public()).as_bytes());
        }
    }
    Ok(0)
}

fn rotate(args: &RotateArgs, cluster: Option<&Path>) -> anyhow::Result<()> {
    let out = Output::new(args.json.json);
    let keys = with_client(cluster, async |c| {
        let keys = c.rotate_key(args.rewrap).await?;
        if !args.rewrap || args.no_wait {
            return Ok(keys);
        }
        let bar = output::Rewrap::start(out);
        let new_key = keys.keys.iter().find(|k| k.active).map_or(0, |k| k.id);
        loop {
            let keys = c.keys(false).await?;
            let progress = keys.rewrap.clone().unwrap_or_default();
            if progress.key < new_key && progress.error.is_none() {
                // An older key's pass still ending: this one is not done.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            bar.show(&progress);
            if let Some(why) = &progress.error {
                bar.finish();
                anyhow::bail!(
                    "the rewrap stopped: {why} (it resumes when the dispatcher restarts)"
                );
            }
            if progress.finished {
                bar.finish();
                return Ok(keys);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })?;
    out.key_rotated(&keys, args.rewrap && !args.no_wait);
    Ok(())
}

fn backup(args: &BackupArgs, cluster: Option<&Path>) -> anyhow::Result<()> {
    let part = args.file.with_extension("fbk-part");
    if args.file.exists() {
        return Err(usage(format!(
            "{} exists; give a new file name (a backup never overwrites one)",
            args.file.display()
        )));
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&part)
        .with_context(|| format!("creating {}", part.display()))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o600))?;
    }
    let out = Output::new(args.json.json);
    let mut w = std::io::BufWriter::new(file);
    let bar = output::Transfer::start(out, "backup");
    let taken = with_client(cluster, async |c| {
        Ok(c.backup(|piece| {
            bar.add(piece.len() as u64);
            w.write_all(piece)
        })
        .await?)
    });
    bar.finish();
    let view = match taken.and_then(|v| {
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&part, &args.file)
            .with_context(|| format!("renaming {} to {}", part.display(), args.file.display()))?;
        Ok(v)
    }) {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    out.backed_up(&view, &args.file);
    Ok(())
}
