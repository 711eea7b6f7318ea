//! `export`: a model spec and weights to a SavedModel, through
//! `savedmodel-export` (what `savedmodel export --spec --weights` does,
//! without publishing); `export_onnx`: an ONNX model to a SavedModel,
//! through `savedmodel-onnx` (what `savedmodel export --onnx` does).

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use savedmodel_export::{ExportOptions, ExportSpec, PreparedModel, Weights, open_weights};
use savedmodel_graph::Tensor;
use savedmodel_onnx::{ConvertOptions, ExportOptions as OnnxOptions, OnnxExport, OnnxModel};

use crate::errors::{export_error, invalid_argument, onnx_error};
use crate::save::{Prepared, array_bytes, prepare};

/// Exports the model described by the TOML spec `spec` (docs/spec.md) with
/// `weights` to a new SavedModel directory `out_dir`, which must not exist
/// or be empty. `weights` is a weights file (`.safetensors`, `.npz`, or a
/// TensorFlow checkpoint prefix, memory-mapped) or a mapping of names to
/// numeric arrays or array-likes (a state dict). Returns `out_dir`; publish
/// it with `publish(out_dir, base)`.
#[pyfunction]
pub(crate) fn export(
    py: Python<'_>,
    spec: PathBuf,
    weights: &Bound<'_, PyAny>,
    out_dir: PathBuf,
) -> PyResult<PathBuf> {
    let spec = py
        .detach(|| ExportSpec::from_file(&spec))
        .map_err(export_error)?;
    if weights.hasattr("items")? {
        let numpy = py.import("numpy")?;
        let mut in_memory = Weights::new();
        for item in weights.call_method0("items")?.try_iter()? {
            let (name, value): (String, Bound<'_, PyAny>) = item?.extract()?;
            match prepare(&numpy, &name, &value)? {
                Prepared::Strings { .. } => {
                    return Err(invalid_argument(format!(
                        "weight {name}: string tensors cannot be weights"
                    )));
                }
                Prepared::Numeric {
                    dtype,
                    shape,
                    array,
                } => {
                    let bytes = array_bytes(py, &name, &array)?.to_vec();
                    in_memory
                        .insert_bytes(&name, dtype, &shape, bytes)
                        .map_err(|e| invalid_argument(format!("weight {name}: {e}")))?;
                }
            }
        }
        py.detach(|| write(&spec, &in_memory, &out_dir))
    } else {
        let path: PathBuf = weights.extract()?;
        py.detach(|| {
            let file = open_weights(&path)?;
            write(&spec, &file, &out_dir)
        })
    }
    .map_err(export_error)?;
    Ok(out_dir)
}

fn write(
    spec: &ExportSpec,
    weights: &dyn savedmodel_export::WeightSource,
    out_dir: &std::path::Path,
) -> savedmodel_export::Result<()> {
    let model = PreparedModel::prepare(spec, weights)?;
    let mut options = ExportOptions::default();
    options.model_name = spec.name.clone();
    model.into_export(&options)?.write_to(out_dir)
}

/// Converts the ONNX model at `model` to a new SavedModel directory
/// `out_dir` (which must not exist or be empty), as `savedmodel export
/// --onnx` does without publishing: a `serving_default` predict signature
/// (or `signature_name`) whose keys are the ONNX graph's input and output
/// names made TensorFlow-legal. `input_layout="nhwc"` makes 4-D inputs
/// channels last; `dynamic_batch` makes dimension 0 of every input and
/// output dynamic; `warmup` is one request (a mapping of ONNX input names
/// to arrays) written to `assets.extra/tf_serving_warmup_requests`.
/// Returns `out_dir`; publish it with `publish(out_dir, base)`.
#[pyfunction]
#[pyo3(signature = (model, out_dir, *, signature_name = "serving_default".to_owned(), input_layout = "nchw".to_owned(), dynamic_batch = false, warmup = None))]
pub(crate) fn export_onnx(
    py: Python<'_>,
    model: PathBuf,
    out_dir: PathBuf,
    signature_name: String,
    input_layout: String,
    dynamic_batch: bool,
    warmup: Option<&Bound<'_, PyAny>>,
) -> PyResult<PathBuf> {
    let input_layout_nhwc = match input_layout.as_str() {
        "nchw" => false,
        "nhwc" => true,
        other => {
            return Err(invalid_argument(format!(
                "input_layout {other:?} is not \"nchw\" or \"nhwc\""
            )));
        }
    };
    let mut options = OnnxOptions {
        convert: ConvertOptions {
            input_layout_nhwc,
            dynamic_batch,
            ..ConvertOptions::default()
        },
        signature_name,
        warmup: Vec::new(),
    };
    if let Some(warmup) = warmup {
        let numpy = py.import("numpy")?;
        let mut request = Vec::new();
        for item in warmup.call_method0("items")?.try_iter()? {
            let (name, value): (String, Bound<'_, PyAny>) = item?.extract()?;
            let tensor = match prepare(&numpy, &name, &value)? {
                Prepared::Strings { shape, elements } => Tensor::strings(&shape, &elements),
                Prepared::Numeric {
                    dtype,
                    shape,
                    array,
                } => {
                    let bytes = array_bytes(py, &name, &array)?.to_vec();
                    Tensor::from_bytes(dtype, &shape, bytes)
                }
            }
            .map_err(|e| invalid_argument(format!("warmup input {name}: {e}")))?;
            request.push((name, tensor));
        }
        options.warmup.push(request);
    }
    py.detach(|| -> savedmodel_onnx::Result<()> {
        let model = Arc::new(OnnxModel::open(&model)?);
        OnnxExport::new(&model, &options)?.write_to(&out_dir)
    })
    .map_err(onnx_error)?;
    Ok(out_dir)
}
