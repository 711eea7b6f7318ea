//! `GridSample` (opsets 16 to 22): X `[N, C, D1..Dk]` sampled at the
//! normalized coordinates of `grid [N, O1..Ok, k]` (`x` first, so grid
//! component `k - 1 - i` is spatial axis `i`), as ONNX's reference does:
//!
//! - coordinates are denormalized (`align_corners`: `(g + 1) / 2 * (D - 1)`,
//!   else `((g + 1) * D - 1) / 2`), rounded half to even for `nearest`,
//!   and outside the border (`[0, D - 1]` or `[-0.5, D - 0.5]`) clamped
//!   (`border`) or reflected (`reflection`);
//! - `linear` takes 2 taps per axis with weights `1 - f, f`, `cubic` 4 taps
//!   with Keys' coefficients (alpha -0.75), `nearest` one tap;
//! - a tap outside X is 0 (`zeros`), clamped (`border`) or reflected
//!   (`reflection`).
//!
//! Each combination of taps is one `GatherV2` from X channels last and
//! flattened to `[N * D1 * .. * Dk, C]` at the linear index of
//! `(n, i1, .., ik)`, weighted and summed; the result is moved back to
//! channels first.

use savedmodel_graph::{Attr, DType, Output, Shape, Tensor};

use super::build::{Builder, t};
use super::{Converter, output0, rank_of, required_input};
use crate::convert::context::{Ctx, to_channels_first, to_channels_last};
use crate::{NodeView, Result};

pub(super) fn lookup(op_type: &str) -> Option<Converter> {
    let f: Converter = match op_type {
        "GridSample" => grid_sample,
        _ => return None,
    };
    Some(f)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Padding {
    Zeros,
    Border,
    Reflection,
}

/// `x` reflected into `[lo, hi]` (as the reference, only when outside).
fn reflect(b: &mut Builder<'_>, x: &Output, lo: &Output, hi: &Output) -> Result<Output> {
    let range = b.bin("Sub", hi, lo)?;
    let two = b.scalar(DType::Float, 2.0)?;
    // Below: dx = lo - x; n = trunc(dx / range); r = dx - n * range;
    // even n: lo + r, odd: hi - r. Above: mirrored.
    let side = |b: &mut Builder<'_>, dx: &Output, near: &Output, far: &Output, up: bool| {
        let ratio = b.bin("RealDiv", dx, &range)?;
        let n = b.op(
            "Cast",
            &[&ratio],
            &[
                ("SrcT", Attr::Type(DType::Float)),
                ("DstT", Attr::Type(DType::Int32)),
            ],
            Shape::unknown(),
        )?;
        let n = b.cast(&n, DType::Float)?;
        let whole = b.bin("Mul", &n, &range)?;
        let r = b.bin("Sub", dx, &whole)?;
        let half = b.bin("RealDiv", &n, &two)?;
        let floor = b.un("Floor", &half)?;
        let even = b.op(
            "Equal",
            &[&half, &floor],
            &[
                t(DType::Float),
                ("incompatible_shape_error", Attr::Bool(true)),
            ],
            Shape::unknown(),
        )?;
        let (near_op, far_op) = if up {
            ("AddV2", "Sub")
        } else {
            ("Sub", "AddV2")
        };
        let from_near = b.bin(near_op, near, &r)?;
        let from_far = b.bin(far_op, far, &r)?;
        b.select(&even, &from_near, &from_far)
    };
    let below_dx = b.bin("Sub", lo, x)?;
    let below = side(b, &below_dx, lo, hi, true)?;
    let above_dx = b.bin("Sub", x, hi)?;
    let above = side(b, &above_dx, hi, lo, false)?;
    let is_below = b.bin("Less", x, lo)?;
    let is_above = b.bin("Greater", x, hi)?;
    let y = b.select(&is_above, &above, x)?;
    b.select(&is_below, &below, &y)
}

/// Keys' cubic convolution coefficients for fraction `f` (alpha -0.75).
fn cubic_coefficients(b: &mut Builder<'_>, f: &Output) -> Result<Vec<Output>> {
    let a = -0.75f64;
    let c = |b: &mut Builder<'_>, v: f64| b.scalar(DType::Float, v);
    let one = c(b, 1.0)?;
    let two = c(b, 2.0)?;
    // w(d) for d in 1 + f, f, 1 - f, 2 - f.
    let near = |b: &mut Builder<'_>, d: &Output| -> Result<Output> {
        // ((a + 2) d - (a + 3)) d^2 + 1
        let k1 = c(b, a + 2.0)?;
        let k2 = c(b, a + 3.0)?;
        let t1 = b.bin("Mul", &k1, d)?;
        let t2 = b.bin("Sub", &t1, &k2)?;
        let d2 = b.bin("Mul", d, d)?;
        let t3 = b.bin("Mul", &t2, &d2)?;
        b.bin("AddV2", &t3, &one)
    };
    let far = |b: &mut Builder<'_>, d: &Output| -> Result<Output> {
        // ((a d - 5a) d + 8a) d - 4a
        let ka = c(b, a)?;
        let k5 = c(b, 5.0 * a)?;
        let k8 = c(b, 8.0 * a)?;
        let k4 = c(b, 4.0 * a)?;
        let t1 = b.bin("Mul", &ka, d)?;
        let t2 = b.bin("Sub", &t1, &k5)?;
        let t3 = b.bin("Mul", &t2, d)?;
        let t4 = b.bin("AddV2", &t3, &k8)?;
        let t5 = b.bin("Mul", &t4, d)?;
        b.bin("Sub", &t5, &k4)
    };
    let d0 = b.bin("AddV2", f, &one)?;
    let d2 = b.bin("Sub", &one, f)?;
    let d3 = b.bin("Sub", &two, f)?;
    Ok(vec![far(b, &d0)?, near(b, f)?, near(b, &d2)?, far(b, &d3)?])
}

fn grid_sample(ctx: &mut Ctx, node: &NodeView<'_>) -> Result<()> {
    let x_name = required_input(ctx, node, 0)?;
    let grid_name = required_input(ctx, node, 1)?;
    let out = output0(ctx, node)?;
    let rank = rank_of(ctx, x_name)?;
    let k = rank.checked_sub(2).filter(|&k| k >= 1).ok_or_else(|| {
        ctx.error(format!(
            "X has rank {rank}: at least one spatial axis is needed"
        ))
    })?;
    let mode = match node.attr_s_or("mode", "linear")? {
        "linear" | "bilinear" => "linear",
        "nearest" => "nearest",
        "cubic" | "bicubic" => "cubic",
        other => return Err(ctx.error(format!("mode {other:?} is not linear, nearest or cubic"))),
    };
    let padding = match node.attr_s_or("padding_mode", "zeros")? {
        "zeros" => Padding::Zeros,
        "border" => Padding::Border,
        "reflection" => Padding::Reflection,
        other => {
            return Err(ctx.error(format!(
                "padding_mode {other:?} is not zeros, border or reflection"
            )));
        }
    };
    let align = node.attr_i_or("align_corners", 0)? != 0;
    let x = ctx.plain(x_name)?;
    let grid = ctx.plain(grid_name)?;
    let dtype = x.dtype();
    let mut b = Builder::new(ctx, node);
    let grid = b.cast(&grid, DType::Float)?;
    let x_dims = b.shape(&x)?;
    // X channels last, flattened to [N * D1 * .. * Dk, C].
    let perm = b.i64s(&to_channels_last(rank))?;
    let x_last = b.op(
        "Transpose",
        &[&x, &perm],
        &[t(dtype), ("Tperm", Attr::Type(DType::Int64))],
        Shape::unknown_dims(rank),
    )?;
    let channels = b.element(&x_dims, 1)?;
    let channels = b.reshape(&channels, &[1])?;
    let minus_one = b.i64s(&[-1])?;
    let flat_shape = b.concat(&[&minus_one, &channels], 0)?;
    let table = b.reshape_to(&x_last, &flat_shape, Shape::unknown_dims(2))?;
    // Per spatial axis: the size, the coordinates, the borders.
    let mut sizes_i32 = Vec::new();
    let mut coords = Vec::new();
    let half = b.scalar(DType::Float, 0.5)?;
    let one = b.scalar(DType::Float, 1.0)?;
    let zero = b.scalar(DType::Float, 0.0)?;
    for axis in 0..k {
        let size = b.element(&x_dims, 2 + axis as i64)?;
        let size_i32 = b.cast(&size, DType::Int32)?;
        let size_f = b.cast(&size, DType::Float)?;
        let component = b.tensor(Tensor::scalar((k - 1 - axis) as i32))?;
        let g = b.gather(&grid, &component, rank - 1, Shape::unknown_dims(rank - 1))?;
        let g1 = b.bin("AddV2", &g, &one)?;
        let mut c = if align {
            let span = b.bin("Sub", &size_f, &one)?;
            let scaled = b.bin("Mul", &g1, &span)?;
            b.bin("Mul", &scaled, &half)?
        } else {
            let scaled = b.bin("Mul", &g1, &size_f)?;
            let shifted = b.bin("Sub", &scaled, &one)?;
            b.bin("Mul", &shifted, &half)?
        };
        if mode == "nearest" {
            c = b.un("Rint", &c)?;
        }
        let (lo, hi) = if align {
            (zero.clone(), b.bin("Sub", &size_f, &one)?)
        } else {
            let neg_half = b.scalar(DType::Float, -0.5)?;
            (neg_half, b.bin("Sub", &size_f, &half)?)
        };
        c = match padding {
            Padding::Zeros => c,
            Padding::Border => {
                let top = b.bin("Sub", &size_f, &one)?;
                let outside_low = b.bin("Less", &c, &lo)?;
                let outside_high = b.bin("Greater", &c, &hi)?;
                let outside = b.op(
                    "LogicalOr",
                    &[&outside_low, &outside_high],
                    &[],
                    Shape::unknown(),
                )?;
                let low = b.bin("Maximum", &c, &zero)?;
                let clamped = b.bin("Minimum", &low, &top)?;
                b.select(&outside, &clamped, &c)?
            }
            Padding::Reflection => reflect(&mut b, &c, &lo, &hi)?,
        };
        coords.push((c, lo, hi, size_f));
        sizes_i32.push(size_i32);
    }
    // The taps of each axis: (index as float, weight).
    let mut taps: Vec<Vec<(Output, Output)>> = Vec::new();
    for (c, _, _, _) in &coords {
        let axis_taps = match mode {
            "nearest" => vec![(c.clone(), one.clone())],
            _ => {
                let base = b.un("Floor", c)?;
                let f = b.bin("Sub", c, &base)?;
                let (offsets, weights): (Vec<f64>, Vec<Output>) = if mode == "linear" {
                    let w0 = b.bin("Sub", &one, &f)?;
                    (vec![0.0, 1.0], vec![w0, f.clone()])
                } else {
                    (vec![-1.0, 0.0, 1.0, 2.0], cubic_coefficients(&mut b, &f)?)
                };
                let mut v = Vec::new();
                for (o, w) in offsets.into_iter().zip(weights) {
                    let off = b.scalar(DType::Float, o)?;
                    let index = b.bin("AddV2", &base, &off)?;
                    v.push((index, w));
                }
                v
            }
        };
        taps.push(axis_taps);
    }
    // n for every output position: [N, 1, .., 1].
    let batch = b.element(&x_dims, 0)?;
    let batch = b.cast(&batch, DType::Int32)?;
    let zero_i = b.tensor(Tensor::scalar(0i32))?;
    let one_i = b.tensor(Tensor::scalar(1i32))?;
    let n_index = b.range(&zero_i, &batch, &one_i)?;
    let mut n_shape = vec![-1i64];
    n_shape.extend(std::iter::repeat_n(1, k));
    let n_index = b.reshape(&n_index, &n_shape)?;
    // Every combination of one tap per axis.
    let combos: usize = taps.iter().map(Vec::len).product();
    let mut total: Option<Output> = None;
    for combo in 0..combos {
        let mut rest = combo;
        let mut linear = n_index.clone();
        let mut weight: Option<Output> = None;
        let mut valid: Option<Output> = None;
        for axis in 0..k {
            let (index, w) = &taps[axis][rest % taps[axis].len()];
            rest /= taps[axis].len();
            let (_, lo, hi, size_f) = &coords[axis];
            let size_i = &sizes_i32[axis];
            let index = match padding {
                Padding::Reflection => reflect(&mut b, index, lo, hi)?,
                _ => index.clone(),
            };
            // Truncated to an integer, as the reference's int().
            let int_index = b.op(
                "Cast",
                &[&index],
                &[
                    ("SrcT", Attr::Type(DType::Float)),
                    ("DstT", Attr::Type(DType::Int32)),
                ],
                Shape::unknown(),
            )?;
            let top = b.bin("Sub", size_i, &one_i)?;
            if padding == Padding::Zeros {
                let ge = b.op(
                    "GreaterEqual",
                    &[&index, &zero],
                    &[t(DType::Float)],
                    Shape::unknown(),
                )?;
                let lt = b.op(
                    "Less",
                    &[&index, size_f],
                    &[t(DType::Float)],
                    Shape::unknown(),
                )?;
                let inside = b.op("LogicalAnd", &[&ge, &lt], &[], Shape::unknown())?;
                valid = Some(match valid {
                    None => inside,
                    Some(v) => b.op("LogicalAnd", &[&v, &inside], &[], Shape::unknown())?,
                });
            }
            let low = b.bin("Maximum", &int_index, &zero_i)?;
            let clamped = b.bin("Minimum", &low, &top)?;
            let scaled = b.bin("Mul", &linear, size_i)?;
            linear = b.bin("AddV2", &scaled, &clamped)?;
            weight = Some(match weight {
                None => w.clone(),
                Some(prev) => b.bin("Mul", &prev, w)?,
            });
        }
        let values = b.gather(&table, &linear, 0, Shape::unknown_dims(k + 2))?;
        let mut w = weight.unwrap_or_else(|| one.clone());
        if let Some(valid) = valid {
            let mask = b.cast(&valid, DType::Float)?;
            w = b.bin("Mul", &w, &mask)?;
        }
        let w = b.cast(&w, dtype)?;
        let last = b.tensor(Tensor::scalar(-1i32))?;
        let w = b.op(
            "ExpandDims",
            &[&w, &last],
            &[t(dtype), ("Tdim", Attr::Type(DType::Int32))],
            Shape::unknown_dims(k + 2),
        )?;
        let term = b.bin("Mul", &values, &w)?;
        total = Some(match total {
            None => term,
            Some(sum) => b.bin("AddV2", &sum, &term)?,
        });
    }
    let Some(total) = total else {
        return Err(b.ctx.error("no taps"));
    };
    let back = b.i64s(&to_channels_first(rank))?;
    let y = b.op(
        "Transpose",
        &[&total, &back],
        &[t(dtype), ("Tperm", Attr::Type(DType::Int64))],
        Shape::unknown_dims(rank),
    )?;
    ctx.set_plain(out, y, Shape::unknown_dims(rank));
    Ok(())
}
