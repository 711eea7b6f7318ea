//! What TensorFlow Serving sees in a base path, and what it would load.
//!
//! Source: TensorFlow Serving
//! `tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc`,
//! `PollFileSystemForServable` and the `Aspire*Versions` helpers:
//! 1. `FileExists(base_path)` must succeed, then `GetChildren(base_path)`.
//! 2. Each child name is cut at its first `/` (cloud file systems list
//!    descendants) and the names go through a `std::set<string>`: deduplicated
//!    and sorted bytewise.
//! 3. A child is a version iff its name parses ([`parse_version`]); there is
//!    no is-directory check, so files count.
//! 4. `IndexChildrenByVersion` walks the sorted names into a
//!    `std::map<int64, string>`; for two names with the same number the later
//!    name wins (`7` over `007`), with a warning.
//! 5. latest: the `max(num_versions, 1)` highest entries of that map; all:
//!    every numeric child from step 2, duplicates included; specific: the
//!    entries of the map whose number is listed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::version::{VersionPolicy, parse_version};

/// Name prefix of the staging directories [`publish`](crate::publish)
/// creates. Starts with `.` and never parses as a number, so Serving ignores
/// it.
pub const STAGING_PREFIX: &str = ".savedmodel-staging-";
/// Name prefix a version directory is renamed to before
/// [`collect_garbage`](crate::collect_garbage) deletes it, so Serving never
/// sees a half-deleted version.
pub const REMOVING_PREFIX: &str = ".savedmodel-removing-";

/// What kind of file system object a child of the base path is (not
/// following symbolic links).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    /// A directory.
    Directory,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// Anything else (FIFO, socket, device), or unknown.
    Other,
}

/// A child of the base path whose name Serving parses as a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionChild {
    /// The version number.
    pub version: i64,
    /// The child's name as it is on disk (`"007"`, `"7"`, `" 7"`).
    pub name: String,
    /// What the child is.
    pub kind: ChildKind,
}

/// A child of the base path (or of any directory [`BaseListing::read`]
/// lists) whose name is one our writers give a temporary: what a killed
/// exporter, gc, checkpoint writer or `models.config` save leaves behind
/// (see [`LeftoverKind`]). None of these names parses as a version, so
/// Serving ignores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftoverChild {
    /// The child's name.
    pub name: String,
    /// What the child is.
    pub kind: ChildKind,
    /// Which writer makes temporaries under this name.
    pub leftover: LeftoverKind,
}

/// The temporaries our writers make, told apart by name. Each writer holds
/// an exclusive `flock` on its temporary for as long as it lives (the
/// kernel drops it when the process dies), which is how
/// [`collect_garbage`](crate::collect_garbage) tells a live writer's from
/// a killed one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftoverKind {
    /// `.savedmodel-staging-<pid>-<16 hex>/` ([`STAGING_PREFIX`]): a
    /// [`publish`](crate::publish)'s staging directory (`savedmodel
    /// export`, `savedmodel publish`).
    Staging,
    /// `.savedmodel-removing-<pid>-<16 hex>/` ([`REMOVING_PREFIX`]): a
    /// version gc moved out of Serving's sight and was deleting.
    Removing,
    /// `.<name>.tmp-<16 hex>/` (`savedmodel_staged::temp_dir_name`): a
    /// `StagedDir` (`SavedModelBuilder::write_to`, and the shards of a
    /// `ShardedBundleWriter`, which make their checkpoint's temporary files
    /// inside it).
    StagedDir,
    /// `<name>.tempstate<u64>` (`savedmodel_staged::temp_file_name`): a
    /// `StagedFile` (the checkpoint `BundleWriter`'s data and index files,
    /// `ckpt convert`'s outputs). TensorFlow's own `BundleWriter` uses the
    /// same names, without a lock.
    StagedFile,
    /// `.<name>.tmp-<pid>-<16 hex>`: a `models.config` being saved
    /// ([`ModelsConfig::save`](crate::ModelsConfig::save)).
    ConfigSave,
}

impl LeftoverKind {
    /// The kind of temporary `name` is, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        if name.starts_with(STAGING_PREFIX) {
            Some(LeftoverKind::Staging)
        } else if name.starts_with(REMOVING_PREFIX) {
            Some(LeftoverKind::Removing)
        } else if savedmodel_staged::is_temp_dir_name(name) {
            Some(LeftoverKind::StagedDir)
        } else if savedmodel_staged::is_temp_file_name(name) {
            Some(LeftoverKind::StagedFile)
        } else if crate::config::is_config_temp_name(name) {
            Some(LeftoverKind::ConfigSave)
        } else {
            None
        }
    }

    /// What the writer makes under such a name: a directory or a regular
    /// file. A child of the other kind is not ours, and gc leaves it.
    pub fn child_kind(self) -> ChildKind {
        match self {
            LeftoverKind::Staging | LeftoverKind::Removing | LeftoverKind::StagedDir => {
                ChildKind::Directory
            }
            LeftoverKind::StagedFile | LeftoverKind::ConfigSave => ChildKind::File,
        }
    }
}

/// Two or more children with the same version number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate<'a> {
    /// The version number.
    pub version: i64,
    /// The child Serving loads for latest and specific policies (the last in
    /// bytewise name order).
    pub winner: &'a VersionChild,
    /// The children Serving ignores for those policies (the `all` policy
    /// loads them too).
    pub ignored: Vec<&'a VersionChild>,
}

/// The children of one base path, classified as TensorFlow Serving does.
#[derive(Debug, Clone)]
pub struct BaseListing {
    base: PathBuf,
    /// Every numeric child, in bytewise name order.
    numeric: Vec<VersionChild>,
    /// Our staging and removal leftovers.
    leftovers: Vec<LeftoverChild>,
    /// Children Serving ignores (not numbers), in bytewise name order.
    ignored: Vec<OsString>,
}

impl BaseListing {
    /// Lists `base` as Serving's poll does.
    ///
    /// Fails with [`Error::BaseMissing`] or [`Error::BaseNotDirectory`] when
    /// `base` is not a directory (Serving logs "Could not find base path" for
    /// the first, and the listing fails for the second).
    pub fn read(base: &Path) -> Result<Self> {
        check_base_dir(base)?;
        let entries = std::fs::read_dir(base).map_err(|e| Error::io("list base path", base, e))?;
        let mut children = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list base path", base, e))?;
            let kind = match entry.file_type() {
                Ok(t) if t.is_dir() => ChildKind::Directory,
                Ok(t) if t.is_file() => ChildKind::File,
                Ok(t) if t.is_symlink() => ChildKind::Symlink,
                _ => ChildKind::Other,
            };
            children.push((entry.file_name(), kind));
        }
        Ok(Self::from_children(base, children))
    }

    /// Classifies a given list of children of `base` without touching the
    /// file system (what [`read`](Self::read) does after listing).
    pub fn from_children(
        base: &Path,
        children: impl IntoIterator<Item = (OsString, ChildKind)>,
    ) -> Self {
        // Serving: cut at the first '/', then a std::set<string> (bytewise
        // order, duplicates dropped).
        let mut named: BTreeMap<Vec<u8>, (OsString, ChildKind)> = BTreeMap::new();
        for (name, kind) in children {
            let bytes = name.as_encoded_bytes();
            let cut = bytes.iter().position(|&b| b == b'/').unwrap_or(bytes.len());
            let key = bytes.get(..cut).unwrap_or(bytes).to_vec();
            named.entry(key).or_insert((name, kind));
        }
        let mut numeric = Vec::new();
        let mut leftovers = Vec::new();
        let mut ignored = Vec::new();
        for (key, (name, kind)) in named {
            if let Some(version) = parse_version(&key) {
                // A name that parses is ASCII, so this is lossless.
                let name = String::from_utf8_lossy(&key).into_owned();
                numeric.push(VersionChild {
                    version,
                    name,
                    kind,
                });
            } else if let Some((text, leftover)) = name
                .to_str()
                .and_then(|text| Some((text, LeftoverKind::from_name(text)?)))
            {
                leftovers.push(LeftoverChild {
                    name: text.to_owned(),
                    kind,
                    leftover,
                });
            } else {
                ignored.push(name);
            }
        }
        BaseListing {
            base: base.to_path_buf(),
            numeric,
            leftovers,
            ignored,
        }
    }

    /// The base path.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Every child whose name parses as a version, in bytewise name order
    /// (what Serving's `all` policy loads, duplicates included).
    pub fn version_children(&self) -> &[VersionChild] {
        &self.numeric
    }

    /// One child per version number, the one Serving uses for the latest and
    /// specific policies: for duplicates, the last in bytewise name order
    /// (Serving's `IndexChildrenByVersion`).
    pub fn versions(&self) -> BTreeMap<i64, &VersionChild> {
        let mut by_version = BTreeMap::new();
        for child in &self.numeric {
            by_version.insert(child.version, child);
        }
        by_version
    }

    /// Version numbers held by more than one child, with the child Serving
    /// picks.
    pub fn duplicates(&self) -> Vec<Duplicate<'_>> {
        let mut groups: BTreeMap<i64, Vec<&VersionChild>> = BTreeMap::new();
        for child in &self.numeric {
            groups.entry(child.version).or_default().push(child);
        }
        groups
            .into_iter()
            .filter_map(|(version, mut children)| {
                let winner = children.pop()?;
                (!children.is_empty()).then_some(Duplicate {
                    version,
                    winner,
                    ignored: children,
                })
            })
            .collect()
    }

    /// The highest version, if any.
    pub fn highest(&self) -> Option<i64> {
        self.numeric.iter().map(|c| c.version).max()
    }

    /// The child Serving would use for `version`, if one exists.
    pub fn find(&self, version: i64) -> Option<&VersionChild> {
        self.numeric.iter().rev().find(|c| c.version == version)
    }

    /// Whether `child` is a directory (following symbolic links) holding
    /// `saved_model.pb` or `saved_model.pbtxt`, the files TensorFlow's loader
    /// reads first. Serving loads a numeric child without one all the same,
    /// and the load fails.
    pub fn holds_saved_model(&self, child: &VersionChild) -> bool {
        holds_saved_model(&self.base.join(&child.name))
    }

    /// Leftovers of our staging and removal directories, live or dead.
    pub fn leftovers(&self) -> &[LeftoverChild] {
        &self.leftovers
    }

    /// Children Serving ignores because their names are not numbers (our
    /// leftovers not included).
    pub fn ignored(&self) -> &[OsString] {
        &self.ignored
    }

    /// The children Serving would load under `policy`, in the order Serving
    /// emits them: latest from the highest down, all in name order, specific
    /// in ascending version order.
    pub fn aspired(&self, policy: &VersionPolicy) -> Vec<&VersionChild> {
        match policy {
            VersionPolicy::Latest { num_versions } => {
                // std::max(num_versions, 1U)
                let n = usize::try_from((*num_versions).max(1)).unwrap_or(usize::MAX);
                self.versions().into_values().rev().take(n).collect()
            }
            VersionPolicy::All => self.numeric.iter().collect(),
            VersionPolicy::Specific { versions } => {
                // Two steps, one of which could not be checked in Serving's
                // source:
                // * Listing (checked): every stored copy of
                //   tensorflow/serving file_system_storage_path_source.cc
                //   read for this crate (commits da5652fa, 0161cbe4, and
                //   the forks DeepRec-AI/serving 1e600692, AmosChenYQ/serving
                //   c8562b0c) has AspireSpecificVersions walk
                //   IndexChildrenByVersion's map: for each listed version
                //   that exists, the bytewise-last child with that number.
                // * Fast path (unchecked in source): docs/formats.md section
                //   11, read from Serving HEAD 9d981c5c, says the poll first
                //   checks FileExists(base/<decimal version>) for every
                //   listed version and uses those paths when all exist,
                //   falling back to the listing otherwise. No stored copy of that
                //   .cc shows it; the newest stored test file (commit
                //   1607c71d, SpecificVersionsLeadingZeros: "ensure we
                //   maintain the strtod property") is consistent with it.
                // The two differ only when a canonical name and a
                // later-sorting spelling of the same number both exist
                // ("7" and "7 "): releases with the fast path load "7",
                // older ones "7 ". This follows docs/formats.md section 11.
                let mut wanted: Vec<i64> = versions.clone();
                wanted.sort_unstable();
                wanted.dedup();
                let canonical: Option<Vec<&VersionChild>> = wanted
                    .iter()
                    .map(|v| {
                        let name = v.to_string();
                        self.numeric.iter().find(|c| c.name == name)
                    })
                    .collect();
                if let Some(children) = canonical {
                    return children;
                }
                let by_version = self.versions();
                wanted
                    .iter()
                    .filter_map(|v| by_version.get(v).copied())
                    .collect()
            }
        }
    }
}

/// Whether `dir` is a directory holding `saved_model.pb` or
/// `saved_model.pbtxt` (following symbolic links).
pub(crate) fn holds_saved_model(dir: &Path) -> bool {
    [
        savedmodel_proto::SAVED_MODEL_FILENAME_PB,
        savedmodel_proto::SAVED_MODEL_FILENAME_PBTXT,
    ]
    .iter()
    .any(|name| dir.join(name).is_file())
}

/// Checks that `base` exists and is a directory (following symbolic links,
/// as Serving's `FileExists` and `GetChildren` do).
pub(crate) fn check_base_dir(base: &Path) -> Result<()> {
    match std::fs::metadata(base) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::BaseNotDirectory {
            path: base.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::BaseMissing {
            path: base.to_path_buf(),
        }),
        Err(e) => Err(Error::io("read base path", base, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(names: &[&str]) -> BaseListing {
        BaseListing::from_children(
            Path::new("/models/m"),
            names
                .iter()
                .map(|n| (OsString::from(n), ChildKind::Directory)),
        )
    }

    fn names(children: &[&VersionChild]) -> Vec<String> {
        children.iter().map(|c| c.name.clone()).collect()
    }

    fn policy(text: &str) -> VersionPolicy {
        text.parse().unwrap()
    }

    /// Each row: the children of a base path, a policy, the children Serving
    /// would load (in Serving's emission order), and the rule in
    /// `file_system_storage_path_source.cc` that decides it.
    #[test]
    fn aspired_versions_follow_serving() {
        let table: &[(&[&str], &str, &[&str], &str)] = &[
            (
                &["1", "2", "3"],
                "latest",
                &["3"],
                "AspireLatestVersions: default serves the single highest",
            ),
            (
                &["1", "2", "3"],
                "latest:0",
                &["3"],
                "AspireLatestVersions: std::max(num_versions, 1U)",
            ),
            (
                &["1", "2", "3"],
                "latest:2",
                &["3", "2"],
                "AspireLatestVersions walks children_by_version from rbegin()",
            ),
            (
                &["1", "2", "3"],
                "latest:10",
                &["3", "2", "1"],
                "fewer versions than num_versions: all of them",
            ),
            (
                &["9", "10"],
                "latest",
                &["10"],
                "versions compare as int64, not as names",
            ),
            (
                &["-5", "-1"],
                "latest",
                &["-1"],
                "negative versions are versions",
            ),
            (
                &["007", "7"],
                "latest",
                &["7"],
                "IndexChildrenByVersion: the later of the sorted names wins",
            ),
            (
                &["7", "007", "+7"],
                "latest",
                &["7"],
                "'+7' < '007' < '7' bytewise; the last wins",
            ),
            (
                &["7", "7 "],
                "latest",
                &["7 "],
                "'7 ' sorts after '7', so it wins",
            ),
            (
                &["007", "7"],
                "all",
                &["007", "7"],
                "AspireAllVersions walks every child, duplicates included",
            ),
            (
                &["2", "10", "1"],
                "all",
                &["1", "10", "2"],
                "AspireAllVersions emits in sorted-name order",
            ),
            (
                &["1", "2", "3"],
                "specific:1,3",
                &["1", "3"],
                "AspireSpecificVersions: listed versions that exist",
            ),
            (
                &["1", "2"],
                "specific:2,5",
                &["2"],
                "a listed version that does not exist is only logged",
            ),
            (
                &["1", "2"],
                "specific:5",
                &[],
                "no listed version exists: nothing aspired",
            ),
            (
                &["007", "008"],
                "specific:7",
                &["007"],
                "found through the listing when no canonical name exists",
            ),
            (
                &["7", "7 "],
                "specific:7",
                &["7"],
                "docs/formats.md section 11 fast path: base/7 exists, so it is used (releases \
                 without the fast path load \"7 \", the later name)",
            ),
            (
                &["7", "7 ", "8 "],
                "specific:7,8",
                &["7 ", "8 "],
                "fast path needs every version; otherwise the listing decides",
            ),
            (
                &["v1", "1.0", "temp-123", "x"],
                "all",
                &[],
                "no child parses: nothing aspired",
            ),
            (
                &["3/variables", "3/saved_model.pb"],
                "latest",
                &["3"],
                "names cut at the first '/' and deduplicated",
            ),
            (
                &[".savedmodel-staging-1-ab", "4"],
                "latest",
                &["4"],
                "staging directories are ignored",
            ),
        ];
        for &(children, policy_text, expected, why) in table {
            let listing = listing(children);
            let got = listing.aspired(&policy(policy_text));
            assert_eq!(names(&got), expected, "{children:?} {policy_text}: {why}");
        }
    }

    #[test]
    fn files_count_as_versions() {
        // No is-directory check in Serving: a file named 5 is version 5.
        let listing = BaseListing::from_children(
            Path::new("/m"),
            [
                (OsString::from("4"), ChildKind::Directory),
                (OsString::from("5"), ChildKind::File),
            ],
        );
        let got = listing.aspired(&VersionPolicy::default());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "5");
        assert_eq!(got[0].kind, ChildKind::File);
    }

    #[test]
    fn duplicates_report_winner_and_ignored() {
        let listing = listing(&["7", "007", "+7", "8"]);
        let dups = listing.duplicates();
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[0].version, 7);
        assert_eq!(dups[0].winner.name, "7");
        assert_eq!(
            dups[0]
                .ignored
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["+7", "007"]
        );
        assert_eq!(listing.find(7).unwrap().name, "7");
        assert_eq!(listing.highest(), Some(8));
    }

    #[test]
    fn leftovers_and_ignored_are_separated() {
        let listing = listing(&[
            ".savedmodel-staging-12-00ff",
            ".savedmodel-removing-3-aa",
            ".7.tmp-0123456789abcdef",
            "model.index.tempstate123",
            ".models.config.tmp-77-0123456789abcdef",
            ".models.config.lock",
            "temp-1700000000",
            "1",
        ]);
        let kinds: Vec<LeftoverKind> = listing.leftovers().iter().map(|l| l.leftover).collect();
        assert_eq!(
            kinds,
            [
                LeftoverKind::StagedDir,
                LeftoverKind::ConfigSave,
                LeftoverKind::Removing,
                LeftoverKind::Staging,
                LeftoverKind::StagedFile,
            ]
        );
        assert_eq!(
            listing.ignored(),
            &[
                OsString::from(".models.config.lock"),
                OsString::from("temp-1700000000")
            ]
        );
        assert_eq!(listing.version_children().len(), 1);
    }
}
