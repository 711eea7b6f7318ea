//! The crate's one error type.
//!
//! Shared by the writing half (graph builder, saver, `SavedModelBuilder`) and
//! the reading half (`SavedModel::open`, `validate`): each adds its variants
//! here, always with structured context (path, node, tensor) and a lowercase
//! message naming what it is about.

use std::path::PathBuf;

/// Everything that can go wrong building, writing or reading a SavedModel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done: "creating", "writing", "renaming", ...
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    // ---- writing (saver.rs, signature.rs, builder.rs, ...) ----
    /// The graph could not be built as asked (op types, attrs, dtypes,
    /// shapes, names, tensor values, asset files): `savedmodel-graph`'s
    /// error, with its message unchanged.
    #[error(transparent)]
    Graph(#[from] savedmodel_graph::Error),
    /// A signature breaks TensorFlow Serving's rules or names a tensor the
    /// graph does not have.
    #[error("signature '{signature}': {what}")]
    Signature {
        /// The signature key.
        signature: String,
        /// What is wrong.
        what: String,
    },
    /// A warmup request cannot be written.
    #[error("warmup record {record}: {what}")]
    Warmup {
        /// The record's index in the file.
        record: usize,
        /// What is wrong.
        what: String,
    },
    /// A TFRecord file (the warmup file) is corrupt: bad framing or a
    /// checksum that does not match.
    #[error("TFRecord record {record} at offset {offset}: {what}")]
    TfRecord {
        /// The record's index in the file.
        record: usize,
        /// Where the record starts, in bytes from the start of the file.
        offset: usize,
        /// What is wrong.
        what: String,
    },
    /// Two MetaGraphs, or a MetaGraph and its variables, do not fit together.
    #[error("meta graph {}: {what}", crate::error::tag_set(tags))]
    MetaGraph {
        /// The MetaGraph's tags.
        tags: Vec<String>,
        /// What is wrong.
        what: String,
    },
    /// The export directory exists and is not empty.
    #[error("export directory {} already exists and is not empty", path.display())]
    ExportDirNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// A message could not be serialized (deterministic encoding, text
    /// format).
    #[error("encoding {message}: {source}")]
    Encode {
        /// The message type.
        message: &'static str,
        /// What the encoder reported.
        #[source]
        source: savedmodel_proto::Error,
    },

    // ---- reading (reader.rs, validate/) ----
    /// Neither `saved_model.pb` nor `saved_model.pbtxt` is in the directory.
    #[error(
        "no saved_model.pb or saved_model.pbtxt in {}: not a savedmodel directory",
        dir.display()
    )]
    NotASavedModel {
        /// The directory that was opened.
        dir: PathBuf,
    },
    /// A file does not parse as the binary protobuf message it must hold.
    #[error("cannot parse {} as a binary {message} proto: {source}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The message type expected, e.g. `tensorflow.SavedModel`.
        message: &'static str,
        /// What prost reported.
        #[source]
        source: prost::DecodeError,
    },
    /// A file does not parse as the text-format protobuf message it must hold.
    #[error("cannot parse {} as a text-format {message} proto: {source}", path.display())]
    TextFormat {
        /// The file.
        path: PathBuf,
        /// The message type expected, e.g. `tensorflow.SavedModel`.
        message: &'static str,
        /// What the text-format parser reported.
        #[source]
        source: savedmodel_proto::Error,
    },
    /// No MetaGraph's tag set equals the requested one.
    #[error(
        "no meta graph with tag set {} in {} (it has {})",
        crate::error::tag_set(tags),
        path.display(),
        crate::error::tag_sets(available)
    )]
    NoMetaGraph {
        /// The SavedModel file.
        path: PathBuf,
        /// The tags asked for.
        tags: Vec<String>,
        /// The tag set of every MetaGraph, in file order.
        available: Vec<Vec<String>>,
    },
    /// The MetaGraph has no signature with this key.
    #[error(
        "no signature '{key}' in meta graph {} (it has {})",
        crate::error::tag_set(tags),
        crate::error::keys(available)
    )]
    NoSignature {
        /// The key asked for.
        key: String,
        /// The MetaGraph's tags.
        tags: Vec<String>,
        /// The signature keys the MetaGraph has, sorted.
        available: Vec<String>,
    },
    /// A tensor name is empty or not of the form `node` / `node:index`.
    #[error("'{tensor}' is not a tensor name (expected node or node:index)")]
    BadTensorName {
        /// The name as written.
        tensor: String,
    },
    /// A tensor name names a node the graph does not have.
    #[error("tensor '{tensor}' names node '{node}', which is not in the graph")]
    NoSuchNode {
        /// The tensor name as written.
        tensor: String,
        /// The node part of it.
        node: String,
    },
    /// A tensor name names an output the node does not have.
    #[error(
        "tensor '{tensor}' names output {output} of node '{node}', but a {op} node has {outputs} output(s)"
    )]
    NoSuchOutput {
        /// The tensor name as written.
        tensor: String,
        /// The node.
        node: String,
        /// The node's op.
        op: String,
        /// The output index asked for.
        output: u64,
        /// How many outputs the node has.
        outputs: usize,
    },
    /// A collection does not hold what TensorFlow's loader expects.
    #[error("collection '{collection}': {problem}")]
    BadCollection {
        /// The collection key, e.g. `saved_model_assets`.
        collection: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The init op cannot be determined the way TensorFlow's loader does.
    #[error("init op: {problem}")]
    BadInitOp {
        /// What is wrong.
        problem: String,
    },
    /// The variables (TensorBundle checkpoint) could not be read.
    #[error("variables {}: {source}", prefix.display())]
    Checkpoint {
        /// The checkpoint prefix, `<dir>/variables/variables`.
        prefix: PathBuf,
        /// What the checkpoint reader reported.
        #[source]
        source: savedmodel_checkpoint::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A staging step ([`savedmodel_staged`]) as this crate's [`Error::Io`]:
/// the same operation, path and cause.
impl From<savedmodel_staged::Error> for Error {
    fn from(e: savedmodel_staged::Error) -> Self {
        Error::Io {
            op: e.op(),
            path: e.path().to_path_buf(),
            source: e.into_source(),
        }
    }
}

/// `{ a, b }`, the way TensorFlow prints a tag set.
pub(crate) fn tag_set(tags: &[String]) -> String {
    if tags.is_empty() {
        "{ }".to_owned()
    } else {
        format!("{{ {} }}", tags.join(", "))
    }
}

/// Several tag sets, `{ serve }, { serve, gpu }`, or `no meta graphs`.
pub(crate) fn tag_sets(sets: &[Vec<String>]) -> String {
    if sets.is_empty() {
        "no meta graphs".to_owned()
    } else {
        sets.iter()
            .map(|t| tag_set(t))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `'a', 'b'`, or `none`.
pub(crate) fn keys(keys: &[String]) -> String {
    if keys.is_empty() {
        "none".to_owned()
    } else {
        keys.iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
