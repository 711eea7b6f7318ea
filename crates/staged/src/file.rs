//! [`StagedFile`]: a file written under a temporary name beside its target.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys::{parent_dir, sync_dir, temp_file_name};
use crate::trace::{Op, traced};

/// A file being written as [`temp_file_name`]`(target)`, moved to its target
/// by [`commit`](Self::commit) (or [`commit_all`]) and removed if dropped
/// before.
///
/// It writes straight to the file: wrap it in a [`std::io::BufWriter`] for
/// small writes. [`file`](Self::file) gives the open file for positional
/// writes and the like.
///
/// While it lives it holds an exclusive `flock` on the temporary file (see
/// [`try_lock_exclusive`](crate::try_lock_exclusive)); the kernel drops it
/// when the process dies, so a collector that can take the lock knows the
/// writer is gone.
#[derive(Debug)]
pub struct StagedFile {
    /// Declared before `temp`: closed before the temporary name is removed.
    file: File,
    temp: TempName,
    target: PathBuf,
}

/// A temporary name, removed on drop unless `kept`.
#[derive(Debug)]
struct TempName {
    path: PathBuf,
    kept: bool,
}

impl Drop for TempName {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl StagedFile {
    /// Creates the temporary file for `target` (never opening an existing
    /// file); the directory holding `target` must exist.
    pub fn create(target: impl Into<PathBuf>) -> Result<Self> {
        let target = target.into();
        let temp = temp_file_name(&target);
        Self::create_as(target, temp)
    }

    /// Creates the temporary file `temp`, a name of the caller's choosing
    /// beside `target` (in the same directory: the rename must not cross
    /// file systems), never opening an existing file, and locks it (waiting
    /// out a collector that got hold of it in the instant between creation
    /// and lock, as `savedmodel-staged`'s lock protocol describes).
    pub fn create_as(target: impl Into<PathBuf>, temp: PathBuf) -> Result<Self> {
        let target = target.into();
        let path = temp;
        let file = crate::lock::claim(&path, || {
            OpenOptions::new().write(true).create_new(true).open(&path)
        })
        .map_err(|source| Error::Create {
            path: path.clone(),
            source,
        })?;
        Ok(StagedFile {
            file,
            temp: TempName { path, kept: false },
            target,
        })
    }

    /// Where the file goes once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary name it is written under.
    pub fn temp_path(&self) -> &Path {
        &self.temp.path
    }

    /// The open file (writing past the current position with positional
    /// writes, allocating, truncating).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Fsyncs the file's data and metadata.
    pub fn sync(&self) -> Result<()> {
        let path = &self.temp.path;
        traced(Op::SyncFile(path), || self.file.sync_all()).map_err(|source| Error::Sync {
            path: self.temp.path.clone(),
            source,
        })
    }

    /// Moves the file to its target: fsyncs it, renames it (replacing what
    /// is there; a symbolic link at the target is replaced, never followed)
    /// and fsyncs the directory, the fsyncs only when `fsync`. On an error
    /// the temporary file is removed.
    pub fn commit(self, fsync: bool) -> Result<()> {
        commit_all(vec![self], fsync)
    }
}

/// Commits several files as one. The last file is the set's commit record,
/// the one that makes it visible to readers (a checkpoint's index, renamed
/// after its data files):
///
/// 1. each file is fsynced (when `fsync`);
/// 2. if any other file replaces an existing one and the last file's
///    target exists, that old commit record is removed first (and its
///    directory fsynced, when `fsync`), so that no reader, and no state a
///    power cut leaves, pairs the old commit record with new members: two
///    files cannot be replaced in one atomic step, so while a set is
///    replaced there is a moment with none;
/// 3. the other files are renamed in order and (when `fsync`) their
///    directories fsynced: without this barrier a file system may make the
///    commit record's rename durable before theirs;
/// 4. the last file is renamed and (when `fsync`) its directory fsynced.
///
/// If a step fails, the files already renamed are removed again and the
/// others' temporary files too, so that either every target is replaced or
/// none (a set being replaced is then gone, step 2).
pub fn commit_all(files: Vec<StagedFile>, fsync: bool) -> Result<()> {
    if fsync {
        for file in &files {
            file.sync()?;
        }
    }
    let exists = |p: &Path| fs::symlink_metadata(p).is_ok();
    if let Some((last, others)) = files.split_last() {
        if exists(&last.target) && others.iter().any(|f| exists(&f.target)) {
            fs::remove_file(&last.target).map_err(|source| Error::Remove {
                path: last.target.clone(),
                source,
            })?;
            if fsync {
                sync_dir(parent_dir(&last.target))?;
            }
        }
    }
    // The files stay open, and so locked, until renamed: a collector never
    // takes a temporary for a killed writer's between close and rename.
    // (A tuple drops in order: each file is closed before an uncommitted
    // temporary name is removed, as `StagedFile` does.)
    let mut staged: Vec<(File, TempName, PathBuf)> = files
        .into_iter()
        .map(|StagedFile { file, temp, target }| (file, temp, target))
        .collect();
    let count = staged.len();
    let undo = |done: &[(File, TempName, PathBuf)]| {
        for (_, _, renamed) in done {
            let _ = fs::remove_file(renamed);
        }
    };
    for i in 0..count {
        let (done, rest) = staged.split_at_mut(i);
        if fsync && i > 0 && i + 1 == count {
            let dirs = done.iter().map(|(_, _, target)| parent_dir(target));
            if let Err(e) = sync_dirs(dirs) {
                undo(done);
                return Err(e);
            }
        }
        let (_, temp, target) = &mut rest[0];
        let op = Op::Rename {
            from: &temp.path,
            to: target,
        };
        if let Err(source) = traced(op, || fs::rename(&temp.path, &*target)) {
            undo(done);
            return Err(Error::Rename {
                from: temp.path.clone(),
                to: target.clone(),
                source,
            });
        }
        temp.kept = true;
    }
    if fsync {
        if let Some((_, _, last)) = staged.last() {
            sync_dir(parent_dir(last))?;
        }
    }
    Ok(())
}

/// Fsyncs each of `dirs` once.
fn sync_dirs<'a>(dirs: impl Iterator<Item = &'a Path>) -> Result<()> {
    let mut dirs: Vec<&Path> = dirs.collect();
    dirs.sort();
    dirs.dedup();
    dirs.into_iter().try_for_each(sync_dir)
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.file.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for StagedFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
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
    fn a_dropped_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = StagedFile::create(dir.path().join("out")).unwrap();
        file.write_all(b"half").unwrap();
        assert!(file.temp_path().exists());
        assert!(names(dir.path())[0].starts_with("out.tempstate"));
        drop(file);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn an_error_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory at the target: the rename fails.
        let target = dir.path().join("out");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("keep"), b"kept").unwrap();
        let mut file = StagedFile::create(&target).unwrap();
        file.write_all(b"new").unwrap();
        let temp = file.temp_path().to_path_buf();
        let err = file.commit(true).unwrap_err();
        assert!(
            matches!(&err, Error::Rename { from, to, .. } if *from == temp && *to == target),
            "{err}"
        );
        assert_eq!(err.op(), "renaming");
        assert_eq!(err.path(), temp);
        assert_eq!(names(dir.path()), ["out"]);
        assert_eq!(fs::read(target.join("keep")).unwrap(), b"kept");

        // A directory that does not exist: creating fails, naming the file.
        let missing = dir.path().join("missing/out");
        let err = StagedFile::create(&missing).unwrap_err();
        assert!(matches!(err, Error::Create { .. }), "{err}");
        assert!(err.to_string().contains("missing/out.tempstate"), "{err}");
    }

    #[test]
    fn a_file_under_a_chosen_name_is_committed_or_removed_the_same_way() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("models.config");
        let temp = dir.path().join(".models.config.tmp-1");
        let mut file = StagedFile::create_as(&target, temp.clone()).unwrap();
        file.write_all(b"config").unwrap();
        assert_eq!(names(dir.path()), [".models.config.tmp-1"]);
        drop(file);
        assert!(names(dir.path()).is_empty());
        let mut file = StagedFile::create_as(&target, temp.clone()).unwrap();
        file.write_all(b"config").unwrap();
        // An existing file is never opened.
        let err = StagedFile::create_as(&target, temp.clone()).unwrap_err();
        assert!(
            matches!(&err, Error::Create { path, .. } if *path == temp),
            "{err}"
        );
        file.commit(true).unwrap();
        assert_eq!(names(dir.path()), ["models.config"]);
        assert_eq!(fs::read(&target).unwrap(), b"config");
    }

    #[test]
    fn a_committed_file_has_the_content_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        fs::write(&target, b"old").unwrap();
        for fsync in [true, false] {
            let mut file = StagedFile::create(&target).unwrap();
            file.write_all(b"hello ").unwrap();
            file.seek(SeekFrom::Start(6)).unwrap();
            file.write_all(b"world").unwrap();
            file.commit(fsync).unwrap();
            assert_eq!(fs::read(&target).unwrap(), b"hello world");
            assert_eq!(names(dir.path()), ["out"]);
            fs::write(&target, b"old").unwrap();
        }
    }

    #[test]
    fn a_failed_rename_in_a_set_undoes_the_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("model.data");
        let index = dir.path().join("model.index");
        fs::create_dir(&index).unwrap();
        fs::write(index.join("keep"), b"kept").unwrap();
        let mut files = Vec::new();
        for target in [&data, &index] {
            let mut file = StagedFile::create(target).unwrap();
            file.write_all(b"x").unwrap();
            files.push(file);
        }
        let err = commit_all(files, true).unwrap_err();
        assert!(
            matches!(&err, Error::Rename { to, .. } if *to == index),
            "{err}"
        );
        assert_eq!(names(dir.path()), ["model.index"]);
        assert_eq!(fs::read(index.join("keep")).unwrap(), b"kept");

        fs::remove_dir_all(&index).unwrap();
        let mut files = Vec::new();
        for (target, bytes) in [(&data, b"d"), (&index, b"i")] {
            let mut file = StagedFile::create(target).unwrap();
            file.write_all(bytes).unwrap();
            files.push(file);
        }
        commit_all(files, true).unwrap();
        assert_eq!(names(dir.path()), ["model.data", "model.index"]);
        assert_eq!(fs::read(&index).unwrap(), b"i");
    }

    #[test]
    fn replacing_a_set_removes_the_old_commit_record_first() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("model.data");
        let index = dir.path().join("model.index");
        let other = dir.path().join("other.index");
        fs::write(&data, b"old data").unwrap();
        fs::write(&index, b"old index").unwrap();
        fs::write(&other, b"other").unwrap();
        let staged = |bytes: &[u8; 3]| -> Vec<StagedFile> {
            [&data, &index]
                .into_iter()
                .map(|target| {
                    let mut file = StagedFile::create(target).unwrap();
                    file.write_all(bytes).unwrap();
                    file
                })
                .collect()
        };
        // The index's rename fails (its temporary vanished): the old index
        // was already gone, and the new data is removed again, so no state
        // pairs the old index with the new data.
        let files = staged(b"new");
        fs::remove_file(files[1].temp_path()).unwrap();
        let err = commit_all(files, true).unwrap_err();
        assert!(
            matches!(&err, Error::Rename { to, .. } if *to == index),
            "{err}"
        );
        assert_eq!(names(dir.path()), ["other.index"]);
        // Nothing to replace: nothing removed first.
        commit_all(staged(b"one"), true).unwrap();
        assert_eq!(fs::read(&index).unwrap(), b"one");
        commit_all(staged(b"two"), false).unwrap();
        assert_eq!(fs::read(&data).unwrap(), b"two");
        assert_eq!(fs::read(&index).unwrap(), b"two");
        assert_eq!(
            names(dir.path()),
            ["model.data", "model.index", "other.index"]
        );
    }

    #[test]
    fn created_directories_are_made_and_an_existing_one_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        crate::create_dir_all(&deep, true).unwrap();
        assert!(deep.is_dir());
        crate::create_dir_all(&deep, true).unwrap();
        crate::create_dir_all(&dir.path().join("a/d"), false).unwrap();
        fs::write(dir.path().join("file"), b"").unwrap();
        let err = crate::create_dir_all(&dir.path().join("file/x"), true).unwrap_err();
        assert!(matches!(err, Error::Create { .. }), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let target = dir.path().join("out");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        let mut file = StagedFile::create(&target).unwrap();
        file.write_all(b"new").unwrap();
        file.commit(true).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&target).unwrap().is_file());
        assert_eq!(fs::read(&target).unwrap(), b"new");
    }
}
