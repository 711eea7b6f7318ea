//! Garbage collection: the temporaries killed writers left (exporters,
//! checkpoint writers, `models.config` saves, gc itself), and versions
//! beyond what a retention rule keeps.
//!
//! # Which leftovers go
//!
//! A child of the listed directory is a leftover when its name is one our
//! writers give their temporaries ([`LeftoverKind`]):
//!
//! | name | made by | kind |
//! |---|---|---|
//! | `.savedmodel-staging-<pid>-<16 hex>` | `publish` (`export`, `publish`) | directory |
//! | `.savedmodel-removing-<pid>-<16 hex>` | gc removing a version | directory |
//! | `.<name>.tmp-<16 hex>` | `StagedDir`: `SavedModelBuilder::write_to`, `ShardedBundleWriter` | directory |
//! | `<name>.tempstate<u64>` | `StagedFile`: checkpoint `BundleWriter`, `ckpt convert`; TensorFlow's `BundleWriter` | file |
//! | `.<name>.tmp-<pid>-<16 hex>` | `ModelsConfig::save` | file |
//!
//! None of these parses as a version, so Serving never loads one. Each of
//! our writers creates its temporary anew (`O_EXCL`, `mkdir`), takes an
//! exclusive `flock` on it at once and holds it for as long as it lives;
//! the kernel drops the lock when the process dies, SIGKILL included
//! (`savedmodel_staged::try_lock_exclusive`'s module describes the
//! protocol, including the instant between creation and lock). A
//! leftover is removed only when all of these hold:
//!
//! 1. it is of the kind its name says (a directory, or a regular file; a
//!    symbolic link is never followed nor removed);
//! 2. nothing in it was modified for [`GcOptions::grace`]: the newest
//!    modification time of the entry and, for a directory, of everything
//!    under it. This is what protects a writer that takes no lock
//!    (TensorFlow's `BundleWriter`, or a file system without `flock`);
//! 3. its `flock` can be taken: no live writer holds it;
//! 4. the name still leads to the inode locked (it was not renamed into
//!    place and replaced meanwhile).
//!
//! The lock is held until the leftover is gone. Only the listed directory
//! itself is searched: run gc on a base path, on a checkpoint's directory,
//! or on the directory holding `models.config`.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use savedmodel_staged::{random_u64, rename_no_replace, sync_dir};

use crate::error::{Error, Result};
use crate::listing::{BaseListing, ChildKind, LeftoverKind, REMOVING_PREFIX, VersionChild};
use crate::sys;

/// What [`collect_garbage`] removes besides dead exporters' leftovers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcOptions {
    /// Keep only the highest `n` versions that hold a SavedModel (by number;
    /// duplicates such as `7` and `007` count as one), plus those in
    /// [`keep`](Self::keep). `None` removes no version. Must be at least 1.
    ///
    /// A version whose child (the one Serving loads) is not a directory
    /// holding `saved_model.pb` or `saved_model.pbtxt` does not count toward
    /// `n` and is never removed: Serving fails to load it and goes on
    /// serving an older version, which therefore must stay.
    pub keep_latest: Option<usize>,
    /// Versions never removed, e.g. those named in `models.config` or pinned
    /// by a label ([`ModelsConfig::versions_to_keep`](crate::ModelsConfig::versions_to_keep)).
    pub keep: BTreeSet<i64>,
    /// Report what would be removed without removing anything.
    pub dry_run: bool,
    /// Leave a leftover in which anything was modified this recently (see
    /// the module documentation). Zero removes every leftover no live
    /// writer holds; the CLI's default is a day.
    pub grace: Duration,
}

/// What [`collect_garbage`] removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Whether this was a dry run (nothing was removed).
    pub dry_run: bool,
    /// Leftovers of dead writers, removed.
    pub removed_leftovers: Vec<PathBuf>,
    /// Leftovers still locked by a live writer, left alone.
    pub live_leftovers: Vec<PathBuf>,
    /// Leftovers modified within the grace period, left alone.
    pub young_leftovers: Vec<PathBuf>,
    /// Version children removed by the retention rule.
    pub removed_versions: Vec<VersionChild>,
    /// Version children the retention rule would remove but that a live
    /// process holds (an exporter finishing its publish, or another gc).
    pub busy_versions: Vec<VersionChild>,
    /// Version numbers kept.
    pub kept_versions: Vec<i64>,
    /// Kept versions whose child (the one Serving loads) holds no SavedModel;
    /// see [`GcOptions::keep_latest`]. Only filled when `keep_latest` is set.
    pub unusable_versions: Vec<VersionChild>,
}

/// Removes what dead writers left in `base` and, with
/// [`GcOptions::keep_latest`], old versions.
///
/// A leftover is removed only when it is older than [`GcOptions::grace`]
/// and its `flock` can be taken, that is, only if the writer that made it
/// is gone (the module documentation has the rule). Versions are removed by
/// first renaming them (locked) to a name Serving ignores, so Serving never
/// sees a half-deleted version either.
///
/// ```
/// use savedmodel_layout::{GcOptions, NextVersion, collect_garbage, publish};
///
/// let base = tempfile::tempdir()?;
/// for _ in 0..3 {
///     publish(base.path(), NextVersion::Increment, |dir| {
///         std::fs::write(dir.join("saved_model.pb"), b"...")
///     })?;
/// }
/// let options = GcOptions { keep_latest: Some(2), ..GcOptions::default() };
/// let report = collect_garbage(base.path(), &options)?;
/// assert_eq!(report.removed_versions.len(), 1);
/// assert_eq!(report.kept_versions, [2, 3]);
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn collect_garbage(base: &Path, options: &GcOptions) -> Result<GcReport> {
    if options.keep_latest == Some(0) {
        return Err(Error::InvalidArgument {
            what: "number of versions to keep",
            text: "0".to_owned(),
            reason: "keeping no version would leave Serving nothing to load; keep at least 1"
                .to_owned(),
        });
    }
    let listing = BaseListing::read(base)?;
    let mut report = GcReport {
        dry_run: options.dry_run,
        ..GcReport::default()
    };

    for leftover in listing.leftovers() {
        if leftover.kind != leftover.leftover.child_kind() {
            // Our writers never make this kind of thing under this name.
            continue;
        }
        let path = base.join(&leftover.name);
        match remove_if_dead(&path, leftover.leftover, options.grace, options.dry_run)? {
            Removal::Removed => report.removed_leftovers.push(path),
            Removal::Busy => report.live_leftovers.push(path),
            Removal::Young => report.young_leftovers.push(path),
            Removal::Gone => {}
        }
    }

    let versions = listing.versions();
    let kept: BTreeSet<i64> = match options.keep_latest {
        None => versions.keys().copied().collect(),
        Some(n) => {
            let (usable, unusable): (Vec<_>, Vec<_>) = versions
                .iter()
                .partition(|(_, child)| listing.holds_saved_model(child));
            report.unusable_versions = unusable
                .iter()
                .map(|(_, c)| VersionChild::clone(c))
                .collect();
            usable
                .iter()
                .rev()
                .take(n)
                .map(|(v, _)| **v)
                .chain(unusable.iter().map(|(v, _)| **v))
                .chain(
                    options
                        .keep
                        .iter()
                        .copied()
                        .filter(|v| versions.contains_key(v)),
                )
                .collect()
        }
    };
    report.kept_versions = kept.iter().copied().collect();
    for child in listing.version_children() {
        if kept.contains(&child.version) {
            continue;
        }
        match remove_version(base, child, options.dry_run)? {
            Removal::Removed => report.removed_versions.push(child.clone()),
            Removal::Busy => report.busy_versions.push(child.clone()),
            // (Versions have no grace period.)
            Removal::Gone | Removal::Young => {}
        }
    }

    if !options.dry_run
        && (!report.removed_leftovers.is_empty() || !report.removed_versions.is_empty())
    {
        sync_dir(base).map_err(|e| Error::staged("fsync base path", e))?;
    }
    Ok(report)
}

/// Whether a live process holds the leftover at `path` (a directory or a
/// file; its writer or gc is still running). Takes and releases the lock,
/// so it is only a snapshot. A path that no longer exists is not in use.
pub fn leftover_in_use(path: &Path) -> Result<bool> {
    let is_dir = match fs::symlink_metadata(path) {
        Ok(meta) => meta.is_dir(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("inspect leftover", path, e)),
    };
    let open = if is_dir {
        sys::open_dir(path)
    } else {
        sys::open_file(path)
    };
    let handle = match open {
        Ok(handle) => handle,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("open leftover", path, e)),
    };
    let locked =
        sys::try_lock_exclusive(&handle).map_err(|e| Error::io("lock leftover", path, e))?;
    Ok(!locked)
}

/// How long ago anything in the leftover at `path` was modified: the
/// newest modification time of `path` and, for a directory, of everything
/// under it (symbolic links not followed). Zero for a time in the future.
pub fn leftover_age(path: &Path) -> Result<Duration> {
    let newest = newest_mtime(path).map_err(|e| Error::io("inspect leftover", path, e))?;
    Ok(SystemTime::now()
        .duration_since(newest)
        .unwrap_or(Duration::ZERO))
}

fn newest_mtime(path: &Path) -> io::Result<SystemTime> {
    let meta = fs::symlink_metadata(path)?;
    let mut newest = meta.modified()?;
    if !meta.is_dir() {
        return Ok(newest);
    }
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            // Removed meanwhile: what remains decides.
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if let Ok(modified) = meta.modified() {
                newest = newest.max(modified);
            }
            if meta.is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    Ok(newest)
}

enum Removal {
    Removed,
    Busy,
    Young,
    Gone,
}

/// Removes the leftover at `path` if it is old enough and no one holds its
/// lock (the rule in the module documentation).
fn remove_if_dead(
    path: &Path,
    kind: LeftoverKind,
    grace: Duration,
    dry_run: bool,
) -> Result<Removal> {
    let is_dir = kind.child_kind() == ChildKind::Directory;
    let open = if is_dir {
        sys::open_dir(path)
    } else {
        sys::open_file(path)
    };
    let handle = match open {
        Ok(handle) => handle,
        // Renamed into place or removed since the listing.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removal::Gone),
        // Replaced by a symbolic link, or by something of the other kind.
        Err(_) if !kind_matches(path, is_dir) => return Ok(Removal::Gone),
        Err(e) => return Err(Error::io("open leftover", path, e)),
    };
    let right_kind = |m: fs::Metadata| if is_dir { m.is_dir() } else { m.is_file() };
    if !handle.metadata().is_ok_and(right_kind) {
        return Ok(Removal::Gone);
    }
    // The age first: a young leftover is not even locked, so a writer that
    // just created it never finds a collector holding it.
    match leftover_age(path) {
        Ok(age) if age < grace => return Ok(Removal::Young),
        Ok(_) => {}
        Err(_) if !path.exists() => return Ok(Removal::Gone),
        Err(e) => return Err(e),
    }
    if !sys::try_lock_exclusive(&handle).map_err(|e| Error::io("lock leftover", path, e))? {
        return Ok(Removal::Busy);
    }
    if !still_at(path, &handle) {
        return Ok(Removal::Gone);
    }
    if !dry_run {
        // The lock stays held (by `handle`) until the leftover is gone. A
        // writer that made it but lost the race for the lock waits for the
        // name to be free (savedmodel_staged's lock protocol; publish's
        // staging directory does the same).
        let removed = if is_dir {
            fs::remove_dir_all(path)
        } else {
            fs::remove_file(path)
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removal::Gone),
            Err(e) => return Err(Error::io("remove leftover", path, e)),
        }
    }
    Ok(Removal::Removed)
}

/// Whether `path` (not followed) is a directory when `is_dir`, a regular
/// file otherwise.
fn kind_matches(path: &Path, is_dir: bool) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| if is_dir { m.is_dir() } else { m.is_file() })
}

/// Whether `path` still names the directory open as `dir`.
fn still_at(path: &Path, dir: &fs::File) -> bool {
    let ours = dir.metadata().ok().map(|m| sys::identity(&m));
    let at_path = fs::symlink_metadata(path).ok().map(|m| sys::identity(&m));
    ours.is_some() && ours == at_path
}

/// Removes the version child `child` of `base` as [`collect_garbage`]
/// removes old versions (moved out of Serving's sight first, then deleted).
/// Returns `false` when a live process holds it or it is already gone.
pub fn remove_version_child(base: &Path, child: &VersionChild) -> Result<bool> {
    let removed = matches!(remove_version(base, child, false)?, Removal::Removed);
    if removed {
        sync_dir(base).map_err(|e| Error::staged("fsync base path", e))?;
    }
    Ok(removed)
}

/// Removes one version child without Serving ever seeing it half-deleted: a
/// directory is locked, renamed to a `.savedmodel-removing-…` name, the base
/// fsynced, and then deleted; files and links are unlinked in one step.
fn remove_version(base: &Path, child: &VersionChild, dry_run: bool) -> Result<Removal> {
    let path = base.join(&child.name);
    if child.kind != ChildKind::Directory {
        if dry_run {
            return Ok(Removal::Removed);
        }
        return match fs::remove_file(&path) {
            Ok(()) => Ok(Removal::Removed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Removal::Gone),
            Err(e) => Err(Error::io("remove version", path, e)),
        };
    }
    let dir = match sys::open_dir(&path) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removal::Gone),
        Err(e) => return Err(Error::io("open version directory", path, e)),
    };
    if !sys::try_lock_exclusive(&dir).map_err(|e| Error::io("lock version directory", &path, e))? {
        return Ok(Removal::Busy);
    }
    if !still_at(&path, &dir) {
        return Ok(Removal::Gone);
    }
    if dry_run {
        return Ok(Removal::Removed);
    }
    let trash = loop {
        let trash = base.join(format!(
            "{REMOVING_PREFIX}{}-{:016x}",
            std::process::id(),
            random_u64()
        ));
        match rename_no_replace(&path, &trash) {
            Ok(()) => break trash,
            Err(savedmodel_staged::Error::TargetExists { .. }) => continue,
            Err(e) => {
                return Err(Error::io(
                    "move version out of Serving's sight to",
                    trash,
                    e.into_source(),
                ));
            }
        }
    };
    sync_dir(base).map_err(|e| Error::staged("fsync base path", e))?;
    fs::remove_dir_all(&trash).map_err(|e| Error::io("remove old version", trash, e))?;
    Ok(Removal::Removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NextVersion, publish};

    fn publish_n(base: &Path, n: usize) {
        for _ in 0..n {
            publish(base, NextVersion::Increment, |dir| {
                fs::write(dir.join("saved_model.pb"), b"g")
            })
            .unwrap();
        }
    }

    fn names(base: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(base)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_killed_builders_staging_directory_goes_and_a_live_ones_stays() {
        let base = tempfile::tempdir().unwrap();
        publish_n(base.path(), 1);
        // What SavedModelBuilder::write_to(base/2) stages into while it runs.
        let live = savedmodel_staged::StagedDir::create(&base.path().join("2")).unwrap();
        fs::write(live.path().join("saved_model.pb"), b"half").unwrap();
        // What a killed one left: the same name form, nobody holding it.
        let dead = base.path().join(".3.tmp-00000000deadbeef");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("saved_model.pb"), b"half").unwrap();

        let report = collect_garbage(base.path(), &GcOptions::default()).unwrap();
        assert_eq!(report.removed_leftovers, std::slice::from_ref(&dead));
        assert_eq!(report.live_leftovers, [live.path().to_path_buf()]);
        assert!(!dead.exists());
        assert!(live.path().join("saved_model.pb").exists());
        drop(live);
        assert_eq!(names(base.path()), ["1"]);
    }

    #[test]
    fn temporary_files_go_after_the_grace_period_unless_locked() {
        let base = tempfile::tempdir().unwrap();
        let ago = |path: &Path, secs: u64| {
            let file = fs::File::options().write(true).open(path).unwrap();
            file.set_modified(SystemTime::now() - Duration::from_secs(secs))
                .unwrap();
        };
        // A live checkpoint writer's data file, a dead one's, TensorFlow's
        // (never locked), a dead models.config save's, and a stranger.
        let mut live =
            savedmodel_staged::StagedFile::create(base.path().join("live.data")).unwrap();
        std::io::Write::write_all(&mut live, b"data").unwrap();
        ago(live.temp_path(), 7200);
        let dead = base.path().join("model.index.tempstate123");
        fs::write(&dead, b"half").unwrap();
        ago(&dead, 7200);
        let young = base.path().join("model.data-00000-of-00001.tempstate456");
        fs::write(&young, b"half").unwrap();
        let config = base.path().join(".models.config.tmp-42-0123456789abcdef");
        fs::write(&config, b"model_config_list {").unwrap();
        ago(&config, 7200);
        let stranger = base.path().join("model.tempstate-notes");
        fs::write(&stranger, b"").unwrap();
        // A directory under a file's name is not ours.
        fs::create_dir(base.path().join("dir.tempstate9")).unwrap();
        fs::File::open(base.path().join("dir.tempstate9"))
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(7200))
            .unwrap();

        let hour = GcOptions {
            grace: Duration::from_secs(3600),
            ..GcOptions::default()
        };
        let report = collect_garbage(base.path(), &hour).unwrap();
        let mut removed = report.removed_leftovers.clone();
        removed.sort();
        assert_eq!(removed, [config.clone(), dead.clone()]);
        assert_eq!(report.live_leftovers, [live.temp_path().to_path_buf()]);
        assert_eq!(report.young_leftovers, std::slice::from_ref(&young));
        assert!(leftover_in_use(live.temp_path()).unwrap());
        assert!(!leftover_in_use(&young).unwrap());
        assert!(leftover_age(&young).unwrap() < Duration::from_secs(3600));

        // No grace: the young one goes, the live one stays until committed.
        let report = collect_garbage(base.path(), &GcOptions::default()).unwrap();
        assert_eq!(report.removed_leftovers, [young]);
        assert_eq!(report.live_leftovers, [live.temp_path().to_path_buf()]);
        live.commit(true).unwrap();
        assert_eq!(
            names(base.path()),
            ["dir.tempstate9", "live.data", "model.tempstate-notes"]
        );
    }

    #[test]
    fn a_directory_is_as_young_as_the_newest_thing_in_it() {
        let base = tempfile::tempdir().unwrap();
        let dead = base.path().join(".3.tmp-00000000deadbeef");
        fs::create_dir_all(dead.join("variables")).unwrap();
        let file = dead.join("variables/variables.data-00000-of-00001.tempstate1");
        fs::write(&file, b"still being written").unwrap();
        let old = SystemTime::now() - Duration::from_secs(7200);
        for dir in [&dead, &dead.join("variables")] {
            fs::File::open(dir).unwrap().set_modified(old).unwrap();
        }
        let hour = GcOptions {
            grace: Duration::from_secs(3600),
            ..GcOptions::default()
        };
        let report = collect_garbage(base.path(), &hour).unwrap();
        assert_eq!(report.young_leftovers, std::slice::from_ref(&dead));
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let report = collect_garbage(base.path(), &hour).unwrap();
        assert_eq!(report.removed_leftovers, [dead]);
    }

    #[test]
    fn removes_dead_leftovers_and_keeps_live_ones() {
        let base = tempfile::tempdir().unwrap();
        publish_n(base.path(), 1);
        let dead = base.path().join(".savedmodel-staging-1-dead");
        fs::create_dir_all(dead.join("variables")).unwrap();
        fs::write(dead.join("saved_model.pb"), b"half").unwrap();
        let dead_removal = base.path().join(".savedmodel-removing-1-dead");
        fs::create_dir(&dead_removal).unwrap();
        let live = base.path().join(".savedmodel-staging-2-live");
        fs::create_dir(&live).unwrap();
        let live_lock = sys::open_dir(&live).unwrap();
        assert!(sys::try_lock_exclusive(&live_lock).unwrap());
        // Not ours: never touched.
        fs::create_dir(base.path().join("temp-1700000000")).unwrap();
        fs::write(base.path().join(".savedmodel-staging-3-file"), b"").unwrap();

        let dry = collect_garbage(
            base.path(),
            &GcOptions {
                dry_run: true,
                ..GcOptions::default()
            },
        )
        .unwrap();
        assert_eq!(dry.removed_leftovers.len(), 2);
        assert!(dead.exists() && dead_removal.exists());

        let report = collect_garbage(base.path(), &GcOptions::default()).unwrap();
        let mut removed = report.removed_leftovers.clone();
        removed.sort();
        assert_eq!(removed, [dead_removal, dead]);
        assert_eq!(report.live_leftovers, std::slice::from_ref(&live));
        assert!(report.removed_versions.is_empty());
        assert_eq!(
            names(base.path()),
            [
                ".savedmodel-staging-2-live",
                ".savedmodel-staging-3-file",
                "1",
                "temp-1700000000"
            ]
        );
        assert!(leftover_in_use(&live).unwrap());
        drop(live_lock);
        assert!(!leftover_in_use(&live).unwrap());
        let report = collect_garbage(base.path(), &GcOptions::default()).unwrap();
        assert_eq!(report.removed_leftovers, [live]);
    }

    #[test]
    fn keeps_latest_and_pinned_versions() {
        let base = tempfile::tempdir().unwrap();
        publish_n(base.path(), 5);
        fs::create_dir(base.path().join("002")).unwrap();
        fs::write(base.path().join("0"), b"a file is a version too").unwrap();
        let options = GcOptions {
            keep_latest: Some(2),
            keep: [1, 99].into_iter().collect(),
            dry_run: true,
            grace: Duration::ZERO,
        };
        let dry = collect_garbage(base.path(), &options).unwrap();
        // 5 and 4 are the latest two, 1 is pinned, and the file 0 holds no
        // SavedModel, so it neither counts nor goes.
        assert_eq!(dry.kept_versions, [0, 1, 4, 5]);
        assert_eq!(
            dry.unusable_versions
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["0"]
        );
        let mut would: Vec<&str> = dry
            .removed_versions
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        would.sort_unstable();
        // "002" goes with version 2, whose child Serving loads is "2".
        assert_eq!(would, ["002", "2", "3"]);
        assert_eq!(names(base.path()).len(), 7);

        let report = collect_garbage(
            base.path(),
            &GcOptions {
                dry_run: false,
                ..options
            },
        )
        .unwrap();
        assert_eq!(report.removed_versions.len(), 3);
        assert_eq!(names(base.path()), ["0", "1", "4", "5"]);
    }

    #[test]
    fn versions_without_a_saved_model_neither_count_nor_go() {
        // Serving's latest policy picks 5 and 4, fails to load them, and
        // goes on serving 3: keeping "the latest 1" must keep 3.
        let base = tempfile::tempdir().unwrap();
        publish_n(base.path(), 3);
        fs::create_dir(base.path().join("4")).unwrap();
        fs::write(base.path().join("4/half_written"), b"").unwrap();
        fs::write(base.path().join("5"), b"a file").unwrap();
        // A symbolic link to a complete version is a usable version.
        let elsewhere = tempfile::tempdir().unwrap();
        fs::write(elsewhere.path().join("saved_model.pbtxt"), b"").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), base.path().join("0")).unwrap();
        let report = collect_garbage(
            base.path(),
            &GcOptions {
                keep_latest: Some(1),
                ..GcOptions::default()
            },
        )
        .unwrap();
        assert_eq!(report.kept_versions, [3, 4, 5]);
        assert_eq!(
            report
                .unusable_versions
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["4", "5"]
        );
        assert_eq!(names(base.path()), ["3", "4", "5"]);
        // The link went, not what it pointed at.
        assert!(elsewhere.path().join("saved_model.pbtxt").exists());

        // Without a retention rule nothing is checked or removed.
        let report = collect_garbage(base.path(), &GcOptions::default()).unwrap();
        assert!(report.unusable_versions.is_empty());
        assert_eq!(report.kept_versions, [3, 4, 5]);
    }

    #[test]
    fn busy_versions_are_left_alone() {
        let base = tempfile::tempdir().unwrap();
        publish_n(base.path(), 3);
        let held = sys::open_dir(&base.path().join("1")).unwrap();
        assert!(sys::try_lock_exclusive(&held).unwrap());
        let report = collect_garbage(
            base.path(),
            &GcOptions {
                keep_latest: Some(1),
                ..GcOptions::default()
            },
        )
        .unwrap();
        assert_eq!(report.busy_versions.len(), 1);
        assert_eq!(report.removed_versions.len(), 1);
        assert_eq!(names(base.path()), ["1", "3"]);
    }

    #[test]
    fn keeping_zero_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let err = collect_garbage(
            base.path(),
            &GcOptions {
                keep_latest: Some(0),
                ..GcOptions::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("keep at least 1"), "{err}");
    }
}
