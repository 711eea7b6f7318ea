//! Garbage collection: staging directories of dead exporters, and versions
//! beyond what a retention rule keeps.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use savedmodel_staged::{random_u64, rename_no_replace, sync_dir};

use crate::error::{Error, Result};
use crate::listing::{BaseListing, ChildKind, REMOVING_PREFIX, VersionChild};
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
}

/// What [`collect_garbage`] removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Whether this was a dry run (nothing was removed).
    pub dry_run: bool,
    /// Staging or removal directories of dead processes.
    pub removed_leftovers: Vec<PathBuf>,
    /// Staging or removal directories still locked by a live process, left
    /// alone.
    pub live_leftovers: Vec<PathBuf>,
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

/// Removes what dead exporters left in `base` and, with
/// [`GcOptions::keep_latest`], old versions.
///
/// A staging directory is removed only if its `flock` can be taken, that
/// is, only if the exporter that made it is gone. Versions are removed by
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
        if leftover.kind != ChildKind::Directory {
            // We only ever make directories under these names.
            continue;
        }
        let path = base.join(&leftover.name);
        match remove_if_dead(&path, options.dry_run)? {
            Removal::Removed => report.removed_leftovers.push(path),
            Removal::Busy => report.live_leftovers.push(path),
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
            Removal::Gone => {}
        }
    }

    if !options.dry_run
        && (!report.removed_leftovers.is_empty() || !report.removed_versions.is_empty())
    {
        sync_dir(base).map_err(|e| Error::staged("fsync base path", e))?;
    }
    Ok(report)
}

/// Whether a live process holds the staging or removal directory at `path`
/// (its exporter or gc is still running). Takes and releases the lock, so it
/// is only a snapshot. A path that no longer exists is not in use.
pub fn leftover_in_use(path: &Path) -> Result<bool> {
    let dir = match sys::open_dir(path) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("open leftover directory", path, e)),
    };
    let locked =
        sys::try_lock_exclusive(&dir).map_err(|e| Error::io("lock leftover directory", path, e))?;
    Ok(!locked)
}

enum Removal {
    Removed,
    Busy,
    Gone,
}

/// Locks the directory at `path` and removes it if no one else holds the
/// lock.
fn remove_if_dead(path: &Path, dry_run: bool) -> Result<Removal> {
    let dir = match sys::open_dir(path) {
        Ok(dir) => dir,
        // Renamed into place or removed since the listing.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removal::Gone),
        Err(e) => return Err(Error::io("open leftover directory", path, e)),
    };
    if !sys::try_lock_exclusive(&dir).map_err(|e| Error::io("lock leftover directory", path, e))? {
        return Ok(Removal::Busy);
    }
    if !still_at(path, &dir) {
        return Ok(Removal::Gone);
    }
    if !dry_run {
        // The lock stays held (by `dir`) until the directory is gone. An
        // exporter that made it but lost the race for the lock may remove it
        // at the same time (it is empty then).
        match fs::remove_dir_all(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removal::Gone),
            Err(e) => return Err(Error::io("remove leftover directory", path, e)),
        }
    }
    Ok(Removal::Removed)
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
