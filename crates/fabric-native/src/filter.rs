//! The task's seccomp filter: calls that would reach past the sandbox
//! (namespaces, mounts, tracing, kernel modules, keyrings, io_uring) fail
//! with EPERM, and sockets only of the families the network namespace
//! isolates can be made.

use hakoniwa::seccomp::{Action, ArgCmp, ArgCmpOp, Filter};

/// Calls a task never needs and a sandbox escape would: namespaces,
/// mounts, tracing, kernel modules and keyrings, and the like.
const DENIED_CALLS: &[&str] = &[
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "syslog",
    // io_uring reaches much of the kernel past the filter's view.
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // The new mount API.
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
];

/// `clone` flags that make namespaces: a clone with any of them fails, as
/// `unshare` does (a nested user namespace would hand the task
/// CAP_NET_ADMIN and the netfilter surface with it).
const CLONE_NEW_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
    0x0000_0080, // CLONE_NEWTIME
];

/// Socket families a task may create: local sockets, and IPv4, IPv6 and
/// netlink, which the task's own network namespace isolates. Every other
/// family (vsock, which reaches the hypervisor; packet, alg, bluetooth,
/// and the rest) is global or reaches hardware, and is refused.
#[cfg(test)]
const ALLOWED_FAMILIES: &[u64] = &[
    1,  // AF_UNIX
    2,  // AF_INET
    10, // AF_INET6
    16, // AF_NETLINK
];

/// The families refused, as few comparisons of the first argument as
/// cover everything but [`ALLOWED_FAMILIES`] (a filter's rules are
/// compiled at every task's start: 7 here instead of one per family).
/// `(mask, value)` matches `family & mask == value`; a family of 17 or
/// more, or one with any of the upper bits set, matches the last.
const REFUSED: &[Refused] = &[
    Refused::Masked(!0, 0),
    Refused::Masked(!0, 3),
    Refused::Masked(!3, 4),  // 4..=7
    Refused::Masked(!1, 8),  // 8, 9
    Refused::Masked(!0, 11), // 11
    Refused::Masked(!3, 12), // 12..=15
    Refused::AtLeast(17),
];

#[derive(Clone, Copy)]
enum Refused {
    Masked(u64, u64),
    AtLeast(u64),
}

impl Refused {
    fn cmp(self) -> ArgCmp {
        match self {
            Self::Masked(mask, value) => ArgCmp::new(0, ArgCmpOp::MaskedEq, mask, value),
            Self::AtLeast(v) => ArgCmp::new(0, ArgCmpOp::Ge, v, 0),
        }
    }

    #[cfg(test)]
    fn matches(self, family: u64) -> bool {
        match self {
            Self::Masked(mask, value) => family & mask == value,
            Self::AtLeast(v) => family >= v,
        }
    }
}

/// The filter hakoniwa loads before the task's init runs.
pub(crate) fn task_filter() -> Filter {
    let eperm = nix::errno::Errno::EPERM as i32;
    let mut f = Filter::new(Action::Allow);
    for call in DENIED_CALLS {
        f.add_rule(Action::Errno(eperm), call);
    }
    for flag in CLONE_NEW_FLAGS {
        let has = ArgCmp::new(0, ArgCmpOp::MaskedEq, *flag, *flag);
        f.add_rule_conditional(Action::Errno(eperm), "clone", &[has]);
    }
    // clone3 passes its flags in memory the filter cannot see: it reports
    // "not implemented", and libc falls back to clone.
    f.add_rule(Action::Errno(nix::errno::Errno::ENOSYS as i32), "clone3");
    let no_family = Action::Errno(nix::errno::Errno::EAFNOSUPPORT as i32);
    for call in ["socket", "socketpair"] {
        for r in REFUSED {
            f.add_rule_conditional(no_family, call, &[r.cmp()]);
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_isolated_families_pass_the_comparisons() {
        let refused = |f: u64| REFUSED.iter().any(|r| r.matches(f));
        for family in 0..4096 {
            assert_eq!(
                !refused(family),
                ALLOWED_FAMILIES.contains(&family),
                "family {family}"
            );
        }
        // A family with upper bits set (the kernel reads an int) is refused.
        assert!(refused((1 << 32) | 1));
        assert!(refused(u64::MAX));
    }
}
