//! `savedmodel validate`: what would make TensorFlow Serving fail to load or
//! to serve a SavedModel, found before it does.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use savedmodel::validate::{Severity, ValidateOptions, validate};
use serde_json::json;

use super::show::parse_tag_set;

const VALIDATE_HELP: &str = "\
Prints one line per finding, `error: WHERE: WHAT` or `warning: WHERE: WHAT`,
then a summary. Errors are what would make TensorFlow Serving refuse the model
or fail requests it advertises (missing or corrupt files, unknown ops or
attrs, signatures naming missing tensors or breaking the classify/regress
rules, a missing restore or init op, variables missing from the checkpoint,
missing, duplicated or escaping assets, a bad warmup file); warnings are what
works but is fragile. Exits 1 when there is an error, 0 otherwise.

The model is judged as TensorFlow Serving with default flags would load it:
the MetaGraph whose tag set is exactly { serve } must exist (an error
otherwise), and every MetaGraph is checked. With --tags a,b it is judged for a
server started with --saved_model_tags=a,b: only the MetaGraph whose tag set
is exactly { a, b } is checked (an error when there is none), and the warmup
requests are replayed on it.

Examples:
  savedmodel validate /models/mnist/1
  savedmodel validate /models/mnist/1 --tags serve,gpu
  savedmodel validate /models/mnist/1 --json";

/// `savedmodel validate`.
#[derive(Debug, Args)]
#[command(after_help = VALIDATE_HELP)]
pub(crate) struct ValidateArgs {
    /// The SavedModel directory; also s3://bucket/prefix/N or gs://...,
    /// downloaded to a temporary directory first.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Validate for a server started with --saved_model_tags=TAGS: only the
    /// MetaGraph with exactly these comma-separated tags is checked.
    #[arg(
        long = "tags",
        visible_alias = "tag_set",
        alias = "tag-set",
        value_name = "TAGS"
    )]
    tags: Option<String>,
    /// Read only the checkpoint's index, not every tensor's bytes and
    /// checksum.
    #[arg(long)]
    no_checksums: bool,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `savedmodel validate`, writing the findings to `out`.
pub(crate) fn run(args: ValidateArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let mut options = ValidateOptions::default().verify_checksums(!args.no_checksums);
    if let Some(tags) = &args.tags {
        options = options.with_tags(parse_tag_set(tags)?);
    }
    // A directory in a bucket is downloaded to a temporary one first.
    let (local, _download) = super::remote::local_saved_model(&args.dir)?;
    let report = validate(&local, &options);
    let errors = report.errors().count();
    let warnings = report.warnings().count();
    if args.json {
        let findings: Vec<_> = report
            .findings
            .iter()
            .map(|f| {
                json!({
                    "severity": f.severity.to_string(),
                    "location": f.location,
                    "message": f.message,
                })
            })
            .collect();
        let value = json!({
            "dir": args.dir,
            "errors": errors,
            "warnings": warnings,
            "findings": findings,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        write!(out, "{report}")?;
        if report.is_clean() {
            writeln!(out, "{}: no problems found", args.dir.display())?;
        } else {
            writeln!(
                out,
                "{}: {errors} error(s), {warnings} warning(s)",
                args.dir.display()
            )?;
        }
    }
    Ok(
        if report
            .findings
            .iter()
            .any(|f| f.severity == Severity::Error)
        {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::commands::show::tests::fixture;
    use clap::Parser as _;

    fn run_args(args: &[&str]) -> (ExitCode, String) {
        let cli = Cli::try_parse_from(args).unwrap();
        let Command::Validate(validate) = cli.command else {
            panic!("not a validate command");
        };
        let mut out = Vec::new();
        let code = run(validate, &mut out).unwrap();
        (code, String::from_utf8(out).unwrap())
    }

    #[test]
    fn a_good_model_passes() {
        let dir = fixture();
        let d = dir.to_str().unwrap();
        let (code, text) = run_args(&["savedmodel", "validate", d, "--tag_set", "serve"]);
        // Warnings only (its regress_x2_to_y3 signature takes floats, which
        // only Predict can feed): exit 0.
        assert_eq!(code, ExitCode::SUCCESS, "{text}");
        assert!(
            text.starts_with("warning: signature 'regress_x2_to_y3'"),
            "{text}"
        );
        assert!(text.ends_with(": 0 error(s), 1 warning(s)\n"), "{text}");
        let counter = dir.join("../../saved_model_counter/00000123");
        let (code, text) = run_args(&["savedmodel", "validate", counter.to_str().unwrap()]);
        assert_eq!(code, ExitCode::SUCCESS, "{text}");
        assert!(text.ends_with(": no problems found\n"), "{text}");
    }

    /// A copy of the counter fixture whose only MetaGraph is tagged
    /// `train`.
    fn train_only_model(dir: &std::path::Path) {
        use savedmodel_proto::prost::Message as _;
        let counter = fixture().join("../../saved_model_counter/00000123");
        for name in [
            "variables/variables.index",
            "variables/variables.data-00000-of-00001",
        ] {
            let target = dir.join(name);
            if counter.join(name).exists() {
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::copy(counter.join(name), target).unwrap();
            }
        }
        let bytes = std::fs::read(counter.join("saved_model.pb")).unwrap();
        let mut model =
            savedmodel::proto::tensorflow::SavedModel::decode(bytes.as_slice()).unwrap();
        assert_eq!(model.meta_graphs.len(), 1);
        let info = model.meta_graphs[0].meta_info_def.as_mut().unwrap();
        info.tags = vec!["train".to_owned()];
        std::fs::write(dir.join("saved_model.pb"), model.encode_to_vec()).unwrap();
    }

    #[test]
    fn a_model_without_a_serve_meta_graph_fails_unless_tags_say_so() {
        let tmp = tempfile::tempdir().unwrap();
        train_only_model(tmp.path());
        let d = tmp.path().to_str().unwrap();
        let (code, text) = run_args(&["savedmodel", "validate", d]);
        assert_eq!(code, ExitCode::from(1), "{text}");
        assert!(
            text.starts_with(
                "error: saved_model.pb: no meta graph has exactly the tag set { serve }, so \
                 tensorflow serving started with default flags refuses the model (the model \
                 has { train })"
            ),
            "{text}"
        );
        assert!(text.ends_with(": 1 error(s), 0 warning(s)\n"), "{text}");
        let (code, text) = run_args(&["savedmodel", "validate", d, "--tags", "train"]);
        assert_eq!(code, ExitCode::SUCCESS, "{text}");
        assert!(text.ends_with(": no problems found\n"), "{text}");
        // A server started with --saved_model_tags=serve refuses it too.
        let (code, text) = run_args(&["savedmodel", "validate", d, "--tags", "serve"]);
        assert_eq!(code, ExitCode::from(1), "{text}");
        assert!(
            text.contains("no meta graph with tag set { serve }"),
            "{text}"
        );
    }

    #[test]
    fn a_broken_model_fails_with_its_findings() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("saved_model.pb"), b"\xff\xff garbage").unwrap();
        let d = dir.to_str().unwrap();
        let (code, text) = run_args(&["savedmodel", "validate", d]);
        assert_eq!(code, ExitCode::from(1));
        assert!(
            text.starts_with("error: saved_model.pb: cannot parse"),
            "{text}"
        );
        assert!(text.ends_with(": 1 error(s), 0 warning(s)\n"), "{text}");
        let (code, text) = run_args(&["savedmodel", "validate", d, "--json"]);
        assert_eq!(code, ExitCode::from(1));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["errors"], 1);
        assert_eq!(value["findings"][0]["severity"], "error");
        assert_eq!(value["findings"][0]["location"], "saved_model.pb");
    }
}
