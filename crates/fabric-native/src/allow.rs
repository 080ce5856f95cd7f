//! The operator's allow-list: program names resolved to absolute paths
//! once, at worker start. A task names a program as the operator listed it
//! (`cc`) or by its resolved path (`/usr/bin/cc`); anything else, another
//! file called `cc` included, is not on the list.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A program on the list could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AllowError {
    /// No such program on PATH (or at that path).
    #[error("--allow {name}: no such program{where_}")]
    NotFound {
        /// As given.
        name: String,
        /// Where it was looked for.
        where_: String,
    },
    /// The program lives where a task cannot see it.
    #[error(
        "--allow {name}: {path} is outside the directories a task sees ({dirs}); install it under /usr/local"
    )]
    NotVisible {
        /// As given.
        name: String,
        /// What it resolved to.
        path: String,
        /// The directories tasks see.
        dirs: String,
    },
    /// The path is not an executable file.
    #[error("--allow {name}: {path} is not an executable file")]
    NotExecutable {
        /// As given.
        name: String,
        /// What it resolved to.
        path: String,
    },
}

/// System directories where a listed program may also be named by path,
/// when the file there is the listed one.
const ALIAS_DIRS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

/// Allow-listed programs: the name as listed and as resolved, each
/// pointing at the resolved file.
#[derive(Clone, Debug, Default)]
pub struct AllowList {
    by_name: BTreeMap<String, PathBuf>,
}

impl AllowList {
    /// Resolves `names` (bare names on `path_var`, or paths) to absolute,
    /// canonical paths. An empty list allows nothing.
    pub fn resolve(names: &[String], path_var: Option<&str>) -> Result<Self, AllowError> {
        let mut by_name = BTreeMap::new();
        for name in names {
            let found = if name.contains('/') {
                Some(PathBuf::from(name))
            } else {
                path_var
                    .unwrap_or("/usr/local/bin:/usr/bin:/bin")
                    .split(':')
                    .filter(|d| d.starts_with('/'))
                    .map(|d| Path::new(d).join(name))
                    .find(|p| p.is_file())
            };
            let Some(found) = found else {
                return Err(AllowError::NotFound {
                    name: name.clone(),
                    where_: " on PATH".into(),
                });
            };
            let real = std::fs::canonicalize(&found).map_err(|_| AllowError::NotFound {
                name: name.clone(),
                where_: format!(" at {}", found.display()),
            })?;
            if !is_executable(&real) {
                return Err(AllowError::NotExecutable {
                    name: name.clone(),
                    path: real.display().to_string(),
                });
            }
            let visible = crate::helper::SYSTEM_DIRS
                .iter()
                .any(|d| real.starts_with(d));
            if !visible {
                return Err(AllowError::NotVisible {
                    name: name.clone(),
                    path: real.display().to_string(),
                    dirs: crate::helper::SYSTEM_DIRS.join(", "),
                });
            }
            by_name.insert(name.clone(), real.clone());
            // The same file under the same name in the other system
            // directories (`/bin/sh` where `/bin` links to `/usr/bin`).
            if let Some(file) = found.file_name() {
                for dir in ALIAS_DIRS {
                    let alias = Path::new(dir).join(file);
                    if std::fs::canonicalize(&alias).is_ok_and(|r| r == real) {
                        by_name.insert(alias.display().to_string(), real.clone());
                    }
                }
            }
            // The path the name was found at, and where it really is.
            by_name.insert(found.display().to_string(), real.clone());
            by_name.insert(real.display().to_string(), real);
        }
        Ok(Self { by_name })
    }

    /// The file a task's `program` runs, when the list allows it.
    pub fn lookup(&self, program: &str) -> Option<&Path> {
        self.by_name.get(program).map(PathBuf::as_path)
    }

    /// Every name a task may use, for the dispatcher's placement.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    /// Whether nothing is allowed (native tasks are off).
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_on_path_and_only_listed_names_and_paths_match() {
        let list = AllowList::resolve(&["sh".into()], None).unwrap();
        let real = list.lookup("sh").unwrap().to_path_buf();
        assert!(real.is_absolute());
        assert_eq!(
            list.lookup(&real.display().to_string()),
            Some(real.as_path())
        );
        assert_eq!(list.lookup("/tmp/sh"), None);
        // Named by another system path of the same file: on a merged-/usr
        // system /bin/sh is /usr/bin/sh.
        for alias in ["/bin/sh", "/usr/bin/sh"] {
            if std::fs::canonicalize(alias).is_ok_and(|r| r == real) {
                assert_eq!(list.lookup(alias), Some(real.as_path()), "{alias}");
            }
        }
        assert!(
            list.lookup("/bin/sh").is_some(),
            "this test expects /bin/sh to be the sh on PATH"
        );
        assert_eq!(list.lookup("bash-not-listed"), None);
        assert!(!list.names().is_empty());
    }

    #[test]
    fn an_unknown_program_is_named_in_the_error() {
        let err = AllowList::resolve(&["no-such-prog-xyz".into()], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--allow no-such-prog-xyz: no such program on PATH"
        );
        assert!(AllowList::resolve(&[], None).unwrap().is_empty());
        // A program a task could not see in its sandbox.
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::copy("/bin/sh", &tool).unwrap();
        let err = AllowList::resolve(&[tool.display().to_string()], None).unwrap_err();
        assert!(
            err.to_string()
                .contains("outside the directories a task sees"),
            "{err}"
        );
    }
}
