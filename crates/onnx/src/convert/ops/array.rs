//! Array operators: slicing, splitting, padding, broadcasting, tiling,
//! ranges, depth/space rearrangements, one-hot, triangular masks, identity
//! matrices, sequence reversal and compression.
//!
//! Their parameters (starts, pads, repeats, shapes) are ONNX inputs that
//! exporters usually compute from constants, so each converter folds what
//! it can; parameters only known when the model runs are handled in the
//! graph. Semantics follow `onnx/defs/tensor/defs.cc` (and the reference
//! implementations in `onnx/reference/ops/`).

use savedmodel_graph::{Attr, DType, Shape, Tensor};

use super::build::{Builder, t};
use super::{Converter, input_name, normalize_axis, output_name, output0, rank_of, required_input};
use crate::convert::constant;
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "Slice" => slice,
        "Split" => split,
        "Pad" => pad,
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
enum Param<'a> {
    Known(Vec<i64>),
    Runtime(&'a str),
}

fn param<'a>(ctx: &Ctx, name: &'a str) -> Result<Param<'a>> {
    match ctx.constant(name) {
        Some(v) => Ok(Param::Known(constant::to_i64(v).map_err(|e| ctx.error(e))?)),
        None => Ok(Param::Runtime(name)),
    }
}

/// The dims of ONNX value `name` (-1 unknown), its rank known.
fn dims_of(ctx: &Ctx, name: &str) -> Result<Vec<i64>> {
    let rank = rank_of(ctx, name)?;
    Ok(ctx
        .slot(name)?
        .shape
        .dims()
        .map_or_else(|| vec![-1; rank], <[i64]>::to_vec))
}

/// For each element of a tensor made by picking `picks[axis]` along each
/// axis of `x` (row-major), its bytes: a fold of slicing and gathering.
fn take(x: &Tensor, picks: &[Vec<usize>]) -> std::result::Result<Tensor, String> {
    let bytes = x
        .bytes()
        .ok_or_else(|| "strings are not folded".to_owned())?;
    let size = x.dtype().element_size().unwrap_or(1);
    let shape = x.shape();
    let mut strides = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1].max(0) as usize;
    }
    let out_shape: Vec<i64> = picks.iter().map(|p| p.len() as i64).collect();
    let total: usize = picks.iter().map(Vec::len).product();
    let mut out = Vec::with_capacity(total * size);
    let mut counter = vec![0usize; picks.len()];
    for _ in 0..total {
        let offset: usize = counter
            .iter()
            .enumerate()
            .map(|(a, &c)| picks[a][c] * strides[a])
            .sum();
        let at = offset * size;
        out.extend_from_slice(
            bytes
                .get(at..at + size)
                .ok_or_else(|| "index out of range".to_owned())?,
        );
        for a in (0..picks.len()).rev() {
            counter[a] += 1;
            if counter[a] < picks[a].len() {
                break;
            }
            counter[a] = 0;
        }
    }
    Tensor::from_bytes(x.dtype(), &out_shape, out).map_err(|e| e.to_string())
}

/// ONNX's clamping of one axis of a `Slice` with a known dimension `dim`:
/// the first index, the exclusive end (-1 meaning "through index 0" for a
/// negative step) and the number of elements.
fn slice_axis(start: i64, end: i64, step: i64, dim: i64) -> (i64, i64, i64) {
    let fwd = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
    let (s, e) = (fwd(start), fwd(end));
    if step > 0 {
        let (s, e) = (s.clamp(0, dim), e.clamp(0, dim));
        let n = if e > s { (e - s + step - 1) / step } else { 0 };
        (s, e, n)
    } else {
        let (s, e) = (s.clamp(0, (dim - 1).max(0)), e.clamp(-1, dim - 1));
        let n = if s > e && dim > 0 {
            (s - e + (-step) - 1) / (-step)
        } else {
            0
        };
        (s, e, n)
    }
}

fn slice(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x)?;
    let dims = dims_of(ctx, x)?;
    let out = output0(ctx, node)?;
    let (starts, ends, axes, steps) = if node.opset_version()? < 10 {
        let attr = |n: &str| -> Result<Option<Param<'_>>> {
            Ok(node.attr_ints(n)?.map(|v| Param::Known(v.to_vec())))
        };
        (
            node.required("starts", attr("starts")?)?,
            node.required("ends", attr("ends")?)?,
            attr("axes")?,
            None,
        )
    } else {
        let opt = |i: usize| -> Result<Option<Param<'_>>> {
            input_name(node, i).map(|n| param(ctx, n)).transpose()
        };
        (
            param(ctx, required_input(ctx, node, 1)?)?,
            param(ctx, required_input(ctx, node, 2)?)?,
            opt(3)?,
            opt(4)?,
        )
    };
    if let (Param::Known(starts), Param::Known(ends)) = (&starts, &ends) {
        let n = starts.len();
        let axes = match &axes {
            None => Some((0..n as i64).collect()),
            Some(Param::Known(a)) => Some(a.clone()),
            Some(Param::Runtime(_)) => None,
        };
        let steps = match &steps {
            None => Some(vec![1; n]),
            Some(Param::Known(s)) => Some(s.clone()),
            Some(Param::Runtime(_)) => None,
        };
        if let (Some(axes), Some(steps)) = (axes, steps) {
            return slice_known(ctx, node, x, &dims, starts, ends, &axes, &steps);
        }
    }
    // Parameters known only when the model runs: scatter them into
    // full-rank begin/end/strides (unnamed axes take everything), and
    // apply ONNX's one clamping rule TensorFlow lacks (a start below
    // -dim is 0 for negative steps too).
    let count = |p: &Param<'_>| -> Result<i64> {
        match p {
            Param::Known(v) => Ok(v.len() as i64),
            Param::Runtime(n) => Ok(ctx.slot(n)?.shape.dim(0)),
        }
    };
    let n = count(&starts)?;
    let mut b = Builder::new(ctx, node);
    let as_tensor = |b: &mut Builder<'_>, p: Option<Param<'_>>, fill: i64| -> Result<_> {
        match p {
            Some(Param::Known(v)) => b.i64s(&v),
            Some(Param::Runtime(name)) => b.int64_input(name),
            None if n >= 0 => b.i64s(&vec![fill; n as usize]),
            None => Err(b.ctx.error("the number of sliced axes is unknown")),
        }
    };
    let starts = as_tensor(&mut b, Some(starts), 0)?;
    let ends = as_tensor(&mut b, Some(ends), 0)?;
    let steps = as_tensor(&mut b, steps, 1)?;
    let axes = match axes {
        Some(a) => {
            let a = as_tensor(&mut b, Some(a), 0)?;
            let r = b.i64(rank as i64)?;
            b.bin("FloorMod", &a, &r)?
        }
        None if n >= 0 => b.i64s(&(0..n).collect::<Vec<_>>())?,
        None => return Err(b.ctx.error("the number of sliced axes is unknown")),
    };
    let xv = b.ctx.plain(x)?;
    let index = b.reshape(&axes, &[-1, 1])?;
    let shape = b.shape(&xv)?;
    let zeros = b.i64s(&vec![0; rank])?;
    let ones = b.i64s(&vec![1; rank])?;
    let scatter = |b: &mut Builder<'_>, into: &savedmodel_graph::Output, v| {
        b.op(
            "TensorScatterUpdate",
            &[into, &index, v],
            &[t(DType::Int64), ("Tindices", Attr::Type(DType::Int64))],
            Shape::new(&[rank as i64]),
        )
    };
    let begin = scatter(&mut b, &zeros, &starts)?;
    let end = scatter(&mut b, &shape, &ends)?;
    let strides = scatter(&mut b, &ones, &steps)?;
    let neg_dims = b.un("Neg", &shape)?;
    let below = b.op(
        "Less",
        &[&begin, &neg_dims],
        &[t(DType::Int64)],
        Shape::new(&[rank as i64]),
    )?;
    let begin = b.select(&below, &zeros, &begin)?;
    let logical = Shape::unknown_dims(rank);
    let y = strided_slice(&mut b, &xv, &begin, &end, &strides, 0, 0, logical.clone())?;
    ctx.set_plain(out, y, logical);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn strided_slice(
    b: &mut Builder<'_>,
    x: &savedmodel_graph::Output,
    begin: &savedmodel_graph::Output,
    end: &savedmodel_graph::Output,
    strides: &savedmodel_graph::Output,
    begin_mask: i64,
    end_mask: i64,
    shape: Shape,
) -> Result<savedmodel_graph::Output> {
    b.op(
        "StridedSlice",
        &[x, begin, end, strides],
        &[
            t(x.dtype()),
            ("Index", Attr::Type(DType::Int64)),
            ("begin_mask", Attr::Int(begin_mask)),
            ("end_mask", Attr::Int(end_mask)),
            ("ellipsis_mask", Attr::Int(0)),
            ("new_axis_mask", Attr::Int(0)),
            ("shrink_axis_mask", Attr::Int(0)),
        ],
        shape,
    )
}

/// `Slice` with every parameter known: folded when `x` is known too, else
/// one `StridedSlice` with ONNX's clamping applied where the dimension is
/// known (TensorFlow's own clamping agrees with ONNX's elsewhere).
#[allow(clippy::too_many_arguments)]
fn slice_known(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    x: &str,
    dims: &[i64],
    starts: &[i64],
    ends: &[i64],
    axes: &[i64],
    steps: &[i64],
) -> Result<()> {
    let rank = dims.len();
    let out = output0(ctx, node)?;
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(ctx.error("starts, ends, axes and steps differ in length"));
    }
    let mut begin = vec![0i64; rank];
    let mut end = vec![0i64; rank];
    let mut stride = vec![1i64; rank];
    let (mut begin_mask, mut end_mask) = ((1i64 << rank) - 1, (1i64 << rank) - 1);
    let mut out_dims = dims.to_vec();
    let mut picks: Vec<Option<Vec<usize>>> = dims
        .iter()
        .map(|&d| (d >= 0).then(|| (0..d as usize).collect()))
        .collect();
    let mut seen = vec![false; rank];
    for i in 0..starts.len() {
        let a = normalize_axis(ctx, axes[i], rank)?;
        if std::mem::replace(&mut seen[a], true) {
            return Err(ctx.error(format!("axis {} is sliced twice", axes[i])));
        }
        let step = steps[i];
        if step == 0 {
            return Err(ctx.error("a step is 0"));
        }
        stride[a] = step;
        begin_mask &= !(1 << a);
        end_mask &= !(1 << a);
        let d = dims[a];
        if d >= 0 {
            let (s, e, n) = slice_axis(starts[i], ends[i], step, d);
            begin[a] = s;
            end[a] = e;
            if step < 0 && e < 0 {
                end_mask |= 1 << a;
            }
            out_dims[a] = n;
            picks[a] = Some((0..n).map(|k| (s + k * step) as usize).collect());
        } else {
            begin[a] = starts[i];
            end[a] = ends[i];
            out_dims[a] = -1;
        }
    }
    if let Some(v) = ctx.constant(x).cloned() {
        let picks: Option<Vec<Vec<usize>>> = picks.into_iter().collect();
        if let Some(p) = picks {
            if let Ok(r) = take(&v, &p) {
                ctx.set_constant(out, r);
                return Ok(());
            }
        }
    }
    let logical = Shape::new(&out_dims);
    let mut b = Builder::new(ctx, node);
    let xv = b.ctx.plain(x)?;
    let begin = b.i64s(&begin)?;
    let end = b.i64s(&end)?;
    let stride = b.i64s(&stride)?;
    let y = strided_slice(
        &mut b,
        &xv,
        &begin,
        &end,
        &stride,
        begin_mask,
        end_mask,
        logical.clone(),
    )?;
    ctx.set_plain(out, y, logical);
    Ok(())
}

fn split(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x)?;
    let dims = dims_of(ctx, x)?;
    let axis = normalize_axis(ctx, node.attr_i_or("axis", 0)?, rank)?;
    let opset = node.opset_version()?;
    let outputs = node.proto().output.len();
    let given: Option<Param<'_>> = if opset >= 13 {
        input_name(node, 1).map(|n| param(ctx, n)).transpose()?
    } else {
        node.attr_ints("split")?.map(|v| Param::Known(v.to_vec()))
    };
    let d = dims[axis];
    let sizes: Option<Param<'_>> = match given {
        Some(p) => Some(p),
        None => {
            let parts = if opset >= 18 {
                node.required("num_outputs", node.attr_i("num_outputs")?)?
            } else {
                outputs as i64
            };
            if parts < 1 {
                return Err(ctx.error(format!("cannot split into {parts} parts")));
            }
            if d >= 0 {
                let chunk = (d + parts - 1) / parts;
                let mut s: Vec<i64> = (0..parts)
                    .map(|k| (d - k * chunk).clamp(0, chunk))
                    .collect();
                // ONNX: the last chunk is the smaller one.
                s.retain(|&v| v > 0 || d == 0);
                Some(Param::Known(s))
            } else {
                None
            }
        }
    };
    if let Some(Param::Known(s)) = &sizes {
        if s.len() != outputs {
            return Err(ctx.error(format!("{} split sizes for {outputs} outputs", s.len())));
        }
    }
    let shapes: Vec<Shape> = (0..outputs)
        .map(|k| {
            let mut o = dims.clone();
            o[axis] = match &sizes {
                Some(Param::Known(s)) => s[k],
                _ => -1,
            };
            Shape::new(&o)
        })
        .collect();
    let mut b = Builder::new(ctx, node);
    let xv = b.ctx.plain(x)?;
    let dtype = xv.dtype();
    let parts = match sizes {
        Some(p) => {
            let s = match p {
                Param::Known(v) => b.i64s(&v)?,
                Param::Runtime(n) => b.int64_input(n)?,
            };
            let axis_t = b.tensor(Tensor::scalar(axis as i32))?;
            b.op_n(
                "SplitV",
                &[&xv, &s, &axis_t],
                &[
                    ("num_split", Attr::Int(outputs as i64)),
                    t(dtype),
                    ("Tlen", Attr::Type(DType::Int64)),
                ],
                shapes.clone(),
            )?
        }
        None => {
            let axis_t = b.tensor(Tensor::scalar(axis as i32))?;
            b.op_n(
                "Split",
                &[&axis_t, &xv],
                &[("num_split", Attr::Int(outputs as i64)), t(dtype)],
                shapes.clone(),
            )?
        }
    };
    for (k, part) in parts.into_iter().enumerate() {
        if let Some(name) = output_name(node, k) {
            ctx.set_plain(name, part, shapes[k].clone());
        }
    }
    Ok(())
}

fn pad(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x)?;
    let dims = dims_of(ctx, x)?;
    let out = output0(ctx, node)?;
    let mode = node.attr_s_or("mode", "constant")?;
    let opset = node.opset_version()?;
    let (pads, value, axes) = if opset < 11 {
        let pads = node
            .attr_ints("pads")?
            .or(node.attr_ints("paddings")?)
            .ok_or_else(|| ctx.error("attribute pads is required"))?;
        let value = f64::from(node.attr_f_or("value", 0.0)?);
        (Param::Known(pads.to_vec()), Some(value), None)
    } else {
        let pads = param(ctx, required_input(ctx, node, 1)?)?;
        let axes = input_name(node, 3).map(|n| param(ctx, n)).transpose()?;
        (pads, None, axes)
    };
    let value_input = if opset >= 11 {
        input_name(node, 2)
    } else {
        None
    };
    // The paddings as [rank, 2] (begin, end) pairs.
    let known_pairs: Option<Vec<(i64, i64)>> = match (&pads, &axes) {
        (Param::Known(p), None | Some(Param::Known(_))) => {
            let axes: Vec<usize> = match &axes {
                Some(Param::Known(a)) => a
                    .iter()
                    .map(|&a| normalize_axis(ctx, a, rank))
                    .collect::<Result<_>>()?,
                _ => (0..rank).collect(),
            };
            if p.len() != 2 * axes.len() {
                return Err(ctx.error(format!("{} pads for {} axes", p.len(), axes.len())));
            }
            let mut pairs = vec![(0, 0); rank];
            for (k, &a) in axes.iter().enumerate() {
                pairs[a] = (p[k], p[k + axes.len()]);
            }
            Some(pairs)
        }
        _ => None,
    };
    let logical = match &known_pairs {
        Some(pairs) => Shape::new(
            &dims
                .iter()
                .zip(pairs)
                .map(|(&d, &(s, e))| if d < 0 { -1 } else { d + s + e })
                .collect::<Vec<_>>(),
        ),
        None => Shape::unknown_dims(rank),
    };
    let mut b = Builder::new(ctx, node);
    let xv = b.ctx.plain(x)?;
    let dtype = xv.dtype();
    let paddings = match &known_pairs {
        Some(pairs) => {
            let flat: Vec<i64> = pairs.iter().flat_map(|&(s, e)| [s, e]).collect();
            b.tensor(Tensor::new(&[rank as i64, 2], &flat).map_err(|e| b.ctx.build_error(e))?)?
        }
        None => {
            let p = match &pads {
                Param::Known(v) => b.i64s(v)?,
                Param::Runtime(n) => b.int64_input(n)?,
            };
            let p = b.reshape(&p, &[2, -1])?;
            let perm = b.tensor(Tensor::vector(&[1i32, 0]))?;
            let pairs = b.op(
                "Transpose",
                &[&p, &perm],
                &[t(DType::Int64), ("Tperm", Attr::Type(DType::Int32))],
                Shape::unknown_dims(2),
            )?;
            match &axes {
                None => pairs,
                Some(a) => {
                    let a = match a {
                        Param::Known(v) => b.i64s(v)?,
                        Param::Runtime(n) => b.int64_input(n)?,
                    };
                    let r = b.i64(rank as i64)?;
                    let a = b.bin("FloorMod", &a, &r)?;
                    let index = b.reshape(&a, &[-1, 1])?;
                    let zeros = b.tensor(
                        Tensor::new(&[rank as i64, 2], &vec![0i64; 2 * rank])
                            .map_err(|e| b.ctx.build_error(e))?,
                    )?;
                    b.op(
                        "TensorScatterUpdate",
                        &[&zeros, &index, &pairs],
                        &[t(DType::Int64), ("Tindices", Attr::Type(DType::Int64))],
                        Shape::new(&[rank as i64, 2]),
                    )?
                }
            }
        }
    };
    let pad_attrs = |mode: Option<&str>| {
        let mut a = vec![t(dtype), ("Tpaddings", Attr::Type(DType::Int64))];
        if let Some(m) = mode {
            a.push(("mode", Attr::Str(m.as_bytes().to_vec())));
        }
        a
    };
    let y = match mode {
        "constant" => {
            let cv = match (value_input, value) {
                (Some(n), _) => {
                    let v = b.ctx.plain(n)?;
                    b.reshape(&v, &[])?
                }
                (None, v) => b.scalar(dtype, v.unwrap_or(0.0))?,
            };
            b.op(
                "PadV2",
                &[&xv, &paddings, &cv],
                &pad_attrs(None),
                logical.clone(),
            )?
        }
        "reflect" => b.op(
            "MirrorPad",
            &[&xv, &paddings],
            &pad_attrs(Some("REFLECT")),
            logical.clone(),
        )?,
        "edge" | "wrap" => {
            // Per padded axis, gather the source index of every output
            // position: clamped into range (edge) or wrapped around (wrap).
            let mut cur = xv.clone();
            for a in 0..rank {
                if known_pairs.as_ref().is_some_and(|p| p[a] == (0, 0)) {
                    continue;
                }
                let axis_pair = b.element(&paddings, a as i64)?;
                let before = b.element(&axis_pair, 0)?;
                let after = b.element(&axis_pair, 1)?;
                let shape = b.shape(&cur)?;
                let d = b.element(&shape, a as i64)?;
                let start = b.un("Neg", &before)?;
                let limit = b.bin("AddV2", &d, &after)?;
                let one = b.i64(1)?;
                let positions = b.range(&start, &limit, &one)?;
                let index = if mode == "edge" {
                    let last = b.bin("Sub", &d, &one)?;
                    let zero = b.i64(0)?;
                    let low = b.bin("Minimum", &positions, &last)?;
                    b.bin("Maximum", &low, &zero)?
                } else {
                    b.bin("FloorMod", &positions, &d)?
                };
                cur = b.gather(&cur, &index, a, Shape::unknown_dims(rank))?;
            }
            b.un("Identity", &cur)?
        }
        other => return Err(b.ctx.error(format!("mode {other:?} is not supported"))),
    };
    ctx.set_plain(out, y, logical);
    Ok(())
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
            let n: i64 = out_dims.iter().product();
            if (0..=1 << 16).contains(&n) {
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
    let s = b.int64_input(shape_name)?;
    let xs = b.shape(&xv)?;
    // ONNX's Expand broadcasts both ways: a 1 in the shape keeps x's dim.
    let full = b.op(
        "BroadcastArgs",
        &[&xs, &s],
        &[t(DType::Int64)],
        Shape::unknown_dims(1),
    )?;
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
                    .map(|(&d, &k)| if d < 0 { -1 } else { d * k })
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
                let v: Vec<i64> = (0..n as i64).map(|i| ints[0] + i * ints[2]).collect();
                constant::from_i64(dtype, &[n as i64], &v)
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
    if bs < 1 {
        return Err(ctx.error(format!("blocksize {bs} is not positive")));
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
    let scaled = |v: i64| if v < 0 { -1 } else { v * bs };
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
            if c < 0 {
                return Err(b.ctx.error("CRD mode needs the channel count"));
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
        if d[1] < 0 { -1 } else { d[1] * bs * bs },
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
            if c < 0 {
                return Err(b.ctx.error("CRD mode needs the channel count"));
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
    if rows * cols > 1 << 24 {
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
