//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong publishing to, listing, collecting or
/// syncing a base path in object storage. Errors from the store name the
/// object's URL (`s3://bucket/key`) and carry the store's error, whose text
/// holds the server's message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A base path URL that is not `s3://bucket/prefix` or
    /// `gs://bucket/prefix`, or a store that cannot be configured from it.
    #[error("invalid object storage URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An AWS shared file (`~/.aws/credentials`, `~/.aws/config`) that
    /// cannot be used for the profile the environment names.
    #[error("AWS profile {profile:?} in {path}: {reason}")]
    AwsProfile {
        /// The shared file.
        path: PathBuf,
        /// The profile (empty when the file itself is unusable).
        profile: String,
        /// What is wrong.
        reason: String,
    },
    /// A request to the object store failed.
    #[error("cannot {action} {url}: {source}")]
    Store {
        /// What was being done, e.g. `"upload"`.
        action: &'static str,
        /// The object or prefix, `s3://bucket/key`.
        url: String,
        /// The store's error, with the server's status and message.
        #[source]
        source: object_store::Error,
    },
    /// A local file system call failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The local path.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A local path that cannot be a key (not UTF-8, or a special file).
    #[error("cannot publish {path}: {reason}")]
    UnsupportedFile {
        /// The local path.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// The local directory holds no `saved_model.pb` (or `.pbtxt`).
    #[error("{path} is not a SavedModel directory (no saved_model.pb or saved_model.pbtxt)")]
    NotSavedModel {
        /// The directory.
        path: PathBuf,
    },
    /// An explicitly requested version is claimed or exists already.
    #[error("version {version} already exists in {base}")]
    VersionExists {
        /// The base path URL.
        base: String,
        /// The version.
        version: i64,
    },
    /// No version number was free after many attempts (or the next number
    /// would not fit in an `int64`).
    #[error("no free version number in {base} after {attempts} attempts")]
    NoFreeVersion {
        /// The base path URL.
        base: String,
        /// How many numbers were tried.
        attempts: u32,
    },
    /// An uploaded or downloaded object's size or checksum is not the
    /// file's.
    #[error("{url} does not match {path} after transfer: {what}")]
    VerifyFailed {
        /// The object.
        url: String,
        /// The local file.
        path: PathBuf,
        /// What differs, e.g. `"size 10 != 12"`.
        what: String,
    },
    /// A version without `saved_model.pb` was asked for.
    #[error("version {version} in {base} is incomplete (no saved_model.pb)")]
    Incomplete {
        /// The base path URL.
        base: String,
        /// The version.
        version: i64,
    },
    /// A version that is not in the base path was asked for.
    #[error("no version {version} in {base}")]
    NoSuchVersion {
        /// The base path URL.
        base: String,
        /// The version.
        version: i64,
    },
    /// The base path holds no complete version.
    #[error("no complete version in {base}")]
    NoVersions {
        /// The base path URL.
        base: String,
    },
    /// A claim or manifest object that is not what this crate writes.
    #[error("cannot read {url}: {reason}")]
    BadMetadata {
        /// The object.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The local base path (layout's publish, listing, gc).
    #[error(transparent)]
    Layout(#[from] savedmodel_layout::Error),
    /// A transfer task panicked or was cancelled.
    #[error("transfer task failed: {0}")]
    Task(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
