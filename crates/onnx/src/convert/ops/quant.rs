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
//! `QLinearMatMul` multiplies the centered integers in int32 and
//! requantizes the product in float64 with `a_scale * b_scale / y_scale`
//! (computed in the scales' type), as ONNX's reference does.
//! `QLinearConv` convolves the centered integers in int32 as `ConvInteger`
//! does (through `Conv`'s code), adds the int32 bias, and requantizes the
//! same way with `x_scale * w_scale / y_scale` (`w_scale` per output
//! channel when a vector), as ONNX's reference does.
//! `DynamicQuantizeLinear` computes its scale and zero point from the
//! input's range (which always includes 0) for `uint8`, as its ONNX
//! function body does.
//! The float8 types TensorFlow computes with (`E4M3FN`, `E5M2`) round in
//! the cast instead. Blocked quantization (`block_size`, opset 21: a scale
//! and zero point of the input's rank, one value per `block_size` elements
//! along `axis`) gathers each block's value for every element along
//! `axis`. The 2-, 4-bit, FP4 and FNUZ types are refused by name.

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::shape::float8_largest;
use super::{
    Converter, input_name, normalize_axis, output_name, output0, rank_of, required_input, sub,
};
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "QuantizeLinear" => quantize,
        "DequantizeLinear" => dequantize,
        "DynamicQuantizeLinear" => dynamic_quantize,
        "QLinearMatMul" => qlinear_matmul,
        "QLinearConv" => qlinear_conv,
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
    if ctx.slot(name)?.shape.dims() == Some(&[1][..]) {
        // One element: per tensor whatever `axis` says (the input may have
        // fewer dimensions than `axis` names).
        let scalar = one_element(ctx, node, base, i, what)?;
        return cast(
            ctx,
            &sub(base, &format!("{what}_f32")),
            &scalar,
            DType::Float,
        );
    }
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
    let axis = normalize_axis(ctx, node.attr_i_or("axis", 1)?, rank.max(1))?;
    let block_size = node.attr_i_or("block_size", 0)?;
    if block_size != 0 || value_rank > 1 {
        return blocked(
            ctx,
            node,
            base,
            (&value, name, what),
            rank,
            axis,
            block_size,
        );
    }
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

/// A blocked scale or zero point (`value`, ONNX value `name`: float32, of
/// `x`'s rank, `ceil(d / block_size)` along `axis` where `x` has `d`, the
/// other dimensions `x`'s) repeated `block_size` times along `axis` and cut
/// to `x`'s size: a `GatherV2` at `i / block_size` for every index `i` of
/// `x` along `axis`.
fn blocked(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    base: &str,
    (value, name, what): (&Output, &str, &str),
    rank: usize,
    axis: usize,
    block_size: i64,
) -> Result<Output> {
    let value_rank = rank_of(ctx, name)?;
    if block_size <= 0 || value_rank != rank {
        return Err(ctx.error(format!(
            "a {what} of rank {value_rank} with block_size {block_size}: blocked quantization \
             needs a positive block_size and a {what} of the input's rank {rank}"
        )));
    }
    let x_name = required_input(ctx, node, 0)?;
    let x_dims = ctx.slot(x_name)?.shape.dims().map(<[i64]>::to_vec);
    let v_dims = ctx.slot(name)?.shape.dims().map(<[i64]>::to_vec);
    if let (Some(x_dims), Some(v_dims)) = (x_dims, v_dims) {
        for (i, (&d, &v)) in x_dims.iter().zip(&v_dims).enumerate() {
            let want = if i == axis {
                (d >= 0).then(|| (d + block_size - 1) / block_size)
            } else {
                (d >= 0).then_some(d)
            };
            if let Some(want) = want
                && v >= 0
                && v != want
            {
                return Err(ctx.error(format!(
                    "the {what} has shape {v_dims:?}, the input {x_dims:?}: with block_size \
                     {block_size} along axis {axis} it must be {want} along axis {i}"
                )));
            }
        }
    }
    let x = ctx.plain(x_name)?;
    let shape = ctx.op1(
        "Shape",
        &sub(base, &format!("{what}_x_shape")),
        &[&x],
        &[
            ("T", Attr::Type(x.dtype())),
            ("out_type", Attr::Type(DType::Int64)),
        ],
        Shape::new(&[rank as i64]),
    )?;
    let axis_i = ctx.const_tensor(
        &sub(base, &format!("{what}_axis")),
        Tensor::scalar(axis as i32),
    )?;
    let zero = ctx.const_tensor(&sub(base, &format!("{what}_axis0")), Tensor::scalar(0i32))?;
    let size = ctx.op1(
        "GatherV2",
        &sub(base, &format!("{what}_size")),
        &[&shape, &axis_i, &zero],
        &[
            ("Tparams", Attr::Type(DType::Int64)),
            ("Tindices", Attr::Type(DType::Int32)),
            ("Taxis", Attr::Type(DType::Int32)),
            ("batch_dims", Attr::Int(0)),
        ],
        Shape::scalar(),
    )?;
    let start = ctx.const_tensor(&sub(base, &format!("{what}_start")), Tensor::scalar(0i64))?;
    let one = ctx.const_tensor(&sub(base, &format!("{what}_one")), Tensor::scalar(1i64))?;
    let positions = ctx.op1(
        "Range",
        &sub(base, &format!("{what}_positions")),
        &[&start, &size, &one],
        &[("Tidx", Attr::Type(DType::Int64))],
        Shape::unknown_dims(1),
    )?;
    let block = ctx.const_tensor(
        &sub(base, &format!("{what}_block_size")),
        Tensor::scalar(block_size),
    )?;
    let blocks = ctx.op1(
        "FloorDiv",
        &sub(base, &format!("{what}_blocks")),
        &[&positions, &block],
        &[("T", Attr::Type(DType::Int64))],
        Shape::unknown_dims(1),
    )?;
    ctx.op1(
        "GatherV2",
        &sub(base, &format!("{what}_blocked")),
        &[value, &blocks, &axis_i],
        &[
            ("Tparams", Attr::Type(value.dtype())),
            ("Tindices", Attr::Type(DType::Int64)),
            ("Taxis", Attr::Type(DType::Int32)),
            ("batch_dims", Attr::Int(0)),
        ],
        Shape::unknown_dims(rank),
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

/// `x` (float32) reduced to a scalar by `op` over every element.
fn reduce_all(ctx: &mut Ctx, base: &str, op: &str, x: &Output) -> Result<Output> {
    let flat_shape = ctx.const_i32(&sub(base, "flat_shape"), &[-1])?;
    let flat = ctx.op1(
        "Reshape",
        &sub(base, "flat"),
        &[x, &flat_shape],
        &[
            ("T", Attr::Type(DType::Float)),
            ("Tshape", Attr::Type(DType::Int32)),
        ],
        Shape::unknown_dims(1),
    )?;
    let axis = ctx.const_i32(&sub(base, "axis"), &[0])?;
    ctx.op1(
        op,
        base,
        &[&flat, &axis],
        &[
            ("T", Attr::Type(DType::Float)),
            ("Tidx", Attr::Type(DType::Int32)),
            ("keep_dims", Attr::Bool(false)),
        ],
        Shape::scalar(),
    )
}

/// `round_half_even(v)` saturated to `[0, 255]`, as `uint8`.
fn to_uint8(ctx: &mut Ctx, base: &str, what: &str, v: &Output) -> Result<Output> {
    let rounded = ctx.op1(
        "Rint",
        &sub(base, &format!("{what}_rounded")),
        &[v],
        &[("T", Attr::Type(DType::Float))],
        v.shape().clone(),
    )?;
    let lo = ctx.const_scalar(&sub(base, &format!("{what}_lowest")), DType::Float, 0.0)?;
    let hi = ctx.const_scalar(&sub(base, &format!("{what}_highest")), DType::Float, 255.0)?;
    let v = float_op(
        ctx,
        "Maximum",
        &sub(base, &format!("{what}_above")),
        &rounded,
        &lo,
    )?;
    let v = float_op(
        ctx,
        "Minimum",
        &sub(base, &format!("{what}_saturated")),
        &v,
        &hi,
    )?;
    cast(ctx, &sub(base, what), &v, DType::UInt8)
}

fn dynamic_quantize(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let base = ctx.node_name(node);
    let shape = ctx.slot(x_name)?.shape.clone();
    let x = ctx.plain(x_name)?;
    let x = cast(ctx, &sub(&base, "x_f32"), &x, DType::Float)?;
    let zero = ctx.const_scalar(&sub(&base, "zero"), DType::Float, 0.0)?;
    let max = reduce_all(ctx, &sub(&base, "max"), "Max", &x)?;
    let max = float_op(ctx, "Maximum", &sub(&base, "max_with_zero"), &max, &zero)?;
    let min = reduce_all(ctx, &sub(&base, "min"), "Min", &x)?;
    let min = float_op(ctx, "Minimum", &sub(&base, "min_with_zero"), &min, &zero)?;
    let range = float_op(ctx, "Sub", &sub(&base, "range"), &max, &min)?;
    let levels = ctx.const_scalar(&sub(&base, "levels"), DType::Float, 255.0)?;
    let scale = float_op(ctx, "RealDiv", &sub(&base, "scale"), &range, &levels)?;
    // zero_point = saturate(round(0 - min / scale)).
    let min_scaled = float_op(ctx, "RealDiv", &sub(&base, "min_scaled"), &min, &scale)?;
    let intercept = float_op(ctx, "Sub", &sub(&base, "intercept"), &zero, &min_scaled)?;
    let zero_point = to_uint8(ctx, &base, "zero_point", &intercept)?;
    // y = saturate(round(x / scale) + zero_point).
    let scaled = float_op(ctx, "RealDiv", &sub(&base, "scaled"), &x, &scale)?;
    let rounded = ctx.op1(
        "Rint",
        &sub(&base, "rounded"),
        &[&scaled],
        &[("T", Attr::Type(DType::Float))],
        Shape::unknown(),
    )?;
    let zero_point_f32 = cast(
        ctx,
        &sub(&base, "zero_point_f32"),
        &zero_point,
        DType::Float,
    )?;
    let shifted = float_op(
        ctx,
        "AddV2",
        &sub(&base, "shifted"),
        &rounded,
        &zero_point_f32,
    )?;
    let y = to_uint8(ctx, &base, "y", &shifted)?;
    ctx.set_plain(output0(ctx, node)?, y, shape);
    if let Some(name) = output_name(node, 1) {
        ctx.set_plain(name, scale, Shape::scalar());
    }
    if let Some(name) = output_name(node, 2) {
        ctx.set_plain(name, zero_point, Shape::scalar());
    }
    Ok(())
}

/// Input `i`, a scale or zero point that must hold one element, as a
/// scalar of its own type.
fn one_element(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    base: &str,
    i: usize,
    what: &str,
) -> Result<Output> {
    let name = required_input(ctx, node, i)?;
    let value = ctx.plain(name)?;
    match ctx.slot(name)?.shape.dims() {
        Some([]) => Ok(value),
        Some([1]) => {
            let scalar = ctx.const_i32(&sub(base, &format!("{what}_scalar_shape")), &[])?;
            ctx.op1(
                "Reshape",
                &sub(base, &format!("{what}_scalar")),
                &[&value, &scalar],
                &[
                    ("T", Attr::Type(value.dtype())),
                    ("Tshape", Attr::Type(DType::Int32)),
                ],
                Shape::scalar(),
            )
        }
        dims => Err(ctx.error(format!(
            "{what} of shape {dims:?}: only a per-tensor {what} (one element) is supported"
        ))),
    }
}

fn qlinear_matmul(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let a = required_input(ctx, node, 0)?;
    let b = required_input(ctx, node, 3)?;
    let (ra, rb) = (rank_of(ctx, a)?, rank_of(ctx, b)?);
    if ra < 2 || rb < 2 {
        return Err(ctx.error("QLinearMatMul of a vector operand is not supported"));
    }
    let base = ctx.node_name(node);
    let out_type = match input_name(node, 7) {
        Some(zero) => ctx.slot(zero)?.dtype,
        None => ctx.slot(a)?.dtype,
    };
    let Some((lowest, highest)) = integer_range(out_type) else {
        return Err(ctx.error(format!("QLinearMatMul to {out_type:?} is not supported")));
    };
    let x = super::more::centered_i32(ctx, &sub(&base, "a"), a, input_name(node, 2), ra - 2, ra)?;
    let y = super::more::centered_i32(ctx, &sub(&base, "b"), b, input_name(node, 5), rb - 1, rb)?;
    let op = if ra == 2 && rb == 2 {
        "MatMul"
    } else {
        "BatchMatMulV2"
    };
    let product = ctx.op1(
        op,
        &sub(&base, "product"),
        &[&x, &y],
        &[("T", Attr::Type(DType::Int32))],
        Shape::unknown_dims(ra.max(rb)),
    )?;
    let a_scale = one_element(ctx, node, &base, 1, "a_scale")?;
    let b_scale = one_element(ctx, node, &base, 4, "b_scale")?;
    let y_scale = one_element(ctx, node, &base, 6, "y_scale")?;
    let scale_type = a_scale.dtype();
    let scale_op = |ctx: &mut Ctx, op: &str, name: &str, p: &Output, q: &Output| {
        ctx.op1(
            op,
            name,
            &[p, q],
            &[("T", Attr::Type(scale_type))],
            Shape::scalar(),
        )
    };
    let ab = scale_op(ctx, "Mul", &sub(&base, "ab_scale"), &a_scale, &b_scale)?;
    let multiplier = scale_op(ctx, "RealDiv", &sub(&base, "multiplier"), &ab, &y_scale)?;
    let multiplier = cast(
        ctx,
        &sub(&base, "multiplier_f64"),
        &multiplier,
        DType::Double,
    )?;
    let product = cast(ctx, &sub(&base, "product_f64"), &product, DType::Double)?;
    let double_op = |ctx: &mut Ctx, op: &str, name: &str, p: &Output, q: &Output| {
        ctx.op1(
            op,
            name,
            &[p, q],
            &[("T", Attr::Type(DType::Double))],
            Shape::unknown(),
        )
    };
    let mut value = double_op(
        ctx,
        "Mul",
        &sub(&base, "requantized"),
        &product,
        &multiplier,
    )?;
    if input_name(node, 7).is_some() {
        let zero = one_element(ctx, node, &base, 7, "y_zero_point")?;
        let zero = cast(ctx, &sub(&base, "y_zero_point_f64"), &zero, DType::Double)?;
        value = double_op(ctx, "AddV2", &sub(&base, "shifted"), &value, &zero)?;
    }
    let value = ctx.op1(
        "Rint",
        &sub(&base, "rounded"),
        &[&value],
        &[("T", Attr::Type(DType::Double))],
        Shape::unknown(),
    )?;
    let lo = ctx.const_scalar(&sub(&base, "lowest"), DType::Double, lowest)?;
    let hi = ctx.const_scalar(&sub(&base, "highest"), DType::Double, highest)?;
    let value = double_op(ctx, "Maximum", &sub(&base, "above_lowest"), &value, &lo)?;
    let value = double_op(ctx, "Minimum", &sub(&base, "saturated"), &value, &hi)?;
    let out = cast(ctx, &sub(&base, "y"), &value, out_type)?;
    let (sa, sb) = (
        ctx.slot(a)?.shape.dims().map(<[i64]>::to_vec),
        ctx.slot(b)?.shape.dims().map(<[i64]>::to_vec),
    );
    let shape = match (sa, sb) {
        (Some(da), Some(db)) => {
            let mut d = crate::convert::constant::broadcast_dims(&da[..ra - 2], &db[..rb - 2])
                .unwrap_or_else(|_| vec![-1; ra.max(rb) - 2]);
            d.push(da[ra - 2]);
            d.push(db[rb - 1]);
            Shape::new(&d)
        }
        _ => Shape::unknown_dims(ra.max(rb)),
    };
    ctx.set_plain(output0(ctx, node)?, out, shape);
    Ok(())
}

/// `QLinearConv`: `ConvInteger`'s int32 convolution of the centered
/// operands plus the int32 bias `B`, requantized like `QLinearMatMul`.
fn qlinear_conv(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let w = required_input(ctx, node, 3)?;
    let out = output0(ctx, node)?;
    let rank = rank_of(ctx, x)?;
    let base = ctx.node_name(node);
    let out_type = match input_name(node, 7) {
        Some(zero) => ctx.slot(zero)?.dtype,
        None => ctx.slot(x)?.dtype,
    };
    let Some((lowest, highest)) = integer_range(out_type) else {
        return Err(ctx.error(format!("QLinearConv to {out_type:?} is not supported")));
    };
    let xc = super::more::centered_i32(ctx, &sub(&base, "x"), x, input_name(node, 2), 1, rank)?;
    let wc = super::more::centered_i32(ctx, &sub(&base, "w"), w, input_name(node, 5), 0, rank)?;
    // The centered operands as values of their own (names no ONNX value
    // has: they start with a control character), for the convolution.
    let x_name = format!("\u{1}{out}/x_centered");
    let w_name = format!("\u{1}{out}/w_centered");
    let x_shape = ctx.slot(x)?.shape.clone();
    let w_shape = ctx.slot(w)?.shape.clone();
    ctx.set_plain(&x_name, xc, x_shape);
    ctx.set_plain(&w_name, wc, w_shape);
    if let Some(bias) = input_name(node, 8)
        && ctx.slot(bias)?.dtype != DType::Int32
    {
        return Err(ctx.error(format!(
            "the bias is {:?}, QLinearConv takes int32",
            ctx.slot(bias)?.dtype
        )));
    }
    super::nn::conv_of(ctx, node, &x_name, &w_name, input_name(node, 8))?;
    // The int32 sums, channels last: a per-channel scale is along the last
    // axis.
    let shape = ctx.slot(out)?.shape.clone();
    let acc = ctx.channels_last(out)?;
    let x_scale = one_element(ctx, node, &base, 1, "x_scale")?;
    let y_scale = one_element(ctx, node, &base, 6, "y_scale")?;
    let w_scale_name = required_input(ctx, node, 4)?;
    let w_scale = match ctx.slot(w_scale_name)?.shape.rank() {
        Some(1) if ctx.slot(w_scale_name)?.shape.dims() != Some(&[1][..]) => {
            ctx.plain(w_scale_name)?
        }
        _ => one_element(ctx, node, &base, 4, "w_scale")?,
    };
    let scale_type = x_scale.dtype();
    if w_scale.dtype() != scale_type || y_scale.dtype() != scale_type {
        return Err(ctx.error("x_scale, w_scale and y_scale must have one type"));
    }
    let scale_op = |ctx: &mut Ctx, op: &str, name: &str, p: &Output, q: &Output| {
        ctx.op1(
            op,
            name,
            &[p, q],
            &[("T", Attr::Type(scale_type))],
            Shape::unknown(),
        )
    };
    let xw = scale_op(ctx, "Mul", &sub(&base, "xw_scale"), &x_scale, &w_scale)?;
    let multiplier = scale_op(ctx, "RealDiv", &sub(&base, "multiplier"), &xw, &y_scale)?;
    let multiplier = cast(
        ctx,
        &sub(&base, "multiplier_f64"),
        &multiplier,
        DType::Double,
    )?;
    let acc = cast(ctx, &sub(&base, "acc_f64"), &acc, DType::Double)?;
    let double_op = |ctx: &mut Ctx, op: &str, name: &str, p: &Output, q: &Output| {
        ctx.op1(
            op,
            name,
            &[p, q],
            &[("T", Attr::Type(DType::Double))],
            Shape::unknown(),
        )
    };
    let mut value = double_op(ctx, "Mul", &sub(&base, "requantized"), &acc, &multiplier)?;
    if input_name(node, 7).is_some() {
        let zero = one_element(ctx, node, &base, 7, "y_zero_point")?;
        let zero = cast(ctx, &sub(&base, "y_zero_point_f64"), &zero, DType::Double)?;
        value = double_op(ctx, "AddV2", &sub(&base, "shifted"), &value, &zero)?;
    }
    let value = ctx.op1(
        "Rint",
        &sub(&base, "rounded"),
        &[&value],
        &[("T", Attr::Type(DType::Double))],
        Shape::unknown(),
    )?;
    let lo = ctx.const_scalar(&sub(&base, "lowest"), DType::Double, lowest)?;
    let hi = ctx.const_scalar(&sub(&base, "highest"), DType::Double, highest)?;
    let value = double_op(ctx, "Maximum", &sub(&base, "above_lowest"), &value, &lo)?;
    let value = double_op(ctx, "Minimum", &sub(&base, "saturated"), &value, &hi)?;
    let y = cast(ctx, &sub(&base, "y"), &value, out_type)?;
    ctx.set_channels_last(out, y, shape);
    Ok(())
}
