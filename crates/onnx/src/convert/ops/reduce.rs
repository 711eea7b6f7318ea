//! Reductions: `Reduce*`, and the helpers the operators built on
//! reductions (`arg`, `math`, `norm`, `loss`) share.
//!
//! ONNX semantics: `onnx/defs/reduction/defs.cc` (and the reference
//! implementations `onnx/reference/ops/op_reduce_*.py`). An empty axis list
//! reduces over every axis, unless `noop_with_empty_axes` is set: then
//! nothing is reduced, but the elementwise parts (the square of
//! `ReduceSumSquare`, the log of `ReduceLogSum`, ...) still apply.
//! TensorFlow's reductions do exactly that when given an empty axis list.

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::{Converter, input_name, normalize_axis, output0, rank_of, required_input, sub};
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

/// ONNX value `name` (one element, a scalar or a 1-element vector, known
/// only at run time) reshaped to a scalar.
pub(super) fn scalar_of(ctx: &mut Ctx, base: &str, name: &str, what: &str) -> Result<Output> {
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
}
