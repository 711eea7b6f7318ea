//! The exception hierarchy and the mapping from the Rust crates' error enums
//! onto it: a base `SavedModelError`, and `CorruptDataError`,
//! `NotFoundError` and `InvalidArgumentError` below it. The message is the
//! Rust error's, which names the file, tensor or directory.

use std::io::ErrorKind;

use pyo3::PyErr;
use pyo3::create_exception;
use pyo3::exceptions::PyException;

create_exception!(
    savedmodel,
    SavedModelError,
    PyException,
    "Base class of the errors the savedmodel package raises; the message names the file, tensor or directory and what is wrong."
);
create_exception!(
    savedmodel,
    CorruptDataError,
    SavedModelError,
    "A file is not what its format says: a broken table, entry, checksum, proto or out-of-bounds data."
);
create_exception!(
    savedmodel,
    NotFoundError,
    SavedModelError,
    "A file, directory, tensor, MetaGraph or signature does not exist."
);
create_exception!(
    savedmodel,
    InvalidArgumentError,
    SavedModelError,
    "An argument cannot be used: an unsupported data type, a bad shape, a duplicate name, a refused version."
);

/// Which exception class an error belongs to.
#[derive(Clone, Copy)]
enum Kind {
    Base,
    Corrupt,
    NotFound,
    InvalidArgument,
}

fn raise(kind: Kind, message: String) -> PyErr {
    match kind {
        Kind::Base => SavedModelError::new_err(message),
        Kind::Corrupt => CorruptDataError::new_err(message),
        Kind::NotFound => NotFoundError::new_err(message),
        Kind::InvalidArgument => InvalidArgumentError::new_err(message),
    }
}

fn io_kind(source: &std::io::Error) -> Kind {
    match source.kind() {
        ErrorKind::NotFound => Kind::NotFound,
        ErrorKind::InvalidInput => Kind::InvalidArgument,
        _ => Kind::Base,
    }
}

fn checkpoint_kind(error: &savedmodel_checkpoint::Error) -> Kind {
    use savedmodel_checkpoint::Error as E;
    match error {
        E::Io { source, .. } => io_kind(source),
        E::NotFound { .. } => Kind::NotFound,
        E::CorruptTable { .. }
        | E::BlockChecksum { .. }
        | E::CorruptEntry { .. }
        | E::CorruptForeignFile { .. }
        | E::CorruptTensor { .. }
        | E::TensorChecksum { .. }
        | E::DataOutOfBounds { .. }
        | E::Version { .. }
        | E::Slices { .. }
        | E::Limit { .. } => Kind::Corrupt,
        E::UnsupportedDType { .. } | E::DTypeMismatch { .. } | E::InvalidArgument { .. } => {
            Kind::InvalidArgument
        }
        _ => Kind::Base,
    }
}

/// A checkpoint error as a Python exception.
pub(crate) fn checkpoint_error(error: savedmodel_checkpoint::Error) -> PyErr {
    raise(checkpoint_kind(&error), error.to_string())
}

/// A SavedModel error as a Python exception.
pub(crate) fn saved_model_error(error: savedmodel::Error) -> PyErr {
    use savedmodel::Error as E;
    let kind = match &error {
        E::Io { source, .. } => io_kind(source),
        E::Checkpoint { source, .. } => checkpoint_kind(source),
        E::NotASavedModel { .. }
        | E::NoMetaGraph { .. }
        | E::NoSignature { .. }
        | E::NoSuchNode { .. }
        | E::NoSuchOutput { .. } => Kind::NotFound,
        E::Decode { .. }
        | E::TextFormat { .. }
        | E::BadCollection { .. }
        | E::BadInitOp { .. }
        | E::TfRecord { .. } => Kind::Corrupt,
        E::BadTensorName { .. } | E::ExportDirNotEmpty { .. } => Kind::InvalidArgument,
        _ => Kind::Base,
    };
    raise(kind, error.to_string())
}

/// A layout (base path, versions, publish) error as a Python exception.
pub(crate) fn layout_error(error: savedmodel_layout::Error) -> PyErr {
    use savedmodel_layout::Error as E;
    let kind = match &error {
        E::Io { source, .. } => io_kind(source),
        E::BaseMissing { .. } | E::NotSavedModel { .. } => Kind::NotFound,
        E::BaseNotDirectory { .. }
        | E::VersionExists { .. }
        | E::InvalidArgument { .. }
        | E::BaseInsideSource { .. }
        | E::SourceIsVersion { .. }
        | E::UnpublishableSymlink { .. }
        | E::UnsupportedFileType { .. } => Kind::InvalidArgument,
        _ => Kind::Base,
    };
    raise(kind, error.to_string())
}

/// An invalid argument found on the Python side (a type, a name).
pub(crate) fn invalid_argument(message: impl Into<String>) -> PyErr {
    raise(Kind::InvalidArgument, message.into())
}

/// An export (spec, weights) error as a Python exception.
pub(crate) fn export_error(error: savedmodel_export::Error) -> PyErr {
    use savedmodel_export::Error as E;
    match error {
        E::SavedModel(inner) => saved_model_error(inner),
        other => {
            let kind = match &other {
                E::Io { source, .. } => io_kind(source),
                E::MissingWeight { .. } => Kind::NotFound,
                E::Spec { .. } | E::Weight { .. } => Kind::InvalidArgument,
                E::WeightsFile { .. } => Kind::Corrupt,
                _ => Kind::Base,
            };
            raise(kind, other.to_string())
        }
    }
}

/// An ONNX import error as a Python exception.
pub(crate) fn onnx_error(error: savedmodel_onnx::Error) -> PyErr {
    use savedmodel_onnx::Error as E;
    match error {
        E::SavedModel(inner) => saved_model_error(inner),
        other => {
            let kind = match &other {
                E::Io { source, .. } => io_kind(source),
                E::FileTooLarge { .. }
                | E::Malformed { .. }
                | E::TooMany { .. }
                | E::NoGraph { .. }
                | E::Tensor { .. }
                | E::ExternalData { .. }
                | E::Graph { .. } => Kind::Corrupt,
                E::IrVersion { .. }
                | E::Opset { .. }
                | E::Attribute { .. }
                | E::Unsupported { .. }
                | E::Convert { .. } => Kind::InvalidArgument,
                _ => Kind::Base,
            };
            raise(kind, other.to_string())
        }
    }
}
