//! A base path in a bucket, listed as TensorFlow Serving lists it, with what
//! the publish protocol adds: which versions are complete (hold
//! `saved_model.pb`), which numbers are claimed, and when each version was
//! last written to.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use savedmodel_layout::{BaseListing, ChildKind, NextVersion, VersionPolicy, parse_version};

use crate::error::{Error, Result};
use crate::remote::RemoteBase;

/// The child of the base path holding version claims and manifests. Its
/// name does not parse as a number, so Serving ignores it.
pub const CLAIMS_DIR: &str = ".savedmodel-claims";

/// The file whose presence makes a version directory loadable: the commit
/// point of a publish.
pub const COMMIT_FILE: &str = "saved_model.pb";

/// Parallel listing requests.
const LIST_CONCURRENCY: usize = 16;

/// One object inside a version directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Its path inside the version directory, `/`-separated
    /// (`variables/variables.index`).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// The store's ETag, when it gave one.
    pub e_tag: Option<String>,
}

/// A child of the base path whose name Serving parses as a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteVersion {
    /// The version number.
    pub version: i64,
    /// The child's name (`7`, `007`).
    pub name: String,
    /// Whether it holds `saved_model.pb` or `saved_model.pbtxt` (the
    /// publish's commit point): whether Serving can load it.
    pub complete: bool,
    /// The objects under it, sorted by path.
    pub files: Vec<RemoteFile>,
    /// When the newest of its objects (or its claim) was written.
    pub last_written: Option<SystemTime>,
}

impl RemoteVersion {
    /// The total size of its objects.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// The versions under a base path in a bucket.
#[derive(Debug, Clone)]
pub struct RemoteListing {
    base: String,
    versions: Vec<RemoteVersion>,
    claims: BTreeMap<i64, SystemTime>,
    serving: BaseListing,
}

impl RemoteListing {
    /// Lists `base`: its children (as Serving's poll does, one
    /// `list` with delimiter `/`), every version directory's objects, and
    /// the claims.
    pub async fn read(base: &RemoteBase) -> Result<Self> {
        let store = base.store();
        let top = store
            .list_with_delimiter(Some(base.prefix()))
            .await
            .map_err(|e| base.store_error("list", base.prefix(), e))?;
        let mut children: Vec<(OsString, ChildKind)> = Vec::new();
        let mut version_dirs = Vec::new();
        for dir in &top.common_prefixes {
            let Some(name) = dir.filename() else { continue };
            children.push((OsString::from(name), ChildKind::Directory));
            if let Some(version) = parse_version(name.as_bytes()) {
                version_dirs.push((version, name.to_owned(), dir.clone()));
            }
        }
        for object in &top.objects {
            if let Some(name) = object.location.filename() {
                children.push((OsString::from(name), ChildKind::File));
            }
        }
        let serving = BaseListing::from_children(Path::new(&base.to_string()), children);
        let claims = read_claims(base).await?;
        let versions: Vec<RemoteVersion> = futures::stream::iter(version_dirs)
            .map(|(version, name, dir)| async move {
                let mut files: Vec<RemoteFile> = Vec::new();
                let mut newest: Option<SystemTime> = None;
                let mut listed = base.store().list(Some(&dir));
                while let Some(meta) = listed
                    .try_next()
                    .await
                    .map_err(|e| base.store_error("list", &dir, e))?
                {
                    let written: SystemTime = meta.last_modified.into();
                    newest = Some(newest.map_or(written, |n| n.max(written)));
                    let path = base
                        .relative(&meta.location)
                        .strip_prefix(base.relative(&dir))
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_owned();
                    files.push(RemoteFile {
                        path,
                        size: meta.size,
                        e_tag: meta.e_tag,
                    });
                }
                files.sort_by(|a, b| a.path.cmp(&b.path));
                let complete = files
                    .iter()
                    .any(|f| f.path == COMMIT_FILE || f.path == "saved_model.pbtxt");
                Ok::<_, crate::Error>(RemoteVersion {
                    version,
                    name,
                    complete,
                    files,
                    last_written: newest,
                })
            })
            .buffer_unordered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
        let mut versions = versions;
        for version in &mut versions {
            if let Some(claimed) = claims.get(&version.version) {
                version.last_written =
                    Some(version.last_written.map_or(*claimed, |w| w.max(*claimed)));
            }
        }
        versions.sort_by(|a, b| a.version.cmp(&b.version).then(a.name.cmp(&b.name)));
        Ok(RemoteListing {
            base: base.to_string(),
            versions,
            claims,
            serving,
        })
    }

    /// The base path's URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Every version directory, by number then name.
    pub fn versions(&self) -> &[RemoteVersion] {
        &self.versions
    }

    /// The version directory Serving loads for `version` (the last by name
    /// among duplicates).
    pub fn find(&self, version: i64) -> Option<&RemoteVersion> {
        self.versions.iter().rev().find(|v| v.version == version)
    }

    /// The complete versions, by number (duplicates: the one Serving loads).
    pub fn complete(&self) -> BTreeMap<i64, &RemoteVersion> {
        let mut complete = BTreeMap::new();
        for version in &self.versions {
            if self
                .find(version.version)
                .is_some_and(|v| v.name == version.name)
                && version.complete
            {
                complete.insert(version.version, version);
            }
        }
        complete
    }

    /// The claimed version numbers and when each claim was written.
    pub fn claims(&self) -> &BTreeMap<i64, SystemTime> {
        &self.claims
    }

    /// The highest number that is a version or claimed.
    pub fn highest_taken(&self) -> Option<i64> {
        let versions = self.versions.iter().map(|v| v.version);
        versions.chain(self.claims.keys().copied()).max()
    }

    /// The number the next publish would claim now: the highest version or
    /// claim + 1 (1 for none), the Unix time in seconds (never below that),
    /// or an explicit number, refused when taken.
    pub fn next_version(&self, next: NextVersion) -> Result<i64> {
        let after_highest = self.highest_taken().map_or(Some(1), |h| h.checked_add(1));
        let no_free = || Error::NoFreeVersion {
            base: self.base.clone(),
            attempts: 0,
        };
        match next {
            NextVersion::Increment => after_highest.ok_or_else(no_free),
            NextVersion::UnixSeconds => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                    .unwrap_or(0);
                after_highest
                    .map(|after| after.max(now))
                    .ok_or_else(no_free)
            }
            NextVersion::Explicit(version) if self.taken(version) => Err(Error::VersionExists {
                base: self.base.clone(),
                version,
            }),
            NextVersion::Explicit(version) => Ok(version),
        }
    }

    /// Whether `version` is a version directory or claimed.
    pub fn taken(&self, version: i64) -> bool {
        self.claims.contains_key(&version) || self.versions.iter().any(|v| v.version == version)
    }

    /// The base path as Serving's listing sees it (through
    /// `savedmodel-layout`'s rules): which versions a policy loads.
    pub fn serving(&self) -> &BaseListing {
        &self.serving
    }

    /// The version numbers `policy` makes Serving load.
    pub fn aspired(&self, policy: &VersionPolicy) -> BTreeSet<i64> {
        self.serving
            .aspired(policy)
            .iter()
            .map(|child| child.version)
            .collect()
    }
}

/// The claims under `<base>/.savedmodel-claims/`: number -> when written.
async fn read_claims(base: &RemoteBase) -> Result<BTreeMap<i64, SystemTime>> {
    let dir = claims_dir(base);
    let mut claims = BTreeMap::new();
    let listed = base
        .store()
        .list_with_delimiter(Some(&dir))
        .await
        .map_err(|e| base.store_error("list", &dir, e))?;
    for object in listed.objects {
        let Some(name) = object.location.filename() else {
            continue;
        };
        if let Some(version) = name.parse::<i64>().ok().filter(|v| v.to_string() == name) {
            claims.insert(version, object.last_modified.into());
        }
    }
    Ok(claims)
}

pub(crate) fn claims_dir(base: &RemoteBase) -> ObjectPath {
    base.key(CLAIMS_DIR)
}
