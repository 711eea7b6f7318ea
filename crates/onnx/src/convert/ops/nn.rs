//! Neural-network operators: matrix products, convolution, pooling,
//! normalization, softmax.
//!
//! Convolution and pooling run channels last, the only layout TensorFlow's
//! CPU kernels accept: they ask for their input channels last and give
//! their output channels last (see `context.rs`). Batch normalization is
//! folded to one multiply and one add per channel, which work in either
//! layout.

use std::sync::Arc;

use savedmodel_graph::{Attr, DType, Output, Shape};

use super::{Converter, input_name, normalize_axis, output0, pool, rank_of, required_input, sub};
use crate::convert::constant;
use crate::convert::context::{Ctx, permute_shape, to_channels_last};
use crate::convert::weights::Layout as WeightLayout;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "MatMul" => matmul,
        "Gemm" => gemm,
        "Conv" => conv,
        "MaxPool" => |c, n| pool::pool(c, n, pool::PoolKind::Max),
        "AveragePool" => |c, n| pool::pool(c, n, pool::PoolKind::Average),
        "GlobalAveragePool" => |c, n| pool::global_pool(c, n, "Mean"),
        "GlobalMaxPool" => |c, n| pool::global_pool(c, n, "Max"),
        "BatchNormalization" => batch_norm,
        "Softmax" => |c, n| softmax(c, n, "Softmax"),
        "LogSoftmax" => |c, n| softmax(c, n, "LogSoftmax"),
        _ => return None,
    };
    Some(f)
}

pub(super) fn t(dtype: DType) -> (&'static str, Attr) {
    ("T", Attr::Type(dtype))
}

/// `dims` of a known shape, or `None`.
pub(super) fn dims(shape: &Shape) -> Option<Vec<i64>> {
    shape.dims().map(<[i64]>::to_vec)
}

fn matmul(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let a = required_input(ctx, node, 0)?;
    let b = required_input(ctx, node, 1)?;
    let (ra, rb) = (rank_of(ctx, a)?, rank_of(ctx, b)?);
    let base = ctx.node_name(node);
    let (sa, sb) = (ctx.slot(a)?.shape.clone(), ctx.slot(b)?.shape.clone());
    let mut x = ctx.plain(a)?;
    let mut y = ctx.plain(b)?;
    let dtype = x.dtype();
    // numpy's rules for 1-D operands: a vector is a row on the left and a
    // column on the right, and that dimension is dropped from the result.
    if ra == 1 {
        let axis = ctx.const_i32(&sub(&base, "row_axis"), &[0])?;
        x = ctx.op1(
            "ExpandDims",
            &sub(&base, "row"),
            &[&x, &axis],
            &[t(dtype), ("Tdim", Attr::Type(DType::Int32))],
            Shape::unknown(),
        )?;
    }
    if rb == 1 {
        let axis = ctx.const_i32(&sub(&base, "column_axis"), &[-1])?;
        y = ctx.op1(
            "ExpandDims",
            &sub(&base, "column"),
            &[&y, &axis],
            &[t(dtype), ("Tdim", Attr::Type(DType::Int32))],
            Shape::unknown(),
        )?;
    }
    let (ea, eb) = (ra.max(2), rb.max(2));
    let mut da = dims(&sa).unwrap_or_else(|| vec![-1; ra]);
    let mut db = dims(&sb).unwrap_or_else(|| vec![-1; rb]);
    if ra == 1 {
        da.insert(0, 1);
    }
    if rb == 1 {
        db.push(1);
    }
    let batch = constant::broadcast_dims(&da[..ea - 2], &db[..eb - 2]).unwrap_or_default();
    let mut out_dims = batch.clone();
    out_dims.push(da[ea - 2]);
    out_dims.push(db[eb - 1]);
    let product_shape = Shape::new(&out_dims);
    let mut out = if ea == 2 && eb == 2 {
        ctx.op1("MatMul", &base, &[&x, &y], &[t(dtype)], product_shape)?
    } else {
        ctx.op1(
            "BatchMatMulV2",
            &base,
            &[&x, &y],
            &[t(dtype)],
            product_shape,
        )?
    };
    if ra == 1 || rb == 1 {
        let mut squeeze = Vec::new();
        let r = out_dims.len() as i64;
        if ra == 1 {
            squeeze.push(r - 2);
        }
        if rb == 1 {
            squeeze.push(r - 1);
        }
        let mut final_dims = out_dims.clone();
        for &s in squeeze.iter().rev() {
            final_dims.remove(s as usize);
        }
        out = ctx.op1(
            "Squeeze",
            &sub(&base, "squeeze"),
            &[&out],
            &[t(dtype), ("squeeze_dims", Attr::IntList(squeeze))],
            Shape::new(&final_dims),
        )?;
    }
    let shape = out.shape().clone();
    let mut name = output0(ctx, node)?.to_owned();
    if let Some(fold) = ctx.fusions.bias_after(&name).cloned()
        && bias_folds(ctx, &shape, &fold.bias, dtype)?
    {
        let bias = ctx.plain(&fold.bias)?;
        out = ctx.op1(
            "BiasAdd",
            &sub(&base, "bias"),
            &[&out, &bias],
            &[t(dtype)],
            shape.clone(),
        )?;
        name = fold.output;
    }
    ctx.set_plain(&name, out, shape);
    Ok(())
}

/// Whether `bias` can be a `BiasAdd`'s bias for a product of `shape` and
/// `dtype` (`fuse.rs`): defined already, a float vector whose length is the
/// product's last dimension, known and equal, so that `Add`'s broadcasting
/// is `BiasAdd`'s.
fn bias_folds(ctx: &Ctx, shape: &Shape, bias: &str, dtype: DType) -> Result<bool> {
    if !ctx.is_defined(bias)
        || !matches!(
            dtype,
            DType::Float | DType::Double | DType::Half | DType::BFloat16
        )
    {
        return Ok(false);
    }
    let slot = ctx.slot(bias)?;
    let (Some(out), Some(b)) = (shape.dims(), slot.shape.dims()) else {
        return Ok(false);
    };
    Ok(slot.dtype == dtype
        && out.len() >= 2
        && b.len() == 1
        && b[0] >= 1
        && out.last() == Some(&b[0]))
}

fn gemm(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let a = required_input(ctx, node, 0)?;
    let b = required_input(ctx, node, 1)?;
    let alpha = node.attr_f_or("alpha", 1.0)?;
    let beta = node.attr_f_or("beta", 1.0)?;
    let trans_a = node.attr_i_or("transA", 0)? != 0;
    let trans_b = node.attr_i_or("transB", 0)? != 0;
    let base = ctx.node_name(node);
    let x = ctx.plain(a)?;
    let y = ctx.plain(b)?;
    let dtype = x.dtype();
    let (sa, sb) = (dims(&ctx.slot(a)?.shape), dims(&ctx.slot(b)?.shape));
    let m = sa.map_or(-1, |d| if trans_a { d[1] } else { d[0] });
    let n = sb.map_or(-1, |d| if trans_b { d[0] } else { d[1] });
    let shape = Shape::new(&[m, n]);
    let mut out = ctx.op1(
        "MatMul",
        &sub(&base, "MatMul"),
        &[&x, &y],
        &[
            t(dtype),
            ("transpose_a", Attr::Bool(trans_a)),
            ("transpose_b", Attr::Bool(trans_b)),
        ],
        shape.clone(),
    )?;
    if alpha != 1.0 {
        let k = ctx.const_scalar(&sub(&base, "alpha"), dtype, f64::from(alpha))?;
        out = ctx.op1(
            "Mul",
            &sub(&base, "scaled"),
            &[&out, &k],
            &[t(dtype)],
            shape.clone(),
        )?;
    }
    if let Some(c) = input_name(node, 2) {
        if beta != 0.0 {
            let mut bias = ctx.plain(c)?;
            if beta != 1.0 {
                let k = ctx.const_scalar(&sub(&base, "beta"), dtype, f64::from(beta))?;
                bias = ctx.op1(
                    "Mul",
                    &sub(&base, "bias_scaled"),
                    &[&bias, &k],
                    &[t(dtype)],
                    bias.shape().clone(),
                )?;
            }
            let c_shape = ctx.slot(c)?.shape.clone();
            out = if c_shape.rank() == Some(1) && c_shape.dim(0) == n && n > 1 {
                ctx.op1("BiasAdd", &base, &[&out, &bias], &[t(dtype)], shape.clone())?
            } else {
                ctx.op1("AddV2", &base, &[&out, &bias], &[t(dtype)], shape.clone())?
            };
        }
    }
    ctx.set_plain(output0(ctx, node)?, out, shape);
    Ok(())
}

/// The largest kernel size, stride, dilation or pad a convolution or
/// pooling window may have (far above any real model's), so that the window
/// arithmetic stays within `i64`.
pub(super) const MAX_WINDOW: i64 = 1 << 24;

/// Spatial padding of a convolution or pooling window: `(begin, end)` per
/// spatial dimension, from `pads` or `auto_pad`.
pub(super) struct Window {
    pub(super) kernel: Vec<i64>,
    pub(super) strides: Vec<i64>,
    pub(super) dilations: Vec<i64>,
    pub(super) pads: Vec<(i64, i64)>,
    /// `auto_pad = SAME_UPPER`: TensorFlow's "SAME" exactly.
    pub(super) same_upper: bool,
}

impl Window {
    pub(super) fn read(
        ctx: &Ctx,
        node: &NodeView<'_>,
        kernel: Vec<i64>,
        spatial_in: &[i64],
    ) -> Result<Self> {
        let n = kernel.len();
        let strides = node
            .attr_ints("strides")?
            .map_or_else(|| vec![1; n], <[i64]>::to_vec);
        let dilations = node
            .attr_ints("dilations")?
            .map_or_else(|| vec![1; n], <[i64]>::to_vec);
        if strides.len() != n || dilations.len() != n {
            return Err(
                ctx.error("strides and dilations must have one value per spatial dimension")
            );
        }
        // Checked here, so the window arithmetic below cannot divide by
        // zero or overflow.
        for (what, values) in [
            ("kernel_shape", &kernel),
            ("strides", &strides),
            ("dilations", &dilations),
        ] {
            if let Some(v) = values.iter().find(|&&v| !(1..=MAX_WINDOW).contains(&v)) {
                return Err(ctx.error(format!(
                    "{what} value {v} is not between 1 and {MAX_WINDOW}"
                )));
            }
        }
        let auto_pad = node.attr_s_or("auto_pad", "NOTSET")?;
        let mut pads = vec![(0, 0); n];
        let mut same_upper = false;
        match auto_pad {
            "NOTSET" => {
                if let Some(p) = node.attr_ints("pads")? {
                    if p.len() != 2 * n {
                        return Err(ctx.error(format!(
                            "pads has {} values, expected {}",
                            p.len(),
                            2 * n
                        )));
                    }
                    for i in 0..n {
                        pads[i] = (p[i], p[i + n]);
                    }
                }
            }
            "VALID" => {}
            "SAME_UPPER" | "SAME_LOWER" => {
                same_upper = auto_pad == "SAME_UPPER";
                for i in 0..n {
                    let input = spatial_in.get(i).copied().unwrap_or(-1);
                    if input < 0 {
                        if same_upper {
                            continue;
                        }
                        return Err(
                            ctx.error("auto_pad SAME_LOWER needs static spatial dimensions")
                        );
                    }
                    // Saturating: `input` is a declared dimension, any size.
                    let out = input.saturating_add(strides[i] - 1) / strides[i];
                    let span = (kernel[i] - 1) * dilations[i] + 1;
                    let total = ((out - 1)
                        .saturating_mul(strides[i])
                        .saturating_add(span)
                        .saturating_sub(input))
                    .clamp(0, 2 * MAX_WINDOW);
                    let small = total / 2;
                    pads[i] = if same_upper {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                }
            }
            other => return Err(ctx.error(format!("auto_pad {other:?} is not defined"))),
        }
        if pads.iter().any(|&(b, e)| b < 0 || e < 0) {
            return Err(ctx.error("negative pads are not supported"));
        }
        if pads.iter().any(|&(b, e)| b > MAX_WINDOW || e > MAX_WINDOW) {
            return Err(ctx.error(format!("pads above {MAX_WINDOW} are not supported")));
        }
        Ok(Self {
            kernel,
            strides,
            dilations,
            pads,
            same_upper,
        })
    }

    /// The output size of spatial dimension `i` for an input of `input`.
    pub(super) fn out_dim(&self, i: usize, input: i64, ceil: bool) -> i64 {
        if input < 0 {
            return -1;
        }
        // Kernel, strides, dilations and pads are at most `MAX_WINDOW`
        // (`Window::read`); `input` is a declared dimension, any size.
        let span = (self.kernel[i] - 1) * self.dilations[i] + 1;
        let padded = input
            .saturating_add(self.pads[i].0 + self.pads[i].1)
            .saturating_sub(span);
        if padded < 0 {
            return 0;
        }
        let mut out = if ceil {
            padded.saturating_add(self.strides[i] - 1) / self.strides[i] + 1
        } else {
            padded / self.strides[i] + 1
        };
        // A window may not start in the end padding.
        if ceil && (out - 1).saturating_mul(self.strides[i]) >= input.saturating_add(self.pads[i].0)
        {
            out -= 1;
        }
        out
    }
}

/// `[1, s..., 1]` for a channels-last op over `n` spatial dimensions.
pub(super) fn nhwc_list(values: &[i64]) -> Vec<i64> {
    let mut v = vec![1];
    v.extend_from_slice(values);
    v.push(1);
    v
}

/// Pads the spatial dimensions of channels-last `x` with `value`.
pub(super) fn pad_spatial(
    ctx: &mut Ctx,
    base: &str,
    x: &Output,
    pads: &[(i64, i64)],
    value: f64,
) -> Result<Output> {
    let mut p = vec![0i64, 0];
    for &(b, e) in pads {
        p.push(b);
        p.push(e);
    }
    p.extend([0, 0]);
    let rank = pads.len() + 2;
    let paddings = ctx.const_tensor(
        &sub(base, "paddings"),
        savedmodel_graph::Tensor::new(
            &[rank as i64, 2],
            &p.iter().map(|&v| v as i32).collect::<Vec<_>>(),
        )
        .map_err(|e| ctx.build_error(e))?,
    )?;
    let fill = ctx.const_scalar(&sub(base, "pad_value"), x.dtype(), value)?;
    let shape = match x.shape().dims() {
        Some(d) => {
            let mut d = d.to_vec();
            for (i, &(b, e)) in pads.iter().enumerate() {
                if d[i + 1] >= 0 {
                    d[i + 1] = d[i + 1].saturating_add(b + e);
                }
            }
            Shape::new(&d)
        }
        None => Shape::unknown(),
    };
    ctx.op1(
        "PadV2",
        &sub(base, "pad"),
        &[x, &paddings, &fill],
        &[t(x.dtype()), ("Tpaddings", Attr::Type(DType::Int32))],
        shape,
    )
}

fn conv(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let w_name = required_input(ctx, node, 1)?;
    conv_of(ctx, node, x_name, w_name, input_name(node, 2))
}

/// A convolution of ONNX values `x_name` by `w_name` plus `bias`, with the
/// node's attributes (shared with `ConvInteger`).
pub(super) fn conv_of(
    ctx: &mut Ctx,
    node: &NodeView<'_>,
    x_name: &str,
    w_name: &str,
    bias: Option<&str>,
) -> Result<()> {
    let rank = rank_of(ctx, x_name)?;
    if !(3..=5).contains(&rank) {
        return Err(ctx.error(format!("Conv of a rank-{rank} input is not supported")));
    }
    let spatial = rank - 2;
    let base = ctx.node_name(node);
    let x_shape = dims(&ctx.slot(x_name)?.shape).unwrap_or_else(|| vec![-1; rank]);
    let w_shape = dims(&ctx.slot(w_name)?.shape)
        .ok_or_else(|| ctx.error("the weight's shape must be known"))?;
    if w_shape.len() != rank {
        return Err(ctx.error(format!(
            "the weight has rank {}, the input rank {rank}",
            w_shape.len()
        )));
    }
    let group = node.attr_i_or("group", 1)?;
    let kernel = node
        .attr_ints("kernel_shape")?
        .map_or_else(|| w_shape[2..].to_vec(), <[i64]>::to_vec);
    let window = Window::read(ctx, node, kernel.clone(), &x_shape[2..])?;
    let (m, c_per_group) = (w_shape[0], w_shape[1]);
    let c_in = c_per_group * group;
    let dtype = ctx.slot(x_name)?.dtype;

    // 1-D convolutions run as 2-D ones over a height of 1.
    let as_2d = spatial == 1;
    let mut x = ctx.channels_last(x_name)?;
    let (k_dims, strides, dilations, pads) = if as_2d {
        let axis = ctx.const_i32(&sub(&base, "expand_axis"), &[1])?;
        let xs = x.shape().clone();
        let st = match xs.dims() {
            Some(d) => Shape::new(&[d[0], 1, d[1], d[2]]),
            None => Shape::unknown_dims(4),
        };
        x = ctx.op1(
            "ExpandDims",
            &sub(&base, "as_2d"),
            &[&x, &axis],
            &[t(dtype), ("Tdim", Attr::Type(DType::Int32))],
            st,
        )?;
        (
            vec![1, window.kernel[0]],
            vec![1, window.strides[0]],
            vec![1, window.dilations[0]],
            vec![(0, 0), window.pads[0]],
        )
    } else {
        (
            window.kernel.clone(),
            window.strides.clone(),
            window.dilations.clone(),
            window.pads.clone(),
        )
    };
    let tf_spatial = k_dims.len();

    // The filter, in TensorFlow's layout.
    // (A 1-D depthwise filter has no second spatial dim to lay out as one:
    // it takes the grouped path.)
    let depthwise = group > 1 && group == c_in && c_per_group == 1 && tf_spatial == 2 && !as_2d;
    let layout = if depthwise {
        WeightLayout::Depthwise {
            multiplier: (m / group).max(1) as usize,
        }
    } else {
        WeightLayout::Filter
    };
    let folded = folded_batch_norm(ctx, node, w_name, bias, m, dtype)?;
    let mut filter = filter_tensor(
        ctx,
        &base,
        w_name,
        layout,
        folded.as_ref().map(|f| &f.scale),
    )?;
    if as_2d {
        let f_shape = Shape::new(&[1, w_shape[2], c_per_group, m]);
        let target = ctx.const_i32(
            &sub(&base, "filter_2d_shape"),
            &[1, w_shape[2], c_per_group, m],
        )?;
        filter = ctx.op1(
            "Reshape",
            &sub(&base, "filter_2d"),
            &[&filter, &target],
            &[t(dtype), ("Tshape", Attr::Type(DType::Int32))],
            f_shape,
        )?;
    }

    // Padding: "SAME" when ONNX's SAME_UPPER is TensorFlow's; explicit
    // paddings for Conv2D; a PadV2 node otherwise.
    let mut padding = "VALID";
    let mut explicit: Vec<i64> = Vec::new();
    if window.same_upper {
        padding = "SAME";
    } else if pads.iter().any(|&(b, e)| b != 0 || e != 0) {
        if tf_spatial == 2 && !depthwise {
            padding = "EXPLICIT";
            explicit = vec![0, 0];
            for &(b, e) in &pads {
                explicit.push(b);
                explicit.push(e);
            }
            explicit.extend([0, 0]);
        } else {
            x = pad_spatial(ctx, &base, &x, &pads, 0.0)?;
        }
    }

    let mut out_logical = vec![x_shape[0], m];
    for i in 0..spatial {
        out_logical.push(window.out_dim(i, x_shape[2 + i], false));
    }
    let out_logical = Shape::new(&out_logical);
    let stored = if as_2d {
        Shape::new(&[out_logical.dim(0), 1, out_logical.dim(2), m])
    } else {
        permute_shape(&out_logical, &to_channels_last(rank))
    };

    // TensorFlow's CPU Conv3D has no dilations: the filter is dilated
    // instead (zeros between its taps).
    let mut dilations = dilations;
    if tf_spatial == 3 && dilations.iter().any(|&d| d > 1) {
        let mut f_dims = w_shape[2..].to_vec();
        f_dims.extend([c_per_group, m]);
        filter = dilate_filter(ctx, &base, &filter, &f_dims, &dilations)?;
        dilations = vec![1; tf_spatial];
    }
    let mut attrs = vec![
        t(dtype),
        ("strides", Attr::IntList(nhwc_list(&strides))),
        ("dilations", Attr::IntList(nhwc_list(&dilations))),
        ("padding", Attr::Str(padding.as_bytes().to_vec())),
    ];
    if !explicit.is_empty() {
        attrs.push(("explicit_paddings", Attr::IntList(explicit)));
    }
    let mut y = if group == 1 {
        let op = if tf_spatial == 3 { "Conv3D" } else { "Conv2D" };
        ctx.op1(
            op,
            &sub(&base, "conv"),
            &[&x, &filter],
            &attrs,
            stored.clone(),
        )?
    } else if depthwise {
        ctx.op1(
            "DepthwiseConv2dNative",
            &sub(&base, "conv"),
            &[&x, &filter],
            &attrs,
            stored.clone(),
        )?
    } else {
        grouped_conv(ctx, &base, &x, &filter, group, tf_spatial, &attrs, &stored)?
    };
    let bias = match &folded {
        Some(f) => {
            let value = constant::from_f64(dtype, &[m], &f.bias).map_err(|e| ctx.error(e))?;
            Some(ctx.const_tensor(&sub(&base, "folded_bias"), value)?)
        }
        None => bias.map(|b| ctx.plain(b)).transpose()?,
    };
    if let Some(bias) = bias {
        y = ctx.op1(
            "BiasAdd",
            &sub(&base, "bias"),
            &[&y, &bias],
            &[t(dtype)],
            stored.clone(),
        )?;
    }
    if as_2d {
        let st = permute_shape(&out_logical, &to_channels_last(3));
        y = ctx.op1(
            "Squeeze",
            &base,
            &[&y],
            &[t(dtype), ("squeeze_dims", Attr::IntList(vec![1]))],
            st,
        )?;
    }
    let out = match &folded {
        Some(f) => f.output.as_str(),
        None => output0(ctx, node)?,
    };
    ctx.set_channels_last(out, y, out_logical);
    Ok(())
}

/// `filter` (TensorFlow layout `[k1, .., kn, C, M]`, dims `f_dims`) with
/// `d - 1` zeros between neighbouring taps along each spatial axis of
/// dilation `d`: a convolution by it without dilation is the dilated
/// convolution by `filter` (up to an infinite or NaN input element where a
/// zero tap meets it, which gives NaN). Per axis: a new axis of `d` after
/// the taps (the tap, then zeros), merged into the tap axis, and the
/// trailing zeros sliced off.
fn dilate_filter(
    ctx: &mut Ctx,
    base: &str,
    filter: &Output,
    f_dims: &[i64],
    dilations: &[i64],
) -> Result<Output> {
    let dtype = filter.dtype();
    let mut f = filter.clone();
    let mut dims = f_dims.to_vec();
    for (axis, &d) in dilations.iter().enumerate() {
        if d <= 1 {
            continue;
        }
        let k = dims[axis];
        let name = |what: &str| sub(base, &format!("dilate{axis}_{what}"));
        let mut split = dims.clone();
        split.insert(axis + 1, 1);
        let target = ctx.const_i32(&name("split_shape"), &split)?;
        f = ctx.op1(
            "Reshape",
            &name("split"),
            &[&f, &target],
            &[t(dtype), ("Tshape", Attr::Type(DType::Int32))],
            Shape::new(&split),
        )?;
        let mut paddings = vec![0i64; 2 * split.len()];
        paddings[2 * (axis + 1) + 1] = d - 1;
        let rows = split.len() as i64;
        let values: Vec<i32> = paddings.iter().map(|&p| p as i32).collect();
        let table =
            savedmodel_graph::Tensor::new(&[rows, 2], &values).map_err(|e| ctx.build_error(e))?;
        let pads = ctx.const_tensor(&name("paddings"), table)?;
        split[axis + 1] = d;
        f = ctx.op1(
            "Pad",
            &name("zeros"),
            &[&f, &pads],
            &[t(dtype), ("Tpaddings", Attr::Type(DType::Int32))],
            Shape::new(&split),
        )?;
        let mut merged = dims.clone();
        merged[axis] = k * d;
        let target = ctx.const_i32(&name("merged_shape"), &merged)?;
        f = ctx.op1(
            "Reshape",
            &name("merged"),
            &[&f, &target],
            &[t(dtype), ("Tshape", Attr::Type(DType::Int32))],
            Shape::new(&merged),
        )?;
        dims[axis] = (k - 1) * d + 1;
        let begin = ctx.const_i32(&name("begin"), &vec![0; dims.len()])?;
        let size = ctx.const_i32(&name("size"), &dims)?;
        f = ctx.op1(
            "Slice",
            &name("taps"),
            &[&f, &begin, &size],
            &[t(dtype), ("Index", Attr::Type(DType::Int32))],
            Shape::new(&dims),
        )?;
    }
    Ok(f)
}

/// The filter of a convolution in TensorFlow's layout: a variable
/// transposed when the checkpoint is written, or a transposed constant.
/// A `BatchNormalization` folded into a convolution (`fuse.rs`): the
/// factors for the filter's output channels, the convolution's new bias,
/// and the normalization's output, which the convolution defines.
struct FoldedNorm {
    output: String,
    scale: Arc<[f64]>,
    bias: Vec<f64>,
}

/// The normalization planned to fold into `Conv` node `node`, when it can:
/// float32 or float64, a filter known at conversion time, and the
/// normalization's parameters (and the convolution's bias) known vectors of
/// `m` elements, defined already.
fn folded_batch_norm(
    ctx: &Ctx,
    node: &NodeView<'_>,
    w_name: &str,
    bias: Option<&str>,
    m: i64,
    dtype: DType,
) -> Result<Option<FoldedNorm>> {
    if node.op_type() != "Conv" || !matches!(dtype, DType::Float | DType::Double) {
        return Ok(None);
    }
    let Some(fold) = ctx.fusions.batch_norm_after(output0(ctx, node)?).cloned() else {
        return Ok(None);
    };
    let w = ctx.slot(w_name)?;
    let Ok(m) = usize::try_from(m) else {
        return Ok(None);
    };
    if w.dtype != dtype || (w.constant.is_none() && w.weight.is_none()) || m == 0 {
        return Ok(None);
    }
    let vector = |name: &str| -> Result<Option<Vec<f64>>> {
        if !ctx.is_defined(name) || ctx.slot(name)?.dtype != dtype {
            return Ok(None);
        }
        Ok(ctx.known_f64(name, m)?.filter(|v| v.len() == m))
    };
    let mut params = Vec::with_capacity(4);
    for name in &fold.params {
        match vector(name)? {
            Some(v) => params.push(v),
            None => return Ok(None),
        }
    }
    let conv_bias = match bias {
        Some(b) => match vector(b)? {
            Some(v) => v,
            None => return Ok(None),
        },
        None => vec![0.0; m],
    };
    let (gamma, beta, mean, var) = (&params[0], &params[1], &params[2], &params[3]);
    let mut scale = Vec::with_capacity(m);
    let mut new_bias = Vec::with_capacity(m);
    for i in 0..m {
        let s = gamma[i] / (var[i] + fold.epsilon).sqrt();
        scale.push(s);
        new_bias.push(conv_bias[i] * s + beta[i] - mean[i] * s);
    }
    Ok(Some(FoldedNorm {
        output: fold.output,
        scale: scale.into(),
        bias: new_bias,
    }))
}

/// The filter `w_name` in TensorFlow's `layout`; with `scale`, its output
/// channels multiplied by it (a folded normalization, known filters only).
pub(super) fn filter_tensor(
    ctx: &mut Ctx,
    base: &str,
    w_name: &str,
    layout: WeightLayout,
    scale: Option<&Arc<[f64]>>,
) -> Result<Output> {
    let slot = ctx.slot(w_name)?.clone();
    let w_shape = dims(&slot.shape).ok_or_else(|| ctx.error("the weight's shape must be known"))?;
    let perm = crate::convert::weights::filter_perm(w_shape.len());
    if let Some(init) = &slot.weight {
        return match scale {
            Some(scale) => ctx.scaled_weight(init, layout, Arc::clone(scale)),
            None => ctx.weight(init, layout),
        };
    }
    let tf_shape: Vec<i64> = match layout {
        WeightLayout::Depthwise { multiplier } => {
            let m = multiplier as i64;
            vec![w_shape[2], w_shape[3], w_shape[0] / m.max(1), m]
        }
        _ => perm.iter().map(|&p| w_shape[p as usize]).collect(),
    };
    if let Some(value) = &slot.constant {
        let scaled;
        let value = match (scale, value.bytes()) {
            (Some(scale), Some(bytes)) => {
                let b =
                    constant::scale_rows(value.dtype(), bytes, scale).map_err(|e| ctx.error(e))?;
                scaled = savedmodel_graph::Tensor::from_bytes(value.dtype(), &w_shape, b)
                    .map_err(|e| ctx.error(e.to_string()))?;
                &scaled
            }
            _ => value,
        };
        let v = constant::transpose(value, &perm).map_err(|e| ctx.error(e))?;
        let v = constant::reshape(&v, &tf_shape).map_err(|e| ctx.error(e))?;
        return ctx.const_tensor(&sub(base, "filter"), v);
    }
    // A filter computed at run time: transpose it in the graph.
    if scale.is_some() {
        return Err(ctx.error("a filter computed at run time cannot take a folded normalization"));
    }
    let w = ctx.plain(w_name)?;
    let dtype = w.dtype();
    let tw = ctx.transpose(&sub(base, "filter"), &w, &perm)?;
    if matches!(layout, WeightLayout::Depthwise { .. }) {
        let target = ctx.const_i32(&sub(base, "filter_shape"), &tf_shape)?;
        return ctx.op1(
            "Reshape",
            &sub(base, "filter_depthwise"),
            &[&tw, &target],
            &[t(dtype), ("Tshape", Attr::Type(DType::Int32))],
            Shape::new(&tf_shape),
        );
    }
    Ok(tw)
}

/// A convolution with `group` groups: the input and the filter split along
/// channels, one convolution per group, the results concatenated.
#[allow(clippy::too_many_arguments)]
fn grouped_conv(
    ctx: &mut Ctx,
    base: &str,
    x: &Output,
    filter: &Output,
    group: i64,
    tf_spatial: usize,
    attrs: &[(&str, Attr)],
    stored: &Shape,
) -> Result<Output> {
    let dtype = x.dtype();
    let rank = tf_spatial + 2;
    // One scalar for Split's `split_dim` and ConcatV2's `axis`.
    let channel_axis = ctx.const_tensor(
        &sub(base, "channel_axis"),
        savedmodel_graph::Tensor::scalar(rank as i32 - 1),
    )?;
    let split_attrs = [t(dtype), ("num_split", Attr::Int(group))];
    let xs = ctx.op(
        "Split",
        &sub(base, "split_input"),
        &[&channel_axis, x],
        &split_attrs,
        Vec::new(),
    )?;
    let fs = ctx.op(
        "Split",
        &sub(base, "split_filter"),
        &[&channel_axis, filter],
        &split_attrs,
        Vec::new(),
    )?;
    let op = if tf_spatial == 3 { "Conv3D" } else { "Conv2D" };
    let mut parts = Vec::new();
    for (i, (xi, fi)) in xs.iter().zip(&fs).enumerate() {
        parts.push(ctx.op1(
            op,
            &sub(base, &format!("conv{i}")),
            &[xi, fi],
            attrs,
            Shape::unknown_dims(rank),
        )?);
    }
    let mut ins: Vec<&Output> = parts.iter().collect();
    ins.push(&channel_axis);
    ctx.op1(
        "ConcatV2",
        &sub(base, "conv"),
        &ins,
        &[
            t(dtype),
            ("N", Attr::Int(group)),
            ("Tidx", Attr::Type(DType::Int32)),
        ],
        stored.clone(),
    )
}

/// The most channels a normalization's parameters are read for, to fold
/// them at conversion time (far above any real model's).
const MAX_FOLDED_CHANNELS: usize = 1 << 20;

fn batch_norm(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    if node.attr_i_or("training_mode", 0)? != 0 {
        return batch_norm_training(ctx, node);
    }
    if node.proto().output.iter().skip(1).any(|o| !o.is_empty()) {
        return Err(ctx.error("the running mean and variance outputs are training-only"));
    }
    let x_name = required_input(ctx, node, 0)?;
    let names: Vec<&str> = (1..5)
        .map(|i| required_input(ctx, node, i))
        .collect::<Result<_>>()?;
    let epsilon = f64::from(node.attr_f_or("epsilon", 1e-5)?);
    let rank = rank_of(ctx, x_name)?;
    let base = ctx.node_name(node);
    let dtype = ctx.slot(x_name)?.dtype;
    let logical = ctx.slot(x_name)?.shape.clone();
    let channels_last = rank >= 3 && ctx.is_channels_last(x_name);
    // Parameters of shape [C], laid out to broadcast against x: along the
    // last axis channels last, as [C, 1, ..., 1] in ONNX layout.
    let param_shape: Vec<i64> = if channels_last || rank < 2 {
        vec![-1]
    } else {
        let mut s = vec![-1];
        s.extend(std::iter::repeat_n(1, rank - 2));
        s
    };
    // Parameters known at conversion time (constants, or initializers held
    // as variables) fold to one scale and one shift vector.
    let known: Vec<Option<Vec<f64>>> = names
        .iter()
        .map(|n| ctx.known_f64(n, MAX_FOLDED_CHANNELS))
        .collect::<Result<_>>()?;
    let known: Option<Vec<Vec<f64>>> = known.into_iter().collect();
    let (scale, shift) = if let Some(v) = known.filter(|v| v.iter().all(|p| p.len() == v[0].len()))
    {
        let (gamma, beta, mean, var) = (&v[0], &v[1], &v[2], &v[3]);
        let c = gamma.len();
        let mut scale = Vec::with_capacity(c);
        let mut shift = Vec::with_capacity(c);
        for i in 0..c {
            let s = gamma[i] / (var[i] + epsilon).sqrt();
            scale.push(s);
            shift.push(beta[i] - mean[i] * s);
        }
        let mut shape = param_shape.clone();
        shape[0] = c as i64;
        let scale = constant::from_f64(dtype, &shape, &scale).map_err(|e| ctx.error(e))?;
        let shift = constant::from_f64(dtype, &shape, &shift).map_err(|e| ctx.error(e))?;
        (
            ctx.const_tensor(&sub(&base, "scale"), scale)?,
            ctx.const_tensor(&sub(&base, "shift"), shift)?,
        )
    } else {
        let p: Vec<Output> = names.iter().map(|n| ctx.plain(n)).collect::<Result<_>>()?;
        let eps = ctx.const_scalar(&sub(&base, "epsilon"), dtype, epsilon)?;
        let tt = [t(dtype)];
        let v = ctx.op1(
            "AddV2",
            &sub(&base, "var_eps"),
            &[&p[3], &eps],
            &tt,
            Shape::unknown(),
        )?;
        let r = ctx.op1("Rsqrt", &sub(&base, "rsqrt"), &[&v], &tt, Shape::unknown())?;
        let s = ctx.op1(
            "Mul",
            &sub(&base, "scale_vec"),
            &[&p[0], &r],
            &tt,
            Shape::unknown(),
        )?;
        let ms = ctx.op1(
            "Mul",
            &sub(&base, "mean_scale"),
            &[&p[2], &s],
            &tt,
            Shape::unknown(),
        )?;
        let b = ctx.op1(
            "Sub",
            &sub(&base, "shift_vec"),
            &[&p[1], &ms],
            &tt,
            Shape::unknown(),
        )?;
        let target = ctx.const_i32(&sub(&base, "param_shape"), &param_shape)?;
        let reshape_attrs = [t(dtype), ("Tshape", Attr::Type(DType::Int32))];
        (
            ctx.op1(
                "Reshape",
                &sub(&base, "scale"),
                &[&s, &target],
                &reshape_attrs,
                Shape::unknown(),
            )?,
            ctx.op1(
                "Reshape",
                &sub(&base, "shift"),
                &[&b, &target],
                &reshape_attrs,
                Shape::unknown(),
            )?,
        )
    };
    let x = if channels_last {
        ctx.channels_last(x_name)?
    } else {
        ctx.plain(x_name)?
    };
    let st = x.shape().clone();
    let y = ctx.op1(
        "Mul",
        &sub(&base, "scaled"),
        &[&x, &scale],
        &[t(dtype)],
        st.clone(),
    )?;
    let y = ctx.op1("AddV2", &base, &[&y, &shift], &[t(dtype)], st)?;
    let out = output0(ctx, node)?;
    if channels_last {
        ctx.set_channels_last(out, y, logical);
    } else {
        ctx.set_plain(out, y, logical);
    }
    Ok(())
}

/// `training_mode=1` (opset 14+): normalized by the batch's own mean and
/// (population) variance over every axis but the channels; the optional
/// outputs are the running statistics updated with `momentum`
/// (`onnx/reference/ops/op_batch_normalization.py`).
fn batch_norm_training(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let names: Vec<&str> = (1..5)
        .map(|i| required_input(ctx, node, i))
        .collect::<Result<_>>()?;
    let epsilon = f64::from(node.attr_f_or("epsilon", 1e-5)?);
    let momentum = f64::from(node.attr_f_or("momentum", 0.9)?);
    let rank = rank_of(ctx, x_name)?;
    if rank < 2 {
        return Err(ctx.error("BatchNormalization needs an input of rank 2 or more"));
    }
    let base = ctx.node_name(node);
    let logical = ctx.slot(x_name)?.shape.clone();
    let x = ctx.plain(x_name)?;
    let dtype = x.dtype();
    let tt = [t(dtype)];
    let st = x.shape().clone();
    let axes: Vec<i64> = std::iter::once(0).chain(2..rank as i64).collect();
    let axes = ctx.const_i32(&sub(&base, "batch_axes"), &axes)?;
    let reduce = [
        t(dtype),
        ("keep_dims", Attr::Bool(true)),
        ("Tidx", Attr::Type(DType::Int32)),
    ];
    let mean = ctx.op1(
        "Mean",
        &sub(&base, "batch_mean"),
        &[&x, &axes],
        &reduce,
        Shape::unknown_dims(rank),
    )?;
    let centered = ctx.op1(
        "Sub",
        &sub(&base, "centered"),
        &[&x, &mean],
        &tt,
        st.clone(),
    )?;
    let squares = ctx.op1(
        "Square",
        &sub(&base, "squares"),
        &[&centered],
        &tt,
        st.clone(),
    )?;
    let var = ctx.op1(
        "Mean",
        &sub(&base, "batch_var"),
        &[&squares, &axes],
        &reduce,
        Shape::unknown_dims(rank),
    )?;
    let eps = ctx.const_scalar(&sub(&base, "epsilon"), dtype, epsilon)?;
    let v = ctx.op1(
        "AddV2",
        &sub(&base, "var_eps"),
        &[&var, &eps],
        &tt,
        Shape::unknown_dims(rank),
    )?;
    let r = ctx.op1(
        "Rsqrt",
        &sub(&base, "rsqrt"),
        &[&v],
        &tt,
        Shape::unknown_dims(rank),
    )?;
    let mut param_shape = vec![-1i64];
    param_shape.extend(std::iter::repeat_n(1, rank - 2));
    let target = ctx.const_i32(&sub(&base, "param_shape"), &param_shape)?;
    let reshape_attrs = [t(dtype), ("Tshape", Attr::Type(DType::Int32))];
    let mut params = Vec::new();
    for (i, n) in names[..2].iter().enumerate() {
        let p = ctx.plain(n)?;
        params.push(ctx.op1(
            "Reshape",
            &sub(&base, &format!("param{i}")),
            &[&p, &target],
            &reshape_attrs,
            Shape::unknown_dims(rank - 1),
        )?);
    }
    let y = ctx.op1(
        "Mul",
        &sub(&base, "normalized"),
        &[&centered, &r],
        &tt,
        st.clone(),
    )?;
    let y = ctx.op1(
        "Mul",
        &sub(&base, "scaled"),
        &[&y, &params[0]],
        &tt,
        st.clone(),
    )?;
    let y = ctx.op1("AddV2", &base, &[&y, &params[1]], &tt, st)?;
    ctx.set_plain(output0(ctx, node)?, y, logical);
    // The running statistics: input * momentum + batch * (1 - momentum).
    let channels = ctx.const_i32(&sub(&base, "channels"), &[-1])?;
    for (i, (batch, what)) in [(&mean, "running_mean"), (&var, "running_var")]
        .into_iter()
        .enumerate()
    {
        let Some(out) = super::output_name(node, i + 1) else {
            continue;
        };
        let flat = ctx.op1(
            "Reshape",
            &sub(&base, &format!("{what}_batch")),
            &[batch, &channels],
            &reshape_attrs,
            Shape::unknown_dims(1),
        )?;
        let running = ctx.plain(names[2 + i])?;
        let m = ctx.const_scalar(&sub(&base, &format!("{what}_momentum")), dtype, momentum)?;
        let k = ctx.const_scalar(&sub(&base, &format!("{what}_rest")), dtype, 1.0 - momentum)?;
        let a = ctx.op1(
            "Mul",
            &sub(&base, &format!("{what}_kept")),
            &[&running, &m],
            &tt,
            Shape::unknown_dims(1),
        )?;
        let b = ctx.op1(
            "Mul",
            &sub(&base, &format!("{what}_new")),
            &[&flat, &k],
            &tt,
            Shape::unknown_dims(1),
        )?;
        let shape = ctx.slot(names[2 + i])?.shape.clone();
        let o = ctx.op1("AddV2", &sub(&base, what), &[&a, &b], &tt, shape.clone())?;
        ctx.set_plain(out, o, shape);
    }
    Ok(())
}

fn softmax(ctx: &mut Ctx, node: &NodeView<'_>, op: &str) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x_name)?;
    let base = ctx.node_name(node);
    let opset = node.opset_version()?;
    let default_axis = if opset >= 13 { -1 } else { 1 };
    // From opset 13 the axis must name an axis of the input (in
    // [-rank, rank - 1]), which a scalar has none of; before, the input is
    // flattened to 2-D first, which a scalar survives.
    if opset >= 13 && rank == 0 {
        return Err(ctx.error(format!(
            "{op} of a scalar: from opset 13 its axis must be one of the input's axes"
        )));
    }
    let axis = normalize_axis(ctx, node.attr_i_or("axis", default_axis)?, rank.max(1))?;
    // Over the channels of a channels-last value (a segmentation head):
    // the channels are its last axis already.
    if opset >= 13 && rank >= 3 && axis == 1 && ctx.is_channels_last(x_name) {
        let x = ctx.channels_last(x_name)?;
        let logical = ctx.slot(x_name)?.shape.clone();
        let y = ctx.op1(op, &base, &[&x], &[t(x.dtype())], x.shape().clone())?;
        ctx.set_channels_last(output0(ctx, node)?, y, logical);
        return Ok(());
    }
    let x = ctx.plain(x_name)?;
    let dtype = x.dtype();
    let logical = ctx.slot(x_name)?.shape.clone();
    let y = if opset < 13 {
        // Before opset 13 the input is flattened to 2-D at `axis`.
        let shape_t = ctx.op1(
            "Shape",
            &sub(&base, "shape"),
            &[&x],
            &[t(dtype), ("out_type", Attr::Type(DType::Int32))],
            Shape::new(&[rank as i64]),
        )?;
        let target = match logical.dims() {
            Some(d) if d.iter().all(|&v| v >= 0) => {
                let outer: i64 = d[..axis].iter().product();
                vec![outer, -1]
            }
            _ if axis == 0 => vec![1, -1],
            _ => {
                return Err(
                    ctx.error("Softmax before opset 13 with a dynamic shape is not supported")
                );
            }
        };
        let target = ctx.const_i32(&sub(&base, "flat_shape"), &target)?;
        let ra = [t(dtype), ("Tshape", Attr::Type(DType::Int32))];
        let flat = ctx.op1(
            "Reshape",
            &sub(&base, "flat"),
            &[&x, &target],
            &ra,
            Shape::unknown_dims(2),
        )?;
        let s = ctx.op1(
            op,
            &sub(&base, "softmax"),
            &[&flat],
            &[t(dtype)],
            Shape::unknown_dims(2),
        )?;
        ctx.op1("Reshape", &base, &[&s, &shape_t], &ra, logical.clone())?
    } else if axis + 1 == rank {
        ctx.op1(op, &base, &[&x], &[t(dtype)], logical.clone())?
    } else {
        let mut perm: Vec<i64> = (0..rank as i64).collect();
        perm.swap(axis, rank - 1);
        let xt = ctx.transpose(&sub(&base, "to_last"), &x, &perm)?;
        let s = ctx.op1(
            op,
            &sub(&base, "softmax"),
            &[&xt],
            &[t(dtype)],
            xt.shape().clone(),
        )?;
        ctx.transpose(&base, &s, &perm)?
    };
    ctx.set_plain(output0(ctx, node)?, y, logical);
    Ok(())
}
