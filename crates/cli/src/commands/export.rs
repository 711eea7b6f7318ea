//! `savedmodel export`: a servable SavedModel from trained weights and a
//! model spec, published atomically as a new version under a base path.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use savedmodel_export::{
    ExportOptions, ExportSpec, MAX_WARMUP_EXAMPLES, PreparedModel, WarmupExamples, open_weights,
};
use savedmodel_layout::{BaseListing, NextVersion};

const EXPORT_HELP: &str = "\
The spec (TOML, see docs/spec.md) names the architecture (linear_regression,
logistic_regression, softmax_classifier, mlp), the tensors of the weights
file holding each layer's kernel and bias and their layout (in_out, or
PyTorch's out_in), the input width, the tf.Example feature name, the class
labels (inline or a vocabulary file shipped as an asset) and an optional
input normalization.

Everything is checked before anything is written: a missing tensor, a shape
that does not fit, an unknown activation or a base path that is a file is an
error and publishes nothing. The SavedModel is written into a staging
directory under BASE that TensorFlow Serving ignores, synced, and renamed to
its version number.

A classifier gets the signatures serving_default (classify: serialized
tf.Examples -> classes, scores sorted by score) and predict (inputs float
[-1, n] -> scores in label order, classes = the argmax); a regressor gets
serving_default (regress -> outputs) and predict (inputs -> outputs).

Examples:
  savedmodel export --spec iris.toml --weights iris.safetensors --base models/iris
  savedmodel export --spec mlp.toml --weights model.npz --base /models/mlp --version 7
  savedmodel export --spec mlp.toml --weights model.npz --base s3://models/mlp
  savedmodel export --spec mlp.toml --weights ckpt/model-1000 --base /models/mlp \\
      --version-policy unix --warmup-examples 10
  savedmodel export --spec mlp.toml --weights model.safetensors --base /models/mlp \\
      --warmup-inputs requests.csv";

/// `savedmodel export`.
#[derive(Debug, Args)]
#[command(after_help = EXPORT_HELP)]
pub(crate) struct ExportArgs {
    /// The model spec (TOML).
    #[arg(
        long,
        value_name = "MODEL.toml",
        required_unless_present = "onnx",
        conflicts_with = "onnx"
    )]
    pub(super) spec: Option<PathBuf>,
    /// The weights: a .safetensors file, a .npz archive or a TensorFlow
    /// checkpoint prefix.
    #[arg(
        long,
        value_name = "FILE|PREFIX",
        required_unless_present = "onnx",
        conflicts_with = "onnx"
    )]
    pub(super) weights: Option<PathBuf>,
    /// An ONNX model to convert instead of a spec and weights (external
    /// data files are read from its directory).
    #[arg(long, value_name = "MODEL.onnx")]
    pub(super) onnx: Option<PathBuf>,
    /// ONNX: the predict signature's key.
    #[arg(
        long,
        value_name = "KEY",
        default_value = "serving_default",
        requires = "onnx"
    )]
    pub(super) signature_name: String,
    /// ONNX: the layout of 4-D image inputs in the signature: nchw (as the
    /// ONNX model takes them) or nhwc (channels last; the graph then needs
    /// no input transpose).
    #[arg(long, value_name = "LAYOUT", default_value = "nchw", value_parser = ["nchw", "nhwc"], requires = "onnx")]
    pub(super) input_layout: String,
    /// ONNX: make dimension 0 of every input and output dynamic, for
    /// models exported with a fixed batch of 1.
    #[arg(long, requires = "onnx")]
    pub(super) dynamic_batch: bool,
    /// ONNX: convert node by node, without fusing `Conv` +
    /// `BatchNormalization` or `MatMul` + `Add` (to compare, or to find a
    /// fusion at fault).
    #[arg(long, requires = "onnx")]
    pub(super) no_optimize: bool,
    /// The model's base path, where TensorFlow Serving looks for numbered
    /// versions (created if missing): a directory, s3://bucket/prefix or
    /// gs://bucket/prefix.
    #[arg(long, value_name = "BASE")]
    pub(super) base: PathBuf,
    /// Publish as exactly this version; refused if it exists.
    #[arg(long, value_name = "N", conflicts_with = "version_policy")]
    pub(super) version: Option<i64>,
    /// How to number the version when --version is not given: next
    /// (highest + 1) or unix (seconds since 1970).
    #[arg(long, value_name = "POLICY", default_value = "next", value_parser = parse_policy)]
    pub(super) version_policy: NextVersion,
    /// Write this many warmup examples to assets.extra/tf_serving_warmup_requests
    /// (each one classify/regress and one predict request); generated
    /// unless --warmup-inputs gives them.
    #[arg(long, value_name = "N")]
    pub(super) warmup_examples: Option<usize>,
    /// Warmup inputs: a CSV file with one example of input_width numbers per
    /// line (blank lines and lines starting with # are skipped); for --onnx,
    /// an .npz file with one array per ONNX input name (one predict request).
    #[arg(long, value_name = "FILE.csv|FILE.npz")]
    pub(super) warmup_inputs: Option<PathBuf>,
    /// Let the spec name files (the class vocabulary) outside its own
    /// directory; refused by default, so that a spec handed to you cannot
    /// ship /etc/passwd in the model's assets.
    #[arg(long, requires = "spec")]
    pub(super) allow_paths_outside_spec: bool,
}

fn parse_policy(text: &str) -> Result<NextVersion, String> {
    match text.parse::<NextVersion>() {
        Ok(NextVersion::Explicit(_)) | Err(_) => Err(format!(
            "{text:?} is not a version policy: expected next or unix (use --version N for a number)"
        )),
        Ok(policy) => Ok(policy),
    }
}

/// Reads warmup inputs from a CSV file.
fn read_warmup_csv(path: &Path) -> anyhow::Result<Vec<Vec<f32>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading warmup inputs {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let row = line
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<Result<Vec<f32>, _>>()
            .with_context(|| {
                format!(
                    "{} line {}: not a comma-separated list of numbers",
                    path.display(),
                    i + 1
                )
            })?;
        rows.push(row);
    }
    if rows.is_empty() {
        bail!("{} holds no warmup inputs", path.display());
    }
    Ok(rows)
}

/// Creates a missing local base path; refuses one that is a file.
fn check_local_base(base: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(base) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(base)
                .with_context(|| format!("creating base path {}", base.display()))?;
        }
        _ => {
            BaseListing::read(base)?;
        }
    }
    Ok(())
}

/// Runs `savedmodel export`.
pub(crate) fn run(args: ExportArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    // The base first: a base that is a file fails before any work.
    if let Some(url) = super::remote::remote_url(&args.base) {
        super::remote::open(url)?;
    } else {
        check_local_base(&args.base)?;
    }
    if let Some(onnx) = &args.onnx {
        return super::export_onnx::run(onnx, &args, out);
    }
    let (Some(spec_path), Some(weights_path)) = (&args.spec, &args.weights) else {
        bail!("--spec and --weights are required without --onnx");
    };
    let mut spec = ExportSpec::from_file(spec_path)?;
    spec.allow_paths_outside_spec_dir = args.allow_paths_outside_spec;
    let weights = open_weights(weights_path)?;
    let model = PreparedModel::prepare(&spec, &weights)?;
    let warmup = match (&args.warmup_inputs, args.warmup_examples) {
        (Some(path), count) => {
            let mut rows = read_warmup_csv(path)?;
            if let Some(n) = count {
                rows.truncate(n);
            }
            WarmupExamples::Given(rows)
        }
        (None, Some(0)) | (None, None) => WarmupExamples::None,
        (None, Some(n)) if n > MAX_WARMUP_EXAMPLES => {
            bail!(
                "--warmup-examples {n}: TensorFlow Serving replays at most {MAX_WARMUP_EXAMPLES} examples (2 requests each)"
            )
        }
        (None, Some(n)) => WarmupExamples::Generated(n),
    };
    let architecture = spec.architecture;
    let layers = model.layers().len();
    let mut options = ExportOptions::default();
    // `publish` fsyncs every file and directory of the staging tree before
    // the rename, so the builder need not sync them a first time.
    options.no_fsync = true;
    options.warmup = warmup;
    options.model_name = spec.name.clone();
    let export = model.into_export(&options)?;
    let next = args
        .version
        .map_or(args.version_policy, NextVersion::Explicit);
    let published =
        super::remote::publish_to(&args.base, next, |dir| export.write_into_empty_dir(dir))?;

    let summary = export.summary();
    writeln!(
        out,
        "exported {architecture} ({layers} dense layer{}, {} parameters) from {}",
        if layers == 1 { "" } else { "s" },
        summary.num_parameters,
        weights_path.display()
    )?;
    writeln!(out, "path: {}", published.location)?;
    writeln!(out, "version: {}", published.version)?;
    if !summary.labels.is_empty() {
        writeln!(out, "classes: {}", summary.labels.join(", "))?;
    }
    writeln!(out, "signatures:")?;
    for signature in &summary.signatures {
        writeln!(out, "  {signature}")?;
    }
    if summary.warmup_records > 0 {
        writeln!(
            out,
            "warmup: {} requests in assets.extra/tf_serving_warmup_requests",
            summary.warmup_records
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser as _;

    fn run_args(args: &[&str]) -> anyhow::Result<String> {
        let cli = Cli::try_parse_from(args)?;
        let Command::Export(export) = cli.command else {
            panic!("not an export command");
        };
        let mut out = Vec::new();
        run(export, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    fn write_checkpoint(prefix: &Path) {
        let mut w = savedmodel_checkpoint::BundleWriter::create(prefix).unwrap();
        w.add_typed("b", &[2], &[0.5f32, -0.5]).unwrap();
        w.add_typed("w", &[3, 2], &[0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6])
            .unwrap();
        w.finish().unwrap();
    }

    #[test]
    fn exports_publishes_and_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ckpt/model");
        std::fs::create_dir(dir.path().join("ckpt")).unwrap();
        write_checkpoint(&prefix);
        let spec = dir.path().join("m.toml");
        std::fs::write(
            &spec,
            "[model]\narchitecture = \"softmax_classifier\"\ninput_width = 3\n[classes]\nlabels = [\"a\", \"b\"]\n[[layers]]\nkernel = \"w\"\nbias = \"b\"\n",
        )
        .unwrap();
        let base = dir.path().join("models/m");
        let (s, p, b) = (
            spec.to_str().unwrap(),
            prefix.to_str().unwrap(),
            base.to_str().unwrap(),
        );
        let args = [
            "savedmodel",
            "export",
            "--spec",
            s,
            "--weights",
            p,
            "--base",
            b,
        ];
        let text = run_args(&args).unwrap();
        assert!(text.contains("version: 1\n"), "{text}");
        assert!(text.contains("classes: a, b\n"), "{text}");
        assert!(
            text.contains("  serving_default (tensorflow/serving/classify): inputs: DT_STRING [-1] -> classes: DT_STRING [-1, 2], scores: DT_FLOAT [-1, 2]\n"),
            "{text}"
        );
        let text = run_args(&[&args[..], &["--warmup-examples", "3"]].concat()).unwrap();
        assert!(text.contains("version: 2\n"), "{text}");
        assert!(text.contains("warmup: 6 requests"), "{text}");
        assert!(
            base.join("2/assets.extra/tf_serving_warmup_requests")
                .is_file()
        );
        let err = run_args(&[&args[..], &["--version", "2"]].concat()).unwrap_err();
        assert!(
            err.to_string().contains("version 2 already exists"),
            "{err}"
        );

        // Bad input publishes nothing.
        let bad_spec = dir.path().join("bad.toml");
        std::fs::write(
            &bad_spec,
            "[model]\narchitecture = \"mlp\"\ntask = \"classifier\"\ninput_width = 3\n[[layers]]\nkernel = \"w\"\nactivation = \"swish\"\n",
        )
        .unwrap();
        let bad = [
            "savedmodel",
            "export",
            "--spec",
            bad_spec.to_str().unwrap(),
            "--weights",
            p,
            "--base",
            b,
        ];
        let err = run_args(&bad).unwrap_err();
        assert!(
            err.to_string().contains("unknown activation \"swish\""),
            "{err}"
        );
        let file_base = dir.path().join("file");
        std::fs::write(&file_base, b"").unwrap();
        let err = run_args(&[
            "savedmodel",
            "export",
            "--spec",
            s,
            "--weights",
            p,
            "--base",
            file_base.to_str().unwrap(),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
        let mut children: Vec<String> = std::fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        children.sort();
        assert_eq!(children, ["1", "2"]);
    }

    #[test]
    fn warmup_csv_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.csv");
        std::fs::write(&path, "# x\n1, 2,3\n\n4,5,6\n").unwrap();
        assert_eq!(
            read_warmup_csv(&path).unwrap(),
            [vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]
        );
        std::fs::write(&path, "1,x\n").unwrap();
        assert!(
            read_warmup_csv(&path)
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
    }
}
