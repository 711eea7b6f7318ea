//! [`StagedDir`]: a directory filled under a temporary name beside its
//! target.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys::{parent_dir, rename_no_replace, sync_dir, temp_dir_name};
use crate::trace::{Op, traced};

/// A directory being filled under a temporary name, moved to its target by
/// [`commit`](Self::commit) or [`commit_no_replace`](Self::commit_no_replace)
/// and removed with everything in it if dropped before.
///
/// The directory knows nothing of what is written into it: the writer
/// fsyncs the files it writes (when it wants them durable); the commit
/// fsyncs the directory itself, renames it, and fsyncs the directory holding
/// the target.
///
/// A directory made by [`create`](Self::create) is locked (an exclusive
/// `flock` on the directory, held until the `StagedDir` is dropped, and
/// dropped by the kernel if the process dies), so that a garbage collector
/// can tell a live writer's staging directory from a killed one's: if the
/// lock can be taken, the writer is gone. The lock is taken by the
/// protocol of [`try_lock_exclusive`](crate::try_lock_exclusive)'s module
/// (create, lock, check the name still leads to the directory locked), so
/// a collector that looked in the instant between `mkdir` and lock cannot
/// remove the directory under a live writer.
#[derive(Debug)]
pub struct StagedDir {
    path: PathBuf,
    committed: bool,
    /// The open directory holding the lock (unlocked where the file system
    /// does not lock); `None` for an [`adopt`](Self::adopt)ed directory.
    _lock: Option<fs::File>,
}

/// Opens a directory to lock it, not following a symbolic link.
fn open_dir(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(
            (rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::NOFOLLOW).bits() as i32,
        );
    }
    options.open(path)
}

impl StagedDir {
    /// Creates the empty directory [`temp_dir_name`]`(target)` (never an
    /// existing one); the directory holding `target` must exist.
    pub fn create(target: &Path) -> Result<Self> {
        let path = temp_dir_name(target).ok_or_else(|| Error::Create {
            path: target.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path has no final component to stage beside",
            ),
        })?;
        let lock = crate::lock::claim(&path, || {
            fs::create_dir(&path)?;
            open_dir(&path)
        })
        .map_err(|source| Error::Create {
            path: path.clone(),
            source,
        })?;
        Ok(StagedDir {
            path,
            committed: false,
            _lock: Some(lock),
        })
    }

    /// Takes charge of `path`, a directory the caller has just created
    /// under a temporary name of its own choosing (with its own locking, as
    /// `savedmodel-layout` does): from now on it is removed on drop unless
    /// committed.
    pub fn adopt(path: PathBuf) -> Self {
        StagedDir {
            path,
            committed: false,
            _lock: None,
        }
    }

    /// The directory to write into (its temporary name).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the directory to `target`, which must not exist or be an empty
    /// directory (it is replaced): fsyncs the directory, renames it, fsyncs
    /// the directory holding `target`, the fsyncs only when `fsync`. On an
    /// error the staged directory is removed.
    pub fn commit(mut self, target: &Path, fsync: bool) -> Result<()> {
        if fsync {
            sync_dir(&self.path)?;
        }
        let op = Op::Rename {
            from: &self.path,
            to: target,
        };
        if let Err(first) = traced(op, || fs::rename(&self.path, target)) {
            // Some systems do not rename onto an empty directory.
            let empty_dir = fs::read_dir(target).is_ok_and(|mut d| d.next().is_none());
            if !empty_dir {
                return Err(self.rename_error(target, first));
            }
            fs::remove_dir(target).map_err(|source| Error::Remove {
                path: target.to_path_buf(),
                source,
            })?;
            traced(op, || fs::rename(&self.path, target))
                .map_err(|e| self.rename_error(target, e))?;
        }
        self.committed = true;
        if fsync {
            sync_dir(parent_dir(target))?;
        }
        Ok(())
    }

    /// Moves the directory to `target` unless something is there (see
    /// [`rename_no_replace`]): fsyncs the directory, renames it, fsyncs the
    /// directory holding `target`, the fsyncs only when `fsync`. On
    /// [`Error::TargetExists`] (and any other error before the rename) the
    /// directory stays staged, to be committed under another name or
    /// dropped.
    pub fn commit_no_replace(&mut self, target: &Path, fsync: bool) -> Result<()> {
        if fsync {
            sync_dir(&self.path)?;
        }
        rename_no_replace(&self.path, target)?;
        self.committed = true;
        if fsync {
            sync_dir(parent_dir(target))?;
        }
        Ok(())
    }

    fn rename_error(&self, target: &Path, source: std::io::Error) -> Error {
        Error::Rename {
            from: self.path.clone(),
            to: target.to_path_buf(),
            source,
        }
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_staged_directory_appears_only_complete() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("1");
        let staged = StagedDir::create(&target).unwrap();
        let name = staged.path().file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".1.tmp-"), "{name}");
        fs::write(staged.path().join("saved_model.pb"), b"graph").unwrap();
        fs::create_dir(staged.path().join("variables")).unwrap();
        // Filled, but not there under its name.
        assert!(!target.exists());
        fs::write(staged.path().join("variables/variables.index"), b"index").unwrap();
        staged.commit(&target, true).unwrap();
        assert_eq!(names(base.path()), ["1"]);
        assert_eq!(fs::read(target.join("saved_model.pb")).unwrap(), b"graph");
        assert_eq!(
            fs::read(target.join("variables/variables.index")).unwrap(),
            b"index"
        );

        // An empty directory at the target is replaced.
        let target = base.path().join("2");
        fs::create_dir(&target).unwrap();
        let staged = StagedDir::create(&target).unwrap();
        fs::write(staged.path().join("saved_model.pb"), b"two").unwrap();
        staged.commit(&target, false).unwrap();
        assert_eq!(fs::read(target.join("saved_model.pb")).unwrap(), b"two");
        assert_eq!(names(base.path()), ["1", "2"]);
    }

    #[test]
    fn a_dropped_or_failed_directory_leaves_nothing() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("1");
        let staged = StagedDir::create(&target).unwrap();
        fs::create_dir(staged.path().join("variables")).unwrap();
        fs::write(staged.path().join("variables/half"), b"half").unwrap();
        drop(staged);
        assert!(names(base.path()).is_empty());

        // A non-empty directory at the target: refused, left as it was.
        fs::create_dir(&target).unwrap();
        fs::write(target.join("theirs"), b"theirs").unwrap();
        let staged = StagedDir::create(&target).unwrap();
        fs::write(staged.path().join("ours"), b"ours").unwrap();
        let err = staged.commit(&target, true).unwrap_err();
        assert!(matches!(err, Error::Rename { .. }), "{err}");
        assert_eq!(names(base.path()), ["1"]);
        assert_eq!(names(&target), ["theirs"]);
    }

    #[test]
    fn no_replace_refuses_an_existing_target_and_leaves_it_intact() {
        let base = tempfile::tempdir().unwrap();
        let taken = base.path().join("3");
        fs::create_dir(&taken).unwrap();
        fs::write(taken.join("saved_model.pb"), b"theirs").unwrap();
        let empty = base.path().join("4");
        fs::create_dir(&empty).unwrap();
        let file = base.path().join("5");
        fs::write(&file, b"file").unwrap();

        let temp = base.path().join(".staging-ours");
        fs::create_dir(&temp).unwrap();
        let mut staged = StagedDir::adopt(temp.clone());
        fs::write(staged.path().join("saved_model.pb"), b"ours").unwrap();
        for target in [&taken, &empty, &file] {
            let err = staged.commit_no_replace(target, true).unwrap_err();
            assert!(
                matches!(&err, Error::TargetExists { to, .. } if to == target),
                "{err}"
            );
            // Still staged, with its content.
            assert_eq!(fs::read(temp.join("saved_model.pb")).unwrap(), b"ours");
        }
        assert_eq!(fs::read(taken.join("saved_model.pb")).unwrap(), b"theirs");
        assert!(names(&empty).is_empty());
        assert_eq!(fs::read(&file).unwrap(), b"file");

        let free = base.path().join("6");
        staged.commit_no_replace(&free, true).unwrap();
        drop(staged);
        assert_eq!(fs::read(free.join("saved_model.pb")).unwrap(), b"ours");
        assert_eq!(names(base.path()), ["3", "4", "5", "6"]);
    }
}
