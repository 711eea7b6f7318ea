//! The crate's error type: each variant names the path it concerns.

use std::io;
use std::path::{Path, PathBuf};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A staging step that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Creating a temporary file or directory failed.
    #[error("creating {}: {source}", path.display())]
    Create {
        /// The temporary name.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Fsyncing a staged file failed.
    #[error("syncing {}: {source}", path.display())]
    Sync {
        /// The staged file (its temporary name).
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Opening or fsyncing a directory failed.
    #[error("syncing directory {}: {source}", path.display())]
    SyncDir {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Renaming into place failed.
    #[error("renaming {} to {}: {source}", from.display(), to.display())]
    Rename {
        /// The temporary name.
        from: PathBuf,
        /// The target.
        to: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A rename that must not replace anything found its target taken.
    #[error("renaming {} to {}: the target already exists", from.display(), to.display())]
    TargetExists {
        /// The temporary name.
        from: PathBuf,
        /// The target, left as it was.
        to: PathBuf,
    },
    /// Removing the empty directory at a target, to rename onto it where the
    /// system does not, failed.
    #[error("removing {}: {source}", path.display())]
    Remove {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// What was being done, as a verb for messages of the form
    /// `"{op} {path}: {cause}"` ("creating", "syncing", "renaming", ...).
    pub fn op(&self) -> &'static str {
        match self {
            Error::Create { .. } => "creating",
            Error::Sync { .. } => "syncing",
            Error::SyncDir { .. } => "syncing directory",
            Error::Rename { .. } | Error::TargetExists { .. } => "renaming",
            Error::Remove { .. } => "removing",
        }
    }

    /// The path the failure concerns: for a rename, the temporary name.
    pub fn path(&self) -> &Path {
        match self {
            Error::Create { path, .. }
            | Error::Sync { path, .. }
            | Error::SyncDir { path, .. }
            | Error::Remove { path, .. } => path,
            Error::Rename { from, .. } | Error::TargetExists { from, .. } => from,
        }
    }

    /// The operating system's error ([`io::ErrorKind::AlreadyExists`] for
    /// [`Error::TargetExists`]), for a caller that wraps it in its own error
    /// type with [`op`](Self::op) and [`path`](Self::path).
    pub fn into_source(self) -> io::Error {
        match self {
            Error::Create { source, .. }
            | Error::Sync { source, .. }
            | Error::SyncDir { source, .. }
            | Error::Rename { source, .. }
            | Error::Remove { source, .. } => source,
            Error::TargetExists { to, .. } => io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already exists", to.display()),
            ),
        }
    }
}
