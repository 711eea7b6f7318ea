//! `savedmodel sync`: mirror the complete versions of a base path between a
//! bucket and a local directory, for a TensorFlow Serving sidecar.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use savedmodel_objstore::{SyncOptions, SyncReport, sync_down, sync_up};

use super::remote::{Bars, block_on, open, remote_url};

/// `savedmodel sync`.
#[derive(Debug, Args)]
#[command(after_help = "\
One of SRC and DST is a bucket base path (s3://bucket/prefix, gs://...), the
other a local base path. Only complete versions (holding saved_model.pb) are
copied, each under its own number, and only versions the destination lacks.

Downloading, a version is written under DST/.savedmodel-sync-<N>/ (a name
Serving ignores), every file checked against its size and the publisher's
manifest, and renamed to DST/<N> when complete: Serving never sees half of
it. A sync that fails resumes without fetching the finished files again.
Uploading, each version goes through the publish protocol (saved_model.pb
last) under its local number; an upload an earlier sync left unfinished is
resumed.

Examples:
  savedmodel sync s3://bucket/models/mnist /models/mnist
  savedmodel sync s3://bucket/models/mnist /models/mnist --delete --watch 30
  savedmodel sync /models/mnist gs://bucket/models/mnist")]
pub(crate) struct SyncArgs {
    /// Where the versions come from.
    src: PathBuf,
    /// Where they go (a missing local directory is created).
    dst: PathBuf,
    /// Also remove complete versions at DST that SRC does not have.
    #[arg(long)]
    delete: bool,
    /// Keep syncing, every SECONDS seconds (a Serving sidecar); an error
    /// in one round is printed and the next round retries.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    watch: Option<u64>,
}

/// Runs `savedmodel sync`.
pub(crate) fn run(args: SyncArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let Some(interval) = args.watch else {
        once(&args, out)?;
        return Ok(ExitCode::SUCCESS);
    };
    loop {
        if let Err(e) = once(&args, out) {
            // A server gone for a moment must not stop a sidecar.
            writeln!(out, "sync failed, retrying in {interval} s: {e:#}")?;
        }
        out.flush()?;
        std::thread::sleep(Duration::from_secs(interval));
    }
}

fn once(args: &SyncArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let options = SyncOptions {
        delete: args.delete,
        ..SyncOptions::default()
    };
    let (report, to) = match (remote_url(&args.src), remote_url(&args.dst)) {
        (Some(src), None) => {
            let src = open(src)?;
            if !args.dst.exists() {
                std::fs::create_dir_all(&args.dst)
                    .with_context(|| format!("creating base path {}", args.dst.display()))?;
            }
            let bars = Bars::new("downloading");
            (
                block_on(sync_down(&src, &args.dst, options, &bars))??,
                args.dst.display().to_string(),
            )
        }
        (None, Some(dst)) => {
            let dst = open(dst)?;
            let bars = Bars::new("uploading");
            let report = block_on(sync_up(&args.src, &dst, options, &bars))??;
            (report, dst.to_string())
        }
        _ => bail!("one of SRC and DST must be a bucket (s3://, gs://) and the other a local path"),
    };
    print_report(&report, &to, out)
}

fn print_report(report: &SyncReport, to: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    for version in &report.copied {
        writeln!(out, "copied version {version} to {to}")?;
    }
    for version in &report.deleted {
        writeln!(out, "deleted version {version} from {to}")?;
    }
    for version in &report.conflicts {
        writeln!(
            out,
            "skipped version {version}: {to} holds it under another publisher's claim"
        )?;
    }
    if report.copied.is_empty() && report.deleted.is_empty() {
        writeln!(
            out,
            "{to} is up to date ({} versions)",
            report.present.len()
        )?;
    }
    Ok(())
}
