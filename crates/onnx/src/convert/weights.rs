//! Initializers as TensorFlow values: small ones as [`Tensor`]s, large ones
//! as variables whose bytes are read from the memory-mapped model (or its
//! external data) when the checkpoint is written, never copied before.
//!
//! A convolution's filter is stored by ONNX as `[M, C/g, k1, ..., kn]` and
//! wanted by TensorFlow as `[k1, ..., kn, C/g, M]`; such a variable is
//! transposed when the checkpoint is written, one tensor at a time, so
//! memory stays bounded by the largest weight.

use std::borrow::Cow;
use std::sync::Arc;

use savedmodel_graph::{DType, SourceData, Tensor, TensorSource, VariableValue};

use super::constant;
use crate::proto::TensorProto;
use crate::{OnnxModel, Result, TensorData, TensorView};

/// How a variable holds an initializer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Layout {
    /// As ONNX stores it.
    AsIs,
    /// A convolution filter `[M, C/g, k...]` as TensorFlow's `[k..., C/g, M]`.
    Filter,
    /// A depthwise filter `[C*m, 1, kh, kw]` as TensorFlow's `[kh, kw, C, m]`.
    Depthwise {
        /// The channel multiplier `m`.
        multiplier: usize,
    },
}

/// The permutation from ONNX's filter layout to TensorFlow's, for a
/// filter of `rank` dimensions.
pub(crate) fn filter_perm(rank: usize) -> Vec<i64> {
    let mut perm: Vec<i64> = (2..rank as i64).collect();
    perm.push(1);
    perm.push(0);
    perm
}

/// An owned tensor of a (small) initializer view.
pub(crate) fn to_tensor(view: &TensorView<'_>) -> std::result::Result<Tensor, String> {
    let dims: Vec<i64> = view.shape.iter().map(|&d| d as i64).collect();
    match &view.data {
        TensorData::Bytes(b) => {
            Tensor::from_bytes(view.dtype, &dims, b.to_vec()).map_err(|e| e.to_string())
        }
        TensorData::Strings(s) => Tensor::strings(&dims, s).map_err(|e| e.to_string()),
    }
}

/// The value of initializer `proto`'s variable in `layout`.
pub(crate) fn variable_value(
    model: &Arc<OnnxModel>,
    proto: &TensorProto,
    layout: Layout,
) -> Result<VariableValue> {
    initializer_value(model, proto, layout, None)
}

/// [`variable_value`] with the leading axis (in ONNX's layout) multiplied
/// by `scale`, one factor per row, when the checkpoint is written.
pub(crate) fn scaled_variable_value(
    model: &Arc<OnnxModel>,
    proto: &TensorProto,
    layout: Layout,
    scale: Arc<[f64]>,
) -> Result<VariableValue> {
    initializer_value(model, proto, layout, Some(scale))
}

fn initializer_value(
    model: &Arc<OnnxModel>,
    proto: &TensorProto,
    layout: Layout,
    scale: Option<Arc<[f64]>>,
) -> Result<VariableValue> {
    let view = model.tensor(proto)?;
    let dims: Vec<i64> = view.shape.iter().map(|&d| d as i64).collect();
    let shape = match layout {
        Layout::AsIs => dims.clone(),
        Layout::Filter => filter_perm(dims.len())
            .iter()
            .map(|&p| dims[p as usize])
            .collect(),
        Layout::Depthwise { multiplier } => {
            let m = multiplier as i64;
            vec![dims[2], dims[3], dims[0] / m.max(1), m]
        }
    };
    Ok(VariableValue::from_source(Initializer {
        model: Arc::clone(model),
        name: proto.name().to_owned(),
        dtype: view.dtype,
        onnx_shape: dims,
        shape,
        layout,
        scale,
    }))
}

/// A large initializer, read from the model when the checkpoint is written.
#[derive(Debug)]
struct Initializer {
    model: Arc<OnnxModel>,
    name: String,
    dtype: DType,
    onnx_shape: Vec<i64>,
    shape: Vec<i64>,
    layout: Layout,
    /// Factors for the rows of the leading axis (ONNX's layout).
    scale: Option<Arc<[f64]>>,
}

impl TensorSource for Initializer {
    fn dtype(&self) -> DType {
        self.dtype
    }

    fn shape(&self) -> &[i64] {
        &self.shape
    }

    fn open(&self) -> savedmodel_graph::Result<SourceData<'_>> {
        let fail = |what: String| savedmodel_graph::Error::Source(what.into());
        let proto = self
            .model
            .graph()
            .initializer(&self.name)
            .ok_or_else(|| fail(format!("initializer {:?} is gone", self.name)))?;
        let view = self
            .model
            .tensor(proto)
            .map_err(|e| savedmodel_graph::Error::Source(Box::new(e)))?;
        let bytes: Cow<'_, [u8]> = match view.data {
            TensorData::Bytes(b) => b,
            TensorData::Strings(_) => {
                return Err(fail(format!(
                    "initializer {:?} holds strings; it cannot be a variable",
                    self.name
                )));
            }
        };
        let scale_error = |e: String| fail(format!("initializer {:?}: {e}", self.name));
        match self.layout {
            Layout::AsIs => match &self.scale {
                Some(scale) => Ok(SourceData::Bytes(Cow::Owned(
                    constant::scale_rows(self.dtype, &bytes, scale).map_err(scale_error)?,
                ))),
                None => Ok(SourceData::Bytes(bytes)),
            },
            Layout::Filter | Layout::Depthwise { .. } => {
                // [M, C/g, k...] -> [k..., C/g, M]; for a depthwise filter
                // [C*m, 1, kh, kw] the same permutation gives
                // [kh, kw, 1, C*m], whose bytes are [kh, kw, C, m].
                let perm = filter_perm(self.onnx_shape.len());
                let mut out = constant::transpose_bytes(
                    &bytes,
                    self.dtype.element_size().unwrap_or(1),
                    &self.onnx_shape,
                    &perm,
                )
                .map_err(fail)?;
                // The ONNX rows (M) are now the last axis: scaled in the
                // transposed copy, so a folded normalization costs no
                // second copy of the filter.
                if let Some(scale) = &self.scale {
                    constant::scale_last_axis_in_place(self.dtype, &mut out, scale)
                        .map_err(scale_error)?;
                }
                Ok(SourceData::Bytes(Cow::Owned(out)))
            }
        }
    }
}
