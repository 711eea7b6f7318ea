//! `Resize` and `Upsample`, exactly as ONNX defines them
//! (`onnx/defs/tensor/defs.cc`, reference `onnx/reference/ops/op_resize.py`),
//! as gathers: TensorFlow's resize kernels implement only some of ONNX's
//! coordinate transformations and rounding modes, so each resized axis is
//! computed in the graph instead.
//!
//! For each resized axis in turn (the order of ONNX's separable
//! reference, so rounding matches), every output position `o` maps to an input coordinate `x`
//! (float64, by `coordinate_transformation_mode`). Nearest picks one
//! index by `nearest_mode`; linear and cubic take the taps
//! `base + j` around `base = ceil(x) - 1` (so the fraction `x - base` is in
//! (0, 1], as ONNX's reference prefers the lower neighbour), clamped into
//! the axis (edge padding), weighted by the kernel at `j - (x - base)`.
//! Divisions are `DivNoNan`, which Grappler leaves alone: it rewrites a
//! `RealDiv` by a constant into a multiplication by the reciprocal, which
//! rounds differently (and moves nearest's rounding boundaries).
//! Scales and sizes may be known only when the model runs: everything is
//! computed from them in the graph. Integers are interpolated in float64
//! and rounded and saturated back.

use savedmodel_graph::{Attr, DType, Output, Shape};

use super::build::{Builder, stored_axis, t};
use super::{Converter, input_name, normalize_axis, output0, rank_of, required_input};
use crate::convert::constant;
use crate::convert::context::Ctx;
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "Resize" => resize,
        "Upsample" => upsample,
        _ => return None,
    };
    Some(f)
}

/// How nearest rounds a coordinate.
#[derive(Clone, Copy)]
enum Rounding {
    PreferFloor,
    PreferCeil,
    Floor,
    Ceil,
}

/// The interpolation.
#[derive(Clone, Copy)]
enum Kind {
    Nearest(Rounding),
    Linear,
    /// Cubic with coefficient `a`.
    Cubic(f64),
}

/// Everything a resize needs, from its attributes and inputs.
struct Spec<'a> {
    kind: Kind,
    /// Downsampling filters with the kernel stretched by 1/scale.
    antialias: bool,
    transform: &'a str,
    exclude_outside: bool,
    extrapolation: f64,
    /// `keep_aspect_ratio_policy` (with sizes).
    policy: &'a str,
    axes: Vec<usize>,
    roi: Option<&'a str>,
    scales: Option<Scales<'a>>,
    sizes: Option<&'a str>,
}

/// Scales given as an input or (Upsample-7) an attribute.
enum Scales<'a> {
    Input(&'a str),
    Known(Vec<f64>),
}

/// Input `i` when present and not empty (exporters pass an empty tensor
/// for an unused `roi` or `scales`).
fn present<'a>(ctx: &Ctx, node: &NodeView<'a>, i: usize) -> Result<Option<&'a str>> {
    let Some(name) = input_name(node, i) else {
        return Ok(None);
    };
    let empty = ctx.slot(name)?.shape.dims() == Some(&[0]);
    Ok((!empty).then_some(name))
}

fn resize(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x)?;
    let opset = node.opset_version()?;
    let mode = node.attr_s_or("mode", "nearest")?;
    let (transform, rounding, roi, scales, sizes) = if opset < 11 {
        // Resize-10 samples as Upsample does.
        let scales = required_input(ctx, node, 1)?;
        (
            "asymmetric",
            Rounding::Floor,
            None,
            Some(Scales::Input(scales)),
            None,
        )
    } else {
        let rounding = match node.attr_s_or("nearest_mode", "round_prefer_floor")? {
            "round_prefer_floor" => Rounding::PreferFloor,
            "round_prefer_ceil" => Rounding::PreferCeil,
            "floor" => Rounding::Floor,
            "ceil" => Rounding::Ceil,
            other => return Err(ctx.error(format!("nearest_mode {other:?} is not supported"))),
        };
        (
            node.attr_s_or("coordinate_transformation_mode", "half_pixel")?,
            rounding,
            present(ctx, node, 1)?,
            present(ctx, node, 2)?.map(Scales::Input),
            present(ctx, node, 3)?,
        )
    };
    let kind = match mode {
        "nearest" => Kind::Nearest(rounding),
        "linear" | "bilinear" => Kind::Linear,
        "cubic" => Kind::Cubic(f64::from(node.attr_f_or("cubic_coeff_a", -0.75)?)),
        other => return Err(ctx.error(format!("mode {other:?} is not supported"))),
    };
    let axes = match node.attr_ints("axes")? {
        Some(a) => a
            .iter()
            .map(|&a| normalize_axis(ctx, a, rank))
            .collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    let spec = Spec {
        kind,
        transform,
        antialias: node.attr_i_or("antialias", 0)? != 0 && !matches!(kind, Kind::Nearest(_)),
        exclude_outside: node.attr_i_or("exclude_outside", 0)? != 0,
        extrapolation: f64::from(node.attr_f_or("extrapolation_value", 0.0)?),
        policy: node.attr_s_or("keep_aspect_ratio_policy", "stretch")?,
        axes,
        roi: if transform == "tf_crop_and_resize" {
            Some(roi.ok_or_else(|| ctx.error("tf_crop_and_resize needs roi"))?)
        } else {
            None
        },
        scales,
        sizes,
    };
    if spec.scales.is_none() && spec.sizes.is_none() {
        return Err(ctx.error("one of scales and sizes is required"));
    }
    run(ctx, node, x, &spec)
}

fn upsample(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x = required_input(ctx, node, 0)?;
    let rank = rank_of(ctx, x)?;
    let kind = match node.attr_s_or("mode", "nearest")? {
        "nearest" => Kind::Nearest(Rounding::Floor),
        "linear" | "bilinear" => Kind::Linear,
        other => return Err(ctx.error(format!("mode {other:?} is not supported"))),
    };
    let scales = if node.opset_version()? >= 9 {
        Scales::Input(required_input(ctx, node, 1)?)
    } else {
        let s = node.required("scales", node.attr_floats("scales")?)?;
        Scales::Known(s.iter().map(|&v| f64::from(v)).collect())
    };
    let spec = Spec {
        kind,
        transform: "asymmetric",
        antialias: false,
        exclude_outside: false,
        extrapolation: 0.0,
        policy: "stretch",
        axes: (0..rank).collect(),
        roi: None,
        scales: Some(scales),
        sizes: None,
    };
    run(ctx, node, x, &spec)
}

/// The scales or sizes known at conversion time, as (scales, sizes).
fn known_params(ctx: &Ctx, spec: &Spec<'_>) -> (Option<Vec<f64>>, Option<Vec<i64>>) {
    let scales = match &spec.scales {
        Some(Scales::Known(v)) => Some(v.clone()),
        Some(Scales::Input(n)) => ctx.constant(n).and_then(|v| constant::to_f64(v).ok()),
        None => None,
    };
    let sizes = spec
        .sizes
        .and_then(|n| ctx.constant(n))
        .and_then(|v| constant::to_i64(v).ok());
    (scales, sizes)
}

/// The output dims where the input dims and the parameters are known.
fn output_dims(
    dims: &[i64],
    spec: &Spec<'_>,
    scales: &Option<Vec<f64>>,
    sizes: &Option<Vec<i64>>,
) -> Vec<i64> {
    let mut out = dims.to_vec();
    let n = spec.axes.len();
    if let Some(s) = scales.as_ref().filter(|s| s.len() == n) {
        for (k, &a) in spec.axes.iter().enumerate() {
            out[a] = if dims[a] < 0 {
                -1
            } else {
                (dims[a] as f64 * s[k]).floor() as i64
            };
        }
    } else if let Some(s) = sizes.as_ref().filter(|s| s.len() == n) {
        let known = spec.axes.iter().all(|&a| dims[a] >= 0);
        let common = match spec.policy {
            "not_larger" | "not_smaller" if known => {
                let ratios = spec
                    .axes
                    .iter()
                    .enumerate()
                    .map(|(k, &a)| s[k] as f64 / dims[a] as f64);
                Some(if spec.policy == "not_larger" {
                    ratios.fold(f64::INFINITY, f64::min)
                } else {
                    ratios.fold(f64::NEG_INFINITY, f64::max)
                })
            }
            _ => None,
        };
        for (k, &a) in spec.axes.iter().enumerate() {
            out[a] = match common {
                // ONNX rounds half up here.
                Some(c) => (c * dims[a] as f64 + 0.5).floor() as i64,
                None if spec.policy == "stretch" => s[k].max(-1),
                None => -1,
            };
        }
    } else {
        for &a in &spec.axes {
            out[a] = -1;
        }
    }
    out
}

fn run(ctx: &mut Ctx, node: &NodeView<'_>, x: &str, spec: &Spec<'_>) -> Result<()> {
    let rank = rank_of(ctx, x)?;
    let out = output0(ctx, node)?;
    let dims = ctx
        .slot(x)?
        .shape
        .dims()
        .map_or_else(|| vec![-1; rank], <[i64]>::to_vec);
    let (known_scales, known_sizes) = known_params(ctx, spec);
    let logical = Shape::new(&output_dims(&dims, spec, &known_scales, &known_sizes));
    let n = spec.axes.len() as i64;
    let mut b = Builder::new(ctx, node);
    // A channels-last value is resized as it is: each ONNX axis maps to
    // its place in that layout, so no transpose is needed around it.
    let channels_last = rank >= 3 && b.ctx.is_channels_last(x);
    let physical = |a: usize| stored_axis(channels_last, rank, a);
    let mut cur = if channels_last {
        b.ctx.channels_last(x)?
    } else {
        b.ctx.plain(x)?
    };
    let dtype = cur.dtype();
    // Integers are interpolated in float64 (nearest only moves them).
    let widened = !constant::is_float(dtype) && !matches!(spec.kind, Kind::Nearest(_));
    if widened {
        cur = b.cast(&cur, DType::Double)?;
    }
    let scales = match &spec.scales {
        Some(Scales::Known(v)) => Some(b.tensor(savedmodel_graph::Tensor::vector(v))?),
        Some(Scales::Input(name)) => {
            let v = b.ctx.plain(name)?;
            Some(b.cast(&v, DType::Double)?)
        }
        None => None,
    };
    let sizes = spec.sizes.map(|s| b.int64_input(s)).transpose()?;
    let roi = match spec.roi {
        Some(r) => {
            let v = b.ctx.plain(r)?;
            Some(b.cast(&v, DType::Double)?)
        }
        None => None,
    };
    // keep_aspect_ratio_policy: one scale for every resized axis.
    let common = match (&sizes, scales.is_none(), spec.policy) {
        (Some(s), true, policy @ ("not_larger" | "not_smaller")) => {
            let shape = b.shape(&cur)?;
            let which: Vec<i64> = spec.axes.iter().map(|&a| physical(a) as i64).collect();
            let which = b.i64s(&which)?;
            let in_dims = b.gather(&shape, &which, 0, Shape::new(&[n]))?;
            let in_dims = b.cast(&in_dims, DType::Double)?;
            let s = b.cast(s, DType::Double)?;
            let ratios = b.bin("DivNoNan", &s, &in_dims)?;
            let zero = b.tensor(savedmodel_graph::Tensor::scalar(0i32))?;
            Some(b.op(
                if policy == "not_larger" { "Min" } else { "Max" },
                &[&ratios, &zero],
                &[
                    t(DType::Double),
                    ("Tidx", Attr::Type(DType::Int32)),
                    ("keep_dims", Attr::Bool(false)),
                ],
                Shape::scalar(),
            )?)
        }
        (_, _, "stretch" | "not_larger" | "not_smaller") => None,
        (_, _, other) => {
            return Err(b.ctx.error(format!(
                "keep_aspect_ratio_policy {other:?} is not supported"
            )));
        }
    };
    for (k, &a) in spec.axes.iter().enumerate() {
        let unchanged = known_scales
            .as_ref()
            .is_some_and(|s| s.get(k) == Some(&1.0))
            && spec.roi.is_none();
        if unchanged {
            continue;
        }
        let p = physical(a);
        let shape = b.shape(&cur)?;
        let in_i = b.element(&shape, p as i64)?;
        let in_f = b.cast(&in_i, DType::Double)?;
        let (scale, out_i) = if let Some(c) = &common {
            // ONNX rounds half up here: floor(c * dim + 0.5).
            let w = b.bin("Mul", c, &in_f)?;
            let half = b.scalar(DType::Double, 0.5)?;
            let w = b.bin("AddV2", &w, &half)?;
            let w = b.un("Floor", &w)?;
            (c.clone(), b.cast(&w, DType::Int64)?)
        } else if let Some(s) = &scales {
            let scale = b.element(s, k as i64)?;
            let w = b.bin("Mul", &scale, &in_f)?;
            let w = b.un("Floor", &w)?;
            (scale, b.cast(&w, DType::Int64)?)
        } else if let Some(s) = &sizes {
            let out_i = b.element(s, k as i64)?;
            let out_f = b.cast(&out_i, DType::Double)?;
            (b.bin("DivNoNan", &out_f, &in_f)?, out_i)
        } else {
            return Err(b.ctx.error("one of scales and sizes is required"));
        };
        let coords = coordinates(&mut b, spec, k, n, &scale, &in_f, &out_i, roi.as_ref())?;
        let one_f = b.scalar(DType::Double, 1.0)?;
        let last = b.bin("Sub", &in_f, &one_f)?;
        let mut trailing = vec![-1i64];
        trailing.extend(std::iter::repeat_n(1, rank - 1 - p));
        let mut value = match spec.kind {
            Kind::Nearest(r) => {
                let index = match r {
                    Rounding::PreferFloor => {
                        let half = b.scalar(DType::Double, 0.5)?;
                        let v = b.bin("Sub", &coords, &half)?;
                        b.un("Ceil", &v)?
                    }
                    Rounding::PreferCeil => {
                        let half = b.scalar(DType::Double, 0.5)?;
                        let v = b.bin("AddV2", &coords, &half)?;
                        b.un("Floor", &v)?
                    }
                    Rounding::Floor => b.un("Floor", &coords)?,
                    Rounding::Ceil => b.un("Ceil", &coords)?,
                };
                let index = clamp_index(&mut b, &index, &last)?;
                b.gather(&cur, &index, p, Shape::unknown_dims(rank))?
            }
            Kind::Linear | Kind::Cubic(_) => {
                let taps = taps(spec, k, dims[a], &known_scales, &known_sizes)
                    .ok_or_else(|| {
                        b.ctx.error(
                            "antialias needs the scale (at least 1/16), or the input dimension (at most 16), when the model is converted",
                        )
                    })?;
                let axis = Axis {
                    x: &cur,
                    coords: &coords,
                    scale: &scale,
                    last: &last,
                    a: p,
                    trailing: &trailing,
                };
                interpolate(&mut b, spec, &axis, &taps)?
            }
        };
        if spec.roi.is_some() {
            // tf_crop_and_resize: positions outside the input take the
            // extrapolation value.
            let zero = b.scalar(DType::Double, 0.0)?;
            let below = b.op(
                "Less",
                &[&coords, &zero],
                &[t(DType::Double)],
                Shape::unknown(),
            )?;
            let above = b.op(
                "Greater",
                &[&coords, &last],
                &[t(DType::Double)],
                Shape::unknown(),
            )?;
            let outside = b.op("LogicalOr", &[&below, &above], &[], Shape::unknown())?;
            let outside = b.reshape(&outside, &trailing)?;
            let fill = b.scalar(cur.dtype(), spec.extrapolation)?;
            value = b.select(&outside, &fill, &value)?;
        }
        cur = value;
    }
    if widened {
        cur = saturate(&mut b, &cur, dtype)?;
    }
    if channels_last {
        ctx.set_channels_last(out, cur, logical);
    } else {
        ctx.set_plain(out, cur, logical);
    }
    Ok(())
}

/// The input coordinate (float64) of every output position along the
/// `k`-th resized axis.
#[allow(clippy::too_many_arguments)]
fn coordinates(
    b: &mut Builder<'_>,
    spec: &Spec<'_>,
    k: usize,
    n: i64,
    scale: &Output,
    in_f: &Output,
    out_i: &Output,
    roi: Option<&Output>,
) -> Result<Output> {
    let zero = b.i64(0)?;
    let one = b.i64(1)?;
    let o = b.range(&zero, out_i, &one)?;
    let o = b.cast(&o, DType::Double)?;
    let half = b.scalar(DType::Double, 0.5)?;
    let one_f = b.scalar(DType::Double, 1.0)?;
    // The output width as ONNX computes it: scale * input width.
    let width = b.bin("Mul", scale, in_f)?;
    let is_one = b.op(
        "Equal",
        &[&width, &one_f],
        &[t(DType::Double)],
        Shape::scalar(),
    )?;
    let half_pixel = |b: &mut Builder<'_>| -> Result<Output> {
        let v = b.bin("AddV2", &o, &half)?;
        let v = b.bin("DivNoNan", &v, scale)?;
        b.bin("Sub", &v, &half)
    };
    match spec.transform {
        "half_pixel" => half_pixel(b),
        "pytorch_half_pixel" => {
            let v = half_pixel(b)?;
            let fallback = b.scalar(DType::Double, -0.5)?;
            b.select(&is_one, &fallback, &v)
        }
        "asymmetric" => b.bin("DivNoNan", &o, scale),
        "align_corners" => {
            let span = b.bin("Sub", in_f, &one_f)?;
            let steps = b.bin("Sub", &width, &one_f)?;
            let v = b.bin("Mul", &o, &span)?;
            let v = b.bin("DivNoNan", &v, &steps)?;
            let zero_f = b.scalar(DType::Double, 0.0)?;
            b.select(&is_one, &zero_f, &v)
        }
        "half_pixel_symmetric" => {
            let out_f = b.cast(out_i, DType::Double)?;
            let adjustment = b.bin("DivNoNan", &out_f, &width)?;
            let two = b.scalar(DType::Double, 2.0)?;
            let center = b.bin("DivNoNan", in_f, &two)?;
            let rest = b.bin("Sub", &one_f, &adjustment)?;
            let offset = b.bin("Mul", &center, &rest)?;
            let v = half_pixel(b)?;
            b.bin("AddV2", &offset, &v)
        }
        "tf_crop_and_resize" => {
            let roi = roi.ok_or_else(|| b.ctx.error("tf_crop_and_resize needs roi"))?;
            let start = b.element(roi, k as i64)?;
            let end = b.element(roi, k as i64 + n)?;
            let span = b.bin("Sub", in_f, &one_f)?;
            let extent = b.bin("Sub", &end, &start)?;
            let extent = b.bin("Mul", &extent, &span)?;
            let two = b.scalar(DType::Double, 2.0)?;
            let single = b.bin("DivNoNan", &extent, &two)?;
            let steps = b.bin("Sub", &width, &one_f)?;
            let v = b.bin("Mul", &o, &extent)?;
            let v = b.bin("DivNoNan", &v, &steps)?;
            let v = b.select(&is_one, &single, &v)?;
            let origin = b.bin("Mul", &start, &span)?;
            b.bin("AddV2", &v, &origin)
        }
        other => Err(b.ctx.error(format!(
            "coordinate_transformation_mode {other:?} is not supported"
        ))),
    }
}

/// A float64 index clamped into `[0, last]`, as int64.
fn clamp_index(b: &mut Builder<'_>, index: &Output, last: &Output) -> Result<Output> {
    let zero = b.scalar(DType::Double, 0.0)?;
    let v = b.bin("Minimum", index, last)?;
    let v = b.bin("Maximum", &v, &zero)?;
    b.cast(&v, DType::Int64)
}

/// The tap offsets `j` (taps at `base + j`) along the `k`-th resized axis.
/// Without antialias: the kernel's support. With it, the kernel is
/// stretched by 1/scale when downsampling, so the taps are
/// `floor(-r/scale) + 1 ..= -floor(-r/scale)` for a kernel of radius `r`
/// (ONNX's reference); when the scale is known only when the model runs,
/// a superset from the input dimension `dim` (an output of at least one
/// element means 1/scale <= dim), whose extra taps get weight 0.
fn taps(
    spec: &Spec<'_>,
    k: usize,
    dim: i64,
    scales: &Option<Vec<f64>>,
    sizes: &Option<Vec<i64>>,
) -> Option<Vec<i64>> {
    let radius = match spec.kind {
        Kind::Cubic(_) => 2.0,
        _ => 1.0,
    };
    if !spec.antialias {
        let start = 1 - radius as i64;
        return Some((start..=radius as i64).collect());
    }
    let known = match (scales, sizes) {
        (Some(s), _) => s.get(k).copied(),
        (None, Some(s)) if dim > 0 && spec.policy == "stretch" => {
            s.get(k).map(|&v| v as f64 / dim as f64)
        }
        _ => None,
    };
    let inverse = match known {
        Some(s) if s > 0.0 => 1.0 / s.min(1.0),
        Some(_) => return None,
        None if (1..=16).contains(&dim) => dim as f64,
        None => return None,
    };
    let start = (-radius * inverse).floor() as i64 + 1;
    // A graph of at most 64 taps per axis.
    (start > -32).then(|| (start..=1 - start).collect())
}

/// One resized axis: the value, its input coordinates, its scale, its
/// last index (float64), the axis and the shape that broadcasts a vector
/// along it.
struct Axis<'a> {
    x: &'a Output,
    coords: &'a Output,
    scale: &'a Output,
    last: &'a Output,
    a: usize,
    trailing: &'a [i64],
}

/// Linear or cubic interpolation along one axis: the weighted sum of the
/// taps around each coordinate.
fn interpolate(
    b: &mut Builder<'_>,
    spec: &Spec<'_>,
    axis: &Axis<'_>,
    taps: &[i64],
) -> Result<Output> {
    let Axis {
        x,
        coords,
        scale,
        last,
        a,
        trailing,
    } = *axis;
    let rank = trailing.len() + a;
    let one_f = b.scalar(DType::Double, 1.0)?;
    let ceil = b.un("Ceil", coords)?;
    let base = b.bin("Sub", &ceil, &one_f)?;
    let fraction = b.bin("Sub", coords, &base)?;
    let stretch = if spec.antialias {
        Some(b.bin("Minimum", scale, &one_f)?)
    } else {
        None
    };
    let mut weights = Vec::new();
    let mut positions = Vec::new();
    for &j in taps {
        let jf = b.scalar(DType::Double, j as f64)?;
        // The tap's distance |j - f|, for the near taps in the form ONNX's
        // reference computes it (so the weights round alike).
        let mut d = match j {
            -1 => b.bin("AddV2", &fraction, &one_f)?,
            0 => fraction.clone(),
            1 => b.bin("Sub", &one_f, &fraction)?,
            2 => {
                let rest = b.bin("Sub", &one_f, &fraction)?;
                b.bin("AddV2", &rest, &one_f)?
            }
            _ => {
                let d = b.bin("Sub", &jf, &fraction)?;
                b.un("Abs", &d)?
            }
        };
        let w = match (&stretch, spec.kind) {
            (None, Kind::Cubic(c)) => cubic_weight(b, &d, c, (0..=1).contains(&j))?,
            // Linear: 1 - f and f.
            (None, _) if j == 1 => fraction.clone(),
            (None, _) => b.bin("Sub", &one_f, &d)?,
            (Some(s), kind) => {
                d = b.bin("Mul", &d, s)?;
                let zero = b.scalar(DType::Double, 0.0)?;
                match kind {
                    Kind::Cubic(c) => {
                        let near = cubic_weight(b, &d, c, true)?;
                        let far = cubic_weight(b, &d, c, false)?;
                        let two = b.scalar(DType::Double, 2.0)?;
                        let is_near = b.op(
                            "LessEqual",
                            &[&d, &one_f],
                            &[t(DType::Double)],
                            Shape::unknown(),
                        )?;
                        let is_far =
                            b.op("Less", &[&d, &two], &[t(DType::Double)], Shape::unknown())?;
                        let far = b.select(&is_far, &far, &zero)?;
                        b.select(&is_near, &near, &far)?
                    }
                    _ => {
                        let w = b.bin("Sub", &one_f, &d)?;
                        b.bin("Maximum", &w, &zero)?
                    }
                }
            }
        };
        weights.push(w);
        positions.push(b.bin("AddV2", &base, &jf)?);
    }
    if spec.antialias && !spec.exclude_outside {
        normalize(b, &mut weights)?;
    }
    if spec.exclude_outside {
        // Taps outside the input get no weight; the rest are renormalized.
        let zero = b.scalar(DType::Double, 0.0)?;
        for (w, p) in weights.iter_mut().zip(&positions) {
            let low = b.op(
                "GreaterEqual",
                &[p, &zero],
                &[t(DType::Double)],
                Shape::unknown(),
            )?;
            let high = b.op(
                "LessEqual",
                &[p, last],
                &[t(DType::Double)],
                Shape::unknown(),
            )?;
            let inside = b.op("LogicalAnd", &[&low, &high], &[], Shape::unknown())?;
            let zeros = b.un("ZerosLike", w)?;
            *w = b.select(&inside, w, &zeros)?;
        }
        normalize(b, &mut weights)?;
    }
    let work = x.dtype();
    let mut sum: Option<Output> = None;
    for (w, p) in weights.iter().zip(&positions) {
        let index = clamp_index(b, p, last)?;
        let g = b.gather(x, &index, a, Shape::unknown_dims(rank))?;
        let g = b.cast(&g, work)?;
        let w = b.cast(w, work)?;
        let w = b.reshape(&w, trailing)?;
        let term = b.bin("Mul", &g, &w)?;
        sum = Some(match sum {
            Some(s) => b.bin("AddV2", &s, &term)?,
            None => term,
        });
    }
    sum.ok_or_else(|| b.ctx.error("no taps"))
}

/// An interpolated integer value (float64) back in `dtype`: rounded half
/// to even and saturated, as ONNX's reference casts
/// (`onnx.numpy_helper.saturate_cast`).
fn saturate(b: &mut Builder<'_>, v: &Output, dtype: DType) -> Result<Output> {
    let (low, high) = integer_range(dtype)
        .ok_or_else(|| b.ctx.error(format!("cannot interpolate {dtype} values")))?;
    let rounded = b.un("Round", v)?;
    let low = b.scalar(DType::Double, low)?;
    let high = b.scalar(DType::Double, high)?;
    let v = b.bin("Maximum", &rounded, &low)?;
    let v = b.bin("Minimum", &v, &high)?;
    b.cast(&v, dtype)
}

/// The range of an integer dtype, as float64 (64-bit ends rounded inward
/// to representable values).
fn integer_range(dtype: DType) -> Option<(f64, f64)> {
    Some(match dtype {
        DType::UInt8 => (0.0, 255.0),
        DType::Int8 => (-128.0, 127.0),
        DType::UInt16 => (0.0, 65535.0),
        DType::Int16 => (-32768.0, 32767.0),
        DType::UInt32 => (0.0, 4294967295.0),
        DType::Int32 => (-2147483648.0, 2147483647.0),
        DType::UInt64 => (0.0, 18446744073709549568.0),
        DType::Int64 => (-9223372036854775808.0, 9223372036854774784.0),
        _ => return None,
    })
}

/// The cubic kernel with coefficient `c` at distance `d` (float64):
/// within one sample (`near`) or between one and two.
fn cubic_weight(b: &mut Builder<'_>, d: &Output, c: f64, near: bool) -> Result<Output> {
    // Horner form of the two pieces:
    //   near: ((c+2) d - (c+3)) d^2 + 1
    //   far:  ((c d - 5c) d + 8c) d - 4c
    let coefficients: [f64; 4] = if near {
        [c + 2.0, -(c + 3.0), 0.0, 1.0]
    } else {
        [c, -5.0 * c, 8.0 * c, -4.0 * c]
    };
    let mut acc = b.scalar(DType::Double, coefficients[0])?;
    for &k in &coefficients[1..] {
        let m = b.bin("Mul", &acc, d)?;
        let kc = b.scalar(DType::Double, k)?;
        acc = b.bin("AddV2", &m, &kc)?;
    }
    Ok(acc)
}

/// Divides the weights by their sum.
fn normalize(b: &mut Builder<'_>, weights: &mut [Output]) -> Result<()> {
    let mut total: Option<Output> = None;
    for w in weights.iter() {
        total = Some(match total {
            Some(s) => b.bin("AddV2", &s, w)?,
            None => w.clone(),
        });
    }
    if let Some(total) = total {
        for w in weights.iter_mut() {
            *w = b.bin("DivNoNan", w, &total)?;
        }
    }
    Ok(())
}
