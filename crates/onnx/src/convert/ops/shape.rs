//! Shape and data-movement operators: constants, casts, reshapes,
//! transposes, concatenation, gathering.
//!
//! These are where exporters' shape arithmetic lives (`Shape -> Gather ->
//! Unsqueeze -> Concat -> Reshape`), so each folds when its inputs are
//! known: `Shape` of a value whose shape is static is a constant, and so is
//! everything computed from constants only. They work in ONNX layout (their
//! axes are ONNX's).

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::{Converter, input_name, normalize_axis, output0, rank_of, required_input, sub};
use crate::convert::constant;
use crate::convert::context::Ctx;
use crate::convert::weights;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "Constant" => constant_op,
        "Identity" | "Dropout" => identity,
        "Cast" => cast,
        "BitCast" => bit_cast,
        "Shape" => shape_op,
        "Size" => size_op,
        "Reshape" => reshape,
        "Flatten" => flatten,
        "Transpose" => transpose,
        "Squeeze" => super::squeeze::squeeze,
        "Unsqueeze" => super::squeeze::unsqueeze,
        "Concat" => concat,
        "Gather" => gather,
        "ConstantOfShape" => constant_of_shape,
        _ => return None,
    };
    Some(f)
}

fn t(dtype: DType) -> (&'static str, Attr) {
    ("T", Attr::Type(dtype))
}

fn constant_op(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let out = output0(ctx, node)?;
    let value = if let Some(v) = node.attr_tensor("value")? {
        weights::to_tensor(&v).map_err(|e| ctx.error(e))?
    } else if let Some(v) = node.attr_f("value_float")? {
        Tensor::scalar(v)
    } else if let Some(v) = node.attr_floats("value_floats")? {
        Tensor::vector(v)
    } else if let Some(v) = node.attr_i("value_int")? {
        Tensor::scalar(v)
    } else if let Some(v) = node.attr_ints("value_ints")? {
        Tensor::vector(v)
    } else if let Some(v) = node.attr_s("value_string")? {
        Tensor::string(v)
    } else if let Some(v) = node.attr_strings("value_strings")? {
        Tensor::string_vector(&v)
    } else {
        return Err(ctx.error("no supported value attribute (sparse_value is not supported)"));
    };
    ctx.set_constant(out, value);
    Ok(())
}

fn identity(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    // Dropout at inference is the identity; its mask output is all true.
    if node.op_type() == "Dropout" && node.opset_version()? >= 12 {
        if let Some(training) = input_name(node, 2) {
            let off = ctx
                .constant(training)
                .and_then(|t| constant::to_i64(t).ok())
                .is_some_and(|v| v == [0]);
            if !off {
                return training_dropout(ctx, node, training);
            }
        }
    }
    let x = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let slot = ctx.slot(x)?.clone();
    if node.op_type() == "Dropout" {
        if let Some(mask) = super::output_name(node, 1) {
            // At inference nothing is dropped: the mask is all true.
            let base = ctx.node_name(node);
            let v = ctx.plain(x)?;
            let dims = ctx.op1(
                "Shape",
                &sub(&base, "mask_shape"),
                &[&v],
                &[t(v.dtype()), ("out_type", Attr::Type(DType::Int32))],
                Shape::unknown_dims(1),
            )?;
            let yes = ctx.const_tensor(&sub(&base, "true"), Tensor::scalar(true))?;
            let m = ctx.op1(
                "Fill",
                &sub(&base, "mask"),
                &[&dims, &yes],
                &[t(DType::Bool), ("index_type", Attr::Type(DType::Int32))],
                slot.shape.clone(),
            )?;
            ctx.set_plain(mask, m, slot.shape.clone());
        }
    }
    // An alias: the output is the same value in the same layouts.
    if let Some(v) = slot.constant {
        ctx.set_constant(out, v);
    } else if slot.plain.is_some() || slot.weight.is_some() {
        let v = ctx.plain(x)?;
        ctx.set_plain(out, v, slot.shape);
    } else {
        let v = ctx.channels_last(x)?;
        ctx.set_channels_last(out, v, slot.shape);
    }
    Ok(())
}

fn cast(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let to = node.required("to", node.attr_i("to")?)?;
    cast_to_onnx(ctx, node, x, to as i32)
}

/// ONNX's `BitCast` between types of the same width: TensorFlow's
/// `Bitcast`, or for `bool` (whose bytes are 0 and 1, which `Bitcast`
/// does not take) a `Cast`, the same bytes.
fn bit_cast(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let to = node.required("to", node.attr_i("to")?)?;
    let to = crate::dtype_from_onnx(to as i32).map_err(|e| ctx.error(e))?;
    let from = ctx.slot(x)?.dtype;
    if from.element_size().is_none() || from.element_size() != to.element_size() {
        return Err(ctx.error(format!(
            "BitCast from {from} to {to}: only types of the same width are supported"
        )));
    }
    let shape = ctx.slot(x)?.shape.clone();
    let input = ctx.plain(x)?;
    let base = ctx.node_name(node);
    let y = if from == DType::Bool || to == DType::Bool || from == to {
        cast_tensor(ctx, &base, &input, to, false)?
    } else {
        ctx.op1(
            "Bitcast",
            &base,
            &[&input],
            &[t(from), ("type", Attr::Type(to))],
            shape.clone(),
        )?
    };
    ctx.set_plain(out, y, shape);
    Ok(())
}

/// Defines the node's output as ONNX value `x` cast to ONNX type `to`,
/// through [`super::carried`] when either type is one TensorFlow carries
/// in another.
pub(super) fn cast_to_onnx(ctx: &mut Ctx, node: &NodeView<'_>, x: &str, to: i32) -> Result<()> {
    if ctx.carried(x).is_some() || crate::Carried::from_onnx(to).is_some() {
        return super::carried::cast(ctx, node, x, to);
    }
    let to = crate::dtype_from_onnx(to).map_err(|e| ctx.error(e))?;
    cast_to(ctx, node, x, to)
}

/// The largest finite value of the float8 types TensorFlow computes with
/// (`E4M3FN`, `E5M2`), to which ONNX saturates; `None` for other types.
pub(super) fn float8_largest(dtype: DType) -> Option<f64> {
    match dtype {
        DType::Float8E4M3FN => Some(448.0),
        DType::Float8E5M2 => Some(57344.0),
        _ => None,
    }
}

/// Defines the node's output as ONNX value `x` cast to `to` (folded when
/// `x` is known and the conversion exact), in `x`'s layout.
pub(super) fn cast_to(ctx: &mut Ctx, node: &NodeView<'_>, x: &str, to: DType) -> Result<()> {
    let out = output0(ctx, node)?;
    let from = ctx.slot(x)?.dtype;
    if let Some(v) = ctx.constant(x).cloned() {
        let folded = if constant::is_int(from) && constant::is_int(to) {
            constant::to_i64(&v).and_then(|d| constant::from_i64(to, v.shape(), &d))
        } else if (constant::is_int(from) || from == DType::Bool)
            && matches!(
                to,
                DType::Float | DType::Double | DType::Int64 | DType::Bool
            )
        {
            constant::to_f64(&v).and_then(|d| constant::from_f64(to, v.shape(), &d))
        } else {
            Err("not folded".to_owned())
        };
        if let Ok(t) = folded {
            ctx.set_constant(out, t);
            return Ok(());
        }
    }
    let base = ctx.node_name(node);
    let layout_cl = ctx.is_channels_last(x);
    let input = if layout_cl {
        ctx.channels_last(x)?
    } else {
        ctx.plain(x)?
    };
    let shape = ctx.slot(x)?.shape.clone();
    let saturate = node.attr_i_or("saturate", 1)? != 0;
    let y = cast_tensor(ctx, &base, &input, to, saturate)?;
    if layout_cl {
        ctx.set_channels_last(out, y, shape);
    } else {
        ctx.set_plain(out, y, shape);
    }
    Ok(())
}

/// `input` cast to `to` by a node named `name` (an `Identity` when it
/// already is), saturating to the largest finite value of the float8
/// types when `saturate` as ONNX does by default (TensorFlow's `Cast` does
/// not, so the input is clamped first).
pub(super) fn cast_tensor(
    ctx: &mut Ctx,
    name: &str,
    input: &Output,
    to: DType,
    saturate: bool,
) -> Result<Output> {
    let from = input.dtype();
    let input = match float8_largest(to) {
        Some(m) if constant::is_float(from) && saturate => {
            let hi = ctx.const_scalar(&sub(name, "largest"), from, m)?;
            let lo = ctx.const_scalar(&sub(name, "lowest"), from, -m)?;
            let st = input.shape().clone();
            let y = ctx.op1(
                "Minimum",
                &sub(name, "saturate_high"),
                &[input, &hi],
                &[t(from)],
                st.clone(),
            )?;
            ctx.op1(
                "Maximum",
                &sub(name, "saturate_low"),
                &[&y, &lo],
                &[t(from)],
                st,
            )?
        }
        _ => input.clone(),
    };
    if from == to {
        ctx.op1(
            "Identity",
            name,
            &[&input],
            &[t(from)],
            input.shape().clone(),
        )
    } else {
        ctx.op1(
            "Cast",
            name,
            &[&input],
            &[("SrcT", Attr::Type(from)), ("DstT", Attr::Type(to))],
            input.shape().clone(),
        )
    }
}

fn shape_op(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let shape = ctx.slot(x)?.shape.clone();
    let rank = rank_of(ctx, x)? as i64;
    let clamp = |v: i64| -> i64 {
        let v = if v < 0 { v + rank } else { v };
        v.clamp(0, rank)
    };
    let start = clamp(node.attr_i_or("start", 0)?);
    let end = clamp(node.attr_i_or("end", rank)?).max(start);
    if let Some(d) = shape.dims() {
        let part = &d[start as usize..end as usize];
        if part.iter().all(|&v| v >= 0) {
            ctx.set_constant(out, Tensor::vector(part));
            return Ok(());
        }
        ctx.set_constant(&known_dims_name(out), Tensor::vector(part));
    }
    let base = ctx.node_name(node);
    let v = ctx.plain(x)?;
    let full = ctx.op1(
        "Shape",
        &sub(&base, "shape"),
        &[&v],
        &[t(v.dtype()), ("out_type", Attr::Type(DType::Int64))],
        Shape::new(&[rank]),
    )?;
    let y = if start == 0 && end == rank {
        full
    } else {
        let b = ctx.const_i32(&sub(&base, "begin"), &[start])?;
        let s = ctx.const_i32(&sub(&base, "size"), &[end - start])?;
        ctx.op1(
            "Slice",
            &base,
            &[&full, &b, &s],
            &[t(DType::Int64), ("Index", Attr::Type(DType::Int32))],
            Shape::new(&[end - start]),
        )?
    };
    ctx.set_plain(out, y, Shape::new(&[end - start]));
    Ok(())
}

/// The ONNX-invisible companion of a `Shape` output whose dimensions are
/// known only in part: an int64 vector of the known ones, -1 for the
/// others. A `Gather` of known dimensions from it folds
/// ([`gather_known_dims`]): exporters test one dimension
/// (`Equal(Gather(Shape(x), -1), 1)`) to choose an `If` branch that
/// squeezes it, and the branch taken must be known for the result's rank
/// to be.
fn known_dims_name(shape_output: &str) -> String {
    format!("{shape_output}#known_dims")
}

/// `Gather(x, indices)` along axis 0 when `x` is a `Shape` output whose
/// gathered dimensions are known: their values, as a constant of the
/// indices' shape. `None` when any of them is unknown.
fn gather_known_dims(ctx: &Ctx, x: &str, indices: &str) -> Result<Option<Tensor>> {
    let (Some(known), Some(i)) = (ctx.constant(&known_dims_name(x)), ctx.constant(indices)) else {
        return Ok(None);
    };
    let dims = constant::to_i64(known).map_err(|e| ctx.error(e))?;
    let ind = constant::to_i64(i).map_err(|e| ctx.error(e))?;
    let rank = dims.len() as i64;
    let mut picked = Vec::with_capacity(ind.len());
    for k in ind {
        let k = if k < 0 { k + rank } else { k };
        match usize::try_from(k).ok().and_then(|k| dims.get(k)) {
            Some(&d) if d >= 0 => picked.push(d),
            _ => return Ok(None),
        }
    }
    let value = Tensor::new(i.shape(), &picked).map_err(|e| ctx.build_error(e))?;
    Ok(Some(value))
}

fn size_op(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    if let Some(n) = ctx.slot(x)?.shape.num_elements() {
        ctx.set_constant(out, Tensor::scalar(n));
        return Ok(());
    }
    let base = ctx.node_name(node);
    let v = ctx.plain(x)?;
    let y = ctx.op1(
        "Size",
        &base,
        &[&v],
        &[t(v.dtype()), ("out_type", Attr::Type(DType::Int64))],
        Shape::scalar(),
    )?;
    ctx.set_plain(out, y, Shape::scalar());
    Ok(())
}

/// The result shape of an ONNX `Reshape` of `input` to `target` (0 copies
/// the input's dimension unless `allowzero`, -1 is inferred).
fn reshape_target(input: &Shape, target: &[i64], allowzero: bool) -> Vec<i64> {
    let mut out: Vec<i64> = target
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d == 0 && !allowzero {
                input.dims().and_then(|x| x.get(i).copied()).unwrap_or(-1)
            } else {
                d
            }
        })
        .collect();
    if let (Some(total), Some(pos)) = (input.num_elements(), out.iter().position(|&d| d == -1)) {
        let known: i64 = out.iter().filter(|&&d| d != -1).product();
        if known > 0 && out.iter().filter(|&&d| d == -1).count() == 1 {
            out[pos] = total / known;
        }
    }
    out
}

fn reshape(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let shape_name = required_input(ctx, node, 1)?;
    let allowzero = node.attr_i_or("allowzero", 0)? != 0;
    let out = output0(ctx, node)?;
    let input_shape = ctx.slot(x)?.shape.clone();
    let base = ctx.node_name(node);
    if let Some(target) = ctx.constant(shape_name).cloned() {
        let target = constant::to_i64(&target).map_err(|e| ctx.error(e))?;
        let dims = reshape_target(&input_shape, &target, allowzero);
        if let Some(v) = ctx.constant(x).cloned() {
            if dims.iter().all(|&d| d >= 0) {
                let r = constant::reshape(&v, &dims).map_err(|e| ctx.error(e))?;
                ctx.set_constant(out, r);
                return Ok(());
            }
        }
        // TensorFlow's Reshape has no "copy this dimension": the zeros are
        // resolved here when the input's dimension is known, else at run
        // time below.
        if dims.iter().filter(|&&d| d < 0).count() <= 1 {
            let xv = in_onnx_order(ctx, x)?;
            let target_t = ctx.const_i64(&sub(&base, "shape"), &dims)?;
            let y = ctx.op1(
                "Reshape",
                &base,
                &[&xv, &target_t],
                &[t(xv.dtype()), ("Tshape", Attr::Type(DType::Int64))],
                Shape::new(&dims),
            )?;
            ctx.set_plain(out, y, Shape::new(&dims));
            return Ok(());
        }
    }
    // A target known only at run time, or with zeros copying dimensions
    // unknown now: the zeros are resolved in the graph (allowzero keeps
    // them as zeros).
    let rank = rank_of(ctx, x)?;
    let target_len = ctx.slot(shape_name)?.shape.dim(0).max(-1);
    let xv = ctx.plain(x)?;
    let target = ctx.plain(shape_name)?;
    let target = if target.dtype() == DType::Int64 {
        target
    } else {
        ctx.op1(
            "Cast",
            &sub(&base, "target_i64"),
            &[&target],
            &[
                ("SrcT", Attr::Type(target.dtype())),
                ("DstT", Attr::Type(DType::Int64)),
            ],
            target.shape().clone(),
        )?
    };
    let target = if allowzero {
        target
    } else {
        if target_len < 0 {
            return Err(
                ctx.error("the target shape's length must be known when the model is converted")
            );
        }
        copy_zeros(ctx, &base, &xv, &target, rank, target_len as usize)?
    };
    let y = ctx.op1(
        "Reshape",
        &base,
        &[&xv, &target],
        &[t(xv.dtype()), ("Tshape", Attr::Type(DType::Int64))],
        Shape::unknown_dims(target_len.max(0) as usize),
    )?;
    let out_shape = if target_len >= 0 {
        Shape::unknown_dims(target_len as usize)
    } else {
        Shape::unknown()
    };
    ctx.set_plain(out, y, out_shape);
    Ok(())
}

/// `target` (int64, `len` values) with each 0 replaced, at run time, by
/// the dimension of `x` (of `rank`) at the same position (ONNX Reshape
/// without allowzero).
fn copy_zeros(
    ctx: &mut Ctx,
    base: &str,
    x: &savedmodel_graph::Output,
    target: &savedmodel_graph::Output,
    rank: usize,
    len: usize,
) -> Result<savedmodel_graph::Output> {
    let dims = ctx.op1(
        "Shape",
        &sub(base, "input_shape"),
        &[x],
        &[t(x.dtype()), ("out_type", Attr::Type(DType::Int64))],
        Shape::new(&[rank as i64]),
    )?;
    // The input's dimensions aligned with the target's positions: cut to
    // `len`, or padded with zeros (positions past the input's rank copy
    // nothing).
    let aligned = if len <= rank {
        let b = ctx.const_i32(&sub(base, "copy_begin"), &[0])?;
        let s = ctx.const_i32(&sub(base, "copy_size"), &[len as i64])?;
        ctx.op1(
            "Slice",
            &sub(base, "copied"),
            &[&dims, &b, &s],
            &[t(DType::Int64), ("Index", Attr::Type(DType::Int32))],
            Shape::new(&[len as i64]),
        )?
    } else {
        let zeros = ctx.const_i64(&sub(base, "copy_pad"), &vec![0; len - rank])?;
        let axis = ctx.const_tensor(&sub(base, "copy_axis"), Tensor::scalar(0i32))?;
        ctx.op1(
            "ConcatV2",
            &sub(base, "copied"),
            &[&dims, &zeros, &axis],
            &[
                t(DType::Int64),
                ("N", Attr::Int(2)),
                ("Tidx", Attr::Type(DType::Int32)),
            ],
            Shape::new(&[len as i64]),
        )?
    };
    let zero = ctx.const_tensor(&sub(base, "zero"), Tensor::scalar(0i64))?;
    let is_zero = ctx.op1(
        "Equal",
        &sub(base, "is_zero"),
        &[target, &zero],
        &[t(DType::Int64)],
        Shape::new(&[len as i64]),
    )?;
    ctx.op1(
        "SelectV2",
        &sub(base, "resolved_shape"),
        &[&is_zero, &aligned, target],
        &[t(DType::Int64)],
        Shape::new(&[len as i64]),
    )
}

/// ONNX value `name` as a tensor whose elements are in ONNX's order: its
/// ONNX-layout tensor, or its channels-last one when moving the channels
/// last does not change the order (one channel, or every spatial
/// dimension 1, as after a global pool), so that a reshape of it needs no
/// Transpose.
fn in_onnx_order(ctx: &mut Ctx, name: &str) -> Result<savedmodel_graph::Output> {
    if ctx.is_channels_last(name) {
        let same_order = ctx
            .slot(name)?
            .shape
            .dims()
            .is_some_and(|d| d.len() >= 3 && (d[1] == 1 || d[2..].iter().all(|&v| v == 1)));
        if same_order {
            return ctx.channels_last(name);
        }
    }
    ctx.plain(name)
}

fn flatten(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x)?;
    let axis = node.attr_i_or("axis", 1)?;
    let axis = if axis < 0 { axis + rank as i64 } else { axis };
    if !(0..=rank as i64).contains(&axis) {
        return Err(ctx.error(format!("axis {axis} is out of range for rank {rank}")));
    }
    let axis = axis as usize;
    let shape = ctx.slot(x)?.shape.clone();
    let out = output0(ctx, node)?;
    let dims = shape.dims().map(<[i64]>::to_vec);
    let product = |d: &[i64]| -> i64 {
        if d.iter().any(|&v| v < 0) {
            -1
        } else {
            d.iter().product()
        }
    };
    let target = match &dims {
        Some(d) => vec![product(&d[..axis]), product(&d[axis..])],
        None => vec![-1, -1],
    };
    if let Some(v) = ctx.constant(x).cloned() {
        if target.iter().all(|&d| d >= 0) {
            let r = constant::reshape(&v, &target).map_err(|e| ctx.error(e))?;
            ctx.set_constant(out, r);
            return Ok(());
        }
    }
    let base = ctx.node_name(node);
    let xv = in_onnx_order(ctx, x)?;
    let tf_target = if target.iter().filter(|&&d| d < 0).count() <= 1 {
        target.clone()
    } else if axis == 0 {
        vec![1, -1]
    } else if let Some(d) = &dims {
        // Only the batch may be unknown: [-1, product of the rest].
        if d[1..].iter().all(|&v| v >= 0) && axis >= 1 {
            vec![-1, d[axis..].iter().product()]
        } else {
            return Err(ctx.error("Flatten of a value with several unknown dimensions"));
        }
    } else {
        return Err(ctx.error("Flatten of a value of unknown shape"));
    };
    let target_t = ctx.const_i64(&sub(&base, "shape"), &tf_target)?;
    let logical = Shape::new(&target);
    let y = ctx.op1(
        "Reshape",
        &base,
        &[&xv, &target_t],
        &[t(xv.dtype()), ("Tshape", Attr::Type(DType::Int64))],
        logical.clone(),
    )?;
    ctx.set_plain(out, y, logical);
    Ok(())
}

fn transpose(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x)?;
    let perm: Vec<i64> = match node.attr_ints("perm")? {
        Some(p) => p.to_vec(),
        None => (0..rank as i64).rev().collect(),
    };
    // Each axis exactly once: what follows indexes shapes with `perm`.
    let mut seen = vec![false; rank];
    let is_permutation = perm.len() == rank
        && perm.iter().all(|&p| {
            usize::try_from(p)
                .ok()
                .and_then(|p| seen.get_mut(p))
                .is_some_and(|s| !std::mem::replace(s, true))
        });
    if !is_permutation {
        return Err(ctx.error(format!(
            "perm {perm:?} is not a permutation of the {rank} axes"
        )));
    }
    let out = output0(ctx, node)?;
    if let Some(v) = ctx.constant(x).cloned() {
        let r = constant::transpose(&v, &perm).map_err(|e| ctx.error(e))?;
        ctx.set_constant(out, r);
        return Ok(());
    }
    let shape = crate::convert::context::permute_shape(&ctx.slot(x)?.shape, &perm);
    // A transpose of a channels-last value to channels last is free: the
    // value already exists in that layout.
    if perm == crate::convert::context::to_channels_last(rank)
        && ctx.slot(x)?.channels_last.is_some()
    {
        let v = ctx.channels_last(x)?;
        ctx.set_plain(out, v, shape);
        return Ok(());
    }
    let base = ctx.node_name(node);
    let xv = ctx.plain(x)?;
    let y = ctx.transpose(&base, &xv, &perm)?;
    ctx.set_plain(out, y, shape);
    Ok(())
}

fn concat(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let names: Vec<&str> = (0..node.proto().input.len())
        .filter_map(|i| input_name(node, i))
        .collect();
    let first = *names
        .first()
        .ok_or_else(|| ctx.error("needs at least one input"))?;
    let rank = rank_of(ctx, first)?;
    // Version 1 (before opset 4) made `axis` optional, 1 by default.
    let axis = match node.attr_i("axis")? {
        None if node.opset_version()? < 4 => 1,
        axis => node.required("axis", axis)?,
    };
    let axis = normalize_axis(ctx, axis, rank)?;
    let out = output0(ctx, node)?;
    let consts: Option<Vec<Tensor>> = names.iter().map(|n| ctx.constant(n).cloned()).collect();
    if let Some(parts) = &consts {
        if parts.iter().all(|p| p.bytes().is_some()) {
            let refs: Vec<&Tensor> = parts.iter().collect();
            let r = constant::concat(&refs, axis).map_err(|e| ctx.error(e))?;
            ctx.set_constant(out, r);
            return Ok(());
        }
    }
    let mut dims: Option<Vec<i64>> = ctx.slot(first)?.shape.dims().map(<[i64]>::to_vec);
    for n in &names[1..] {
        let d = ctx.slot(n)?.shape.dims().map(<[i64]>::to_vec);
        dims = match (dims, d) {
            (Some(mut a), Some(b)) if a.len() == b.len() => {
                a[axis] = if a[axis] < 0 || b[axis] < 0 {
                    -1
                } else {
                    a[axis] + b[axis]
                };
                Some(a)
            }
            _ => None,
        };
    }
    let base = ctx.node_name(node);
    // Channels-last inputs (a U-Net's skip connections) are concatenated
    // as they are, along the axis the ONNX axis maps to, when every input
    // is channels last or a constant that can be laid out so.
    let channels_last = rank >= 3
        && names.iter().any(|n| ctx.is_channels_last(n))
        && names
            .iter()
            .all(|n| ctx.is_channels_last(n) || ctx.constant(n).is_some());
    let (values, tf_axis): (Vec<_>, usize) = if channels_last {
        let values = names
            .iter()
            .map(|n| ctx.channels_last(n))
            .collect::<Result<_>>()?;
        let tf_axis = match axis {
            0 => 0,
            1 => rank - 1,
            a => a - 1,
        };
        (values, tf_axis)
    } else {
        let values = names.iter().map(|n| ctx.plain(n)).collect::<Result<_>>()?;
        (values, axis)
    };
    let dtype = values[0].dtype();
    let axis_t = ctx.const_tensor(&sub(&base, "axis"), Tensor::scalar(tf_axis as i32))?;
    let mut inputs: Vec<&savedmodel_graph::Output> = values.iter().collect();
    inputs.push(&axis_t);
    let logical = dims.map_or_else(|| Shape::unknown_dims(rank), |d| Shape::new(&d));
    let stored = if channels_last {
        crate::convert::context::permute_shape(
            &logical,
            &crate::convert::context::to_channels_last(rank),
        )
    } else {
        logical.clone()
    };
    let y = if values.len() == 1 {
        ctx.op1("Identity", &base, &[&values[0]], &[t(dtype)], stored)?
    } else {
        ctx.op1(
            "ConcatV2",
            &base,
            &inputs,
            &[
                t(dtype),
                ("N", Attr::Int(values.len() as i64)),
                ("Tidx", Attr::Type(DType::Int32)),
            ],
            stored,
        )?
    };
    if channels_last {
        ctx.set_channels_last(out, y, logical);
    } else {
        ctx.set_plain(out, y, logical);
    }
    Ok(())
}

fn gather(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let idx = required_input(ctx, node, 1)?;
    let rank = rank_of(ctx, x)?;
    let axis = normalize_axis(ctx, node.attr_i_or("axis", 0)?, rank)?;
    let out = output0(ctx, node)?;
    let ind_shape = ctx.slot(idx)?.shape.clone();
    if let (Some(v), Some(i)) = (ctx.constant(x).cloned(), ctx.constant(idx).cloned()) {
        let ind = constant::to_i64(&i).map_err(|e| ctx.error(e))?;
        if let Ok(r) = constant::gather(&v, &ind, i.shape(), axis) {
            ctx.set_constant(out, r);
            return Ok(());
        }
    }
    if axis == 0
        && let Some(r) = gather_known_dims(ctx, x, idx)?
    {
        ctx.set_constant(out, r);
        return Ok(());
    }
    let x_shape = ctx.slot(x)?.shape.clone();
    let logical = match (x_shape.dims(), ind_shape.dims()) {
        (Some(xd), Some(id)) => {
            let mut d = xd[..axis].to_vec();
            d.extend_from_slice(id);
            d.extend_from_slice(&xd[axis + 1..]);
            Shape::new(&d)
        }
        _ => Shape::unknown(),
    };
    let base = ctx.node_name(node);
    let xv = ctx.plain(x)?;
    // ONNX allows negative indices; TensorFlow's GatherV2 does not: add the
    // dimension to negative ones.
    let iv = ctx.plain(idx)?;
    let itype = iv.dtype();
    let dim = x_shape.dims().map_or(-1, |d| d[axis]);
    let indices = if let Some(i) = ctx.constant(idx).cloned() {
        let ind = constant::to_i64(&i).map_err(|e| ctx.error(e))?;
        if ind.iter().any(|&v| v < 0) && dim >= 0 {
            let fixed: Vec<i64> = ind
                .iter()
                .map(|&v| if v < 0 { v + dim } else { v })
                .collect();
            let t = constant::from_i64(itype, i.shape(), &fixed).map_err(|e| ctx.error(e))?;
            ctx.const_tensor(&sub(&base, "indices"), t)?
        } else {
            iv
        }
    } else {
        let xs = ctx.op1(
            "Shape",
            &sub(&base, "shape"),
            &[&xv],
            &[t(xv.dtype()), ("out_type", Attr::Type(itype))],
            Shape::new(&[rank as i64]),
        )?;
        let a = ctx.const_tensor(&sub(&base, "axis_index"), Tensor::scalar(axis as i32))?;
        let zero_axis = ctx.const_tensor(&sub(&base, "zero_axis"), Tensor::scalar(0i32))?;
        let d = ctx.op1(
            "GatherV2",
            &sub(&base, "dim"),
            &[&xs, &a, &zero_axis],
            &[
                ("Tparams", Attr::Type(itype)),
                ("Tindices", Attr::Type(DType::Int32)),
                ("Taxis", Attr::Type(DType::Int32)),
            ],
            Shape::scalar(),
        )?;
        let zero = ctx.const_scalar(&sub(&base, "zero"), itype, 0.0)?;
        let neg = ctx.op1(
            "Less",
            &sub(&base, "negative"),
            &[&iv, &zero],
            &[t(itype)],
            iv.shape().clone(),
        )?;
        let wrapped = ctx.op1(
            "AddV2",
            &sub(&base, "wrapped"),
            &[&iv, &d],
            &[t(itype)],
            iv.shape().clone(),
        )?;
        ctx.op1(
            "SelectV2",
            &sub(&base, "indices"),
            &[&neg, &wrapped, &iv],
            &[t(itype)],
            iv.shape().clone(),
        )?
    };
    let axis_t = ctx.const_tensor(&sub(&base, "axis"), Tensor::scalar(axis as i32))?;
    let y = ctx.op1(
        "GatherV2",
        &base,
        &[&xv, &indices, &axis_t],
        &[
            ("Tparams", Attr::Type(xv.dtype())),
            ("Tindices", Attr::Type(itype)),
            ("Taxis", Attr::Type(DType::Int32)),
        ],
        logical.clone(),
    )?;
    ctx.set_plain(out, y, logical);
    Ok(())
}

fn constant_of_shape(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let shape_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let value = match node.attr_tensor("value")? {
        Some(v) => weights::to_tensor(&v).map_err(|e| ctx.error(e))?,
        None => Tensor::scalar(0.0f32),
    };
    let dtype = value.dtype();
    let elem = value
        .bytes()
        .ok_or_else(|| ctx.error("a string fill value is not supported"))?
        .to_vec();
    if let Some(dims) = ctx.constant(shape_name).cloned() {
        let dims = constant::to_i64(&dims).map_err(|e| ctx.error(e))?;
        let n: i64 = dims.iter().product();
        if (0..=1 << 16).contains(&n) {
            let data: Vec<u8> = elem.repeat(n as usize);
            let t = Tensor::from_bytes(dtype, &dims, data).map_err(|e| ctx.build_error(e))?;
            ctx.set_constant(out, t);
            return Ok(());
        }
    }
    let base = ctx.node_name(node);
    let dims = ctx.plain(shape_name)?;
    let fill = ctx.const_tensor(
        &sub(&base, "value"),
        constant::reshape(&value, &[]).map_err(|e| ctx.error(e))?,
    )?;
    let rank = ctx.slot(shape_name)?.shape.dim(0);
    let logical = match ctx.constant(shape_name) {
        Some(v) => Shape::new(&constant::to_i64(v).map_err(|e| ctx.error(e))?),
        None if rank >= 0 => Shape::unknown_dims(rank as usize),
        None => Shape::unknown(),
    };
    let y = ctx.op1(
        "Fill",
        &base,
        &[&dims, &fill],
        &[t(dtype), ("index_type", Attr::Type(dims.dtype()))],
        logical.clone(),
    )?;
    ctx.set_plain(out, y, logical);
    Ok(())
}

/// `Dropout` whose `training_mode` is on or known only at run time: where
/// it is on, each element is kept with probability `1 - ratio` (a
/// `RandomUniform` draw at least `ratio`) and scaled by `1 / (1 - ratio)`;
/// where it is off, the identity. Random, so equal to another runtime's
/// output only when nothing is dropped (a ratio of 0).
fn training_dropout(ctx: &mut Ctx, node: &NodeView<'_>, training: &str) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let shape = ctx.slot(x_name)?.shape.clone();
    let base = ctx.node_name(node);
    let x = ctx.plain(x_name)?;
    let dtype = x.dtype();
    if !constant::is_float(dtype) {
        return Err(ctx.error(format!(
            "Dropout of {dtype} in training mode is not supported"
        )));
    }
    let ratio = match input_name(node, 1) {
        Some(r) => {
            let r_dtype = ctx.slot(r)?.dtype;
            let r = ctx.plain(r)?;
            if r_dtype == dtype {
                r
            } else {
                ctx.op1(
                    "Cast",
                    &sub(&base, "ratio"),
                    &[&r],
                    &[("SrcT", Attr::Type(r_dtype)), ("DstT", Attr::Type(dtype))],
                    Shape::new(&[]),
                )?
            }
        }
        None => ctx.const_scalar(&sub(&base, "ratio"), dtype, 0.5)?,
    };
    let seed = node.attr_i_or("seed", 0)?;
    let dims = ctx.op1(
        "Shape",
        &sub(&base, "shape"),
        &[&x],
        &[t(dtype), ("out_type", Attr::Type(DType::Int32))],
        Shape::unknown_dims(1),
    )?;
    let draw = ctx.op1(
        "RandomUniform",
        &sub(&base, "uniform"),
        &[&dims],
        &[
            ("dtype", Attr::Type(dtype)),
            ("T", Attr::Type(DType::Int32)),
            ("seed", Attr::Int(seed)),
            ("seed2", Attr::Int(seed)),
        ],
        shape.clone(),
    )?;
    let keep = ctx.op1(
        "GreaterEqual",
        &sub(&base, "keep"),
        &[&draw, &ratio],
        &[t(dtype)],
        shape.clone(),
    )?;
    let one = ctx.const_scalar(&sub(&base, "one"), dtype, 1.0)?;
    let kept_share = ctx.op1(
        "Sub",
        &sub(&base, "kept_share"),
        &[&one, &ratio],
        &[t(dtype)],
        Shape::new(&[]),
    )?;
    let scaled = ctx.op1(
        "RealDiv",
        &sub(&base, "scaled"),
        &[&x, &kept_share],
        &[t(dtype)],
        shape.clone(),
    )?;
    let zeros = ctx.op1(
        "ZerosLike",
        &sub(&base, "zeros"),
        &[&x],
        &[t(dtype)],
        shape.clone(),
    )?;
    let dropped = ctx.op1(
        "SelectV2",
        &sub(&base, "dropped"),
        &[&keep, &scaled, &zeros],
        &[t(dtype)],
        shape.clone(),
    )?;
    // Where training mode is off at run time: the input, all kept.
    let on = ctx.plain(training)?;
    let y = ctx.op1(
        "SelectV2",
        &base,
        &[&on, &dropped, &x],
        &[t(dtype)],
        shape.clone(),
    )?;
    ctx.set_plain(out, y, shape.clone());
    if let Some(mask) = super::output_name(node, 1) {
        let all = ctx.const_tensor(&sub(&base, "all_kept"), Tensor::scalar(true))?;
        let m = ctx.op1(
            "SelectV2",
            &sub(&base, "mask"),
            &[&on, &keep, &all],
            &[t(DType::Bool)],
            shape.clone(),
        )?;
        ctx.set_plain(mask, m, shape);
    }
    Ok(())
}
