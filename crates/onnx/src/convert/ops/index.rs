//! Indexed reads and writes: `GatherElements`, `GatherND`, `ScatterND`,
//! `ScatterElements` (and its old name `Scatter`).
//!
//! TensorFlow's `GatherNd` and `TensorScatter*` take full coordinates, so
//! the element-wise forms build them: for an index tensor of shape `S`,
//! coordinate `a` of element `p` is `p[a]` (an iota along axis `a`
//! broadcast to `S`), except along the ONNX `axis`, where it is the index
//! (negative ones counted from the end). Semantics:
//! `onnx/defs/tensor/defs.cc`.

use savedmodel_graph::{Attr, DType, Output, Shape};

use super::build::{Builder, t};
use super::{Converter, normalize_axis, output0, rank_of, required_input};
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "GatherElements" => gather_elements,
        "GatherND" => gather_nd,
        "ScatterND" => scatter_nd,
        "ScatterElements" | "Scatter" => scatter_elements,
        _ => return None,
    };
    Some(f)
}

/// `index` with negative entries counted from the end of `dim` (scalar).
fn wrap_negative(b: &mut Builder<'_>, index: &Output, dim: &Output) -> Result<Output> {
    let zero = b.i64(0)?;
    let negative = b.op(
        "Less",
        &[index, &zero],
        &[t(DType::Int64)],
        index.shape().clone(),
    )?;
    let wrapped = b.bin("AddV2", index, dim)?;
    b.select(&negative, &wrapped, index)
}

/// An iota along axis `a` of a rank-`rank` tensor, broadcast to `shape`.
fn iota(b: &mut Builder<'_>, shape: &Output, a: usize, rank: usize) -> Result<Output> {
    let zero = b.i64(0)?;
    let one = b.i64(1)?;
    let n = b.element(shape, a as i64)?;
    let r = b.range(&zero, &n, &one)?;
    let mut dims = vec![1i64; rank];
    dims[a] = -1;
    let r = b.reshape(&r, &dims)?;
    b.op(
        "BroadcastTo",
        &[&r, shape],
        &[t(DType::Int64), ("Tidx", Attr::Type(DType::Int64))],
        Shape::unknown_dims(rank),
    )
}

/// The full coordinates `[S..., rank]` of the element-wise ops: iotas,
/// with `index` (of shape `S`) along `axis`.
fn element_coordinates(
    b: &mut Builder<'_>,
    data: &Output,
    index: &Output,
    axis: usize,
    rank: usize,
) -> Result<Output> {
    let shape = b.shape(index)?;
    let data_shape = b.shape(data)?;
    let dim = b.element(&data_shape, axis as i64)?;
    let index = wrap_negative(b, index, &dim)?;
    let mut parts = Vec::with_capacity(rank);
    for a in 0..rank {
        if a == axis {
            parts.push(index.clone());
        } else {
            parts.push(iota(b, &shape, a, rank)?);
        }
    }
    let refs: Vec<&Output> = parts.iter().collect();
    b.stack(&refs, -1)
}

fn gather_elements(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let idx = required_input(ctx, node, 1)?;
    let rank = rank_of(ctx, x)?;
    if rank_of(ctx, idx)? != rank {
        return Err(ctx.error("data and indices differ in rank"));
    }
    let axis = normalize_axis(ctx, node.attr_i_or("axis", 0)?, rank)?;
    let out = output0(ctx, node)?;
    let shape = ctx.slot(idx)?.shape.clone();
    let mut b = Builder::new(ctx, node);
    let xv = b.ctx.plain(x)?;
    let iv = b.int64_input(idx)?;
    let coords = element_coordinates(&mut b, &xv, &iv, axis, rank)?;
    let y = b.op(
        "GatherNd",
        &[&xv, &coords],
        &[
            ("Tparams", Attr::Type(xv.dtype())),
            ("Tindices", Attr::Type(DType::Int64)),
        ],
        shape.clone(),
    )?;
    ctx.set_plain(out, y, shape);
    Ok(())
}

fn gather_nd(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let idx = required_input(ctx, node, 1)?;
    let x_rank = rank_of(ctx, x)?;
    let i_rank = rank_of(ctx, idx)?;
    let batch = node.attr_i_or("batch_dims", 0)?;
    let batch = usize::try_from(batch)
        .ok()
        .filter(|&b| b < i_rank && b < x_rank)
        .ok_or_else(|| ctx.error(format!("batch_dims {batch} is out of range")))?;
    let x_dims = ctx.slot(x)?.shape.dims().map(<[i64]>::to_vec);
    let i_dims = ctx.slot(idx)?.shape.dims().map(<[i64]>::to_vec);
    let k = i_dims.as_ref().map_or(-1, |d| d[i_rank - 1]);
    let out = output0(ctx, node)?;
    let logical = match (&x_dims, &i_dims) {
        (Some(xd), Some(id)) if k >= 0 => {
            let mut d = id[..i_rank - 1].to_vec();
            d.extend_from_slice(xd.get(batch + k as usize..).unwrap_or(&[]));
            Shape::new(&d)
        }
        _ => Shape::unknown(),
    };
    if k < 0 || k as usize > x_rank - batch {
        return Err(ctx.error(format!(
            "the last dimension of the indices ({k}) must be known and at most {}",
            x_rank - batch
        )));
    }
    let mut b = Builder::new(ctx, node);
    let xv = b.ctx.plain(x)?;
    let mut iv = b.int64_input(idx)?;
    // Negative indices count from the end of their dimension.
    let xs = b.shape(&xv)?;
    let which = b.i64s(&(batch as i64..batch as i64 + k).collect::<Vec<_>>())?;
    let dims = b.gather(&xs, &which, 0, Shape::new(&[k]))?;
    iv = wrap_negative(&mut b, &iv, &dims)?;
    if batch > 0 {
        // Prepend each element's batch coordinates to its index tuple.
        let is = b.shape(&iv)?;
        let keep: Vec<i64> = (0..i_rank as i64 - 1).collect();
        let keep = b.i64s(&keep)?;
        let outer = b.gather(&is, &keep, 0, Shape::new(&[i_rank as i64 - 1]))?;
        let mut parts = Vec::new();
        for a in 0..batch {
            parts.push(iota(&mut b, &outer, a, i_rank - 1)?);
        }
        let refs: Vec<&Output> = parts.iter().collect();
        let coords = b.stack(&refs, -1)?;
        iv = b.concat(&[&coords, &iv], -1)?;
    }
    let y = b.op(
        "GatherNd",
        &[&xv, &iv],
        &[
            ("Tparams", Attr::Type(xv.dtype())),
            ("Tindices", Attr::Type(DType::Int64)),
        ],
        logical.clone(),
    )?;
    ctx.set_plain(out, y, logical);
    Ok(())
}

/// The scatter of reduction `mul`, which TensorFlow has no
/// `TensorScatter*` op for ([`scatter_multiply`]).
const MULTIPLY: &str = "mul";

/// The `TensorScatter*` op of an ONNX `reduction`.
fn scatter_op(ctx: &Ctx, node: &NodeView<'_>) -> Result<&'static str> {
    match node.attr_s_or("reduction", "none")? {
        "none" => Ok("TensorScatterUpdate"),
        "add" => Ok("TensorScatterAdd"),
        "max" => Ok("TensorScatterMax"),
        "min" => Ok("TensorScatterMin"),
        "mul" => Ok(MULTIPLY),
        other => Err(ctx.error(format!("reduction {other:?} is not supported"))),
    }
}

/// Scatters `updates` into `x` at `coords` (`[..., k]`, addressing the
/// first `k` axes of `x`, whose dims `dims` has).
fn scatter(
    b: &mut Builder<'_>,
    op: &str,
    x: &Output,
    coords: &Output,
    updates: &Output,
    dims: Option<&[i64]>,
    k: usize,
) -> Result<Output> {
    let shape = dims.map_or_else(Shape::unknown, Shape::new);
    if op == MULTIPLY {
        let dims = dims.ok_or_else(|| b.ctx.error("reduction mul needs a known data shape"))?;
        return scatter_multiply(b, x, coords, updates, dims, k);
    }
    b.op(
        op,
        &[x, coords, updates],
        &[t(x.dtype()), ("Tindices", Attr::Type(DType::Int64))],
        shape,
    )
}

fn scatter_nd(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let idx = required_input(ctx, node, 1)?;
    let upd = required_input(ctx, node, 2)?;
    let op = scatter_op(ctx, node)?;
    let out = output0(ctx, node)?;
    let shape = ctx.slot(x)?.shape.clone();
    let k = ctx.slot(idx)?.shape.dims().and_then(|d| d.last().copied());
    let k = usize::try_from(k.unwrap_or(-1))
        .map_err(|_| ctx.error("the last dimension of the indices must be known"))?;
    let mut b = Builder::new(ctx, node);
    let xv = b.ctx.plain(x)?;
    let iv = b.int64_input(idx)?;
    let uv = b.ctx.plain(upd)?;
    let y = scatter(&mut b, op, &xv, &iv, &uv, shape.dims(), k)?;
    ctx.set_plain(out, y, shape);
    Ok(())
}

fn scatter_elements(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let idx = required_input(ctx, node, 1)?;
    let upd = required_input(ctx, node, 2)?;
    let rank = rank_of(ctx, x)?;
    let axis = normalize_axis(ctx, node.attr_i_or("axis", 0)?, rank)?;
    let op = scatter_op(ctx, node)?;
    let out = output0(ctx, node)?;
    let shape = ctx.slot(x)?.shape.clone();
    let mut b = Builder::new(ctx, node);
    let xv = b.ctx.plain(x)?;
    let iv = b.int64_input(idx)?;
    let uv = b.ctx.plain(upd)?;
    let coords = element_coordinates(&mut b, &xv, &iv, axis, rank)?;
    let y = scatter(&mut b, op, &xv, &coords, &uv, shape.dims(), rank)?;
    ctx.set_plain(out, y, shape);
    Ok(())
}

/// Reduction `mul`: the product of the updates landing on each addressed
/// slice (`UnsortedSegmentProd` over the slices' row-major numbers, 1
/// where none lands), times `x`.
fn scatter_multiply(
    b: &mut Builder<'_>,
    x: &Output,
    coords: &Output,
    updates: &Output,
    dims: &[i64],
    k: usize,
) -> Result<Output> {
    let (head, rest) = dims.split_at(k.min(dims.len()));
    if dims.iter().any(|&d| d < 0) {
        return Err(b.ctx.error("reduction mul needs a known data shape"));
    }
    let mut strides = vec![1i64; head.len()];
    for a in (0..head.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1].saturating_mul(head[a + 1]);
    }
    let product = |d: &[i64]| d.iter().try_fold(1i64, |acc, &v| acc.checked_mul(v));
    let (Some(slices), Some(slice_size)) = (product(head), product(rest)) else {
        return Err(b.ctx.error("the data shape overflows int64"));
    };
    let strides = b.i64s(&strides)?;
    let scaled = b.bin("Mul", coords, &strides)?;
    let last = b.tensor(savedmodel_graph::Tensor::scalar(-1i32))?;
    let number = b.op(
        "Sum",
        &[&scaled, &last],
        &[
            t(DType::Int64),
            ("Tidx", Attr::Type(DType::Int32)),
            ("keep_dims", Attr::Bool(false)),
        ],
        Shape::unknown(),
    )?;
    let number = b.reshape(&number, &[-1])?;
    let rows = b.reshape(updates, &[-1, slice_size])?;
    let count = b.i64(slices)?;
    let products = b.op(
        "UnsortedSegmentProd",
        &[&rows, &number, &count],
        &[
            t(x.dtype()),
            ("Tindices", Attr::Type(DType::Int64)),
            ("Tnumsegments", Attr::Type(DType::Int64)),
        ],
        Shape::new(&[slices, slice_size]),
    )?;
    let xr = b.reshape(x, &[slices, slice_size])?;
    let y = b.bin("Mul", &xr, &products)?;
    b.reshape(&y, dims)
}
