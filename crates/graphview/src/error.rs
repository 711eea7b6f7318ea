//! The crate's one error type.

/// What can go wrong drawing a graph.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The MetaGraph has no signature of that key.
    #[error("no signature '{key}' (the MetaGraph has: {available})")]
    NoSignature {
        /// The key asked for.
        key: String,
        /// The keys it has, comma-separated.
        available: String,
    },
    /// A signature output names a node the graph does not have.
    #[error("signature '{signature}' names tensor '{tensor}', whose node is not in the graph")]
    MissingNode {
        /// The signature key.
        signature: String,
        /// The tensor name.
        tensor: String,
    },
    /// The output file name has no extension we write.
    #[error("cannot tell the format from '{name}': use .svg, .dot or .html")]
    UnknownFormat {
        /// The file name.
        name: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
