//! A native run's outcome, from how the wait ended, what the helper says
//! of the program, and whether the cgroup's memory limit killed anything.

use fabric_proto::{Limits, TaskOutcome, TaskStatus};

use crate::spec::HelperStatus;

/// How the wait for the helper ended.
pub(crate) enum Ended {
    /// The helper exited.
    Exited(std::io::Result<std::process::ExitStatus>),
    /// The wall-clock limit passed first.
    TimedOut,
    /// The dispatcher cancelled it.
    Cancelled,
}

/// SIGXCPU: the CPU-seconds rlimit (set just past the wall clock).
const SIGXCPU: i32 = 24;

/// The outcome (without its output).
pub(crate) fn of(
    ended: Ended,
    status: Option<HelperStatus>,
    oom: bool,
    limits: &Limits,
) -> TaskOutcome {
    let timed_out = || {
        TaskOutcome::ended(
            TaskStatus::TimedOut,
            format!("wall-clock limit of {} ms reached", limits.timeout_ms),
        )
    };
    let exited = match (ended, status) {
        (Ended::TimedOut, _) => return timed_out(),
        (Ended::Cancelled, _) => {
            return TaskOutcome::ended(TaskStatus::Cancelled, "cancelled by the dispatcher");
        }
        (Ended::Exited(_), Some(s)) => s,
        // The helper itself cannot be the memory limit's victim; should it
        // die with the task's memory anyway, the kill is still the limit's.
        (Ended::Exited(_), None) if oom => HelperStatus::Signaled(9),
        (Ended::Exited(s), None) => {
            return TaskOutcome::ended(
                TaskStatus::Failed,
                format!("the sandbox helper ended without a status ({s:?})"),
            );
        }
    };
    // A kill by the memory limit, of the program or of any process under
    // it (`cc` exits 4 when its `cc1` was killed), is memory exceeded.
    if oom && !matches!(exited, HelperStatus::SetupFailed(_)) {
        let mut o = TaskOutcome::ended(
            TaskStatus::MemoryExceeded,
            format!(
                "memory limit of {} reached",
                fabric_proto::format_size(limits.memory_bytes)
            ),
        );
        if let HelperStatus::Exited(code) = exited {
            o.exit_code = Some(code);
        }
        return o;
    }
    match exited {
        HelperStatus::Exited(0) => {
            let mut o = TaskOutcome::ended(TaskStatus::Succeeded, "exited with code 0");
            o.exit_code = Some(0);
            o
        }
        HelperStatus::Exited(code) => {
            let mut o = TaskOutcome::ended(TaskStatus::Failed, format!("exited with code {code}"));
            o.exit_code = Some(code);
            o
        }
        HelperStatus::Signaled(SIGXCPU) => {
            let mut o = timed_out();
            o.message = Some(format!(
                "CPU-time limit reached (the wall-clock limit is {} ms)",
                limits.timeout_ms
            ));
            o
        }
        HelperStatus::Signaled(sig) => {
            TaskOutcome::ended(TaskStatus::Failed, format!("killed by signal {sig}"))
        }
        HelperStatus::SetupFailed(why) => {
            TaskOutcome::ended(TaskStatus::Failed, format!("sandbox setup failed: {why}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited() -> Ended {
        Ended::Exited(Ok(std::os::unix::process::ExitStatusExt::from_raw(0)))
    }

    #[test]
    fn statuses_map_as_the_contract_says() {
        let l = Limits::default();
        let ok = of(exited(), Some(HelperStatus::Exited(0)), false, &l);
        assert_eq!((ok.status, ok.exit_code), (TaskStatus::Succeeded, Some(0)));
        let failed = of(exited(), Some(HelperStatus::Exited(3)), false, &l);
        assert_eq!(
            (failed.status, failed.exit_code),
            (TaskStatus::Failed, Some(3))
        );
        // A child killed by the memory limit, the parent exiting non-zero.
        let oom = of(exited(), Some(HelperStatus::Exited(4)), true, &l);
        assert_eq!(oom.status, TaskStatus::MemoryExceeded);
        assert_eq!(oom.cli_exit_code(), 126);
        let oom = of(exited(), Some(HelperStatus::Signaled(9)), true, &l);
        assert_eq!(oom.status, TaskStatus::MemoryExceeded);
        // A child killed by the memory limit under a parent that exits 0.
        let oom = of(exited(), Some(HelperStatus::Exited(0)), true, &l);
        assert_eq!(oom.status, TaskStatus::MemoryExceeded);
        // No status at all, but the group recorded an OOM kill.
        let oom = of(exited(), None, true, &l);
        assert_eq!(oom.status, TaskStatus::MemoryExceeded);
        let cpu = of(exited(), Some(HelperStatus::Signaled(24)), false, &l);
        assert_eq!(cpu.status, TaskStatus::TimedOut);
        assert_eq!(cpu.cli_exit_code(), 124);
        let killed = of(exited(), Some(HelperStatus::Signaled(11)), false, &l);
        assert_eq!(killed.status, TaskStatus::Failed);
        assert_eq!(
            of(Ended::TimedOut, None, true, &l).status,
            TaskStatus::TimedOut
        );
        assert_eq!(
            of(Ended::Cancelled, None, false, &l).status,
            TaskStatus::Cancelled
        );
    }
}
