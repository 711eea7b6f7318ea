//! TensorFlow Serving's model config file (`--model_config_file`, usually
//! `models.config`): a `tensorflow.serving.ModelServerConfig` in protobuf
//! text format.
//!
//! Schema: `tensorflow_serving/config/model_server_config.proto` (`ModelConfig`
//! name 1, base_path 2, model_platform 4, model_version_policy 7,
//! version_labels 8) and `file_system_storage_path_source.proto`
//! (`ServableVersionPolicy`). Labels: TensorFlow Serving's
//! `model_servers/server_core.cc` (`UpdateModelVersionLabelMap`) refuses a
//! config whose label points at a version that is not loaded ("Request to
//! assign label to version N of model M, which is not currently available
//! for inference") unless the server runs with
//! `--allow_version_labels_for_unavailable_models`.
//!
//! The file is rewritten whole (comments in it are not kept) and atomically:
//! a sibling temporary file is written, fsynced and renamed over it.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use savedmodel_proto::tensorflow::serving::file_system_storage_path_source_config::ServableVersionPolicy;
use savedmodel_proto::tensorflow::serving::file_system_storage_path_source_config::servable_version_policy::{
    All, Latest, PolicyChoice, Specific,
};
use savedmodel_proto::tensorflow::serving::model_server_config::Config;
use savedmodel_proto::tensorflow::serving::{ModelConfig, ModelConfigList, ModelServerConfig};
use savedmodel_staged::StagedFile;

use crate::error::{Error, Result};
use crate::listing::BaseListing;
use crate::version::VersionPolicy;

/// The version policy a `ModelConfig` gives, with Serving's default (latest,
/// one version) when unset.
pub fn policy_from_proto(policy: Option<&ServableVersionPolicy>) -> VersionPolicy {
    match policy.and_then(|p| p.policy_choice.as_ref()) {
        None => VersionPolicy::default(),
        Some(PolicyChoice::Latest(latest)) => VersionPolicy::Latest {
            num_versions: latest.num_versions,
        },
        Some(PolicyChoice::All(_)) => VersionPolicy::All,
        Some(PolicyChoice::Specific(specific)) => VersionPolicy::Specific {
            versions: specific.versions.clone(),
        },
    }
}

/// The `ServableVersionPolicy` message for a policy.
pub fn policy_to_proto(policy: &VersionPolicy) -> ServableVersionPolicy {
    let choice = match policy {
        VersionPolicy::Latest { num_versions } => PolicyChoice::Latest(Latest {
            num_versions: *num_versions,
        }),
        VersionPolicy::All => PolicyChoice::All(All {}),
        VersionPolicy::Specific { versions } => PolicyChoice::Specific(Specific {
            versions: versions.clone(),
        }),
    };
    ServableVersionPolicy {
        policy_choice: Some(choice),
    }
}

/// The temporary name [`ModelsConfig::save`] writes `target` under:
/// `.<name>.tmp-<pid>-<16 hex>` beside it. Hidden, not a number, and locked
/// while the save lives (a `savedmodel_staged::StagedFile`), so that
/// [`collect_garbage`](crate::collect_garbage), run on the directory
/// holding the config, removes only a killed save's.
fn config_temp_name(target: &Path) -> PathBuf {
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "models.config".to_owned());
    savedmodel_staged::parent_dir(target).join(format!(
        ".{file_name}.tmp-{}-{:016x}",
        std::process::id(),
        savedmodel_staged::random_u64()
    ))
}

/// Whether `name` has the form of [`config_temp_name`]: `.`, a non-empty
/// name, `.tmp-`, decimal digits, `-` and 16 lowercase hex digits.
pub(crate) fn is_config_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some((stem, tail)) = rest.rsplit_once(".tmp-") else {
        return false;
    };
    let Some((pid, hex)) = tail.split_once('-') else {
        return false;
    };
    !stem.is_empty()
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && hex.len() == 16
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A `models.config` file, loaded for reading or editing.
///
/// ```
/// use savedmodel_layout::{ModelsConfig, VersionPolicy};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("models.config");
/// let mut config = ModelsConfig::load_or_new(&path)?;
/// config.add_model("mnist", "/models/mnist", "tensorflow")?;
/// config.set_policy("mnist", &VersionPolicy::Latest { num_versions: 2 })?;
/// config.save()?;
/// let text = std::fs::read_to_string(&path)?;
/// assert!(text.contains("name: \"mnist\""));
/// assert!(text.contains("num_versions: 2"));
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ModelsConfig {
    path: PathBuf,
    config: ModelServerConfig,
}

impl ModelsConfig {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|e| Error::io("read model config", path, e))?;
        Self::parse(path, &text)
    }

    /// Reads the file at `path`, or starts an empty config if it does not
    /// exist (it is created by [`save`](Self::save)).
    pub fn load_or_new(path: &Path) -> Result<Self> {
        match fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ModelsConfig {
                path: path.to_path_buf(),
                config: ModelServerConfig::default(),
            }),
            Err(e) => Err(Error::io("read model config", path, e)),
        }
    }

    /// Edits the file at `path` under an exclusive lock: waits for any other
    /// editor, reads the file (an empty config if it is missing and
    /// `create` is true), runs `edit`, and saves the result if `edit`
    /// succeeded and changed anything. Returns what `edit` returned.
    ///
    /// A plain [`load`](Self::load) + [`save`](Self::save) is last writer
    /// wins: two editors that read the same text each save their own
    /// change, and one is lost. Under the lock, each reads what the one
    /// before saved. The lock is an `flock` on a hidden sibling,
    /// `.<name>.lock` (the config file itself is replaced by each save, so
    /// a lock on it would not exclude the next editor), kept rather than
    /// removed (removing it would let two editors lock two different
    /// files). It is released when the edit ends or the process dies.
    ///
    /// ```
    /// use savedmodel_layout::ModelsConfig;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("models.config");
    /// ModelsConfig::edit(&path, true, |c| c.add_model("a", "/models/a", "tensorflow"))?;
    /// ModelsConfig::edit(&path, false, |c| c.add_model("b", "/models/b", "tensorflow"))?;
    /// assert_eq!(ModelsConfig::load(&path)?.models().len(), 2);
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn edit<T>(
        path: &Path,
        create: bool,
        edit: impl FnOnce(&mut ModelsConfig) -> Result<T>,
    ) -> Result<T> {
        let _lock = lock_config(path)?;
        let mut config = if create {
            Self::load_or_new(path)?
        } else {
            Self::load(path)?
        };
        let before = config.config.clone();
        let result = edit(&mut config)?;
        if config.config != before || !path.exists() {
            config.save()?;
        }
        Ok(result)
    }

    /// Parses `text` as the content of the file at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let config =
            savedmodel_proto::text_format::parse::<ModelServerConfig>(text).map_err(|source| {
                Error::ConfigParse {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        Ok(ModelsConfig {
            path: path.to_path_buf(),
            config,
        })
    }

    /// The file this config was read from and is saved to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed message.
    pub fn config(&self) -> &ModelServerConfig {
        &self.config
    }

    /// The configured models (empty for a `custom_model_config`).
    pub fn models(&self) -> &[ModelConfig] {
        match &self.config.config {
            Some(Config::ModelConfigList(list)) => &list.config,
            _ => &[],
        }
    }

    /// The model named `name`.
    pub fn model(&self, name: &str) -> Result<&ModelConfig> {
        self.models()
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| Error::UnknownModel {
                path: self.path.clone(),
                name: name.to_owned(),
            })
    }

    fn list_mut(&mut self) -> Result<&mut Vec<ModelConfig>> {
        let config = self
            .config
            .config
            .get_or_insert_with(|| Config::ModelConfigList(ModelConfigList::default()));
        match config {
            Config::ModelConfigList(list) => Ok(&mut list.config),
            Config::CustomModelConfig(_) => Err(Error::CustomModelConfig {
                path: self.path.clone(),
            }),
        }
    }

    fn model_mut(&mut self, name: &str) -> Result<&mut ModelConfig> {
        let path = self.path.clone();
        self.list_mut()?
            .iter_mut()
            .find(|m| m.name == name)
            .ok_or_else(|| Error::UnknownModel {
                path,
                name: name.to_owned(),
            })
    }

    /// Adds a model served from `base_path` (`platform` is usually
    /// `"tensorflow"`), with Serving's default policy. Refused if a model of
    /// that name exists.
    pub fn add_model(&mut self, name: &str, base_path: &str, platform: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::InvalidArgument {
                what: "model name",
                text: String::new(),
                reason: "a model needs a name".to_owned(),
            });
        }
        let path = self.path.clone();
        let list = self.list_mut()?;
        if list.iter().any(|m| m.name == name) {
            return Err(Error::DuplicateModel {
                path,
                name: name.to_owned(),
            });
        }
        list.push(ModelConfig {
            name: name.to_owned(),
            base_path: base_path.to_owned(),
            model_platform: platform.to_owned(),
            ..ModelConfig::default()
        });
        Ok(())
    }

    /// Sets the version policy of model `name`.
    pub fn set_policy(&mut self, name: &str, policy: &VersionPolicy) -> Result<()> {
        self.model_mut(name)?.model_version_policy = Some(policy_to_proto(policy));
        Ok(())
    }

    /// Points `label` (e.g. `stable`, `canary`) of model `name` at `version`.
    ///
    /// Unless `force` is set, the version must exist under the model's base
    /// path and be one the model's policy loads, because Serving rejects a
    /// label on a version that is not loaded.
    pub fn set_label(&mut self, name: &str, label: &str, version: i64, force: bool) -> Result<()> {
        let refuse = |reason: String| Error::Label {
            model: name.to_owned(),
            label: label.to_owned(),
            version,
            reason,
        };
        if label.is_empty() {
            return Err(refuse("the label is empty".to_owned()));
        }
        if !force {
            let model = self.model(name)?;
            let base = Path::new(&model.base_path);
            let listing = BaseListing::read(base)
                .map_err(|e| refuse(format!("{e} (use --force to set the label anyway)")))?;
            if listing.find(version).is_none() {
                return Err(refuse(format!(
                    "{} has no version {version}",
                    base.display()
                )));
            }
            let policy = policy_from_proto(model.model_version_policy.as_ref());
            if !listing
                .aspired(&policy)
                .iter()
                .any(|c| c.version == version)
            {
                return Err(refuse(format!(
                    "the model's policy {policy} does not load it, and Serving only accepts \
                     labels on loaded versions; change the policy first, or use --force"
                )));
            }
        }
        self.model_mut(name)?
            .version_labels
            .insert(label.to_owned(), version);
        Ok(())
    }

    /// Removes `label` from model `name`; returns whether it was there.
    pub fn remove_label(&mut self, name: &str, label: &str) -> Result<bool> {
        Ok(self.model_mut(name)?.version_labels.remove(label).is_some())
    }

    /// The config in text format, as [`save`](Self::save) writes it.
    pub fn to_text(&self) -> Result<String> {
        savedmodel_proto::text_format::print(&self.config).map_err(|source| Error::ConfigPrint {
            path: self.path.clone(),
            source,
        })
    }

    /// Writes the config back to its file atomically: a temporary sibling
    /// is written, fsynced and renamed over the file, then the directory is
    /// fsynced. A symbolic link is followed, so the file it points at is
    /// replaced and the link kept.
    pub fn save(&self) -> Result<()> {
        let text = self.to_text()?;
        let target = fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        // Hidden, with the process id: what a killed save leaves behind
        // (docs/threats.md).
        let temp = config_temp_name(&target);
        let mut file = StagedFile::create_as(&target, temp)
            .map_err(|e| Error::io("create a temporary file beside", &target, e.into_source()))?;
        if let Ok(existing) = fs::metadata(&target) {
            // Keep the mode of the file being replaced.
            file.file()
                .set_permissions(existing.permissions())
                .map_err(|e| Error::io("set permissions of", file.temp_path(), e))?;
        }
        file.write_all(text.as_bytes())
            .map_err(|e| Error::io("write model config", file.temp_path(), e))?;
        file.commit(true).map_err(|e| match e {
            savedmodel_staged::Error::Sync { .. } => Error::staged("write model config", e),
            savedmodel_staged::Error::SyncDir { .. } => Error::staged("fsync directory", e),
            e => Error::io("replace model config", &target, e.into_source()),
        })
    }

    /// The versions under `base` that must not be removed: for every model
    /// served from `base`, the versions its policy loads, the versions it
    /// lists, and the versions its labels point at.
    ///
    /// Fails with [`Error::NoModelForBase`] when no model's `base_path` is
    /// `base` (compared after resolving both), so a typo cannot unpin
    /// everything.
    pub fn versions_to_keep(&self, base: &Path) -> Result<BTreeSet<i64>> {
        // The model first: a typo'd base path is named as such, not as missing.
        self.models_for(base)?;
        self.versions_to_keep_in(&BaseListing::read(base)?)
    }

    /// The models served from `base` (compared after resolving both); none
    /// is [`Error::NoModelForBase`].
    fn models_for(&self, base: &Path) -> Result<Vec<&ModelConfig>> {
        let wanted = resolve(base);
        let models: Vec<&ModelConfig> = self
            .models()
            .iter()
            .filter(|m| resolve(Path::new(&m.base_path)) == wanted)
            .collect();
        if models.is_empty() {
            return Err(Error::NoModelForBase {
                path: self.path.clone(),
                base: base.to_path_buf(),
            });
        }
        Ok(models)
    }

    /// [`versions_to_keep`](Self::versions_to_keep) for a base path already
    /// listed, e.g. one in a bucket (whose [`BaseListing`] is built with
    /// [`BaseListing::from_children`] and its URL as the base path).
    pub fn versions_to_keep_in(&self, listing: &BaseListing) -> Result<BTreeSet<i64>> {
        let models = self.models_for(listing.base())?;
        let mut keep = BTreeSet::new();
        for model in models {
            let policy = policy_from_proto(model.model_version_policy.as_ref());
            keep.extend(listing.aspired(&policy).iter().map(|c| c.version));
            if let VersionPolicy::Specific { versions } = &policy {
                keep.extend(versions.iter().copied());
            }
            keep.extend(model.version_labels.values().copied());
        }
        Ok(keep)
    }
}

/// Opens (creating it if needed) and locks `.<name>.lock` beside the file
/// `path` leads to; the lock lasts as long as the returned file.
fn lock_config(path: &Path) -> Result<fs::File> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "models.config".to_owned());
    let lock_path = savedmodel_staged::parent_dir(&target).join(format!(".{file_name}.lock"));
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| Error::io("open lock file", &lock_path, e))?;
    crate::sys::lock_exclusive(&file).map_err(|e| Error::io("lock", &lock_path, e))?;
    Ok(file)
}

/// A path resolved for comparison: canonical when it exists, otherwise
/// without trailing separators.
fn resolve(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.components().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NextVersion, publish};

    /// A config in the style of TensorFlow Serving's documentation.
    const SERVING_STYLE: &str = r#"
model_config_list {
  config {
    name: 'half_plus_two'
    base_path: '/models/half_plus_two'
    model_platform: 'tensorflow'
    model_version_policy {
      specific {
        versions: 1
        versions: 2
      }
    }
    version_labels {
      key: 'stable'
      value: 1
    }
    version_labels {
      key: 'canary'
      value: 2
    }
  }
  config: {
    name: "other",
    base_path: "/models/other",
    model_platform: "tensorflow"
  }
}
"#;

    #[test]
    fn temporary_names_are_recognised() {
        let temp = config_temp_name(Path::new("/etc/serving/models.config"));
        let name = temp.file_name().unwrap().to_str().unwrap();
        assert!(is_config_temp_name(name), "{name}");
        assert_eq!(temp.parent(), Some(Path::new("/etc/serving")));
        for name in [
            "models.config",
            ".models.config.lock",
            ".models.config.tmp-",
            ".models.config.tmp-12",
            ".models.config.tmp-12-0123456789abcde",
            ".models.config.tmp-x2-0123456789abcdef",
            ".models.config.tmp--0123456789abcdef",
            "..tmp-12-0123456789abcdef",
            ".7.tmp-0123456789abcdef",
        ] {
            assert!(!is_config_temp_name(name), "{name}");
        }
    }

    #[test]
    fn concurrent_editors_lose_no_edit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("models.config");
        // Eight editors, each holding its own open lock file (as eight
        // processes would), each adding one model after a pause between
        // reading and saving that makes a lost update certain without the
        // lock.
        std::thread::scope(|scope| {
            for i in 0..8 {
                let path = &path;
                scope.spawn(move || {
                    ModelsConfig::edit(path, true, |c| {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        c.add_model(&format!("m{i}"), &format!("/models/m{i}"), "tensorflow")
                    })
                    .unwrap();
                });
            }
        });
        let names: BTreeSet<String> = ModelsConfig::load(&path)
            .unwrap()
            .models()
            .iter()
            .map(|m| m.name.clone())
            .collect();
        assert_eq!(names, (0..8).map(|i| format!("m{i}")).collect());
        // A failed edit saves nothing.
        let before = fs::read(&path).unwrap();
        let err = ModelsConfig::edit(&path, false, |c| c.add_model("m0", "/x", "tensorflow"));
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), before);
        // Without create, a missing file is an error naming it.
        let missing = dir.path().join("none.config");
        let err = ModelsConfig::edit(&missing, false, |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("none.config"), "{err}");
        assert!(!missing.exists());
    }

    #[test]
    fn parses_serving_style_configs() {
        let config = ModelsConfig::parse(Path::new("models.config"), SERVING_STYLE).unwrap();
        assert_eq!(config.models().len(), 2);
        let model = config.model("half_plus_two").unwrap();
        assert_eq!(model.base_path, "/models/half_plus_two");
        assert_eq!(
            policy_from_proto(model.model_version_policy.as_ref()),
            VersionPolicy::Specific {
                versions: vec![1, 2]
            }
        );
        assert_eq!(model.version_labels["canary"], 2);
        let other = config.model("other").unwrap();
        assert_eq!(
            policy_from_proto(other.model_version_policy.as_ref()),
            VersionPolicy::Latest { num_versions: 1 }
        );
        let err = config.model("nope").unwrap_err();
        assert_eq!(err.to_string(), "models.config has no model named \"nope\"");
    }

    #[test]
    fn bad_text_names_the_file() {
        let err = ModelsConfig::parse(Path::new("/etc/m.config"), "model_config_list { bogus: 1 }")
            .unwrap_err();
        assert!(
            err.to_string().starts_with("cannot parse /etc/m.config"),
            "{err}"
        );
    }

    #[test]
    fn edits_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("mnist");
        fs::create_dir(&base).unwrap();
        for _ in 0..3 {
            publish(&base, NextVersion::Increment, |d| {
                fs::write(d.join("saved_model.pb"), b"g")
            })
            .unwrap();
        }
        let path = dir.path().join("models.config");
        let mut config = ModelsConfig::load_or_new(&path).unwrap();
        assert!(config.models().is_empty());
        config
            .add_model("mnist", base.to_str().unwrap(), "tensorflow")
            .unwrap();
        let err = config.add_model("mnist", "/x", "tensorflow").unwrap_err();
        assert!(matches!(err, Error::DuplicateModel { .. }), "{err}");

        // Default policy loads only version 3: a label on 2 is refused.
        let err = config.set_label("mnist", "stable", 2, false).unwrap_err();
        assert!(err.to_string().contains("does not load it"), "{err}");
        let err = config.set_label("mnist", "stable", 9, false).unwrap_err();
        assert!(err.to_string().contains("has no version 9"), "{err}");
        config
            .set_policy("mnist", &VersionPolicy::Latest { num_versions: 2 })
            .unwrap();
        config.set_label("mnist", "stable", 2, false).unwrap();
        config.set_label("mnist", "canary", 3, false).unwrap();
        config.set_label("mnist", "old", 1, true).unwrap();
        config.save().unwrap();

        let reread = ModelsConfig::load(&path).unwrap();
        let model = reread.model("mnist").unwrap();
        assert_eq!(model.model_platform, "tensorflow");
        assert_eq!(
            model
                .version_labels
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect::<Vec<_>>(),
            [("canary", 3), ("old", 1), ("stable", 2)]
        );
        assert_eq!(reread.versions_to_keep(&base).unwrap(), [1, 2, 3].into());
        // No temporary file is left beside the config.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");

        let mut edited = reread.clone();
        assert!(edited.remove_label("mnist", "old").unwrap());
        assert!(!edited.remove_label("mnist", "old").unwrap());
        assert_eq!(edited.versions_to_keep(&base).unwrap(), [2, 3].into());
        let err = edited
            .versions_to_keep(&dir.path().join("elsewhere"))
            .unwrap_err();
        assert!(matches!(err, Error::NoModelForBase { .. }), "{err}");
    }

    #[test]
    fn save_failures_name_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/models.config");
        let mut config = ModelsConfig::load_or_new(&path).unwrap();
        config.add_model("a", "/models/a", "tensorflow").unwrap();
        let err = config.save().unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "cannot create a temporary file beside {}: ",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn printed_text_is_what_serving_reads() {
        let mut config = ModelsConfig::load_or_new(Path::new("m.config")).unwrap();
        config.add_model("a", "/models/a", "tensorflow").unwrap();
        config.set_policy("a", &VersionPolicy::All).unwrap();
        config.set_label("a", "stable", 4, true).unwrap();
        assert_eq!(
            config.to_text().unwrap(),
            "model_config_list {\n  config {\n    name: \"a\"\n    base_path: \"/models/a\"\n    \
             model_platform: \"tensorflow\"\n    model_version_policy {\n      all {\n      }\n    \
             }\n    version_labels {\n      key: \"stable\"\n      value: 4\n    }\n  }\n}\n"
        );
    }
}
