//! `savedmodel config`: read and edit TensorFlow Serving's model config file
//! (`models.config`, a `ModelServerConfig` in text format).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use savedmodel_layout::{BaseListing, ModelsConfig, VersionPolicy, policy_from_proto};

/// `savedmodel config` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Show the models in a model config file and what Serving would load.
    #[command(after_help = "\
Examples:
  savedmodel config show /models/models.config")]
    Show {
        /// The model config file (ModelServerConfig in text format).
        config: PathBuf,
    },
    /// Add a model; creates the file if it does not exist.
    #[command(after_help = "\
Edits rewrite the whole file atomically (a temporary file beside it is
fsynced and renamed over it); comments in the file are not kept.

Examples:
  savedmodel config add-model models.config mnist /models/mnist
  savedmodel config add-model models.config mnist /models/mnist --policy latest:2")]
    AddModel {
        /// The model config file.
        config: PathBuf,
        /// The model's name, as clients ask for it.
        name: String,
        /// The model's base path as the server sees it (absolute is safest:
        /// Serving resolves a relative path against its working directory).
        base_path: String,
        /// The model platform.
        #[arg(long, default_value = "tensorflow")]
        platform: String,
        /// The version policy: latest, latest:N, all or specific:V1,V2,...
        #[arg(long)]
        policy: Option<VersionPolicy>,
    },
    /// Set a model's version policy.
    #[command(after_help = "\
Edits rewrite the whole file atomically (a temporary file beside it is
fsynced and renamed over it); comments in the file are not kept.

Examples:
  savedmodel config set-policy models.config mnist latest:2
  savedmodel config set-policy models.config mnist specific:3,4
  savedmodel config set-policy models.config mnist all")]
    SetPolicy {
        /// The model config file.
        config: PathBuf,
        /// The model's name.
        name: String,
        /// latest, latest:N, all or specific:V1,V2,...
        policy: VersionPolicy,
    },
    /// Point a version label (stable, canary, ...) at a version.
    #[command(after_help = "\
Serving only accepts a label on a version it has loaded, so the version must
exist under the model's base path and be loaded by the model's policy; --force
skips these checks (for example when the base path is only visible inside the
server's container, or the server runs with
--allow_version_labels_for_unavailable_models).

Edits rewrite the whole file atomically (a temporary file beside it is
fsynced and renamed over it); comments in the file are not kept.

Examples:
  savedmodel config set-label models.config mnist stable 3
  savedmodel config set-label models.config mnist canary 4")]
    SetLabel {
        /// The model config file.
        config: PathBuf,
        /// The model's name.
        name: String,
        /// The label.
        label: String,
        /// The version it points at.
        #[arg(allow_negative_numbers = true)]
        version: i64,
        /// Skip the checks that the version exists and is loaded.
        #[arg(long)]
        force: bool,
    },
    /// Remove a version label.
    #[command(after_help = "\
Examples:
  savedmodel config remove-label models.config mnist canary")]
    RemoveLabel {
        /// The model config file.
        config: PathBuf,
        /// The model's name.
        name: String,
        /// The label.
        label: String,
    },
}

/// Runs a `savedmodel config` subcommand.
pub(crate) fn run(command: ConfigCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Show { config } => show(&ModelsConfig::load(&config)?, out)?,
        ConfigCommand::AddModel {
            config,
            name,
            base_path,
            platform,
            policy,
        } => {
            ModelsConfig::edit(&config, true, |models| {
                models.add_model(&name, &base_path, &platform)?;
                if let Some(policy) = &policy {
                    models.set_policy(&name, policy)?;
                }
                Ok(())
            })?;
            writeln!(
                out,
                "added model {name:?} ({base_path}) to {}",
                config.display()
            )?;
            if Path::new(&base_path).is_relative() && !savedmodel_objstore::is_remote(&base_path) {
                writeln!(
                    out,
                    "note: Serving resolves the relative base path {base_path:?} against its \
                     working directory"
                )?;
            }
        }
        ConfigCommand::SetPolicy {
            config,
            name,
            policy,
        } => {
            ModelsConfig::edit(&config, false, |models| models.set_policy(&name, &policy))?;
            writeln!(out, "model {name:?} now uses policy {policy}")?;
        }
        ConfigCommand::SetLabel {
            config,
            name,
            label,
            version,
            force,
        } => {
            ModelsConfig::edit(&config, false, |models| {
                models.set_label(&name, &label, version, force)
            })?;
            writeln!(
                out,
                "label {label:?} of model {name:?} now points at version {version}"
            )?;
        }
        ConfigCommand::RemoveLabel {
            config,
            name,
            label,
        } => {
            if ModelsConfig::edit(&config, false, |models| models.remove_label(&name, &label))? {
                writeln!(out, "removed label {label:?} of model {name:?}")?;
            } else {
                anyhow::bail!(
                    "{}: model {name:?} has no label {label:?}",
                    config.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A base path in a bucket as Serving lists it.
fn remote_listing(url: &str) -> anyhow::Result<BaseListing> {
    let remote = super::remote::open(url)?;
    let listing = super::remote::block_on(savedmodel_objstore::RemoteListing::read(&remote))??;
    Ok(listing.serving().clone())
}

fn show(models: &ModelsConfig, out: &mut dyn Write) -> anyhow::Result<()> {
    if models.models().is_empty() {
        writeln!(out, "{}: no models", models.path().display())?;
        return Ok(());
    }
    for model in models.models() {
        let policy = policy_from_proto(model.model_version_policy.as_ref());
        writeln!(out, "model {:?}", model.name)?;
        writeln!(out, "  base path: {}", model.base_path)?;
        writeln!(out, "  platform:  {}", model.model_platform)?;
        writeln!(out, "  policy:    {policy}")?;
        for (label, version) in &model.version_labels {
            writeln!(out, "  label:     {label} -> {version}")?;
        }
        let listing = if savedmodel_objstore::is_remote(&model.base_path) {
            remote_listing(&model.base_path)
        } else {
            BaseListing::read(Path::new(&model.base_path)).map_err(anyhow::Error::from)
        };
        match listing {
            Ok(listing) => {
                let loaded: Vec<String> = listing
                    .aspired(&policy)
                    .iter()
                    .map(|c| c.version.to_string())
                    .collect();
                writeln!(out, "  loads:     {}", or_none(&loaded.join(", ")))?;
            }
            Err(e) => writeln!(out, "  loads:     unknown ({e})")?,
        }
    }
    Ok(())
}

fn or_none(text: &str) -> &str {
    if text.is_empty() { "nothing" } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    fn run_args(args: &[&str]) -> anyhow::Result<String> {
        let cli = Cli::try_parse_from(args)?;
        let Command::Config(config) = cli.command else {
            panic!("not a config command");
        };
        let mut out = Vec::new();
        run(config, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn creates_and_edits_a_config() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("mnist");
        for v in ["1", "2", "3"] {
            std::fs::create_dir_all(base.join(v)).unwrap();
            std::fs::write(base.join(v).join("saved_model.pb"), b"g").unwrap();
        }
        let config = dir.path().join("models.config");
        let (c, b) = (config.to_str().unwrap(), base.to_str().unwrap());

        run_args(&["savedmodel", "config", "add-model", c, "mnist", b]).unwrap();
        let err = run_args(&[
            "savedmodel",
            "config",
            "set-label",
            c,
            "mnist",
            "stable",
            "2",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("does not load it"), "{err}");
        run_args(&["savedmodel", "config", "set-policy", c, "mnist", "latest:2"]).unwrap();
        run_args(&[
            "savedmodel",
            "config",
            "set-label",
            c,
            "mnist",
            "stable",
            "2",
        ])
        .unwrap();
        run_args(&[
            "savedmodel",
            "config",
            "set-label",
            c,
            "mnist",
            "canary",
            "3",
        ])
        .unwrap();

        let text = run_args(&["savedmodel", "config", "show", c]).unwrap();
        assert!(text.contains("policy:    latest:2"), "{text}");
        assert!(text.contains("label:     canary -> 3"), "{text}");
        assert!(text.contains("loads:     3, 2"), "{text}");
        let file = std::fs::read_to_string(&config).unwrap();
        assert!(file.contains("key: \"stable\"\n      value: 2"), "{file}");

        run_args(&["savedmodel", "config", "remove-label", c, "mnist", "canary"]).unwrap();
        assert!(run_args(&["savedmodel", "config", "remove-label", c, "mnist", "canary"]).is_err());
        let err = run_args(&["savedmodel", "config", "set-policy", c, "nope", "all"]).unwrap_err();
        assert!(
            err.to_string().contains("has no model named \"nope\""),
            "{err}"
        );
    }
}
