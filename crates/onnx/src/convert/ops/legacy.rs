//! Operator sets 1 to 6 of the default domain.
//!
//! Models from the first exporters (the `onnx` package's `pytorch-converted`
//! and `pytorch-operator` cases import opset 6) use operator versions that
//! opset 7 replaced. Most of those versions compute what the version in
//! force at opset 7 computes, so the converters of `ops/` handle them as
//! they are; the rest changed in ways this module names, one rule each
//! (from the version history in `onnx/defs/*/old.cc` and
//! `docs/Changelog.md` of the `onnx` repository):
//!
//! - `consumed_inputs` (version 1 of many operators) was an in-place hint
//!   of Caffe2's, with no effect on the result: ignored.
//! - Binary operators (`Add`, `Sub`, `Mul`, `Div`, `Pow`, the comparisons
//!   and logical operators) broadcast only with `broadcast = 1`, and then
//!   `B`'s shape must match a contiguous run of `A`'s dimensions, starting
//!   at `axis` (or at the end when `axis` is absent). Opset 7 made them
//!   broadcast as NumPy does; [`broadcast_operand`] reshapes `B` so NumPy
//!   broadcasting aligns it at `axis`.
//! - `PRelu` before version 7: a 1-D slope of length `C` applies per
//!   channel (dimension 1), not to the last dimension: [`prelu_slope`]
//!   reshapes it to `[C, 1, ...]`.
//! - `Concat` version 1 had an optional `axis`, 1 by default.
//! - Operators whose inputs changed (`Reshape` 1 with a `shape` attribute,
//!   `Split` 1 with the split sizes as an input, `Tile` 1 with `tiles` and
//!   `axis` inputs, `Pad` 1 with `paddings`, `Cast` 1 with a string `to`,
//!   `BatchNormalization` with `spatial = 0`) and any operator not listed
//!   in [`SAME_AS_OPSET_7`] are refused by [`unsupported`] before anything
//!   is built.

use savedmodel_graph::{Attr, DType, Shape};

use super::sub;
use crate::convert::constant;
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

/// The first opset whose operators broadcast as NumPy does, and the first
/// this module has nothing to say about.
pub(crate) const FIRST_MODERN_OPSET: i64 = 7;

/// Operators whose versions before opset 7 compute what the version in
/// force at opset 7 computes, given the rules of this module.
const SAME_AS_OPSET_7: &[&str] = &[
    // Elementwise (version 1 differs by `consumed_inputs` only).
    "Abs",
    "Neg",
    "Exp",
    "Log",
    "Sqrt",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Elu",
    "LeakyRelu",
    "Selu",
    "HardSigmoid",
    "Softplus",
    "Softsign",
    "Not",
    "Clip",
    "Sum",
    "Max",
    "Min",
    "Mean",
    // Binary with `broadcast`/`axis` (see `broadcast_operand`).
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "And",
    "Or",
    "Xor",
    "Equal",
    "Less",
    "Greater",
    "PRelu",
    // Neural network.
    "Conv",
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "LpPool",
    "GlobalLpPool",
    "BatchNormalization",
    "InstanceNormalization",
    "LRN",
    "Dropout",
    "Gemm",
    "MatMul",
    "Softmax",
    "LogSoftmax",
    "Hardmax",
    // Random generators (version 1 is their only version).
    "RandomUniform",
    "RandomNormal",
    "RandomUniformLike",
    "RandomNormalLike",
    // Shape and data movement.
    "Identity",
    "Constant",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Gather",
    "Shape",
    "Size",
    "Slice",
    "Pad",
    "Concat",
    "Reshape",
    "Split",
    "Tile",
    "Cast",
    "DepthToSpace",
    "SpaceToDepth",
    // Reductions and arg reductions (version 1 is version 11 without
    // negative axes).
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
    "ArgMax",
    "ArgMin",
];

/// Why `node` (of an opset before 7) cannot be converted, or `None`.
pub(crate) fn unsupported(node: &NodeView<'_>, opset: i64) -> Result<Option<String>> {
    let op = node.op_type();
    let refuse = |what: &str| {
        Ok(Some(format!(
            "version {opset} of {op}: {what} (changed at opset 7; re-export the model with opset 7 or later)"
        )))
    };
    if !SAME_AS_OPSET_7.contains(&op) {
        return refuse("not supported before opset 7");
    }
    match op {
        "Reshape" if node.attr("shape").is_some() => refuse("the shape as an attribute"),
        "Split" if node.proto().input.len() > 1 => refuse("the split sizes as an input"),
        "Tile" if node.proto().input.len() > 2 => refuse("the `tiles` and `axis` inputs"),
        "Pad" if node.attr("paddings").is_some() => refuse("the `paddings` attribute"),
        "Cast" if node.attr_s("to").is_ok_and(|s| s.is_some()) => {
            refuse("the target type as a string")
        }
        "BatchNormalization" if node.attr_i_or("spatial", 1)? != 1 => {
            refuse("`spatial = 0` (per-element statistics)")
        }
        _ => Ok(None),
    }
}

/// The opset of `node`'s default domain when it is before 7, else `None`.
pub(crate) fn legacy_opset(node: &NodeView<'_>) -> Result<Option<i64>> {
    let opset = node.opset_version()?;
    Ok((opset < FIRST_MODERN_OPSET).then_some(opset))
}

/// The name of the value to use as `b` of a binary node: `b` itself, or for
/// an opset-1-to-6 node with `broadcast = 1` and an `axis`, `b` reshaped so
/// that NumPy broadcasting aligns it with `a` at `axis` (trailing ones
/// added). `b` must be a constant or have a static shape.
pub(crate) fn broadcast_operand(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    a: &str,
    b: &str,
) -> Result<String> {
    if legacy_opset(node)?.is_none() || node.attr_i_or("broadcast", 0)? == 0 {
        return Ok(b.to_owned());
    }
    let Some(axis) = node.attr_i("axis")? else {
        // Without `axis`, B matches A's trailing dimensions: NumPy's rule.
        return Ok(b.to_owned());
    };
    let rank_a = super::rank_of(ctx, a)?;
    let axis = super::normalize_axis(ctx, axis, rank_a)?;
    let b_slot = ctx.slot(b)?;
    let dims = b_slot
        .shape
        .dims()
        .map(<[i64]>::to_vec)
        .ok_or_else(|| ctx.error(format!("legacy broadcast: the shape of {b:?} is unknown")))?;
    if axis + dims.len() > rank_a {
        return Err(ctx.error(format!(
            "legacy broadcast: {b:?} of rank {} does not fit {a:?} of rank {rank_a} at axis {axis}",
            dims.len()
        )));
    }
    let mut target = dims.clone();
    target.resize(rank_a - axis, 1);
    reshaped(ctx, node, b, &target, "legacy_broadcast")
}

/// The name of the slope value to use for an opset-1-to-6 `PRelu`: a 1-D
/// slope of length `C > 1` applies along dimension 1 of `x`.
pub(crate) fn prelu_slope(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    x: &str,
    slope: &str,
) -> Result<String> {
    if legacy_opset(node)?.is_none() {
        return Ok(slope.to_owned());
    }
    let rank_x = super::rank_of(ctx, x)?;
    let dims = ctx.slot(slope)?.shape.dims().map(<[i64]>::to_vec);
    match dims.as_deref() {
        Some(&[c]) if c > 1 && rank_x >= 2 => {
            let mut target = vec![c];
            target.resize(rank_x - 1, 1);
            reshaped(ctx, node, slope, &target, "legacy_slope")
        }
        _ => Ok(slope.to_owned()),
    }
}

/// Defines `"{name}/{what}"` as `name` reshaped to `dims` (folded when
/// `name` is a constant) and returns the new name.
fn reshaped(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    name: &str,
    dims: &[i64],
    what: &str,
) -> Result<String> {
    let new_name = format!("{name}/{what}");
    if let Some(value) = ctx.constant(name).cloned() {
        let v = constant::reshape(&value, dims).map_err(|e| ctx.error(e))?;
        ctx.set_constant(&new_name, v);
        return Ok(new_name);
    }
    let base = sub(&ctx.node_name(node), what);
    let x = ctx.plain(name)?;
    let dtype: DType = x.dtype();
    let target = ctx.const_i32(&sub(&base, "shape"), dims)?;
    let out = ctx.op1(
        "Reshape",
        &base,
        &[&x, &target],
        &[
            ("T", Attr::Type(dtype)),
            ("Tshape", Attr::Type(DType::Int32)),
        ],
        Shape::new(dims),
    )?;
    ctx.set_plain(&new_name, out, Shape::new(dims));
    Ok(new_name)
}
