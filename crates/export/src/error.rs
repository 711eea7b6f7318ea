//! The crate's one error type: what can go wrong between a model spec, a
//! weights file and a written SavedModel. Errors of the layers below
//! (`savedmodel`, `savedmodel-graph`) are wrapped with their messages
//! unchanged.

use std::path::PathBuf;

/// Everything that can go wrong exporting from a spec and weights.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done: "reading", "opening", ...
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The model spec does not parse, or describes a model that cannot be
    /// built (unknown architecture or activation, wrong widths, ...).
    #[error("model spec {}: {what}", path.display())]
    Spec {
        /// The spec file (`<inline>` for a spec given as text).
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A tensor the spec names is not in the weights.
    #[error("weights {}: no tensor '{tensor}' (the {role}){hint}", weights.display())]
    MissingWeight {
        /// The weights file.
        weights: PathBuf,
        /// The tensor name the spec gives.
        tensor: String,
        /// What the spec uses it for, e.g. `kernel of layer 1`.
        role: String,
        /// Close names in the file, as `; did you mean ...`, or empty.
        hint: String,
    },
    /// A weight tensor does not fit the model (shape, dtype, values).
    #[error("weights {}: tensor '{tensor}' (the {role}) {what}", weights.display())]
    Weight {
        /// The weights file.
        weights: PathBuf,
        /// The tensor name.
        tensor: String,
        /// What the spec uses it for.
        role: String,
        /// What is wrong, e.g. `has shape [3, 4] but ... needs [4, 3]`.
        what: String,
    },
    /// The weights file cannot be read.
    #[error("weights {}: {source}", path.display())]
    WeightsFile {
        /// The weights file (or checkpoint prefix).
        path: PathBuf,
        /// What the reader reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Building or writing the SavedModel failed.
    #[error(transparent)]
    SavedModel(#[from] savedmodel::Error),
}

impl From<savedmodel_graph::Error> for Error {
    fn from(e: savedmodel_graph::Error) -> Self {
        Error::SavedModel(e.into())
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
