//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong reading an ONNX model.
///
/// Every variant names what it is about: the model (its path, or `<bytes>`
/// for [`crate::OnnxModel::from_bytes`]), the tensor, the node, the
/// attribute.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done: "opening", "mapping", "resolving", ...
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The model file is larger than [`crate::Limits::max_file_size`].
    #[error("{model}: file is {size} bytes, over the limit of {limit} bytes")]
    FileTooLarge {
        /// The model.
        model: String,
        /// The file's size.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// The bytes are not a well-formed `ModelProto` (found by the limit scan
    /// before decoding, or by prost).
    #[error("{model}: not a valid ONNX ModelProto: {detail}")]
    Malformed {
        /// The model.
        model: String,
        /// What is wrong, with the byte offset where known.
        detail: String,
    },

    /// The model has more of something than [`crate::Limits`] allows.
    #[error("{model}: {count} {item} or more, over the limit of {limit}")]
    TooMany {
        /// The model.
        model: String,
        /// What was counted: "nodes", "tensors", "nesting levels", ...
        item: &'static str,
        /// How many were found when the scan stopped (the limit plus one).
        count: u64,
        /// The limit.
        limit: u64,
    },

    /// The model's `ir_version` is outside what this crate reads.
    #[error("{model}: IR version {version} is not supported (supported: {min} to {max})")]
    IrVersion {
        /// The model.
        model: String,
        /// The model's `ir_version`.
        version: i64,
        /// The oldest supported IR version.
        min: i64,
        /// The newest supported IR version.
        max: i64,
    },

    /// An `opset_import` entry is missing, repeated or out of range.
    #[error("{model}: {detail}")]
    Opset {
        /// The model.
        model: String,
        /// What is wrong, naming the domain and version.
        detail: String,
    },

    /// The model has no `graph`.
    #[error("{model}: the model has no graph")]
    NoGraph {
        /// The model.
        model: String,
    },

    /// A tensor's type, shape or data is unusable.
    #[error("{model}: tensor {tensor:?}: {detail}")]
    Tensor {
        /// The model.
        model: String,
        /// The tensor's name (empty for an unnamed attribute tensor).
        tensor: String,
        /// What is wrong.
        detail: String,
    },

    /// A tensor's external data entry breaks a rule (path outside the model
    /// directory, bad offset or length, missing file, ...).
    #[error("{model}: tensor {tensor:?}: external data {location:?}: {detail}")]
    ExternalData {
        /// The model.
        model: String,
        /// The tensor's name.
        tensor: String,
        /// The entry's `location` as written in the model.
        location: String,
        /// What is wrong.
        detail: String,
    },

    /// A graph is not well formed: a node uses a value no earlier node,
    /// input or initializer defines, or a value is defined twice.
    #[error("{model}: graph {graph:?}: node {node}: {detail}")]
    Graph {
        /// The model.
        model: String,
        /// The graph's name.
        graph: String,
        /// The node: its name or index, and its op type.
        node: String,
        /// What is wrong.
        detail: String,
    },

    /// A node's attribute is missing or has the wrong type.
    #[error("{model}: node {node}: attribute {attribute:?}: {detail}")]
    Attribute {
        /// The model.
        model: String,
        /// The node: its name or index, and its op type.
        node: String,
        /// The attribute's name.
        attribute: String,
        /// What is wrong.
        detail: String,
    },

    /// The model uses operators (or attribute values) the converter does
    /// not support: every one of them, listed at once.
    #[error("{model}: cannot convert {} node(s) to TensorFlow:\n{}", nodes.len(), nodes.join("\n"))]
    Unsupported {
        /// The model.
        model: String,
        /// One line per node: op type, domain and opset, node name, why.
        nodes: Vec<String>,
    },

    /// A node cannot be converted as its inputs stand (shapes, types,
    /// attribute values outside what the operator defines).
    #[error("{model}: node {node}: {detail}")]
    Convert {
        /// The model.
        model: String,
        /// The node: its name or index, and its op type.
        node: String,
        /// What is wrong.
        detail: String,
    },

    /// Building the TensorFlow graph failed (`savedmodel-graph`'s error).
    #[error("{model}: building the TensorFlow graph: {source}")]
    Build {
        /// The model.
        model: String,
        /// What the graph builder reported.
        #[source]
        source: savedmodel_graph::Error,
    },

    /// Writing the SavedModel failed.
    #[error(transparent)]
    SavedModel(#[from] savedmodel::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`Error::Io`] for `path`.
pub(crate) fn io_error(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
    Error::Io {
        op,
        path: path.into(),
        source,
    }
}
