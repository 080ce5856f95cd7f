//! What a task's args and environment may hold.
//!
//! An allow-listed program must not be turned into another one through its
//! environment: the dynamic loader and libc read variables that load code
//! (`LD_PRELOAD`, `GCONV_PATH`), change how memory or name lookup works
//! (`MALLOC_*`, `GLIBC_TUNABLES`, `HOSTALIASES`), or point at files of the
//! caller's choice. glibc drops these itself only for setuid programs (its
//! list of "unsecure" variables, `sysdeps/generic/unsecvars.h`); a task's
//! program is not setuid, so Fabric refuses them at submit and the worker
//! drops them again before the program starts.

/// Names refused as they are (glibc's unsecure variables and kin).
const REFUSED: &[&str] = &[
    "GCONV_PATH",
    "GETCONF_DIR",
    "GLIBC_TUNABLES",
    "HOSTALIASES",
    "LOCALDOMAIN",
    "LOCPATH",
    "NIS_PATH",
    "NLSPATH",
    "RESOLV_HOST_CONF",
    "RES_OPTIONS",
    "TMPDIR",
    "TZDIR",
];

/// Prefixes refused: the loader's (`LD_LIBRARY_PATH`, `LD_PRELOAD`,
/// `LD_AUDIT`, ...) and malloc's tunables.
const REFUSED_PREFIXES: &[&str] = &["LD_", "MALLOC_"];

/// Why a name or value cannot be passed to a task.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// Empty, or holds `=` or NUL.
    #[error("env name {0:?} is empty or contains '=' or a NUL byte")]
    BadName(String),
    /// A loader or libc variable that could run other code.
    #[error(
        "env {0} is refused: loader and libc variables (LD_*, MALLOC_*, GCONV_PATH, GLIBC_TUNABLES, ...) could make the program run other code"
    )]
    Unsafe(String),
    /// A value holds NUL, which no process environment can carry.
    #[error("env {0}: the value contains a NUL byte")]
    NulInValue(String),
    /// An argument holds NUL, which no process argument can carry.
    #[error("argument {0} contains a NUL byte")]
    NulInArg(usize),
}

/// Whether `name` is a loader or libc variable a task may not set.
pub fn is_unsafe_env(name: &str) -> bool {
    REFUSED.contains(&name) || REFUSED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Checks a task's args and env: names well formed and not unsafe, no NUL
/// anywhere. Every way in (CLI, QUIC, REST) calls this before storing.
pub fn check_args_env(args: &[String], env: &[(String, String)]) -> Result<(), EnvError> {
    if let Some(i) = args.iter().position(|a| a.contains('\0')) {
        return Err(EnvError::NulInArg(i + 1));
    }
    for (k, v) in env {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(EnvError::BadName(k.clone()));
        }
        if is_unsafe_env(k) {
            return Err(EnvError::Unsafe(k.clone()));
        }
        if v.contains('\0') {
            return Err(EnvError::NulInValue(k.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.into(), v.into())]
    }

    #[test]
    fn loader_and_libc_variables_are_refused_by_name() {
        for name in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "LD_AUDIT",
            "GCONV_PATH",
            "GLIBC_TUNABLES",
            "HOSTALIASES",
            "LOCALDOMAIN",
            "RESOLV_HOST_CONF",
            "NLSPATH",
            "MALLOC_CHECK_",
            "MALLOC_ARENA_MAX",
        ] {
            assert_eq!(
                check_args_env(&[], &env(name, "x")),
                Err(EnvError::Unsafe(name.into())),
                "{name}"
            );
            assert!(
                EnvError::Unsafe(name.into()).to_string().contains(name),
                "the message names {name}"
            );
        }
        for name in ["PATH", "HOME", "LANG", "CC", "MY_LD_FLAGS", "CFLAGS"] {
            assert_eq!(check_args_env(&[], &env(name, "x")), Ok(()), "{name}");
        }
    }

    #[test]
    fn nul_bytes_are_refused_in_args_names_and_values() {
        let args = vec!["ok".to_owned(), "a\0b".to_owned()];
        assert_eq!(check_args_env(&args, &[]), Err(EnvError::NulInArg(2)));
        assert_eq!(
            check_args_env(&[], &env("A\0B", "x")),
            Err(EnvError::BadName("A\0B".into()))
        );
        assert_eq!(
            check_args_env(&[], &env("A", "x\0y")),
            Err(EnvError::NulInValue("A".into()))
        );
        assert_eq!(
            check_args_env(&[], &env("A=B", "x")),
            Err(EnvError::BadName("A=B".into()))
        );
        assert_eq!(
            check_args_env(&[], &env("", "x")),
            Err(EnvError::BadName(String::new()))
        );
    }
}
