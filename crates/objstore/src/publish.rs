//! Publishing a SavedModel directory as a new version of a base path in a
//! bucket, so that no lister ever sees a loadable but incomplete version.
//!
//! The protocol (docs/formats.md, section 22 "Versions in object storage"):
//! 1. Claim a number: a conditional create (`If-None-Match: *`) of
//!    `<base>/.savedmodel-claims/<N>`, outside what Serving lists. Of two
//!    publishers creating the same claim, one gets `412 Precondition
//!    Failed` and tries the next number. A claimed number whose directory
//!    already holds objects (written by another tool) is skipped too.
//! 2. Upload every file except `saved_model.pb` under `<base>/<N>/`
//!    (multipart for large files, parts and files in parallel, the memory
//!    in flight bounded), then the manifest `<base>/.savedmodel-claims/<N>.manifest`
//!    (paths, sizes, MD5s).
//! 3. List `<base>/<N>/` and check that it holds exactly those files, with
//!    their sizes and (S3) the ETags their bytes give.
//! 4. Commit: a conditional create of `<base>/<N>/saved_model.pb`.
//!
//! A publish that fails or is killed before step 4 leaves a version
//! directory without `saved_model.pb`: Serving cannot load it, `versions`
//! shows it as incomplete and `versions gc` removes it after a grace
//! period. Nothing ever overwrites an object of another version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use savedmodel_layout::NextVersion;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::listing::{COMMIT_FILE, RemoteListing, claims_dir};
use crate::remote::RemoteBase;
use crate::transfer::{Progress, Transfer, TransferOptions, etag_matches, upload_file};

/// How many numbers a publish tries before giving up.
const MAX_ATTEMPTS: u32 = 1000;

/// Where a publish to a bucket ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePublished {
    /// The version number taken.
    pub version: i64,
    /// The version directory's URL, `s3://bucket/prefix/<version>`.
    pub url: String,
    /// Files uploaded.
    pub files: u64,
    /// Bytes uploaded.
    pub bytes: u64,
}

/// What a version holds, written beside its claim before the commit:
/// `<base>/.savedmodel-claims/<N>.manifest`. Downloads check every file
/// against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The version number.
    pub version: i64,
    /// Path inside the version directory -> its size and MD5.
    pub files: BTreeMap<String, ManifestFile>,
}

/// One file of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Size in bytes.
    pub size: u64,
    /// The S3 ETag form of its bytes cut into `part_size` parts (lowercase
    /// hex MD5 for one part, else the MD5 of the parts' MD5s, `-`, the part
    /// count): what the upload computed, each byte hashed once.
    pub md5_etag: String,
    /// The part size `md5_etag` was computed with.
    pub part_size: u64,
}

/// What a claim object holds: who claimed the number and why, for people
/// reading the bucket and for `sync` resuming its own uploads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claim {
    pub(crate) host: String,
    pub(crate) pid: u32,
    pub(crate) unix_seconds: u64,
    /// `"publish"` or `"sync"`.
    pub(crate) by: String,
}

/// A local file of the SavedModel directory.
#[derive(Debug, Clone)]
pub(crate) struct LocalFile {
    /// `/`-separated path inside the directory.
    pub(crate) relative: String,
    pub(crate) path: PathBuf,
    pub(crate) size: u64,
}

/// Publishes the SavedModel directory `src` as a new version of `base`.
///
/// `next` chooses the number as for a local base path: the highest
/// version or claim + 1, the Unix time (never below that), or an explicit
/// number (refused with [`Error::VersionExists`] when taken).
pub async fn publish_remote(
    src: &Path,
    base: &RemoteBase,
    next: NextVersion,
    options: TransferOptions,
    progress: &dyn Progress,
) -> Result<RemotePublished> {
    let files = local_files(src)?;
    let listing = RemoteListing::read(base).await?;
    let version = claim_version(base, &listing, next, "publish").await?;
    upload_version(src, &files, base, version, options, progress, None).await
}

/// Claims a version number: the first free one from `next`'s choice on.
pub(crate) async fn claim_version(
    base: &RemoteBase,
    listing: &RemoteListing,
    next: NextVersion,
    by: &str,
) -> Result<i64> {
    let mut candidate = Some(listing.next_version(next)?);
    for _ in 0..MAX_ATTEMPTS {
        let Some(version) = candidate else { break };
        let explicit = matches!(next, NextVersion::Explicit(_));
        if try_claim(base, version, by).await? && version_dir_is_empty(base, version).await? {
            return Ok(version);
        }
        if explicit {
            return Err(Error::VersionExists {
                base: base.to_string(),
                version,
            });
        }
        candidate = version.checked_add(1);
    }
    Err(Error::NoFreeVersion {
        base: base.to_string(),
        attempts: MAX_ATTEMPTS,
    })
}

/// The conditional create of the claim: `Ok(false)` when it exists.
async fn try_claim(base: &RemoteBase, version: i64, by: &str) -> Result<bool> {
    let key = claims_dir(base).join(version.to_string());
    let claim = Claim {
        host: hostname(),
        pid: std::process::id(),
        unix_seconds: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        by: by.to_owned(),
    };
    let body = serde_json::to_vec(&claim).map_err(|e| Error::BadMetadata {
        url: base.url_of(&key),
        reason: e.to_string(),
    })?;
    let options = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    match base
        .store()
        .put_opts(&key, PutPayload::from(body), options)
        .await
    {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(base.store_error("claim", &key, e)),
    }
}

/// Reads the claim of `version`, if there is one.
pub(crate) async fn read_claim(base: &RemoteBase, version: i64) -> Result<Option<Claim>> {
    let key = claims_dir(base).join(version.to_string());
    let bytes = match base.store().get(&key).await {
        Ok(got) => got
            .bytes()
            .await
            .map_err(|e| base.store_error("download", &key, e))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(base.store_error("download", &key, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::BadMetadata {
            url: base.url_of(&key),
            reason: e.to_string(),
        })
}

/// Reads the manifest of `version`, if there is one.
pub(crate) async fn read_manifest(base: &RemoteBase, version: i64) -> Result<Option<Manifest>> {
    let key = manifest_key(base, version);
    let bytes = match base.store().get(&key).await {
        Ok(got) => got
            .bytes()
            .await
            .map_err(|e| base.store_error("download", &key, e))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(base.store_error("download", &key, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::BadMetadata {
            url: base.url_of(&key),
            reason: e.to_string(),
        })
}

pub(crate) fn manifest_key(base: &RemoteBase, version: i64) -> ObjectPath {
    claims_dir(base).join(format!("{version}.manifest"))
}

async fn version_dir_is_empty(base: &RemoteBase, version: i64) -> Result<bool> {
    let dir = base.key(&version.to_string());
    let mut listed = base.store().list(Some(&dir));
    let first = listed
        .try_next()
        .await
        .map_err(|e| base.store_error("list", &dir, e))?;
    Ok(first.is_none())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Every regular file under `src` (following symbolic links that stay
/// inside it), with `/`-separated relative paths, checked to be a
/// SavedModel directory.
pub(crate) fn local_files(src: &Path) -> Result<Vec<LocalFile>> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    };
    let root = std::fs::canonicalize(src).map_err(io("read source directory", src))?;
    if !root.join(COMMIT_FILE).is_file() && !root.join("saved_model.pbtxt").is_file() {
        return Err(Error::NotSavedModel {
            path: src.to_path_buf(),
        });
    }
    let mut files = Vec::new();
    let mut pending = vec![(root.clone(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(io("list", &dir))?;
        for entry in entries {
            let entry = entry.map_err(io("list", &dir))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(Error::UnsupportedFile {
                    path,
                    reason: "its name is not UTF-8",
                });
            };
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let real = std::fs::canonicalize(&path).map_err(io("resolve", &path))?;
            if !real.starts_with(&root) {
                return Err(Error::UnsupportedFile {
                    path,
                    reason: "it is a symbolic link leading out of the SavedModel directory",
                });
            }
            let meta = std::fs::metadata(&real).map_err(io("read", &path))?;
            if meta.is_dir() {
                pending.push((real, relative));
            } else if meta.is_file() {
                files.push(LocalFile {
                    relative,
                    path: real,
                    size: meta.len(),
                });
            } else {
                return Err(Error::UnsupportedFile {
                    path,
                    reason: "it is neither a file nor a directory",
                });
            }
        }
    }
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(files)
}

/// Uploads `files` into the claimed `version` and commits it. With
/// `resume`, the objects already there (path -> ETag) whose ETag is the
/// local file's are not sent again.
pub(crate) async fn upload_version(
    src: &Path,
    files: &[LocalFile],
    base: &RemoteBase,
    version: i64,
    options: TransferOptions,
    progress: &dyn Progress,
    resume: Option<&BTreeMap<String, Option<String>>>,
) -> Result<RemotePublished> {
    let transfer = Transfer::new(base, options, progress);
    let total: u64 = files.iter().map(|f| f.size).sum();
    progress.start(files.len() as u64, total);
    let dir = version.to_string();
    let commit = files
        .iter()
        .find(|f| f.relative == COMMIT_FILE)
        .or_else(|| files.iter().find(|f| f.relative == "saved_model.pbtxt"))
        .ok_or_else(|| Error::NotSavedModel {
            path: src.to_path_buf(),
        })?;
    let body: Vec<&LocalFile> = files
        .iter()
        .filter(|f| f.relative != commit.relative)
        .collect();
    let transfer_ref = &transfer;
    let dir_ref = &dir;
    let uploaded: Vec<(String, String)> = futures::stream::iter(body.iter().copied())
        .map(|file| async move {
            let key = base.key(&format!("{dir_ref}/{}", file.relative));
            if let Some(existing) = resume.and_then(|r| r.get(&file.relative)) {
                let md5_etag =
                    crate::transfer::local_md5_etag(transfer_ref, &file.path, file.size).await?;
                if etag_matches(existing.as_deref(), &md5_etag) {
                    transfer_ref.progress.advance(file.size);
                    transfer_ref.progress.file_done();
                    return Ok((file.relative.clone(), md5_etag));
                }
            }
            let uploaded = upload_file(transfer_ref, &file.path, file.size, &key, false).await?;
            transfer_ref.progress.file_done();
            Ok::<_, Error>((file.relative.clone(), uploaded.md5_etag))
        })
        .buffer_unordered(transfer.options.files_in_flight)
        .try_collect()
        .await?;
    let etags: BTreeMap<String, String> = uploaded.into_iter().collect();

    // The manifest: each file's ETag form and the part size it assumes.
    let mut manifest = Manifest {
        version,
        files: BTreeMap::new(),
    };
    for file in files {
        let part_size = crate::transfer::upload_part_size(&transfer, file.size);
        let md5_etag = match etags.get(&file.relative) {
            Some(etag) => etag.clone(),
            None => crate::transfer::md5_etag_of(&file.path, file.size, part_size).await?,
        };
        manifest.files.insert(
            file.relative.clone(),
            ManifestFile {
                size: file.size,
                md5_etag,
                part_size,
            },
        );
    }
    let manifest_key = manifest_key(base, version);
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::BadMetadata {
        url: base.url_of(&manifest_key),
        reason: e.to_string(),
    })?;
    base.store()
        .put(&manifest_key, PutPayload::from(Bytes::from(manifest_bytes)))
        .await
        .map_err(|e| base.store_error("upload", &manifest_key, e))?;

    verify_uploaded(base, version, &body, &etags).await?;

    // The commit point.
    let key = base.key(&format!("{dir}/{}", commit.relative));
    upload_file(&transfer, &commit.path, commit.size, &key, true).await?;
    progress.file_done();
    Ok(RemotePublished {
        version,
        url: base.url_of(&base.key(&dir)),
        files: files.len() as u64,
        bytes: total,
    })
}

/// Lists the version directory and checks it holds exactly `body`, with
/// the sizes (and, on S3, the ETags) uploaded.
async fn verify_uploaded(
    base: &RemoteBase,
    version: i64,
    body: &[&LocalFile],
    etags: &BTreeMap<String, String>,
) -> Result<()> {
    let dir = base.key(&version.to_string());
    let listed: Vec<_> = base
        .store()
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|e| base.store_error("list", &dir, e))?;
    let prefix = format!("{dir}/");
    let mut remote: BTreeMap<String, (u64, Option<String>)> = BTreeMap::new();
    for meta in listed {
        let key = meta.location.as_ref();
        let relative = key.strip_prefix(&prefix).unwrap_or(key).to_owned();
        remote.insert(relative, (meta.size, meta.e_tag));
    }
    for file in body {
        let url = base.url_of(&base.key(&format!("{version}/{}", file.relative)));
        let Some((size, etag)) = remote.remove(&file.relative) else {
            return Err(Error::VerifyFailed {
                url,
                path: file.path.clone(),
                what: "the object is missing after its upload".to_owned(),
            });
        };
        if size != file.size {
            return Err(Error::VerifyFailed {
                url,
                path: file.path.clone(),
                what: format!("size {size} != {}", file.size),
            });
        }
        let expected = etags
            .get(&file.relative)
            .map(String::as_str)
            .unwrap_or_default();
        if base.etag_is_md5() && !etag_matches(etag.as_deref(), expected) {
            return Err(Error::VerifyFailed {
                url,
                path: file.path.clone(),
                what: format!("ETag {etag:?} != {expected}"),
            });
        }
    }
    if let Some((extra, _)) = remote.into_iter().next() {
        return Err(Error::VerifyFailed {
            url: base.url_of(&base.key(&format!("{version}/{extra}"))),
            path: PathBuf::new(),
            what: "an object this publish did not write is in its version directory".to_owned(),
        });
    }
    Ok(())
}
