//! Command-line arguments. Each subcommand's arguments live beside its code in
//! `commands/`; this file only lists them.

use clap::{Parser, Subcommand};

use crate::commands;

/// Write, read, check and publish TensorFlow SavedModels and checkpoints
/// without TensorFlow.
#[derive(Debug, Parser)]
#[command(name = "savedmodel", version, about, long_about = None)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Inspect, verify and convert TensorFlow checkpoints (TensorBundle).
    #[command(subcommand)]
    Ckpt(commands::ckpt::CkptCommand),
    /// List the versions in a base path as TensorFlow Serving sees them; next
    /// version number; remove leftovers and old versions.
    Versions(commands::versions::VersionsArgs),
    /// Publish a SavedModel directory into a base path as a new version,
    /// atomically.
    Publish(commands::publish::PublishArgs),
    /// Read and edit TensorFlow Serving's model config file (models.config).
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Show a SavedModel's tag sets, signatures and ops, as `saved_model_cli
    /// show` does.
    Show(commands::show::ShowArgs),
    /// Check a SavedModel for what would make TensorFlow Serving fail to load
    /// or serve it.
    Validate(commands::validate::ValidateArgs),
    /// Build a SavedModel from trained weights (.safetensors, .npz or a
    /// checkpoint) and a model spec, and publish it as a new version.
    Export(commands::export::ExportArgs),
    /// Compare two SavedModels (or two versions of a base path): signatures,
    /// variables, ops, assets; exit 0 identical, 1 compatible, 3 breaking.
    Diff(commands::diff::DiffArgs),
    /// Draw the graph a signature runs: SVG (laid out without Graphviz), DOT
    /// or self-contained HTML.
    Graph(commands::graph::GraphArgs),
    /// Mirror the complete versions of a base path between a bucket
    /// (s3://, gs://) and a local directory, each version appearing only
    /// when complete.
    Sync(commands::sync::SyncArgs),
}
