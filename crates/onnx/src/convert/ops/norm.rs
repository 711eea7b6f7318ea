//! Normalizations built from reductions: `LayerNormalization`,
//! `RMSNormalization`, `GroupNormalization`, `InstanceNormalization`, `MeanVarianceNormalization`,
//! `LpNormalization`, the `GlobalLpPool` and `LpPool` norms, and `LRN`
//! (local response normalization across channels).
//!
//! ONNX semantics: `onnx/defs/nn/defs.cc` (the function bodies there give
//! the exact formulas).

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::pool::{PoolKind, pool_of};
use super::reduce::{binary, reduced_shape, t, tf_reduce, unary};
use super::{
    Converter, input_name, normalize_axis, output_name, output0, rank_of, required_input, sub,
};
use crate::convert::constant;
use crate::convert::context::{Ctx, permute_shape, to_channels_last};
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "LayerNormalization" => layer_norm,
        "RMSNormalization" => rms_norm,
        "GroupNormalization" => group_norm,
        "InstanceNormalization" => instance_norm,
        "MeanVarianceNormalization" => mean_variance_norm,
        "LpNormalization" => lp_normalization,
        "GlobalLpPool" => global_lp_pool,
        "LpPool" => lp_pool,
        "LRN" => lrn,
        _ => return None,
    };
    Some(f)
}

/// A `Cast` (the identity when the types agree).
pub(super) fn cast(ctx: &mut Ctx, name: &str, x: &Output, to: DType) -> Result<Output> {
    if x.dtype() == to {
        return Ok(x.clone());
    }
    ctx.op1(
        "Cast",
        name,
        &[x],
        &[("SrcT", Attr::Type(x.dtype())), ("DstT", Attr::Type(to))],
        x.shape().clone(),
    )
}

/// ONNX value `name` as a tensor of shape `dims`: a reshaped constant when
/// known, else a `Reshape`.
pub(super) fn reshaped(ctx: &mut Ctx, base: &str, name: &str, dims: &[i64]) -> Result<Output> {
    if let Some(value) = ctx.constant(name).cloned() {
        let mut target = dims.to_vec();
        if let Some(i) = target.iter().position(|&d| d < 0) {
            let known: i64 = target.iter().filter(|&&d| d >= 0).product();
            let total: i64 = value.shape().iter().product();
            target[i] = if known == 0 { 0 } else { total / known };
        }
        let v = constant::reshape(&value, &target).map_err(|e| ctx.error(e))?;
        return ctx.const_tensor(base, v);
    }
    let x = ctx.plain(name)?;
    let target = ctx.const_i32(&sub(base, "shape"), dims)?;
    ctx.op1(
        "Reshape",
        base,
        &[&x, &target],
        &[t(x.dtype()), ("Tshape", Attr::Type(DType::Int32))],
        Shape::new(dims),
    )
}

/// Mean and `x - mean` and the variance of `x` over `axes` (kept as size-1
/// dimensions).
fn moments(
    ctx: &mut Ctx,
    base: &str,
    x: &Output,
    axes: &[i64],
) -> Result<(Output, Output, Output)> {
    let st = x.shape().clone();
    let kept = match st.dims() {
        Some(_) => {
            let a: Vec<usize> = axes.iter().map(|&a| a as usize).collect();
            reduced_shape(&st, &a, true)
        }
        None => Shape::unknown(),
    };
    let mean = tf_reduce(ctx, &sub(base, "mean"), "Mean", x, axes, true, kept.clone())?;
    let centered = binary(ctx, &sub(base, "centered"), "Sub", x, &mean, st)?;
    let sq = unary(ctx, &sub(base, "squared"), "Square", &centered)?;
    let var = tf_reduce(ctx, &sub(base, "variance"), "Mean", &sq, axes, true, kept)?;
    Ok((mean, centered, var))
}

/// `(x - mean) / sqrt(variance + epsilon)` over `axes`, with the mean and
/// `1 / sqrt(variance + epsilon)` (the statistics some normalizations also
/// output); `shape` is the result's shape.
fn standardize(
    ctx: &mut Ctx,
    base: &str,
    x: &Output,
    axes: &[i64],
    epsilon: f64,
    shape: Shape,
) -> Result<(Output, Output, Output)> {
    let (mean, centered, var) = moments(ctx, base, x, axes)?;
    let eps = ctx.const_scalar(&sub(base, "epsilon"), x.dtype(), epsilon)?;
    let v = binary(
        ctx,
        &sub(base, "var_eps"),
        "AddV2",
        &var,
        &eps,
        var.shape().clone(),
    )?;
    let inv = unary(ctx, &sub(base, "inv_std"), "Rsqrt", &v)?;
    let normalized = binary(ctx, &sub(base, "normalized"), "Mul", &centered, &inv, shape)?;
    Ok((mean, inv, normalized))
}

fn layer_norm(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let scale_name = required_input(ctx, node, 1)?;
    let rank = rank_of(ctx, x_name)?;
    let axis = normalize_axis(ctx, node.attr_i_or("axis", -1)?, rank)?;
    let epsilon = f64::from(node.attr_f_or("epsilon", 1e-5)?);
    let base = ctx.node_name(node);
    let logical = ctx.slot(x_name)?.shape.clone();
    let x = ctx.plain(x_name)?;
    let dtype = x.dtype();
    // stash_type 1: statistics in float32.
    let stash = stash_type(node, dtype)?;
    let xs = cast(ctx, &sub(&base, "stashed"), &x, stash)?;
    let axes: Vec<i64> = (axis as i64..rank as i64).collect();
    let (mean, inv, normalized) = standardize(ctx, &base, &xs, &axes, epsilon, logical.clone())?;
    let normalized = cast(ctx, &sub(&base, "normalized_cast"), &normalized, dtype)?;
    let scale = ctx.plain(scale_name)?;
    let b_name = input_name(node, 2);
    let name = if b_name.is_some() {
        sub(&base, "scaled")
    } else {
        base.clone()
    };
    let mut y = binary(ctx, &name, "Mul", &normalized, &scale, logical.clone())?;
    if let Some(b_name) = b_name {
        let b = ctx.plain(b_name)?;
        y = binary(ctx, &base, "AddV2", &y, &b, logical.clone())?;
    }
    ctx.set_plain(output0(ctx, node)?, y, logical.clone());
    let stats_shape = reduced_shape(&logical, &(axis..rank).collect::<Vec<_>>(), true);
    if let Some(name) = output_name(node, 1) {
        ctx.set_plain(name, mean, stats_shape.clone());
    }
    if let Some(name) = output_name(node, 2) {
        ctx.set_plain(name, inv, stats_shape);
    }
    Ok(())
}

/// The statistics type of `stash_type` (1: float32) for values of `dtype`.
fn stash_type(node: &NodeView<'_>, dtype: DType) -> Result<DType> {
    Ok(match node.attr_i_or("stash_type", 1)? {
        1 => DType::Float,
        _ => dtype,
    })
}

/// `x / sqrt(mean(x^2 over the axes from axis) + epsilon) * scale`.
fn rms_norm(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let scale_name = required_input(ctx, node, 1)?;
    let rank = rank_of(ctx, x_name)?;
    let axis = normalize_axis(ctx, node.attr_i_or("axis", -1)?, rank)?;
    let epsilon = f64::from(node.attr_f_or("epsilon", 1e-5)?);
    let base = ctx.node_name(node);
    let logical = ctx.slot(x_name)?.shape.clone();
    let x = ctx.plain(x_name)?;
    let dtype = x.dtype();
    let stash = stash_type(node, dtype)?;
    let xs = cast(ctx, &sub(&base, "stashed"), &x, stash)?;
    let axes: Vec<i64> = (axis as i64..rank as i64).collect();
    let kept = reduced_shape(&logical, &(axis..rank).collect::<Vec<_>>(), true);
    let sq = unary(ctx, &sub(&base, "squared"), "Square", &xs)?;
    let ms = tf_reduce(
        ctx,
        &sub(&base, "mean_square"),
        "Mean",
        &sq,
        &axes,
        true,
        kept,
    )?;
    let eps = ctx.const_scalar(&sub(&base, "epsilon"), stash, epsilon)?;
    let v = binary(
        ctx,
        &sub(&base, "ms_eps"),
        "AddV2",
        &ms,
        &eps,
        ms.shape().clone(),
    )?;
    let inv = unary(ctx, &sub(&base, "inv_rms"), "Rsqrt", &v)?;
    let normalized = binary(
        ctx,
        &sub(&base, "normalized"),
        "Mul",
        &xs,
        &inv,
        logical.clone(),
    )?;
    let normalized = cast(ctx, &sub(&base, "normalized_cast"), &normalized, dtype)?;
    let scale = ctx.plain(scale_name)?;
    let y = binary(ctx, &base, "Mul", &normalized, &scale, logical.clone())?;
    ctx.set_plain(output0(ctx, node)?, y, logical);
    Ok(())
}

/// Statistics per sample and group of `num_groups` consecutive channels;
/// the scale and bias are per channel (opset 21) or per group (opset 18).
fn group_norm(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let scale_name = required_input(ctx, node, 1)?;
    let b_name = required_input(ctx, node, 2)?;
    let rank = rank_of(ctx, x_name)?;
    let groups = node
        .attr_i("num_groups")?
        .ok_or_else(|| ctx.error("attribute num_groups is required"))?;
    let epsilon = f64::from(node.attr_f_or("epsilon", 1e-5)?);
    let per_channel = node.opset_version()? >= 21;
    let base = ctx.node_name(node);
    let logical = ctx.slot(x_name)?.shape.clone();
    let dims = logical.dims().map(<[i64]>::to_vec).unwrap_or_default();
    if rank < 2 || dims.len() != rank || dims[1..].iter().any(|&d| d < 0) {
        return Err(ctx.error(
            "GroupNormalization needs an input of rank 2 or more whose dimensions after the batch are known",
        ));
    }
    let channels = dims[1];
    if groups <= 0 || channels % groups != 0 {
        return Err(ctx.error(format!(
            "{channels} channels cannot be split into {groups} groups"
        )));
    }
    let per_group: i64 = dims[1..].iter().product::<i64>() / groups;
    let x = ctx.plain(x_name)?;
    let dtype = x.dtype();
    let stash = stash_type(node, dtype)?;
    let xs = cast(ctx, &sub(&base, "stashed"), &x, stash)?;
    let grouped_shape = ctx.const_i32(&sub(&base, "grouped_shape"), &[-1, groups, per_group])?;
    let reshape_attrs = [t(stash), ("Tshape", Attr::Type(DType::Int32))];
    let grouped = ctx.op1(
        "Reshape",
        &sub(&base, "grouped"),
        &[&xs, &grouped_shape],
        &reshape_attrs,
        Shape::new(&[dims[0], groups, per_group]),
    )?;
    let (_, _, normalized) =
        standardize(ctx, &base, &grouped, &[2], epsilon, grouped.shape().clone())?;
    let normalized = cast(ctx, &sub(&base, "normalized_cast"), &normalized, dtype)?;
    // Per group, the parameters apply to the grouped values ([G, 1]); per
    // channel, to the values back in their shape ([C, 1, ..., 1]).
    let param_dims = if per_channel {
        let mut d = vec![-1];
        d.extend(std::iter::repeat_n(1, rank - 2));
        d
    } else {
        vec![-1, 1]
    };
    let scale = reshaped(ctx, &sub(&base, "scale"), scale_name, &param_dims)?;
    let shift = reshaped(ctx, &sub(&base, "shift"), b_name, &param_dims)?;
    let shape_t = ctx.op1(
        "Shape",
        &sub(&base, "shape"),
        &[&x],
        &[t(dtype), ("out_type", Attr::Type(DType::Int32))],
        Shape::new(&[rank as i64]),
    )?;
    let back_attrs = [t(dtype), ("Tshape", Attr::Type(DType::Int32))];
    let y = if per_channel {
        let n = ctx.op1(
            "Reshape",
            &sub(&base, "ungrouped"),
            &[&normalized, &shape_t],
            &back_attrs,
            logical.clone(),
        )?;
        let y = binary(
            ctx,
            &sub(&base, "scaled"),
            "Mul",
            &n,
            &scale,
            logical.clone(),
        )?;
        binary(ctx, &base, "AddV2", &y, &shift, logical.clone())?
    } else {
        let st = normalized.shape().clone();
        let y = binary(
            ctx,
            &sub(&base, "scaled"),
            "Mul",
            &normalized,
            &scale,
            st.clone(),
        )?;
        let y = binary(ctx, &sub(&base, "shifted"), "AddV2", &y, &shift, st)?;
        ctx.op1(
            "Reshape",
            &base,
            &[&y, &shape_t],
            &back_attrs,
            logical.clone(),
        )?
    };
    ctx.set_plain(output0(ctx, node)?, y, logical);
    Ok(())
}

fn instance_norm(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let scale_name = required_input(ctx, node, 1)?;
    let b_name = required_input(ctx, node, 2)?;
    let rank = rank_of(ctx, x_name)?;
    if rank < 3 {
        return Err(ctx.error(format!("InstanceNormalization of a rank-{rank} input")));
    }
    let epsilon = f64::from(node.attr_f_or("epsilon", 1e-5)?);
    let base = ctx.node_name(node);
    let logical = ctx.slot(x_name)?.shape.clone();
    // Statistics over the spatial axes, parameters broadcast along C:
    // channels last when the input is, else in ONNX layout.
    let channels_last = ctx.is_channels_last(x_name);
    let (x, axes, param_dims) = if channels_last {
        let axes: Vec<i64> = (1..rank as i64 - 1).collect();
        (ctx.channels_last(x_name)?, axes, vec![-1])
    } else {
        let mut dims = vec![-1];
        dims.extend(std::iter::repeat_n(1, rank - 2));
        (ctx.plain(x_name)?, (2..rank as i64).collect(), dims)
    };
    let st = x.shape().clone();
    let (_, _, normalized) = standardize(ctx, &base, &x, &axes, epsilon, st.clone())?;
    let scale = reshaped(ctx, &sub(&base, "scale"), scale_name, &param_dims)?;
    let shift = reshaped(ctx, &sub(&base, "shift"), b_name, &param_dims)?;
    let y = binary(
        ctx,
        &sub(&base, "scaled"),
        "Mul",
        &normalized,
        &scale,
        st.clone(),
    )?;
    let y = binary(ctx, &base, "AddV2", &y, &shift, st)?;
    let out = output0(ctx, node)?;
    if channels_last {
        ctx.set_channels_last(out, y, logical);
    } else {
        ctx.set_plain(out, y, logical);
    }
    Ok(())
}

fn mean_variance_norm(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    let axes: Vec<i64> = match node.attr_ints("axes")? {
        Some(a) => a
            .iter()
            .map(|&a| normalize_axis(ctx, a, rank).map(|a| a as i64))
            .collect::<Result<_>>()?,
        None => vec![0, 2, 3],
    };
    let base = ctx.node_name(node);
    let logical = ctx.slot(x_name)?.shape.clone();
    let x = ctx.plain(x_name)?;
    let dtype = x.dtype();
    let (_, centered, var) = moments(ctx, &base, &x, &axes)?;
    // (x - mean) / (sqrt(variance) + 1e-9), as ONNX's function body.
    let std = unary(ctx, &sub(&base, "std"), "Sqrt", &var)?;
    let eps = ctx.const_scalar(&sub(&base, "epsilon"), dtype, 1e-9)?;
    let std = binary(
        ctx,
        &sub(&base, "std_eps"),
        "AddV2",
        &std,
        &eps,
        std.shape().clone(),
    )?;
    let y = binary(ctx, &base, "RealDiv", &centered, &std, logical.clone())?;
    ctx.set_plain(output0(ctx, node)?, y, logical);
    Ok(())
}

/// The Lp norm of `x` over `axes` (kept as size-1 dimensions when `keep`).
fn lp_norm(
    ctx: &mut Ctx,
    base: &str,
    x: &Output,
    axes: &[i64],
    p: i64,
    shape: Shape,
) -> Result<Output> {
    match p {
        1 => {
            let a = unary(ctx, &sub(base, "abs"), "Abs", x)?;
            tf_reduce(ctx, base, "Sum", &a, axes, true, shape)
        }
        2 => {
            let s = unary(ctx, &sub(base, "square"), "Square", x)?;
            let s = tf_reduce(ctx, &sub(base, "sum"), "Sum", &s, axes, true, shape)?;
            unary(ctx, base, "Sqrt", &s)
        }
        p if p > 0 => {
            let dtype = x.dtype();
            let a = unary(ctx, &sub(base, "abs"), "Abs", x)?;
            let pt = ctx.const_scalar(&sub(base, "p"), dtype, p as f64)?;
            let a = binary(ctx, &sub(base, "pow"), "Pow", &a, &pt, a.shape().clone())?;
            let s = tf_reduce(ctx, &sub(base, "sum"), "Sum", &a, axes, true, shape.clone())?;
            let inv = ctx.const_scalar(&sub(base, "inv_p"), dtype, 1.0 / p as f64)?;
            binary(ctx, base, "Pow", &s, &inv, shape)
        }
        _ => Err(ctx.error(format!("p must be positive, not {p}"))),
    }
}

fn lp_normalization(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    let axis = normalize_axis(ctx, node.attr_i_or("axis", -1)?, rank)?;
    let p = node.attr_i_or("p", 2)?;
    if p != 1 && p != 2 {
        return Err(ctx.error(format!("p must be 1 or 2, not {p}")));
    }
    let base = ctx.node_name(node);
    let logical = ctx.slot(x_name)?.shape.clone();
    let x = ctx.plain(x_name)?;
    let kept = reduced_shape(&logical, &[axis], true);
    let norm = lp_norm(ctx, &sub(&base, "norm"), &x, &[axis as i64], p, kept)?;
    // A zero norm gives zeros, as ONNX's reference does.
    let y = binary(ctx, &base, "DivNoNan", &x, &norm, logical.clone())?;
    ctx.set_plain(output0(ctx, node)?, y, logical);
    Ok(())
}

fn global_lp_pool(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    if rank < 3 {
        return Err(ctx.error(format!("global pooling of a rank-{rank} input")));
    }
    let p = node.attr_i_or("p", 2)?;
    let base = ctx.node_name(node);
    let spatial: Vec<usize> = (2..rank).collect();
    let logical = reduced_shape(&ctx.slot(x_name)?.shape, &spatial, true);
    let channels_last = ctx.is_channels_last(x_name);
    let (x, axes, stored) = if channels_last {
        let stored = permute_shape(&logical, &to_channels_last(rank));
        (
            ctx.channels_last(x_name)?,
            (1..rank as i64 - 1).collect::<Vec<_>>(),
            stored,
        )
    } else {
        (
            ctx.plain(x_name)?,
            (2..rank as i64).collect(),
            logical.clone(),
        )
    };
    let y = lp_norm(ctx, &base, &x, &axes, p, stored)?;
    let out = output0(ctx, node)?;
    if channels_last {
        ctx.set_channels_last(out, y, logical);
    } else {
        ctx.set_plain(out, y, logical);
    }
    Ok(())
}

/// `|x|^p` with `p` a positive integer.
fn abs_pow(ctx: &mut Ctx, base: &str, x: &Output, p: i64) -> Result<Output> {
    match p {
        1 => unary(ctx, base, "Abs", x),
        2 => unary(ctx, base, "Square", x),
        p if p > 0 => {
            let a = unary(ctx, &sub(base, "abs"), "Abs", x)?;
            let pt = ctx.const_scalar(&sub(base, "p"), x.dtype(), p as f64)?;
            binary(ctx, base, "Pow", &a, &pt, x.shape().clone())
        }
        _ => Err(ctx.error(format!("p must be positive, not {p}"))),
    }
}

/// `LpPool`: `(sum |x|^p)^(1/p)` over each window of the zero-padded
/// input (as the backend suite's expected outputs,
/// `onnx/backend/test/case/node/lppool.py`).
fn lp_pool(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    if !(3..=5).contains(&rank) {
        return Err(ctx.error(format!("pooling a rank-{rank} input is not supported")));
    }
    let p = node.attr_i_or("p", 2)?;
    let base = ctx.node_name(node);
    let out = output0(ctx, node)?;
    let logical = ctx.slot(x_name)?.shape.clone();
    let x = ctx.channels_last(x_name)?;
    let powered = abs_pow(ctx, &sub(&base, "lp_power"), &x, p)?;
    // The power is an ONNX-invisible value pooled like an input.
    let powered_name = format!("{out}#lp_power");
    ctx.set_channels_last(&powered_name, powered, logical);
    let (sum, shape) = pool_of(ctx, node, &powered_name, PoolKind::Sum)?;
    let dtype = sum.dtype();
    let st = sum.shape().clone();
    let y = match p {
        1 => sum,
        2 => unary(ctx, &sub(&base, "lp_root"), "Sqrt", &sum)?,
        _ => {
            let inv = ctx.const_scalar(&sub(&base, "inv_p"), dtype, 1.0 / p as f64)?;
            binary(ctx, &sub(&base, "lp_root"), "Pow", &sum, &inv, st)?
        }
    };
    ctx.set_channels_last(out, y, shape);
    Ok(())
}

/// `LRN`: `y = x / (bias + alpha / size * s)^beta`, where `s` sums the
/// squares of `x` over the channels `c - floor((size - 1) / 2)` to
/// `c + ceil((size - 1) / 2)` (those that exist), as
/// `onnx/defs/nn/defs.cc` defines it.
///
/// A float input of rank 4 with an odd `size` is TensorFlow's `LRN` on the
/// channels-last tensor (its `depth_radius` window is symmetric and its
/// `alpha` multiplies the sum directly, so it is given `alpha / size`).
/// Otherwise the window sum is a `BatchMatMulV2` of the squares (channels
/// last) with a band of ones, which needs the channel count.
fn lrn(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    if rank < 2 {
        return Err(ctx.error(format!(
            "LRN needs an input of rank 2 or more (N, C, ...), not rank {rank}"
        )));
    }
    let size = node
        .attr_i("size")?
        .ok_or_else(|| ctx.error("attribute size is required"))?;
    if size < 1 {
        return Err(ctx.error(format!("size must be positive, not {size}")));
    }
    let alpha = node.attr_f_or("alpha", 1e-4)?;
    let beta = node.attr_f_or("beta", 0.75)?;
    let bias = node.attr_f_or("bias", 1.0)?;
    let base = ctx.node_name(node);
    let out = output0(ctx, node)?;
    let logical = ctx.slot(x_name)?.shape.clone();
    let dtype = ctx.slot(x_name)?.dtype;
    if !constant::is_float(dtype) {
        return Err(ctx.error(format!("LRN of {dtype} is not supported")));
    }
    // Channels are the last axis of the stored tensor either way.
    let x = if rank > 2 {
        ctx.channels_last(x_name)?
    } else {
        ctx.plain(x_name)?
    };
    let stored = x.shape().clone();
    let y = if rank == 4 && size % 2 == 1 && dtype == DType::Float {
        ctx.op1(
            "LRN",
            &base,
            &[&x],
            &[
                t(dtype),
                ("depth_radius", Attr::Int((size - 1) / 2)),
                ("bias", Attr::Float(bias)),
                ("alpha", Attr::Float(alpha / size as f32)),
                ("beta", Attr::Float(beta)),
            ],
            stored,
        )?
    } else {
        let channels = logical.dim(1);
        if !(1..=LRN_BAND_CHANNELS).contains(&channels) {
            let count = if channels < 0 {
                "an unknown number of".to_owned()
            } else {
                channels.to_string()
            };
            return Err(ctx.error(format!(
                "LRN over {count} channels is supported only for a float input of \
                 rank 4 with an odd size (otherwise at most {LRN_BAND_CHANNELS} known channels)"
            )));
        }
        let band = lrn_band(channels, size).map_err(|e| ctx.build_error(e))?;
        let band = ctx.const_tensor(&sub(&base, "band"), band)?;
        let band = cast(ctx, &sub(&base, "band_cast"), &band, dtype)?;
        let squares = unary(ctx, &sub(&base, "square"), "Square", &x)?;
        let sums = ctx.op1(
            "BatchMatMulV2",
            &sub(&base, "window_sum"),
            &[&squares, &band],
            &[t(dtype)],
            stored.clone(),
        )?;
        let scale =
            ctx.const_scalar(&sub(&base, "alpha"), dtype, f64::from(alpha) / size as f64)?;
        let scaled = binary(
            ctx,
            &sub(&base, "scaled"),
            "Mul",
            &sums,
            &scale,
            stored.clone(),
        )?;
        let bias = ctx.const_scalar(&sub(&base, "bias"), dtype, f64::from(bias))?;
        let shifted = binary(
            ctx,
            &sub(&base, "shifted"),
            "AddV2",
            &scaled,
            &bias,
            stored.clone(),
        )?;
        let beta = ctx.const_scalar(&sub(&base, "beta"), dtype, f64::from(beta))?;
        let denominator = binary(
            ctx,
            &sub(&base, "power"),
            "Pow",
            &shifted,
            &beta,
            stored.clone(),
        )?;
        binary(ctx, &base, "RealDiv", &x, &denominator, stored)?
    };
    if rank > 2 {
        ctx.set_channels_last(out, y, logical);
    } else {
        ctx.set_plain(out, y, logical);
    }
    Ok(())
}

/// The most channels the band matrix of [`lrn`] is built for (its
/// elements are the square of this).
const LRN_BAND_CHANNELS: i64 = 4096;

/// The `[channels, channels]` matrix whose column `c` has ones at the
/// channels LRN sums for channel `c`: `c - floor((size - 1) / 2)` to
/// `c + ceil((size - 1) / 2)`.
fn lrn_band(channels: i64, size: i64) -> savedmodel_graph::Result<Tensor> {
    let below = (size - 1) / 2;
    let above = size - 1 - below;
    let mut values = Vec::with_capacity((channels * channels) as usize);
    for i in 0..channels {
        for c in 0..channels {
            values.push(if (c - below..=c + above).contains(&i) {
                1.0f32
            } else {
                0.0
            });
        }
    }
    Tensor::new(&[channels, channels], &values)
}
