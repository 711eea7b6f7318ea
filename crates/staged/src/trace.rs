//! The operations that decide what survives a power cut, as they pass
//! through this crate, and (with the `trace` feature) a hook to record
//! them for crash-consistency tests.
//!
//! Every write path of the workspace makes its files durable and visible
//! through this crate: [`sync_file`](crate::sync_file) and
//! [`StagedFile::sync`](crate::StagedFile::sync) (fsync of a file),
//! [`sync_dir`](crate::sync_dir) (fsync of a directory), and
//! [`rename`](crate::rename), [`rename_no_replace`](crate::rename_no_replace),
//! [`commit_all`](crate::commit_all) and the [`StagedDir`](crate::StagedDir)
//! commits (rename). Creating, writing and removing files is done with
//! `std::fs` directly; a recorder sees those as differences between the
//! tree it last saw and the tree at the next operation.
//!
//! With the `trace` feature, `register` installs a `Recorder` for the
//! operations ([`Op`]) on paths under a root directory: it is called just
//! before each operation (`Recorder::before`) and just after it succeeded
//! (`Recorder::after`), with operations from all threads serialised
//! while any recorder is installed. Without the feature the hook compiles
//! to nothing. The recorder and the power-cut simulator built on it live in
//! the integration tests (`tests/src/power_cut.rs`).

use std::io;
use std::path::Path;

/// An operation that makes data durable or visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// `fsync(2)` of a file: its data and metadata (not its name).
    SyncFile(&'a Path),
    /// `fsync(2)` of a directory: the names created, renamed or removed in
    /// it.
    SyncDir(&'a Path),
    /// `rename(2)` (or `renameat2(RENAME_NOREPLACE)`) of `from` to `to`.
    Rename {
        /// The name that goes.
        from: &'a Path,
        /// The name that comes (replacing what was there, for `rename`).
        to: &'a Path,
    },
}

/// Runs `f`, which performs `op`, telling the recorders interested in it.
#[cfg(not(feature = "trace"))]
#[inline(always)]
pub(crate) fn traced<T>(op: Op<'_>, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let _ = op;
    f()
}

/// Runs `f`, which performs `op`, telling the recorders interested in it.
#[cfg(feature = "trace")]
pub(crate) fn traced<T>(op: Op<'_>, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    hook::traced(op, f)
}

#[cfg(feature = "trace")]
pub use hook::{Recorder, Registration, register};

#[cfg(feature = "trace")]
mod hook {
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, MutexGuard};

    use super::Op;

    /// Told of every [`Op`] on a path under the root it was
    /// [`register`]ed for.
    pub trait Recorder: Send + Sync {
        /// `op` is about to be issued.
        fn before(&self, op: &Op<'_>);
        /// `op` succeeded (a failed operation gets no `after`).
        fn after(&self, op: &Op<'_>);
    }

    /// Keeps a [`Recorder`] installed; dropping it uninstalls it.
    #[derive(Debug)]
    #[must_use = "the recorder is uninstalled when this is dropped"]
    pub struct Registration {
        id: usize,
    }

    type Installed = Vec<(usize, PathBuf, Arc<dyn Recorder>)>;

    static INSTALLED: Mutex<Installed> = Mutex::new(Vec::new());
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
    /// Held from `before` to `after`, so that operations of several
    /// threads reach a recorder one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Installs `recorder` for operations on paths under `root` (compared
    /// after making relative paths absolute; symbolic links are not
    /// resolved, so give the root as the write path will name it).
    pub fn register(root: &Path, recorder: Arc<dyn Recorder>) -> Registration {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        lock(&INSTALLED).push((id, root, recorder));
        COUNT.fetch_add(1, Ordering::SeqCst);
        Registration { id }
    }

    impl Drop for Registration {
        fn drop(&mut self) {
            lock(&INSTALLED).retain(|(id, _, _)| *id != self.id);
            COUNT.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn under(path: &Path, root: &Path) -> bool {
        std::path::absolute(path).is_ok_and(|p| p.starts_with(root))
    }

    pub(super) fn traced<T>(op: Op<'_>, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        if COUNT.load(Ordering::SeqCst) == 0 {
            return f();
        }
        let paths: Vec<&Path> = match op {
            Op::SyncFile(p) | Op::SyncDir(p) => vec![p],
            Op::Rename { from, to } => vec![from, to],
        };
        let recorders: Vec<Arc<dyn Recorder>> = lock(&INSTALLED)
            .iter()
            .filter(|(_, root, _)| paths.iter().any(|p| under(p, root)))
            .map(|(_, _, r)| Arc::clone(r))
            .collect();
        if recorders.is_empty() {
            return f();
        }
        let _serial = lock(&SERIAL);
        for recorder in &recorders {
            recorder.before(&op);
        }
        let result = f();
        if result.is_ok() {
            for recorder in &recorders {
                recorder.after(&op);
            }
        }
        result
    }
}
