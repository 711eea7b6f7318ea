//! Linear quantization: `QuantizeLinear` and `DequantizeLinear`, per
//! tensor (a scalar scale) or per axis (a 1-D scale along `axis`).
//!
//! ONNX defines both in float arithmetic (`onnx/defs/quantization/defs.cc`):
//! `DequantizeLinear(x, scale, zero_point) = (x - zero_point) * scale` and
//! `QuantizeLinear(x, scale, zero_point) = saturate(round(x / scale) +
//! zero_point)`, rounding half to even and saturating to the output type's
//! range. Both are computed here in `float32` (TensorFlow's `Rint` rounds
//! half to even), then cast; the integer results are exact because the
//! value is already a whole number inside the type's range when cast.
//! The float8 types TensorFlow computes with (`E4M3FN`, `E5M2`) round in
//! the cast instead. Blocked quantization (`block_size`, opset 21) and the
//! 2-, 4-bit, FP4 and FNUZ types are refused by name.

use savedmodel_graph::{Attr, DType, Output, Shape};

use super::shape::float8_largest;
use super::{Converter, input_name, normalize_axis, output0, rank_of, required_input, sub};
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "QuantizeLinear" => quantize,
        "DequantizeLinear" => dequantize,
        _ => return None,
    };
    Some(f)
}

/// The integer types linear quantization produces and reads, with their
/// ranges.
fn integer_range(dtype: DType) -> Option<(f64, f64)> {
    Some(match dtype {
        DType::Int8 => (-128.0, 127.0),
        DType::UInt8 => (0.0, 255.0),
        DType::Int16 => (-32768.0, 32767.0),
        DType::UInt16 => (0.0, 65535.0),
        _ => return None,
    })
}

/// `x` cast to `to` (itself when it already is).
fn cast(ctx: &mut Ctx, name: &str, x: &Output, to: DType) -> Result<Output> {
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

/// A two-input op of `float32`s, broadcasting.
fn float_op(ctx: &mut Ctx, op: &str, name: &str, a: &Output, b: &Output) -> Result<Output> {
    ctx.op1(
        op,
        name,
        &[a, b],
        &[("T", Attr::Type(DType::Float))],
        Shape::unknown(),
    )
}

/// Input `i` (the scale or the zero point) as `float32`, shaped to
/// broadcast against an input of rank `rank`: a scalar (or one element)
/// as it is, a 1-D tensor along `axis`.
fn along_axis(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    base: &str,
    i: usize,
    what: &str,
    rank: usize,
) -> Result<Output> {
    let name = required_input(ctx, node, i)?;
    let value = ctx.plain(name)?;
    let value = cast(
        ctx,
        &sub(base, &format!("{what}_f32")),
        &value,
        DType::Float,
    )?;
    let value_rank = rank_of(ctx, name)?;
    if value_rank == 0 {
        return Ok(value);
    }
    if ctx.slot(name)?.shape.dims() == Some(&[1][..]) {
        // One element: per tensor whatever `axis` says (the input may have
        // fewer dimensions than `axis` names).
        let scalar = ctx.const_i32(&sub(base, &format!("{what}_scalar_shape")), &[])?;
        return ctx.op1(
            "Reshape",
            &sub(base, &format!("{what}_scalar")),
            &[&value, &scalar],
            &[
                ("T", Attr::Type(DType::Float)),
                ("Tshape", Attr::Type(DType::Int32)),
            ],
            Shape::scalar(),
        );
    }
    if value_rank > 1 || node.attr_i_or("block_size", 0)? != 0 {
        return Err(ctx.error(format!(
            "blocked quantization (a {what} of rank {value_rank}, block_size {}) is not supported",
            node.attr_i_or("block_size", 0)?
        )));
    }
    let axis = normalize_axis(ctx, node.attr_i_or("axis", 1)?, rank.max(1))?;
    let mut target = vec![1i64; rank.max(1)];
    target[axis] = -1;
    let target = ctx.const_i32(&sub(base, &format!("{what}_shape")), &target)?;
    ctx.op1(
        "Reshape",
        &sub(base, &format!("{what}_along_axis")),
        &[&value, &target],
        &[
            ("T", Attr::Type(DType::Float)),
            ("Tshape", Attr::Type(DType::Int32)),
        ],
        Shape::unknown_dims(rank.max(1)),
    )
}

/// The TensorFlow type of ONNX data type number `code` (an `output_dtype`
/// attribute).
fn dtype_attr(ctx: &Ctx, code: i64) -> Result<DType> {
    let code = i32::try_from(code).map_err(|_| ctx.error(format!("output_dtype {code}")))?;
    crate::dtype::dtype_from_onnx(code).map_err(|e| ctx.error(format!("output_dtype: {e}")))
}

fn dequantize(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let base = ctx.node_name(node);
    let rank = rank_of(ctx, x_name)?;
    let shape = ctx.slot(x_name)?.shape.clone();
    let x = ctx.plain(x_name)?;
    let readable = integer_range(x.dtype()).is_some()
        || x.dtype() == DType::Int32
        || float8_largest(x.dtype()).is_some();
    if !readable {
        return Err(ctx.error(format!(
            "dequantizing {:?} values is not supported (int8, uint8, int16, uint16, int32, \
             float8 e4m3fn and e5m2 are)",
            x.dtype()
        )));
    }
    let scale_dtype = ctx.slot(required_input(ctx, node, 1)?)?.dtype;
    let to = match node.attr_i("output_dtype")? {
        Some(code) if code != 0 => dtype_attr(ctx, code)?,
        _ => scale_dtype,
    };
    let scale = along_axis(ctx, node, &base, 1, "scale", rank)?;
    let mut value = cast(ctx, &sub(&base, "x_f32"), &x, DType::Float)?;
    if input_name(node, 2).is_some() {
        let zero = along_axis(ctx, node, &base, 2, "zero_point", rank)?;
        value = float_op(ctx, "Sub", &sub(&base, "centered"), &value, &zero)?;
    }
    let y = float_op(ctx, "Mul", &sub(&base, "scaled"), &value, &scale)?;
    let y = cast(ctx, &sub(&base, "y"), &y, to)?;
    ctx.set_plain(out, y, shape);
    Ok(())
}

fn quantize(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let base = ctx.node_name(node);
    let rank = rank_of(ctx, x_name)?;
    let shape = ctx.slot(x_name)?.shape.clone();
    let to = match input_name(node, 2) {
        Some(zero) => ctx.slot(zero)?.dtype,
        None => match node.attr_i("output_dtype")? {
            Some(code) if code != 0 => dtype_attr(ctx, code)?,
            _ => DType::UInt8,
        },
    };
    // Integers round half to even and saturate to their range; the float8
    // types round in the cast and saturate to their largest finite value
    // unless `saturate` is 0.
    let range = match (integer_range(to), float8_largest(to)) {
        (Some(range), _) => Some(range),
        (None, Some(largest)) if node.attr_i_or("saturate", 1)? != 0 => Some((-largest, largest)),
        (None, Some(_)) => None,
        (None, None) => {
            return Err(ctx.error(format!(
                "quantizing to {to:?} is not supported (int8, uint8, int16, uint16, float8 \
                 e4m3fn and e5m2 are)"
            )));
        }
    };
    let x = ctx.plain(x_name)?;
    let x = cast(ctx, &sub(&base, "x_f32"), &x, DType::Float)?;
    let scale = along_axis(ctx, node, &base, 1, "scale", rank)?;
    let mut value = float_op(ctx, "RealDiv", &sub(&base, "scaled"), &x, &scale)?;
    if integer_range(to).is_some() {
        value = ctx.op1(
            "Rint",
            &sub(&base, "rounded"),
            &[&value],
            &[("T", Attr::Type(DType::Float))],
            Shape::unknown(),
        )?;
    }
    if input_name(node, 2).is_some() {
        let zero = along_axis(ctx, node, &base, 2, "zero_point", rank)?;
        value = float_op(ctx, "AddV2", &sub(&base, "shifted"), &value, &zero)?;
    }
    if let Some((lowest, highest)) = range {
        let lo = ctx.const_scalar(&sub(&base, "lowest"), DType::Float, lowest)?;
        let hi = ctx.const_scalar(&sub(&base, "highest"), DType::Float, highest)?;
        value = float_op(ctx, "Maximum", &sub(&base, "above_lowest"), &value, &lo)?;
        value = float_op(ctx, "Minimum", &sub(&base, "saturated"), &value, &hi)?;
    }
    let y = cast(ctx, &sub(&base, "y"), &value, to)?;
    ctx.set_plain(out, y, shape);
    Ok(())
}
