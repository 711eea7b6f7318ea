//! Reductions and the operators built on them: `Reduce*`, `ArgMax`,
//! `ArgMin`, `TopK`, `CumSum`, `CumProd`, `Hardmax`, plus `Einsum` and `Mod`, which
//! map to one TensorFlow op each.
//!
//! ONNX semantics: `onnx/defs/reduction/defs.cc`, `onnx/defs/math/defs.cc`
//! (and the reference implementations `onnx/reference/ops/op_reduce_*.py`).
//! An empty axis list reduces over every axis, unless
//! `noop_with_empty_axes` is set: then nothing is reduced, but the
//! elementwise parts (the square of `ReduceSumSquare`, the log of
//! `ReduceLogSum`, ...) still apply. TensorFlow's reductions do exactly
//! that when given an empty axis list.

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::{
    Converter, input_name, normalize_axis, output_name, output0, rank_of, required_input, sub,
};
use crate::convert::constant;
use crate::convert::context::{Ctx, permute_shape, to_channels_last};
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "ReduceSum" => |c, n| reduce(c, n, Reduction::Sum),
        "ReduceMean" => |c, n| reduce(c, n, Reduction::Mean),
        "ReduceMax" => |c, n| reduce(c, n, Reduction::Max),
        "ReduceMin" => |c, n| reduce(c, n, Reduction::Min),
        "ReduceProd" => |c, n| reduce(c, n, Reduction::Prod),
        "ReduceL1" => |c, n| reduce(c, n, Reduction::L1),
        "ReduceL2" => |c, n| reduce(c, n, Reduction::L2),
        "ReduceLogSum" => |c, n| reduce(c, n, Reduction::LogSum),
        "ReduceLogSumExp" => |c, n| reduce(c, n, Reduction::LogSumExp),
        "ReduceSumSquare" => |c, n| reduce(c, n, Reduction::SumSquare),
        "ArgMax" => |c, n| arg(c, n, "ArgMax"),
        "ArgMin" => |c, n| arg(c, n, "ArgMin"),
        "TopK" => top_k,
        "CumSum" => |c, n| cumulative(c, n, "Cumsum"),
        "CumProd" => |c, n| cumulative(c, n, "Cumprod"),
        "Hardmax" => hardmax,
        "Einsum" => einsum,
        "Mod" => modulo,
        _ => return None,
    };
    Some(f)
}

/// The `T` attr.
pub(super) fn t(dtype: DType) -> (&'static str, Attr) {
    ("T", Attr::Type(dtype))
}

/// The shape `shape` reduced over `axes` (ONNX axes, non-negative).
pub(super) fn reduced_shape(shape: &Shape, axes: &[usize], keep: bool) -> Shape {
    let Some(dims) = shape.dims() else {
        return Shape::unknown();
    };
    let mut out = Vec::with_capacity(dims.len());
    for (i, &d) in dims.iter().enumerate() {
        if axes.contains(&i) {
            if keep {
                out.push(1);
            }
        } else {
            out.push(d);
        }
    }
    Shape::new(&out)
}

/// A TensorFlow reduction (`Sum`, `Mean`, `Max`, `Min`, `Prod`) of `x`
/// over `axes` of its stored layout.
pub(super) fn tf_reduce(
    ctx: &mut Ctx,
    name: &str,
    op: &str,
    x: &Output,
    axes: &[i64],
    keep: bool,
    shape: Shape,
) -> Result<Output> {
    let axes_t = ctx.const_i32(&sub(name, "axes"), axes)?;
    reduce_over(ctx, name, op, x, &axes_t, keep, shape)
}

/// A TensorFlow reduction of `x` over the axes in tensor `axes` (int32 or
/// int64; negative axes count from the end, as in ONNX).
fn reduce_over(
    ctx: &mut Ctx,
    name: &str,
    op: &str,
    x: &Output,
    axes: &Output,
    keep: bool,
    shape: Shape,
) -> Result<Output> {
    let mut attrs = vec![
        ("keep_dims", Attr::Bool(keep)),
        ("Tidx", Attr::Type(axes.dtype())),
    ];
    // `Any` and `All` take only bool and have no `T`.
    if super::elementwise::has_attr(op, "T") {
        attrs.push(t(x.dtype()));
    }
    ctx.op1(op, name, &[x, axes], &attrs, shape)
}

/// A unary TensorFlow op keeping the shape.
pub(super) fn unary(ctx: &mut Ctx, name: &str, op: &str, x: &Output) -> Result<Output> {
    ctx.op1(op, name, &[x], &[t(x.dtype())], x.shape().clone())
}

/// A binary TensorFlow op (broadcasting) with the result shape `shape`.
pub(super) fn binary(
    ctx: &mut Ctx,
    name: &str,
    op: &str,
    a: &Output,
    b: &Output,
    shape: Shape,
) -> Result<Output> {
    ctx.op1(op, name, &[a, b], &[t(a.dtype())], shape)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reduction {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    LogSum,
    LogSumExp,
    SumSquare,
}

/// The axes of a `Reduce*` node.
enum Axes {
    /// Known at conversion: non-negative and sorted. Every axis when the
    /// node's list is empty, none when it is empty and
    /// `noop_with_empty_axes` is set.
    Known(Vec<usize>),
    /// Computed at run time: the tensor (int64, possibly negative) and its
    /// (non-zero) length.
    Dynamic(Output, usize),
}

/// The axes of a `Reduce*` node: from the `axes` attribute before opset 13
/// (`ReduceSum`) or 18 (the others), from input 1 after.
fn reduce_axes(ctx: &mut Ctx, node: &NodeView<'_>, rank: usize, axes_input: bool) -> Result<Axes> {
    let axes: Vec<i64> = if axes_input {
        match input_name(node, 1) {
            Some(a) if ctx.constant(a).is_some() => ctx.const_ints(a)?,
            Some(a) => match ctx.slot(a)?.shape.dims() {
                Some(&[0]) => Vec::new(),
                Some(&[n]) if n > 0 => {
                    let t = ctx.plain(a)?;
                    return Ok(Axes::Dynamic(t, n as usize));
                }
                _ => {
                    return Err(ctx.error(format!(
                        "the length of input {a:?} (the axes) must be known when the model is converted"
                    )));
                }
            },
            None => Vec::new(),
        }
    } else {
        node.attr_ints("axes")?
            .map(<[i64]>::to_vec)
            .unwrap_or_default()
    };
    if axes.is_empty() {
        let noop = axes_input && node.attr_i_or("noop_with_empty_axes", 0)? != 0;
        return Ok(Axes::Known(if noop {
            Vec::new()
        } else {
            (0..rank).collect()
        }));
    }
    let mut out = axes
        .iter()
        .map(|&a| normalize_axis(ctx, a, rank))
        .collect::<Result<Vec<_>>>()?;
    out.sort_unstable();
    out.dedup();
    Ok(Axes::Known(out))
}

/// Where a reduction runs: the input tensor, the axes tensor, whether the
/// result is channels last, and its logical and stored shapes.
struct Plan {
    x: Output,
    axes: Output,
    channels_last: bool,
    shape: Shape,
    stored: Shape,
}

fn plan(ctx: &mut Ctx, base: &str, x_name: &str, axes: Axes, keep: bool) -> Result<Plan> {
    let rank = rank_of(ctx, x_name)?;
    let logical = ctx.slot(x_name)?.shape.clone();
    let axes = match axes {
        Axes::Dynamic(axes, n) => {
            let shape = if keep {
                Shape::unknown_dims(rank)
            } else {
                Shape::unknown_dims(rank.saturating_sub(n))
            };
            return Ok(Plan {
                x: ctx.plain(x_name)?,
                axes,
                channels_last: false,
                stored: shape.clone(),
                shape,
            });
        }
        Axes::Known(axes) => axes,
    };
    let shape = reduced_shape(&logical, &axes, keep);
    // A channels-last input is reduced where it is when the result has a
    // layout we know: channels last again (keepdims), or the ONNX layout
    // (the axes left are in ONNX order, as after a global pool).
    if rank >= 3 && ctx.is_channels_last(x_name) {
        let perm = to_channels_last(rank);
        let reduced = |p: &i64| usize::try_from(*p).is_ok_and(|p| axes.contains(&p));
        let kept: Vec<i64> = perm.iter().copied().filter(|p| !reduced(p)).collect();
        if keep || kept.windows(2).all(|w| w[0] < w[1]) {
            let stored_axes: Vec<i64> = (0..rank)
                .filter(|&i| reduced(&perm[i]))
                .map(|i| i as i64)
                .collect();
            let stored = if keep {
                permute_shape(&shape, &perm)
            } else {
                shape.clone()
            };
            return Ok(Plan {
                x: ctx.channels_last(x_name)?,
                axes: ctx.const_i32(&sub(base, "axes"), &stored_axes)?,
                channels_last: keep,
                shape,
                stored,
            });
        }
    }
    let onnx_axes: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
    Ok(Plan {
        x: ctx.plain(x_name)?,
        axes: ctx.const_i32(&sub(base, "axes"), &onnx_axes)?,
        channels_last: false,
        stored: shape.clone(),
        shape,
    })
}

/// The reduction of a known int32 or int64 tensor (shape arithmetic:
/// `Shape -> ReduceProd` for an element count), exact; `None` when it
/// cannot be folded exactly (other types, overflow, the maximum or
/// minimum of nothing).
fn fold(x: &Tensor, axes: &[usize], keep: bool, kind: Reduction) -> Option<Tensor> {
    if !matches!(x.dtype(), DType::Int32 | DType::Int64) {
        return None;
    }
    let dims = x.shape();
    let values = constant::to_i64(x).ok()?;
    type Step = fn(i64, i64) -> Option<i64>;
    let (init, step): (i64, Step) = match kind {
        Reduction::Sum => (0, i64::checked_add),
        Reduction::Prod => (1, i64::checked_mul),
        Reduction::Max => (i64::MIN, |a, b| Some(a.max(b))),
        Reduction::Min => (i64::MAX, |a, b| Some(a.min(b))),
        _ => return None,
    };
    let reduced_count: i64 = axes
        .iter()
        .map(|&a| dims.get(a).copied().unwrap_or(0))
        .product();
    if reduced_count == 0 && matches!(kind, Reduction::Max | Reduction::Min) {
        return None;
    }
    let out_dims: Vec<i64> = (0..dims.len())
        .filter_map(|i| match (axes.contains(&i), keep) {
            (false, _) => Some(dims[i]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    let kept_sizes: Vec<i64> = (0..dims.len())
        .map(|i| if axes.contains(&i) { 1 } else { dims[i] })
        .collect();
    let out_len: i64 = kept_sizes.iter().product();
    let mut acc = vec![init; usize::try_from(out_len).ok()?];
    let mut index = vec![0i64; dims.len()];
    for &v in &values {
        // The output element: the input index with the reduced axes at 0.
        let mut o = 0i64;
        for (i, &c) in index.iter().enumerate() {
            o = o * kept_sizes[i] + if axes.contains(&i) { 0 } else { c };
        }
        let slot = acc.get_mut(usize::try_from(o).ok()?)?;
        *slot = step(*slot, v)?;
        for axis in (0..dims.len()).rev() {
            index[axis] += 1;
            if index[axis] < dims[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    constant::from_i64(x.dtype(), &out_dims, &acc).ok()
}

/// `m` where it is finite, else 0.
fn finite_or_zero(ctx: &mut Ctx, base: &str, m: &Output) -> Result<Output> {
    let dtype = m.dtype();
    let finite = ctx.op1(
        "IsFinite",
        &sub(base, "finite"),
        &[m],
        &[t(dtype)],
        m.shape().clone(),
    )?;
    let zero = ctx.const_scalar(&sub(base, "zero"), dtype, 0.0)?;
    ctx.op1(
        "SelectV2",
        base,
        &[&finite, m, &zero],
        &[t(dtype)],
        m.shape().clone(),
    )
}

fn reduce(ctx: &mut Ctx, node: &NodeView<'_>, kind: Reduction) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    let axes_input_from = if kind == Reduction::Sum { 13 } else { 18 };
    let axes_input = node.opset_version()? >= axes_input_from;
    let axes = reduce_axes(ctx, node, rank, axes_input)?;
    let keep = node.attr_i_or("keepdims", 1)? != 0;
    if let Axes::Known(known) = &axes
        && let Some(x) = ctx.constant(x_name)
        && let Some(folded) = fold(x, known, keep, kind)
    {
        ctx.set_constant(output0(ctx, node)?, folded);
        return Ok(());
    }
    let base = ctx.node_name(node);
    let Plan {
        x,
        axes,
        channels_last,
        shape,
        stored,
    } = plan(ctx, &base, x_name, axes, keep)?;
    let over = |ctx: &mut Ctx, name: &str, op: &str, x: &Output, keep: bool, shape: Shape| {
        reduce_over(ctx, name, op, x, &axes, keep, shape)
    };
    let y = match kind {
        Reduction::Sum => over(ctx, &base, "Sum", &x, keep, stored)?,
        Reduction::Mean => over(ctx, &base, "Mean", &x, keep, stored)?,
        // The maximum of bools is their disjunction, the minimum their
        // conjunction (false and true over no elements, as in ONNX).
        Reduction::Max if x.dtype() == DType::Bool => over(ctx, &base, "Any", &x, keep, stored)?,
        Reduction::Min if x.dtype() == DType::Bool => over(ctx, &base, "All", &x, keep, stored)?,
        Reduction::Max => over(ctx, &base, "Max", &x, keep, stored)?,
        Reduction::Min => over(ctx, &base, "Min", &x, keep, stored)?,
        Reduction::Prod => over(ctx, &base, "Prod", &x, keep, stored)?,
        Reduction::L1 => {
            let a = unary(ctx, &sub(&base, "abs"), "Abs", &x)?;
            over(ctx, &base, "Sum", &a, keep, stored)?
        }
        Reduction::SumSquare => {
            let s = unary(ctx, &sub(&base, "square"), "Square", &x)?;
            over(ctx, &base, "Sum", &s, keep, stored)?
        }
        Reduction::L2 => {
            let s = unary(ctx, &sub(&base, "square"), "Square", &x)?;
            let s = over(ctx, &sub(&base, "sum"), "Sum", &s, keep, stored)?;
            unary(ctx, &base, "Sqrt", &s)?
        }
        Reduction::LogSum => {
            let s = over(ctx, &sub(&base, "sum"), "Sum", &x, keep, stored)?;
            unary(ctx, &base, "Log", &s)?
        }
        Reduction::LogSumExp => {
            // log(sum(exp(x - m))) + m with m the maximum (0 where it is not
            // finite), so that large inputs do not overflow.
            let m = over(ctx, &sub(&base, "max"), "Max", &x, true, Shape::unknown())?;
            let m = finite_or_zero(ctx, &sub(&base, "shift"), &m)?;
            let d = binary(
                ctx,
                &sub(&base, "centered"),
                "Sub",
                &x,
                &m,
                x.shape().clone(),
            )?;
            let e = unary(ctx, &sub(&base, "exp"), "Exp", &d)?;
            let s = over(ctx, &sub(&base, "sum"), "Sum", &e, keep, stored.clone())?;
            let l = unary(ctx, &sub(&base, "log"), "Log", &s)?;
            let m = if keep {
                m
            } else {
                let m = over(
                    ctx,
                    &sub(&base, "max_out"),
                    "Max",
                    &x,
                    false,
                    stored.clone(),
                )?;
                finite_or_zero(ctx, &sub(&base, "shift_out"), &m)?
            };
            binary(ctx, &base, "AddV2", &l, &m, stored)?
        }
    };
    let out = output0(ctx, node)?;
    if channels_last {
        ctx.set_channels_last(out, y, shape);
    } else {
        ctx.set_plain(out, y, shape);
    }
    Ok(())
}

/// The size of dimension `axis` of `x` as an int64 scalar: a constant when
/// known, else read from its shape at run time.
pub(super) fn dim_size(ctx: &mut Ctx, base: &str, x: &Output, axis: usize) -> Result<Output> {
    if let Some(d) = x.shape().dims().and_then(|d| d.get(axis).copied())
        && d >= 0
    {
        return ctx.const_scalar(&sub(base, "dim"), DType::Int64, d as f64);
    }
    let shape = ctx.op1(
        "Shape",
        &sub(base, "shape"),
        &[x],
        &[t(x.dtype()), ("out_type", Attr::Type(DType::Int64))],
        Shape::unknown_dims(1),
    )?;
    let index = ctx.const_scalar(&sub(base, "dim_index"), DType::Int32, axis as f64)?;
    let gather_axis = ctx.const_scalar(&sub(base, "dim_axis"), DType::Int32, 0.0)?;
    ctx.op1(
        "GatherV2",
        &sub(base, "dim"),
        &[&shape, &index, &gather_axis],
        &[
            ("Tparams", Attr::Type(DType::Int64)),
            ("Tindices", Attr::Type(DType::Int32)),
            ("Taxis", Attr::Type(DType::Int32)),
            ("batch_dims", Attr::Int(0)),
        ],
        Shape::new(&[]),
    )
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

/// ONNX value `name` (one element, a scalar or a 1-element vector, known
/// only at run time) reshaped to a scalar.
fn scalar_of(ctx: &mut Ctx, base: &str, name: &str, what: &str) -> Result<Output> {
    let x = ctx.plain(name)?;
    let empty = ctx.const_i32(&sub(base, &format!("{what}_scalar_shape")), &[])?;
    ctx.op1(
        "Reshape",
        &sub(base, &format!("{what}_scalar")),
        &[&x, &empty],
        &[t(x.dtype()), ("Tshape", Attr::Type(DType::Int32))],
        Shape::new(&[]),
    )
}

/// The permutation swapping `axis` and the last axis (its own inverse).
pub(super) fn swap_last(rank: usize, axis: usize) -> Vec<i64> {
    let mut perm: Vec<i64> = (0..rank as i64).collect();
    perm.swap(axis, rank - 1);
    perm
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

/// `CumSum` and `CumProd` (TensorFlow's `Cumsum` and `Cumprod` have the
/// same `exclusive` and `reverse`).
fn cumulative(ctx: &mut Ctx, node: &NodeView<'_>, op: &str) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let axis_name = required_input(ctx, node, 1)?;
    let rank = rank_of(ctx, x_name)?;
    let base = ctx.node_name(node);
    let axis_t = if ctx.constant(axis_name).is_some() {
        let axis = match ctx.const_ints(axis_name)?.as_slice() {
            [a] => normalize_axis(ctx, *a, rank)?,
            other => return Err(ctx.error(format!("axis must hold one value, not {other:?}"))),
        };
        ctx.const_scalar(&sub(&base, "axis"), DType::Int32, axis as f64)?
    } else {
        // TensorFlow takes negative axes as ONNX does.
        scalar_of(ctx, &base, axis_name, "axis")?
    };
    let logical = ctx.slot(x_name)?.shape.clone();
    let x = ctx.plain(x_name)?;
    let y = ctx.op1(
        op,
        &base,
        &[&x, &axis_t],
        &[
            (
                "exclusive",
                Attr::Bool(node.attr_i_or("exclusive", 0)? != 0),
            ),
            ("reverse", Attr::Bool(node.attr_i_or("reverse", 0)? != 0)),
            t(x.dtype()),
            ("Tidx", Attr::Type(axis_t.dtype())),
        ],
        logical.clone(),
    )?;
    ctx.set_plain(output0(ctx, node)?, y, logical);
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

/// An ONNX einsum equation made explicit for TensorFlow: spaces dropped,
/// and the implicit output (`->` absent: the ellipsis, then the labels seen
/// once, in alphabetical order) written out. Also the output's labels, for
/// its shape, when there is no ellipsis.
fn explicit_equation(equation: &str) -> (String, bool) {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let has_ellipsis = eq.contains("...");
    if eq.contains("->") {
        return (eq, has_ellipsis);
    }
    let mut counts = std::collections::BTreeMap::new();
    for c in eq.chars().filter(char::is_ascii_alphabetic) {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let mut out = String::new();
    if has_ellipsis {
        out.push_str("...");
    }
    out.extend(counts.iter().filter(|(_, n)| **n == 1).map(|(c, _)| *c));
    (format!("{eq}->{out}"), has_ellipsis)
}

fn einsum(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let equation = node
        .attr_s("equation")?
        .ok_or_else(|| ctx.error("attribute equation is required"))?;
    let (equation, has_ellipsis) = explicit_equation(equation);
    let names: Vec<&str> = (0..node.proto().input.len())
        .map(|i| required_input(ctx, node, i))
        .collect::<Result<_>>()?;
    let base = ctx.node_name(node);
    // The output shape from the labels' sizes, when every label's size is
    // known and there is no ellipsis.
    let mut shape = Shape::unknown();
    if let Some((lhs, rhs)) = equation.split_once("->")
        && !has_ellipsis
    {
        let mut sizes = std::collections::HashMap::new();
        for (term, name) in lhs.split(',').zip(&names) {
            if let Some(d) = ctx.slot(name)?.shape.dims()
                && d.len() == term.len()
            {
                for (c, &v) in term.chars().zip(d) {
                    if v >= 0 {
                        sizes.insert(c, v);
                    }
                }
            }
        }
        let dims: Vec<i64> = rhs
            .chars()
            .map(|c| sizes.get(&c).copied().unwrap_or(-1))
            .collect();
        shape = Shape::new(&dims);
    }
    let inputs: Vec<Output> = names.iter().map(|n| ctx.plain(n)).collect::<Result<_>>()?;
    let refs: Vec<&Output> = inputs.iter().collect();
    let dtype = inputs
        .first()
        .map(Output::dtype)
        .ok_or_else(|| ctx.error("Einsum needs at least one input"))?;
    let y = ctx.op1(
        "Einsum",
        &base,
        &refs,
        &[
            ("equation", Attr::Str(equation.into_bytes())),
            ("N", Attr::Int(inputs.len() as i64)),
            t(dtype),
        ],
        shape.clone(),
    )?;
    ctx.set_plain(output0(ctx, node)?, y, shape);
    Ok(())
}

/// `Mod`: the remainder with the divisor's sign (`fmod=0`, TensorFlow's
/// `FloorMod`) or the dividend's (`fmod=1`, C's `fmod`, `TruncateMod`).
/// TensorFlow lacks some integer types for these: they are computed in
/// int64 (exact) and cast back.
fn modulo(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let a_name = required_input(ctx, node, 0)?;
    let b_name = required_input(ctx, node, 1)?;
    let fmod = node.attr_i_or("fmod", 0)? != 0;
    let base = ctx.node_name(node);
    let shape = match (
        ctx.slot(a_name)?.shape.dims().map(<[i64]>::to_vec),
        ctx.slot(b_name)?.shape.dims().map(<[i64]>::to_vec),
    ) {
        (Some(a), Some(b)) => constant::broadcast_dims(&a, &b)
            .map(|d| Shape::new(&d))
            .unwrap_or_else(|_| Shape::unknown()),
        _ => Shape::unknown(),
    };
    let a = ctx.plain(a_name)?;
    let b = ctx.plain(b_name)?;
    let dtype = a.dtype();
    let unsigned = matches!(
        dtype,
        DType::UInt8 | DType::UInt16 | DType::UInt32 | DType::UInt64
    );
    // For unsigned values both remainders are the same.
    let op = if fmod || unsigned {
        "TruncateMod"
    } else {
        "FloorMod"
    };
    // The types TensorFlow's CPU kernels take (`cwise_op_floor_mod.cc`,
    // `cwise_op_mod.cc` in tensorflow/core/kernels); others are computed in
    // a wider type, which is exact for a remainder.
    let native = match op {
        "TruncateMod" => matches!(
            dtype,
            DType::Int32 | DType::Int64 | DType::Float | DType::Double
        ),
        _ => matches!(
            dtype,
            DType::Int8 | DType::Int16 | DType::Int32 | DType::Int64 | DType::Float | DType::Double
        ),
    };
    let wide = if native {
        dtype
    } else if constant::is_int(dtype) {
        DType::Int64
    } else if matches!(dtype, DType::Half | DType::BFloat16) {
        DType::Float
    } else {
        return Err(ctx.error(format!("Mod of {dtype} values is not supported")));
    };
    let y = if native {
        binary(ctx, &base, op, &a, &b, shape.clone())?
    } else {
        let cast = |ctx: &mut Ctx, name: &str, x: &Output, from: DType, to: DType| {
            ctx.op1(
                "Cast",
                name,
                &[x],
                &[("SrcT", Attr::Type(from)), ("DstT", Attr::Type(to))],
                x.shape().clone(),
            )
        };
        let aw = cast(ctx, &sub(&base, "a_wide"), &a, dtype, wide)?;
        let bw = cast(ctx, &sub(&base, "b_wide"), &b, dtype, wide)?;
        let r = binary(ctx, &sub(&base, "wide"), op, &aw, &bw, shape.clone())?;
        cast(ctx, &base, &r, wide, dtype)?
    };
    ctx.set_plain(output0(ctx, node)?, y, shape);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(dims: &[i64], v: &[i64]) -> Tensor {
        constant::from_i64(DType::Int64, dims, v).unwrap()
    }

    #[test]
    fn folds_integer_reductions_over_axes() {
        let x = ints(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let sum = fold(&x, &[1], false, Reduction::Sum).unwrap();
        assert_eq!(sum.shape(), &[2]);
        assert_eq!(constant::to_i64(&sum).unwrap(), vec![6, 15]);
        let prod = fold(&x, &[0, 1], true, Reduction::Prod).unwrap();
        assert_eq!(prod.shape(), &[1, 1]);
        assert_eq!(constant::to_i64(&prod).unwrap(), vec![720]);
        let max = fold(&x, &[0], true, Reduction::Max).unwrap();
        assert_eq!(max.shape(), &[1, 3]);
        assert_eq!(constant::to_i64(&max).unwrap(), vec![4, 5, 6]);
    }

    #[test]
    fn does_not_fold_what_is_not_exact() {
        let big = ints(&[2], &[i64::MAX, 1]);
        assert!(fold(&big, &[0], false, Reduction::Sum).is_none());
        let empty = ints(&[0, 2], &[]);
        assert!(fold(&empty, &[0], false, Reduction::Max).is_none());
        let sum = fold(&empty, &[0], false, Reduction::Sum).unwrap();
        assert_eq!(constant::to_i64(&sum).unwrap(), vec![0, 0]);
        let floats = constant::from_f64(DType::Float, &[2], &[1.0, 2.0]).unwrap();
        assert!(fold(&floats, &[0], false, Reduction::Sum).is_none());
    }

    #[test]
    fn einsum_implicit_output_is_written_out() {
        assert_eq!(explicit_equation("ij, jk").0, "ij,jk->ik");
        assert_eq!(explicit_equation("ii").0, "ii->");
        assert_eq!(
            explicit_equation("...ij,...jk"),
            ("...ij,...jk->...ik".to_owned(), true)
        );
        assert_eq!(explicit_equation("ij->ji").0, "ij->ji");
    }
}
