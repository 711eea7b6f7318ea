//! Removing what failed publishes left (version directories without
//! `saved_model.pb`, once older than a grace period) and, on request, old
//! versions.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;

use crate::error::Result;
use crate::listing::{COMMIT_FILE, RemoteListing, RemoteVersion};
use crate::publish::manifest_key;
use crate::remote::RemoteBase;

/// What [`collect_remote_garbage`] removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteGcOptions {
    /// An incomplete version is removed only when nothing was written to it
    /// (nor its claim) for this long: a publish still uploading must not
    /// lose its files. Must exceed the longest publish.
    pub grace: Duration,
    /// Keep only the highest `n` complete versions, plus [`keep`](Self::keep).
    /// `None` removes no complete version.
    pub keep_latest: Option<usize>,
    /// Versions never removed.
    pub keep: BTreeSet<i64>,
    /// Report, remove nothing.
    pub dry_run: bool,
}

impl Default for RemoteGcOptions {
    /// A grace period of one day, no retention rule.
    fn default() -> Self {
        RemoteGcOptions {
            grace: Duration::from_secs(24 * 3600),
            keep_latest: None,
            keep: BTreeSet::new(),
            dry_run: false,
        }
    }
}

/// What [`collect_remote_garbage`] removed (or would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteGcReport {
    /// Whether nothing was removed.
    pub dry_run: bool,
    /// Incomplete versions older than the grace period, removed.
    pub removed_incomplete: Vec<String>,
    /// Incomplete versions younger than the grace period, left (a publish
    /// may be uploading them).
    pub young_incomplete: Vec<String>,
    /// Complete versions removed by the retention rule.
    pub removed_versions: Vec<String>,
    /// Complete versions kept.
    pub kept_versions: Vec<i64>,
}

/// Removes incomplete versions older than `options.grace` and, with
/// `keep_latest`, old complete versions (their `saved_model.pb` first, so
/// they stop being loadable before anything else goes). Claims stay, so a
/// number is never used twice.
pub async fn collect_remote_garbage(
    base: &RemoteBase,
    options: &RemoteGcOptions,
) -> Result<RemoteGcReport> {
    let listing = RemoteListing::read(base).await?;
    let now = SystemTime::now();
    let mut report = RemoteGcReport {
        dry_run: options.dry_run,
        ..RemoteGcReport::default()
    };
    for version in listing.versions().iter().filter(|v| !v.complete) {
        let age = version
            .last_written
            .and_then(|w| now.duration_since(w).ok())
            .unwrap_or_default();
        if age >= options.grace {
            if !options.dry_run {
                remove_version(base, version).await?;
            }
            report.removed_incomplete.push(version.name.clone());
        } else {
            report.young_incomplete.push(version.name.clone());
        }
    }
    let complete = listing.complete();
    if let Some(n) = options.keep_latest {
        let kept_by_count: BTreeSet<i64> = complete.keys().rev().take(n.max(1)).copied().collect();
        for (number, version) in &complete {
            if kept_by_count.contains(number) || options.keep.contains(number) {
                report.kept_versions.push(*number);
                continue;
            }
            if !options.dry_run {
                remove_version(base, version).await?;
            }
            report.removed_versions.push(version.name.clone());
        }
    } else {
        report.kept_versions = complete.keys().copied().collect();
    }
    Ok(report)
}

/// Deletes a version directory's objects: the commit file first, then the
/// others, then its manifest.
pub(crate) async fn remove_version(base: &RemoteBase, version: &RemoteVersion) -> Result<()> {
    for commit in [COMMIT_FILE, "saved_model.pbtxt"] {
        if version.files.iter().any(|f| f.path == commit) {
            let key = base.key(&format!("{}/{commit}", version.name));
            base.store()
                .delete(&key)
                .await
                .map_err(|e| base.store_error("delete", &key, e))?;
        }
    }
    let dir = base.key(&version.name);
    let locations = base
        .store()
        .list(Some(&dir))
        .map_ok(|meta| meta.location)
        .boxed();
    let mut deleted = base.store().delete_stream(locations);
    while let Some(result) = deleted.next().await {
        result.map_err(|e| base.store_error("delete", &dir, e))?;
    }
    let manifest = manifest_key(base, version.version);
    match base.store().delete(&manifest).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(base.store_error("delete", &manifest, e)),
    }
}
