//! Owner-only access to the store's directory and files.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::{Result, StoreError};

/// Mode of the store's directories.
const DIR_MODE: u32 = 0o700;
/// Mode of the store's files.
const FILE_MODE: u32 = 0o600;

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Permissions {
        path: path.display().to_string(),
        source,
    }
}

/// Creates `dir` (and its parents) and makes `dir` itself owner-only, before
/// sled writes anything into it.
pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    set_mode(dir, DIR_MODE)
}

/// Makes every directory under `dir` 0700 and every file 0600 (sled creates
/// its files with the process umask). Depth is bounded by sled's layout.
pub(crate) fn restrict_tree(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(err(dir))? {
        let path = entry.map_err(err(dir))?.path();
        let meta = std::fs::symlink_metadata(&path).map_err(err(&path))?;
        if meta.is_dir() {
            set_mode(&path, DIR_MODE)?;
            restrict_tree(&path)?;
        } else if meta.is_file() {
            set_mode(&path, FILE_MODE)?;
        }
    }
    Ok(())
}

/// Makes one file owner-only.
pub(crate) fn restrict_file(path: &Path) -> Result<()> {
    set_mode(path, FILE_MODE)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err(path))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use crate::Store;
    use crate::testing::walk;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_store_dir_is_0700_and_its_files_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let store = Store::open(&path).unwrap();
        store.set_meta("x", b"y").unwrap();
        drop(store);
        let _again = crate::testing::reopen(&path);
        assert_eq!(mode(&path), 0o700);
        let mut files = 0;
        for entry in walk(&path) {
            if entry.is_dir() {
                assert_eq!(mode(&entry), 0o700, "{}", entry.display());
            } else {
                files += 1;
                assert_eq!(mode(&entry), 0o600, "{}", entry.display());
            }
        }
        assert!(files > 0, "sled wrote no files");
    }
}
