//! `savedmodel publish`: put an existing SavedModel directory under a base
//! path as a new version, atomically.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use savedmodel_layout::{NextVersion, OutsideLinks, PublishMode, publish_dir};

/// `savedmodel publish`.
#[derive(Debug, Args)]
#[command(after_help = "\
The SavedModel is copied (or with --move, moved) into a staging directory
under BASE whose name TensorFlow Serving ignores, every file and directory is
fsynced, and the staging directory is renamed to the version number. An
existing version is never replaced, and Serving never sees a partial version:
if the publish fails or is killed, at most a staging directory remains, which
`savedmodel versions gc` removes.

A copy follows symbolic links, so the version holds what they point at; a
dangling link is an error. --move renames SRC_DIR itself and refuses links that
would dangle or point elsewhere from the new place. A link that leads out of
SRC_DIR (to /etc/passwd, or to another model's files) is refused unless
--follow-outside-links is given.

Examples:
  savedmodel publish ./export /models/mnist
  savedmodel publish ./export /models/mnist --version 42
  savedmodel publish ./export /models/mnist --numbering unix --move
  AWS_ENDPOINT_URL=http://127.0.0.1:9000 savedmodel publish ./export s3://models/mnist

In a bucket (s3://, gs://) the version number is claimed with a conditional
create under BASE/.savedmodel-claims/, every file but saved_model.pb is
uploaded and checked, and saved_model.pb is written last, conditionally: a
version without it is incomplete, never loadable; `versions gc` removes it
after a grace period. See docs/formats.md, \"Versions in object storage\".")]
pub(crate) struct PublishArgs {
    /// The SavedModel directory to publish (holding saved_model.pb).
    src_dir: PathBuf,
    /// The model's base path, where Serving looks for numbered versions: a
    /// directory, s3://bucket/prefix or gs://bucket/prefix.
    base: PathBuf,
    /// Publish as exactly this version; refused if it exists.
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        conflicts_with = "numbering"
    )]
    version: Option<i64>,
    /// How to number the version when --version is not given: next (highest
    /// + 1) or unix (seconds since 1970, never below highest + 1).
    #[arg(long, value_name = "SCHEME", default_value = "next", value_parser = parse_numbering)]
    numbering: NextVersion,
    /// Move SRC_DIR into place instead of copying it.
    #[arg(long = "move")]
    move_source: bool,
    /// Publish what symbolic links leading out of SRC_DIR point at (copied;
    /// kept as links with --move) instead of refusing them.
    #[arg(long)]
    follow_outside_links: bool,
}

fn parse_numbering(text: &str) -> Result<NextVersion, String> {
    match text.parse::<NextVersion>() {
        Ok(NextVersion::Explicit(_)) | Err(_) => Err(format!(
            "{text:?} is not a numbering scheme: expected next or unix (use --version N for a number)"
        )),
        Ok(policy) => Ok(policy),
    }
}

/// Runs `savedmodel publish`.
pub(crate) fn run(args: PublishArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let next = args.version.map_or(args.numbering, NextVersion::Explicit);
    let mode = if args.move_source {
        PublishMode::Move
    } else {
        PublishMode::Copy
    };
    let outside_links = if args.follow_outside_links {
        OutsideLinks::Follow
    } else {
        OutsideLinks::Refuse
    };
    if let Some(url) = super::remote::remote_url(&args.base) {
        if args.move_source || args.follow_outside_links {
            anyhow::bail!(
                "--move and --follow-outside-links are for local base paths; {url} is in a bucket"
            );
        }
        let base = super::remote::open(url)?;
        let bars = super::remote::Bars::new("uploading");
        let published = super::remote::block_on(savedmodel_objstore::publish_remote(
            &args.src_dir,
            &base,
            next,
            savedmodel_objstore::TransferOptions::default(),
            &bars,
        ))??;
        drop(bars);
        writeln!(
            out,
            "published {} as version {} at {} ({} files, {} bytes)",
            args.src_dir.display(),
            published.version,
            published.url,
            published.files,
            published.bytes
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let published = publish_dir(&args.src_dir, &args.base, next, mode, outside_links)?;
    writeln!(
        out,
        "published {} as version {} at {}",
        args.src_dir.display(),
        published.version,
        published.path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    fn run_args(args: &[&str]) -> anyhow::Result<String> {
        let cli = Cli::try_parse_from(args)?;
        let Command::Publish(publish) = cli.command else {
            panic!("not a publish command");
        };
        let mut out = Vec::new();
        run(publish, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn publishes_copies_and_moves() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("export");
        std::fs::create_dir_all(src.join("variables")).unwrap();
        std::fs::write(src.join("saved_model.pb"), b"g").unwrap();
        let base = dir.path().join("base");
        std::fs::create_dir(&base).unwrap();
        let (s, b) = (src.to_str().unwrap(), base.to_str().unwrap());

        let text = run_args(&["savedmodel", "publish", s, b]).unwrap();
        assert!(text.contains("as version 1 at"), "{text}");
        let text = run_args(&["savedmodel", "publish", s, b, "--version", "9"]).unwrap();
        assert!(text.contains("as version 9"), "{text}");
        let err = run_args(&["savedmodel", "publish", s, b, "--version", "9"]).unwrap_err();
        assert!(
            err.to_string().contains("version 9 already exists"),
            "{err}"
        );
        let text = run_args(&["savedmodel", "publish", s, b, "--move"]).unwrap();
        assert!(text.contains("as version 10"), "{text}");
        assert!(!src.exists());
        assert!(base.join("10/saved_model.pb").is_file());
        assert!(run_args(&["savedmodel", "publish", s, b, "--numbering", "latest"]).is_err());
        assert!(
            run_args(&[
                "savedmodel",
                "publish",
                s,
                b,
                "--numbering",
                "unix",
                "--version",
                "3"
            ])
            .is_err()
        );
    }

    #[test]
    fn missing_source_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("nope");
        let err = run_args(&[
            "savedmodel",
            "publish",
            src.to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read source directory {}: ", src.display())),
            "{err}"
        );
    }
}
