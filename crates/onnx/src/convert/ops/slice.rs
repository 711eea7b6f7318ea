//! Cutting and extending along axes: `Slice` (folded for known values, as
//! exporters' shape chains slice shapes), `Split` and `Pad`.
//!
//! Semantics: `onnx/defs/tensor/defs.cc`; parameters known only when the
//! model runs are handled in the graph.

use savedmodel_graph::{Attr, DType, Shape, Tensor};

use super::array::{Param, dims_of, param};
use super::build::{Builder, stored_axis, t};
use super::{Converter, input_name, normalize_axis, output_name, output0, rank_of, required_input};
use crate::convert::context::{Ctx, permute_shape, to_channels_last};
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "Slice" => slice,
        "Split" => split,
        "Pad" => pad,
        "CenterCropPad" => center_crop_pad,
        _ => return None,
    };
    Some(f)
}

/// For each element of a tensor made by picking `picks[axis]` along each
/// axis of `x` (row-major), its bytes: a fold of slicing and gathering.
pub(super) fn take(x: &Tensor, picks: &[Vec<usize>]) -> std::result::Result<Tensor, String> {
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
pub(super) fn slice_axis(start: i64, end: i64, step: i64, dim: i64) -> (i64, i64, i64) {
    let fwd = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
    let (s, e) = (fwd(start), fwd(end));
    // The count is ceil(span / |step|), in i128 so no step overflows.
    let count = |span: i64| -> i64 {
        let size = i128::from(step).abs();
        ((i128::from(span) + size - 1) / size) as i64
    };
    if step > 0 {
        let (s, e) = (s.clamp(0, dim), e.clamp(0, dim));
        let n = if e > s { count(e - s) } else { 0 };
        (s, e, n)
    } else {
        let (s, e) = (s.clamp(0, (dim - 1).max(0)), e.clamp(-1, dim - 1));
        let n = if s > e && dim > 0 { count(s - e) } else { 0 };
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
    // Axes known when converting keep the other dimensions known.
    let sliced: Option<Vec<i64>> = match &axes {
        Some(Param::Known(a)) => Some(
            a.iter()
                .map(|&v| if v < 0 { v + rank as i64 } else { v })
                .collect(),
        ),
        None if n >= 0 => Some((0..n).collect()),
        _ => None,
    };
    let logical = match sliced {
        Some(sliced) => Shape::new(
            &dims
                .iter()
                .enumerate()
                .map(|(i, &d)| if sliced.contains(&(i as i64)) { -1 } else { d })
                .collect::<Vec<_>>(),
        ),
        None => Shape::unknown_dims(rank),
    };
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
    // StridedSlice's masks are bits of an int64.
    if rank >= 63 {
        return Err(ctx.error(format!("cannot slice a value of rank {rank}")));
    }
    let mut begin = vec![0i64; rank];
    let mut end = vec![0i64; rank];
    let mut stride = vec![1i64; rank];
    let (mut begin_mask, mut end_mask) = ((1i64 << rank) - 1, (1i64 << rank) - 1);
    let mut out_dims = dims.to_vec();
    // Per axis, (first index, step, count) where the dimension is known.
    let mut ranges: Vec<Option<(i64, i64, i64)>> = dims
        .iter()
        .map(|&d| (d >= 0).then_some((0, 1, d)))
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
            ranges[a] = Some((s, step, n));
        } else {
            begin[a] = starts[i];
            end[a] = ends[i];
            out_dims[a] = -1;
        }
    }
    if let Some(v) = ctx.constant(x).cloned() {
        // A known value is folded (the index lists are bounded: a value
        // with no elements may still have a large dimension).
        let ranges: Option<Vec<(i64, i64, i64)>> = ranges.into_iter().collect();
        let small = |r: &Vec<(i64, i64, i64)>| r.iter().map(|&(_, _, n)| n).sum::<i64>() <= 1 << 20;
        if let Some(ranges) = ranges.filter(small) {
            let picks: Vec<Vec<usize>> = ranges
                .iter()
                .map(|&(s, step, n)| (0..n).map(|k| (s + k * step) as usize).collect())
                .collect();
            if let Ok(r) = take(&v, &picks) {
                ctx.set_constant(out, r);
                return Ok(());
            }
        }
    }
    let logical = Shape::new(&out_dims);
    // A channels-last value is sliced as it is, the parameters permuted.
    let channels_last = rank >= 3 && ctx.is_channels_last(x);
    let (begin, end, stride, begin_mask, end_mask, stored) = if channels_last {
        let perm = to_channels_last(rank);
        let pick = |v: &[i64]| -> Vec<i64> { perm.iter().map(|&p| v[p as usize]).collect() };
        let bits = |mask: i64| -> i64 {
            (0..rank)
                .filter(|&a| mask & (1 << a) != 0)
                .map(|a| 1i64 << stored_axis(true, rank, a))
                .sum()
        };
        (
            pick(&begin),
            pick(&end),
            pick(&stride),
            bits(begin_mask),
            bits(end_mask),
            permute_shape(&logical, &perm),
        )
    } else {
        (begin, end, stride, begin_mask, end_mask, logical.clone())
    };
    let mut b = Builder::new(ctx, node);
    let xv = if channels_last {
        b.ctx.channels_last(x)?
    } else {
        b.ctx.plain(x)?
    };
    let begin = b.i64s(&begin)?;
    let end = b.i64s(&end)?;
    let stride = b.i64s(&stride)?;
    let y = strided_slice(
        &mut b, &xv, &begin, &end, &stride, begin_mask, end_mask, stored,
    )?;
    if channels_last {
        ctx.set_channels_last(out, y, logical);
    } else {
        ctx.set_plain(out, y, logical);
    }
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
            // From opset 18 `num_outputs` says how many parts; the node's
            // outputs say the same (and are all there is before).
            let parts = match node.attr_i("num_outputs")? {
                Some(n) if opset >= 18 => n,
                _ => outputs as i64,
            };
            if parts < 1 || parts != outputs as i64 {
                return Err(ctx.error(format!(
                    "cannot split into {parts} parts for {outputs} outputs"
                )));
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
    // A channels-last value is split as it is, along the stored axis.
    let channels_last = rank >= 3 && ctx.is_channels_last(x);
    let stored: Vec<Shape> = if channels_last {
        let perm = to_channels_last(rank);
        shapes.iter().map(|s| permute_shape(s, &perm)).collect()
    } else {
        shapes.clone()
    };
    let stored_axis = stored_axis(channels_last, rank, axis);
    let mut b = Builder::new(ctx, node);
    let xv = if channels_last {
        b.ctx.channels_last(x)?
    } else {
        b.ctx.plain(x)?
    };
    let dtype = xv.dtype();
    let parts = match sizes {
        Some(p) => {
            let s = match p {
                Param::Known(v) => b.i64s(&v)?,
                Param::Runtime(n) => b.int64_input(n)?,
            };
            let axis_t = b.tensor(Tensor::scalar(stored_axis as i32))?;
            b.op_n(
                "SplitV",
                &[&xv, &s, &axis_t],
                &[
                    ("num_split", Attr::Int(outputs as i64)),
                    t(dtype),
                    ("Tlen", Attr::Type(DType::Int64)),
                ],
                stored,
            )?
        }
        None => {
            let axis_t = b.tensor(Tensor::scalar(stored_axis as i32))?;
            b.op_n(
                "Split",
                &[&axis_t, &xv],
                &[("num_split", Attr::Int(outputs as i64)), t(dtype)],
                stored,
            )?
        }
    };
    for (k, part) in parts.into_iter().enumerate() {
        if let Some(name) = output_name(node, k) {
            if channels_last {
                ctx.set_channels_last(name, part, shapes[k].clone());
            } else {
                ctx.set_plain(name, part, shapes[k].clone());
            }
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
                .map(|(&d, &(s, e))| {
                    if d < 0 {
                        -1
                    } else {
                        d.saturating_add(s).saturating_add(e)
                    }
                })
                .collect::<Vec<_>>(),
        ),
        None => Shape::unknown_dims(rank),
    };
    // A channels-last value with known pads is padded as it is, its pads
    // permuted to that layout.
    let channels_last = known_pairs.is_some() && rank >= 3 && ctx.is_channels_last(x);
    let known_pairs = known_pairs.map(|p| {
        if channels_last {
            to_channels_last(rank)
                .iter()
                .map(|&i| p[i as usize])
                .collect()
        } else {
            p
        }
    });
    let stored = if channels_last {
        permute_shape(&logical, &to_channels_last(rank))
    } else {
        logical.clone()
    };
    let mut b = Builder::new(ctx, node);
    let xv = if channels_last {
        b.ctx.channels_last(x)?
    } else {
        b.ctx.plain(x)?
    };
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
            // Negative pads crop: slice them off, then pad the rest.
            let (cropped, paddings) = match &known_pairs {
                Some(pairs) if pairs.iter().any(|&(s, e)| s < 0 || e < 0) => {
                    let begin: Vec<i64> = pairs.iter().map(|&(s, _)| (-s).max(0)).collect();
                    let end: Vec<i64> = pairs.iter().map(|&(_, e)| e.min(0)).collect();
                    let end_mask = end
                        .iter()
                        .enumerate()
                        .filter(|&(_, &e)| e == 0)
                        .map(|(i, _)| 1i64 << i)
                        .sum();
                    let flat: Vec<i64> = pairs
                        .iter()
                        .flat_map(|&(s, e)| [s.max(0), e.max(0)])
                        .collect();
                    let begin = b.i64s(&begin)?;
                    let end = b.i64s(&end)?;
                    let ones = b.i64s(&vec![1; rank])?;
                    let cropped = strided_slice(
                        &mut b,
                        &xv,
                        &begin,
                        &end,
                        &ones,
                        0,
                        end_mask,
                        Shape::unknown_dims(rank),
                    )?;
                    let paddings = b.tensor(
                        Tensor::new(&[rank as i64, 2], &flat).map_err(|e| b.ctx.build_error(e))?,
                    )?;
                    (cropped, paddings)
                }
                _ => (xv.clone(), paddings),
            };
            b.op(
                "PadV2",
                &[&cropped, &paddings, &cv],
                &pad_attrs(None),
                stored.clone(),
            )?
        }
        "reflect" => b.op(
            "MirrorPad",
            &[&xv, &paddings],
            &pad_attrs(Some("REFLECT")),
            stored.clone(),
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
    if channels_last {
        ctx.set_channels_last(out, y, logical);
    } else {
        ctx.set_plain(out, y, logical);
    }
    Ok(())
}

/// `CenterCropPad`: along each axis listed (all by default), the centre
/// `shape[i]` elements, cropped from `(dim - target) / 2` when smaller and
/// zero-padded by `(target - dim) / 2` before (the rest after) when larger;
/// computed in the graph, so dimensions may be dynamic.
fn center_crop_pad(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let shape_name = required_input(ctx, node, 1)?;
    let out = output0(ctx, node)?;
    let rank = rank_of(ctx, x_name)?;
    let axes: Vec<usize> = match node.attr_ints("axes")? {
        Some(a) => a
            .iter()
            .map(|&a| normalize_axis(ctx, a, rank))
            .collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    let x = ctx.plain(x_name)?;
    let dtype = x.dtype();
    let mut b = Builder::new(ctx, node);
    let target = b.int64_input(shape_name)?;
    let dims = b.shape(&x)?;
    let zero = b.i64(0)?;
    let two = b.i64(2)?;
    let mut begins = Vec::new();
    let mut sizes = Vec::new();
    let mut pads = Vec::new();
    for axis in 0..rank {
        let d = b.element(&dims, axis as i64)?;
        match axes.iter().position(|&a| a == axis) {
            None => {
                begins.push(zero.clone());
                sizes.push(d);
                pads.push(zero.clone());
                pads.push(zero.clone());
            }
            Some(i) => {
                let s = b.element(&target, i as i64)?;
                let over = b.bin("Sub", &d, &s)?;
                let crop = b.bin("Maximum", &over, &zero)?;
                let start = b.bin("FloorDiv", &crop, &two)?;
                let size = b.bin("Minimum", &d, &s)?;
                let under = b.bin("Sub", &s, &d)?;
                let pad = b.bin("Maximum", &under, &zero)?;
                let before = b.bin("FloorDiv", &pad, &two)?;
                let after = b.bin("Sub", &pad, &before)?;
                begins.push(start);
                sizes.push(size);
                pads.push(before);
                pads.push(after);
            }
        }
    }
    let begin = b.stack(&begins.iter().collect::<Vec<_>>(), 0)?;
    let size = b.stack(&sizes.iter().collect::<Vec<_>>(), 0)?;
    let cropped = b.op(
        "Slice",
        &[&x, &begin, &size],
        &[t(dtype), ("Index", Attr::Type(DType::Int64))],
        Shape::unknown_dims(rank),
    )?;
    let paddings = b.stack(&pads.iter().collect::<Vec<_>>(), 0)?;
    let paddings = b.reshape(&paddings, &[rank as i64, 2])?;
    let y = b.op(
        "Pad",
        &[&cropped, &paddings],
        &[t(dtype), ("Tpaddings", Attr::Type(DType::Int64))],
        Shape::unknown_dims(rank),
    )?;
    ctx.set_plain(out, y, Shape::unknown_dims(rank));
    Ok(())
}
