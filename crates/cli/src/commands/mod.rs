//! One module per command.

pub(crate) mod ckpt;
pub(crate) mod config;
pub(crate) mod diff;
pub(crate) mod export;
mod export_onnx;
pub(crate) mod graph;
pub(crate) mod publish;
mod remote;
pub(crate) mod show;
pub(crate) mod sync;
pub(crate) mod validate;
pub(crate) mod versions;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Runs the parsed command line and returns the process exit code.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Ckpt(command) => ckpt::run(command),
        Command::Versions(args) => versions::run(args, &mut std::io::stdout().lock()),
        Command::Publish(args) => publish::run(args, &mut std::io::stdout().lock()),
        Command::Config(command) => config::run(command, &mut std::io::stdout().lock()),
        Command::Show(args) => show::run(args, &mut std::io::stdout().lock()),
        Command::Validate(args) => validate::run(args, &mut std::io::stdout().lock()),
        Command::Export(args) => export::run(args, &mut std::io::stdout().lock()),
        Command::Diff(args) => diff::run(args, &mut std::io::stdout().lock()),
        Command::Graph(args) => graph::run(args, &mut std::io::stdout().lock()),
        Command::Sync(args) => sync::run(args, &mut std::io::stdout().lock()),
    }
}
