//! The crate's one error type.
//!
//! Every variant names what it is about (a node, an asset, a file) and says
//! what is wrong in lowercase; `savedmodel`'s error wraps it unchanged, so
//! the messages users see are the same whichever crate raised them.

use std::path::PathBuf;

/// Everything that can go wrong building a graph or a tensor value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed (reading an asset or a streamed
    /// variable value).
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done: "reading asset", ...
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A tensor value is inconsistent (data size vs shape, dtype).
    #[error("invalid tensor: {what}")]
    InvalidTensor {
        /// What is wrong.
        what: String,
    },
    /// A node cannot be added to the graph as asked (op type, dtypes,
    /// shapes, attrs, names).
    #[error("node '{node}': {what}")]
    Graph {
        /// The node (or the name asked for).
        node: String,
        /// What is wrong.
        what: String,
    },
    /// An asset cannot be added as asked.
    #[error("asset '{name}': {what}")]
    Asset {
        /// The asset's file name (or source path).
        name: String,
        /// What is wrong.
        what: String,
    },
    /// A [`TensorSource`](crate::TensorSource) could not give its value (a
    /// weights file that changed or cannot be read): the source's own
    /// error, message unchanged.
    #[error(transparent)]
    Source(Box<dyn std::error::Error + Send + Sync>),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
