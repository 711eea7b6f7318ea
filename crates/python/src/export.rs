//! `export`: a model spec and weights to a SavedModel, through
//! `savedmodel-export` (what `savedmodel export --spec --weights` does,
//! without publishing).

use std::path::PathBuf;

use pyo3::prelude::*;
use savedmodel_export::{ExportOptions, ExportSpec, PreparedModel, Weights, open_weights};

use crate::errors::{export_error, invalid_argument};
use crate::save::{Prepared, prepare};

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
                    bytes,
                } => {
                    let bytes = bytes
                        .as_slice()
                        .map_err(|e| invalid_argument(format!("weight {name}: {e}")))?
                        .to_vec();
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
