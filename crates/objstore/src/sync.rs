//! Mirroring complete versions between a bucket and a local base path, in
//! either direction, and downloading one SavedModel directory.
//!
//! Downloads go to `<local base>/.savedmodel-sync-<N>/` (a name Serving
//! ignores), each file to `<file>.partial` renamed when complete and
//! checked, so a failed sync resumes without fetching finished files; the
//! directory then becomes version `N` through `savedmodel-layout`'s atomic
//! publish. Uploads go through the publish protocol ([`crate::publish_remote`])
//! with the local version's number, resuming a version that an earlier
//! `sync` claimed and did not finish.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use savedmodel_layout::{
    BaseListing, NextVersion, OutsideLinks, PublishMode, publish_dir, remove_version_child,
};

use crate::error::{Error, Result};
use crate::gc::remove_version;
use crate::listing::{COMMIT_FILE, RemoteFile, RemoteListing};
use crate::publish::{
    Manifest, claim_version, local_files, read_claim, read_manifest, upload_version,
};
use crate::remote::RemoteBase;
use crate::transfer::{Progress, Transfer, TransferOptions, download_file};

/// The name prefix of a download in progress inside a local base path.
pub const SYNC_PREFIX: &str = ".savedmodel-sync-";

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Versions copied to the destination.
    pub copied: Vec<i64>,
    /// Versions already complete at the destination.
    pub present: Vec<i64>,
    /// Versions removed from the destination (`delete`).
    pub deleted: Vec<i64>,
    /// Versions the destination holds under another publisher's claim or
    /// with other contents, left alone.
    pub conflicts: Vec<i64>,
    /// Bytes transferred.
    pub bytes: u64,
}

/// Options of [`sync_down`] and [`sync_up`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Remove complete versions at the destination that the source does
    /// not have.
    pub delete: bool,
    /// Parts and concurrency.
    pub transfer: TransferOptions,
}

/// Checks a path inside a version directory read from a bucket: relative,
/// no `.` or `..` or empty segment, so it stays inside the directory.
fn confined(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// Downloads the files of one version directory into `dir`, skipping files
/// already there with the right size (and MD5, when the manifest gives it).
async fn download_files(
    base: &RemoteBase,
    version_dir: &str,
    files: &[RemoteFile],
    manifest: Option<&Manifest>,
    dir: &Path,
    options: TransferOptions,
    progress: &dyn Progress,
) -> Result<u64> {
    let transfer = Transfer::new(base, options, progress);
    let total: u64 = files.iter().map(|f| f.size).sum();
    progress.start(files.len() as u64, total);
    let transfer_ref = &transfer;
    let sizes: Vec<u64> = futures::stream::iter(files)
        .map(|file| async move {
            let key = base.key(&format!("{version_dir}/{}", file.path));
            if !confined(&file.path) {
                return Err(Error::BadMetadata {
                    url: base.url_of(&key),
                    reason: "the key does not name a file inside the version directory".to_owned(),
                });
            }
            let target = dir.join(&file.path);
            let expected = manifest
                .and_then(|m| m.files.get(&file.path))
                .filter(|m| m.size == file.size)
                .map(|m| (m.md5_etag.as_str(), m.part_size));
            let done = match std::fs::metadata(&target) {
                Ok(meta) if meta.len() == file.size => match expected {
                    Some((etag, part_size)) => {
                        crate::transfer::md5_etag_of(&target, file.size, part_size).await? == etag
                    }
                    None => true,
                },
                _ => false,
            };
            let sent = if done {
                transfer_ref.progress.advance(file.size);
                0
            } else {
                download_file(transfer_ref, &key, file.size, expected, &target).await?;
                file.size
            };
            transfer_ref.progress.file_done();
            Ok(sent)
        })
        .buffer_unordered(transfer.options.files_in_flight)
        .try_collect()
        .await?;
    Ok(sizes.iter().sum())
}

/// Downloads the SavedModel directory at `dir` (a version directory in a
/// bucket, `s3://bucket/models/mnist/3`) into the local directory `target`
/// (created), checking sizes and, when the base path's manifest is found,
/// MD5s. Refuses a directory without `saved_model.pb`.
pub async fn download_saved_model(
    dir: &RemoteBase,
    target: &Path,
    options: TransferOptions,
    progress: &dyn Progress,
) -> Result<u64> {
    let listed: Vec<_> = dir
        .store()
        .list(Some(dir.prefix()))
        .try_collect()
        .await
        .map_err(|e| dir.store_error("list", dir.prefix(), e))?;
    let files: Vec<RemoteFile> = listed
        .into_iter()
        .map(|meta| RemoteFile {
            path: dir.relative(&meta.location).to_owned(),
            size: meta.size,
            e_tag: meta.e_tag,
        })
        .collect();
    if !files
        .iter()
        .any(|f| f.path == COMMIT_FILE || f.path == "saved_model.pbtxt")
    {
        return Err(Error::NotSavedModel {
            path: PathBuf::from(dir.to_string()),
        });
    }
    std::fs::create_dir_all(target).map_err(|source| Error::Io {
        action: "create directory",
        path: target.to_path_buf(),
        source,
    })?;
    download_files(dir, "", &files, None, target, options, progress).await
}

/// Mirrors the complete versions of the bucket base path `src` into the
/// local base path `dst` (which must exist). Each version appears under its
/// number only when complete; a failed sync resumes where it stopped.
pub async fn sync_down(
    src: &RemoteBase,
    dst: &Path,
    options: SyncOptions,
    progress: &dyn Progress,
) -> Result<SyncReport> {
    let remote = RemoteListing::read(src).await?;
    let local = BaseListing::read(dst)?;
    let mut report = SyncReport::default();
    let complete = remote.complete();
    for (&number, version) in &complete {
        if local.find(number).is_some() {
            report.present.push(number);
            continue;
        }
        let partial = dst.join(format!("{SYNC_PREFIX}{number}"));
        let manifest = read_manifest(src, number).await?;
        report.bytes += download_files(
            src,
            &version.name,
            &version.files,
            manifest.as_ref(),
            &partial,
            options.transfer,
            progress,
        )
        .await?;
        publish_dir(
            &partial,
            dst,
            NextVersion::Explicit(number),
            PublishMode::Move,
            OutsideLinks::Refuse,
        )?;
        report.copied.push(number);
    }
    if options.delete {
        let local = BaseListing::read(dst)?;
        for child in local.version_children() {
            if !complete.contains_key(&child.version) && remove_version_child(dst, child)? {
                report.deleted.push(child.version);
            }
        }
    }
    Ok(report)
}

/// Mirrors the complete versions of the local base path `src` into the
/// bucket base path `dst`, each through the publish protocol under its own
/// number.
pub async fn sync_up(
    src: &Path,
    dst: &RemoteBase,
    options: SyncOptions,
    progress: &dyn Progress,
) -> Result<SyncReport> {
    let local = BaseListing::read(src)?;
    let remote = RemoteListing::read(dst).await?;
    let complete = remote.complete();
    let mut report = SyncReport::default();
    let mut local_versions = BTreeSet::new();
    for (&number, child) in &local.versions() {
        if !local.holds_saved_model(child) {
            continue;
        }
        local_versions.insert(number);
        if complete.contains_key(&number) {
            report.present.push(number);
            continue;
        }
        let mut resume = None;
        if remote.taken(number) {
            let ours = read_claim(dst, number)
                .await?
                .is_some_and(|claim| claim.by == "sync");
            if !ours {
                report.conflicts.push(number);
                continue;
            }
            let existing: BTreeMap<String, Option<String>> = remote
                .find(number)
                .map(|v| {
                    v.files
                        .iter()
                        .map(|f| (f.path.clone(), f.e_tag.clone()))
                        .collect()
                })
                .unwrap_or_default();
            resume = Some(existing);
        } else {
            match claim_version(dst, &remote, NextVersion::Explicit(number), "sync").await {
                Ok(_) => {}
                Err(Error::VersionExists { .. }) => {
                    report.conflicts.push(number);
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        let dir = src.join(&child.name);
        let files = local_files(&dir)?;
        let published = upload_version(
            &dir,
            &files,
            dst,
            number,
            options.transfer,
            progress,
            resume.as_ref(),
        )
        .await?;
        report.bytes += published.bytes;
        report.copied.push(number);
    }
    if options.delete {
        for (&number, version) in &complete {
            if !local_versions.contains(&number) {
                remove_version(dst, version).await?;
                report.deleted.push(number);
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::confined;

    #[test]
    fn keys_stay_inside_the_version() {
        assert!(confined("variables/variables.index"));
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a"] {
            assert!(!confined(bad), "{bad}");
        }
    }
}
