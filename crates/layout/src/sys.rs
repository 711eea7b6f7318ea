//! The few operating system calls std does not offer: an advisory lock that
//! does not wait, opening without following links. (Directory fsync, the rename that never replaces its
//! target and random names are `savedmodel-staged`'s.)

use std::fs::File;
use std::io;
use std::path::Path;

/// Opens a directory for locking, without following a symbolic
/// link in the last component.
pub(crate) fn open_dir(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Opens a file (a leftover temporary) for locking, without following a
/// symbolic link in the last component and without blocking on a FIFO.
pub(crate) fn open_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options.open(path)
}

/// `(device, inode)` of an open file, to tell whether a path still names it.
#[cfg(unix)]
pub(crate) fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// `(device, inode)` of an open file, to tell whether a path still names it.
#[cfg(not(unix))]
pub(crate) fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    let _ = meta;
    (0, 0)
}

/// Tries to take an exclusive `flock` on `file` without waiting: `Ok(true)`
/// when taken, `Ok(false)` when another open file description holds it.
///
/// The lock belongs to the open file description, so it lasts until `file`
/// is closed, and the kernel drops it when the process dies, SIGKILL
/// included. That is what lets [`collect_garbage`](crate::collect_garbage)
/// tell a dead exporter's staging directory from a live one.
#[cfg(unix)]
#[allow(unsafe_code)]
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock only reads the descriptor number; `file` owns that
        // descriptor and keeps it open for the duration of the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(code) if code == libc::EWOULDBLOCK || code == libc::EAGAIN => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// Takes an exclusive `flock` on `file`, waiting while another open file
/// description holds it. Released when `file` is closed or the process
/// dies (see [`try_lock_exclusive`]).
#[cfg(unix)]
#[allow(unsafe_code)]
pub(crate) fn lock_exclusive(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock only reads the descriptor number; `file` owns that
        // descriptor and keeps it open for the duration of the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Without `flock`, edits are not serialized.
#[cfg(not(unix))]
pub(crate) fn lock_exclusive(file: &File) -> io::Result<()> {
    let _ = file;
    Ok(())
}

/// Without `flock`, no staging directory is ever known to be dead: garbage
/// collection leaves them all alone.
#[cfg(not(unix))]
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    let _ = file;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_between_open_files_and_released_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let first = open_dir(dir.path()).unwrap();
        assert!(try_lock_exclusive(&first).unwrap());
        let second = open_dir(dir.path()).unwrap();
        assert!(!try_lock_exclusive(&second).unwrap());
        drop(first);
        assert!(try_lock_exclusive(&second).unwrap());
    }

    #[test]
    fn open_dir_does_not_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(open_dir(&link).is_err());
    }
}
