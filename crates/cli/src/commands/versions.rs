//! `savedmodel versions`: what TensorFlow Serving sees in a base path, the
//! next version number, and garbage collection.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use savedmodel_layout::{
    BaseListing, ChildKind, GcOptions, ModelsConfig, NextVersion, VersionChild, VersionPolicy,
    collect_garbage, leftover_age, leftover_in_use, next_version,
};

const VERSIONS_HELP: &str = "\
A child of BASE is a version when TensorFlow Serving would parse its name as a
64-bit integer: optional sign, surrounding whitespace and leading zeros are
accepted (`00000123` is 123), files count as well as directories. For two names
with the same number (`7` and `007`) Serving loads the one that sorts last.

Examples:
  savedmodel versions /models/mnist
  savedmodel versions /models/mnist --policy latest:2
  savedmodel versions /models/mnist --policy specific:3,5
  savedmodel versions next /models/mnist --numbering unix
  savedmodel versions gc /models/mnist --keep 3 --keep-config models.config --dry-run
  savedmodel versions s3://bucket/models/mnist
  savedmodel versions gc s3://bucket/models/mnist --grace 3600

In a bucket (s3://, gs://) a version directory without saved_model.pb is
incomplete: a publish in progress, or one that failed or was killed. Serving
cannot load it; `versions gc` removes it once older than --grace.";

/// `savedmodel versions`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = VERSIONS_HELP
)]
pub(crate) struct VersionsArgs {
    /// `next` or `gc`; without one, lists the versions in BASE.
    #[command(subcommand)]
    command: Option<VersionsCommand>,
    /// The model's base path (the directory holding the numbered versions),
    /// or s3://bucket/prefix, gs://bucket/prefix.
    #[arg(required = true)]
    base: Option<PathBuf>,
    /// Which versions to show as loaded: latest, latest:N, all or
    /// specific:V1,V2,...
    #[arg(long, default_value = "latest:1")]
    policy: VersionPolicy,
}

/// Subcommands of `savedmodel versions`.
#[derive(Debug, Subcommand)]
enum VersionsCommand {
    /// Print the version number the next publish into BASE would take.
    #[command(after_help = "\
`next` is the highest existing version + 1 (1 for an empty base path); `unix`
is the current time in seconds, as TensorFlow's exporters name versions, but
never below the highest version + 1.

Examples:
  savedmodel versions next /models/mnist
  savedmodel versions next /models/mnist --numbering unix")]
    Next {
        /// The model's base path.
        base: PathBuf,
        /// How to number the version: next or unix.
        #[arg(long, value_name = "SCHEME", default_value = "next", value_parser = parse_numbering)]
        numbering: NextVersion,
    },
    /// Remove what killed writers left in BASE, and with --keep old versions.
    #[command(after_help = "\
The temporaries of killed writers are removed: exporters' staging directories
(.savedmodel-staging-*), SavedModelBuilder and sharded checkpoint directories
(.<name>.tmp-<hex>), checkpoint writers' and `ckpt convert`'s files
(<name>.tempstate<n>, TensorFlow's too), models.config saves
(.<name>.tmp-<pid>-<hex>) and gc's own removal directories. One is removed
only when nothing in it was modified for --grace seconds and no running
process holds its lock (every savedmodel writer locks its temporary while it
lives); those of running writers are never touched. BASE may be any
directory: a base path, a checkpoint's directory, the one holding
models.config. With --keep N, versions other than the N highest holding a
saved_model.pb are removed too, except those the model config given with
--keep-config pins: versions its policy loads, lists, or labels. A version
without saved_model.pb (half-written by another tool, or a stray file)
neither counts nor goes: Serving fails to load it and goes on serving an
older one, which must stay. Versions are moved out of Serving's sight before
being deleted.

Examples:
  savedmodel versions gc /models/mnist
  savedmodel versions gc /models/mnist --grace 0
  savedmodel versions gc /models/mnist --keep 3 --dry-run
  savedmodel versions gc /models/mnist --keep 2 --keep-config /models/models.config")]
    Gc {
        /// The model's base path.
        base: PathBuf,
        /// Also remove versions beyond the N highest.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        keep: Option<u32>,
        /// Also keep the versions this models.config pins for BASE.
        #[arg(long, value_name = "FILE", requires = "keep")]
        keep_config: Option<PathBuf>,
        /// Show what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Remove a killed writer's temporary only when nothing was
        /// written to it for this many seconds (0: as soon as its writer is
        /// gone). In a bucket, where nothing is locked, a version without
        /// saved_model.pb (a failed or killed publish) likewise: there it
        /// must exceed the longest publish.
        #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
        grace: u64,
    },
}

fn parse_numbering(text: &str) -> Result<NextVersion, String> {
    match text.parse::<NextVersion>() {
        Ok(NextVersion::Explicit(_)) | Err(_) => Err(format!(
            "{text:?} is not a numbering scheme: expected next or unix"
        )),
        Ok(policy) => Ok(policy),
    }
}

/// Runs `savedmodel versions`.
pub(crate) fn run(args: VersionsArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(VersionsCommand::Next { base, numbering }) => {
            if let Some(url) = super::remote::remote_url(&base) {
                let remote = super::remote::open(url)?;
                let listing =
                    super::remote::block_on(savedmodel_objstore::RemoteListing::read(&remote))??;
                writeln!(out, "{}", listing.next_version(numbering)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            let listing = BaseListing::read(&base)?;
            writeln!(out, "{}", next_version(&listing, numbering)?)?;
        }
        Some(VersionsCommand::Gc {
            base,
            keep,
            keep_config,
            dry_run,
            grace,
        }) => {
            if let Some(url) = super::remote::remote_url(&base) {
                let options = RemoteGc {
                    keep,
                    keep_config: keep_config.as_deref(),
                    dry_run,
                    grace: std::time::Duration::from_secs(grace),
                };
                remote_gc(url, &options, out)?;
            } else {
                let options = LocalGc {
                    keep,
                    keep_config: keep_config.as_deref(),
                    dry_run,
                    grace: std::time::Duration::from_secs(grace),
                };
                gc(&base, &options, out)?;
            }
        }
        None => {
            let base = args
                .base
                .context("a base path is required (see savedmodel versions --help)")?;
            if let Some(url) = super::remote::remote_url(&base) {
                remote_list(url, &args.policy, out)?;
            } else {
                list(&base, &args.policy, out)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn kind_name(kind: ChildKind) -> &'static str {
    match kind {
        ChildKind::Directory => "directory",
        ChildKind::File => "file",
        ChildKind::Symlink => "symlink",
        ChildKind::Other => "other",
    }
}

/// `7`, or `7 ("007")` when the child's name is not the plain number.
fn version_and_name(child: &VersionChild) -> String {
    if child.name == child.version.to_string() {
        child.name.clone()
    } else {
        format!("{} ({:?})", child.version, child.name)
    }
}

/// The line saying what Serving's version policy would load, local and
/// remote listings alike.
fn write_policy_line(
    out: &mut dyn Write,
    policy: &VersionPolicy,
    loaded: &[String],
) -> anyhow::Result<()> {
    if loaded.is_empty() {
        writeln!(out, "policy {policy}: Serving would load nothing")?;
    } else {
        writeln!(
            out,
            "policy {policy}: Serving would load {}",
            loaded.join(", ")
        )?;
    }
    Ok(())
}

fn list(base: &Path, policy: &VersionPolicy, out: &mut dyn Write) -> anyhow::Result<()> {
    let listing = BaseListing::read(base)?;
    let aspired = listing.aspired(policy);
    let loaded: Vec<String> = aspired.iter().map(|c| version_and_name(c)).collect();
    writeln!(out, "base path {}", base.display())?;
    write_policy_line(out, policy, &loaded)?;
    if let VersionPolicy::Specific { versions } = policy {
        let missing: Vec<String> = versions
            .iter()
            .filter(|v| listing.find(**v).is_none())
            .map(i64::to_string)
            .collect();
        if !missing.is_empty() {
            writeln!(
                out,
                "not found (Serving logs a warning for each): {}",
                missing.join(", ")
            )?;
        }
    }
    if listing.version_children().is_empty() {
        writeln!(out, "no versions (no child name parses as an int64)")?;
    } else {
        writeln!(out)?;
        writeln!(
            out,
            "{:<20}  {:<20}  {:<9}  serving",
            "version", "name", "kind"
        )?;
        let winners = listing.versions();
        let mut children: Vec<_> = listing.version_children().iter().collect();
        children.sort_by(|a, b| b.version.cmp(&a.version).then(b.name.cmp(&a.name)));
        for child in children {
            let is_loaded = aspired.iter().any(|c| c.name == child.name);
            let winner = winners.get(&child.version).filter(|w| w.name != child.name);
            let status = match winner {
                _ if is_loaded => {
                    if listing.holds_saved_model(child) {
                        "loaded".to_owned()
                    } else {
                        "loaded, but holds no saved_model.pb: the load will fail".to_owned()
                    }
                }
                Some(winner) => format!(
                    "duplicate of {:?}, ignored by latest and specific",
                    winner.name
                ),
                None => "-".to_owned(),
            };
            writeln!(
                out,
                "{:<20}  {:<20}  {:<9}  {status}",
                child.version,
                format!("{:?}", child.name),
                kind_name(child.kind)
            )?;
        }
    }
    if !listing.leftovers().is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "leftovers of killed savedmodel writers, or of running ones (Serving ignores them):"
        )?;
        for leftover in listing.leftovers() {
            let path = base.join(&leftover.name);
            let state = if leftover.kind != leftover.leftover.child_kind() {
                format!(
                    "a {} where savedmodel makes a {}: not ours, left alone by gc",
                    kind_name(leftover.kind),
                    kind_name(leftover.leftover.child_kind())
                )
            } else {
                match leftover_in_use(&path) {
                    Ok(true) => "in use by a running process".to_owned(),
                    Ok(false) => match leftover_age(&path) {
                        Ok(age) => format!(
                            "dead, last written {} ago; `savedmodel versions gc` removes it once \
                             older than --grace",
                            human_age(age)
                        ),
                        Err(e) => format!("dead, age unknown: {e}"),
                    },
                    Err(e) => format!("state unknown: {e}"),
                }
            };
            writeln!(out, "  {}  ({state})", leftover.name)?;
        }
    }
    if !listing.ignored().is_empty() {
        let names: Vec<String> = listing
            .ignored()
            .iter()
            .map(|n| format!("{:?}", n.to_string_lossy()))
            .collect();
        writeln!(out)?;
        writeln!(
            out,
            "ignored by Serving (not numbers): {}",
            names.join(", ")
        )?;
    }
    Ok(())
}

/// `5 s`, `12 min`, `3 h`, `2 d`: an age, roughly.
fn human_age(age: std::time::Duration) -> String {
    let secs = age.as_secs();
    match secs {
        0..120 => format!("{secs} s"),
        120..7_200 => format!("{} min", secs / 60),
        7_200..172_800 => format!("{} h", secs / 3_600),
        _ => format!("{} d", secs / 86_400),
    }
}

/// `versions gc` options for a local directory.
struct LocalGc<'a> {
    keep: Option<u32>,
    keep_config: Option<&'a Path>,
    dry_run: bool,
    grace: std::time::Duration,
}

/// `versions gc` options for a bucket.
struct RemoteGc<'a> {
    keep: Option<u32>,
    keep_config: Option<&'a Path>,
    dry_run: bool,
    grace: std::time::Duration,
}

fn remote_list(url: &str, policy: &VersionPolicy, out: &mut dyn Write) -> anyhow::Result<()> {
    let remote = super::remote::open(url)?;
    let listing = super::remote::block_on(savedmodel_objstore::RemoteListing::read(&remote))??;
    let aspired = listing.aspired(policy);
    writeln!(out, "base path {remote}")?;
    let loaded: Vec<String> = aspired.iter().map(i64::to_string).collect();
    write_policy_line(out, policy, &loaded)?;
    if listing.versions().is_empty() {
        writeln!(out, "no versions (no child name parses as an int64)")?;
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<20}  {:<20}  {:>6}  {:>14}  state",
        "version", "name", "files", "bytes"
    )?;
    for version in listing.versions().iter().rev() {
        let state = match (version.complete, aspired.contains(&version.version)) {
            (true, true) => "complete, loaded",
            (true, false) => "complete",
            (false, true) => "incomplete (no saved_model.pb): Serving's load fails",
            (false, false) => {
                "incomplete (no saved_model.pb): publishing, or failed; gc removes it after --grace"
            }
        };
        writeln!(
            out,
            "{:<20}  {:<20}  {:>6}  {:>14}  {state}",
            version.version,
            format!("{:?}", version.name),
            version.files.len(),
            version.size()
        )?;
    }
    Ok(())
}

fn remote_gc(url: &str, gc: &RemoteGc<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    let remote = super::remote::open(url)?;
    let mut options = savedmodel_objstore::RemoteGcOptions {
        grace: gc.grace,
        keep_latest: gc.keep.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        dry_run: gc.dry_run,
        ..savedmodel_objstore::RemoteGcOptions::default()
    };
    if let Some(path) = gc.keep_config {
        let config = ModelsConfig::load(path)?;
        let listing = super::remote::block_on(savedmodel_objstore::RemoteListing::read(&remote))??;
        options.keep = config.versions_to_keep_in(listing.serving())?;
    }
    let report = super::remote::block_on(savedmodel_objstore::collect_remote_garbage(
        &remote, &options,
    ))??;
    let verb = if gc.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for name in &report.removed_incomplete {
        writeln!(
            out,
            "{verb} incomplete version {remote}/{name} (older than the grace period)"
        )?;
    }
    for name in &report.young_incomplete {
        writeln!(
            out,
            "kept incomplete version {remote}/{name}: written to within the grace period"
        )?;
    }
    for name in &report.removed_versions {
        writeln!(out, "{verb} version {remote}/{name}")?;
    }
    if gc.keep.is_some() {
        let kept: Vec<String> = report.kept_versions.iter().map(i64::to_string).collect();
        writeln!(out, "kept versions: {}", kept.join(", "))?;
    }
    if report.removed_incomplete.is_empty() && report.removed_versions.is_empty() {
        writeln!(out, "nothing to remove in {remote}")?;
    } else if gc.dry_run {
        writeln!(out, "dry run: nothing was removed")?;
    }
    Ok(())
}

fn gc(base: &Path, local: &LocalGc<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    let LocalGc {
        keep,
        keep_config,
        dry_run,
        grace,
    } = *local;
    let mut options = GcOptions {
        keep_latest: keep.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        dry_run,
        grace,
        ..GcOptions::default()
    };
    if let Some(path) = keep_config {
        let config = ModelsConfig::load(path)?;
        options.keep = config.versions_to_keep(base)?;
    }
    let report = collect_garbage(base, &options)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    for path in &report.removed_leftovers {
        writeln!(out, "{verb} {} (its writer is gone)", path.display())?;
    }
    for path in &report.live_leftovers {
        writeln!(out, "kept {} (in use by a running process)", path.display())?;
    }
    for path in &report.young_leftovers {
        writeln!(
            out,
            "kept {} (its writer is gone, but it was written to within the grace period, \
             --grace {})",
            path.display(),
            grace.as_secs()
        )?;
    }
    for child in &report.removed_versions {
        writeln!(
            out,
            "{verb} version {} ({})",
            child.version,
            base.join(&child.name).display()
        )?;
    }
    for child in &report.unusable_versions {
        writeln!(
            out,
            "kept version {} ({}): it holds no saved_model.pb, so Serving cannot load it and \
             it does not count toward --keep",
            child.version,
            base.join(&child.name).display()
        )?;
    }
    for child in &report.busy_versions {
        writeln!(
            out,
            "kept version {} ({}): in use by a running process",
            child.version,
            base.join(&child.name).display()
        )?;
    }
    if keep.is_some() {
        let kept: Vec<String> = report.kept_versions.iter().map(i64::to_string).collect();
        writeln!(out, "kept versions: {}", kept.join(", "))?;
    }
    let removed = report.removed_leftovers.len() + report.removed_versions.len();
    if removed == 0 {
        writeln!(out, "nothing to remove in {}", base.display())?;
    } else if dry_run {
        writeln!(out, "dry run: nothing was removed")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    fn run_args(args: &[&str]) -> anyhow::Result<String> {
        let cli = Cli::try_parse_from(args)?;
        let Command::Versions(versions) = cli.command else {
            panic!("not a versions command");
        };
        let mut out = Vec::new();
        run(versions, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    fn make_versions(base: &Path, names: &[&str]) {
        for name in names {
            std::fs::create_dir(base.join(name)).unwrap();
            std::fs::write(base.join(name).join("saved_model.pb"), b"g").unwrap();
        }
    }

    #[test]
    fn lists_versions_with_what_serving_loads() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        make_versions(base, &["1", "2", "007", "7", "temp-5"]);
        std::fs::create_dir(base.join(".savedmodel-staging-1-dead")).unwrap();
        let b = base.to_str().unwrap();
        let text = run_args(&["savedmodel", "versions", b, "--policy", "latest:2"]).unwrap();
        assert!(
            text.contains("policy latest:2: Serving would load 7, 2"),
            "{text}"
        );
        assert!(text.contains("duplicate of \"7\""), "{text}");
        assert!(text.contains(".savedmodel-staging-1-dead  (dead"), "{text}");
        assert!(
            text.contains("ignored by Serving (not numbers): \"temp-5\""),
            "{text}"
        );
        let text = run_args(&["savedmodel", "versions", b, "--policy", "all"]).unwrap();
        assert!(
            text.contains("policy all: Serving would load 7 (\"007\"), 1, 2, 7\n"),
            "{text}"
        );

        // A version that is not a SavedModel directory, and a missing one.
        std::fs::write(base.join(" 9"), b"").unwrap();
        std::fs::create_dir(base.join("8")).unwrap();
        let text = run_args(&["savedmodel", "versions", b, "--policy", "latest:2"]).unwrap();
        assert!(
            text.contains("policy latest:2: Serving would load 9 (\" 9\"), 8\n"),
            "{text}"
        );
        assert!(
            text.contains("\" 9\"                  file       loaded, but holds no saved_model.pb"),
            "{text}"
        );
        let text = run_args(&["savedmodel", "versions", b, "--policy", "specific:1,5,6"]).unwrap();
        assert!(text.contains("Serving would load 1\n"), "{text}");
        assert!(
            text.contains("not found (Serving logs a warning for each): 5, 6\n"),
            "{text}"
        );
    }

    #[test]
    fn next_and_gc() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        make_versions(base, &["1", "2", "3"]);
        let b = base.to_str().unwrap();
        assert_eq!(
            run_args(&["savedmodel", "versions", "next", b]).unwrap(),
            "4\n"
        );
        let unix: i64 = run_args(&["savedmodel", "versions", "next", b, "--numbering", "unix"])
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(unix > 1_700_000_000, "{unix}");
        assert!(run_args(&["savedmodel", "versions", "next", b, "--numbering", "7"]).is_err());

        let text = run_args(&[
            "savedmodel",
            "versions",
            "gc",
            b,
            "--keep",
            "1",
            "--dry-run",
        ])
        .unwrap();
        assert!(text.contains("would remove version 1"), "{text}");
        assert!(text.ends_with("dry run: nothing was removed\n"), "{text}");
        assert!(base.join("1").exists());
        let config = dir.path().join("models.config");
        std::fs::write(
            &config,
            format!(
                "model_config_list {{ config {{ name: 'm' base_path: '{b}' \
                 version_labels {{ key: 'stable' value: 2 }} }} }}"
            ),
        )
        .unwrap();
        let c = config.to_str().unwrap();
        let text = run_args(&[
            "savedmodel",
            "versions",
            "gc",
            b,
            "--keep",
            "1",
            "--keep-config",
            c,
        ])
        .unwrap();
        assert!(text.contains("removed version 1"), "{text}");
        assert!(text.contains("kept versions: 2, 3"), "{text}");
        assert!(!base.join("1").exists() && base.join("2").exists());
        // A half-written version on top neither counts toward --keep nor goes.
        std::fs::create_dir(base.join("4")).unwrap();
        let text = run_args(&["savedmodel", "versions", "gc", b, "--keep", "1"]).unwrap();
        assert!(text.contains("removed version 2"), "{text}");
        assert!(
            text.contains("kept version 4 (") && text.contains("it holds no saved_model.pb"),
            "{text}"
        );
        assert!(text.contains("kept versions: 3, 4"), "{text}");
        assert!(run_args(&["savedmodel", "versions", "gc", b, "--keep", "0"]).is_err());
        assert!(run_args(&["savedmodel", "versions", "gc", b, "--keep-config", c]).is_err());
    }

    #[test]
    fn base_path_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = run_args(&["savedmodel", "versions", missing.to_str().unwrap()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("base path {} does not exist", missing.display())
        );
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let err = run_args(&["savedmodel", "versions", "gc", file.to_str().unwrap()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("base path {} is not a directory", file.display())
        );
    }
}
