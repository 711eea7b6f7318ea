//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong discovering, publishing or removing versions
/// and editing `models.config`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system call failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done, e.g. `"create staging directory"`.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The base path does not exist.
    #[error("base path {path} does not exist")]
    BaseMissing {
        /// The base path.
        path: PathBuf,
    },
    /// The base path exists but is not a directory.
    #[error("base path {path} is not a directory")]
    BaseNotDirectory {
        /// The base path.
        path: PathBuf,
    },
    /// The base path cannot be written to (a staging directory cannot be
    /// created in it).
    #[error("base path {path} is not writable: {source}")]
    BaseNotWritable {
        /// The base path.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// An explicitly requested version already exists under the base path.
    #[error("version {version} already exists in {base} (as {existing:?})")]
    VersionExists {
        /// The base path.
        base: PathBuf,
        /// The requested version.
        version: i64,
        /// The child of the base path that already holds that version.
        existing: String,
    },
    /// The next version number would not fit in an `int64`.
    #[error("no next version in {base}: {highest} is the largest int64")]
    VersionOverflow {
        /// The base path.
        base: PathBuf,
        /// The highest existing version.
        highest: i64,
    },
    /// Other processes kept getting in the way: other exporters took every
    /// version number tried, or something removed every staging directory
    /// as soon as it was made.
    #[error("gave up publishing into {base} after {attempts} attempts: {why}")]
    TooManyAttempts {
        /// The base path.
        base: PathBuf,
        /// How many times it was tried.
        attempts: u32,
        /// What kept happening.
        why: &'static str,
    },
    /// The caller's writer failed while filling the staging directory.
    #[error("writing into staging directory {staging} failed: {source}")]
    Write {
        /// The staging directory (already removed when this is returned).
        staging: PathBuf,
        /// The writer's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Nothing was written into the staging directory.
    #[error("refusing to publish an empty directory from {staging}")]
    EmptyVersion {
        /// The staging directory (already removed when this is returned).
        staging: PathBuf,
    },
    /// The directory given to [`publish_dir`](crate::publish_dir) is not a
    /// SavedModel directory.
    #[error(
        "{path} is not a SavedModel directory: it has neither saved_model.pb nor saved_model.pbtxt"
    )]
    NotSavedModel {
        /// The source directory.
        path: PathBuf,
    },
    /// The source directory of [`publish_dir`](crate::publish_dir) contains the
    /// base path, so copying it into the base path would never end.
    #[error(
        "cannot publish {source_dir} into {base}: the base path is inside the source directory"
    )]
    BaseInsideSource {
        /// The source directory.
        source_dir: PathBuf,
        /// The base path.
        base: PathBuf,
    },
    /// A symbolic link in the source directory of
    /// [`publish_dir`](crate::publish_dir) that cannot be published: the
    /// version would hold a link that dangles or points somewhere else.
    #[error("cannot publish symbolic link {link}: {reason}")]
    UnpublishableSymlink {
        /// The link, inside the source directory.
        link: PathBuf,
        /// Why not.
        reason: &'static str,
    },
    /// A symbolic link in the source directory of
    /// [`publish_dir`](crate::publish_dir) leads outside it, and the caller
    /// did not ask to follow such links
    /// ([`OutsideLinks::Follow`](crate::OutsideLinks::Follow)).
    #[error(
        "cannot publish symbolic link {link}: it leads outside the source directory, to {target}; \
         pass --follow-outside-links to publish what it points at"
    )]
    LinkLeadsOutside {
        /// The link, inside the source directory.
        link: PathBuf,
        /// Where it leads (resolved).
        target: PathBuf,
    },
    /// The source directory of [`publish_dir`](crate::publish_dir) with
    /// [`PublishMode::Move`](crate::PublishMode::Move) is already a version
    /// of the base path.
    #[error("cannot move {source_dir} into {base}: it already is version {version} there")]
    SourceIsVersion {
        /// The source directory.
        source_dir: PathBuf,
        /// The base path.
        base: PathBuf,
        /// Its version number.
        version: i64,
    },
    /// A file that is neither a regular file, a directory nor a symbolic link.
    #[error("cannot copy {path}: not a regular file, directory or symbolic link")]
    UnsupportedFileType {
        /// The path.
        path: PathBuf,
    },
    /// A version policy or version list written as text does not parse.
    #[error("invalid {what} {text:?}: {reason}")]
    InvalidArgument {
        /// What was being parsed, e.g. `"version policy"`.
        what: &'static str,
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `models.config` does not parse as a `ModelServerConfig` in text format.
    #[error("cannot parse {path} as a ModelServerConfig: {source}")]
    ConfigParse {
        /// The config file.
        path: PathBuf,
        /// What the text format parser said.
        #[source]
        source: savedmodel_proto::Error,
    },
    /// `models.config` cannot be printed (should not happen for valid
    /// messages).
    #[error("cannot print {path} as a ModelServerConfig: {source}")]
    ConfigPrint {
        /// The config file.
        path: PathBuf,
        /// What the printer said.
        #[source]
        source: savedmodel_proto::Error,
    },
    /// `models.config` uses `custom_model_config`, which this tool does not
    /// edit.
    #[error("{path} uses custom_model_config; only model_config_list can be edited")]
    CustomModelConfig {
        /// The config file.
        path: PathBuf,
    },
    /// No model of that name in `models.config`.
    #[error("{path} has no model named {name:?}")]
    UnknownModel {
        /// The config file.
        path: PathBuf,
        /// The model name asked for.
        name: String,
    },
    /// A model of that name is already in `models.config`.
    #[error("{path} already has a model named {name:?}")]
    DuplicateModel {
        /// The config file.
        path: PathBuf,
        /// The model name.
        name: String,
    },
    /// No model in `models.config` is served from the given base path.
    #[error("{path} has no model whose base_path is {base}")]
    NoModelForBase {
        /// The config file.
        path: PathBuf,
        /// The base path.
        base: PathBuf,
    },
    /// A label would point at a version that TensorFlow Serving would not
    /// accept.
    #[error("cannot label version {version} of model {model:?} as {label:?}: {reason}")]
    Label {
        /// The model name.
        model: String,
        /// The label.
        label: String,
        /// The version.
        version: i64,
        /// Why not.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A failed step of `savedmodel-staged` while doing `action`, naming the
    /// path the step names (a rename's temporary name).
    pub(crate) fn staged(action: &'static str, e: savedmodel_staged::Error) -> Self {
        Error::Io {
            action,
            path: e.path().to_path_buf(),
            source: e.into_source(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
