//! `RoiAlign` (opsets 10, 16 and 22): X `[N, C, H, W]` pooled over each
//! region of interest `rois [R, 4]` (`x1, y1, x2, y2`, in X's coordinates
//! before `spatial_scale`) of image `batch_indices [R]` into
//! `[R, C, output_height, output_width]`, as ONNX's reference
//! (`onnx/reference/ops/op_roi_align.py`) and onnxruntime compute it:
//!
//! - the ROI's corners are scaled and, for `half_pixel` (opset 16's
//!   default), shifted by -0.5; `output_half_pixel` (opset 10's only mode)
//!   makes an ROI at least 1 x 1;
//! - each output bin is sampled on a `gh x gw` grid at
//!   `start + p * bin + (i + 0.5) * bin / g`, each sample bilinear: a
//!   sample outside `[-1, H] x [-1, W]` is 0, one inside is clamped to
//!   `[0, H - 1] x [0, W - 1]`;
//! - `avg` averages a bin's samples; `max` takes, over the bin's samples,
//!   the largest of the four weighted corner values (`w * x`, not their
//!   sum), as onnxruntime does.
//!
//! In the graph: the sample coordinates `[R, oh, gh]` and `[R, ow, gw]`,
//! broadcast to `[R, oh, gh, ow, gw]`; each of the four corners is one
//! `GatherV2` from X channels last and flattened to `[N * H * W, C]`; the
//! samples are reduced over the grid axes and the result moved back to
//! channels first.
//!
//! The grid is `sampling_ratio` in both directions, or, for a
//! `sampling_ratio` of 0 (adaptive), `ceil(roi_height / output_height)`
//! by `ceil(roi_width / output_width)` per ROI: fixed when the ROIs are
//! known at conversion and give every ROI the same grid, else computed at
//! run time, every ROI sampled on the largest ROI's grid with the samples
//! past its own masked out (a large ROI then costs memory in proportion to
//! its area, as in onnxruntime).

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::build::{Builder, t};
use super::{Converter, output0, rank_of, required_input};
use crate::convert::context::{Ctx, to_channels_first, to_channels_last};
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "RoiAlign" => roi_align,
        _ => return None,
    };
    Some(f)
}

/// Most samples per ROI and channel (`output_height * output_width *
/// gh * gw`): each is four gathered values per channel, so a hostile
/// `output_height` or `sampling_ratio` could otherwise ask for any amount
/// of memory.
const MAX_ROI_SAMPLES: i64 = 1 << 20;

/// Most ROIs whose adaptive grid is computed at conversion.
const MAX_KNOWN_ROIS: usize = 1 << 16;

/// The sampling grid (`gh`, `gw`) of every ROI for an adaptive
/// `sampling_ratio` (0), from the ROIs known at conversion; `None` with the
/// reason when there is no single one.
fn adaptive_grid(
    rois: &[f64],
    scale: f64,
    half_pixel: bool,
    oh: i64,
    ow: i64,
) -> std::result::Result<(i64, i64), String> {
    let offset = if half_pixel { 0.5 } else { 0.0 };
    let mut grid = None;
    for roi in rois.chunks_exact(4) {
        let f32_of = |v: f64| (v * scale - offset) as f32;
        let (x1, y1, x2, y2) = (
            f32_of(roi[0]),
            f32_of(roi[1]),
            f32_of(roi[2]),
            f32_of(roi[3]),
        );
        let (mut w, mut h) = (x2 - x1, y2 - y1);
        if !half_pixel {
            w = w.max(1.0);
            h = h.max(1.0);
        }
        let gh = (h / oh as f32).ceil();
        let gw = (w / ow as f32).ceil();
        if !(1.0..=MAX_ROI_SAMPLES as f32).contains(&gh)
            || !(1.0..=MAX_ROI_SAMPLES as f32).contains(&gw)
        {
            return Err(format!(
                "ROI {roi:?} gives an adaptive sampling grid of {gh} x {gw}, which is not between 1 and {MAX_ROI_SAMPLES}"
            ));
        }
        let this = (gh as i64, gw as i64);
        match grid {
            None => grid = Some(this),
            Some(g) if g == this => {}
            Some(g) => {
                return Err(format!(
                    "the ROIs give different adaptive sampling grids ({} x {} and {} x {}); \
                     only one grid for every ROI is supported (give a positive sampling_ratio)",
                    g.0, g.1, this.0, this.1
                ));
            }
        }
    }
    grid.ok_or_else(|| "there are no ROIs to size the adaptive sampling grid".to_owned())
}

/// The sampling grid along one axis.
enum Grid {
    /// The same number of samples for every ROI.
    Fixed(i64),
    /// `ceil(roi size / bins)` per ROI (at least 0), computed at run time:
    /// `per_roi [R]` (float), and the largest of them (at least 1) as the
    /// sample indices `0..G` (float vector) every ROI is sampled at, those
    /// at or past its own count masked out.
    Adaptive { per_roi: Output, indices: Output },
}

impl Grid {
    /// The adaptive grid of ROIs of `size [R]` into `bins` bins.
    fn adaptive(b: &mut Builder<'_>, size: &Output, bins: i64) -> Result<Grid> {
        let dtype = size.dtype();
        let bins_t = b.scalar(dtype, bins as f64)?;
        let per_bin = b.bin("RealDiv", size, &bins_t)?;
        let g = b.un("Ceil", &per_bin)?;
        let zero = b.scalar(dtype, 0.0)?;
        let per_roi = b.bin("Maximum", &g, &zero)?;
        let axis = b.tensor(Tensor::scalar(0i32))?;
        let largest = b.op(
            "Max",
            &[&per_roi, &axis],
            &[
                t(dtype),
                ("Tidx", Attr::Type(DType::Int32)),
                ("keep_dims", Attr::Bool(false)),
            ],
            Shape::scalar(),
        )?;
        let one = b.scalar(dtype, 1.0)?;
        let largest = b.bin("Maximum", &largest, &one)?;
        let largest = b.cast(&largest, DType::Int32)?;
        let start = b.tensor(Tensor::scalar(0i32))?;
        let step = b.tensor(Tensor::scalar(1i32))?;
        let indices = b.range(&start, &largest, &step)?;
        let indices = b.cast(&indices, dtype)?;
        Ok(Grid::Adaptive { per_roi, indices })
    }
}

/// One axis's sample positions: `start [R] + p * bin + (i + 0.5) * bin / g`
/// as `[R, bins, g]` (for an adaptive grid, `g` is the largest ROI's, and
/// each ROI divides by its own count, at least 1).
fn positions(
    b: &mut Builder<'_>,
    start: &Output,
    bin: &Output,
    bins: i64,
    grid: &Grid,
    dtype: DType,
) -> Result<Output> {
    let start = b.reshape(start, &[-1, 1, 1])?;
    let bin = b.reshape(bin, &[-1, 1, 1])?;
    let p: Vec<f64> = (0..bins).map(|p| p as f64).collect();
    let p = b.tensor(float_vector(dtype, &p))?;
    let p = b.reshape(&p, &[1, bins, 1])?;
    let (i, g) = match grid {
        Grid::Fixed(g) => {
            let i: Vec<f64> = (0..*g).map(|i| i as f64 + 0.5).collect();
            let i = b.tensor(float_vector(dtype, &i))?;
            let i = b.reshape(&i, &[1, 1, *g])?;
            (i, b.scalar(dtype, *g as f64)?)
        }
        Grid::Adaptive { per_roi, indices } => {
            let half = b.scalar(dtype, 0.5)?;
            let i = b.bin("AddV2", indices, &half)?;
            let i = b.reshape(&i, &[1, 1, -1])?;
            let one = b.scalar(dtype, 1.0)?;
            let g = b.bin("Maximum", per_roi, &one)?;
            (i, b.reshape(&g, &[-1, 1, 1])?)
        }
    };
    let pb = b.bin("Mul", &p, &bin)?;
    let ib = b.bin("Mul", &i, &bin)?;
    let ib = b.bin("RealDiv", &ib, &g)?;
    let at = b.bin("AddV2", &start, &pb)?;
    b.bin("AddV2", &at, &ib)
}

/// For an adaptive grid, which of the `G` samples each ROI takes
/// (`i < its count`), `[R, 1, G]`; `None` for a fixed grid.
fn taken(b: &mut Builder<'_>, grid: &Grid) -> Result<Option<Output>> {
    let Grid::Adaptive { per_roi, indices } = grid else {
        return Ok(None);
    };
    let i = b.reshape(indices, &[1, 1, -1])?;
    let g = b.reshape(per_roi, &[-1, 1, 1])?;
    Ok(Some(b.op(
        "Less",
        &[&i, &g],
        &[t(i.dtype())],
        Shape::unknown_dims(3),
    )?))
}

/// `x` with `count` axes of 1 inserted at `axis` (`ExpandDims`).
fn expand(b: &mut Builder<'_>, x: &Output, axis: i32, count: usize) -> Result<Output> {
    let mut x = x.clone();
    for _ in 0..count {
        let a = b.tensor(Tensor::scalar(axis))?;
        x = b.op(
            "ExpandDims",
            &[&x, &a],
            &[t(x.dtype()), ("Tdim", Attr::Type(DType::Int32))],
            Shape::unknown(),
        )?;
    }
    Ok(x)
}

/// A float32 or float64 constant vector.
fn float_vector(dtype: DType, values: &[f64]) -> Tensor {
    if dtype == DType::Double {
        Tensor::vector(values)
    } else {
        let v: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        Tensor::vector(&v)
    }
}

/// One axis's bilinear taps for positions `pos` on an axis of `size`
/// (a float scalar): the low and high indices (int64), their weights, and
/// whether each position is outside `[-1, size]`.
struct Taps {
    low: Output,
    high: Output,
    w_low: Output,
    w_high: Output,
    outside: Output,
}

fn taps(b: &mut Builder<'_>, pos: &Output, size: &Output) -> Result<Taps> {
    let dtype = pos.dtype();
    let minus_one = b.scalar(dtype, -1.0)?;
    let zero = b.scalar(dtype, 0.0)?;
    let one = b.scalar(dtype, 1.0)?;
    let below = b.op("Less", &[pos, &minus_one], &[t(dtype)], Shape::unknown())?;
    let above = b.op("Greater", &[pos, size], &[t(dtype)], Shape::unknown())?;
    let outside = b.op("LogicalOr", &[&below, &above], &[], Shape::unknown())?;
    let y = b.bin("Maximum", pos, &zero)?;
    let low = b.un("Floor", &y)?;
    let last = b.bin("Sub", size, &one)?;
    // At or past the last row: both taps are the last row, weight on low.
    let at_end = b.op(
        "GreaterEqual",
        &[&low, &last],
        &[t(dtype)],
        Shape::unknown(),
    )?;
    let low = b.select(&at_end, &last, &low)?;
    let y = b.select(&at_end, &low, &y)?;
    let next = b.bin("AddV2", &low, &one)?;
    let high = b.select(&at_end, &low, &next)?;
    let w_high = b.bin("Sub", &y, &low)?;
    let w_low = b.bin("Sub", &one, &w_high)?;
    let low = b.cast(&low, DType::Int64)?;
    let high = b.cast(&high, DType::Int64)?;
    Ok(Taps {
        low,
        high,
        w_low,
        w_high,
        outside,
    })
}

fn roi_align(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let rois_name = required_input(ctx, node, 1)?;
    let batch_name = required_input(ctx, node, 2)?;
    let out = output0(ctx, node)?;
    let rank = rank_of(ctx, x_name)?;
    if rank != 4 {
        return Err(ctx.error(format!("X has rank {rank}, RoiAlign takes [N, C, H, W]")));
    }
    let mode = match node.attr_s_or("mode", "avg")? {
        "avg" => false,
        "max" => true,
        other => return Err(ctx.error(format!("mode {other:?} is not avg or max"))),
    };
    // Opset 10 has no coordinate_transformation_mode: it computes what
    // output_half_pixel does; from opset 16 the default is half_pixel.
    let default_mode = if node.opset_version()? >= 16 {
        "half_pixel"
    } else {
        "output_half_pixel"
    };
    let half_pixel = match node.attr_s_or("coordinate_transformation_mode", default_mode)? {
        "half_pixel" => true,
        "output_half_pixel" => false,
        other => {
            return Err(ctx.error(format!(
                "coordinate_transformation_mode {other:?} is not half_pixel or output_half_pixel"
            )));
        }
    };
    let oh = node.attr_i_or("output_height", 1)?;
    let ow = node.attr_i_or("output_width", 1)?;
    let ratio = node.attr_i_or("sampling_ratio", 0)?;
    let scale = f64::from(node.attr_f_or("spatial_scale", 1.0)?);
    if !(1..=MAX_ROI_SAMPLES).contains(&oh) || !(1..=MAX_ROI_SAMPLES).contains(&ow) {
        return Err(ctx.error(format!(
            "output_height {oh} and output_width {ow} must be between 1 and {MAX_ROI_SAMPLES}"
        )));
    }
    if !scale.is_finite() {
        return Err(ctx.error(format!("spatial_scale {scale} is not finite")));
    }
    // The grid: fixed when sampling_ratio says, or when the ROIs are known
    // and give every ROI the same adaptive grid; else adaptive at run time.
    let fixed = match ratio {
        r if r < 0 => {
            return Err(ctx.error(format!("sampling_ratio {r} is negative")));
        }
        0 => ctx
            .known_f64(rois_name, MAX_KNOWN_ROIS * 4)?
            .filter(|r| r.len() % 4 == 0)
            .and_then(|rois| adaptive_grid(&rois, scale, half_pixel, oh, ow).ok()),
        r => Some((r, r)),
    };
    let (gh, gw) = fixed.unwrap_or((1, 1));
    let samples = [oh, ow, gh, gw]
        .iter()
        .try_fold(1i64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ROI_SAMPLES);
    if samples.is_none() {
        return Err(ctx.error(format!(
            "output {oh} x {ow} with a sampling grid of {gh} x {gw} is more than \
             {MAX_ROI_SAMPLES} samples per ROI"
        )));
    }
    let x_shape = ctx.slot(x_name)?.shape.clone();
    let r_dim = ctx.slot(rois_name)?.shape.dims().map_or(-1, |d| d[0]);
    let c_dim = x_shape.dims().map_or(-1, |d| d[1]);
    let x = ctx.plain(x_name)?;
    let rois = ctx.plain(rois_name)?;
    let batch = ctx.plain(batch_name)?;
    let dtype = x.dtype();
    let cdt = if dtype == DType::Double {
        DType::Double
    } else {
        DType::Float
    };
    let mut b = Builder::new(ctx, node);
    let x = b.cast(&x, cdt)?;
    let rois = b.cast(&rois, cdt)?;
    let batch = b.cast(&batch, DType::Int64)?;
    let x_dims = b.shape(&x)?;
    // X channels last, flattened to [N * H * W, C].
    let perm = b.i64s(&to_channels_last(4))?;
    let x_last = b.op(
        "Transpose",
        &[&x, &perm],
        &[t(cdt), ("Tperm", Attr::Type(DType::Int64))],
        Shape::unknown_dims(4),
    )?;
    let channels = b.element(&x_dims, 1)?;
    let channels = b.reshape(&channels, &[1])?;
    let minus_one = b.i64s(&[-1])?;
    let flat_shape = b.concat(&[&minus_one, &channels], 0)?;
    let table = b.reshape_to(&x_last, &flat_shape, Shape::unknown_dims(2))?;
    let height = b.element(&x_dims, 2)?;
    let width = b.element(&x_dims, 3)?;
    let height_f = b.cast(&height, cdt)?;
    let width_f = b.cast(&width, cdt)?;
    // The ROIs' corners, scaled and shifted.
    let scale_t = b.scalar(cdt, scale)?;
    let offset = b.scalar(cdt, if half_pixel { 0.5 } else { 0.0 })?;
    let mut corners = Vec::new();
    for i in 0..4i32 {
        let index = b.tensor(Tensor::scalar(i))?;
        let v = b.gather(&rois, &index, 1, Shape::unknown_dims(1))?;
        let v = b.bin("Mul", &v, &scale_t)?;
        corners.push(b.bin("Sub", &v, &offset)?);
    }
    let mut roi_w = b.bin("Sub", &corners[2], &corners[0])?;
    let mut roi_h = b.bin("Sub", &corners[3], &corners[1])?;
    if !half_pixel {
        let one = b.scalar(cdt, 1.0)?;
        roi_w = b.bin("Maximum", &roi_w, &one)?;
        roi_h = b.bin("Maximum", &roi_h, &one)?;
    }
    let oh_t = b.scalar(cdt, oh as f64)?;
    let ow_t = b.scalar(cdt, ow as f64)?;
    let bin_h = b.bin("RealDiv", &roi_h, &oh_t)?;
    let bin_w = b.bin("RealDiv", &roi_w, &ow_t)?;
    let (grid_h, grid_w) = match fixed {
        Some((gh, gw)) => (Grid::Fixed(gh), Grid::Fixed(gw)),
        None => (
            Grid::adaptive(&mut b, &roi_h, oh)?,
            Grid::adaptive(&mut b, &roi_w, ow)?,
        ),
    };
    let ys = positions(&mut b, &corners[1], &bin_h, oh, &grid_h, cdt)?;
    let xs = positions(&mut b, &corners[0], &bin_w, ow, &grid_w, cdt)?;
    let ty = taps(&mut b, &ys, &height_f)?;
    let tx = taps(&mut b, &xs, &width_f)?;
    // y values [R, oh, gh] as [R, oh, gh, 1, 1], x values [R, ow, gw] as
    // [R, 1, 1, ow, gw].
    let as_y = |b: &mut Builder<'_>, v: &Output| expand(b, v, -1, 2);
    let as_x = |b: &mut Builder<'_>, v: &Output| expand(b, v, 1, 2);
    let outside_y = as_y(&mut b, &ty.outside)?;
    let outside_x = as_x(&mut b, &tx.outside)?;
    let outside = b.op(
        "LogicalOr",
        &[&outside_y, &outside_x],
        &[],
        Shape::unknown(),
    )?;
    let inside = b.op("LogicalNot", &[&outside], &[], Shape::unknown())?;
    // An adaptive grid: the samples each ROI takes, [R, 1, G, 1, G].
    let taken = match (taken(&mut b, &grid_h)?, taken(&mut b, &grid_w)?) {
        (Some(h), Some(w)) => {
            let h = as_y(&mut b, &h)?;
            let w = as_x(&mut b, &w)?;
            Some(b.op("LogicalAnd", &[&h, &w], &[], Shape::unknown())?)
        }
        _ => None,
    };
    let inside = match &taken {
        Some(taken) => b.op("LogicalAnd", &[&inside, taken], &[], Shape::unknown())?,
        None => inside,
    };
    let inside = b.cast(&inside, cdt)?;
    let batch = b.reshape(&batch, &[-1, 1, 1, 1, 1])?;
    let height_i = b.cast(&height, DType::Int64)?;
    let width_i = b.cast(&width, DType::Int64)?;
    let row_base = b.bin("Mul", &batch, &height_i)?;
    let last = b.tensor(Tensor::scalar(-1i32))?;
    let mut corner_values = Vec::new();
    for (yi, wy) in [(&ty.low, &ty.w_low), (&ty.high, &ty.w_high)] {
        let yi = as_y(&mut b, yi)?;
        let wy = as_y(&mut b, wy)?;
        let row = b.bin("AddV2", &row_base, &yi)?;
        let row = b.bin("Mul", &row, &width_i)?;
        for (xi, wx) in [(&tx.low, &tx.w_low), (&tx.high, &tx.w_high)] {
            let xi = as_x(&mut b, xi)?;
            let wx = as_x(&mut b, wx)?;
            let index = b.bin("AddV2", &row, &xi)?;
            let w = b.bin("Mul", &wy, &wx)?;
            let w = b.bin("Mul", &w, &inside)?;
            let w = b.op(
                "ExpandDims",
                &[&w, &last],
                &[t(cdt), ("Tdim", Attr::Type(DType::Int32))],
                Shape::unknown_dims(6),
            )?;
            let values = b.gather(&table, &index, 0, Shape::unknown_dims(6))?;
            corner_values.push(b.bin("Mul", &values, &w)?);
        }
    }
    let combine = if mode { "Maximum" } else { "AddV2" };
    let mut sample = corner_values[0].clone();
    for v in &corner_values[1..] {
        sample = b.bin(combine, &sample, v)?;
    }
    // [R, oh, gh, ow, gw, C] reduced over the grid axes.
    let axes = b.tensor(Tensor::vector(&[2i32, 4]))?;
    let reduce = |b: &mut Builder<'_>, op: &str, v: &Output| {
        b.op(
            op,
            &[v, &axes],
            &[
                t(cdt),
                ("Tidx", Attr::Type(DType::Int32)),
                ("keep_dims", Attr::Bool(false)),
            ],
            Shape::unknown_dims(4),
        )
    };
    let pooled = match (&grid_h, &grid_w, &taken) {
        (Grid::Adaptive { per_roi: gh, .. }, Grid::Adaptive { per_roi: gw, .. }, Some(taken)) => {
            // Each ROI's own count of samples, [R, 1, 1, 1].
            let count = b.bin("Mul", gh, gw)?;
            let count = b.reshape(&count, &[-1, 1, 1, 1])?;
            if mode {
                // Samples a ROI does not take are below every value; a ROI
                // without samples gives 0, as the reference's start value.
                let taken = expand(&mut b, taken, -1, 1)?;
                let lowest = b.scalar(cdt, f64::from(f32::MIN))?;
                let sample = b.select(&taken, &sample, &lowest)?;
                let pooled = reduce(&mut b, "Max", &sample)?;
                let zero = b.scalar(cdt, 0.0)?;
                let any = b.op("Greater", &[&count, &zero], &[t(cdt)], Shape::unknown())?;
                b.select(&any, &pooled, &zero)?
            } else {
                let sum = reduce(&mut b, "Sum", &sample)?;
                let one = b.scalar(cdt, 1.0)?;
                let count = b.bin("Maximum", &count, &one)?;
                b.bin("RealDiv", &sum, &count)?
            }
        }
        _ => reduce(&mut b, if mode { "Max" } else { "Mean" }, &sample)?,
    };
    let back = b.i64s(&to_channels_first(4))?;
    let y = b.op(
        "Transpose",
        &[&pooled, &back],
        &[t(cdt), ("Tperm", Attr::Type(DType::Int64))],
        Shape::unknown_dims(4),
    )?;
    let y = b.cast(&y, dtype)?;
    ctx.set_plain(out, y, Shape::new(&[r_dim, c_dim, oh, ow]));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adaptive_grid_is_each_rois_size_over_the_output_rounded_up() {
        // A 9 x 9 ROI into 5 x 5 bins: ceil(9 / 5) = 2 (output_half_pixel).
        assert_eq!(
            adaptive_grid(&[0.0, 0.0, 9.0, 9.0], 1.0, false, 5, 5),
            Ok((2, 2))
        );
        // Malformed ROIs become 1 x 1 in output_half_pixel: one sample.
        assert_eq!(
            adaptive_grid(&[3.0, 3.0, 1.0, 1.0], 1.0, false, 2, 2),
            Ok((1, 1))
        );
        // A 10 x 4 ROI into 2 x 2: 3 (rows) by 5 (columns).
        assert_eq!(
            adaptive_grid(&[0.0, 0.0, 10.0, 6.0], 1.0, true, 2, 2),
            Ok((3, 5))
        );
    }

    #[test]
    fn adaptive_grids_that_differ_or_are_empty_are_refused() {
        let e =
            adaptive_grid(&[0.0, 0.0, 9.0, 9.0, 0.0, 0.0, 2.0, 2.0], 1.0, false, 5, 5).unwrap_err();
        assert!(e.contains("different adaptive sampling grids"), "{e}");
        // half_pixel keeps an empty ROI empty: a grid of 0.
        let e = adaptive_grid(&[1.0, 1.0, 1.0, 1.0], 1.0, true, 2, 2).unwrap_err();
        assert!(e.contains("not between 1"), "{e}");
        let e = adaptive_grid(&[0.0, 0.0, 1e30, 1.0], 1.0, false, 1, 1).unwrap_err();
        assert!(e.contains("not between 1"), "{e}");
        assert!(adaptive_grid(&[], 1.0, false, 1, 1).is_err());
    }
}
