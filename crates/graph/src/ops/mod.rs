//! Typed constructors for the ops a serving graph needs, as methods on
//! [`Graph`].
//!
//! Each constructor checks its inputs' dtypes, writes the op's attrs (only
//! those that differ from TensorFlow's registered defaults, see
//! [`crate::op_registry`]) and
//! infers the outputs' dtypes and static shapes, so signatures built from
//! them carry exact `TensorInfo`s. Auxiliary constants (a reshape's target
//! shape, a reduction's axes, `k` of top-k) are created as `Const` nodes
//! inside the op's name, as TensorFlow's Python does (`Reshape/shape`).
//!
//! The `name` argument is a base name: it is prefixed by the current name
//! scope and made unique (`MatMul`, `MatMul_1`).

mod array;
mod io;
mod lookup;
mod math;
mod nn;
mod parsing;
mod state;

use savedmodel_checkpoint::DType;

pub use lookup::{LINE_NUMBER, LookupTable, TextFileOptions, WHOLE_LINE};
pub use parsing::{DenseFeature, ExampleSpec, ParsedExample, SparseFeature, SparseTensor};
pub use state::{PartitionedVariable, Variable, VariableOptions};

use crate::error::{Error, Result};
use crate::graph::{Graph, Output};
use crate::tensor::Tensor;

/// The two outputs of `TopKV2`.
#[derive(Clone, Debug)]
pub struct TopK {
    /// The `k` largest values along the last dimension, largest first.
    pub values: Output,
    /// Their indices (`DT_INT32`).
    pub indices: Output,
}

pub(crate) fn type_error(node: &str, what: String) -> Error {
    Error::Graph {
        node: node.to_owned(),
        what,
    }
}

/// Fails unless `x` has one of `allowed`.
pub(crate) fn expect_dtype(op: &str, name: &str, x: &Output, allowed: &[DType]) -> Result<()> {
    if allowed.contains(&x.dtype()) {
        Ok(())
    } else {
        let allowed: Vec<&str> = allowed.iter().map(|d| d.name()).collect();
        Err(type_error(
            name,
            format!(
                "{op} input {} is {}, expected one of {}",
                x.name(),
                x.dtype(),
                allowed.join(", ")
            ),
        ))
    }
}

/// Fails unless `a` and `b` have the same dtype.
pub(crate) fn expect_same_dtype(op: &str, name: &str, a: &Output, b: &Output) -> Result<()> {
    if a.dtype() == b.dtype() {
        Ok(())
    } else {
        Err(type_error(
            name,
            format!(
                "{op} inputs must have the same dtype: {} is {}, {} is {}",
                a.name(),
                a.dtype(),
                b.name(),
                b.dtype()
            ),
        ))
    }
}

/// Real number types (what most math kernels accept).
pub(crate) const FLOATS: &[DType] = &[DType::Half, DType::BFloat16, DType::Float, DType::Double];
/// Numbers (floats and integers).
pub(crate) const NUMBERS: &[DType] = &[
    DType::Half,
    DType::BFloat16,
    DType::Float,
    DType::Double,
    DType::Int8,
    DType::Int16,
    DType::Int32,
    DType::Int64,
    DType::UInt8,
    DType::UInt16,
    DType::UInt32,
    DType::UInt64,
    DType::Complex64,
    DType::Complex128,
];
/// Integer index types.
pub(crate) const INDICES: &[DType] = &[DType::Int32, DType::Int64];

/// Normalises `axis` (negative counts from the end) for a tensor of `rank`.
pub(crate) fn normalize_axis(name: &str, axis: i64, rank: Option<usize>) -> Result<Option<usize>> {
    let Some(rank) = rank else {
        return Ok(None);
    };
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(type_error(
            name,
            format!("axis {axis} is out of range for a tensor of rank {rank}"),
        ));
    }
    Ok(Some(a as usize))
}

impl Graph {
    /// A `Const` named `{op}/{input}` (TensorFlow names the constants an
    /// op's Python wrapper creates after the op).
    pub fn aux_constant(&mut self, op: &str, input: &str, value: Tensor) -> Result<Output> {
        let shape = crate::graph::Shape::new(value.shape());
        let dtype = value.dtype();
        let out = self
            .op("Const", &format!("{op}/{input}"))
            .exact_name()
            .attr("value", value.clone())
            .attr("dtype", dtype)
            .output(dtype, shape)
            .build_output()?;
        self.record_constant(&out, value);
        Ok(out)
    }
}
