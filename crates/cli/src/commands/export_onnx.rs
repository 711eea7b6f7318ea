//! `savedmodel export --onnx`: an ONNX model converted to a SavedModel and
//! published atomically as a new version under a base path, exactly as the
//! spec path publishes.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use savedmodel_checkpoint::TensorData;
use savedmodel_checkpoint::convert::load_tensors;
use savedmodel_graph::Tensor;
use savedmodel_layout::NextVersion;
use savedmodel_onnx::{ConvertOptions, ExportOptions, OnnxExport, OnnxModel, SignatureTensor};

use super::export::ExportArgs;

/// Runs `savedmodel export --onnx MODEL`.
pub(super) fn run(
    model_path: &Path,
    args: &ExportArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let model = Arc::new(OnnxModel::open(model_path)?);
    let mut options = ExportOptions {
        convert: ConvertOptions {
            input_layout_nhwc: args.input_layout == "nhwc",
            dynamic_batch: args.dynamic_batch,
            optimize: !args.no_optimize,
            ..ConvertOptions::default()
        },
        signature_name: args.signature_name.clone(),
        warmup: Vec::new(),
    };
    if let Some(path) = &args.warmup_inputs {
        options.warmup.push(read_warmup_npz(path)?);
    }
    let export = OnnxExport::new(&model, &options)?;
    let next = args
        .version
        .map_or(args.version_policy, NextVersion::Explicit);
    let published =
        super::remote::publish_to(&args.base, next, |dir| export.write_into_empty_dir(dir))?;

    writeln!(
        out,
        "exported ONNX model {} ({} TensorFlow nodes, {} variables, {} transposes)",
        model_path.display(),
        export.nodes,
        export.variables,
        export.transposes
    )?;
    writeln!(out, "path: {}", published.location)?;
    writeln!(out, "version: {}", published.version)?;
    let list = |tensors: &[SignatureTensor]| -> String {
        tensors
            .iter()
            .map(|s| format!("{}: {} {}", s.key, s.tensor.dtype(), s.tensor.shape()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(out, "signatures:")?;
    writeln!(
        out,
        "  {} (tensorflow/serving/predict): inputs: {} -> {}",
        args.signature_name,
        list(&export.inputs),
        list(&export.outputs)
    )?;
    let renamed: Vec<String> = export
        .inputs
        .iter()
        .chain(&export.outputs)
        .filter(|s| s.key != s.onnx_name)
        .map(|s| format!("{:?} -> {}", s.onnx_name, s.key))
        .collect();
    if !renamed.is_empty() {
        writeln!(
            out,
            "renamed (ONNX name -> signature key): {}",
            renamed.join(", ")
        )?;
    }
    let carried: Vec<String> = export
        .inputs
        .iter()
        .chain(&export.outputs)
        .filter_map(|s| Some(format!("{}: {}", s.key, s.carried?.describe())))
        .collect();
    if !carried.is_empty() {
        writeln!(
            out,
            "carried (ONNX types TensorFlow has no kernels for): {}",
            carried.join(", ")
        )?;
    }
    if !options.warmup.is_empty() {
        writeln!(
            out,
            "warmup: {} request(s) in assets.extra/tf_serving_warmup_requests",
            options.warmup.len()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One warmup request from an .npz file: an array per ONNX input name.
fn read_warmup_npz(path: &Path) -> anyhow::Result<Vec<(String, Tensor)>> {
    let file =
        load_tensors(path).with_context(|| format!("reading warmup inputs {}", path.display()))?;
    let mut request = Vec::new();
    for (index, info) in file.tensors().iter().enumerate() {
        let view = file.read(index)?;
        let dims = view.shape().to_vec();
        let dtype = view.dtype();
        let tensor = match view.into_data() {
            TensorData::Bytes(b) => Tensor::from_bytes(dtype, &dims, b.into_owned())?,
            TensorData::Strings(s) => Tensor::strings(&dims, &s)?,
        };
        request.push((info.name.clone(), tensor));
    }
    if request.is_empty() {
        anyhow::bail!("{} holds no arrays", path.display());
    }
    Ok(request)
}
