//! Pooling: `MaxPool`, `AveragePool` (channels last, on TensorFlow's
//! pooling kernels, or as the maximum or sum of strided slices when the
//! window is dilated, which those kernels do not support) and the global
//! pools.

use savedmodel_graph::{Attr, DType, Output, Shape};

use super::nn::{Window, dims, nhwc_list, pad_spatial, t};
use super::{output0, rank_of, required_input, sub};
use crate::convert::constant;
use crate::convert::context::{Ctx, permute_shape, to_channels_last};
use crate::{NodeView, Result};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum PoolKind {
    Max,
    Average,
    /// The sum over each window of the zero-padded input (`LpPool`'s).
    Sum,
}

pub(super) fn pool(ctx: &mut Ctx, node: &NodeView<'_>, kind: PoolKind) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    if !(3..=5).contains(&rank) {
        return Err(ctx.error(format!("pooling a rank-{rank} input is not supported")));
    }
    let indices = super::output_name(node, 1);
    let spatial = rank - 2;
    let x_shape = dims(&ctx.slot(x_name)?.shape).unwrap_or_else(|| vec![-1; rank]);
    let kernel = node
        .attr_ints("kernel_shape")?
        .map(<[i64]>::to_vec)
        .ok_or_else(|| ctx.error("kernel_shape is required"))?;
    if kernel.len() != spatial {
        return Err(ctx.error("kernel_shape must have one value per spatial dimension"));
    }
    let window = Window::read(ctx, node, kernel, &x_shape[2..])?;
    let ceil = node.attr_i_or("ceil_mode", 0)? != 0;
    let count_include_pad = node.attr_i_or("count_include_pad", 0)? != 0;
    if let Some(indices) = indices {
        if kind != PoolKind::Max || spatial != 2 || window.dilations.iter().any(|&d| d != 1) {
            return Err(ctx.error("the Indices output is supported for undilated 2-D MaxPool only"));
        }
        return max_pool_with_indices(ctx, node, x_name, &x_shape, &window, ceil, indices);
    }
    if window.dilations.iter().any(|&d| d != 1) {
        let how = Pooling {
            kind,
            ceil,
            count_include_pad,
        };
        return dilated_pool(ctx, node, x_name, &x_shape, &window, &how);
    }
    let (y, shape) = pool_of(ctx, node, x_name, kind)?;
    ctx.set_channels_last(output0(ctx, node)?, y, shape);
    Ok(())
}

/// Pools ONNX value `x_name` (undilated) over the window `node`'s
/// attributes give (`LpPool` pools a value it computes): the result
/// channels last, and its logical shape.
pub(super) fn pool_of(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    x_name: &str,
    kind: PoolKind,
) -> Result<(Output, Shape)> {
    let rank = rank_of(ctx, x_name)?;
    if !(3..=5).contains(&rank) {
        return Err(ctx.error(format!("pooling a rank-{rank} input is not supported")));
    }
    let spatial = rank - 2;
    let base = ctx.node_name(node);
    let x_shape = dims(&ctx.slot(x_name)?.shape).unwrap_or_else(|| vec![-1; rank]);
    let kernel = node
        .attr_ints("kernel_shape")?
        .map(<[i64]>::to_vec)
        .ok_or_else(|| ctx.error("kernel_shape is required"))?;
    if kernel.len() != spatial {
        return Err(ctx.error("kernel_shape must have one value per spatial dimension"));
    }
    let mut window = Window::read(ctx, node, kernel, &x_shape[2..])?;
    if window.dilations.iter().any(|&d| d != 1) {
        return Err(ctx.error("dilated pooling of this kind is not supported"));
    }
    let ceil = node.attr_i_or("ceil_mode", 0)? != 0;
    let count_include_pad = node.attr_i_or("count_include_pad", 0)? != 0;
    let dtype = ctx.slot(x_name)?.dtype;

    let mut out_logical = vec![x_shape[0], x_shape[1]];
    for i in 0..spatial {
        out_logical.push(window.out_dim(i, x_shape[2 + i], ceil));
    }
    // ceil_mode: more padding at the end, counted by neither pooling kind.
    let mut extra = vec![0i64; spatial];
    if ceil {
        for i in 0..spatial {
            let (input, out) = (x_shape[2 + i], out_logical[2 + i]);
            if input < 0 {
                return Err(ctx.error("ceil_mode needs static spatial dimensions"));
            }
            // Saturating: `input` is a declared dimension, any size.
            let needed = (out - 1)
                .saturating_mul(window.strides[i])
                .saturating_add(window.kernel[i])
                .saturating_sub(input.saturating_add(window.pads[i].0 + window.pads[i].1));
            extra[i] = needed.max(0);
        }
    }
    let out_logical = Shape::new(&out_logical);
    let stored = permute_shape(&out_logical, &to_channels_last(rank));
    let mut x = ctx.channels_last(x_name)?;
    let op = match (kind, spatial) {
        (PoolKind::Max, 3) => "MaxPool3D",
        (PoolKind::Average | PoolKind::Sum, 3) => "AvgPool3D",
        (PoolKind::Max, _) => "MaxPool",
        (PoolKind::Average | PoolKind::Sum, _) => "AvgPool",
    };
    // 1-D pooling runs as 2-D pooling over a height of 1.
    let as_2d = spatial == 1;
    let lift = |v: &[i64], one: i64| -> Vec<i64> {
        if as_2d {
            [vec![one], v.to_vec()].concat()
        } else {
            v.to_vec()
        }
    };
    if as_2d {
        let axis = ctx.const_i32(&sub(&base, "expand_axis"), &[1])?;
        x = ctx.op1(
            "ExpandDims",
            &sub(&base, "as_2d"),
            &[&x, &axis],
            &[t(dtype), ("Tdim", Attr::Type(DType::Int32))],
            Shape::unknown_dims(4),
        )?;
    }
    let pads: Vec<(i64, i64)> = window
        .pads
        .iter()
        .zip(&extra)
        .map(|(&(b, e), &x)| (b, e + x))
        .collect();
    let pads2 = if as_2d {
        [vec![(0, 0)], pads.clone()].concat()
    } else {
        pads.clone()
    };
    let ksize = nhwc_list(&lift(&window.kernel, 1));
    let strides = nhwc_list(&lift(&window.strides, 1));
    let any_pad = pads.iter().any(|&(b, e)| b != 0 || e != 0);
    let pool_attrs = |padding: &str| -> Vec<(&'static str, Attr)> {
        vec![
            t(dtype),
            ("ksize", Attr::IntList(ksize.clone())),
            ("strides", Attr::IntList(strides.clone())),
            ("padding", Attr::Str(padding.as_bytes().to_vec())),
        ]
    };
    let unknown = Shape::unknown();
    let mut y = if window.same_upper
        && !ceil
        && (kind == PoolKind::Max || (kind == PoolKind::Average && !count_include_pad))
    {
        // TensorFlow's SAME pads as SAME_UPPER, and its average counts
        // only the input's elements, as count_include_pad=0 does.
        window.pads = vec![(0, 0); spatial];
        ctx.op1(
            op,
            &sub(&base, "pool"),
            &[&x],
            &pool_attrs("SAME"),
            unknown.clone(),
        )?
    } else if !any_pad {
        ctx.op1(
            op,
            &sub(&base, "pool"),
            &[&x],
            &pool_attrs("VALID"),
            unknown.clone(),
        )?
    } else if kind == PoolKind::Sum {
        // The average of every window of the zero-padded input (made the
        // sum below).
        let padded = pad_spatial(ctx, &base, &x, &pads2, 0.0)?;
        ctx.op1(
            op,
            &sub(&base, "pool"),
            &[&padded],
            &pool_attrs("VALID"),
            unknown.clone(),
        )?
    } else if kind == PoolKind::Max {
        let lowest = lowest_value(dtype)
            .ok_or_else(|| ctx.error(format!("MaxPool of {dtype} is not supported")))?;
        let padded = pad_spatial(ctx, &base, &x, &pads2, lowest)?;
        ctx.op1(
            op,
            &sub(&base, "pool"),
            &[&padded],
            &pool_attrs("VALID"),
            unknown.clone(),
        )?
    } else {
        // Average over windows that reach into the padding: the sum over
        // the zero-padded input divided by the number of elements counted
        // (the input's only, or the explicit padding's too; never the
        // ceil_mode padding).
        let padded = pad_spatial(ctx, &base, &x, &pads2, 0.0)?;
        let sum_avg = ctx.op1(
            op,
            &sub(&base, "pool"),
            &[&padded],
            &pool_attrs("VALID"),
            unknown.clone(),
        )?;
        let counted: Vec<(i64, i64)> = if count_include_pad {
            window.pads.clone()
        } else {
            vec![(0, 0); spatial]
        };
        let count = count_map(
            ctx,
            &base,
            &x_shape[2..],
            &counted,
            &pads,
            as_2d,
            op,
            &pool_attrs("VALID"),
            dtype,
        )?;
        ctx.op1(
            "RealDiv",
            &sub(&base, "average"),
            &[&sum_avg, &count],
            &[t(dtype)],
            unknown.clone(),
        )?
    };
    if kind == PoolKind::Sum {
        let size: i64 = window.kernel.iter().product();
        let k = ctx.const_scalar(&sub(&base, "kernel_size"), dtype, size as f64)?;
        y = ctx.op1("Mul", &sub(&base, "sum"), &[&y, &k], &[t(dtype)], unknown)?;
    }
    if as_2d {
        y = ctx.op1(
            "Squeeze",
            &sub(&base, "squeeze"),
            &[&y],
            &[t(dtype), ("squeeze_dims", Attr::IntList(vec![1]))],
            stored.clone(),
        )?;
    } else {
        y = ctx.op1("Identity", &base, &[&y], &[t(dtype)], stored.clone())?;
    }
    Ok((y, out_logical))
}

/// The fraction of each window that is counted, as the average pool of a
/// constant mask (1 where an element counts, padded with zeros), so that
/// `avg(padded x) / avg(mask)` is the average over the counted elements.
#[allow(clippy::too_many_arguments)]
fn count_map(
    ctx: &mut Ctx,
    base: &str,
    spatial_in: &[i64],
    counted: &[(i64, i64)],
    pads: &[(i64, i64)],
    as_2d: bool,
    op: &str,
    attrs: &[(&'static str, Attr)],
    dtype: DType,
) -> Result<Output> {
    if spatial_in.iter().any(|&d| d < 0) {
        return Err(ctx.error("average pooling with padding needs static spatial dimensions"));
    }
    // The mask over the padded extent: 1 inside the input and inside the
    // counted padding, 0 elsewhere.
    let padded: Vec<i64> = spatial_in
        .iter()
        .zip(pads)
        .map(|(&d, &(b, e))| d + b + e)
        .collect();
    let total: usize = padded.iter().map(|&d| d as usize).product();
    let mut mask = Vec::with_capacity(total);
    let mut counter = vec![0i64; padded.len()];
    for _ in 0..total {
        let inside = counter.iter().enumerate().all(|(i, &c)| {
            let lo = pads[i].0 - counted[i].0;
            let hi = pads[i].0 + spatial_in[i] + counted[i].1;
            c >= lo && c < hi
        });
        mask.push(if inside { 1.0 } else { 0.0 });
        for axis in (0..padded.len()).rev() {
            counter[axis] += 1;
            if counter[axis] < padded[axis] {
                break;
            }
            counter[axis] = 0;
        }
    }
    let mut shape = vec![1i64];
    if as_2d {
        shape.push(1);
    }
    shape.extend_from_slice(&padded);
    shape.push(1);
    let mask = constant::from_f64(dtype, &shape, &mask).map_err(|e| ctx.error(e))?;
    let mask = ctx.const_tensor(&sub(base, "count_mask"), mask)?;
    ctx.op1(op, &sub(base, "count"), &[&mask], attrs, Shape::unknown())
}

/// The lowest value of `dtype`, for padding a max pool.
fn lowest_value(dtype: DType) -> Option<f64> {
    Some(match dtype {
        DType::Float | DType::Double | DType::Half | DType::BFloat16 => f64::NEG_INFINITY,
        DType::Int8 => -128.0,
        DType::UInt8 => 0.0,
        DType::Int32 => f64::from(i32::MIN),
        DType::Int64 => i64::MIN as f64,
        _ => return None,
    })
}

pub(super) fn global_pool(ctx: &mut Ctx, node: &NodeView<'_>, op: &str) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    if rank < 3 {
        return Err(ctx.error(format!("global pooling of a rank-{rank} input")));
    }
    let base = ctx.node_name(node);
    let logical = match ctx.slot(x_name)?.shape.dims() {
        Some(d) => {
            let mut d = d.to_vec();
            for v in d.iter_mut().skip(2) {
                *v = 1;
            }
            Shape::new(&d)
        }
        None => Shape::unknown_dims(rank),
    };
    let (x, axes, channels_last) = if ctx.is_channels_last(x_name) {
        let x = ctx.channels_last(x_name)?;
        (x, (1..rank as i64 - 1).collect::<Vec<_>>(), true)
    } else {
        (ctx.plain(x_name)?, (2..rank as i64).collect(), false)
    };
    let dtype = x.dtype();
    let axes_t = ctx.const_i32(&sub(&base, "axes"), &axes)?;
    let stored = if channels_last {
        permute_shape(&logical, &to_channels_last(rank))
    } else {
        logical.clone()
    };
    let y = ctx.op1(
        op,
        &base,
        &[&x, &axes_t],
        &[
            t(dtype),
            ("keep_dims", Attr::Bool(true)),
            ("Tidx", Attr::Type(DType::Int32)),
        ],
        stored,
    )?;
    let out = output0(ctx, node)?;
    if channels_last {
        ctx.set_channels_last(out, y, logical);
    } else {
        ctx.set_plain(out, y, logical);
    }
    Ok(())
}

/// How a pool treats its window.
struct Pooling {
    kind: PoolKind,
    ceil: bool,
    count_include_pad: bool,
}

/// The most taps (kernel elements) of a dilated pooling window built with
/// one `StridedSlice` per tap: averages, and maxima of 1 or 3 spatial
/// dimensions (a 2-D maximum is one `Dilation2D`, such as PyTorch's
/// exported `MaxPool2d(60x80, dilation 10)` of 4,800 taps).
const MAX_DILATED_TAPS: i64 = 1 << 13;

/// The most output positions of a dilated average pool: its counts are a
/// constant of that many elements.
const MAX_DILATED_POSITIONS: i64 = 1 << 20;

/// A pool with a dilated window (static spatial dimensions): the input is
/// padded (with the lowest value for a maximum, zeros for an average), one
/// strided slice is taken per kernel tap, and the slices are combined by
/// `Maximum`, or summed and divided by the number of counted elements of
/// each window (a constant: it depends on the geometry only).
fn dilated_pool(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    x_name: &str,
    x_shape: &[i64],
    window: &Window,
    how: &Pooling,
) -> Result<()> {
    let rank = x_shape.len();
    let spatial = rank - 2;
    let input = &x_shape[2..];
    if input.iter().any(|&d| d < 0) {
        return Err(ctx.error("dilated pooling needs static spatial dimensions"));
    }
    let base = ctx.node_name(node);
    let dtype = ctx.slot(x_name)?.dtype;
    let out: Vec<i64> = (0..spatial)
        .map(|i| window.out_dim(i, input[i], how.ceil))
        .collect();
    if out.iter().any(|&o| o < 1) {
        return Err(ctx.error("the pooling window does not fit the input"));
    }
    let span: Vec<i64> = (0..spatial)
        .map(|i| (window.kernel[i] - 1) * window.dilations[i] + 1)
        .collect();
    // The padding: explicit, plus what the last (ceil_mode) window needs.
    let pads: Vec<(i64, i64)> = (0..spatial)
        .map(|i| {
            let (b, e) = window.pads[i];
            let needed = (out[i] - 1)
                .saturating_mul(window.strides[i])
                .saturating_add(span[i])
                .saturating_sub(input[i].saturating_add(b + e));
            (b, e + needed.max(0))
        })
        .collect();
    let x = ctx.channels_last(x_name)?;
    let fill = match how.kind {
        PoolKind::Max => lowest_value(dtype)
            .ok_or_else(|| ctx.error(format!("MaxPool of {dtype} is not supported")))?,
        PoolKind::Average | PoolKind::Sum => 0.0,
    };
    let padded = if pads.iter().any(|&(b, e)| b != 0 || e != 0) {
        pad_spatial(ctx, &base, &x, &pads, fill)?
    } else {
        x
    };
    // A 2-D dilated maximum is TensorFlow's Dilation2D (a grey-scale
    // morphological dilation: the window's maximum of input + filter) with
    // a zero filter: one op, whatever the window's size. The input is
    // first cut to exactly the rows and columns the windows cover, so that
    // its "VALID" output has the pool's size.
    if how.kind == PoolKind::Max && spatial == 2 && x_shape[1] >= 1 {
        let covered: Vec<i64> = (0..2)
            .map(|i| {
                (out[i] - 1)
                    .saturating_mul(window.strides[i])
                    .saturating_add(span[i])
            })
            .collect();
        let mut end = vec![0i64];
        end.extend_from_slice(&covered);
        end.push(0);
        let begin = ctx.const_i32(&sub(&base, "covered_begin"), &[0, 0, 0, 0])?;
        let end = ctx.const_i32(&sub(&base, "covered_end"), &end)?;
        let steps = ctx.const_i32(&sub(&base, "covered_strides"), &[1, 1, 1, 1])?;
        let covered = ctx.op1(
            "StridedSlice",
            &sub(&base, "covered"),
            &[&padded, &begin, &end, &steps],
            &[
                t(dtype),
                ("Index", Attr::Type(DType::Int32)),
                ("begin_mask", Attr::Int(0b1111)),
                ("end_mask", Attr::Int(0b1001)),
                ("ellipsis_mask", Attr::Int(0)),
                ("new_axis_mask", Attr::Int(0)),
                ("shrink_axis_mask", Attr::Int(0)),
            ],
            Shape::new(&[x_shape[0], covered[0], covered[1], x_shape[1]]),
        )?;
        let filter_dims = [window.kernel[0], window.kernel[1], x_shape[1]];
        let dims = ctx.const_i32(&sub(&base, "filter_shape"), &filter_dims)?;
        let zero = ctx.const_scalar(&sub(&base, "zero"), dtype, 0.0)?;
        let filter = ctx.op1(
            "Fill",
            &sub(&base, "filter"),
            &[&dims, &zero],
            &[t(dtype), ("index_type", Attr::Type(DType::Int32))],
            Shape::new(&filter_dims),
        )?;
        let mut stored = vec![x_shape[0]];
        stored.extend_from_slice(&out);
        stored.push(x_shape[1]);
        let y = ctx.op1(
            "Dilation2D",
            &base,
            &[&covered, &filter],
            &[
                t(dtype),
                (
                    "strides",
                    Attr::IntList(vec![1, window.strides[0], window.strides[1], 1]),
                ),
                (
                    "rates",
                    Attr::IntList(vec![1, window.dilations[0], window.dilations[1], 1]),
                ),
                ("padding", Attr::Str(b"VALID".to_vec())),
            ],
            Shape::new(&stored),
        )?;
        let mut logical = vec![x_shape[0], x_shape[1]];
        logical.extend_from_slice(&out);
        ctx.set_channels_last(output0(ctx, node)?, y, Shape::new(&logical));
        return Ok(());
    }
    // One slice per tap, one count per output position: both bounded, so a
    // hostile kernel or input size cannot build a huge graph or constant.
    let taps = window
        .kernel
        .iter()
        .try_fold(1i64, |n, &k| n.checked_mul(k))
        .filter(|&n| n <= MAX_DILATED_TAPS)
        .ok_or_else(|| {
            ctx.error(format!(
                "a dilated pooling window of more than {MAX_DILATED_TAPS} taps is not supported"
            ))
        })? as usize;
    if how.kind == PoolKind::Average
        && out
            .iter()
            .try_fold(1i64, |n, &o| n.checked_mul(o))
            .is_none_or(|n| n > MAX_DILATED_POSITIONS)
    {
        return Err(ctx.error(format!(
            "a dilated average pool of more than {MAX_DILATED_POSITIONS} output positions is \
             not supported"
        )));
    }
    let mut offset = vec![0i64; spatial];
    let mut acc: Option<Output> = None;
    let mut stored = vec![x_shape[0]];
    stored.extend_from_slice(&out);
    stored.push(x_shape[1]);
    let stored = Shape::new(&stored);
    let mask = 1i64 | (1 << (spatial + 1));
    let mut strides = vec![1i64];
    strides.extend_from_slice(&window.strides);
    strides.push(1);
    for tap in 0..taps {
        let mut begin = vec![0i64];
        let mut end = vec![0i64];
        for i in 0..spatial {
            let b = offset[i] * window.dilations[i];
            begin.push(b);
            end.push(b + (out[i] - 1) * window.strides[i] + 1);
        }
        begin.push(0);
        end.push(0);
        let name = |what: &str| sub(&base, &format!("tap{tap}_{what}"));
        let b = ctx.const_i32(&name("begin"), &begin)?;
        let e = ctx.const_i32(&name("end"), &end)?;
        let s = ctx.const_i32(&name("strides"), &strides)?;
        let slice = ctx.op1(
            "StridedSlice",
            &name("slice"),
            &[&padded, &b, &e, &s],
            &[
                t(dtype),
                ("Index", Attr::Type(DType::Int32)),
                ("begin_mask", Attr::Int(mask)),
                ("end_mask", Attr::Int(mask)),
                ("ellipsis_mask", Attr::Int(0)),
                ("new_axis_mask", Attr::Int(0)),
                ("shrink_axis_mask", Attr::Int(0)),
            ],
            stored.clone(),
        )?;
        acc = Some(match acc {
            None => slice,
            Some(a) => {
                let op = match how.kind {
                    PoolKind::Max => "Maximum",
                    PoolKind::Average | PoolKind::Sum => "AddV2",
                };
                ctx.op1(
                    op,
                    &name("combine"),
                    &[&a, &slice],
                    &[t(dtype)],
                    stored.clone(),
                )?
            }
        });
        for i in (0..spatial).rev() {
            offset[i] += 1;
            if offset[i] < window.kernel[i] {
                break;
            }
            offset[i] = 0;
        }
    }
    let acc = acc.ok_or_else(|| ctx.error("the pooling window is empty"))?;
    let y = match how.kind {
        PoolKind::Max | PoolKind::Sum => {
            ctx.op1("Identity", &base, &[&acc], &[t(dtype)], stored.clone())?
        }
        PoolKind::Average => {
            let count = window_counts(window, input, &out, how.count_include_pad);
            let mut shape = vec![1i64];
            shape.extend_from_slice(&out);
            shape.push(1);
            let count = constant::from_f64(dtype, &shape, &count).map_err(|e| ctx.error(e))?;
            let count = ctx.const_tensor(&sub(&base, "count"), count)?;
            ctx.op1(
                "RealDiv",
                &base,
                &[&acc, &count],
                &[t(dtype)],
                stored.clone(),
            )?
        }
    };
    let mut logical = vec![x_shape[0], x_shape[1]];
    logical.extend_from_slice(&out);
    ctx.set_channels_last(output0(ctx, node)?, y, Shape::new(&logical));
    Ok(())
}

/// For each output position (row-major over `out`), how many of its
/// window's taps fall on counted elements: the input's, and the explicit
/// padding's when `include_pad` (never the ceil_mode extension).
fn window_counts(window: &Window, input: &[i64], out: &[i64], include_pad: bool) -> Vec<f64> {
    let spatial = input.len();
    // Per dimension, the count for each output index; the total is their
    // product.
    let per_dim: Vec<Vec<i64>> = (0..spatial)
        .map(|i| {
            let (pb, pe) = window.pads[i];
            let (lo, hi) = if include_pad {
                (-pb, input[i] + pe)
            } else {
                (0, input[i])
            };
            (0..out[i])
                .map(|o| {
                    (0..window.kernel[i])
                        .filter(|&j| {
                            let p = o * window.strides[i] + j * window.dilations[i] - pb;
                            (lo..hi).contains(&p)
                        })
                        .count() as i64
                })
                .collect()
        })
        .collect();
    let total: usize = out.iter().map(|&o| o as usize).product();
    let mut counts = Vec::with_capacity(total);
    let mut index = vec![0usize; spatial];
    for _ in 0..total {
        let c: i64 = (0..spatial).map(|i| per_dim[i][index[i]]).product();
        counts.push(c.max(1) as f64);
        for i in (0..spatial).rev() {
            index[i] += 1;
            if index[i] < out[i] as usize {
                break;
            }
            index[i] = 0;
        }
    }
    counts
}

/// 2-D `MaxPool` with its `Indices` output, on TensorFlow's
/// `MaxPoolWithArgmax` over the explicitly padded input. TensorFlow's
/// index is `((n * Hp + h) * Wp + w) * C + c` in the padded channels-last
/// input; ONNX's is `(n * C + c) * H * W` plus `h * W + w` (storage_order
/// 0) or `h + w * H` (1) in the unpadded input.
fn max_pool_with_indices(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    x_name: &str,
    x_shape: &[i64],
    window: &Window,
    ceil: bool,
    indices: &str,
) -> Result<()> {
    let column_major = node.attr_i_or("storage_order", 0)? != 0;
    let (c, h, w) = (x_shape[1], x_shape[2], x_shape[3]);
    if c < 0 || h < 0 || w < 0 {
        return Err(ctx.error("MaxPool's Indices need static channels and spatial dimensions"));
    }
    let base = ctx.node_name(node);
    let dtype = ctx.slot(x_name)?.dtype;
    let out: Vec<i64> = (0..2)
        .map(|i| window.out_dim(i, x_shape[2 + i], ceil))
        .collect();
    let pads: Vec<(i64, i64)> = (0..2)
        .map(|i| {
            let (b, e) = window.pads[i];
            let needed =
                (out[i] - 1) * window.strides[i] + window.kernel[i] - (x_shape[2 + i] + b + e);
            (b, e + needed.max(0))
        })
        .collect();
    let (hp, wp) = (h + pads[0].0 + pads[0].1, w + pads[1].0 + pads[1].1);
    let x = ctx.channels_last(x_name)?;
    let x = if pads.iter().any(|&(b, e)| b != 0 || e != 0) {
        let lowest = lowest_value(dtype)
            .ok_or_else(|| ctx.error(format!("MaxPool of {dtype} is not supported")))?;
        pad_spatial(ctx, &base, &x, &pads, lowest)?
    } else {
        x
    };
    let logical = Shape::new(&[x_shape[0], c, out[0], out[1]]);
    let stored = permute_shape(&logical, &to_channels_last(4));
    let outs = ctx.op(
        "MaxPoolWithArgmax",
        &sub(&base, "pool"),
        &[&x],
        &[
            t(dtype),
            ("ksize", Attr::IntList(nhwc_list(&window.kernel))),
            ("strides", Attr::IntList(nhwc_list(&window.strides))),
            ("padding", Attr::Str(b"VALID".to_vec())),
            ("Targmax", Attr::Type(DType::Int64)),
            ("include_batch_in_index", Attr::Bool(true)),
        ],
        vec![stored.clone(), stored.clone()],
    )?;
    let [y, argmax] = outs.as_slice() else {
        return Err(ctx.error("MaxPoolWithArgmax gave no two outputs"));
    };
    let i64s = [t(DType::Int64)];
    let k = |ctx: &mut Ctx, what: &str, v: i64| {
        ctx.const_tensor(&sub(&base, what), savedmodel_graph::Tensor::scalar(v))
    };
    let (kc, kwp, khp) = (
        k(ctx, "channels", c)?,
        k(ctx, "padded_width", wp)?,
        k(ctx, "padded_height", hp)?,
    );
    let (kpb_h, kpb_w) = (
        k(ctx, "pad_top", pads[0].0)?,
        k(ctx, "pad_left", pads[1].0)?,
    );
    let (kh, kw) = (k(ctx, "height", h)?, k(ctx, "width", w)?);
    let op = |ctx: &mut Ctx, op: &str, what: &str, a: &Output, b: &Output| {
        ctx.op1(op, &sub(&base, what), &[a, b], &i64s, stored.clone())
    };
    let ch = op(ctx, "FloorMod", "index_channel", argmax, &kc)?;
    let rest = op(ctx, "FloorDiv", "index_pixel", argmax, &kc)?;
    let col = op(ctx, "FloorMod", "index_padded_column", &rest, &kwp)?;
    let rest = op(ctx, "FloorDiv", "index_padded_row_batch", &rest, &kwp)?;
    let row = op(ctx, "FloorMod", "index_padded_row", &rest, &khp)?;
    let n = op(ctx, "FloorDiv", "index_batch", &rest, &khp)?;
    let row = op(ctx, "Sub", "index_row", &row, &kpb_h)?;
    let col = op(ctx, "Sub", "index_column", &col, &kpb_w)?;
    let plane = op(ctx, "Mul", "index_plane_n", &n, &kc)?;
    let plane = op(ctx, "AddV2", "index_plane", &plane, &ch)?;
    let plane_size = k(ctx, "plane_size", h * w)?;
    let offset = op(ctx, "Mul", "index_plane_offset", &plane, &plane_size)?;
    let within = if column_major {
        let c_h = op(ctx, "Mul", "index_column_offset", &col, &kh)?;
        op(ctx, "AddV2", "index_within", &c_h, &row)?
    } else {
        let r_w = op(ctx, "Mul", "index_row_offset", &row, &kw)?;
        op(ctx, "AddV2", "index_within", &r_w, &col)?
    };
    let index = op(ctx, "AddV2", "indices", &offset, &within)?;
    let y = ctx.op1("Identity", &base, &[y], &[t(dtype)], stored)?;
    ctx.set_channels_last(output0(ctx, node)?, y, logical.clone());
    ctx.set_channels_last(indices, index, logical);
    Ok(())
}
