//! Operators that pick elements: `ArgMax`, `ArgMin`, `TopK`, `Hardmax`.
//!
//! ONNX semantics: `onnx/defs/reduction/defs.cc`, `onnx/defs/math/defs.cc`.

use savedmodel_graph::{Attr, DType, Output, Shape};

use super::reduce::{binary, dim_size, reduced_shape, scalar_of, swap_last, t, unary};
use super::{Converter, normalize_axis, output_name, output0, rank_of, required_input, sub};
use crate::convert::constant;
use crate::convert::context::{Ctx, permute_shape};
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "ArgMax" => |c, n| arg(c, n, "ArgMax"),
        "ArgMin" => |c, n| arg(c, n, "ArgMin"),
        "TopK" => top_k,
        "Hardmax" => hardmax,
        _ => return None,
    };
    Some(f)
}

/// `ArgMax`/`ArgMin` of `x` along `axis` as int64 (the first index of
/// ties, or the last with `last`), the axis dropped.
fn tf_arg(
    ctx: &mut Ctx,
    base: &str,
    op: &str,
    x: &Output,
    axis: usize,
    last: bool,
    shape: Shape,
) -> Result<Output> {
    let dtype = x.dtype();
    let axis_t = ctx.const_scalar(&sub(base, "axis"), DType::Int32, axis as f64)?;
    let arg_attrs = [
        t(dtype),
        ("Tidx", Attr::Type(DType::Int32)),
        ("output_type", Attr::Type(DType::Int64)),
    ];
    if !last {
        return ctx.op1(op, base, &[x, &axis_t], &arg_attrs, shape);
    }
    // The last index of ties is the first one of the reversed input,
    // counted from the end.
    let axes = ctx.const_i32(&sub(base, "reverse_axis"), &[axis as i64])?;
    let reversed = ctx.op1(
        "ReverseV2",
        &sub(base, "reversed"),
        &[x, &axes],
        &[t(dtype), ("Tidx", Attr::Type(DType::Int32))],
        x.shape().clone(),
    )?;
    let i = ctx.op1(
        op,
        &sub(base, "reversed_index"),
        &[&reversed, &axis_t],
        &arg_attrs,
        shape.clone(),
    )?;
    let n = dim_size(ctx, base, x, axis)?;
    let one = ctx.const_scalar(&sub(base, "one"), DType::Int64, 1.0)?;
    let n1 = binary(ctx, &sub(base, "last"), "Sub", &n, &one, Shape::new(&[]))?;
    binary(ctx, base, "Sub", &n1, &i, shape)
}

fn arg(ctx: &mut Ctx, node: &NodeView<'_>, op: &str) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    let axis = normalize_axis(ctx, node.attr_i_or("axis", 0)?, rank)?;
    let keep = node.attr_i_or("keepdims", 1)? != 0;
    let last = node.attr_i_or("select_last_index", 0)? != 0;
    let base = ctx.node_name(node);
    let logical = ctx.slot(x_name)?.shape.clone();
    let x = ctx.plain(x_name)?;
    let dropped = reduced_shape(&logical, &[axis], false);
    let out_shape = reduced_shape(&logical, &[axis], keep);
    let y = if keep {
        let i = tf_arg(ctx, &sub(&base, "index"), op, &x, axis, last, dropped)?;
        let dim = ctx.const_scalar(&sub(&base, "keep_axis"), DType::Int32, axis as f64)?;
        ctx.op1(
            "ExpandDims",
            &base,
            &[&i, &dim],
            &[t(DType::Int64), ("Tdim", Attr::Type(DType::Int32))],
            out_shape.clone(),
        )?
    } else {
        tf_arg(ctx, &base, op, &x, axis, last, dropped)?
    };
    ctx.set_plain(output0(ctx, node)?, y, out_shape);
    Ok(())
}

fn top_k(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    if rank == 0 {
        return Err(ctx.error("TopK of a scalar"));
    }
    let axis = normalize_axis(ctx, node.attr_i_or("axis", -1)?, rank)?;
    let opset = node.opset_version()?;
    let base = ctx.node_name(node);
    // k: known (the usual case), or read at run time.
    let (k, k_tensor) = if opset >= 10 {
        let k_name = required_input(ctx, node, 1)?;
        if ctx.constant(k_name).is_some() {
            match ctx.const_ints(k_name)?.as_slice() {
                [k] => (*k, None),
                other => return Err(ctx.error(format!("k must hold one value, not {other:?}"))),
            }
        } else {
            (-1, Some(scalar_of(ctx, &base, k_name, "k")?))
        }
    } else {
        let k = node
            .attr_i("k")?
            .ok_or_else(|| ctx.error("attribute k is required"))?;
        (k, None)
    };
    if k < 0 && k_tensor.is_none() {
        return Err(ctx.error(format!("k is negative ({k})")));
    }
    let largest = opset < 11 || node.attr_i_or("largest", 1)? != 0;
    let logical = ctx.slot(x_name)?.shape.clone();
    let out_shape = match logical.dims() {
        Some(d) => {
            let mut d = d.to_vec();
            d[axis] = k;
            Shape::new(&d)
        }
        None => Shape::unknown_dims(rank),
    };
    let mut x = ctx.plain(x_name)?;
    let dtype = x.dtype();
    let perm = swap_last(rank, axis);
    let moved = axis + 1 != rank;
    if moved {
        x = ctx.transpose(&sub(&base, "to_last"), &x, &perm)?;
    }
    // The k smallest are the k largest of an order-reversing map: negation
    // for floats, bitwise not (-x - 1, which cannot overflow) for
    // integers. Ties keep the lower index first either way.
    let flip = if constant::is_int(dtype) {
        "Invert"
    } else {
        "Neg"
    };
    if !largest {
        x = unary(ctx, &sub(&base, "flipped"), flip, &x)?;
    }
    let k_t = match k_tensor {
        Some(k) => k,
        None => ctx.const_scalar(&sub(&base, "k"), DType::Int64, k as f64)?,
    };
    let st = permute_shape(&out_shape, &perm);
    let outs = ctx.op(
        "TopKV2",
        &sub(&base, "top_k"),
        &[&x, &k_t],
        &[
            ("sorted", Attr::Bool(true)),
            t(dtype),
            ("Tk", Attr::Type(k_t.dtype())),
            ("index_type", Attr::Type(DType::Int64)),
        ],
        vec![st.clone(), st],
    )?;
    let (mut values, mut indices) = match outs.as_slice() {
        [v, i] => (v.clone(), i.clone()),
        _ => return Err(ctx.error("TopKV2 gave no two outputs")),
    };
    if !largest {
        values = unary(ctx, &sub(&base, "values_flipped"), flip, &values)?;
    }
    if moved {
        values = ctx.transpose(&sub(&base, "values"), &values, &perm)?;
        indices = ctx.transpose(&sub(&base, "indices"), &indices, &perm)?;
    }
    if let Some(name) = output_name(node, 0) {
        ctx.set_plain(name, values, out_shape.clone());
    }
    if let Some(name) = output_name(node, 1) {
        ctx.set_plain(name, indices, out_shape);
    }
    Ok(())
}

/// One-hot of the first maximum along the axis.
fn hardmax(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    let opset = node.opset_version()?;
    let default_axis = if opset >= 13 { -1 } else { 1 };
    let axis = normalize_axis(ctx, node.attr_i_or("axis", default_axis)?, rank.max(1))?;
    let base = ctx.node_name(node);
    let logical = ctx.slot(x_name)?.shape.clone();
    let mut x = ctx.plain(x_name)?;
    let dtype = x.dtype();
    // Before opset 13 the input is seen as 2-D, flattened at `axis`.
    let (flat, arg_axis) = if opset < 13 {
        let target = match logical.dims() {
            Some(d) if d.iter().all(|&v| v >= 0) => {
                let outer: i64 = d[..axis].iter().product();
                vec![outer, -1]
            }
            _ if axis == 0 => vec![1, -1],
            _ => {
                return Err(
                    ctx.error("Hardmax before opset 13 with a dynamic shape is not supported")
                );
            }
        };
        let target = ctx.const_i32(&sub(&base, "flat_shape"), &target)?;
        x = ctx.op1(
            "Reshape",
            &sub(&base, "flat"),
            &[&x, &target],
            &[t(dtype), ("Tshape", Attr::Type(DType::Int32))],
            Shape::unknown_dims(2),
        )?;
        (true, 1)
    } else {
        (false, axis)
    };
    let dropped = reduced_shape(x.shape(), &[arg_axis], false);
    let index = tf_arg(
        ctx,
        &sub(&base, "argmax"),
        "ArgMax",
        &x,
        arg_axis,
        false,
        dropped,
    )?;
    let depth = dim_size(ctx, &sub(&base, "depth"), &x, arg_axis)?;
    let depth = ctx.op1(
        "Cast",
        &sub(&base, "depth32"),
        &[&depth],
        &[
            ("SrcT", Attr::Type(DType::Int64)),
            ("DstT", Attr::Type(DType::Int32)),
        ],
        Shape::new(&[]),
    )?;
    let on = ctx.const_scalar(&sub(&base, "on"), dtype, 1.0)?;
    let off = ctx.const_scalar(&sub(&base, "off"), dtype, 0.0)?;
    let name = if flat {
        sub(&base, "one_hot")
    } else {
        base.clone()
    };
    let mut y = ctx.op1(
        "OneHot",
        &name,
        &[&index, &depth, &on, &off],
        &[
            ("axis", Attr::Int(arg_axis as i64)),
            t(dtype),
            ("TI", Attr::Type(DType::Int64)),
        ],
        x.shape().clone(),
    )?;
    if flat {
        let original = ctx.plain(x_name)?;
        let shape_t = ctx.op1(
            "Shape",
            &sub(&base, "shape"),
            &[&original],
            &[t(dtype), ("out_type", Attr::Type(DType::Int32))],
            Shape::new(&[rank as i64]),
        )?;
        y = ctx.op1(
            "Reshape",
            &base,
            &[&y, &shape_t],
            &[t(dtype), ("Tshape", Attr::Type(DType::Int32))],
            logical.clone(),
        )?;
    }
    ctx.set_plain(output0(ctx, node)?, y, logical);
    Ok(())
}
