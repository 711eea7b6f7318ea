//! Publishing a version so that TensorFlow Serving never sees it
//! half-written.
//!
//! Architecture Invariant: a numeric child of the base path is only ever
//! created by one `rename` of a complete, fsynced directory, and that rename
//! never replaces an existing child. Everything else happens under a name
//! Serving ignores ([`STAGING_PREFIX`]).
//!
//! The protocol, step by step:
//! 1. `mkdir <base>/.savedmodel-staging-<pid>-<random>`, open it and take an
//!    exclusive `flock` on it (held until the publish ends; the kernel drops
//!    it if the process dies). If the directory vanished before the lock was
//!    taken (a concurrent `gc` saw it unlocked and removed it), start over
//!    with a new name.
//! 2. The caller writes the SavedModel into it.
//! 3. Every file and directory inside it is fsynced, then the staging
//!    directory itself.
//! 4. The version number is chosen ([`NextVersion`]) and the staging directory
//!    renamed to it with `renameat2(RENAME_NOREPLACE)`. If another exporter
//!    took that number first, the rename fails with `EEXIST` and the next
//!    number is tried.
//! 5. The base path is fsynced, so the new name survives a power loss.
//!
//! An error or a panic in step 2 or 3 removes the staging directory; a killed
//! process leaves it, locked by nobody, for [`collect_garbage`](crate::collect_garbage).
//!
//! The staging directory is a [`savedmodel_staged::StagedDir`] (the
//! workspace's one home for "nothing is written in place": removal on drop,
//! the no-replace rename, the fsyncs around it); the lock, the name gc
//! recognises and the version numbering are this module's.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use savedmodel_staged::{StagedDir, random_u64, rename_no_replace, sync_dir};

use crate::error::{Error, Result};
use crate::listing::{BaseListing, STAGING_PREFIX, check_base_dir, holds_saved_model};
use crate::sys;
use crate::version::parse_version;

/// How the number of a new version is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NextVersion {
    /// One more than the highest existing version; 1 when there is none.
    #[default]
    Increment,
    /// Seconds since the Unix epoch, TensorFlow's own exporters' convention
    /// (`get_timestamped_export_dir` in
    /// `tensorflow/python/saved_model/model_utils/export_utils.py` names the
    /// directory `int(time.time())`). Never lower than the highest existing
    /// version + 1, so the new version is always the one Serving's latest
    /// policy picks, also for two publishes within one second.
    UnixSeconds,
    /// Exactly this number. Refused with [`Error::VersionExists`] when any
    /// child of the base path already parses to it (`7`, `007`, ...).
    Explicit(i64),
}

impl std::str::FromStr for NextVersion {
    type Err = Error;

    /// `next` (or `increment`), `unix`, or a version number.
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "next" | "increment" => Ok(NextVersion::Increment),
            "unix" => Ok(NextVersion::UnixSeconds),
            _ => {
                text.parse::<i64>()
                    .map(NextVersion::Explicit)
                    .map_err(|_| Error::InvalidArgument {
                        what: "next-version policy",
                        text: text.to_owned(),
                        reason: "expected next, unix or an int64 version".to_owned(),
                    })
            }
        }
    }
}

/// Where a publish ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The version number taken.
    pub version: i64,
    /// The version directory, `<base>/<version>`.
    pub path: PathBuf,
}

/// Whether [`publish_dir`] copies the source directory or moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishMode {
    /// Copy into a staging directory; the source stays. Symbolic links
    /// inside the source are followed: the version holds copies of what they
    /// point at, so it is complete and self-contained (a copied link could
    /// dangle or change, and a `variables` link that dangles makes
    /// TensorFlow serve uninitialized weights). Links leading out of the
    /// source directory are governed by [`OutsideLinks`].
    #[default]
    Copy,
    /// Rename the source directory itself into place (it is fsynced first).
    /// Refused when a symbolic link inside it would dangle or change meaning
    /// once moved. Across file systems this falls back to a copy followed by
    /// removing the source.
    Move,
}

/// What [`publish_dir`] does with a symbolic link inside the source
/// directory whose target lies outside it.
///
/// A SavedModel handed to us may hold a link to `/etc/passwd` or to another
/// model's files; a copy would publish that file's contents, and a move a
/// link that Serving follows. So such links are refused unless the caller
/// says otherwise (`savedmodel publish --follow-outside-links`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutsideLinks {
    /// Refuse the publish, naming the link and where it leads.
    #[default]
    Refuse,
    /// Copy what the link points at ([`PublishMode::Copy`]), or keep the
    /// link as it is ([`PublishMode::Move`], where it must be absolute to
    /// survive the move).
    Follow,
}

/// The version number the next publish into the base path would take now.
///
/// ```
/// use savedmodel_layout::{BaseListing, NextVersion, next_version};
///
/// let base = tempfile::tempdir()?;
/// std::fs::create_dir(base.path().join("007"))?;
/// let listing = BaseListing::read(base.path())?;
/// assert_eq!(next_version(&listing, NextVersion::Increment)?, 8);
/// assert!(next_version(&listing, NextVersion::Explicit(7)).is_err());
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn next_version(listing: &BaseListing, next: NextVersion) -> Result<i64> {
    let after_highest = || match listing.highest() {
        None => Ok(1),
        Some(highest) => highest
            .checked_add(1)
            .ok_or_else(|| Error::VersionOverflow {
                base: listing.base().to_path_buf(),
                highest,
            }),
    };
    match next {
        NextVersion::Increment => after_highest(),
        NextVersion::UnixSeconds => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            Ok(now.max(after_highest()?))
        }
        NextVersion::Explicit(version) => match listing.find(version) {
            Some(existing) => Err(Error::VersionExists {
                base: listing.base().to_path_buf(),
                version,
                existing: existing.name.clone(),
            }),
            None => Ok(version),
        },
    }
}

/// Publishes a new version into `base`: `write` fills a staging directory
/// (its argument), which is then fsynced and renamed to the version number
/// chosen by `next`.
///
/// Serving never sees a partial version: until the rename the directory's
/// name does not parse as a number, and the rename never replaces an existing
/// version. When `write` fails or panics the staging directory is removed;
/// when the process is killed it is left for
/// [`collect_garbage`](crate::collect_garbage).
///
/// An error from `write` comes back as [`Error::Write`], naming the staging
/// directory, unless it already is this crate's [`Error`].
///
/// Several processes may publish into one base path at once; each gets its
/// own version number.
///
/// ```
/// use savedmodel_layout::{NextVersion, publish};
///
/// let base = tempfile::tempdir()?;
/// let published = publish(base.path(), NextVersion::Increment, |dir| {
///     std::fs::write(dir.join("saved_model.pb"), b"...")?;
///     std::fs::create_dir(dir.join("variables"))
/// })?;
/// assert_eq!(published.version, 1);
/// assert!(published.path.join("saved_model.pb").is_file());
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn publish<F, E>(base: &Path, next: NextVersion, write: F) -> Result<Published>
where
    F: FnOnce(&Path) -> Result<(), E>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listing = BaseListing::read(base)?;
    if let NextVersion::Explicit(_) = next {
        // Fail before writing anything; the rename checks again.
        next_version(&listing, next)?;
    }
    let mut staging = Staging::create(base)?;
    if let Err(source) = write(staging.dir.path()) {
        // The staging directory is removed when `staging` drops.
        return Err(match source.into().downcast::<Error>() {
            // Our own errors (publish_dir's copy) already name their path.
            Ok(ours) => *ours,
            Err(source) => Error::Write {
                staging: staging.dir.path().to_path_buf(),
                source,
            },
        });
    }
    if !sync_tree(staging.dir.path())? {
        return Err(Error::EmptyVersion {
            staging: staging.dir.path().to_path_buf(),
        });
    }
    // The commit fsyncs the base path after the rename.
    rename_to_next_version(base, next, |target| {
        staging.dir.commit_no_replace(target, true)
    })
}

/// Publishes an existing SavedModel directory `src` into `base` (copied, or
/// moved with [`PublishMode::Move`]), with the same guarantees as
/// [`publish`].
///
/// `src` must contain `saved_model.pb` or `saved_model.pbtxt`. A symbolic
/// link inside `src` that leads out of it is refused unless `outside_links`
/// is [`OutsideLinks::Follow`].
pub fn publish_dir(
    src: &Path,
    base: &Path,
    next: NextVersion,
    mode: PublishMode,
    outside_links: OutsideLinks,
) -> Result<Published> {
    let src_meta =
        fs::symlink_metadata(src).map_err(|e| Error::io("read source directory", src, e))?;
    if src_meta.file_type().is_symlink() && mode == PublishMode::Move {
        return Err(Error::InvalidArgument {
            what: "source directory",
            text: src.display().to_string(),
            reason: "it is a symbolic link; --move needs the directory itself".to_owned(),
        });
    }
    if !holds_saved_model(src) {
        return Err(Error::NotSavedModel {
            path: src.to_path_buf(),
        });
    }
    check_base_dir(base)?;
    let src_real = fs::canonicalize(src).map_err(|e| Error::io("resolve", src, e))?;
    let base_real = fs::canonicalize(base).map_err(|e| Error::io("resolve", base, e))?;
    if base_real.starts_with(&src_real) {
        return Err(Error::BaseInsideSource {
            source_dir: src.to_path_buf(),
            base: base.to_path_buf(),
        });
    }
    match mode {
        PublishMode::Copy => publish(base, next, |staging| copy_tree(src, staging, outside_links)),
        PublishMode::Move => {
            if src_real.parent() == Some(base_real.as_path()) {
                let version = src_real
                    .file_name()
                    .and_then(|name| parse_version(name.as_encoded_bytes()));
                if let Some(version) = version {
                    return Err(Error::SourceIsVersion {
                        source_dir: src.to_path_buf(),
                        base: base.to_path_buf(),
                        version,
                    });
                }
            }
            check_links_survive_move(src, &src_real, outside_links)?;
            let listing = BaseListing::read(base)?;
            if let NextVersion::Explicit(_) = next {
                next_version(&listing, next)?;
            }
            sync_tree(src)?;
            match rename_into_place(base, src, next) {
                Ok(published) => {
                    sync_dir(base).map_err(|e| Error::staged("fsync base path", e))?;
                    sync_parent(&src_real)?;
                    Ok(published)
                }
                Err(Error::Io { source, .. }) if is_cross_device(&source) => {
                    let published =
                        publish(base, next, |staging| copy_tree(src, staging, outside_links))?;
                    fs::remove_dir_all(src)
                        .map_err(|e| Error::io("remove moved source directory", src, e))?;
                    sync_parent(&src_real)?;
                    Ok(published)
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// Fsyncs the directory holding `path`, so that a name removed from it (a
/// moved source directory) stays removed.
fn sync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            sync_dir(parent).map_err(|e| Error::staged("fsync directory", e))
        }
        _ => Ok(()),
    }
}

/// Refuses a move when a symbolic link inside `src` would not point at the
/// same thing from the version directory: a dangling link, a relative link
/// leading out of `src`, or an absolute link into `src`.
fn check_links_survive_move(
    src: &Path,
    src_real: &Path,
    outside_links: OutsideLinks,
) -> Result<()> {
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| Error::io("list directory", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list directory", &dir, e))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|e| Error::io("read file type of", &path, e))?;
            if kind.is_dir() {
                dirs.push(path);
                continue;
            }
            if !kind.is_symlink() {
                continue;
            }
            let target =
                fs::read_link(&path).map_err(|e| Error::io("read symbolic link", &path, e))?;
            let Ok(resolved) = fs::canonicalize(&path) else {
                return Err(Error::UnpublishableSymlink {
                    link: path,
                    reason: "it dangles",
                });
            };
            let inside = resolved.starts_with(src_real);
            if !inside && outside_links == OutsideLinks::Refuse {
                return Err(Error::LinkLeadsOutside {
                    link: path,
                    target: resolved,
                });
            }
            if target.is_absolute() && inside {
                return Err(Error::UnpublishableSymlink {
                    link: path,
                    reason: "it points into the source directory by an absolute path, so it \
                             would dangle once the directory is moved; publish without --move \
                             to copy what it points at",
                });
            }
            if !target.is_absolute() && !inside {
                return Err(Error::UnpublishableSymlink {
                    link: path,
                    reason: "its relative path leads out of the source directory, so it would \
                             point elsewhere once the directory is moved; publish without \
                             --move to copy what it points at",
                });
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn is_cross_device(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EXDEV)
}

#[cfg(not(unix))]
fn is_cross_device(_: &io::Error) -> bool {
    false
}

/// How many version numbers one publish tries before giving up. Each failed
/// try means another exporter published, so this is only reached by a base
/// path that something fills faster than we can list it.
const MAX_RENAME_ATTEMPTS: u32 = 10_000;

/// Renames the complete directory `from` to the next version number under
/// `base`, trying higher numbers while other exporters take them.
fn rename_into_place(base: &Path, from: &Path, next: NextVersion) -> Result<Published> {
    rename_to_next_version(base, next, |target| rename_no_replace(from, target))
}

/// Moves a complete directory to the next version number under `base` with
/// `rename` (which never replaces its target), trying higher numbers while
/// other exporters take them.
fn rename_to_next_version(
    base: &Path,
    next: NextVersion,
    mut rename: impl FnMut(&Path) -> savedmodel_staged::Result<()>,
) -> Result<Published> {
    for _ in 0..MAX_RENAME_ATTEMPTS {
        let listing = BaseListing::read(base)?;
        let version = next_version(&listing, next)?;
        let target = base.join(version.to_string());
        match rename(&target) {
            Ok(()) => {
                return Ok(Published {
                    version,
                    path: target,
                });
            }
            Err(savedmodel_staged::Error::TargetExists { .. }) => {
                if let NextVersion::Explicit(_) = next {
                    return Err(Error::VersionExists {
                        base: base.to_path_buf(),
                        version,
                        existing: version.to_string(),
                    });
                }
            }
            Err(e @ savedmodel_staged::Error::SyncDir { .. }) => {
                let action = if e.path() == base {
                    "fsync base path"
                } else {
                    "fsync directory"
                };
                return Err(Error::staged(action, e));
            }
            Err(e) => {
                return Err(Error::io(
                    "rename staging directory to",
                    target,
                    e.into_source(),
                ));
            }
        }
    }
    Err(Error::TooManyAttempts {
        base: base.to_path_buf(),
        attempts: MAX_RENAME_ATTEMPTS,
        why: "every version number tried was taken by another exporter",
    })
}

/// A locked staging directory, removed on drop unless committed.
struct Staging {
    /// Declared before the lock, so dropped first: an uncommitted directory
    /// is removed (best effort; what remains is removed by gc) while the
    /// lock is still held.
    dir: StagedDir,
    /// Holds the `flock` for the life of the publish; closed (and so
    /// unlocked) after the directory is removed.
    _lock: File,
}

/// How many fresh staging names to try before giving up (only reached when
/// something removes every staging directory as soon as it is made).
const MAX_STAGING_ATTEMPTS: u32 = 100;

impl Staging {
    fn create(base: &Path) -> Result<Self> {
        let pid = std::process::id();
        for _ in 0..MAX_STAGING_ATTEMPTS {
            let path = base.join(format!("{STAGING_PREFIX}{pid}-{:016x}", random_u64()));
            match fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(staging_create_error(base, path, e)),
            }
            // From here until the lock is held, a concurrent gc may take the
            // directory for a dead exporter's and remove it; then we start
            // over under a new name.
            let lock = match sys::open_dir(&path) {
                Ok(lock) => lock,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    let _ = fs::remove_dir(&path);
                    return Err(Error::io("open staging directory", path, e));
                }
            };
            let locked = match sys::try_lock_exclusive(&lock) {
                Ok(locked) => locked,
                Err(e) => {
                    drop(lock);
                    let _ = fs::remove_dir(&path);
                    return Err(Error::io("lock staging directory", path, e));
                }
            };
            if !locked {
                // Someone else holds it: a gc removing it, or one checking
                // whether it is live (listing, dry run). It is still empty;
                // whoever gets there first removes it.
                drop(lock);
                let _ = fs::remove_dir(&path);
                continue;
            }
            let ours = lock.metadata().ok().map(|m| sys::identity(&m));
            let at_path = fs::symlink_metadata(&path).ok().map(|m| sys::identity(&m));
            if ours.is_some() && ours == at_path {
                return Ok(Staging {
                    dir: StagedDir::adopt(path),
                    _lock: lock,
                });
            }
        }
        Err(Error::TooManyAttempts {
            base: base.to_path_buf(),
            attempts: MAX_STAGING_ATTEMPTS,
            why: "every staging directory made was removed or locked by another process \
                  before this one could lock it",
        })
    }
}

/// The error for a failed `mkdir` of a staging directory: permission
/// problems are the base path's.
fn staging_create_error(base: &Path, staging: PathBuf, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            Error::BaseNotWritable {
                path: base.to_path_buf(),
                source: e,
            }
        }
        _ => Error::io("create staging directory", staging, e),
    }
}

/// Fsyncs every regular file and directory under `root`, then `root` itself,
/// without following symbolic links. Returns whether `root` has any entry.
pub(crate) fn sync_tree(root: &Path) -> Result<bool> {
    let mut dirs = vec![root.to_path_buf()];
    let mut visited = Vec::new();
    let mut any_entry = false;
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| Error::io("list directory", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list directory", &dir, e))?;
            if dir == root {
                any_entry = true;
            }
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|e| Error::io("read file type of", &path, e))?;
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() {
                let file = File::open(&path).map_err(|e| Error::io("fsync file", &path, e))?;
                savedmodel_staged::sync_file(&file, &path)
                    .map_err(|e| Error::io("fsync file", &path, e.into_source()))?;
            }
            // Symbolic links and other entries are made durable by the
            // fsync of the directory holding them.
        }
        visited.push(dir);
    }
    for dir in visited.iter().rev() {
        sync_dir(dir).map_err(|e| Error::staged("fsync directory", e))?;
    }
    Ok(any_entry)
}

/// Copies the tree under `src` into the existing directory `dst`: regular
/// files (with their permissions) and directories. Symbolic links are
/// followed, so `dst` holds copies of what they point at; a dangling link, or
/// one leading back to a directory already being copied (a loop), is an
/// error.
pub(crate) fn copy_tree(src: &Path, dst: &Path, outside_links: OutsideLinks) -> Result<()> {
    let src_real = fs::canonicalize(src).map_err(|e| Error::io("resolve", src, e))?;
    let mut copied_dirs = std::collections::HashSet::from([src_real.clone()]);
    let mut stack = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((from_dir, to_dir)) = stack.pop() {
        let entries =
            fs::read_dir(&from_dir).map_err(|e| Error::io("list directory", &from_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list directory", &from_dir, e))?;
            let from = entry.path();
            let to = to_dir.join(entry.file_name());
            let mut kind = entry
                .file_type()
                .map_err(|e| Error::io("read file type of", &from, e))?;
            if kind.is_symlink() {
                kind = match fs::metadata(&from) {
                    Ok(meta) => meta.file_type(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(Error::UnpublishableSymlink {
                            link: from,
                            reason: "it dangles",
                        });
                    }
                    Err(e) => return Err(Error::io("follow symbolic link", &from, e)),
                };
                if outside_links == OutsideLinks::Refuse {
                    let target =
                        fs::canonicalize(&from).map_err(|e| Error::io("resolve", &from, e))?;
                    if !target.starts_with(&src_real) {
                        return Err(Error::LinkLeadsOutside { link: from, target });
                    }
                }
            }
            if kind.is_dir() {
                let real = fs::canonicalize(&from).map_err(|e| Error::io("resolve", &from, e))?;
                if !copied_dirs.insert(real) {
                    return Err(Error::UnpublishableSymlink {
                        link: from,
                        reason: "it leads to a directory that is already being copied (a loop, \
                                 or a second link to the same directory)",
                    });
                }
                fs::create_dir(&to).map_err(|e| Error::io("create directory", &to, e))?;
                stack.push((from, to));
            } else if kind.is_file() {
                fs::copy(&from, &to).map_err(|e| Error::io("copy file", &from, e))?;
            } else {
                return Err(Error::UnsupportedFileType { path: from });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
