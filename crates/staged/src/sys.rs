//! Temporary names, directory fsync and the rename that never replaces.

use std::ffi::OsString;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::trace::{Op, traced};

/// 64 random bits for temporary names (and anything else that only needs to
/// differ, such as a fingerprint's `uuid`). std's [`RandomState`] is keyed
/// from the operating system's random source; the process id, the time and a
/// per-process counter are hashed with it, so two calls never give the same
/// value in practice. (TensorFlow uses `random::New64()` for the same.)
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one((
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed),
    ))
}

/// `path` with `suffix` appended to its file name (`model` and `.index`
/// give `model.index`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// The temporary name a [`StagedFile`](crate::StagedFile) for `target` is
/// written under: `<target>.tempstate<random>`, the name TensorFlow's
/// `BundleWriter` gives its files while it writes them
/// (`tensorflow/core/util/tensor_bundle/tensor_bundle.cc`).
pub fn temp_file_name(target: &Path) -> PathBuf {
    with_suffix(target, &format!(".tempstate{}", random_u64()))
}

/// Whether `name` has the form of [`temp_file_name`]: a non-empty stem,
/// `.tempstate` and 1 to 20 decimal digits (a `u64`). TensorFlow's
/// `BundleWriter` names its temporary files the same way; collectors use
/// this to recognise what a killed writer (ours or TensorFlow's) left.
pub fn is_temp_file_name(name: &str) -> bool {
    let Some((stem, digits)) = name.rsplit_once(".tempstate") else {
        return false;
    };
    !stem.is_empty()
        && (1..=20).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The temporary name a [`StagedDir`](crate::StagedDir) for `target` is
/// written under: `.<name>.tmp-<16 hex digits>` beside it. Hidden, and not a
/// number, so TensorFlow Serving never takes it for a version. `None` when
/// `target` has no final component (`/`, `..`).
pub fn temp_dir_name(target: &Path) -> Option<PathBuf> {
    let name = target.file_name()?;
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(".tmp-{:016x}", random_u64()));
    Some(parent_dir(target).join(temp))
}

/// Whether `name` has the form of [`temp_dir_name`]: `.<name>.tmp-` and 16
/// lowercase hex digits. What a killed writer leaves; collectors use this
/// to recognise it.
pub fn is_temp_dir_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some((stem, digits)) = rest.rsplit_once(".tmp-") else {
        return false;
    };
    !stem.is_empty()
        && digits.len() == 16
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Fsyncs a directory, so that the names created, renamed or removed in it
/// reach the disk. (A no-op where directories cannot be opened as files.)
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let sync_error = |source| Error::SyncDir {
            path: dir.to_path_buf(),
            source,
        };
        traced(Op::SyncDir(dir), || {
            File::open(dir).and_then(|handle| handle.sync_all())
        })
        .map_err(sync_error)?;
    }
    #[cfg(not(unix))]
    let _ = (dir, File::open);
    Ok(())
}

/// Renames `from` to `to`, failing with [`Error::TargetExists`] when `to`
/// exists: an existing `to` is never replaced.
///
/// On Linux this is `renameat2(RENAME_NOREPLACE)`, one atomic step. Where
/// that is missing (kernels before 3.15, file systems without the flag,
/// other systems) the fallback checks that `to` does not exist and then calls
/// `rename(2)`. For a directory `from` that is still safe: `rename(2)` refuses
/// to replace a file (`ENOTDIR`) or a non-empty directory (`ENOTEMPTY` /
/// `EEXIST`), so the only thing that could be replaced is an empty directory
/// created in the instant between the check and the rename, which holds
/// nothing. A hard-link based no-replace would not work for directories, and
/// claiming the name with `mkdir` first would make an empty directory
/// visible under the target's name.
pub fn rename_no_replace(from: &Path, to: &Path) -> Result<()> {
    let outcome = traced(Op::Rename { from, to }, || {
        match renameat2_no_replace(from, to) {
            Some(outcome) => outcome,
            None => rename_checked(from, to),
        }
    });
    outcome.map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            Error::TargetExists {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
            }
        } else {
            Error::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                source,
            }
        }
    })
}

/// Renames `from` to `to` (`rename(2)`: an existing file or empty
/// directory at `to` is replaced in the same step). The one rename outside
/// [`StagedFile`](crate::StagedFile) and [`StagedDir`](crate::StagedDir)
/// commits, for a caller that moves finished files itself (merging
/// checkpoint bundles); like every durability step it goes through this
/// crate so that crash tests see it ([`crate::trace`]).
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    traced(Op::Rename { from, to }, || std::fs::rename(from, to)).map_err(|source| Error::Rename {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    })
}

/// Creates `dir` and whatever parents are missing, as
/// `std::fs::create_dir_all` does; with `fsync`, the directory holding each
/// directory created is then fsynced, so the new directories survive a
/// power loss (a name is durable only once the directory holding it is
/// fsynced; a writer that fsyncs its files and their directory would
/// otherwise lose them with a directory it created on the way).
pub fn create_dir_all(dir: &Path, fsync: bool) -> Result<()> {
    // The missing directories, deepest first.
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.as_os_str().is_empty() && std::fs::symlink_metadata(at).is_err() {
        missing.push(at);
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Create {
        path: dir.to_path_buf(),
        source,
    })?;
    if fsync {
        for created in missing.iter().rev() {
            sync_dir(parent_dir(created))?;
        }
    }
    Ok(())
}

/// Fsyncs `file` (data and metadata), open at `path`: for files written
/// in place inside a staged directory. Goes through this crate so that
/// crash tests see it ([`crate::trace`]).
pub fn sync_file(file: &File, path: &Path) -> Result<()> {
    traced(Op::SyncFile(path), || file.sync_all()).map_err(|source| Error::Sync {
        path: path.to_path_buf(),
        source,
    })
}

/// `renameat2(RENAME_NOREPLACE)`; `None` when this kernel or file system
/// does not support it.
#[cfg(target_os = "linux")]
fn renameat2_no_replace(from: &Path, to: &Path) -> Option<io::Result<()>> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Some(Ok(())),
        Err(Errno::EXIST) => Some(Err(io::ErrorKind::AlreadyExists.into())),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => None,
        Err(e) => Some(Err(e.into())),
    }
}

#[cfg(not(target_os = "linux"))]
fn renameat2_no_replace(_from: &Path, _to: &Path) -> Option<io::Result<()>> {
    None
}

/// The portable fallback of [`rename_no_replace`]: an
/// [`io::ErrorKind::AlreadyExists`] error when `to` exists.
pub(crate) fn rename_checked(from: &Path, to: &Path) -> io::Result<()> {
    let exists = |to: &Path| std::fs::symlink_metadata(to).is_ok();
    if exists(to) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "target already exists",
        ));
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if exists(to) => Err(io::Error::new(io::ErrorKind::AlreadyExists, e)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_no_replace_refuses_existing_targets() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let empty = dir.path().join("empty");
        let file = dir.path().join("file");
        std::fs::create_dir(&a).unwrap();
        std::fs::write(a.join("x"), b"x").unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(b.join("y"), b"y").unwrap();
        std::fs::create_dir(&empty).unwrap();
        std::fs::write(&file, b"f").unwrap();
        for target in [&b, &empty, &file] {
            let err = rename_no_replace(&a, target).unwrap_err();
            assert!(
                matches!(&err, Error::TargetExists { to, .. } if to == target),
                "{err}"
            );
            let err = rename_checked(&a, target).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        }
        // Nothing was replaced.
        assert!(b.join("y").exists());
        assert!(empty.is_dir());
        assert_eq!(std::fs::read(&file).unwrap(), b"f");
        let c = dir.path().join("c");
        rename_no_replace(&a, &c).unwrap();
        assert!(c.join("x").exists());
        assert!(!a.exists());
        rename_checked(&c, &a).unwrap();
        assert!(a.join("x").exists());
    }

    #[test]
    fn temporary_directory_names_are_recognised() {
        for _ in 0..20 {
            let temp = temp_dir_name(Path::new("/models/m/7")).unwrap();
            assert!(is_temp_dir_name(
                temp.file_name().unwrap().to_str().unwrap()
            ));
        }
        for name in [
            "7",
            ".7.tmp-",
            ".tmp-0123456789abcdef",
            "7.tmp-0123456789abcdef",
            ".7.tmp-0123456789ABCDEF",
            ".7.tmp-0123456789abcde",
            ".7.tmp-0123456789abcdefa",
        ] {
            assert!(!is_temp_dir_name(name), "{name}");
        }
    }

    #[test]
    fn temporary_file_names_are_recognised() {
        for _ in 0..20 {
            let temp = temp_file_name(Path::new("/ckpt/model.index"));
            assert!(is_temp_file_name(
                temp.file_name().unwrap().to_str().unwrap()
            ));
        }
        assert!(is_temp_file_name("model.data-00000-of-00001.tempstate0"));
        assert!(is_temp_file_name("x.tempstate18446744073709551615"));
        for name in [
            "model.index",
            ".tempstate123",
            "model.tempstate",
            "model.tempstate12a",
            "model.tempstate123456789012345678901",
            "model.tempstate123.bak",
        ] {
            assert!(!is_temp_file_name(name), "{name}");
        }
    }

    #[test]
    fn random_values_differ() {
        let values: std::collections::HashSet<u64> = (0..100).map(|_| random_u64()).collect();
        assert_eq!(values.len(), 100);
    }

    #[test]
    fn temporary_names_are_siblings_that_are_not_the_target() {
        let target = Path::new("/models/m/7");
        let dir = temp_dir_name(target).unwrap();
        assert_eq!(dir.parent(), Some(Path::new("/models/m")));
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".7.tmp-") && name.len() == ".7.tmp-".len() + 16);
        assert!(temp_dir_name(Path::new("/")).is_none());
        let file = temp_file_name(Path::new("ckpt/model.index"));
        let name = file.to_str().unwrap();
        assert!(name.starts_with("ckpt/model.index.tempstate"), "{name}");
        assert_ne!(temp_file_name(target), temp_file_name(target));
        assert_eq!(parent_dir(Path::new("model")), Path::new("."));
    }

    #[test]
    fn sync_dir_names_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        sync_dir(dir.path()).unwrap();
        let missing = dir.path().join("missing");
        let err = sync_dir(&missing).unwrap_err();
        assert!(matches!(&err, Error::SyncDir { path, .. } if *path == missing));
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
