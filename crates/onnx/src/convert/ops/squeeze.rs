//! `Squeeze` and `Unsqueeze`: folded for known values, one TensorFlow op
//! for axes known at conversion, and a target shape computed in the graph
//! for axes known only at run time (opset 13 made them an input).

use savedmodel_graph::{Attr, DType, Shape, Tensor};

use super::{input_name, normalize_axis, output0, rank_of, required_input, sub};
use crate::convert::constant;
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

fn t(dtype: DType) -> (&'static str, Attr) {
    ("T", Attr::Type(dtype))
}

/// The axes of a `Squeeze`/`Unsqueeze`: an attribute before opset 13, an
/// input (known at conversion time) from 13 on.
fn axes(ctx: &Ctx, node: &NodeView<'_>) -> Result<Option<Vec<i64>>> {
    if node.opset_version()? >= 13 {
        match input_name(node, 1) {
            Some(n) => Ok(Some(ctx.const_ints(n)?)),
            None => Ok(None),
        }
    } else {
        Ok(node.attr_ints("axes")?.map(<[i64]>::to_vec))
    }
}

/// The axes input of a Squeeze or Unsqueeze (opset 13+) when it is known
/// only at run time: its name and its length.
fn runtime_axes<'a>(ctx: &Ctx, node: &NodeView<'a>) -> Result<Option<(&'a str, usize)>> {
    if node.opset_version()? < 13 {
        return Ok(None);
    }
    let Some(name) = input_name(node, 1) else {
        return Ok(None);
    };
    if ctx.constant(name).is_some() {
        return Ok(None);
    }
    let len = ctx.slot(name)?.shape.dim(0);
    if len < 0 {
        return Err(ctx.error(format!(
            "the number of axes in {name:?} must be known when the model is converted"
        )));
    }
    Ok(Some((name, len as usize)))
}

/// `[k, n]` booleans, true where run-time `axes` (normalized for `rank`)
/// names position `j` of `0..n`.
fn axis_hits(
    ctx: &mut Ctx,
    base: &str,
    axes: &str,
    rank: usize,
    n: usize,
) -> Result<savedmodel_graph::Output> {
    let a = ctx.plain(axes)?;
    let a = if a.dtype() == DType::Int64 {
        a
    } else {
        ctx.op1(
            "Cast",
            &sub(base, "axes_i64"),
            &[&a],
            &[
                ("SrcT", Attr::Type(a.dtype())),
                ("DstT", Attr::Type(DType::Int64)),
            ],
            a.shape().clone(),
        )?
    };
    let zero = ctx.const_tensor(&sub(base, "zero"), Tensor::scalar(0i64))?;
    let r = ctx.const_tensor(&sub(base, "rank"), Tensor::scalar(rank as i64))?;
    let st = a.shape().clone();
    let negative = ctx.op1(
        "Less",
        &sub(base, "negative"),
        &[&a, &zero],
        &[t(DType::Int64)],
        st.clone(),
    )?;
    let wrapped = ctx.op1(
        "AddV2",
        &sub(base, "wrapped"),
        &[&a, &r],
        &[t(DType::Int64)],
        st.clone(),
    )?;
    let a = ctx.op1(
        "SelectV2",
        &sub(base, "axes"),
        &[&negative, &wrapped, &a],
        &[t(DType::Int64)],
        st,
    )?;
    let column = ctx.const_i32(&sub(base, "column"), &[-1, 1])?;
    let a = ctx.op1(
        "Reshape",
        &sub(base, "axes_column"),
        &[&a, &column],
        &[t(DType::Int64), ("Tshape", Attr::Type(DType::Int32))],
        Shape::unknown_dims(2),
    )?;
    let positions: Vec<i64> = (0..n as i64).collect();
    let positions = ctx.const_i64(&sub(base, "positions"), &positions)?;
    ctx.op1(
        "Equal",
        &sub(base, "hits"),
        &[&a, &positions],
        &[t(DType::Int64)],
        Shape::unknown_dims(2),
    )
}

/// `Any` over axis 0 of `[k, n]` booleans.
fn any_rows(
    ctx: &mut Ctx,
    base: &str,
    hits: &savedmodel_graph::Output,
    n: usize,
) -> Result<savedmodel_graph::Output> {
    let axis = ctx.const_i32(&sub(base, "rows"), &[0])?;
    ctx.op1(
        "Any",
        &sub(base, "named"),
        &[hits, &axis],
        &[
            ("keep_dims", Attr::Bool(false)),
            ("Tidx", Attr::Type(DType::Int32)),
        ],
        Shape::new(&[n as i64]),
    )
}

/// The int64 shape of `x` (of `rank`).
fn shape_of(
    ctx: &mut Ctx,
    base: &str,
    x: &savedmodel_graph::Output,
    rank: usize,
) -> Result<savedmodel_graph::Output> {
    ctx.op1(
        "Shape",
        &sub(base, "input_shape"),
        &[x],
        &[t(x.dtype()), ("out_type", Attr::Type(DType::Int64))],
        Shape::new(&[rank as i64]),
    )
}

/// Squeeze by axes known only at run time: the dimensions not named are
/// gathered into the target shape of a Reshape.
fn squeeze_at_run_time(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    x: &str,
    axes: &str,
    k: usize,
) -> Result<()> {
    let rank = rank_of(ctx, x)?;
    if k > rank {
        return Err(ctx.error(format!("{k} axes squeezed from rank {rank}")));
    }
    let base = ctx.node_name(node);
    let xv = ctx.plain(x)?;
    let out_rank = rank - k;
    let shape = ctx.slot(x)?.shape.clone();
    // With a static shape holding exactly `k` ones, only those can be the
    // axes: the result's shape is known now.
    if let Some(d) = shape.dims().filter(|d| d.iter().all(|&v| v >= 0)) {
        let kept: Vec<i64> = d.iter().copied().filter(|&v| v != 1).collect();
        if kept.len() == out_rank {
            let target = ctx.const_i64(&sub(&base, "shape"), &kept)?;
            let y = ctx.op1(
                "Reshape",
                &base,
                &[&xv, &target],
                &[t(xv.dtype()), ("Tshape", Attr::Type(DType::Int64))],
                Shape::new(&kept),
            )?;
            ctx.set_plain(output0(ctx, node)?, y, Shape::new(&kept));
            return Ok(());
        }
    }
    let hits = axis_hits(ctx, &base, axes, rank, rank)?;
    let named = any_rows(ctx, &base, &hits, rank)?;
    let keep = ctx.op1(
        "LogicalNot",
        &sub(&base, "kept"),
        &[&named],
        &[],
        Shape::new(&[rank as i64]),
    )?;
    let kept = ctx.op1(
        "Where",
        &sub(&base, "kept_positions"),
        &[&keep],
        &[t(DType::Bool)],
        Shape::unknown_dims(2),
    )?;
    let flat = ctx.const_i32(&sub(&base, "flat"), &[-1])?;
    let kept = ctx.op1(
        "Reshape",
        &sub(&base, "kept_indices"),
        &[&kept, &flat],
        &[t(DType::Int64), ("Tshape", Attr::Type(DType::Int32))],
        Shape::new(&[out_rank as i64]),
    )?;
    let dims = shape_of(ctx, &base, &xv, rank)?;
    let axis0 = ctx.const_tensor(&sub(&base, "gather_axis"), Tensor::scalar(0i32))?;
    let target = ctx.op1(
        "GatherV2",
        &sub(&base, "target"),
        &[&dims, &kept, &axis0],
        &[
            ("Tparams", Attr::Type(DType::Int64)),
            ("Tindices", Attr::Type(DType::Int64)),
            ("Taxis", Attr::Type(DType::Int32)),
        ],
        Shape::new(&[out_rank as i64]),
    )?;
    let logical = Shape::unknown_dims(out_rank);
    let y = ctx.op1(
        "Reshape",
        &base,
        &[&xv, &target],
        &[t(xv.dtype()), ("Tshape", Attr::Type(DType::Int64))],
        logical.clone(),
    )?;
    ctx.set_plain(output0(ctx, node)?, y, logical);
    Ok(())
}

/// Unsqueeze at axes known only at run time: the target shape of a
/// Reshape has 1 at the named positions and the input's dimensions, in
/// order, elsewhere.
fn unsqueeze_at_run_time(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    x: &str,
    axes: &str,
    k: usize,
) -> Result<()> {
    let rank = rank_of(ctx, x)?;
    let out_rank = rank + k;
    let base = ctx.node_name(node);
    let xv = ctx.plain(x)?;
    let target = if rank == 0 {
        ctx.const_i64(&sub(&base, "shape"), &vec![1; out_rank])?
    } else {
        let hits = axis_hits(ctx, &base, axes, out_rank, out_rank)?;
        let named = any_rows(ctx, &base, &hits, out_rank)?;
        let st = Shape::new(&[out_rank as i64]);
        let keep = ctx.op1(
            "LogicalNot",
            &sub(&base, "kept"),
            &[&named],
            &[],
            st.clone(),
        )?;
        let keep = ctx.op1(
            "Cast",
            &sub(&base, "kept_i64"),
            &[&keep],
            &[
                ("SrcT", Attr::Type(DType::Bool)),
                ("DstT", Attr::Type(DType::Int64)),
            ],
            st.clone(),
        )?;
        let axis0 = ctx.const_tensor(&sub(&base, "axis0"), Tensor::scalar(0i32))?;
        // The input dimension each kept position takes: how many kept
        // positions come before it.
        let index = ctx.op1(
            "Cumsum",
            &sub(&base, "source"),
            &[&keep, &axis0],
            &[
                t(DType::Int64),
                ("Tidx", Attr::Type(DType::Int32)),
                ("exclusive", Attr::Bool(true)),
                ("reverse", Attr::Bool(false)),
            ],
            st.clone(),
        )?;
        let last = ctx.const_tensor(&sub(&base, "last"), Tensor::scalar(rank as i64 - 1))?;
        let index = ctx.op1(
            "Minimum",
            &sub(&base, "source_clamped"),
            &[&index, &last],
            &[t(DType::Int64)],
            st.clone(),
        )?;
        let dims = shape_of(ctx, &base, &xv, rank)?;
        let gathered = ctx.op1(
            "GatherV2",
            &sub(&base, "dims"),
            &[&dims, &index, &axis0],
            &[
                ("Tparams", Attr::Type(DType::Int64)),
                ("Tindices", Attr::Type(DType::Int64)),
                ("Taxis", Attr::Type(DType::Int32)),
            ],
            st.clone(),
        )?;
        let one = ctx.const_tensor(&sub(&base, "one"), Tensor::scalar(1i64))?;
        ctx.op1(
            "SelectV2",
            &sub(&base, "target"),
            &[&named, &one, &gathered],
            &[t(DType::Int64)],
            st,
        )?
    };
    let logical = Shape::unknown_dims(out_rank);
    let y = ctx.op1(
        "Reshape",
        &base,
        &[&xv, &target],
        &[t(xv.dtype()), ("Tshape", Attr::Type(DType::Int64))],
        logical.clone(),
    )?;
    ctx.set_plain(output0(ctx, node)?, y, logical);
    Ok(())
}

pub(super) fn squeeze(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    if let Some((axes, k)) = runtime_axes(ctx, node)? {
        return squeeze_at_run_time(ctx, node, x, axes, k);
    }
    let rank = rank_of(ctx, x)?;
    let shape = ctx.slot(x)?.shape.clone();
    let axes: Vec<usize> = match axes(ctx, node)? {
        Some(a) => a
            .iter()
            .map(|&a| normalize_axis(ctx, a, rank))
            .collect::<Result<_>>()?,
        None => match shape.dims() {
            Some(d) => (0..rank).filter(|&i| d[i] == 1).collect(),
            None => return Err(ctx.error("Squeeze without axes needs a known shape")),
        },
    };
    let dims: Option<Vec<i64>> = shape.dims().map(|d| {
        d.iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, &v)| v)
            .collect()
    });
    let out = output0(ctx, node)?;
    if let (Some(v), Some(d)) = (ctx.constant(x).cloned(), &dims) {
        let r = constant::reshape(&v, d).map_err(|e| ctx.error(e))?;
        ctx.set_constant(out, r);
        return Ok(());
    }
    let base = ctx.node_name(node);
    let xv = ctx.plain(x)?;
    let logical = dims.map_or_else(
        || Shape::unknown_dims(rank - axes.len()),
        |d| Shape::new(&d),
    );
    let y = ctx.op1(
        "Squeeze",
        &base,
        &[&xv],
        &[
            t(xv.dtype()),
            (
                "squeeze_dims",
                Attr::IntList(axes.iter().map(|&a| a as i64).collect()),
            ),
        ],
        logical.clone(),
    )?;
    ctx.set_plain(out, y, logical);
    Ok(())
}

pub(super) fn unsqueeze(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    if let Some((axes, k)) = runtime_axes(ctx, node)? {
        return unsqueeze_at_run_time(ctx, node, x, axes, k);
    }
    let rank = rank_of(ctx, x)?;
    let axes = axes(ctx, node)?.ok_or_else(|| ctx.error("axes are required"))?;
    let out_rank = rank + axes.len();
    let mut axes: Vec<usize> = axes
        .iter()
        .map(|&a| normalize_axis(ctx, a, out_rank))
        .collect::<Result<_>>()?;
    axes.sort_unstable();
    let shape = ctx.slot(x)?.shape.clone();
    let dims: Option<Vec<i64>> = shape.dims().map(|d| {
        let mut it = d.iter();
        (0..out_rank)
            .map(|i| {
                if axes.contains(&i) {
                    1
                } else {
                    it.next().copied().unwrap_or(-1)
                }
            })
            .collect()
    });
    let out = output0(ctx, node)?;
    if let (Some(v), Some(d)) = (ctx.constant(x).cloned(), &dims) {
        let r = constant::reshape(&v, d).map_err(|e| ctx.error(e))?;
        ctx.set_constant(out, r);
        return Ok(());
    }
    let base = ctx.node_name(node);
    let mut y = ctx.plain(x)?;
    let dtype = y.dtype();
    for (k, &a) in axes.iter().enumerate() {
        let axis = ctx.const_i32(&sub(&base, &format!("axis{k}")), &[a as i64])?;
        y = ctx.op1(
            "ExpandDims",
            &if k + 1 == axes.len() {
                base.clone()
            } else {
                sub(&base, &format!("expand{k}"))
            },
            &[&y, &axis],
            &[t(dtype), ("Tdim", Attr::Type(DType::Int32))],
            Shape::unknown(),
        )?;
    }
    let logical = dims.map_or_else(|| Shape::unknown_dims(out_rank), |d| Shape::new(&d));
    ctx.set_plain(out, y, logical);
    Ok(())
}
