//! `fabric schedule`: add a schedule (what `submit` or `run` would take,
//! after `--`), list, show, pause, resume, remove, run now.

use std::path::Path;

use clap::Parser as _;
use fabric_proto::{CatchUpPolicy, Overlap, ScheduleAction, ScheduleSpec};

use super::client::with_client;
use crate::cli::{Cli, Command, ScheduleAddArgs, ScheduleCommand};
use crate::output::Output;
use crate::usage;

pub(crate) fn execute(cmd: ScheduleCommand, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let (name, action, json) = match cmd {
        ScheduleCommand::Add(args) => return add(args, cluster),
        ScheduleCommand::List(args) => {
            return with_client(cluster, async move |client| {
                Output::new(args.json).schedules(&client.schedules().await?);
                Ok(0)
            });
        }
        ScheduleCommand::Show(a) => {
            return with_client(cluster, async move |client| {
                Output::new(a.json).schedule(&client.schedule(&a.name).await?);
                Ok(0)
            });
        }
        ScheduleCommand::Pause(a) => (a.name, ScheduleAction::Pause, a.json),
        ScheduleCommand::Resume(a) => (a.name, ScheduleAction::Resume, a.json),
        ScheduleCommand::Remove(a) => (a.name, ScheduleAction::Remove, a.json),
        ScheduleCommand::RunNow(a) => (a.name, ScheduleAction::RunNow, a.json),
    };
    with_client(cluster, async move |client| {
        let rec = client.set_schedule(&name, action).await?;
        Output::new(json).schedule_changed(&rec, action);
        Ok(0)
    })
}

fn add(args: ScheduleAddArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let overlap: Overlap = args.overlap.parse().map_err(usage)?;
    let catch_up: CatchUpPolicy = args.catch_up.parse().map_err(usage)?;
    fabric_proto::check_schedule_name(&args.name).map_err(usage)?;
    let output = Output::new(args.json);
    if let Some(file) = &args.job {
        // A job file: read and checked before connecting.
        let loaded = super::job::file::load(file)?;
        let (name, cron, tz) = (args.name.clone(), args.cron.clone(), args.tz.clone());
        return with_client(cluster, async move |client| {
            let job = loaded.upload(client).await?;
            let rec = client
                .add_schedule(ScheduleSpec {
                    name,
                    cron,
                    tz,
                    overlap,
                    catch_up,
                    task: None,
                    job: Some(job),
                })
                .await?;
            output.schedule_added(&rec);
            Ok(0)
        });
    }
    // What each run submits: the words after `--`, as `fabric submit` or
    // `fabric run` would read them.
    let words = std::iter::once("fabric".to_owned()).chain(args.what.iter().cloned());
    let what = Cli::try_parse_from(words).map_err(|e| {
        usage(format!(
            "after `--`, give what `fabric submit` or `fabric run` would take: {}",
            e.render().to_string().lines().next().unwrap_or_default()
        ))
    })?;
    // The expression and zone are checked by the dispatcher, which names a
    // bad field; the task is checked here, in its flags' terms.
    let name = args.name.clone();
    let (cron, tz) = (args.cron.clone(), args.tz.clone());
    with_client(cluster, async move |client| {
        let task = match &what.command {
            Command::Submit(s) if s.each.is_none() && !s.wait => {
                super::submit::task_of(client, s).await?.0
            }
            Command::Run(r) if r.each.is_none() => super::run::task_of(client, r).await?.0,
            Command::Submit(_) | Command::Run(_) => {
                return Err(usage(
                    "a schedule's task takes no --each and no --wait: each run is one task, followed with fabric schedule show",
                ));
            }
            _ => return Err(usage("after `--`, give `submit ...` or `run ...`")),
        };
        let rec = client
            .add_schedule(ScheduleSpec {
                name,
                cron,
                tz,
                overlap,
                catch_up,
                task: Some(task),
                job: None,
            })
            .await?;
        output.schedule_added(&rec);
        Ok(0)
    })
}
