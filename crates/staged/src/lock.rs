//! The `flock` a writer holds on its temporary file or directory for as long
//! as it lives, so that a collector (`savedmodel-layout`'s
//! `collect_garbage`) can tell a live writer's temporary from the one a
//! killed writer left: the kernel drops the lock when the process dies,
//! SIGKILL included, so a temporary whose lock can be taken has no writer.
//!
//! The protocol on the writer's side ([`claim`]): create the name
//! (`O_EXCL` or `mkdir`), open it, take the lock without waiting, and check
//! that the name still leads to the inode locked. A collector locks first,
//! checks the same, and only then removes; so if the writer finds the lock
//! taken, or its inode gone from the name, a collector got there in the
//! instant between creation and lock, and the writer waits for the name to
//! be free and starts over. The writer never removes a name itself here,
//! so it can never remove a collector's or another writer's file.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::Duration;

/// How long [`claim`] waits, in all, for a collector that got hold of a
/// just-created temporary (it removes an empty directory or file in
/// microseconds; a dry run or a listing releases the lock at once).
const CLAIM_PATIENCE: Duration = Duration::from_secs(10);
/// The pause between two attempts of [`claim`].
const CLAIM_PAUSE: Duration = Duration::from_millis(1);

/// Tries to take an exclusive `flock` on `file` without waiting:
/// `Ok(true)` when taken (it lasts until `file` is closed), `Ok(false)`
/// when another open file description holds it, an error where the file
/// system does not lock (or the system has no `flock`).
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{FlockOperation, flock};
        use rustix::io::Errno;
        loop {
            return match flock(file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => Ok(true),
                Err(Errno::WOULDBLOCK) => Ok(false),
                Err(Errno::INTR) => continue,
                Err(e) => Err(e.into()),
            };
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Whether `path` (not following a symbolic link in its last component)
/// names the file or directory open as `file`: same device and inode.
pub fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let ours = file.metadata().map(|m| (m.dev(), m.ino()));
        let at_path = std::fs::symlink_metadata(path).map(|m| (m.dev(), m.ino()));
        matches!((ours, at_path), (Ok(a), Ok(b)) if a == b)
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// Creates a temporary at `path` with `create` (which must fail with
/// [`io::ErrorKind::AlreadyExists`] rather than open an existing file or
/// directory) and locks it; see the module documentation. An error of the
/// first `create` is returned as it is. Where the file system does not
/// lock, the temporary is returned unlocked (a collector then has only its
/// grace period to go by).
pub(crate) fn claim(path: &Path, mut create: impl FnMut() -> io::Result<File>) -> io::Result<File> {
    let mut file = create()?;
    let started = std::time::Instant::now();
    loop {
        match try_lock_exclusive(&file) {
            Err(_) => return Ok(file),
            Ok(true) if same_file(&file, path) => return Ok(file),
            // A collector holds it and will remove it (or is only looking
            // and will let go): wait.
            Ok(false) if same_file(&file, path) => {}
            // Removed by a collector: make it again once the name is free.
            Ok(_) => match create() {
                Ok(new) => {
                    file = new;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            },
        }
        if started.elapsed() > CLAIM_PATIENCE {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "another process (a garbage collector?) kept hold of the new temporary",
            ));
        }
        std::thread::sleep(CLAIM_PAUSE);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_file_is_locked_and_the_lock_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let file = claim(&path, || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
        })
        .unwrap();
        let other = File::open(&path).unwrap();
        assert!(!try_lock_exclusive(&other).unwrap());
        assert!(same_file(&other, &path));
        drop(file);
        assert!(try_lock_exclusive(&other).unwrap());
        // The first creation's error is the caller's.
        let err = claim(&path, || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn a_collector_holding_the_new_name_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let create = || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
        };
        // A "collector" that locked the first file created and removes it
        // a little later: the claim ends up with a new, locked file.
        let collector_has_it = std::sync::Barrier::new(2);
        let first_inode = std::sync::Mutex::new(None);
        let mut made = 0;
        std::thread::scope(|s| {
            let claimer = s.spawn(|| {
                claim(&path, || {
                    let file = create()?;
                    made += 1;
                    if made == 1 {
                        let collector = File::open(&path).unwrap();
                        assert!(try_lock_exclusive(&collector).unwrap());
                        *first_inode.lock().unwrap() = Some(collector);
                        collector_has_it.wait();
                    }
                    Ok(file)
                })
                .map(|f| (f, made))
            });
            collector_has_it.wait();
            std::thread::sleep(Duration::from_millis(20));
            let collector = first_inode.lock().unwrap().take().unwrap();
            assert!(same_file(&collector, &path));
            std::fs::remove_file(&path).unwrap();
            drop(collector);
            let (file, made) = claimer.join().unwrap().unwrap();
            assert_eq!(made, 2);
            assert!(same_file(&file, &path));
            let other = File::open(&path).unwrap();
            assert!(!try_lock_exclusive(&other).unwrap());
        });
    }
}
