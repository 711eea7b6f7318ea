//! The crate's one error type.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::dtype::DType;

/// Everything that can go wrong reading or writing a bundle.
///
/// Every variant names the file (and, where there is one, the tensor) it is
/// about. Tensor names are shown with non-printable bytes escaped (slice keys
/// start with a `\x00` byte).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed (including a full disk, `ENOSPC`, and a
    /// file-size limit, `EFBIG`: see [`io::Error::kind`] on `source`).
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done: "opening", "writing", "renaming", ...
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The `.index` file is not a well-formed table.
    #[error("corrupt table {}{}: {what}", path.display(), OffsetSuffix(*offset))]
    CorruptTable {
        /// The `.index` file.
        path: PathBuf,
        /// Byte offset in the file of the problem, when known.
        offset: Option<u64>,
        /// What is wrong.
        what: String,
    },

    /// A table block's stored checksum does not match its bytes.
    #[error(
        "block checksum mismatch in {} (block at offset {offset}): stored {expected:#010x}, computed {actual:#010x}",
        path.display()
    )]
    BlockChecksum {
        /// The `.index` file.
        path: PathBuf,
        /// Offset of the block in the file.
        offset: u64,
        /// The unmasked CRC32C stored in the block trailer.
        expected: u32,
        /// The CRC32C computed over the block and its type byte.
        actual: u32,
    },

    /// An index entry (the header or a tensor's `BundleEntryProto`) cannot be
    /// decoded or is inconsistent.
    #[error("corrupt entry for {tensor} in {}: {what}", path.display())]
    CorruptEntry {
        /// The `.index` file.
        path: PathBuf,
        /// The entry's key (escaped), or `header` for the header entry.
        tensor: String,
        /// What is wrong.
        what: String,
    },

    /// A `.safetensors` or `.npz` file (read by the converters) is malformed.
    #[error("corrupt {format} file {}{}: {what}", path.display(), TensorSuffix(tensor.as_deref()))]
    CorruptForeignFile {
        /// The file.
        path: PathBuf,
        /// `safetensors` or `npz`.
        format: &'static str,
        /// The tensor (array) concerned, when the fault is in one.
        tensor: Option<String>,
        /// What is wrong.
        what: String,
    },

    /// A tensor's bytes in a data file are malformed (string framing, sizes).
    #[error("corrupt data for tensor {tensor} in {} at offset {offset}: {what}", path.display())]
    CorruptTensor {
        /// The data file.
        path: PathBuf,
        /// The tensor's key (escaped).
        tensor: String,
        /// Offset in the data file of the problem.
        offset: u64,
        /// What is wrong.
        what: String,
    },

    /// A tensor's data checksum does not match the one in its entry.
    #[error(
        "checksum mismatch for tensor {tensor} in {}: stored {expected:#010x}, computed {actual:#010x}",
        path.display()
    )]
    TensorChecksum {
        /// The data file.
        path: PathBuf,
        /// The tensor's key (escaped).
        tensor: String,
        /// The unmasked CRC32C stored in the entry.
        expected: u32,
        /// The CRC32C computed over the bytes in the file.
        actual: u32,
    },

    /// An entry points past the end of its data file.
    #[error(
        "tensor {tensor}: bytes {offset}..{offset}+{size} lie beyond the end of {} ({file_len} bytes)",
        path.display()
    )]
    DataOutOfBounds {
        /// The data file.
        path: PathBuf,
        /// The tensor's key (escaped).
        tensor: String,
        /// The entry's offset.
        offset: u64,
        /// The entry's size.
        size: u64,
        /// The data file's length.
        file_len: u64,
    },

    /// The bundle's header asks for a reader newer than this one, or names
    /// this reader as bad.
    #[error("unsupported bundle version in {}: {what}", path.display())]
    Version {
        /// The `.index` file.
        path: PathBuf,
        /// Which check failed.
        what: String,
    },

    /// A key that is not in the bundle.
    #[error("tensor {tensor} not found in {}", path.display())]
    NotFound {
        /// The `.index` file.
        path: PathBuf,
        /// The key looked up (escaped).
        tensor: String,
    },

    /// A data type this operation cannot handle.
    #[error("tensor {tensor}: data type {dtype} is not supported {context}")]
    UnsupportedDType {
        /// The tensor's key (escaped).
        tensor: String,
        /// The `DataType` number (or name when known).
        dtype: DTypeDisplay,
        /// Where it is not supported ("in checkpoints", "for typed views", ...).
        context: &'static str,
    },

    /// A typed view was asked for with an element type that does not match
    /// the tensor's data type.
    #[error("tensor {tensor} has data type {actual}, which cannot be viewed as {requested}")]
    DTypeMismatch {
        /// The tensor's key (escaped).
        tensor: String,
        /// The tensor's data type.
        actual: DType,
        /// The Rust element type requested.
        requested: &'static str,
    },

    /// A borrow-only typed view was asked for but the tensor's bytes in the
    /// file are not aligned for the element type (or need a byte swap).
    #[error(
        "tensor {tensor}: data at file offset {offset} cannot be borrowed as {requested} ({why})"
    )]
    NotBorrowable {
        /// The tensor's key (escaped).
        tensor: String,
        /// The tensor's offset in its data file.
        offset: u64,
        /// The Rust element type requested.
        requested: &'static str,
        /// Why not: misaligned, or the bundle is of the other byte order.
        why: &'static str,
    },

    /// The stored slices of a partitioned tensor do not fit together.
    #[error("partitioned tensor {tensor} in {}: {what}", path.display())]
    Slices {
        /// The `.index` file.
        path: PathBuf,
        /// The full tensor's key (escaped).
        tensor: String,
        /// What is wrong (insufficient or overlapping slices, ...).
        what: String,
    },

    /// A count or size read from a file is over a named limit of this crate.
    #[error("{what} in {}: {value} exceeds the limit of {limit}", path.display())]
    Limit {
        /// The file.
        path: PathBuf,
        /// What was counted.
        what: &'static str,
        /// The value found.
        value: u64,
        /// The limit.
        limit: u64,
    },

    /// A caller-supplied argument is not valid (bad shape, wrong byte count,
    /// duplicate name, malformed slice spec, ...).
    #[error("{}{what}", TensorPrefix(tensor))]
    InvalidArgument {
        /// The tensor concerned (escaped), empty when none.
        tensor: String,
        /// What is wrong.
        what: String,
    },

    /// Merging bundles failed for a reason other than I/O or corruption.
    #[error("merging bundles into {}: {what}", prefix.display())]
    Merge {
        /// The merged prefix.
        prefix: PathBuf,
        /// What is wrong (conflicting endianness or versions, duplicates).
        what: String,
    },
}

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A data type in an error message: the TensorFlow name when the number is
/// known, the number otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DTypeDisplay(pub i32);

impl fmt::Display for DTypeDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DType::from_i32(self.0) {
            Some(dtype) => f.write_str(dtype.name()),
            None => write!(f, "{}", self.0),
        }
    }
}

struct TensorPrefix<'a>(&'a str);

impl fmt::Display for TensorPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "tensor {}: ", self.0)
        }
    }
}

struct OffsetSuffix(Option<u64>);

impl fmt::Display for OffsetSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(offset) => write!(f, " at offset {offset}"),
            None => Ok(()),
        }
    }
}

/// A key as shown in messages: printable ASCII as is, other bytes escaped.
pub(crate) fn display_key(key: &[u8]) -> String {
    if key.is_empty() {
        return "header".to_owned();
    }
    key.escape_ascii().to_string()
}

pub(crate) fn io_error(op: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

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

pub(crate) fn invalid(tensor: &[u8], what: impl Into<String>) -> Error {
    Error::InvalidArgument {
        tensor: tensor.escape_ascii().to_string(),
        what: what.into(),
    }
}

/// Formats ` (tensor NAME)` after a file name, or nothing.
struct TensorSuffix<'a>(Option<&'a str>);

impl std::fmt::Display for TensorSuffix<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(tensor) => write!(f, " (tensor {tensor})"),
            None => Ok(()),
        }
    }
}
