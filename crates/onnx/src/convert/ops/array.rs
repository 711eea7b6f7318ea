//! Array operators: broadcasting, tiling, ranges, depth/space
//! rearrangements, one-hot, non-zero indices, triangular masks, identity
//! matrices, sequence reversal and compression.
//!
//! Their parameters (shapes, repeats, depths) are ONNX inputs that
//! exporters usually compute from constants, so each converter folds what
//! it can; parameters only known when the model runs are handled in the
//! graph. Semantics follow `onnx/defs/tensor/defs.cc` (and the reference
//! implementations in `onnx/reference/ops/`).

use savedmodel_graph::{Attr, DType, Shape, Tensor};

use super::build::{Builder, t};
use super::{Converter, input_name, normalize_axis, output0, rank_of, required_input};
use crate::convert::constant;
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "Expand" => expand,
        "Tile" => tile,
        "Range" => range,
        "DepthToSpace" => depth_to_space,
        "SpaceToDepth" => space_to_depth,
        "OneHot" => one_hot,
        "NonZero" => non_zero,
        "Trilu" => trilu,
        "EyeLike" => eye_like,
        "ReverseSequence" => reverse_sequence,
        "Compress" => compress,
        _ => return None,
    };
    Some(f)
}

/// A parameter given as an attribute or an input: known at conversion
/// time, or an ONNX value computed when the model runs.
pub(super) enum Param<'a> {
    Known(Vec<i64>),
    Runtime(&'a str),
}

pub(super) fn param<'a>(ctx: &Ctx, name: &'a str) -> Result<Param<'a>> {
    match ctx.constant(name) {
        Some(v) => Ok(Param::Known(constant::to_i64(v).map_err(|e| ctx.error(e))?)),
        None => Ok(Param::Runtime(name)),
    }
}

/// The dims of ONNX value `name` (-1 unknown), its rank known.
pub(super) fn dims_of(ctx: &Ctx, name: &str) -> Result<Vec<i64>> {
    let rank = rank_of(ctx, name)?;
    Ok(ctx
        .slot(name)?
        .shape
        .dims()
        .map_or_else(|| vec![-1; rank], <[i64]>::to_vec))
}

fn expand(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let shape_name = required_input(ctx, node, 1)?;
    let out = output0(ctx, node)?;
    let dims = ctx.slot(x)?.shape.dims().map(<[i64]>::to_vec);
    let target = ctx
        .constant(shape_name)
        .map(|v| constant::to_i64(v).map_err(|e| ctx.error(e)))
        .transpose()?;
    let logical = match (&dims, &target) {
        (Some(d), Some(s)) => {
            Shape::new(&constant::broadcast_dims(d, s).map_err(|e| ctx.error(e))?)
        }
        (_, Some(s)) => Shape::unknown_dims(s.len()),
        _ => Shape::unknown(),
    };
    if let (Some(v), Some(out_dims)) = (ctx.constant(x).cloned(), logical.dims()) {
        if let Some(bytes) = v.bytes() {
            let n = out_dims.iter().try_fold(1i64, |acc, &d| acc.checked_mul(d));
            if n.is_some_and(|n| (0..=1 << 16).contains(&n)) {
                let size = v.dtype().element_size().unwrap_or(1);
                let index = constant::broadcast_index(v.shape(), out_dims);
                let data: Vec<u8> = index
                    .iter()
                    .flat_map(|&i| bytes[i * size..(i + 1) * size].iter().copied())
                    .collect();
                let r = Tensor::from_bytes(v.dtype(), out_dims, data)
                    .map_err(|e| ctx.build_error(e))?;
                ctx.set_constant(out, r);
                return Ok(());
            }
        }
    }
    let mut b = Builder::new(ctx, node);
    let xv = b.ctx.plain(x)?;
    // ONNX's Expand broadcasts both ways: a 1 in the shape keeps x's dim.
    let full = match logical.dims().filter(|d| d.iter().all(|&v| v >= 0)) {
        Some(d) => b.i64s(d)?,
        None => {
            let s = b.int64_input(shape_name)?;
            let xs = b.shape(&xv)?;
            b.op(
                "BroadcastArgs",
                &[&xs, &s],
                &[t(DType::Int64)],
                Shape::unknown_dims(1),
            )?
        }
    };
    let y = b.op(
        "BroadcastTo",
        &[&xv, &full],
        &[t(xv.dtype()), ("Tidx", Attr::Type(DType::Int64))],
        logical.clone(),
    )?;
    ctx.set_plain(out, y, logical);
    Ok(())
}

fn tile(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let repeats = required_input(ctx, node, 1)?;
    let dims = dims_of(ctx, x)?;
    let out = output0(ctx, node)?;
    let logical = match ctx.constant(repeats) {
        Some(r) => {
            let r = constant::to_i64(r).map_err(|e| ctx.error(e))?;
            Shape::new(
                &dims
                    .iter()
                    .zip(&r)
                    .map(|(&d, &k)| if d < 0 { -1 } else { d.saturating_mul(k) })
                    .collect::<Vec<_>>(),
            )
        }
        None => Shape::unknown_dims(dims.len()),
    };
    let mut b = Builder::new(ctx, node);
    let xv = b.ctx.plain(x)?;
    let r = b.int64_input(repeats)?;
    let y = b.op(
        "Tile",
        &[&xv, &r],
        &[t(xv.dtype()), ("Tmultiples", Attr::Type(DType::Int64))],
        logical.clone(),
    )?;
    ctx.set_plain(out, y, logical);
    Ok(())
}

fn range(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let names = [
        required_input(ctx, node, 0)?,
        required_input(ctx, node, 1)?,
        required_input(ctx, node, 2)?,
    ];
    let out = output0(ctx, node)?;
    let dtype = ctx.slot(names[0])?.dtype;
    let known: Option<Vec<f64>> = names
        .iter()
        .map(|n| {
            ctx.constant(n)
                .and_then(|v| constant::to_f64(v).ok())
                .and_then(|v| v.first().copied())
        })
        .collect();
    if let Some(k) = known {
        let (start, limit, delta) = (k[0], k[1], k[2]);
        if delta == 0.0 {
            return Err(ctx.error("delta is 0"));
        }
        let n = ((limit - start) / delta).ceil().max(0.0);
        if n <= f64::from(1 << 20) {
            let n = n as usize;
            let folded = if constant::is_int(dtype) {
                let ints = names
                    .iter()
                    .map(|name| {
                        ctx.constant(name)
                            .and_then(|v| constant::to_i64(v).ok())
                            .and_then(|v| v.first().copied())
                            .unwrap_or(0)
                    })
                    .collect::<Vec<_>>();
                let v: Option<Vec<i64>> = (0..n as i64)
                    .map(|i| i.checked_mul(ints[2]).and_then(|s| s.checked_add(ints[0])))
                    .collect();
                v.ok_or_else(|| "the range overflows int64".to_owned())
                    .and_then(|v| constant::from_i64(dtype, &[n as i64], &v))
            } else {
                let v: Vec<f64> = (0..n).map(|i| start + i as f64 * delta).collect();
                constant::from_f64(dtype, &[n as i64], &v)
            };
            let r = folded.map_err(|e| ctx.error(e))?;
            ctx.set_constant(out, r);
            return Ok(());
        }
    }
    let mut b = Builder::new(ctx, node);
    let mut v = Vec::new();
    for n in names {
        let x = b.ctx.plain(n)?;
        v.push(b.reshape(&x, &[])?);
    }
    let y = b.range(&v[0], &v[1], &v[2])?;
    ctx.set_plain(out, y, Shape::unknown_dims(1));
    Ok(())
}

fn block_size(ctx: &Ctx, node: &NodeView<'_>) -> Result<i64> {
    let bs = node.required("blocksize", node.attr_i("blocksize")?)?;
    if !(1..=1 << 12).contains(&bs) {
        return Err(ctx.error(format!("blocksize {bs} is out of range")));
    }
    Ok(bs)
}

fn depth_to_space(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    if rank_of(ctx, x)? != 4 {
        return Err(ctx.error("DepthToSpace needs a 4-D input"));
    }
    let bs = block_size(ctx, node)?;
    let mode = node.attr_s_or("mode", "DCR")?;
    let out = output0(ctx, node)?;
    let d = dims_of(ctx, x)?;
    let c = d[1];
    let scaled = |v: i64| if v < 0 { -1 } else { v.saturating_mul(bs) };
    let logical = Shape::new(&[
        d[0],
        if c < 0 { -1 } else { c / (bs * bs) },
        scaled(d[2]),
        scaled(d[3]),
    ]);
    let mut b = Builder::new(ctx, node);
    let mut xv = b.ctx.channels_last(x)?;
    match mode {
        "DCR" => {}
        "CRD" => {
            // TensorFlow's DepthToSpace is DCR: channel (i*bs + j)*C' + c.
            // CRD numbers them c*bs*bs + i*bs + j; reorder the channels.
            if !(0..=1 << 20).contains(&c) {
                return Err(b
                    .ctx
                    .error("CRD mode needs the channel count (at most 2^20)"));
            }
            let cp = c / (bs * bs);
            let order: Vec<i64> = (0..bs * bs)
                .flat_map(|ij| (0..cp).map(move |k| k * bs * bs + ij))
                .collect();
            let order = b.i64s(&order)?;
            xv = b.gather(&xv, &order, 3, xv.shape().clone())?;
        }
        other => return Err(b.ctx.error(format!("mode {other:?} is not supported"))),
    }
    let y = b.op(
        "DepthToSpace",
        &[&xv],
        &[
            t(xv.dtype()),
            ("block_size", Attr::Int(bs)),
            ("data_format", Attr::Str(b"NHWC".to_vec())),
        ],
        Shape::unknown_dims(4),
    )?;
    ctx.set_channels_last(out, y, logical);
    Ok(())
}

fn space_to_depth(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    if rank_of(ctx, x)? != 4 {
        return Err(ctx.error("SpaceToDepth needs a 4-D input"));
    }
    let bs = block_size(ctx, node)?;
    let mode = node.attr_s_or("mode", "DCR")?;
    let out = output0(ctx, node)?;
    let d = dims_of(ctx, x)?;
    let down = |v: i64| if v < 0 { -1 } else { v / bs };
    let logical = Shape::new(&[
        d[0],
        if d[1] < 0 {
            -1
        } else {
            d[1].saturating_mul(bs * bs)
        },
        down(d[2]),
        down(d[3]),
    ]);
    let mut b = Builder::new(ctx, node);
    let xv = b.ctx.channels_last(x)?;
    // ONNX's channel order (block row, block column, channel) is
    // TensorFlow's.
    let mut y = b.op(
        "SpaceToDepth",
        &[&xv],
        &[
            t(xv.dtype()),
            ("block_size", Attr::Int(bs)),
            ("data_format", Attr::Str(b"NHWC".to_vec())),
        ],
        Shape::unknown_dims(4),
    )?;
    match mode {
        "DCR" => {}
        "CRD" => {
            // CRD (opset 28) numbers output channels c*bs*bs + i*bs + j;
            // TensorFlow gives (i*bs + j)*C + c: reorder them.
            let c = d[1];
            if !(0..=1 << 20).contains(&c.saturating_mul(bs * bs)) {
                return Err(b
                    .ctx
                    .error("CRD mode needs the channel count (at most 2^20)"));
            }
            let order: Vec<i64> = (0..c)
                .flat_map(|k| (0..bs * bs).map(move |ij| ij * c + k))
                .collect();
            let order = b.i64s(&order)?;
            y = b.gather(&y, &order, 3, Shape::unknown_dims(4))?;
        }
        other => return Err(b.ctx.error(format!("mode {other:?} is not supported"))),
    }
    ctx.set_channels_last(out, y, logical);
    Ok(())
}

fn one_hot(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let indices = required_input(ctx, node, 0)?;
    let depth = required_input(ctx, node, 1)?;
    let values = required_input(ctx, node, 2)?;
    let rank = rank_of(ctx, indices)?;
    let axis = node.attr_i_or("axis", -1)?;
    let axis = normalize_axis(ctx, axis, rank + 1)?;
    let out = output0(ctx, node)?;
    let in_dims = dims_of(ctx, indices)?;
    let depth_known = ctx
        .constant(depth)
        .and_then(|v| constant::to_f64(v).ok())
        .and_then(|v| v.first().copied());
    let mut out_dims = in_dims.clone();
    out_dims.insert(axis, depth_known.map_or(-1, |d| d as i64));
    let logical = Shape::new(&out_dims);
    let mut b = Builder::new(ctx, node);
    let iv = b.ctx.plain(indices)?;
    let iv = b.cast(&iv, DType::Int64)?;
    let dv = b.ctx.plain(depth)?;
    let dv = b.reshape(&dv, &[])?;
    let dv = b.cast(&dv, DType::Int64)?;
    // ONNX counts negative indices from the end; TensorFlow gives an
    // all-off row for them, as both do for indices out of range.
    let zero = b.i64(0)?;
    let negative = b.op("Less", &[&iv, &zero], &[t(DType::Int64)], Shape::unknown())?;
    let wrapped = b.bin("AddV2", &iv, &dv)?;
    let iv = b.select(&negative, &wrapped, &iv)?;
    let depth32 = b.cast(&dv, DType::Int32)?;
    let vv = b.ctx.plain(values)?;
    let off = b.element(&vv, 0)?;
    let on = b.element(&vv, 1)?;
    let y = b.op(
        "OneHot",
        &[&iv, &depth32, &on, &off],
        &[
            t(vv.dtype()),
            ("TI", Attr::Type(DType::Int64)),
            ("axis", Attr::Int(axis as i64)),
        ],
        logical.clone(),
    )?;
    ctx.set_plain(out, y, logical);
    Ok(())
}

fn non_zero(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x)?;
    let out = output0(ctx, node)?;
    let mut b = Builder::new(ctx, node);
    let xv = b.ctx.plain(x)?;
    let xv = if rank == 0 { b.reshape(&xv, &[1])? } else { xv };
    let found = b.op(
        "Where",
        &[&xv],
        &[t(xv.dtype())],
        Shape::new(&[-1, rank.max(1) as i64]),
    )?;
    let perm = b.tensor(Tensor::vector(&[1i32, 0]))?;
    let y = b.op(
        "Transpose",
        &[&found, &perm],
        &[t(DType::Int64), ("Tperm", Attr::Type(DType::Int32))],
        Shape::new(&[rank.max(1) as i64, -1]),
    )?;
    let logical = Shape::new(&[rank as i64, -1]);
    let y = if rank == 0 {
        b.reshape(&y, &[0, -1])?
    } else {
        y
    };
    ctx.set_plain(out, y, logical);
    Ok(())
}

fn trilu(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x)?;
    if rank < 2 {
        return Err(ctx.error("Trilu needs a value of rank 2 or more"));
    }
    let upper = node.attr_i_or("upper", 1)? != 0;
    let k = input_name(node, 1);
    let out = output0(ctx, node)?;
    let shape = ctx.slot(x)?.shape.clone();
    let mut b = Builder::new(ctx, node);
    let xv = b.ctx.plain(x)?;
    let k = match k {
        Some(n) => {
            let v = b.int64_input(n)?;
            b.reshape(&v, &[])?
        }
        None => b.i64(0)?,
    };
    // Keep element (i, j) when j - i >= k (upper) or j - i <= k (lower).
    let s = b.shape(&xv)?;
    let rows = b.element(&s, rank as i64 - 2)?;
    let cols = b.element(&s, rank as i64 - 1)?;
    let zero = b.i64(0)?;
    let one = b.i64(1)?;
    let r = b.range(&zero, &rows, &one)?;
    let r = b.reshape(&r, &[-1, 1])?;
    let c = b.range(&zero, &cols, &one)?;
    let c = b.reshape(&c, &[1, -1])?;
    let diff = b.bin("Sub", &c, &r)?;
    let keep = b.op(
        if upper { "GreaterEqual" } else { "LessEqual" },
        &[&diff, &k],
        &[t(DType::Int64)],
        Shape::unknown_dims(2),
    )?;
    let zeros = b.un("ZerosLike", &xv)?;
    let y = b.select(&keep, &xv, &zeros)?;
    ctx.set_plain(out, y, shape);
    Ok(())
}

fn eye_like(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let out = output0(ctx, node)?;
    let dims = dims_of(ctx, x)?;
    if dims.len() != 2 || dims.iter().any(|&d| d < 0) {
        return Err(ctx.error("EyeLike needs a 2-D input of known shape"));
    }
    let dtype = match node.attr_i("dtype")? {
        Some(d) => crate::dtype_from_onnx(d as i32).map_err(|e| ctx.error(e))?,
        None => ctx.slot(x)?.dtype,
    };
    let k = node.attr_i_or("k", 0)?;
    let (rows, cols) = (dims[0], dims[1]);
    if rows.checked_mul(cols).is_none_or(|n| n > 1 << 22) {
        return Err(ctx.error("EyeLike output is too large to fold"));
    }
    let values: Vec<f64> = (0..rows)
        .flat_map(|i| (0..cols).map(move |j| if j - i == k { 1.0 } else { 0.0 }))
        .collect();
    let v = constant::from_f64(dtype, &dims, &values).map_err(|e| ctx.error(e))?;
    ctx.set_constant(out, v);
    Ok(())
}

fn reverse_sequence(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let lens = required_input(ctx, node, 1)?;
    let rank = rank_of(ctx, x)?;
    let batch = normalize_axis(ctx, node.attr_i_or("batch_axis", 1)?, rank)?;
    let time = normalize_axis(ctx, node.attr_i_or("time_axis", 0)?, rank)?;
    let out = output0(ctx, node)?;
    let shape = ctx.slot(x)?.shape.clone();
    let mut b = Builder::new(ctx, node);
    let xv = b.ctx.plain(x)?;
    let lv = b.int64_input(lens)?;
    let y = b.op(
        "ReverseSequence",
        &[&xv, &lv],
        &[
            ("seq_dim", Attr::Int(time as i64)),
            ("batch_dim", Attr::Int(batch as i64)),
            t(xv.dtype()),
            ("Tlen", Attr::Type(DType::Int64)),
        ],
        shape.clone(),
    )?;
    ctx.set_plain(out, y, shape);
    Ok(())
}

fn compress(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let cond = required_input(ctx, node, 1)?;
    let rank = rank_of(ctx, x)?;
    let out = output0(ctx, node)?;
    let axis = node
        .attr_i("axis")?
        .map(|a| normalize_axis(ctx, a, rank))
        .transpose()?;
    let dims = dims_of(ctx, x)?;
    let mut b = Builder::new(ctx, node);
    let mut xv = b.ctx.plain(x)?;
    let (axis, logical) = match axis {
        Some(a) => {
            let mut d = dims.clone();
            d[a] = -1;
            (a, Shape::new(&d))
        }
        None => {
            xv = b.reshape(&xv, &[-1])?;
            (0, Shape::new(&[-1]))
        }
    };
    let cv = b.ctx.plain(cond)?;
    let cv = b.cast(&cv, DType::Bool)?;
    let found = b.op("Where", &[&cv], &[t(DType::Bool)], Shape::new(&[-1, 1]))?;
    let index = b.reshape(&found, &[-1])?;
    let y = b.gather(&xv, &index, axis, logical.clone())?;
    ctx.set_plain(out, y, logical);
    Ok(())
}
