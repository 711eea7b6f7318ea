//! Operators added beside the first families: transposed convolution,
//! integer matrix products, more activations, infinity tests, bitwise
//! operators and `CastLike`.
//!
//! The activations keep their input's layout, as the elementwise family
//! does; `ConvTranspose` runs channels last, as `Conv` does (`nn.rs`).

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::elementwise::{Layout, binary, define, input0, unary};
use super::nn::{conv_of, dims, filter_tensor, nhwc_list};
use super::{Converter, input_name, output0, rank_of, required_input, sub};
use crate::convert::context::{Ctx, permute_shape, to_channels_last};
use crate::convert::weights::Layout as WeightLayout;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "ConvTranspose" => conv_transpose,
        "MatMulInteger" => matmul_integer,
        "ConvInteger" => conv_integer,
        "Mish" => mish,
        "Celu" => celu,
        "ThresholdedRelu" => thresholded_relu,
        "Shrink" => shrink,
        "Swish" => swish,
        "IsInf" => is_inf,
        "CastLike" => cast_like,
        "BitwiseAnd" => |c, n| binary(c, n, "BitwiseAnd"),
        "BitwiseOr" => |c, n| binary(c, n, "BitwiseOr"),
        "BitwiseXor" => |c, n| binary(c, n, "BitwiseXor"),
        "BitwiseNot" => |c, n| unary(c, n, "Invert"),
        "BitShift" => bit_shift,
        _ => return None,
    };
    Some(f)
}

fn t(dtype: DType) -> (&'static str, Attr) {
    ("T", Attr::Type(dtype))
}

/// Builds `f(x)` for an activation over input 0, keeping its layout; `f`
/// gets the node's base name and `x`.
fn activation(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    f: impl FnOnce(&mut Ctx, &str, &Output) -> Result<Output>,
) -> Result<()> {
    let base = ctx.node_name(node);
    let (x, layout, shape) = input0(ctx, node)?;
    let y = f(ctx, &base, &x)?;
    define(ctx, node, y, layout, shape)
}

/// A one-input op of `x`'s dtype and shape.
fn un(ctx: &mut Ctx, op: &str, name: &str, x: &Output) -> Result<Output> {
    ctx.op1(op, name, &[x], &[t(x.dtype())], x.shape().clone())
}

/// A two-input op of `x`'s dtype and shape (the other operand broadcasts).
fn bin(ctx: &mut Ctx, op: &str, name: &str, x: &Output, y: &Output) -> Result<Output> {
    ctx.op1(op, name, &[x, y], &[t(x.dtype())], x.shape().clone())
}

/// `x * tanh(softplus(x))`.
fn mish(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    activation(ctx, node, |ctx, base, x| {
        let sp = un(ctx, "Softplus", &sub(base, "softplus"), x)?;
        let th = un(ctx, "Tanh", &sub(base, "tanh"), &sp)?;
        bin(ctx, "Mul", base, x, &th)
    })
}

/// `alpha * elu(x / alpha)`, which is `max(0, x) + min(0, alpha * (exp(x /
/// alpha) - 1))`.
fn celu(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let alpha = f64::from(node.attr_f_or("alpha", 1.0)?);
    if alpha == 0.0 {
        return Err(ctx.error("alpha must not be 0"));
    }
    activation(ctx, node, |ctx, base, x| {
        let inv = ctx.const_scalar(&sub(base, "inv_alpha"), x.dtype(), 1.0 / alpha)?;
        let a = ctx.const_scalar(&sub(base, "alpha"), x.dtype(), alpha)?;
        let scaled = bin(ctx, "Mul", &sub(base, "scaled"), x, &inv)?;
        let e = un(ctx, "Elu", &sub(base, "elu"), &scaled)?;
        bin(ctx, "Mul", base, &e, &a)
    })
}

fn thresholded_relu(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let alpha = f64::from(node.attr_f_or("alpha", 1.0)?);
    activation(ctx, node, |ctx, base, x| {
        thresholded_relu_of(ctx, base, x, alpha)
    })
}

/// `x > alpha ? x : 0`, named under `base`.
pub(super) fn thresholded_relu_of(
    ctx: &mut Ctx,
    base: &str,
    x: &Output,
    alpha: f64,
) -> Result<Output> {
    let a = ctx.const_scalar(&sub(base, "alpha"), x.dtype(), alpha)?;
    let above = bin(ctx, "Greater", &sub(base, "above"), x, &a)?;
    let zeros = un(ctx, "ZerosLike", &sub(base, "zeros"), x)?;
    ctx.op1(
        "SelectV2",
        base,
        &[&above, x, &zeros],
        &[t(x.dtype())],
        x.shape().clone(),
    )
}

/// `x < -lambd ? x + bias : x > lambd ? x - bias : 0`.
fn shrink(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let lambd = f64::from(node.attr_f_or("lambd", 0.5)?);
    let bias = f64::from(node.attr_f_or("bias", 0.0)?);
    activation(ctx, node, |ctx, base, x| {
        let dtype = x.dtype();
        let lo = ctx.const_scalar(&sub(base, "minus_lambd"), dtype, -lambd)?;
        let hi = ctx.const_scalar(&sub(base, "lambd"), dtype, lambd)?;
        let b = ctx.const_scalar(&sub(base, "bias"), dtype, bias)?;
        let below = bin(ctx, "Less", &sub(base, "below"), x, &lo)?;
        let above = bin(ctx, "Greater", &sub(base, "above"), x, &hi)?;
        let plus = bin(ctx, "AddV2", &sub(base, "plus_bias"), x, &b)?;
        let minus = bin(ctx, "Sub", &sub(base, "minus_bias"), x, &b)?;
        let zeros = un(ctx, "ZerosLike", &sub(base, "zeros"), x)?;
        let st = x.shape().clone();
        let upper = ctx.op1(
            "SelectV2",
            &sub(base, "upper"),
            &[&above, &minus, &zeros],
            &[t(dtype)],
            st.clone(),
        )?;
        ctx.op1("SelectV2", base, &[&below, &plus, &upper], &[t(dtype)], st)
    })
}

/// `x * sigmoid(alpha * x)` (opset 24).
fn swish(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let alpha = f64::from(node.attr_f_or("alpha", 1.0)?);
    activation(ctx, node, |ctx, base, x| {
        let gate_in = if alpha == 1.0 {
            x.clone()
        } else {
            let a = ctx.const_scalar(&sub(base, "alpha"), x.dtype(), alpha)?;
            bin(ctx, "Mul", &sub(base, "scaled"), x, &a)?
        };
        let gate = un(ctx, "Sigmoid", &sub(base, "sigmoid"), &gate_in)?;
        bin(ctx, "Mul", base, x, &gate)
    })
}

fn is_inf(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let positive = node.attr_i_or("detect_positive", 1)? != 0;
    let negative = node.attr_i_or("detect_negative", 1)? != 0;
    activation(ctx, node, |ctx, base, x| {
        let dtype = x.dtype();
        let st = x.shape().clone();
        let equal_to = |ctx: &mut Ctx, what: &str, v: f64| -> Result<Output> {
            let c = ctx.const_scalar(&sub(base, what), dtype, v)?;
            ctx.op1(
                "Equal",
                &sub(base, &format!("is_{what}")),
                &[x, &c],
                &[t(dtype)],
                st.clone(),
            )
        };
        match (positive, negative) {
            (true, true) => ctx.op1("IsInf", base, &[x], &[t(dtype)], st.clone()),
            (true, false) => equal_to(ctx, "inf", f64::INFINITY),
            (false, true) => equal_to(ctx, "minus_inf", f64::NEG_INFINITY),
            // Nothing is detected: x < x is false everywhere, NaN included.
            (false, false) => ctx.op1("Less", base, &[x, x], &[t(dtype)], st.clone()),
        }
    })
}

fn cast_like(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let like = required_input(ctx, node, 1)?;
    if let Some(c) = ctx.carried(like) {
        return super::shape::cast_to_onnx(ctx, node, x, c.onnx_type());
    }
    let to = ctx.slot(like)?.dtype;
    if ctx.carried(x).is_some() {
        let to = crate::dtype::onnx_from_dtype(to)
            .ok_or_else(|| ctx.error(format!("CastLike to {to} is not supported")))?;
        return super::shape::cast_to_onnx(ctx, node, x, to);
    }
    super::shape::cast_to(ctx, node, x, to)
}

/// ONNX's `BitShift` (numpy's shifts): a shift by a negative amount or by
/// the width or more gives 0 (or -1 shifting a negative value right),
/// where TensorFlow's `LeftShift`/`RightShift` clamp the amount; the
/// out-of-range amounts are selected explicitly.
fn bit_shift(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let op = match node.attr_s_or("direction", "")? {
        "LEFT" => "LeftShift",
        "RIGHT" => "RightShift",
        other => return Err(ctx.error(format!("direction {other:?} is not LEFT or RIGHT"))),
    };
    let a = required_input(ctx, node, 0)?;
    let b = required_input(ctx, node, 1)?;
    let dtype = ctx.slot(a)?.dtype;
    let bits: i64 = match dtype {
        DType::Int8 | DType::UInt8 => 8,
        DType::Int16 | DType::UInt16 => 16,
        DType::Int32 | DType::UInt32 => 32,
        DType::Int64 | DType::UInt64 => 64,
        other => return Err(ctx.error(format!("BitShift of {other} is not supported"))),
    };
    let signed = matches!(
        dtype,
        DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64
    );
    let base = ctx.node_name(node);
    let x = ctx.plain(a)?;
    let y = ctx.plain(b)?;
    let shape = broadcast(ctx, a, b);
    let shifted = ctx.op1(
        op,
        &sub(&base, "shift"),
        &[&x, &y],
        &[t(dtype)],
        shape.clone(),
    )?;
    // Compared as int64 (every integer comparison has a CPU kernel there;
    // a uint64 amount of 2^63 or more wraps negative: out of range too).
    let as_i64 = |ctx: &mut Ctx, v: &Output, what: &str| -> Result<Output> {
        if v.dtype() == DType::Int64 {
            return Ok(v.clone());
        }
        ctx.op1(
            "Cast",
            &sub(&base, what),
            &[v],
            &[
                ("SrcT", Attr::Type(v.dtype())),
                ("DstT", Attr::Type(DType::Int64)),
            ],
            v.shape().clone(),
        )
    };
    let y64 = as_i64(ctx, &y, "amount_i64")?;
    let zero64 = ctx.const_tensor(&sub(&base, "zero_i64"), Tensor::scalar(0i64))?;
    let width = ctx.const_tensor(&sub(&base, "width"), Tensor::scalar(bits))?;
    let ge0 = ctx.op1(
        "GreaterEqual",
        &sub(&base, "amount_not_negative"),
        &[&y64, &zero64],
        &[t(DType::Int64)],
        y64.shape().clone(),
    )?;
    let lt = ctx.op1(
        "Less",
        &sub(&base, "amount_below_width"),
        &[&y64, &width],
        &[t(DType::Int64)],
        y64.shape().clone(),
    )?;
    let in_range = ctx.op1(
        "LogicalAnd",
        &sub(&base, "amount_in_range"),
        &[&ge0, &lt],
        &[],
        y64.shape().clone(),
    )?;
    let zero = ctx.const_scalar(&sub(&base, "zero"), dtype, 0.0)?;
    let fill = if signed && op == "RightShift" {
        // Shifting a negative value right by the width or more gives -1.
        let x64 = as_i64(ctx, &x, "value_i64")?;
        let negative = ctx.op1(
            "Less",
            &sub(&base, "value_negative"),
            &[&x64, &zero64],
            &[t(DType::Int64)],
            x64.shape().clone(),
        )?;
        let minus_one = ctx.const_scalar(&sub(&base, "minus_one"), dtype, -1.0)?;
        ctx.op1(
            "SelectV2",
            &sub(&base, "fill"),
            &[&negative, &minus_one, &zero],
            &[t(dtype)],
            x.shape().clone(),
        )?
    } else {
        zero
    };
    let out = ctx.op1(
        "SelectV2",
        &base,
        &[&in_range, &shifted, &fill],
        &[t(dtype)],
        shape.clone(),
    )?;
    define(ctx, node, out, Layout::Plain, shape)
}

/// The broadcast logical shape of ONNX values `a` and `b`.
fn broadcast(ctx: &Ctx, a: &str, b: &str) -> Shape {
    let da = ctx.slot(a).ok().and_then(|s| dims(&s.shape));
    let db = ctx.slot(b).ok().and_then(|s| dims(&s.shape));
    match (da, db) {
        (Some(x), Some(y)) => crate::convert::constant::broadcast_dims(&x, &y)
            .map_or_else(|_| Shape::unknown(), |d| Shape::new(&d)),
        _ => Shape::unknown(),
    }
}

/// `MatMulInteger`: `(A - a_zero_point) x (B - b_zero_point)` in int32,
/// the operands widened to int32 first (exact: 8-bit values).
fn matmul_integer(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let a = required_input(ctx, node, 0)?;
    let b = required_input(ctx, node, 1)?;
    let (ra, rb) = (rank_of(ctx, a)?, rank_of(ctx, b)?);
    if ra < 2 || rb < 2 {
        return Err(ctx.error("MatMulInteger of a vector operand is not supported"));
    }
    let base = ctx.node_name(node);
    let widen = |ctx: &mut Ctx, name: &str, what: &str| -> Result<Output> {
        let v = ctx.plain(name)?;
        if v.dtype() == DType::Int32 {
            return Ok(v);
        }
        ctx.op1(
            "Cast",
            &sub(&base, what),
            &[&v],
            &[
                ("SrcT", Attr::Type(v.dtype())),
                ("DstT", Attr::Type(DType::Int32)),
            ],
            v.shape().clone(),
        )
    };
    let mut x = widen(ctx, a, "a_i32")?;
    let mut y = widen(ctx, b, "b_i32")?;
    if let Some(za) = input_name(node, 2) {
        let mut z = widen(ctx, za, "a_zero_i32")?;
        // A per-row zero point of A ([M]) broadcasts along rows.
        if ctx.slot(za)?.shape.rank() == Some(1) {
            let target = ctx.const_i32(&sub(&base, "a_zero_column"), &[-1, 1])?;
            z = ctx.op1(
                "Reshape",
                &sub(&base, "a_zero_rows"),
                &[&z, &target],
                &[t(DType::Int32), ("Tshape", Attr::Type(DType::Int32))],
                Shape::unknown_dims(2),
            )?;
        }
        x = bin(ctx, "Sub", &sub(&base, "a_centered"), &x, &z)?;
    }
    if let Some(zb) = input_name(node, 3) {
        let z = widen(ctx, zb, "b_zero_i32")?;
        y = bin(ctx, "Sub", &sub(&base, "b_centered"), &y, &z)?;
    }
    let (sa, sb) = (dims(&ctx.slot(a)?.shape), dims(&ctx.slot(b)?.shape));
    let shape = match (sa, sb) {
        (Some(da), Some(db)) => {
            let batch = crate::convert::constant::broadcast_dims(&da[..ra - 2], &db[..rb - 2])
                .unwrap_or_else(|_| vec![-1; ra.max(rb) - 2]);
            let mut d = batch;
            d.push(da[ra - 2]);
            d.push(db[rb - 1]);
            Shape::new(&d)
        }
        _ => Shape::unknown_dims(ra.max(rb)),
    };
    let op = if ra == 2 && rb == 2 {
        "MatMul"
    } else {
        "BatchMatMulV2"
    };
    let out = ctx.op1(op, &base, &[&x, &y], &[t(DType::Int32)], shape.clone())?;
    define(ctx, node, out, Layout::Plain, shape)
}

/// `ONNX value - zero point`, widened to int32 (exact for 8-bit values), as
/// a TensorFlow tensor in ONNX layout. A zero point of rank 1 applies per
/// index of axis `axis` of the value (of `rank`).
pub(super) fn centered_i32(
    ctx: &mut Ctx,
    base: &str,
    name: &str,
    zero_point: Option<&str>,
    axis: usize,
    rank: usize,
) -> Result<Output> {
    let widen = |ctx: &mut Ctx, v: Output, what: &str| -> Result<Output> {
        if v.dtype() == DType::Int32 {
            return Ok(v);
        }
        ctx.op1(
            "Cast",
            &sub(base, what),
            &[&v],
            &[
                ("SrcT", Attr::Type(v.dtype())),
                ("DstT", Attr::Type(DType::Int32)),
            ],
            v.shape().clone(),
        )
    };
    let v = ctx.plain(name)?;
    let v = widen(ctx, v, "value_i32")?;
    let Some(zp) = zero_point else {
        return Ok(v);
    };
    let z = ctx.plain(zp)?;
    let mut z = widen(ctx, z, "zero_point_i32")?;
    if ctx.slot(zp)?.shape.rank() == Some(1) && rank > 1 {
        let mut target = vec![1i64; rank - axis];
        target[0] = -1;
        let target = ctx.const_i32(&sub(base, "zero_point_shape"), &target)?;
        z = ctx.op1(
            "Reshape",
            &sub(base, "zero_point_along_axis"),
            &[&z, &target],
            &[t(DType::Int32), ("Tshape", Attr::Type(DType::Int32))],
            Shape::unknown_dims(rank - axis),
        )?;
    }
    bin(ctx, "Sub", &sub(base, "centered"), &v, &z)
}

/// `ConvInteger`: the convolution of `x - x_zero_point` by `w -
/// w_zero_point` (per output channel when a vector) in int32.
fn conv_integer(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let w = required_input(ctx, node, 1)?;
    let rank = rank_of(ctx, x)?;
    let base = ctx.node_name(node);
    let out = output0(ctx, node)?;
    let xc = centered_i32(ctx, &sub(&base, "x"), x, input_name(node, 2), 1, rank)?;
    let wc = centered_i32(ctx, &sub(&base, "w"), w, input_name(node, 3), 0, rank)?;
    // The centered operands as values of their own (names no ONNX value
    // has: they start with a control character), for the convolution.
    let x_name = format!("\u{1}{out}/x_centered");
    let w_name = format!("\u{1}{out}/w_centered");
    let x_shape = ctx.slot(x)?.shape.clone();
    let w_shape = ctx.slot(w)?.shape.clone();
    ctx.set_plain(&x_name, xc, x_shape);
    ctx.set_plain(&w_name, wc, w_shape);
    conv_of(ctx, node, &x_name, &w_name, None)
}

/// The geometry of one spatial dimension of a `ConvTranspose`.
struct TransposedDim {
    stride: i64,
    /// The dilated kernel's extent.
    span: i64,
    /// How much of the full result (the input scattered by the kernel,
    /// `stride * (in - 1) + span` long) is cut at the start; negative:
    /// zeros added.
    begin: i64,
    /// The same at the end.
    end: i64,
    /// The output's size (-1 if unknown).
    out: i64,
}

/// ConvTranspose's spatial geometry, as the reference implementation
/// computes it (`onnx/reference/ops/op_conv_transpose.py`): explicit pads
/// (0 by default) cut the full result, `output_shape` sets the size from
/// the start of the cut, `auto_pad` SAME_* centres an output of
/// `output_shape` (or `in * stride`) in the full result.
fn transposed_dims(
    ctx: &Ctx,
    node: &NodeView<'_>,
    spatial_in: &[i64],
    kernel: &[i64],
) -> Result<Vec<TransposedDim>> {
    let n = kernel.len();
    let list = |name: &str, default: i64| -> Result<Vec<i64>> {
        let v = node
            .attr_ints(name)?
            .map_or_else(|| vec![default; n], <[i64]>::to_vec);
        if v.len() < n {
            return Err(ctx.error(format!("{name} has {} values, expected {n}", v.len())));
        }
        Ok(v)
    };
    let strides = list("strides", 1)?;
    let dilations = list("dilations", 1)?;
    let output_padding = list("output_padding", 0)?;
    let output_shape = match node.attr_ints("output_shape")? {
        None => None,
        Some(v) if v.len() == n => Some(v.to_vec()),
        Some(v) if v.len() == n + 2 => Some(v[2..].to_vec()),
        Some(v) => {
            return Err(ctx.error(format!("output_shape has {} values, expected {n}", v.len())));
        }
    };
    let pads = node.attr_ints("pads")?;
    if let Some(p) = pads {
        if p.len() != 2 * n {
            return Err(ctx.error(format!("pads has {} values, expected {}", p.len(), 2 * n)));
        }
    }
    let auto_pad = node.attr_s_or("auto_pad", "NOTSET")?;
    if !matches!(auto_pad, "NOTSET" | "VALID" | "SAME_UPPER" | "SAME_LOWER") {
        return Err(ctx.error(format!("auto_pad {auto_pad:?} is not defined")));
    }
    let same = pads.is_none() && matches!(auto_pad, "SAME_UPPER" | "SAME_LOWER");
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if strides[i] < 1 || dilations[i] < 1 || kernel[i] < 1 {
            return Err(ctx.error("strides, dilations and the kernel must be positive"));
        }
        let input = spatial_in[i];
        let span = (kernel[i] - 1) * dilations[i] + 1;
        let full = (input >= 0).then(|| strides[i] * (input - 1) + span);
        let need_static = || ctx.error("this ConvTranspose needs static spatial dimensions");
        let (begin, size) = if same {
            let full = full.ok_or_else(need_static)?;
            let size = output_shape.as_ref().map_or(input * strides[i], |o| o[i]);
            let total = full + output_padding[i] - size;
            let half = total.div_euclid(2);
            let begin = if auto_pad == "SAME_UPPER" {
                half
            } else {
                total - half
            };
            (begin, size)
        } else {
            let (pb, pe) = pads.map_or((0, 0), |p| (p[i], p[i + n]));
            match &output_shape {
                Some(o) => (pb, o[i]),
                None => (pb, full.map_or(-1, |f| f + output_padding[i] - pb - pe)),
            }
        };
        let end = match full {
            Some(f) => f - begin - size,
            // Without output_shape the cut at the end is known anyway.
            None if output_shape.is_none() && !same => {
                pads.map_or(0, |p| p[i + n]) - output_padding[i]
            }
            None => return Err(need_static()),
        };
        out.push(TransposedDim {
            stride: strides[i],
            span,
            begin,
            end,
            out: size,
        });
    }
    Ok(out)
}

fn conv_transpose(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let w_name = required_input(ctx, node, 1)?;
    let rank = rank_of(ctx, x_name)?;
    if !(3..=5).contains(&rank) {
        return Err(ctx.error(format!(
            "ConvTranspose of a rank-{rank} input is not supported"
        )));
    }
    let spatial = rank - 2;
    let base = ctx.node_name(node);
    let x_shape = dims(&ctx.slot(x_name)?.shape).unwrap_or_else(|| vec![-1; rank]);
    let w_shape = dims(&ctx.slot(w_name)?.shape)
        .filter(|d| d.len() == rank && d.iter().all(|&v| v > 0))
        .ok_or_else(|| ctx.error("the weight's shape must be known"))?;
    let group = node.attr_i_or("group", 1)?;
    if group < 1 || w_shape[0] % group != 0 {
        return Err(ctx.error(format!(
            "group {group} does not divide the {} input channels",
            w_shape[0]
        )));
    }
    let kernel = w_shape[2..].to_vec();
    if let Some(k) = node.attr_ints("kernel_shape")? {
        if k != kernel.as_slice() {
            return Err(ctx.error("kernel_shape differs from the weight's shape"));
        }
    }
    let dilations = node
        .attr_ints("dilations")?
        .map_or_else(|| vec![1; spatial], <[i64]>::to_vec);
    let geometry = transposed_dims(ctx, node, &x_shape[2..], &kernel)?;
    let m_per_group = w_shape[1];
    let m = m_per_group * group;
    let dtype = ctx.slot(x_name)?.dtype;

    // 1-D runs as 2-D over a height of 1.
    let as_2d = spatial == 1;
    let tf_spatial = spatial.max(2);
    let mut x = ctx.channels_last(x_name)?;
    let mut filter = filter_tensor(ctx, &base, w_name, WeightLayout::Filter, None)?;
    // The filter as TensorFlow has it: [k..., M/g, C].
    let mut f_dims: Vec<i64> = kernel.clone();
    f_dims.push(m_per_group);
    f_dims.push(w_shape[0]);
    let mut tf_dilations = dilations.clone();
    let mut tf_strides: Vec<i64> = geometry.iter().map(|g| g.stride).collect();
    if as_2d {
        let axis = ctx.const_i32(&sub(&base, "expand_axis"), &[1])?;
        let st = match x.shape().dims() {
            Some(d) => Shape::new(&[d[0], 1, d[1], d[2]]),
            None => Shape::unknown_dims(4),
        };
        x = ctx.op1(
            "ExpandDims",
            &sub(&base, "as_2d"),
            &[&x, &axis],
            &[t(dtype), ("Tdim", Attr::Type(DType::Int32))],
            st,
        )?;
        f_dims.insert(0, 1);
        let target = ctx.const_i32(&sub(&base, "filter_2d_shape"), &f_dims)?;
        filter = ctx.op1(
            "Reshape",
            &sub(&base, "filter_2d"),
            &[&filter, &target],
            &[t(dtype), ("Tshape", Attr::Type(DType::Int32))],
            Shape::new(&f_dims),
        )?;
        tf_dilations.insert(0, 1);
        tf_strides.insert(0, 1);
    }
    // TensorFlow's CPU kernels do not dilate a transposed convolution: the
    // filter is dilated here, zeros between its taps.
    for (axis, &d) in tf_dilations.iter().enumerate().take(tf_spatial) {
        if d > 1 {
            filter = dilate(ctx, &base, &filter, &mut f_dims, axis, d)?;
        }
    }

    // The full result's size for each group: [N, stride * (in - 1) + span
    // ..., M/g], computed from the input's shape at run time.
    let mut scale = vec![1i64];
    let mut offset = vec![0i64];
    if as_2d {
        scale.push(1);
        offset.push(0);
    }
    for g in &geometry {
        scale.push(g.stride);
        offset.push(g.span - g.stride);
    }
    scale.push(0);
    offset.push(m_per_group);
    let x_dims = ctx.op1(
        "Shape",
        &sub(&base, "input_shape"),
        &[&x],
        &[t(dtype), ("out_type", Attr::Type(DType::Int32))],
        Shape::new(&[tf_spatial as i64 + 2]),
    )?;
    let scale = ctx.const_i32(&sub(&base, "size_scale"), &scale)?;
    let offset = ctx.const_i32(&sub(&base, "size_offset"), &offset)?;
    let sizes = bin(ctx, "Mul", &sub(&base, "scaled_size"), &x_dims, &scale)?;
    let sizes = bin(ctx, "AddV2", &sub(&base, "full_size"), &sizes, &offset)?;

    let (op, attrs): (&str, Vec<(&str, Attr)>) = if tf_spatial == 3 {
        (
            "Conv3DBackpropInputV2",
            vec![
                t(dtype),
                ("strides", Attr::IntList(nhwc_list(&tf_strides))),
                ("padding", Attr::Str(b"VALID".to_vec())),
                ("Tshape", Attr::Type(DType::Int32)),
            ],
        )
    } else {
        (
            "Conv2DBackpropInput",
            vec![
                t(dtype),
                ("strides", Attr::IntList(nhwc_list(&tf_strides))),
                ("padding", Attr::Str(b"VALID".to_vec())),
            ],
        )
    };
    let tf_rank = tf_spatial + 2;
    let unknown = Shape::unknown_dims(tf_rank);
    let mut y = if group == 1 {
        ctx.op1(
            op,
            &sub(&base, "full"),
            &[&sizes, &filter, &x],
            &attrs,
            unknown.clone(),
        )?
    } else {
        let axis = ctx.const_tensor(
            &sub(&base, "channel_axis"),
            Tensor::scalar(tf_rank as i32 - 1),
        )?;
        let split_attrs = [t(dtype), ("num_split", Attr::Int(group))];
        let xs = ctx.op(
            "Split",
            &sub(&base, "split_input"),
            &[&axis, &x],
            &split_attrs,
            Vec::new(),
        )?;
        let fs = ctx.op(
            "Split",
            &sub(&base, "split_filter"),
            &[&axis, &filter],
            &split_attrs,
            Vec::new(),
        )?;
        let mut parts = Vec::new();
        for (i, (xi, fi)) in xs.iter().zip(&fs).enumerate() {
            parts.push(ctx.op1(
                op,
                &sub(&base, &format!("full{i}")),
                &[&sizes, fi, xi],
                &attrs,
                unknown.clone(),
            )?);
        }
        let mut ins: Vec<&Output> = parts.iter().collect();
        ins.push(&axis);
        ctx.op1(
            "ConcatV2",
            &sub(&base, "full"),
            &ins,
            &[
                t(dtype),
                ("N", Attr::Int(group)),
                ("Tidx", Attr::Type(DType::Int32)),
            ],
            unknown.clone(),
        )?
    };

    // Cut the pads (or add zeros where the output reaches past the full
    // result: output_padding, a larger output_shape).
    let mut cuts: Vec<(i64, i64)> = vec![(0, 0)];
    if as_2d {
        cuts.push((0, 0));
    }
    cuts.extend(geometry.iter().map(|g| (g.begin, g.end)));
    cuts.push((0, 0));
    if cuts.iter().any(|&(b, e)| b < 0 || e < 0) {
        let p: Vec<i32> = cuts
            .iter()
            .flat_map(|&(b, e)| [(-b).max(0) as i32, (-e).max(0) as i32])
            .collect();
        let paddings = ctx.const_tensor(
            &sub(&base, "zero_paddings"),
            Tensor::new(&[tf_rank as i64, 2], &p).map_err(|e| ctx.build_error(e))?,
        )?;
        y = ctx.op1(
            "Pad",
            &sub(&base, "extend"),
            &[&y, &paddings],
            &[t(dtype), ("Tpaddings", Attr::Type(DType::Int32))],
            unknown.clone(),
        )?;
    }
    if cuts.iter().any(|&(b, e)| b > 0 || e > 0) {
        let begin: Vec<i64> = cuts.iter().map(|&(b, _)| b.max(0)).collect();
        let end: Vec<i64> = cuts.iter().map(|&(_, e)| -e.max(0)).collect();
        // An end of 0 means "to the end": the end mask says so.
        let end_mask = cuts
            .iter()
            .enumerate()
            .filter(|(_, (_, e))| *e <= 0)
            .fold(0i64, |m, (i, _)| m | (1 << i));
        let strides = vec![1i64; tf_rank];
        let b = ctx.const_i32(&sub(&base, "crop_begin"), &begin)?;
        let e = ctx.const_i32(&sub(&base, "crop_end"), &end)?;
        let s = ctx.const_i32(&sub(&base, "crop_strides"), &strides)?;
        y = ctx.op1(
            "StridedSlice",
            &sub(&base, "crop"),
            &[&y, &b, &e, &s],
            &[
                t(dtype),
                ("Index", Attr::Type(DType::Int32)),
                ("begin_mask", Attr::Int(0)),
                ("end_mask", Attr::Int(end_mask)),
                ("ellipsis_mask", Attr::Int(0)),
                ("new_axis_mask", Attr::Int(0)),
                ("shrink_axis_mask", Attr::Int(0)),
            ],
            unknown.clone(),
        )?;
    }

    let mut out_logical = vec![x_shape[0], m];
    out_logical.extend(geometry.iter().map(|g| g.out));
    let out_logical = Shape::new(&out_logical);
    let stored = permute_shape(&out_logical, &to_channels_last(rank));
    let stored_tf = if as_2d {
        Shape::new(&[out_logical.dim(0), 1, out_logical.dim(2), m])
    } else {
        stored.clone()
    };
    y = match input_name(node, 2) {
        Some(b) => {
            let bias = ctx.plain(b)?;
            ctx.op1(
                "BiasAdd",
                &sub(&base, "bias"),
                &[&y, &bias],
                &[t(dtype)],
                stored_tf,
            )?
        }
        None => ctx.op1(
            "Identity",
            &sub(&base, "result"),
            &[&y],
            &[t(dtype)],
            stored_tf,
        )?,
    };
    if as_2d {
        y = ctx.op1(
            "Squeeze",
            &base,
            &[&y],
            &[t(dtype), ("squeeze_dims", Attr::IntList(vec![1]))],
            stored,
        )?;
    }
    ctx.set_channels_last(output0(ctx, node)?, y, out_logical);
    Ok(())
}

/// `filter` (of static `f_dims`) with `d - 1` zeros between its taps
/// along `axis`; updates `f_dims`.
fn dilate(
    ctx: &mut Ctx,
    base: &str,
    filter: &Output,
    f_dims: &mut [i64],
    axis: usize,
    d: i64,
) -> Result<Output> {
    let dtype = filter.dtype();
    let k = f_dims[axis];
    let name = |what: &str| sub(base, &format!("dilate{axis}_{what}"));
    let a = ctx.const_i32(&name("axis"), &[axis as i64 + 1])?;
    let expanded = ctx.op1(
        "ExpandDims",
        &name("expand"),
        &[filter, &a],
        &[t(dtype), ("Tdim", Attr::Type(DType::Int32))],
        Shape::unknown_dims(f_dims.len() + 1),
    )?;
    let mut p = vec![0i32; 2 * (f_dims.len() + 1)];
    p[2 * (axis + 1) + 1] = (d - 1) as i32;
    let paddings = ctx.const_tensor(
        &name("paddings"),
        Tensor::new(&[f_dims.len() as i64 + 1, 2], &p).map_err(|e| ctx.build_error(e))?,
    )?;
    let padded = ctx.op1(
        "Pad",
        &name("pad"),
        &[&expanded, &paddings],
        &[t(dtype), ("Tpaddings", Attr::Type(DType::Int32))],
        Shape::unknown_dims(f_dims.len() + 1),
    )?;
    let mut spread = f_dims.to_vec();
    spread[axis] = k * d;
    let target = ctx.const_i32(&name("shape"), &spread)?;
    let flat = ctx.op1(
        "Reshape",
        &name("spread"),
        &[&padded, &target],
        &[t(dtype), ("Tshape", Attr::Type(DType::Int32))],
        Shape::new(&spread),
    )?;
    f_dims[axis] = (k - 1) * d + 1;
    let begin = ctx.const_i32(&name("begin"), &vec![0; f_dims.len()])?;
    let size = ctx.const_i32(&name("size"), f_dims)?;
    ctx.op1(
        "Slice",
        &name("taps"),
        &[&flat, &begin, &size],
        &[t(dtype), ("Index", Attr::Type(DType::Int32))],
        Shape::new(f_dims),
    )
}
