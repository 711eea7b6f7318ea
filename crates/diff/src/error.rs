//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong comparing two SavedModels.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A SavedModel could not be read.
    #[error("reading the SavedModel in {dir}: {source}")]
    Model {
        /// The SavedModel directory.
        dir: PathBuf,
        /// What the reader said (boxed: it is large).
        source: Box<savedmodel::Error>,
    },
    /// A checkpoint's index (or, with `--values`, data) could not be read.
    #[error("reading the checkpoint {prefix}: {source}")]
    Checkpoint {
        /// The checkpoint prefix (`<dir>/variables/variables`).
        prefix: PathBuf,
        /// What the checkpoint reader said (boxed: it is large).
        source: Box<savedmodel_checkpoint::Error>,
    },
    /// A file or directory could not be read.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`reading`, `listing`).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
    /// The base path could not be listed.
    #[error(transparent)]
    Layout(Box<savedmodel_layout::Error>),
    /// A version asked for is not in the base path.
    #[error("base path {base} has no version {version}")]
    NoSuchVersion {
        /// The base path.
        base: PathBuf,
        /// The version asked for.
        version: i64,
    },
    /// `--latest` needs two versions holding a SavedModel.
    #[error("base path {base} has {found} version(s) holding a SavedModel; --latest needs two")]
    NotEnoughVersions {
        /// The base path.
        base: PathBuf,
        /// How many versions it has.
        found: usize,
    },
    /// A directory tree (assets) is deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    #[error("{path} is nested deeper than {limit} directories")]
    TooDeep {
        /// The directory.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<savedmodel_layout::Error> for Error {
    fn from(e: savedmodel_layout::Error) -> Self {
        Error::Layout(Box::new(e))
    }
}
