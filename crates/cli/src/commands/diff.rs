//! `savedmodel diff`: what changed between two SavedModels, and whether it
//! breaks clients of the old one ([`savedmodel_diff`] does the work).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use savedmodel_diff::{DiffOptions, diff, latest_two, version_dirs};

const DIFF_HELP: &str = "\
Compares tag sets, signatures (method, inputs, outputs, dtypes, shapes),
variables (from the checkpoint indexes: shape, dtype, size, CRC32C; with
--values the largest absolute and relative difference of each changed
tensor), ops, assets, assets.extra and the init op.

Exit status: 0 identical, 1 different but compatible with clients of the
old version, 3 breaking (a removed signature or input, a changed dtype, a
narrowed input shape, ...), 2 error.

Examples:
  savedmodel diff /models/x/41 /models/x/42
  savedmodel diff /models/x 41 42
  savedmodel diff /models/x --latest --values
  savedmodel diff /models/x --latest --json";

/// `savedmodel diff`.
#[derive(Debug, Args)]
#[command(after_help = DIFF_HELP)]
pub(crate) struct DiffArgs {
    /// OLD NEW (two SavedModel directories), BASE OLD_VERSION NEW_VERSION,
    /// or BASE with --latest.
    #[arg(value_name = "PATHS", num_args = 1..=3, required = true)]
    paths: Vec<String>,
    /// Compare the two highest versions of BASE that hold a SavedModel.
    #[arg(long)]
    latest: bool,
    /// Also read the tensor data of changed variables (memory-mapped) and
    /// report their largest absolute and relative differences.
    #[arg(long)]
    values: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `savedmodel diff`, writing to `out`.
pub(crate) fn run(args: DiffArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let (old, new) = match (args.latest, args.paths.as_slice()) {
        (true, [base]) => latest_two(base.as_ref())?,
        (true, _) => bail!("--latest takes one BASE path"),
        (false, [old, new]) => (PathBuf::from(old), PathBuf::from(new)),
        (false, [base, old, new]) => {
            let version = |text: &str| {
                text.trim()
                    .parse::<i64>()
                    .with_context(|| format!("version '{text}' is not a number"))
            };
            version_dirs(base.as_ref(), version(old)?, version(new)?)?
        }
        (false, _) => bail!("give OLD NEW, BASE OLD_VERSION NEW_VERSION, or BASE --latest"),
    };
    let report = diff(&old, &new, DiffOptions::default().with_values(args.values))?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{report}")?;
    }
    out.flush()?;
    Ok(ExitCode::from(report.verdict.exit_code()))
}
